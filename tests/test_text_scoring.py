"""The text path: ``score_texts`` and ``python -m pipeline text``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from pipeline import score_texts
from pipeline.cli import main


def test_score_texts_orders_clear_sentiment():
    scores = score_texts(["I loved this movie, it was wonderful!", "this was a terrible boring waste of time"])
    assert len(scores) == 2 and all(-3.0 <= s <= 3.0 for s in scores)
    assert scores[0] > 1.0 and scores[1] < -1.0


def test_score_texts_punctuation_and_case_do_not_matter():
    a, b = score_texts(["It was GREAT, really great!", "it was great really great"])
    assert a == pytest.approx(b, abs=1e-5)


def test_score_texts_edge_cases():
    assert score_texts([]) == []
    with pytest.raises(ValueError, match="no words"):
        score_texts(["fine", "?!"])


def test_text_command_writes_csv_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture):
    src = tmp_path / "lines.txt"
    src.write_text("what a wonderful day\n\n...\nI hate this so much\n", encoding="utf-8")
    assert main(["text", str(src)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["line"] for r in rows] == ["1", "4"]  # blank and word-less lines skipped
    assert rows[0]["polarity"] == "positive" and rows[1]["polarity"] == "negative"


def test_text_command_unreadable_file_exits_1(tmp_path: Path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 tr\xe8s bien".encode("latin-1"))
    assert main(["text", str(bad)]) == 1
    assert main(["text", str(tmp_path / "missing.txt")]) == 1
