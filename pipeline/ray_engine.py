"""Scoring a batch on Ray: one actor per worker CPU, each loading the models once.

``pipeline.api.score_videos(..., engine="ray")`` hands its inputs here. Every actor
holds its own ``Models`` and runs ``pipeline.api.score_one``, the very function the
local engine runs, so outcomes, files and failures are the same; only where it runs
differs. Inputs are handed out one at a time to whichever actor is free, so a long
video does not hold up a queue behind it.

Ray is optional (``pip install -r requirements-ray.txt``). Without an address a local
Ray is started for the batch and stopped after it; with one (``ray start --head`` on
a cluster) the batch joins it, and every node must see the same checkout, weights
and input/output paths (a shared file system).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path

from pipeline.config import REPO_ROOT, PipelineConfig
from pipeline.errors import USER_ERRORS, PipelineError

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
        from pipeline.run import Models

        self.models = Models.load(self.config)

    def score(self, index: int, video: Path, options: dict) -> tuple[int, object]:
        from pipeline.api import score_one

        return index, score_one(video, self.config, self.models, **options)

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


def score_on_ray(jobs: list[tuple[int, Path]], config: PipelineConfig, options: dict,
                 finish: Callable[[int, object], None], *, address: str | None = None) -> None:
    """Score ``jobs`` ((input index, path) pairs) on Ray, calling ``finish`` as each completes.

    Args:
        jobs: Inputs to score, with their position in the batch.
        config: Stage options (sent to every actor).
        options: ``out_dir``, ``fmt``, ``report`` for ``pipeline.api.score_one``.
        finish: Receives (index, VideoOutcome) in completion order.
        address: Ray cluster address; None starts a local Ray with one CPU per core.

    Raises:
        PipelineError: Ray is not installed, or cannot be started or reached.
        ModelNotFoundError, CheckpointError: An actor could not load the models.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # workers import this checkout, and must stay offline like the driver
        env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MIAR_CACHE", "MIAR_SHARED"):
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
            index, video = pending.pop(0)
            running[actor.score.remote(index, video, options)] = (actor, video)  # type: ignore[attr-defined]

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
        _remove_partial_files([video for _, video in running.values()] if actors else [], options)


def _remove_partial_files(videos: list[Path], options: dict) -> None:
    """Delete the temporary files of inputs whose worker was killed mid-write (Ctrl-C, a failed batch).

    Locally an interrupted ``write_atomic`` cleans up after itself; a killed process cannot.
    """
    out_dir = options.get("out_dir")
    if out_dir is None:
        return
    for video in videos:
        for suffix in (options.get("fmt", "csv"), "png", "html"):
            for part in Path(out_dir).glob(f".{glob_escape(video.stem)}.{suffix}.*.part"):
                part.unlink(missing_ok=True)
                log.debug("removed partial %s", part)
