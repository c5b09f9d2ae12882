"""Output rows and files: schema, one row record for CSV/JSONL/read-back, atomic replacement, polarity bands,
missing values written empty (never 0), the signals behind them and the per-modality readings."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from extractors import face as face_columns
from extractors import voice as voice_columns
from extractors.records import Media, TokenFeatures, Word
from model.schema import MODALITIES, polarity_of
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
from pipeline.records import AlignedUtterance, Signals, Utterance, UtteranceScore, VideoResult
from pipeline.signals import utterance_signals


def make_result(scores: list[float]) -> VideoResult:
    signals = Signals(3, 0.9, 1.0, 0.5, 180.0, -20.0, 0.3, 0.1)
    utts = tuple(
        UtteranceScore(
            Utterance(i, i * 2.0, i * 2.0 + 1.5,
                      (Word("so,", i * 2.0, i * 2.0 + 0.4), Word("good", i * 2.0 + 0.5, i * 2.0 + 1.5))),
            s, polarity_of(s, OutputOptions().neutral_band), signals, s + 0.1, -0.5, 1.0,
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
        "video", "utterance", "start_s", "end_s", "text", "sentiment", "polarity", "text_score", "voice_score",
        "face_score", "n_words", "face_coverage", "asr_word_prob", "voiced_share", "f0_mean_hz", "loudness_db",
        "smile", "brow_down",
    )
    assert SUMMARY_COLUMNS == ("video", "status", "duration_s", "utterances", "mean_sentiment", "language",
                               "face_coverage", "seconds", "csv", "error", "weights_sha256", "asr_model", "version")
    assert TEXT_COLUMNS == ("line", "text", "sentiment", "polarity", "language")


def test_csv_and_jsonl_read_back_to_the_same_row(tmp_path: Path):
    """One row record: what the writers write parses back into exactly the row they were given."""
    result = make_result([1.23456, -0.0004, 2.9996])
    noisy = tuple(  # NumPy scalars from the extractors become plain rounded floats
        UtteranceScore(u.utterance, u.sentiment, u.polarity,
                       Signals(3, np.float32(0.91234), 0.5, np.float64(1 / 3), 180.04, -20.05, 0.0, 0.12345),
                       float(np.float32(u.sentiment)), np.float32(-0.25049), None)
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
        "clip one.mp4,0,0.00,1.50,\"so, good\",1.235,positive,1.235,-0.250,,3,0.500,0.912,0.333,180.0,-20.1,0.000,"
        "0.123")
    assert json.loads(lines[0])["face_coverage"] == 0.5 and json.loads(lines[0])["n_words"] == 3
    assert json.loads(lines[0])["face_score"] is None and expected[0].voice_score == -0.25


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
        write_rows_csv([TextRow(1, "so, good", 1.23456, "positive", "en"),
                        TextRow(2, "das ist gut und so", None, "", "de")], TEXT_COLUMNS, f, OutputOptions())
    assert (tmp_path / "t.csv").read_text() == ('line,text,sentiment,polarity,language\n'
                                                '1,"so, good",1.235,positive,en\n2,das ist gut und so,,,de\n')


def test_missing_is_written_empty_never_as_zero(tmp_path: Path):
    """A wav's row: no face was observed, so every face value is empty (CSV) / null (JSONL) and reads back None."""
    base = make_result([1.5])
    scored = base.utterances[0]
    wav = VideoResult(
        Media(Path("talk.wav"), 3.0, True, False), "ok", "en", 0.9, "tiny.en", "miar-v1", ("text", "audio"), None,
        (UtteranceScore(scored.utterance, 1.5, "positive", Signals(2, 0.9, None, 0.6, None, -25.0, None, None),
                        1.4, -0.3, None),),
    )
    options = OutputOptions()
    write_video_csv(wav, tmp_path / "talk.csv", options)
    write_video_jsonl(wav, tmp_path / "talk.jsonl", options)
    with open(tmp_path / "talk.csv", encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    for column in ("face_score", "face_coverage", "smile", "brow_down", "f0_mean_hz"):
        assert row[column] == "", column
    assert row["voice_score"] == "-0.300" and row["text_score"] == "1.400" and row["voiced_share"] == "0.600"
    line = json.loads((tmp_path / "talk.jsonl").read_text(encoding="utf-8"))
    assert line["face_score"] is None and line["smile"] is None and line["voice_score"] == -0.3
    assert UtteranceRow.parse(row) == UtteranceRow.parse(line) == UtteranceRow.of(wav, wav.utterances[0], options)
    silent = VideoResult(Media(Path("quiet.mp4"), 5.0, True, True, 480, 360, 25.0), "no_speech", "", None,
                         "tiny.en", "miar-v1", (), 0.96, ())
    write_summary([SummaryRow.from_result(Path("talk.wav"), wav, tmp_path / "talk.csv", 1.0),
                   SummaryRow.from_result(Path("quiet.mp4"), silent, tmp_path / "quiet.csv", 1.0)],
                  tmp_path / "summary.csv", options)
    with open(tmp_path / "summary.csv", encoding="utf-8", newline="") as f:
        talk, quiet = csv.DictReader(f)
    assert talk["face_coverage"] == "" and talk["language"] == "en"
    assert quiet["face_coverage"] == "0.960" and quiet["language"] == "" and quiet["mean_sentiment"] == ""


def _aligned(audio_frames: np.ndarray, vision_frames: np.ndarray, vision_present: np.ndarray) -> AlignedUtterance:
    words = (Word("fine", 0.0, 0.5, 0.8), Word("thanks", 0.6, 1.0, 0.6))
    utterance = Utterance(0, 0.0, 1.0, words)
    tokens = TokenFeatures(("fine", "thanks"), np.array([0, 1]), np.zeros((2, 4), np.float32), "test")
    return AlignedUtterance(
        utterance, ("fine", "thanks"), np.array([[0.0, 0.5], [0.6, 1.0]]), tokens,
        np.zeros((2, len(voice_columns.COLUMNS)), np.float32), np.ones(2, bool),
        np.zeros((2, len(face_columns.COLUMNS)), np.float32), np.zeros(2, bool), audio_frames, vision_frames,
        vision_present,
    )


def test_signals_say_none_for_what_was_not_observed():
    voice = np.zeros((100, len(voice_columns.COLUMNS)), np.float32)
    voice[:, voice_columns.COLUMNS.index("rms_db")] = -30.0
    face = np.zeros((4, len(face_columns.COLUMNS)), np.float32)
    face[:, face_columns.COLUMNS.index("bs_mouthSmileLeft")] = 0.8
    face[:, face_columns.COLUMNS.index("bs_mouthSmileRight")] = 0.6

    no_video = utterance_signals(_aligned(voice, face[:0], np.zeros(0, bool)))  # a wav: no frame to look at
    assert no_video.face_coverage is None and no_video.smile is None and no_video.brow_down is None
    assert no_video.voiced_share == 0.0 and no_video.f0_mean_hz is None  # unvoiced: a share of 0, no pitch
    assert no_video.loudness_db == pytest.approx(-30.0) and no_video.asr_word_prob == pytest.approx(0.7)

    no_face = utterance_signals(_aligned(voice, face * 0, np.zeros(4, bool)))  # frames, never a face
    assert no_face.face_coverage == 0.0 and no_face.smile is None and no_face.brow_down is None

    voice[:50, voice_columns.COLUMNS.index("voiced")] = 1.0
    voice[:50, voice_columns.COLUMNS.index("f0_hz")] = 200.0
    half = utterance_signals(_aligned(voice, face, np.array([True, True, False, False])))
    assert half.face_coverage == 0.5 and half.smile == pytest.approx(0.7) and half.brow_down == 0.0
    assert half.voiced_share == 0.5 and half.f0_mean_hz == pytest.approx(200.0)

    silent_audio = utterance_signals(_aligned(voice[:0], face, np.ones(4, bool)))
    assert silent_audio.voiced_share is None and silent_audio.loudness_db is None and silent_audio.f0_mean_hz is None


def test_readings_are_each_modality_alone_and_nan_where_absent():
    """``LoadedMiar.predict_readings`` = ``predict`` of the sample with the other two modalities masked."""
    import torch

    from model.batch import SampleInput
    from model.checkpoint import LoadedMiar
    from model.miar import Miar, MiarDims

    torch.manual_seed(0)
    dims = MiarDims(text_dim=8, audio_dim=len(voice_columns.COLUMNS), vision_dim=len(face_columns.COLUMNS),
                    d_model=16, n_heads=2)
    rng = np.random.default_rng(0)

    def sample(audio: bool, vision: bool) -> SampleInput:
        return SampleInput(
            text=rng.normal(size=(5, 8)).astype(np.float32), text_mask=np.ones(5, bool),
            audio=rng.normal(size=(5, dims.audio_dim)).astype(np.float32) if audio else None,
            vision=rng.normal(size=(5, dims.vision_dim)).astype(np.float32) if vision else None,
            vision_mask=np.array([True, True, False, False, False]) if vision else None,
        )

    samples = [sample(True, True), sample(True, False), sample(False, True)]
    miar = LoadedMiar(Miar(dims), {"normalisation": {}, "trained_modalities": list(MODALITIES)}, Path("w"))
    readings = miar.predict_readings(samples)
    assert readings.shape == (3, 3) and readings.dtype == np.float32
    assert np.isnan(readings[1, 2]) and np.isnan(readings[2, 1]) and not np.isnan(readings[0]).any()
    text_alone = miar.predict([SampleInput(s.text, s.text_mask) for s in samples])
    np.testing.assert_allclose(readings[:, 0], text_alone, atol=1e-6)
    voice_alone = miar.predict([SampleInput(np.zeros((0, 1), np.float32), np.zeros(0, bool), audio=s.audio)
                                for s in samples[:2]])
    np.testing.assert_allclose(readings[:2, 1], voice_alone, atol=1e-6)
    assert not np.allclose(readings[0], miar.predict(samples[:1])[0])  # readings are not the fused score

    text_only = LoadedMiar(Miar(dims), {"normalisation": {}, "trained_modalities": ["text"]}, Path("w"))
    assert np.isnan(text_only.predict_readings(samples)[:, 1:]).all()  # never trained: no reading
    assert miar.predict_readings([]).shape == (0, 3)
