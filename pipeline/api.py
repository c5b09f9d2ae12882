"""Scoring many videos: the batch API the CLI's ``run`` command is a thin layer over.

    from pipeline import BatchPlan, RunOptions, WriteOptions, score_videos

    plan = BatchPlan.build([Path("a.mp4"), Path("videos/")], WriteOptions(Path("out"), report=True),
                           RunOptions(skip_existing=True))
    for outcome in score_videos(plan):
        print(outcome.path, outcome.status, outcome.error or outcome.result.mean_sentiment)

One record says what to do (``pipeline.inputs.BatchPlan``: the inputs with their output files,
``WriteOptions``, ``RunOptions``); a plain list of paths is a plan that writes nothing.
Models are loaded once per process (``engine="local"``) or once per Ray worker
(``engine="ray"``, see ``pipeline.ray_engine``); both run ``pipeline.jobs.score_one``, so
they give the same outcomes in input order and write the same files. A failed input
(``USER_ERRORS``) is an outcome with ``status == "failed"``, never an exception, so the
batch goes on; set-up problems (output folder not writable) raise before any input is
scored, and models that cannot be loaded (weights missing) before any input's outcome is
recorded: only Whisper is loaded before the first input starts, the rest load beside it
(``_score_locally``).

``summary.csv`` is written here, not by the CLI, so a library batch resumes as the CLI's does:
for a batch (or with ``skip_existing``, or when the folder has one already) each input's row is
merged into it under its lock as soon as the input is done, so a batch killed by any signal
(SIGKILL included) leaves a summary that names every output completed before the kill;
at the end the rows are merged once more in input order.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import OutputError, PipelineError
from pipeline.inputs import AUDIO_SUFFIXES, ENGINES, BatchItem, BatchPlan, WriteOptions
from pipeline.jobs import BatchProgress, VideoOutcome, score_one
from pipeline.output import SUMMARY_NAME, Provenance, SummaryRow, check_output, merge_summary, read_summary
from storage.files import not_a_folder

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.models import Models

__all__ = ["BatchInterrupted", "ENGINES", "check_writable", "score_videos", "reason_to_rescore"]

#: Statuses of a summary row whose output holds a result.
_DONE_STATUSES = frozenset({"ok", "no_speech", "skipped"})

log = logging.getLogger(__name__)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a signal the caller turns into ``KeyboardInterrupt``) during ``score_videos``;
    ``outcomes`` holds the inputs finished before it (input order), whose summary rows are written.

    A ``KeyboardInterrupt``, so code that does not care still stops as on any Ctrl-C.
    """

    def __init__(self, outcomes: list[VideoOutcome], total: int) -> None:
        super().__init__(f"interrupted after {len(outcomes)} of {total} input{'' if total == 1 else 's'}")
        self.outcomes = outcomes
        self.total = total


def check_writable(folder: Path) -> None:
    """Fail before any model loads when results could not be written anyway.

    Raises:
        PipelineError: ``folder`` (or a folder above it) is a file, or ``folder`` cannot be
            created or written.
    """
    blocker = not_a_folder(folder)
    if blocker is not None:
        what = "is a file" if blocker == folder else f"cannot be made: {blocker} is a file"
        raise PipelineError(f"output folder {folder} {what}, not a folder; the outputs (<stem>.csv per input, "
                            "summary.csv) go into a folder: name one (it is created when missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise PipelineError(f"output folder {folder} is not writable: {e.strerror or e}") from e


def score_videos(
    inputs: BatchPlan | Sequence[Path],
    config: PipelineConfig | None = None,
    *,
    models: Models | None = None,
    progress: BatchProgress | None = None,
    on_outcome: Callable[[VideoOutcome], None] | None = None,
) -> list[VideoOutcome]:
    """Score many videos, loading the models once, and (with an output folder) write their files.

    Args:
        inputs: The batch (``BatchPlan.build(paths, WriteOptions(...), RunOptions(...))``: the inputs,
            each with its output file, what is written, how it runs); or video/audio files and
            folders of them, scored without writing anything (``BatchPlan.build(inputs)``).
        config: Stage options (default ``PipelineConfig()``).
        models: Models already loaded with ``config`` (local engine): used and left open.
            None loads them for the batch (only if something is to be scored; Whisper first, the
            rest while the first input is decoded and transcribed) and releases them after.
        progress: Optional per-stage callback, see ``BatchProgress`` (local engine only:
            Ray workers run elsewhere).
        on_outcome: Called with each outcome as it is known (completion order), e.g. to log it;
            its summary row is already written.

    Returns:
        One outcome per input, in input order (folders expanded, sorted).

    Raises:
        PipelineError: A path is missing, an output would replace an input, the output folder is
            not writable, a bad option, or Ray is asked for and not installed.
        OutputError: ``summary.csv`` cannot be written (after the batch ran).
        ModelNotFoundError, CheckpointError: The models cannot be loaded.
        BatchInterrupted: Ctrl-C; carries the outcomes finished so far.
    """
    plan = inputs if isinstance(inputs, BatchPlan) else BatchPlan.build(inputs)
    options, run = plan.options, plan.run
    if models is not None and run.engine != "local":
        raise PipelineError("score_videos: models= is for the local engine (Ray workers load their own)")
    if options.out_dir is not None:
        check_writable(options.out_dir)
    if config is None:
        from pipeline.config import PipelineConfig

        config = PipelineConfig()
    summary = plan.summary_to_write()
    provenance = Provenance()
    if summary is not None or run.skip_existing:
        provenance = Provenance.of(config.weights_dir, config.asr.model)

    done: dict[int, VideoOutcome] = {}
    unwritten: list[OutputError] = []

    def finish(i: int, outcome: VideoOutcome) -> None:
        done[i] = outcome
        if summary is not None and outcome.status != "skipped":  # a skipped input's row is there already
            try:
                merge_summary([outcome.summary_row(provenance)], summary, config.output)
            except OutputError as e:  # the batch goes on; written once more at the end
                if not unwritten:
                    log.warning("%s; trying again when the batch ends", e)
                unwritten.append(e)
        if on_outcome is not None:
            on_outcome(outcome)

    def in_order() -> list[VideoOutcome]:
        return [done[i] for i in sorted(done)]

    def write_summary_rows(interrupted: bool) -> None:
        if summary is None or not done:
            return
        try:
            merge_summary([o.summary_row(provenance) for o in in_order()], summary, config.output)
        except OutputError:
            if not interrupted:
                raise
            log.exception("cannot write %s", summary)

    earlier: dict[str, SummaryRow] = {}
    if run.skip_existing and plan.summary_path is not None:
        earlier = {row.video: row for row in read_summary(plan.summary_path)}
    todo: list[tuple[int, BatchItem]] = []
    for i, item in enumerate(plan.items):
        if item.error:
            finish(i, VideoOutcome(item.path, "failed", error=item.error))
            continue
        if run.skip_existing and item.output is not None and os.path.lexists(item.output):
            row = earlier.get(str(item.path))
            why = reason_to_rescore(item, row, provenance)
            if not why:
                finish(i, VideoOutcome(item.path, "skipped", output=item.output, earlier=row))
                continue
            log.info("%s: %s exists but %s; scoring it again", item.path, item.output, why)
        todo.append((i, item))

    if todo:
        try:
            if run.engine == "ray":
                from pipeline.ray_engine import score_on_ray

                score_on_ray(todo, config, options, finish, address=run.ray_address)
            else:
                _score_locally(todo, config, options, finish, progress, models)
        except KeyboardInterrupt as e:
            write_summary_rows(interrupted=True)
            raise BatchInterrupted(in_order(), len(plan.items)) from e
    write_summary_rows(interrupted=False)
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


def parts_for(paths: Sequence[Path]) -> tuple[str, ...]:
    """The model parts a batch needs: no face models when every input is named as audio.

    A file named as audio that turns out to hold a video track is then scored without its
    face, and its result's warnings say so.
    """
    from pipeline.models import ALL_PARTS

    if paths and all(Path(p).suffix.lower() in AUDIO_SUFFIXES for p in paths):
        return tuple(part for part in ALL_PARTS if part != "face")
    return ALL_PARTS


def _score_locally(jobs: list[tuple[int, BatchItem]], config: PipelineConfig, options: WriteOptions,
                   finish: Callable[[int, VideoOutcome], None], progress: BatchProgress | None,
                   models: Models | None) -> None:
    """Score the inputs in this process, in order.

    Loading the models the batch needs, only Whisper is waited for: the face models, the text
    encoder and the weights load on a worker thread while the first input is decoded and
    transcribed, and each stage waits for its model where it first reads it (``pipeline.models``).
    """
    from pipeline.models import FIRST_STAGE_PARTS, Models

    if models is not None:
        loading = nullcontext(models)
    else:
        parts = parts_for([item.path for _, item in jobs])
        loading = Models.load(config, parts=parts, background=[p for p in parts if p not in FIRST_STAGE_PARTS])
    with loading as loaded:
        for i, item in jobs:
            outcome = score_one(item, config, loaded, options, progress)
            # A model that failed to load in the background fails the batch with its own error, as
            # when Models.load raises it, not this input alone: raised before the input's outcome
            # (its summary row) is recorded, and score_one writes an input's files only when it
            # scored it. Once every model is loaded this returns at once.
            loaded.wait()
            finish(i, outcome)
