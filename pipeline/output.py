"""Writing results: one CSV (or JSONL) per video, a summary CSV per batch, always atomically.

Each kind of output line has one record here, whose fields are its columns in order:
``UtteranceRow`` (``<stem>.csv`` / ``<stem>.jsonl``), ``SummaryRow`` (``summary.csv``)
and ``TextRow`` (``python -m pipeline text``). The CSV writer, the JSONL writer and the
report all read these records, and a CSV or JSONL read back parses into the same record,
so a column is named, typed and rounded in one place.

A file appears under its final name only once it is complete (``storage.files``), so an
interrupted run never leaves a half-written CSV that a resumed batch would mistake for a
finished one. What made a result (``Provenance``: weights SHA-256, ASR model, project
version) goes into its ``summary.csv`` row, which runs update under a lock
(``merge_summary``), and ``--skip-existing`` trusts an output only when it reads back
completely (``check_output``) and its row has this run's provenance.
Light on purpose (no NumPy): the CLI imports it before any model.
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, get_type_hints

from pipeline.errors import OutputError, PipelineError
from storage.files import open_atomic

if TYPE_CHECKING:
    from pipeline.config import OutputOptions
    from pipeline.records import UtteranceScore, VideoResult

__all__ = ["UTTERANCE_COLUMNS", "SUMMARY_COLUMNS", "TEXT_COLUMNS", "OUTPUT_FORMATS", "SUMMARY_NAME",
           "SUMMARY_LOCK_NAME", "MAX_LINE_BYTES", "Provenance", "UtteranceRow", "SummaryRow", "TextRow",
           "output_path_for", "open_output", "write_rows_csv", "write_video_csv", "write_video_jsonl",
           "write_video_output", "write_summary", "read_summary", "merge_summary", "iter_output_rows",
           "check_output", "regular_file_problem"]

log = logging.getLogger(__name__)

#: Per-video output formats (``--format``): the file suffix is the format's name.
OUTPUT_FORMATS: tuple[str, ...] = ("csv", "jsonl")
#: The batch summary's file name in the output folder (no per-video output is ever given this name).
SUMMARY_NAME = "summary.csv"
#: Lock file beside ``summary.csv``, held while a run reads, merges and rewrites it.
SUMMARY_LOCK_NAME = ".summary.lock"
#: Longest line read back from a JSONL output (a CSV field keeps ``csv.field_size_limit``, 131,072
#: characters): our rows are far shorter; a longer line is not our output and is not loaded.
MAX_LINE_BYTES = 1 << 20
#: Largest weights config.json read here for its SHA-256 (a light read: loading the weights checks the
#: config against ``model.checkpoint.MAX_CONFIG_BYTES`` and its schema; a real config is a few hundred KB).
_MAX_WEIGHTS_CONFIG_BYTES = 1 << 20
#: Distribution whose version is recorded (pyproject.toml); the constant when it is not installed.
_DISTRIBUTION, _VERSION_UNINSTALLED = "miar-sentiment", "0.1.0+uninstalled"


@dataclass(frozen=True)
class Provenance:
    """What made a result, recorded in its ``summary.csv`` row.

    Attributes:
        weights_sha256: ``model_sha256`` of the weights' config.json ("" when it cannot be read;
            the models then fail to load anyway).
        asr_model: The Whisper model as configured (``AsrOptions.model``: a name or a folder).
        version: This project's version (``importlib.metadata``, distribution "miar-sentiment").
    """

    weights_sha256: str = ""
    asr_model: str = ""
    version: str = ""

    @classmethod
    def of(cls, weights_dir: Path, asr_model: str) -> Provenance:
        """The provenance of a run with these weights and ASR model (reads config.json only: light)."""
        return cls(_weights_sha256(Path(weights_dir)), str(asr_model), _version())


def _weights_sha256(weights_dir: Path) -> str:
    config = weights_dir / "config.json"
    try:
        if config.stat().st_size > _MAX_WEIGHTS_CONFIG_BYTES or regular_file_problem(config):
            return ""
        with open(config, encoding="utf-8") as f:
            sha = json.load(f).get("model_sha256", "")
    except (OSError, ValueError, AttributeError, RecursionError):
        return ""
    return sha if isinstance(sha, str) else ""


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DISTRIBUTION)
    except PackageNotFoundError:
        return _VERSION_UNINSTALLED


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
        weights_sha256: SHA-256 of the MIAR weights (``Provenance``); for "skipped", that of the earlier run.
        asr_model: The Whisper model.
        version: This project's version.
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
    weights_sha256: str = ""
    asr_model: str = ""
    version: str = ""

    @classmethod
    def from_result(cls, video: Path, result: VideoResult, output: Path, seconds: float,
                    provenance: Provenance = Provenance()) -> SummaryRow:
        """The line of an input that was scored (status "ok" or "no_speech")."""
        return cls(
            video=str(video), status=result.status, duration_s=result.media.duration_s,
            utterances=len(result.utterances), mean_sentiment=result.mean_sentiment,
            language=result.language, face_coverage=result.face_coverage, seconds=seconds, csv=str(output),
            **asdict(provenance),
        )

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> SummaryRow:
        """A row read back from ``summary.csv`` (raises as ``UtteranceRow.parse``).

        A summary written before provenance was recorded parses with empty provenance.
        """
        return _parse(cls, values, optional=frozenset(f.name for f in fields(Provenance)))

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.weights_sha256, self.asr_model, self.version)

    def rounded(self, options: OutputOptions) -> SummaryRow:
        """This row with every float rounded to its column's decimals."""
        return _rounded(self, options)


@dataclass(frozen=True)
class TextRow:
    """One line of the CSV of ``python -m pipeline text``: one line scored by the text path.

    Attributes:
        line: Line number in the input file (1-based).
        text: The line, stripped.
        sentiment: Score in [-3, 3]; None (empty) when the line was not scored: it looks like
            another language and ``--language en`` was not given.
        polarity: "negative", "neutral" or "positive"; "" when not scored.
        language: The language check's result (``pipeline.languages.check_text_language``): "en",
            or the language the line looks like (also when ``--language en`` scored it anyway).
    """

    line: int
    text: str
    sentiment: float | None = _decimals(_SCORE)
    polarity: str
    language: str

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


def _parse(cls: type[Row], values: Mapping[str, object], optional: frozenset[str] = frozenset()) -> Row:
    return cls(**{name: convert(values[name]) for name, convert in _converters(cls).items()
                  if name in values or name not in optional})


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


def output_path_for(video: Path, out_dir: Path, fmt: str = "csv", stem: str | None = None) -> Path:
    """Where the per-video output of ``video`` goes: ``<out_dir>/<stem>.<fmt>``.

    ``stem`` defaults to the video's own; a batch gives another one on a name collision
    (``pipeline.inputs.output_stems``).
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")
    return out_dir / f"{video.stem if stem is None else stem}.{fmt}"


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


def write_rows_csv(rows: Iterable[Row], columns: tuple[str, ...], out: IO[str], options: OutputOptions,
                   header: bool = True) -> None:
    """Write the header ``columns`` (unless ``header`` is False: rows added to a file) and ``rows``
    to ``out`` as CSV ("\\n" line ends)."""
    writer = csv.writer(out, lineterminator="\n")
    if header:
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


def regular_file_problem(path: Path) -> str:
    """"" when ``path`` (followed through links) is a regular file, else why it is not read.

    Checked before opening, so a FIFO or a device named ``*.csv`` is never opened (a FIFO's
    open blocks until a writer appears).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return ""
    return "is a folder" if stat.S_ISDIR(mode) else "is not a regular file (a device, pipe or socket)"


def read_summary(path: Path) -> list[SummaryRow]:
    """The rows of a ``summary.csv``, tolerantly: what cannot be read is left out with a warning.

    A missing file gives no rows; a file that is not UTF-8 is read as Latin-1 (with a warning);
    a row that does not parse (a foreign or hand-edited summary) is dropped with a warning.
    Never raises for the file's content: a summary is an index, not a result.
    """
    if not os.path.lexists(path):
        return []
    problem = regular_file_problem(path)
    if problem:
        log.warning("%s %s; its rows are not used", path, problem)
        return []
    for encoding in ("utf-8", "latin-1"):
        try:
            return _summary_rows(path, encoding)
        except UnicodeDecodeError as e:
            log.warning("%s is not UTF-8 (byte %#x at %d); reading it as Latin-1", path, e.object[e.start], e.start)
        except (OSError, csv.Error) as e:
            log.warning("%s cannot be read (%s); its rows are not used", path, e)
            return []
    return []


def _summary_rows(path: Path, encoding: str) -> list[SummaryRow]:
    rows, bad = [], []
    with open(path, encoding=encoding, newline="") as f:
        for n, values in enumerate(csv.DictReader(f), 2):
            try:
                rows.append(SummaryRow.parse(values))
            except (KeyError, TypeError, ValueError) as e:
                bad.append(f"line {n}: {e!r}"[:200])
    if bad:
        log.warning("%s: %d row%s not a summary row, left out (%s)", path, len(bad), "" if len(bad) == 1 else "s",
                    bad[0])
    return rows


def merge_summary(rows: Iterable[SummaryRow], path: Path, options: OutputOptions) -> list[SummaryRow]:
    """Add this run's rows to ``summary.csv``, keeping the other inputs' rows; returns the rows written (rounded).

    Under an exclusive lock on ``SUMMARY_LOCK_NAME`` beside it, so runs into one folder at the
    same time never lose each other's rows. An earlier row is replaced when it is for the same
    input (``video`` as given) or names an output this run wrote (that file now holds this
    run's result); other rows are kept in their order, this run's rows follow in input order.

    Raises:
        OutputError: The summary or its lock cannot be written.
    """
    rows = list(rows)
    videos = {r.video for r in rows}
    outputs = {r.csv for r in rows if r.csv}
    lock_path = path.parent / SUMMARY_LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as e:
        raise OutputError(f"cannot write {lock_path}: {e.strerror or e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        kept = [r for r in read_summary(path) if r.video not in videos and r.csv not in outputs]
        merged = [r.rounded(options) for r in kept + rows]
        write_summary(merged, path, options)
    finally:
        os.close(fd)  # releases the lock
    return merged


def iter_output_rows(path: Path) -> Iterator[tuple[int, UtteranceRow | None, str]]:
    """Read a per-video CSV or JSONL back row by row: ``(line, row, "")`` or ``(line, None, why)``.

    Memory stays flat in the file's size: one row at a time; a CSV field over
    ``csv.field_size_limit`` or a JSONL line over ``MAX_LINE_BYTES`` stops the reading.

    Raises:
        PipelineError: "PATH: why" when the file as a whole is not ours: not a regular file,
            unreadable, not UTF-8, a CSV whose header is not ``UTTERANCE_COLUMNS``, an over-long
            field or line.
    """
    problem = regular_file_problem(path)
    if problem:
        raise PipelineError(f"{path} {problem}")
    try:
        if path.suffix == ".jsonl":
            yield from _jsonl_rows(path)
        else:
            yield from _csv_rows(path)
    except UnicodeDecodeError as e:
        raise PipelineError(f"{path}: byte {e.object[e.start]:#x} is not UTF-8: not an output of the pipeline") from e
    except csv.Error as e:
        raise PipelineError(f"{path}: not a CSV of the pipeline ({e})") from e
    except OSError as e:
        raise PipelineError(f"{path}: cannot read: {e.strerror or e}") from e


def _csv_rows(path: Path) -> Iterator[tuple[int, UtteranceRow | None, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise PipelineError(f"{path}: empty, no header: not a per-video output of the pipeline")
        if tuple(header) != UTTERANCE_COLUMNS:
            raise PipelineError(f"{path}: not a per-video output of the pipeline (columns differ)")
        for cells in reader:
            line = reader.line_num
            if len(cells) != len(UTTERANCE_COLUMNS):
                yield line, None, f"{len(cells)} fields, the header has {len(UTTERANCE_COLUMNS)}"
                continue
            yield _parsed(line, dict(zip(UTTERANCE_COLUMNS, cells)))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, UtteranceRow | None, str]]:
    with open(path, "rb") as f:
        line = 0
        while chunk := f.readline(MAX_LINE_BYTES + 1):
            line += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                raise PipelineError(f"{path}:{line}: a line longer than {MAX_LINE_BYTES:,} bytes: "
                                    "not an output of the pipeline")
            text = chunk.decode("utf-8").strip()
            if not text:
                continue
            try:
                values = json.loads(text)
            except (ValueError, RecursionError) as e:
                yield line, None, f"not JSON ({e})"[:200]
                continue
            if not isinstance(values, dict):
                yield line, None, f"a JSON {type(values).__name__}, not an object"
                continue
            yield _parsed(line, values)


def _parsed(line: int, values: Mapping[str, object]) -> tuple[int, UtteranceRow | None, str]:
    try:
        return line, UtteranceRow.parse(values), ""
    except (KeyError, TypeError, ValueError) as e:
        return line, None, f"not a pipeline output row ({e!r})"[:200]


def check_output(path: Path, expected_rows: int | None = None) -> str:
    """"" when ``path`` is a complete per-video output of ours, else why it is not.

    Complete: a regular file that ends with a line end (or, for JSONL, is empty: no
    utterance), a CSV with exactly our header, every row parsing as ``UtteranceRow``, and
    (when given) ``expected_rows`` rows. An empty, truncated, binary or foreign file fails.
    """
    problem = regular_file_problem(path)
    if problem:
        return f"it {problem}"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    return "it does not end with a line end (truncated?)"
    except OSError as e:
        return f"it cannot be read ({e.strerror or e})"
    if size == 0 and path.suffix != ".jsonl":
        return "it is empty"
    count = 0
    try:
        for line, row, why in iter_output_rows(path):
            if row is None:
                return f"line {line}: {why}"
            count += 1
    except PipelineError as e:
        return str(e).removeprefix(f"{path}").lstrip(": ")
    if expected_rows is not None and count != expected_rows:
        return f"it has {count} rows, its summary.csv row says {expected_rows}"
    return ""
