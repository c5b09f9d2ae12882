"""Offline multimodal sentiment: video in, per-utterance sentiment out.

Library API (the CLI is a thin layer over it)::

    from pipeline import PipelineConfig, Models, score_video

    config = PipelineConfig()
    with Models.load(config) as models:
        result = score_video(Path("clip.mp4"), config, models)

    from pipeline import BatchPlan, RunOptions, WriteOptions, score_videos   # a batch: models loaded once
    plan = BatchPlan.build([Path("a.mp4"), Path("videos/")], WriteOptions(Path("out"), "jsonl", report=True),
                           RunOptions(skip_existing=True))   # the inputs expanded once, each with its output file
    outcomes = score_videos(plan)                    # files and out/summary.csv written as each input is done

    from pipeline import score_texts
    score_texts(["i loved it", "it was a waste of time"])   # text path only: TextScore rows with polarity

Names are imported on first use, so ``python -m pipeline --help`` stays instant.
"""

from importlib import import_module

__all__ = ["PipelineConfig", "Models", "score_video", "score_videos", "VideoOutcome", "BatchInterrupted",
           "BatchPlan", "WriteOptions", "RunOptions", "score_texts", "TextScorer", "TextScore"]

_HOMES = {"PipelineConfig": "pipeline.config", "Models": "pipeline.models", "score_video": "pipeline.score",
          "score_videos": "pipeline.api", "VideoOutcome": "pipeline.jobs", "BatchInterrupted": "pipeline.api",
          "BatchPlan": "pipeline.inputs", "WriteOptions": "pipeline.inputs", "RunOptions": "pipeline.inputs",
          "score_texts": "pipeline.text_scoring", "TextScorer": "pipeline.text_scoring",
          "TextScore": "pipeline.text_scoring"}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
