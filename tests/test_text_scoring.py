"""The text path: ``TextScorer``, ``score_texts`` and ``python -m pipeline text``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from pipeline import score_texts
from pipeline.text_scoring import TextScorer


@pytest.fixture(scope="module")
def scorer(loaded_models: object) -> TextScorer:
    """A scorer on conftest's session ``loaded_models`` (loaded once per test run)."""
    return TextScorer(loaded_models)


@pytest.mark.slow
def test_clear_sentiment_is_ordered(scorer: TextScorer):
    scores = scorer.score(["I loved this movie, it was wonderful!", "this was a terrible boring waste of time"])
    assert scores.shape == (2,) and all(-3.0 <= s <= 3.0 for s in scores)
    assert scores[0] > 1.0 and scores[1] < -1.0


@pytest.mark.slow
def test_score_texts_loads_the_same_model(scorer: TextScorer):
    texts = ["what a wonderful day", "I hate this so much"]
    assert score_texts(texts) == pytest.approx([float(s) for s in scorer.score(texts)], abs=1e-5)


@pytest.mark.slow
def test_punctuation_and_case_do_not_matter(scorer: TextScorer):
    a, b = scorer.score(["It was GREAT, really great!", "it was great really great"])
    assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.slow
def test_text_without_words_is_refused(scorer: TextScorer):
    with pytest.raises(ValueError, match="no words"):
        scorer.score(["fine", "?!"])


def test_no_texts_load_nothing():
    assert score_texts([]) == []


@pytest.mark.slow
def test_text_command_writes_csv_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture):
    from pipeline.cli import main

    src = tmp_path / "lines.txt"
    src.write_text("what a wonderful day\n\n...\nI hate this so much\n", encoding="utf-8")
    assert main(["text", str(src)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["line"] for r in rows] == ["1", "4"]  # blank and word-less lines skipped
    assert rows[0]["polarity"] == "positive" and rows[1]["polarity"] == "negative"


def test_text_command_unreadable_file_exits_1(tmp_path: Path):
    from pipeline.cli import main

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 tr\xe8s bien".encode("latin-1"))
    assert main(["text", str(bad)]) == 1
    assert main(["text", str(tmp_path / "missing.txt")]) == 1
