"""Offline multimodal sentiment: video in, per-utterance sentiment out.

Library API (the CLI is a thin layer over it)::

    from pipeline import PipelineConfig, Models, score_video

    config = PipelineConfig()
    with Models.load(config) as models:
        result = score_video(Path("clip.mp4"), config, models)

    from pipeline import score_videos               # a batch: models loaded once, files written
    outcomes = score_videos([Path("a.mp4"), Path("videos/")], out_dir=Path("out"), report=True)

    from pipeline import BatchPlan, WriteOptions     # the inputs expanded once, each with its output file
    plan = BatchPlan.build([Path("videos/")], WriteOptions(Path("out"), "jsonl"))
    outcomes = score_videos(plan)

    from pipeline import score_texts
    score_texts(["i loved it", "it was a waste of time"])   # text path only

Names are imported on first use, so ``python -m pipeline --help`` stays instant.
"""

from importlib import import_module

__all__ = ["PipelineConfig", "Models", "score_video", "score_videos", "VideoOutcome", "BatchInterrupted",
           "BatchPlan", "WriteOptions", "score_texts", "TextScorer"]

_HOMES = {"PipelineConfig": "pipeline.config", "Models": "pipeline.models", "score_video": "pipeline.score",
          "score_videos": "pipeline.api", "VideoOutcome": "pipeline.jobs", "BatchInterrupted": "pipeline.api",
          "BatchPlan": "pipeline.inputs", "WriteOptions": "pipeline.inputs",
          "score_texts": "pipeline.text_scoring", "TextScorer": "pipeline.text_scoring"}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
