"""The text path on our own probe sentences (tests/data/probe_sentences.csv): a regression guard.

The shipped weights scored 47 of 67 (70.1 %) when the probes were written (2026-11-29); they
misread negation ("This movie was not bad at all." -1.50) and lean negative on neutral facts.
The floor below keeps what we have from getting worse; the accuracy issue aims at >= 90 %.
Never train or select on these sentences.
"""

from __future__ import annotations

import pytest

from model.schema import POLARITIES
from training.probes import load_probes, probe_report

# weights/miar-v7 scores 82.1 % (the card), as miar-v5 did; miar-v4 and miar-v3 80.6 %, miar-v2 82.1 %, miar-v1 70.1 %
#: The shipped weights' accuracy minus a margin for retraining noise.
FLOOR = 0.78


def test_probe_file_is_well_formed() -> None:
    probes = load_probes()
    assert len(probes) >= 60
    assert {p.expected for p in probes} == set(POLARITIES)
    assert len({p.text for p in probes}) == len(probes), "a probe is listed twice"
    for category in ("negation", "double_negation", "contrast", "neutral_fact", "disfluent", "intensifier",
                     "short_answer"):
        assert sum(p.category == category for p in probes) >= 5, category


def test_probe_report_counts() -> None:
    probes = load_probes()[:3]
    report = probe_report(probes, [2.0 if p.expected == "positive" else -2.0 for p in probes])
    assert report.accuracy == pytest.approx(sum(p.expected != "neutral" for p in probes) / 3)


@pytest.mark.slow
def test_shipped_text_path_stays_above_the_floor(loaded_models) -> None:
    from pipeline.text_scoring import TextScorer

    probes = load_probes()
    report = probe_report(probes, TextScorer(loaded_models).score([p.text for p in probes]))
    print(f"probe accuracy {report.accuracy:.1%}", {k: f"{r}/{t}" for k, (r, t) in report.by_category.items()})
    assert report.accuracy >= FLOOR
