"""Writing results: one CSV per video, a summary CSV per batch, always atomically.

A file appears under its final name only once it is complete (written to a temporary
file in the same folder, flushed, then ``os.replace``d), so an interrupted run never
leaves a half-written CSV that a resumed batch would mistake for a finished one.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import OutputOptions
from pipeline.errors import OutputError
from pipeline.records import VideoResult

__all__ = ["UTTERANCE_COLUMNS", "SUMMARY_COLUMNS", "SummaryRow", "polarity_of", "write_video_csv",
           "write_summary", "csv_path_for", "write_atomic"]

#: Columns of ``<out>/<stem>.csv``, one row per utterance (documented in README).
UTTERANCE_COLUMNS: tuple[str, ...] = (
    "video", "utterance", "start_s", "end_s", "text", "sentiment", "polarity", "n_words",
    "face_coverage", "asr_word_prob", "voiced_share", "f0_mean_hz", "loudness_db", "smile", "brow_down",
)
#: Columns of ``<out>/summary.csv``, one row per input of a batch.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "video", "status", "duration_s", "utterances", "mean_sentiment", "language", "face_coverage",
    "seconds", "csv", "error",
)


@dataclass(frozen=True)
class SummaryRow:
    """One input's line in ``summary.csv``.

    Attributes:
        video: The input path as given.
        status: "ok", "no_speech", "skipped" or "failed".
        duration_s: Media duration (None when unreadable).
        utterances: Rows written.
        mean_sentiment: Duration-weighted mean score (None without utterances).
        language: Detected language.
        face_coverage: Share of sampled frames with a face.
        seconds: Wall seconds spent on this input.
        csv: The CSV written (empty when failed).
        error: One-line reason when failed.
    """

    video: str
    status: str
    duration_s: float | None = None
    utterances: int = 0
    mean_sentiment: float | None = None
    language: str = ""
    face_coverage: float | None = None
    seconds: float | None = None
    csv: str = ""
    error: str = ""

    @classmethod
    def from_result(cls, video: Path, result: VideoResult, csv_path: Path, seconds: float) -> SummaryRow:
        return cls(
            video=str(video), status=result.status, duration_s=result.media.duration_s,
            utterances=len(result.utterances), mean_sentiment=result.mean_sentiment,
            language=result.language, face_coverage=result.face_coverage, seconds=seconds, csv=str(csv_path),
        )


def polarity_of(score: float, options: OutputOptions) -> str:
    """"negative", "neutral" or "positive" for a score, by ``options.neutral_band``."""
    if score >= options.neutral_band:
        return "positive"
    if score <= -options.neutral_band:
        return "negative"
    return "neutral"


def csv_path_for(video: Path, out_dir: Path) -> Path:
    """Where the CSV of ``video`` goes: ``<out_dir>/<stem>.csv``."""
    return out_dir / f"{video.stem}.csv"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that the final name only ever holds complete content.

    Raises:
        OutputError: The folder cannot be created or written (permissions, disk full).
    """
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except OSError as e:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_video_csv(result: VideoResult, path: Path, options: OutputOptions) -> None:
    """Write one row per utterance of ``result`` to ``path`` (header only when none)."""
    d = options.float_digits
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(UTTERANCE_COLUMNS)
    for u in result.utterances:
        s = u.signals
        writer.writerow([
            result.media.path.name, u.utterance.index, _fmt(u.utterance.start_s, 2), _fmt(u.utterance.end_s, 2),
            u.utterance.text, _fmt(u.sentiment, d), u.polarity, s.n_words, _fmt(s.face_coverage, d),
            _fmt(s.asr_word_prob, d), _fmt(s.voiced_share, d), _fmt(s.f0_mean_hz, 1), _fmt(s.loudness_db, 1),
            _fmt(s.smile, d), _fmt(s.brow_down, d),
        ])
    write_atomic(path, buf.getvalue())


def write_summary(rows: Sequence[SummaryRow], path: Path, options: OutputOptions) -> None:
    """Write the batch summary, one row per input, in input order."""
    d = options.float_digits
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for r in rows:
        writer.writerow([
            r.video, r.status, _fmt(r.duration_s, 2), r.utterances, _fmt(r.mean_sentiment, d), r.language,
            _fmt(r.face_coverage, d), _fmt(r.seconds, 2), r.csv, r.error,
        ])
    write_atomic(path, buf.getvalue())
