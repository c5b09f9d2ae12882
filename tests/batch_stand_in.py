"""``python -m tests.batch_stand_in ARGS...``: ``python -m pipeline ARGS...`` with stand-ins for the models.

The real command line, batch, files, summary, logging and signal handling run; only ``Models.load``
and ``score_video`` are replaced: every input is "scored" in ``$STAND_IN_SECONDS`` (default 0.2 s) into
one utterance, and its name is appended to ``$STAND_IN_LOG`` when set (which inputs were scored).
Lets tests kill and resume a real batch process without paying for model loads.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from extractors.records import Media, Word
from model.schema import polarity_of
from pipeline import cli, score
from pipeline.models import Models
from pipeline.records import Signals, Utterance, UtteranceScore, VideoResult


def stand_in_result(path: Path, sentiment: float = 1.5) -> VideoResult:
    """A one-utterance result for ``path``, as ``score_video`` returns it."""
    words = (Word("fine", 0.5, 1.0),)
    scored = UtteranceScore(Utterance(0, 0.5, 1.0, words), sentiment, polarity_of(sentiment),
                            Signals(1, None, 0.9, 0.5, 180.0, -20.0, None, None), sentiment, None, None)
    media = Media(path, 2.0, True, False, None, None, None, audio_codec="pcm_s16le")
    return VideoResult(media, "ok", "en", 0.99, "tiny.en", "miar-v2", ("text",), None, (scored,), {"asr": 0.1}, ())


def _score_video(path: Path, config: object, models: object, progress: object = None) -> VideoResult:
    time.sleep(float(os.environ.get("STAND_IN_SECONDS", "0.2")))
    log = os.environ.get("STAND_IN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(path.name + "\n")
    return stand_in_result(path)


def main(argv: list[str]) -> int:
    Models.load = classmethod(lambda cls, config, **which: Models(ffmpeg=Path("ffmpeg")))  # type: ignore[method-assign]
    score.score_video = _score_video  # type: ignore[assignment]
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
