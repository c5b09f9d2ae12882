"""Scoring many videos: the batch API the CLI's ``run`` command is a thin layer over.

    from pipeline import score_videos

    for outcome in score_videos([Path("a.mp4"), Path("b.mp4")], out_dir=Path("out"), report=True):
        print(outcome.path, outcome.status, outcome.error or outcome.result.mean_sentiment)

Models are loaded once per process (``engine="local"``) or once per Ray worker
(``engine="ray"``, see ``pipeline.ray_engine``); both run ``pipeline.jobs.score_one``, so
they give the same outcomes in input order and write the same files. A failed input
(``USER_ERRORS``) is an outcome with ``status == "failed"``, never an exception, so the
batch goes on; set-up problems (weights missing, output folder not writable) raise
before any input is scored.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError
from pipeline.inputs import BatchItem, BatchPlan, WriteOptions
from pipeline.jobs import BatchProgress, VideoOutcome, score_one
from pipeline.output import SUMMARY_NAME, Provenance, SummaryRow, check_output, read_summary

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.models import Models

__all__ = ["BatchInterrupted", "ENGINES", "check_writable", "score_videos", "reason_to_rescore"]

#: Statuses of a summary row whose output holds a result.
_DONE_STATUSES = frozenset({"ok", "no_speech", "skipped"})

log = logging.getLogger(__name__)

#: Where a batch runs: this process, or a Ray cluster (``requirements-ray.txt``).
ENGINES: tuple[str, ...] = ("local", "ray")


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``score_videos``; ``outcomes`` holds the inputs finished before it (input order).

    A ``KeyboardInterrupt``, so code that does not care still stops as on any Ctrl-C.
    """

    def __init__(self, outcomes: list[VideoOutcome], total: int) -> None:
        super().__init__(f"interrupted after {len(outcomes)} of {total} input{'' if total == 1 else 's'}")
        self.outcomes = outcomes
        self.total = total


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


def score_videos(
    inputs: Sequence[Path] | BatchPlan,
    config: PipelineConfig | None = None,
    *,
    out_dir: Path | None = None,
    fmt: str | None = None,
    report: bool | None = None,
    progress: BatchProgress | None = None,
    skip_existing: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    models: Models | None = None,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> list[VideoOutcome]:
    """Score many videos, loading the models once, and (with an output folder) write their files.

    Args:
        inputs: Video or audio files, or folders of them (not searched recursively); or a
            ``BatchPlan`` already built from them (it carries the output folder, format and report).
        config: Stage options (default ``PipelineConfig()``).
        out_dir: Write ``<stem>.<fmt>`` (and with ``report`` ``<stem>.png``/``.html``) here;
            None returns the results without writing anything. Not with a ``BatchPlan``.
        fmt: "csv" (default) or "jsonl". Not with a ``BatchPlan``.
        report: Also write the plot and the HTML report (needs ``out_dir``). Not with a ``BatchPlan``.
        progress: Optional per-stage callback, see ``BatchProgress`` (local engine only:
            Ray workers run elsewhere).
        skip_existing: Do not score inputs whose output in ``out_dir`` is already done: it reads
            back completely and ``out_dir/summary.csv`` has its row with this run's weights SHA-256
            and ASR model (``reason_to_rescore``); otherwise it is scored again (logged why).
        engine: "local" (this process) or "ray" (one worker per CPU, one model load each).
        ray_address: Ray cluster to join (engine "ray"); None starts a local Ray.
        models: Models already loaded with ``config`` (local engine): used and left open.
            None loads them for the batch (only if something is to be scored) and releases them after.
        on_outcome: Called with each outcome as it is known (completion order), e.g. to log it.

    Returns:
        One outcome per input, in input order (folders expanded, sorted).

    Raises:
        PipelineError: A path is missing, the output folder is not writable, a bad option,
            or Ray is asked for and not installed.
        ModelNotFoundError, CheckpointError: The models cannot be loaded.
        BatchInterrupted: Ctrl-C; carries the outcomes finished so far.
    """
    if engine not in ENGINES:
        raise PipelineError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if isinstance(inputs, BatchPlan):
        if out_dir is not None or fmt is not None or report is not None:
            raise PipelineError("score_videos: a BatchPlan carries out_dir, fmt and report; do not pass them too")
        plan = inputs
    else:
        plan = BatchPlan.build(inputs, WriteOptions(out_dir, fmt or "csv", bool(report)))
    options = plan.options
    if skip_existing and options.out_dir is None:
        raise PipelineError("skip_existing needs an output folder (out_dir)")
    if models is not None and engine != "local":
        raise PipelineError("score_videos: models= is for the local engine (Ray workers load their own)")
    if options.out_dir is not None:
        check_writable(options.out_dir)
    if config is None:
        from pipeline.config import PipelineConfig

        config = PipelineConfig()

    done: dict[int, VideoOutcome] = {}

    def finish(i: int, outcome: VideoOutcome) -> None:
        done[i] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    earlier: dict[str, SummaryRow] = {}
    provenance = Provenance()
    if skip_existing and options.out_dir is not None:
        earlier = {row.video: row for row in read_summary(options.out_dir / SUMMARY_NAME)}
        provenance = Provenance.of(config.weights_dir, config.asr.model)
    todo: list[tuple[int, BatchItem]] = []
    for i, item in enumerate(plan.items):
        if item.error:
            finish(i, VideoOutcome(item.path, "failed", error=item.error))
            continue
        if skip_existing and item.output is not None and os.path.lexists(item.output):
            row = earlier.get(str(item.path))
            why = reason_to_rescore(item, row, provenance)
            if not why:
                finish(i, VideoOutcome(item.path, "skipped", output=item.output, earlier=row))
                continue
            log.info("%s: %s exists but %s; scoring it again", item.path, item.output, why)
        todo.append((i, item))

    def in_order() -> list[VideoOutcome]:
        return [done[i] for i in sorted(done)]

    if todo:
        try:
            if engine == "ray":
                from pipeline.ray_engine import score_on_ray

                score_on_ray(todo, config, options, finish, address=ray_address)
            else:
                _score_locally(todo, config, options, finish, progress, models)
        except KeyboardInterrupt as e:
            raise BatchInterrupted(in_order(), len(plan.items)) from e
    return in_order()


def reason_to_rescore(item: BatchItem, row: SummaryRow | None, provenance: Provenance) -> str:
    """Why the existing output of ``item`` is not trusted by ``skip_existing`` ("" when it is).

    Trusted: ``summary.csv``'s row for the input (``row``) records a result in this very
    file, made with this run's weights (SHA-256) and ASR model, and the file reads back
    completely with the row's number of utterances (``pipeline.output.check_output``).
    """
    if row is None:
        return f"{SUMMARY_NAME} has no row for this input, so what made it is unknown"
    if row.status not in _DONE_STATUSES:
        return f"its {SUMMARY_NAME} row says {row.status!r}"
    if row.csv != str(item.output):
        return f"its {SUMMARY_NAME} row names another output ({row.csv or 'none'})"
    if not row.weights_sha256 or row.weights_sha256 != provenance.weights_sha256:
        return (f"it was made with other weights (SHA-256 {row.weights_sha256[:12] or 'not recorded'}, "
                f"now {provenance.weights_sha256[:12] or 'unknown'})")
    if row.asr_model != provenance.asr_model:
        return f"it was made with ASR model {row.asr_model or 'not recorded'!r}, now {provenance.asr_model!r}"
    problem = check_output(item.output, row.utterances) if item.output is not None else "no output"
    return f"it is not a complete output: {problem}" if problem else ""


def _score_locally(jobs: list[tuple[int, BatchItem]], config: PipelineConfig, options: WriteOptions,
                   finish: Callable[[int, VideoOutcome], None], progress: BatchProgress | None,
                   models: Models | None) -> None:
    from pipeline.models import Models

    with nullcontext(models) if models is not None else Models.load(config) as loaded:
        for i, item in jobs:
            finish(i, score_one(item, config, loaded, options, progress))
