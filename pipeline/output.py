"""Writing results: one CSV (or JSONL) per video, a summary CSV per batch, always atomically.

A file appears under its final name only once it is complete (written to a temporary
file in the same folder, flushed, then ``os.replace``d), so an interrupted run never
leaves a half-written CSV that a resumed batch would mistake for a finished one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import OutputOptions
from pipeline.errors import OutputError
from pipeline.records import VideoResult

__all__ = ["UTTERANCE_COLUMNS", "SUMMARY_COLUMNS", "OUTPUT_FORMATS", "SummaryRow", "polarity_of",
           "write_video_csv", "write_video_jsonl", "write_video_output", "write_summary", "csv_path_for",
           "output_path_for", "write_atomic", "write_atomic_bytes"]

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
#: Per-video output formats (``--format``): the file suffix is the format's name.
OUTPUT_FORMATS: tuple[str, ...] = ("csv", "jsonl")


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


def output_path_for(video: Path, out_dir: Path, fmt: str = "csv") -> Path:
    """Where the per-video output of ``video`` goes: ``<out_dir>/<stem>.<fmt>``."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")
    return out_dir / f"{video.stem}.{fmt}"


#: The process's umask, read once: ``mkstemp`` makes files 0600, and results should get the
#: permissions any other new file would (0644 under the usual umask 022).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that the final name only ever holds complete content.

    Raises:
        OutputError: The folder cannot be created or written (permissions, disk full).
    """
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Binary ``write_atomic`` (images): temporary file in the same folder, then ``os.replace``.

    Raises:
        OutputError: The folder cannot be created or written (permissions, disk full).
    """
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(data)
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


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def write_video_jsonl(result: VideoResult, path: Path, options: OutputOptions) -> None:
    """Write one JSON object per utterance of ``result`` (the CSV's columns as keys; empty when none).

    Numbers stay numbers, rounded as in the CSV, so a line reads back to the same values.
    """
    d = options.float_digits
    lines = []
    for u in result.utterances:
        s = u.signals
        values = [
            result.media.path.name, u.utterance.index, _rounded(u.utterance.start_s, 2),
            _rounded(u.utterance.end_s, 2), u.utterance.text, _rounded(u.sentiment, d), u.polarity, s.n_words,
            _rounded(s.face_coverage, d), _rounded(s.asr_word_prob, d), _rounded(s.voiced_share, d),
            _rounded(s.f0_mean_hz, 1), _rounded(s.loudness_db, 1), _rounded(s.smile, d), _rounded(s.brow_down, d),
        ]
        lines.append(json.dumps(dict(zip(UTTERANCE_COLUMNS, values)), ensure_ascii=False) + "\n")
    write_atomic(path, "".join(lines))


def write_video_output(result: VideoResult, path: Path, options: OutputOptions, fmt: str = "csv") -> None:
    """Write ``result`` to ``path`` in ``fmt`` ("csv" or "jsonl")."""
    if fmt == "csv":
        write_video_csv(result, path, options)
    elif fmt == "jsonl":
        write_video_jsonl(result, path, options)
    else:
        raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")


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
