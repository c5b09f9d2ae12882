"""Scoring many videos: the batch API the CLI's ``run`` command is a thin layer over.

    from pipeline import score_videos

    for outcome in score_videos([Path("a.mp4"), Path("b.mp4")], out_dir=Path("out"), report=True):
        print(outcome.path, outcome.status, outcome.error or outcome.result.mean_sentiment)

Models are loaded once per process (``engine="local"``) or once per Ray worker
(``engine="ray"``, see ``pipeline.ray_engine``); both give the same outcomes in input
order and write the same files. A failed input (``USER_ERRORS``) is an outcome with
``status == "failed"``, never an exception, so the batch goes on; set-up problems
(weights missing, output folder not writable) raise before any input is scored.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.errors import USER_ERRORS, PipelineError
from pipeline.output import (
    OUTPUT_FORMATS,
    SummaryRow,
    output_path_for,
    write_video_output,
)
from pipeline.records import VideoResult

__all__ = ["VideoOutcome", "BatchInterrupted", "BatchProgress", "ENGINES", "MEDIA_SUFFIXES", "collect_inputs",
           "check_writable", "score_videos", "score_one"]

log = logging.getLogger(__name__)

#: ``progress(video, stage, done, total)``: ``pipeline.run.Progress`` for the named input.
BatchProgress = Callable[[Path, str, float, float], None]
#: Where a batch runs: this process, or a Ray cluster (``requirements-ray.txt``).
ENGINES: tuple[str, ...] = ("local", "ray")

#: File endings taken from a folder (files named explicitly are always tried).
MEDIA_SUFFIXES: frozenset[str] = frozenset({
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".3gp",
    ".wav", ".mp3", ".flac", ".m4a", ".ogg", ".opus", ".aac",
})


@dataclass(frozen=True)
class VideoOutcome:
    """What became of one input of a batch.

    Attributes:
        path: The input as given.
        status: "ok", "no_speech", "skipped" (output existed, ``skip_existing``) or "failed".
        result: The scores (None when skipped or failed).
        error: One-line reason when failed, else "".
        output: The per-video CSV/JSONL written or found (None when failed or no ``out_dir``).
        seconds: Wall seconds spent on this input (0 when skipped).
    """

    path: Path
    status: str
    result: VideoResult | None = None
    error: str = ""
    output: Path | None = None
    seconds: float = 0.0

    def summary_row(self) -> SummaryRow:
        """This outcome's line in ``summary.csv``."""
        if self.result is not None:
            return SummaryRow.from_result(self.path, self.result, self.output or Path(""), self.seconds)
        seconds = self.seconds if self.status == "failed" else None
        return SummaryRow(str(self.path), self.status, seconds=seconds,
                          csv=str(self.output) if self.output else "", error=self.error)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``score_videos``; ``outcomes`` holds the inputs finished before it (input order).

    A ``KeyboardInterrupt``, so code that does not care still stops as on any Ctrl-C.
    """

    def __init__(self, outcomes: list[VideoOutcome], total: int) -> None:
        super().__init__(f"interrupted after {len(outcomes)} of {total} inputs")
        self.outcomes = outcomes
        self.total = total


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


def check_writable(folder: Path) -> None:
    """Fail before any model loads when results could not be written anyway.

    Raises:
        PipelineError: ``folder`` cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise PipelineError(f"output folder {folder} is not writable: {e.strerror or e}") from e


def score_one(video: Path, config: PipelineConfig, models: object, *, out_dir: Path | None, fmt: str,
              report: bool, progress: BatchProgress | None = None) -> VideoOutcome:
    """Score one input and write its files; a ``USER_ERRORS`` failure becomes a "failed" outcome.

    The report goes first and the CSV/JSONL last: the per-video output is what
    ``skip_existing`` looks for, so it must only exist once everything else does.
    Shared by the local and the Ray engine, so both write exactly the same files.
    """
    from pipeline.run import score_video

    started = time.perf_counter()
    target = output_path_for(video, out_dir, fmt) if out_dir is not None else None
    stage_progress = None if progress is None else (lambda stage, done, total: progress(video, stage, done, total))
    try:
        result = score_video(video, config, models, progress=stage_progress)  # type: ignore[arg-type]
        if out_dir is not None and target is not None:
            if report:
                from pipeline.report import write_report

                write_report(result, out_dir, config.output)
            write_video_output(result, target, config.output, fmt)
    except USER_ERRORS as e:
        return VideoOutcome(video, "failed", error=str(e), seconds=time.perf_counter() - started)
    return VideoOutcome(video, result.status, result, output=target, seconds=time.perf_counter() - started)


def score_videos(
    paths: Sequence[Path],
    config: PipelineConfig | None = None,
    *,
    out_dir: Path | None = None,
    progress: BatchProgress | None = None,
    skip_existing: bool = False,
    report: bool = False,
    fmt: str = "csv",
    engine: str = "local",
    ray_address: str | None = None,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> list[VideoOutcome]:
    """Score many videos, loading the models once, and (with ``out_dir``) write their files.

    Args:
        paths: Video or audio files, or folders of them (not searched recursively).
        config: Stage options (default ``PipelineConfig()``).
        out_dir: Write ``<stem>.<fmt>`` (and with ``report`` ``<stem>.png``/``.html``) here;
            None returns the results without writing anything.
        progress: Optional per-stage callback, see ``BatchProgress`` (local engine only:
            Ray workers run elsewhere).
        skip_existing: Do not score inputs whose ``<stem>.<fmt>`` already exists in ``out_dir``.
        report: Also write the plot and the HTML report (needs ``out_dir``).
        fmt: "csv" or "jsonl".
        engine: "local" (this process) or "ray" (one worker per CPU, one model load each).
        ray_address: Ray cluster to join (engine "ray"); None starts a local Ray.
        on_outcome: Called with each outcome as it is known (completion order), e.g. to log it.

    Returns:
        One outcome per input, in input order (folders expanded, sorted).

    Raises:
        PipelineError: A path is missing, the output folder is not writable, a bad option,
            or Ray is asked for and not installed.
        ModelNotFoundError, CheckpointError: The models cannot be loaded.
        BatchInterrupted: Ctrl-C; carries the outcomes finished so far.
    """
    config = config or PipelineConfig()
    if fmt not in OUTPUT_FORMATS:
        raise PipelineError(f"unknown format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    if engine not in ENGINES:
        raise PipelineError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if (report or skip_existing) and out_dir is None:
        raise PipelineError("report and skip_existing need an output folder (out_dir)")
    inputs = collect_inputs(paths)
    if out_dir is not None:
        check_writable(out_dir)

    done: dict[int, VideoOutcome] = {}

    def finish(i: int, outcome: VideoOutcome) -> None:
        done[i] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    todo: list[int] = []
    for i, video in enumerate(inputs):
        target = output_path_for(video, out_dir, fmt) if out_dir is not None else None
        if skip_existing and target is not None and target.exists():
            finish(i, VideoOutcome(video, "skipped", output=target))
        else:
            todo.append(i)

    def in_order() -> list[VideoOutcome]:
        return [done[i] for i in sorted(done)]

    if todo:
        options = {"out_dir": out_dir, "fmt": fmt, "report": report}
        try:
            if engine == "ray":
                from pipeline.ray_engine import score_on_ray

                score_on_ray([(i, inputs[i]) for i in todo], config, options, finish, address=ray_address)
            else:
                _score_locally([(i, inputs[i]) for i in todo], config, options, finish, progress)
        except KeyboardInterrupt as e:
            raise BatchInterrupted(in_order(), len(inputs)) from e
    return in_order()


def _score_locally(jobs: list[tuple[int, Path]], config: PipelineConfig, options: dict,
                   finish: Callable[[int, VideoOutcome], None], progress: BatchProgress | None) -> None:
    from pipeline.run import Models

    with Models.load(config) as models:
        for i, video in jobs:
            finish(i, score_one(video, config, models, progress=progress, **options))
