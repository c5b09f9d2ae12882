"""Our own probe sentences: negation, contrast, neutral facts, disfluent speech, short answers.

``tests/data/probe_sentences.csv`` (``category,expected,text``) holds sentences written for
this project with the polarity a careful reader gives them. They are a regression guard
for the text path, never training or selection data: ``tests/test_probes.py`` asserts a
floor and ``python -m training.evaluate --probes`` prints the score per category.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from model.schema import POLARITIES, polarity_of
from storage.locations import REPO_ROOT

__all__ = ["PROBES_FILE", "Probe", "ProbeReport", "load_probes", "probe_report"]

PROBES_FILE = REPO_ROOT / "tests" / "data" / "probe_sentences.csv"


@dataclass(frozen=True)
class Probe:
    """One probe sentence.

    Attributes:
        category: What it probes ("negation", "neutral_fact", ...).
        expected: "negative", "neutral" or "positive".
        text: The sentence.
    """

    category: str
    expected: str
    text: str


@dataclass(frozen=True)
class ProbeReport:
    """Polarity accuracy on the probes.

    Attributes:
        accuracy: Share of probes whose polarity (``model.schema.polarity_of``) is the expected one.
        by_category: ``category -> (correct, total)``.
        misses: ``(score, probe)`` of every probe scored wrongly.
    """

    accuracy: float
    by_category: dict[str, tuple[int, int]]
    misses: tuple[tuple[float, Probe], ...]


def load_probes(path: Path = PROBES_FILE) -> list[Probe]:
    """The probes of ``path``.

    Raises:
        ValueError: A row's expected polarity is not one of ``POLARITIES``.
    """
    with open(path, encoding="utf-8", newline="") as f:
        probes = [Probe(r["category"], r["expected"], r["text"]) for r in csv.DictReader(f)]
    bad = [p for p in probes if p.expected not in POLARITIES]
    if bad:
        raise ValueError(f"{path}: expected polarity {bad[0].expected!r} of {bad[0].text!r} not in {POLARITIES}")
    return probes


def probe_report(probes: Sequence[Probe], scores: Sequence[float]) -> ProbeReport:
    """Accuracy of ``scores`` (one per probe, MOSI scale) against the probes' polarities."""
    by_category: dict[str, tuple[int, int]] = {}
    misses = []
    for probe, score in zip(probes, scores, strict=True):
        correct = polarity_of(float(score)) == probe.expected
        right, total = by_category.get(probe.category, (0, 0))
        by_category[probe.category] = (right + correct, total + 1)
        if not correct:
            misses.append((float(score), probe))
    accuracy = sum(r for r, _ in by_category.values()) / max(1, len(probes))
    return ProbeReport(accuracy, by_category, tuple(misses))
