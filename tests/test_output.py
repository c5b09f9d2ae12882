"""Output rows and files: schema, one row record for CSV/JSONL/read-back, atomic replacement, polarity bands."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from extractors.records import Media, Word
from model.schema import polarity_of
from pipeline.config import OutputOptions
from pipeline.errors import OutputError
from pipeline.output import (
    SUMMARY_COLUMNS,
    TEXT_COLUMNS,
    UTTERANCE_COLUMNS,
    SummaryRow,
    TextRow,
    UtteranceRow,
    open_output,
    write_rows_csv,
    write_summary,
    write_video_csv,
    write_video_jsonl,
)
from pipeline.records import Signals, Utterance, UtteranceScore, VideoResult


def make_result(scores: list[float]) -> VideoResult:
    signals = Signals(3, 0.9, 1.0, 0.5, 180.0, -20.0, 0.3, 0.1)
    utts = tuple(
        UtteranceScore(
            Utterance(i, i * 2.0, i * 2.0 + 1.5,
                      (Word("so,", i * 2.0, i * 2.0 + 0.4), Word("good", i * 2.0 + 0.5, i * 2.0 + 1.5))),
            s, polarity_of(s, OutputOptions().neutral_band), signals,
        )
        for i, s in enumerate(scores)
    )
    media = Media(Path("clip one.mp4"), 10.0, True, True, 480, 360, 25.0)
    return VideoResult(media, "ok" if scores else "no_speech", "en", 1.0, "tiny.en", "miar-v1", ("text",), 1.0, utts)


@pytest.mark.parametrize("score,label", [(2.0, "positive"), (0.5, "positive"), (0.49, "neutral"),
                                         (-0.49, "neutral"), (-0.5, "negative"), (-3.0, "negative")])
def test_polarity_bands(score: float, label: str):
    assert OutputOptions().neutral_band == 0.5
    assert polarity_of(score, OutputOptions().neutral_band) == label


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
        with pytest.raises(OutputError, match=f"^cannot write {target}: Permission denied$"):
            write_video_csv(make_result([1.0]), target, OutputOptions())
        assert target.read_text() == "old"
    finally:
        target.parent.chmod(0o700)


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputError, match=f"^cannot write {tmp_path / 'y.csv'}: No space left on device$"):
        write_video_csv(make_result([1.0]), tmp_path / "y.csv", OutputOptions())
    assert list(tmp_path.iterdir()) == []


def test_a_folder_or_link_in_the_way_is_one_line_and_untouched(tmp_path: Path):
    (tmp_path / "a.csv").mkdir()
    with pytest.raises(OutputError, match="cannot write .*a.csv: .*a folder, not a regular file"):
        write_video_csv(make_result([1.0]), tmp_path / "a.csv", OutputOptions())
    (tmp_path / "real.txt").write_text("keep")
    (tmp_path / "b.jsonl").symlink_to(tmp_path / "real.txt")
    with pytest.raises(OutputError, match="symbolic link"):
        write_video_jsonl(make_result([1.0]), tmp_path / "b.jsonl", OutputOptions())
    assert (tmp_path / "real.txt").read_text() == "keep" and (tmp_path / "a.csv").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.jsonl", "real.txt"]  # no temporary file


def test_results_get_the_umask_permissions(tmp_path: Path):
    write_video_csv(make_result([1.0]), tmp_path / "p.csv", OutputOptions())
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_columns_are_the_row_record_fields():
    assert UTTERANCE_COLUMNS == (
        "video", "utterance", "start_s", "end_s", "text", "sentiment", "polarity", "n_words",
        "face_coverage", "asr_word_prob", "voiced_share", "f0_mean_hz", "loudness_db", "smile", "brow_down",
    )
    assert SUMMARY_COLUMNS == ("video", "status", "duration_s", "utterances", "mean_sentiment", "language",
                               "face_coverage", "seconds", "csv", "error")
    assert TEXT_COLUMNS == ("line", "text", "sentiment", "polarity")


def test_csv_and_jsonl_read_back_to_the_same_row(tmp_path: Path):
    """One row record: what the writers write parses back into exactly the row they were given."""
    result = make_result([1.23456, -0.0004, 2.9996])
    noisy = tuple(  # NumPy scalars from the extractors become plain rounded floats
        UtteranceScore(u.utterance, u.sentiment, u.polarity,
                       Signals(3, np.float32(0.91234), 0.5, np.float64(1 / 3), 180.04, -20.05, 0.0, 0.12345))
        for u in result.utterances
    )
    result = VideoResult(result.media, "ok", "en", 1.0, "tiny.en", "miar-v1", ("text",), 1.0, noisy)
    options = OutputOptions()
    expected = [UtteranceRow.of(result, u, options) for u in result.utterances]
    assert expected[0].sentiment == 1.235 and expected[0].asr_word_prob == 0.912 and expected[0].voiced_share == 0.333
    assert expected[1].sentiment == -0.0 and expected[2].sentiment == 3.0 and expected[0].f0_mean_hz == 180.0
    write_video_csv(result, tmp_path / "a.csv", options)
    write_video_jsonl(result, tmp_path / "a.jsonl", options)
    with open(tmp_path / "a.csv", encoding="utf-8", newline="") as f:
        from_csv = [UtteranceRow.parse(r) for r in csv.DictReader(f)]
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    from_jsonl = [UtteranceRow.parse(json.loads(line)) for line in lines]
    assert from_csv == from_jsonl == expected
    assert (tmp_path / "a.csv").read_text().split("\n")[1] == (
        "clip one.mp4,0,0.00,1.50,\"so, good\",1.235,positive,3,0.500,0.912,0.333,180.0,-20.1,0.000,0.123")
    assert json.loads(lines[0])["face_coverage"] == 0.5 and json.loads(lines[0])["n_words"] == 3


def test_parse_refuses_what_is_not_a_row():
    good = {c: "1" for c in UTTERANCE_COLUMNS}
    assert UtteranceRow.parse(good).smile == 1.0
    assert UtteranceRow.parse({**good, "smile": ""}).smile is None  # a missing signal reads back as None
    with pytest.raises(KeyError):
        UtteranceRow.parse({k: v for k, v in good.items() if k != "sentiment"})
    with pytest.raises(ValueError):
        UtteranceRow.parse({**good, "sentiment": "high"})
    with pytest.raises(ValueError):
        UtteranceRow.parse({**good, "sentiment": ""})  # the score is never missing
    with pytest.raises(ValueError):
        UtteranceRow.parse({**good, "n_words": 2.5})


def test_summary_reads_back(tmp_path: Path):
    rows = [SummaryRow.from_result(Path("a.mp4"), make_result([1.0]), tmp_path / "a.csv", 1.5),
            SummaryRow("b.mp4", "skipped", csv="out/b.csv")]
    write_summary(rows, tmp_path / "summary.csv", OutputOptions())
    with open(tmp_path / "summary.csv", encoding="utf-8", newline="") as f:
        back = [SummaryRow.parse(r) for r in csv.DictReader(f)]
    assert back[0] == SummaryRow("a.mp4", "ok", 10.0, 1, 1.0, "en", 1.0, 1.5, str(tmp_path / "a.csv"))
    assert back[1] == rows[1]


def test_text_rows(tmp_path: Path):
    with open_output(tmp_path / "t.csv") as f:
        write_rows_csv([TextRow(1, "so, good", 1.23456, "positive")], TEXT_COLUMNS, f, OutputOptions())
    assert (tmp_path / "t.csv").read_text() == 'line,text,sentiment,polarity\n1,"so, good",1.235,positive\n'
