"""One input of a batch, scored and written: the unit both engines run.

``pipeline.api`` runs ``score_one`` in this process; ``pipeline.ray_engine`` runs it in
each Ray worker. Both import it from here (neither imports the other's module), so
outcomes, files and failures are the same on either engine. Importing this module
loads no model library: scoring is imported when an input is scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import USER_ERRORS
from pipeline.inputs import BatchItem, WriteOptions
from pipeline.output import Provenance, SummaryRow, write_video_output

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.models import Models
    from pipeline.records import VideoResult

__all__ = ["BatchProgress", "VideoOutcome", "score_one"]

#: ``progress(video, stage, done, total)``: ``pipeline.features.Progress`` for the named input.
BatchProgress = Callable[[Path, str, float, float], None]


@dataclass(frozen=True)
class VideoOutcome:
    """What became of one input of a batch.

    Attributes:
        path: The input as given.
        status: "ok", "no_speech", "skipped" (output existed, ``skip_existing``) or "failed".
        result: The scores (None when skipped or failed).
        error: One-line reason when failed, else "".
        output: The per-video CSV/JSONL written or found (None when failed or nothing is written).
        seconds: Wall seconds spent on this input (0 when skipped).
        earlier: For "skipped": the input's row in the existing ``summary.csv`` (its figures
            and provenance are carried over).
    """

    path: Path
    status: str
    result: VideoResult | None = None
    error: str = ""
    output: Path | None = None
    seconds: float = 0.0
    earlier: SummaryRow | None = None

    def summary_row(self, provenance: Provenance = Provenance()) -> SummaryRow:
        """This outcome's line in ``summary.csv``; ``provenance``: what this run scores with.

        A skipped input keeps its earlier row's figures and provenance (what its output was
        made with), with status "skipped".
        """
        if self.result is not None:
            return SummaryRow.from_result(self.path, self.result, self.output or Path(""), self.seconds, provenance)
        output = str(self.output) if self.output else ""
        if self.status == "skipped" and self.earlier is not None:
            return replace(self.earlier, video=str(self.path), status="skipped", csv=output, error="")
        seconds = self.seconds if self.status == "failed" else None
        return SummaryRow(str(self.path), self.status, seconds=seconds, csv=output, error=self.error,
                          **({} if self.status == "skipped" else vars(provenance)))


def score_one(item: BatchItem, config: PipelineConfig, models: Models, options: WriteOptions,
              progress: BatchProgress | None = None) -> VideoOutcome:
    """Score one input and write its files; a ``USER_ERRORS`` failure becomes a "failed" outcome.

    The report goes first and the CSV/JSONL last: the per-video output is what
    ``skip_existing`` looks for, so it must only exist once everything else does.

    Args:
        item: The input and its output path.
        config: Stage options.
        models: Loaded models (all parts).
        options: What to write (the same for every input of the batch).
        progress: Optional per-stage callback.
    """
    from pipeline.score import score_video

    started = time.perf_counter()
    video = item.path
    stage_progress = None if progress is None else (lambda stage, done, total: progress(video, stage, done, total))
    try:
        result = score_video(video, config, models, progress=stage_progress)
        if item.output is not None and options.out_dir is not None:
            if options.report:
                from pipeline.report import write_report

                write_report(result, options.out_dir, config.output, item.output.stem)
            write_video_output(result, item.output, config.output, options.fmt)
    except USER_ERRORS as e:
        return VideoOutcome(video, "failed", error=str(e), seconds=time.perf_counter() - started)
    return VideoOutcome(video, result.status, result, output=item.output, seconds=time.perf_counter() - started)
