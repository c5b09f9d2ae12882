"""Writing results: one CSV (or JSONL) per video, a summary CSV per batch, always atomically.

Each kind of output line has one record here, whose fields are its columns in order:
``UtteranceRow`` (``<stem>.csv`` / ``<stem>.jsonl``), ``SummaryRow`` (``summary.csv``)
and ``TextRow`` (``python -m pipeline text``). The CSV writer, the JSONL writer and the
report all read these records, and a CSV or JSONL read back parses into the same record,
so a column is named, typed and rounded in one place.

A file appears under its final name only once it is complete (``storage.files``), so an
interrupted run never leaves a half-written CSV that a resumed batch would mistake for a
finished one. Light on purpose (no NumPy): the CLI imports it before any model.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, get_type_hints

from pipeline.errors import OutputError
from storage.files import open_atomic

if TYPE_CHECKING:
    from pipeline.config import OutputOptions
    from pipeline.records import UtteranceScore, VideoResult

__all__ = ["UTTERANCE_COLUMNS", "SUMMARY_COLUMNS", "TEXT_COLUMNS", "OUTPUT_FORMATS", "UtteranceRow", "SummaryRow",
           "TextRow", "output_path_for", "open_output", "write_rows_csv", "write_video_csv", "write_video_jsonl",
           "write_video_output", "write_summary"]

#: Per-video output formats (``--format``): the file suffix is the format's name.
OUTPUT_FORMATS: tuple[str, ...] = ("csv", "jsonl")


def _decimals(digits: int | None, **default: Any) -> Any:
    """A float column written with ``digits`` decimals (None: ``OutputOptions.float_digits``)."""
    return field(metadata={"digits": digits}, **default)


_SCORE = None  # scores and shares: OutputOptions.float_digits


@dataclass(frozen=True)
class UtteranceRow:
    """One line of ``<stem>.csv`` / ``<stem>.jsonl``: one utterance (field order = column order).

    Floats are rounded as written (``rounded``); a missing value is None (an empty CSV
    cell, JSON null).

    Attributes:
        video: The input's file name.
        utterance: Utterance number (0-based), as the report's bars are labelled.
        start_s: Start, seconds (2 decimals).
        end_s: End, seconds (2 decimals).
        text: The recognised words.
        sentiment: Fused score in [-3, 3] (MOSI scale).
        polarity: "negative", "neutral" or "positive" of ``sentiment`` (``OutputOptions.neutral_band``).
        text_score: The words alone (voice and face masked), [-3, 3].
        voice_score: The voice alone, [-3, 3]; None when the utterance had no voice.
        face_score: The face alone, [-3, 3]; None when no face was seen in the utterance.
        n_words: Words in the utterance.
        face_coverage: Share of sampled frames with the face; None without a sampled frame (no video).
        asr_word_prob: Mean recogniser word probability.
        voiced_share: Share of voiced 10 ms frames; None without voice frames.
        f0_mean_hz: Mean pitch of voiced frames (1 decimal); None when none was voiced.
        loudness_db: Mean frame energy, dB (1 decimal); None without voice frames.
        smile: Mean smile blendshape (0..1); None when no face was seen.
        brow_down: Mean brow-down blendshape (0..1); None when no face was seen.
    """

    video: str
    utterance: int
    start_s: float = _decimals(2)
    end_s: float = _decimals(2)
    text: str
    sentiment: float = _decimals(_SCORE)
    polarity: str
    text_score: float | None = _decimals(_SCORE)
    voice_score: float | None = _decimals(_SCORE)
    face_score: float | None = _decimals(_SCORE)
    n_words: int
    face_coverage: float | None = _decimals(_SCORE)
    asr_word_prob: float | None = _decimals(_SCORE)
    voiced_share: float | None = _decimals(_SCORE)
    f0_mean_hz: float | None = _decimals(1)
    loudness_db: float | None = _decimals(1)
    smile: float | None = _decimals(_SCORE)
    brow_down: float | None = _decimals(_SCORE)

    @classmethod
    def of(cls, result: VideoResult, scored: UtteranceScore, options: OutputOptions) -> UtteranceRow:
        """The row of one scored utterance of ``result``, rounded as written."""
        u, s = scored.utterance, scored.signals
        return cls(
            result.media.path.name, u.index, u.start_s, u.end_s, u.text, scored.sentiment, scored.polarity,
            scored.text_score, scored.voice_score, scored.face_score, s.n_words, s.face_coverage, s.asr_word_prob,
            s.voiced_share, s.f0_mean_hz, s.loudness_db, s.smile, s.brow_down,
        ).rounded(options)

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> UtteranceRow:
        """A row read back from a CSV (strings) or a JSONL line (JSON values).

        Raises:
            KeyError: A column is missing.
            ValueError, TypeError: A value is not of its column's type.
        """
        return _parse(cls, values)

    def rounded(self, options: OutputOptions) -> UtteranceRow:
        """This row with every float rounded to its column's decimals."""
        return _rounded(self, options)


@dataclass(frozen=True)
class SummaryRow:
    """One input's line in ``summary.csv`` (field order = column order).

    Attributes:
        video: The input path as given.
        status: "ok", "no_speech", "skipped" or "failed".
        duration_s: Media duration (None when unreadable).
        utterances: Rows written.
        mean_sentiment: Duration-weighted mean score (None without utterances).
        language: Detected language ("" when nothing was said).
        face_coverage: Share of sampled frames with a face (None without a video track).
        seconds: Wall seconds spent on this input (None when skipped).
        csv: The per-video output written or found (empty when failed).
        error: One-line reason when failed.
    """

    video: str
    status: str
    duration_s: float | None = _decimals(2, default=None)
    utterances: int = 0
    mean_sentiment: float | None = _decimals(_SCORE, default=None)
    language: str = ""
    face_coverage: float | None = _decimals(_SCORE, default=None)
    seconds: float | None = _decimals(2, default=None)
    csv: str = ""
    error: str = ""

    @classmethod
    def from_result(cls, video: Path, result: VideoResult, output: Path, seconds: float) -> SummaryRow:
        """The line of an input that was scored (status "ok" or "no_speech")."""
        return cls(
            video=str(video), status=result.status, duration_s=result.media.duration_s,
            utterances=len(result.utterances), mean_sentiment=result.mean_sentiment,
            language=result.language, face_coverage=result.face_coverage, seconds=seconds, csv=str(output),
        )

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> SummaryRow:
        """A row read back from ``summary.csv`` (raises as ``UtteranceRow.parse``)."""
        return _parse(cls, values)

    def rounded(self, options: OutputOptions) -> SummaryRow:
        """This row with every float rounded to its column's decimals."""
        return _rounded(self, options)


@dataclass(frozen=True)
class TextRow:
    """One line of the CSV of ``python -m pipeline text``: one sentence scored by the text path.

    Attributes:
        line: Line number in the input file (1-based).
        text: The line, stripped.
        sentiment: Score in [-3, 3].
        polarity: "negative", "neutral" or "positive".
    """

    line: int
    text: str
    sentiment: float = _decimals(_SCORE)
    polarity: str

    def rounded(self, options: OutputOptions) -> TextRow:
        """This row with the score rounded as written."""
        return _rounded(self, options)


#: Columns of ``<out>/<stem>.csv`` (and keys of ``<stem>.jsonl``), one row per utterance (documented in README).
UTTERANCE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UtteranceRow))
#: Columns of ``<out>/summary.csv``, one row per input of a batch.
SUMMARY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SummaryRow))
#: Columns of the CSV of ``python -m pipeline text``.
TEXT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TextRow))

Row = TypeVar("Row", UtteranceRow, SummaryRow, TextRow)


def _digits(f: Any, options: OutputOptions) -> int | None:
    """Decimals of a float column (None for a column that is not a float)."""
    if "digits" not in f.metadata:
        return None
    return options.float_digits if f.metadata["digits"] is None else f.metadata["digits"]


def _rounded(row: Row, options: OutputOptions) -> Row:
    changes = {}
    for f in fields(row):
        digits, value = _digits(f, options), getattr(row, f.name)
        if digits is not None and value is not None:
            changes[f.name] = round(float(value), digits)  # float(): NumPy scalars become JSON-able floats
    return replace(row, **changes)


@cache
def _converters(cls: type) -> dict[str, Any]:
    """Column name -> function turning a read-back value (CSV string or JSON value) into the field's type."""
    def optional_float(value: object) -> float | None:
        return None if value is None or value == "" else float(value)  # type: ignore[arg-type]

    def strict_int(value: object) -> int:
        if isinstance(value, float):
            raise ValueError(f"{value!r} is not an integer")
        return int(value)  # type: ignore[call-overload]

    by_type = {str: str, int: strict_int, float: float, float | None: optional_float}
    return {name: by_type[hint] for name, hint in get_type_hints(cls).items()}


def _parse(cls: type[Row], values: Mapping[str, object]) -> Row:
    return cls(**{name: convert(values[name]) for name, convert in _converters(cls).items()})


def _cells(row: Row, options: OutputOptions) -> list[object]:
    """The row as CSV cells: floats with their column's decimals, None as an empty cell."""
    cells: list[object] = []
    for f in fields(row):
        value, digits = getattr(row, f.name), _digits(f, options)
        if value is None:
            cells.append("")
        elif digits is not None:
            cells.append(f"{value:.{digits}f}")
        else:
            cells.append(value)
    return cells


def output_path_for(video: Path, out_dir: Path, fmt: str = "csv") -> Path:
    """Where the per-video output of ``video`` goes: ``<out_dir>/<stem>.<fmt>``."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")
    return out_dir / f"{video.stem}.{fmt}"


@contextmanager
def open_output(path: Path, mode: str = "w") -> Iterator[IO]:
    """``storage.files.open_atomic`` for results: a write error becomes a one-line ``OutputError``.

    Raises:
        OutputError: "cannot write PATH: reason" (folder not writable, disk full, the target
            is a folder, a link or a device).
    """
    try:
        with open_atomic(path, mode) as f:
            yield f
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e


def write_rows_csv(rows: Iterable[Row], columns: tuple[str, ...], out: IO[str], options: OutputOptions) -> None:
    """Write the header ``columns`` and ``rows`` to ``out`` as CSV ("\\n" line ends)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(_cells(row, options) for row in rows)


def _utterance_rows(result: VideoResult, options: OutputOptions) -> Iterator[UtteranceRow]:
    return (UtteranceRow.of(result, u, options) for u in result.utterances)


def write_video_csv(result: VideoResult, path: Path, options: OutputOptions) -> None:
    """Write one row per utterance of ``result`` to ``path`` (header only when none).

    Raises:
        OutputError: The file cannot be written.
    """
    with open_output(path) as f:
        write_rows_csv(_utterance_rows(result, options), UTTERANCE_COLUMNS, f, options)


def write_video_jsonl(result: VideoResult, path: Path, options: OutputOptions) -> None:
    """Write one JSON object per utterance of ``result`` (the CSV's columns as keys; empty when none).

    Numbers stay numbers, rounded as in the CSV, so a line reads back to the same values.

    Raises:
        OutputError: The file cannot be written.
    """
    with open_output(path) as f:
        for row in _utterance_rows(result, options):
            f.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")


def write_video_output(result: VideoResult, path: Path, options: OutputOptions, fmt: str = "csv") -> None:
    """Write ``result`` to ``path`` in ``fmt`` ("csv" or "jsonl")."""
    if fmt == "csv":
        write_video_csv(result, path, options)
    elif fmt == "jsonl":
        write_video_jsonl(result, path, options)
    else:
        raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")


def write_summary(rows: Iterable[SummaryRow], path: Path, options: OutputOptions) -> None:
    """Write the batch summary, one row per input, in input order.

    Raises:
        OutputError: The file cannot be written.
    """
    with open_output(path) as f:
        write_rows_csv(rows, SUMMARY_COLUMNS, f, options)
