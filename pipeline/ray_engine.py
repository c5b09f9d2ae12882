"""Scoring a batch on Ray: one actor per worker CPU, each loading the models once.

``pipeline.api.score_videos(..., engine="ray")`` hands its inputs here. Every actor
holds its own ``Models`` and runs ``pipeline.jobs.score_one``, the very function the
local engine runs, so outcomes, files and failures are the same; only where it runs
differs (this module never imports ``pipeline.api``). Inputs are handed out one at a
time to whichever actor is free, so a long video does not hold up a queue behind it.

Ray is optional (``pip install -r requirements-ray.txt``). Without an address a local
Ray is started for the batch and stopped after it; with one (``ray start --head`` on
a cluster) the batch joins it, and every node must have the project installed
(``pip install -e .``) and see the same weights and input/output paths (a shared file
system).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.errors import USER_ERRORS, PipelineError
from pipeline.inputs import BatchItem, WriteOptions
from pipeline.jobs import VideoOutcome, score_one
from storage.files import temp_files_of

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig

__all__ = ["score_on_ray", "ray_worker_count"]

log = logging.getLogger(__name__)


def _import_ray():  # the module; typed only when installed
    try:
        import ray
    except ImportError as e:
        raise PipelineError("--engine ray needs Ray: pip install -r requirements-ray.txt") from e
    return ray


def ray_worker_count(ray: object, jobs: int) -> int:
    """Actors to start: one per CPU Ray reports (each actor asks for one), never more than the jobs."""
    cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[attr-defined]
    return max(1, min(cpus, jobs))


class _Scorer:
    """Ray actor body: the models, loaded once in the worker, and ``score_one`` on them.

    The models load in ``load``, not in ``__init__``: an error raised by an actor's
    constructor reaches the driver only as "actor died", while one raised by a method
    arrives as itself (a missing weights folder stays a one-line ``CheckpointError``).
    """

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.models = None

    def load(self) -> None:
        from pipeline.models import Models

        self.models = Models.load(self.config)

    def score(self, index: int, item: BatchItem, options: WriteOptions) -> tuple[int, VideoOutcome]:
        return index, score_one(item, self.config, self.models, options)

    def close(self) -> None:
        if self.models is not None:
            self.models.close()


def _get(ray: object, refs: object) -> object:
    """``ray.get`` that re-raises a worker's own exception here (one line for ``USER_ERRORS``)."""
    try:
        return ray.get(refs)  # type: ignore[attr-defined]
    except ray.exceptions.RayTaskError as e:  # type: ignore[attr-defined]
        cause = getattr(e, "cause", None)
        if isinstance(cause, USER_ERRORS):
            raise cause from None
        raise e.as_instanceof_cause() from None  # a bug: keeps the remote traceback


def score_on_ray(jobs: list[tuple[int, BatchItem]], config: PipelineConfig, options: WriteOptions,
                 finish: Callable[[int, VideoOutcome], None], *, address: str | None = None) -> None:
    """Score ``jobs`` ((input index, item) pairs) on Ray, calling ``finish`` as each completes.

    Args:
        jobs: Inputs to score, with their position in the batch.
        config: Stage options (sent to every actor).
        options: What to write for each input (sent with each input).
        finish: Receives (index, VideoOutcome) in completion order.
        address: Ray cluster address; None starts a local Ray with one CPU per core.

    Raises:
        PipelineError: Ray is not installed, or cannot be started or reached.
        ModelNotFoundError, CheckpointError: An actor could not load the models.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # workers stay offline like the driver, and find the same locations (storage.locations)
        env: dict[str, str] = {}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MIAR_CACHE", "MIAR_SHARED", "XDG_CACHE_HOME"):
            if name in os.environ:
                env[name] = os.environ[name]
        # Ray gives a 1-CPU actor OMP_NUM_THREADS=1; CTranslate2 takes its thread count from it, and
        # Whisper's int8 decoding is not bit-identical across thread counts (a GRID clip came out
        # "Bimblue" with 2 threads, "Bimbloo" with 1). Workers use the driver's count, so a batch
        # gives the same transcripts and scores on either engine.
        env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count() or 1)
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                  "runtime_env": {"env_vars": env}}
        try:
            if address is None:
                ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
            else:
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise PipelineError(f"cannot start or reach {where}: {e}") from e
    actors: list = []
    running: dict = {}  # object ref -> (actor, input)
    try:
        remote_scorer = ray.remote(num_cpus=1, max_restarts=0)(_Scorer)
        n_workers = ray_worker_count(ray, len(jobs))
        log.info("ray: %d workers for %d inputs", n_workers, len(jobs))
        actors = [remote_scorer.remote(config) for _ in range(n_workers)]
        _get(ray, [actor.load.remote() for actor in actors])  # in parallel, and set-up errors surface here
        pending = list(jobs)

        def submit(actor: object) -> None:
            index, item = pending.pop(0)
            running[actor.score.remote(index, item, options)] = (actor, item)  # type: ignore[attr-defined]

        for actor in actors[: len(pending)]:
            submit(actor)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, _ = running.pop(ready[0])
            index, outcome = _get(ray, ready[0])
            finish(index, outcome)
            if pending:
                submit(actor)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
        _remove_partial_files([item for _, item in running.values()] if actors else [], options)


def _remove_partial_files(items: list[BatchItem], options: WriteOptions) -> None:
    """Delete the temporary files of inputs whose worker was killed mid-write (Ctrl-C, a failed batch).

    Locally an interrupted ``storage.files`` write cleans up after itself; a killed process cannot.
    """
    for item in items:
        if item.output is None:
            continue
        targets = [item.output]
        if options.report:
            from pipeline.report import report_paths

            targets += report_paths(item.output.parent, item.output.stem)
        for target in targets:
            for part in temp_files_of(target):
                part.unlink(missing_ok=True)
                log.debug("removed partial %s", part)
