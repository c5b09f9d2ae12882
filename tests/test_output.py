"""CSV writing: schema, atomic replacement, polarity bands."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from extractors.records import Media, Word
from pipeline.config import OutputOptions
from pipeline.errors import OutputError
from pipeline.output import (
    SUMMARY_COLUMNS,
    UTTERANCE_COLUMNS,
    SummaryRow,
    polarity_of,
    write_atomic,
    write_summary,
    write_video_csv,
)
from pipeline.records import Signals, Utterance, UtteranceScore, VideoResult


def make_result(scores: list[float]) -> VideoResult:
    signals = Signals(3, 0.9, 1.0, 0.5, 180.0, -20.0, 0.3, 0.1)
    utts = tuple(
        UtteranceScore(
            Utterance(i, i * 2.0, i * 2.0 + 1.5,
                      (Word("so,", i * 2.0, i * 2.0 + 0.4), Word("good", i * 2.0 + 0.5, i * 2.0 + 1.5))),
            s, polarity_of(s, OutputOptions()), signals,
        )
        for i, s in enumerate(scores)
    )
    media = Media(Path("clip one.mp4"), 10.0, True, True, 480, 360, 25.0)
    return VideoResult(media, "ok" if scores else "no_speech", "en", 1.0, "tiny.en", "miar-v1", ("text",), 1.0, utts)


@pytest.mark.parametrize("score,label", [(2.0, "positive"), (0.5, "positive"), (0.49, "neutral"),
                                         (-0.49, "neutral"), (-0.5, "negative"), (-3.0, "negative")])
def test_polarity_bands(score: float, label: str):
    assert polarity_of(score, OutputOptions(neutral_band=0.5)) == label


def test_video_csv_schema_and_values(tmp_path: Path):
    path = tmp_path / "clip one.csv"
    write_video_csv(make_result([1.234, -2.0]), path, OutputOptions())
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert tuple(rows[0].keys()) == UTTERANCE_COLUMNS
    assert [r["sentiment"] for r in rows] == ["1.234", "-2.000"]
    assert [r["polarity"] for r in rows] == ["positive", "negative"]
    assert rows[0]["text"] == "so, good" and rows[0]["video"] == "clip one.mp4"
    assert float(rows[1]["start_s"]) == 2.0 and float(rows[1]["end_s"]) == 3.5


def test_no_speech_writes_header_only(tmp_path: Path):
    path = tmp_path / "silent.csv"
    write_video_csv(make_result([]), path, OutputOptions())
    assert path.read_text().strip().split("\n") == [",".join(UTTERANCE_COLUMNS)]


def test_summary_schema(tmp_path: Path):
    rows = [SummaryRow.from_result(Path("a.mp4"), make_result([1.0, -1.0]), tmp_path / "a.csv", 1.5),
            SummaryRow("b.mp4", "failed", error="b.mp4: no audio track")]
    write_summary(rows, tmp_path / "summary.csv", OutputOptions())
    read = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert tuple(read[0].keys()) == SUMMARY_COLUMNS
    assert read[0]["status"] == "ok" and read[0]["utterances"] == "2" and read[0]["mean_sentiment"] == "0.000"
    assert read[1]["status"] == "failed" and read[1]["error"] == "b.mp4: no audio track" and read[1]["csv"] == ""


def test_atomic_write_keeps_old_file_when_folder_unwritable(tmp_path: Path):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    target = tmp_path / "ro" / "x.csv"
    target.parent.mkdir()
    target.write_text("old")
    target.parent.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            write_atomic(target, "new")
        assert target.read_text() == "old"
    finally:
        target.parent.chmod(0o700)


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputError, match="No space left"):
        write_atomic(tmp_path / "y.csv", "data")
    assert list(tmp_path.iterdir()) == []
