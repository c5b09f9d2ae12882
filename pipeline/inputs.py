"""What a batch scores and where each result goes, decided once before any model loads.

    plan = BatchPlan.build([Path("videos/"), Path("talk.mp4")], WriteOptions(Path("out"), "jsonl"))
    plan.items[0].path, plan.items[0].output       # videos/a.mp4, out/a.jsonl

The CLI builds the plan (a missing input is reported before anything heavy is imported)
and hands it to ``pipeline.api.score_videos``; both engines then write exactly
``item.output``. Light on purpose (no NumPy, no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.output import OUTPUT_FORMATS, output_path_for

__all__ = ["MEDIA_SUFFIXES", "collect_inputs", "WriteOptions", "BatchItem", "BatchPlan"]

#: File endings taken from a folder (files named explicitly are always tried).
MEDIA_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".3gp",
    ".wav", ".mp3", ".flac", ".m4a", ".ogg", ".opus", ".aac",
})


def collect_inputs(paths: Sequence[Path]) -> list[Path]:
    """Expand folders to their media files (sorted); keep files as given.

    Raises:
        PipelineError: A path does not exist, or a folder holds no media file.
    """
    inputs: list[Path] = []
    for path in paths:
        if path.is_dir() and path.suffix.lower() not in MEDIA_SUFFIXES:
            # a sub-folder named like a video is listed too, so that it is reported, not silently passed over
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES)
            if not found:
                raise PipelineError(f"{path}: folder holds no media file ({', '.join(sorted(MEDIA_SUFFIXES))})")
            inputs.extend(found)
        elif path.exists():
            inputs.append(path)  # a directory named like a video is reported by the probe
        else:
            raise PipelineError(f"{path}: no such file or folder")
    return inputs


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
class BatchItem:
    """One input of a batch.

    Attributes:
        path: The media file (as given, or found in a folder given).
        output: Its ``<out_dir>/<stem>.<fmt>``; None when nothing is written.
    """

    path: Path
    output: Path | None


@dataclass(frozen=True)
class BatchPlan:
    """The inputs of a batch, expanded once, each with the file it will write.

    Attributes:
        items: One per input, in order (folders expanded to their media files, sorted).
        options: What is written for each.
        is_batch: More than one input, or a folder given: the CLI writes ``summary.csv``.
    """

    items: tuple[BatchItem, ...]
    options: WriteOptions
    is_batch: bool

    @classmethod
    def build(cls, paths: Sequence[Path], options: WriteOptions | None = None) -> BatchPlan:
        """Expand ``paths`` (``collect_inputs``) and name each input's output.

        Raises:
            PipelineError: A path does not exist, or a folder holds no media file.
        """
        options = options or WriteOptions()
        paths = [Path(p) for p in paths]
        inputs = collect_inputs(paths)
        out_dir = options.out_dir
        items = tuple(BatchItem(p, None if out_dir is None else output_path_for(p, out_dir, options.fmt))
                      for p in inputs)
        return cls(items, options, len(items) > 1 or any(p.is_dir() for p in paths))
