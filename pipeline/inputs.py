"""What a batch scores and where each result goes, decided once before any model loads.

    plan = BatchPlan.build([Path("videos/"), Path("talk.mp4")], WriteOptions(Path("out"), "jsonl"))
    plan.items[0].path, plan.items[0].output       # videos/a.mp4, out/a.jsonl

The CLI builds the plan (a missing input is reported before anything heavy is imported)
and hands it to ``pipeline.api.score_videos``; both engines then write exactly
``item.output``. Light on purpose (no NumPy, no torch).

Output names (``output_stems``): each input writes ``<stem>.<fmt>`` (and ``<stem>.png``,
``<stem>.html``), its file stem, unless that name is taken within the batch (compared
ignoring case, as on macOS and Windows) or is ``summary`` (the batch summary's). Every
input of a clashing name then moves one step along: 1. the stem (``clip``); 2. the file
name (``clip.mp4``); 3. the parent folder's name and the file name (``a_clip.mp4``);
4. that and its position among the batch's distinct files (``a_clip.mp4-3``), until no two
are alike. The same file given twice (or a file and the folder it is in) is one input, scored once.
No output may be an input of the same run (the same file once links are resolved, or a hard
link to it): ``BatchPlan.build`` refuses such a plan before anything loads.
``summary.csv`` shows the output of each input in its ``csv`` column. A name longer than the
file system allows (255 bytes with its suffix) fails that input before any model loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.output import OUTPUT_FORMATS, SUMMARY_NAME, output_path_for
from storage.files import outputs_over_inputs, temp_name_bytes

__all__ = ["AUDIO_SUFFIXES", "MEDIA_SUFFIXES", "MAX_NAME_BYTES", "ENGINES", "collect_inputs", "output_stems",
           "WriteOptions", "RunOptions", "BatchItem", "BatchPlan"]

log = logging.getLogger(__name__)

#: Where a batch runs: this process, or a Ray cluster (``requirements-ray.txt``).
ENGINES: tuple[str, ...] = ("local", "ray")

#: A file name's limit on the usual file systems (ext4, APFS, NTFS: 255 bytes or UTF-16 units).
MAX_NAME_BYTES = 255

#: File endings taken from a folder (files named explicitly are always tried).
#: Endings of audio-only formats: a batch of these loads no face models.
AUDIO_SUFFIXES: frozenset[str] = frozenset({".wav", ".mp3", ".flac", ".m4a", ".ogg", ".opus", ".aac"})
MEDIA_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".3gp",
}) | AUDIO_SUFFIXES


def collect_inputs(paths: Sequence[Path]) -> list[Path]:
    """Expand folders to their media files (sorted); keep files as given.

    A folder is listed once; what it holds is not opened here, so a dangling or looping
    link in it is an input like any other (it fails alone, with its reason, when scored).

    Raises:
        PipelineError: A path does not exist or cannot be looked at, a folder cannot be
            listed, or a folder holds no media file.
    """
    return [p for p, _ in _expand(paths)]


def _expand(paths: Sequence[Path]) -> list[tuple[Path, bool]]:
    """(input, found in a folder) for each input of ``paths``, each file once; raises as ``collect_inputs``.

    The same file named twice (``a.mp4 a.mp4``, ``./a.mp4 a.mp4``, ``dir/a.mp4 dir/``) is kept at its
    first place only, with a log line: scoring it twice would give the same rows twice.
    """
    inputs: list[tuple[Path, bool]] = []
    for path in paths:
        is_folder = False
        try:
            is_folder = path.is_dir() and path.suffix.lower() not in MEDIA_SUFFIXES
            exists = path.exists()
            # a sub-folder named like a video is listed too, so that it is reported, not silently passed over
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES) if is_folder else []
        except OSError as e:  # a folder without read permission, or a path inside one without search permission
            raise PipelineError(f"{path}: cannot be {'listed' if is_folder else 'looked at'}: "
                                f"{e.strerror or e}") from e
        if is_folder:
            if not found:
                raise PipelineError(f"{path}: folder holds no media file ({', '.join(sorted(MEDIA_SUFFIXES))})")
            inputs.extend((p, True) for p in found)
        elif exists:
            inputs.append((path, False))  # a directory named like a video is reported by the probe
        else:
            raise PipelineError(f"{path}: no such file or folder")
    unique: dict[str, tuple[Path, bool]] = {}
    for path, in_folder in inputs:
        key = os.path.abspath(path)
        if key in unique:
            log.info("%s is given more than once (or with its folder): scored once", _shown_path(path))
            unique[key] = (unique[key][0], unique[key][1] or in_folder)
        else:
            unique[key] = (path, in_folder)
    return list(unique.values())


def _shown_path(path: Path) -> str:
    """``path`` for a one-line message: control characters (a newline in a file name) escaped."""
    text = str(path)
    return text if text.isprintable() else repr(text)[1:-1]


def _name_at(path: Path, step: int, position: int) -> str:
    """The output stem of ``path`` at collision ``step`` (see the module docstring)."""
    if step == 0:
        return path.stem
    if step == 1:
        return path.name
    parent = path.absolute().parent.name
    name = f"{parent}_{path.name}" if parent else path.name
    return name if step == 2 else f"{name}-{position + 1}"


def output_stems(inputs: Sequence[Path]) -> list[str]:
    """A unique output stem per input, none equal to the summary's (the rule in the module docstring).

    Names are compared ignoring case; an input moves to the next step only while its name
    clashes, so an input without a clash keeps its plain stem. The same file given twice is
    one input (one name): its results are the same.
    """
    reserved = Path(SUMMARY_NAME).stem.casefold()
    first: dict[str, int] = {}
    for i, path in enumerate(inputs):
        first.setdefault(os.path.abspath(path), i)
    unique = [Path(p) for p in first]
    steps = [0] * len(unique)
    while True:
        names = [_name_at(p, step, i) for i, (p, step) in enumerate(zip(unique, steps))]
        seen: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            seen.setdefault(name.casefold(), []).append(i)
        clashing = [i for key, group in seen.items() if len(group) > 1 or key == reserved for i in group]
        clashing = [i for i in clashing if steps[i] < 3]
        if not clashing:
            by_path = dict(zip(first, names))
            return [by_path[os.path.abspath(p)] for p in inputs]
        for i in clashing:
            steps[i] += 1


def _name_problem(stem: str, report: bool, fmt: str) -> str:
    """Why files named ``stem`` + our suffixes cannot be written ("" when they can)."""
    suffixes = [f".{fmt}"] + ([".png", ".html"] if report else [])
    for suffix in suffixes:
        name = stem + suffix
        size = max(len(os.fsencode(name)), temp_name_bytes(name))
        if size > MAX_NAME_BYTES:
            return (f"output name '{name[:40]}...' is {len(os.fsencode(name))} bytes in UTF-8, over the file "
                    f"system's limit of {MAX_NAME_BYTES} bytes for a name; rename the file (shorter stem)")
    return ""


@dataclass(frozen=True)
class WriteOptions:
    """What is written for each input of a batch (sent as is to every Ray worker).

    Attributes:
        out_dir: Folder for ``<stem>.<fmt>`` (and the report); None writes nothing.
        fmt: Per-video output format, one of ``pipeline.output.OUTPUT_FORMATS``.
        report: Also write ``<stem>.png`` and ``<stem>.html`` (needs ``out_dir``).

    Raises:
        PipelineError: An unknown format, or a report without an output folder.
    """

    out_dir: Path | None = None
    fmt: str = "csv"
    report: bool = False

    def __post_init__(self) -> None:
        if self.fmt not in OUTPUT_FORMATS:
            raise PipelineError(f"unknown format {self.fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
        if self.report and self.out_dir is None:
            raise PipelineError("report needs an output folder (out_dir)")


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs (the plan's items and ``WriteOptions`` say what is scored and written).

    Attributes:
        skip_existing: Do not score inputs whose output is already done: it reads back completely
            and ``summary.csv`` has its row with this run's weights SHA-256 and ASR model
            (``pipeline.api.reason_to_rescore``); otherwise it is scored again (logged why).
            Needs an output folder.
        engine: "local" (this process) or "ray" (one worker per CPU, one model load each).
        ray_address: Ray cluster to join (engine "ray"); None starts a local Ray.

    Raises:
        PipelineError: An unknown engine, or an address without the Ray engine.
    """

    skip_existing: bool = False
    engine: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise PipelineError(f"unknown engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.ray_address is not None and self.engine != "ray":
            raise PipelineError("ray_address is for the Ray engine (engine='ray')")


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch.

    Attributes:
        path: The media file (as given, or found in a folder given).
        output: Its ``<out_dir>/<stem>.<fmt>`` (``output_stems``); None when nothing is written
            or the input cannot be scored.
        error: Why the input fails before it is scored (its output name is too long), else "".
    """

    path: Path
    output: Path | None
    error: str = ""


@dataclass(frozen=True)
class BatchPlan:
    """The inputs of a batch, expanded once, each with the file it will write, and how the batch runs:
    the one record ``pipeline.api.score_videos`` takes.

    Attributes:
        items: One per input, in order (folders expanded to their media files, sorted; each file once).
        options: What is written for each.
        is_batch: More than one input, or a folder given: ``summary.csv`` is written.
        run: How the batch runs (skip what is done, engine).
    """

    items: tuple[BatchItem, ...]
    options: WriteOptions
    is_batch: bool
    run: RunOptions = field(default_factory=RunOptions)

    @property
    def summary_path(self) -> Path | None:
        """``<out_dir>/summary.csv``; None when nothing is written."""
        return None if self.options.out_dir is None else self.options.out_dir / SUMMARY_NAME

    def summary_to_write(self) -> Path | None:
        """``summary.csv`` when this batch writes it, else None: written for a batch, when skipping what
        is done (the summary records what made each output), or when the folder has one already (kept
        true); a single input otherwise writes only its own file."""
        path = self.summary_path
        if path is None or not (self.is_batch or self.run.skip_existing or os.path.lexists(path)):
            return None
        return path

    @classmethod
    def build(cls, paths: Sequence[Path], options: WriteOptions | None = None,
              run: RunOptions | None = None) -> BatchPlan:
        """Expand ``paths`` (``collect_inputs``) and name each input's output (``output_stems``).

        Raises:
            PipelineError: A path does not exist, a folder holds no media file, skipping what is
                done without an output folder, or an output (per-video file, report, summary)
                would replace one of the inputs.
        """
        options = options or WriteOptions()
        run = run or RunOptions()
        if run.skip_existing and options.out_dir is None:
            raise PipelineError("skip_existing needs an output folder (out_dir)")
        expanded = _expand([Path(p) for p in paths])
        inputs = [p for p, _ in expanded]
        out_dir = options.out_dir
        items: list[BatchItem] = []
        for path, stem in zip(inputs, output_stems(inputs)):
            if out_dir is None:
                items.append(BatchItem(path, None))
            elif problem := _name_problem(stem, options.report, options.fmt):
                items.append(BatchItem(path, None, f"{path}: {problem}"))
            else:
                items.append(BatchItem(path, output_path_for(path, out_dir, options.fmt, stem)))
        plan = cls(tuple(items), options, len(items) > 1 or any(in_folder for _, in_folder in expanded), run)
        plan.check_outputs_spare_inputs()
        return plan

    def outputs(self) -> list[Path]:
        """Every file this plan may write: per-video outputs, reports and ``summary.csv``."""
        if self.options.out_dir is None:
            return []
        from pipeline.report import report_paths

        paths = [self.options.out_dir / SUMMARY_NAME]
        for item in self.items:
            if item.output is not None:
                paths.append(item.output)
                if self.options.report:
                    paths.extend(report_paths(item.output.parent, item.output.stem))
        return paths

    def check_outputs_spare_inputs(self) -> None:
        """Refuse a plan whose outputs would replace one of its inputs (compared by path and inode only).

        Raises:
            PipelineError: Naming the first such output and input.
        """
        clashes = outputs_over_inputs([item.path for item in self.items], self.outputs())
        if clashes:
            output, source = clashes[0]
            more = f" ({len(clashes) - 1} more)" if len(clashes) > 1 else ""
            raise PipelineError(f"{_shown_path(output)} would be written over the input {_shown_path(source)}"
                                f"{more}; nothing was scored: write the outputs to another folder")
