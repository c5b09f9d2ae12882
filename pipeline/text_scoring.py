"""The text path of the shipped model: sentences in, sentiment out (voice and face masked).

For users who already have transcripts (or want to check what the words alone say):
``score_texts(["i loved it", "it was awful"])`` or ``python -m pipeline text FILE``.
The same normalisation, encoder and weights as the video pipeline are used, so a
sentence scores the same here as when Whisper recognises exactly those words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractors.text import normalise_text
from model.batch import SampleInput
from pipeline.config import PipelineConfig
from pipeline.models import Models

__all__ = ["TextScorer", "score_texts"]

#: The model parts the text path needs.
TEXT_PARTS: tuple[str, ...] = ("text", "miar")


@dataclass
class TextScorer:
    """Scores texts with loaded models (holds models only).

    Attributes:
        models: Models with at least the parts "text" and "miar" (a full ``Models`` does too).
    """

    models: Models

    @classmethod
    def load(cls, config: PipelineConfig) -> TextScorer:
        """Load the text encoder and the MIAR weights named by ``config``.

        Raises:
            ModelNotFoundError: The encoder is not installed.
            CheckpointError: The weights are missing, corrupt, or made for another encoder.
        """
        return cls(Models.load(config, parts=TEXT_PARTS))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [-3, 3], one per text: (N,) float32.

        Raises:
            ValueError: A text has no words after normalisation (nothing to score).
        """
        encoder, miar = self.models.text_encoder, self.models.miar
        if encoder is None or miar is None:
            raise ValueError(f"TextScorer: Models loaded without {list(TEXT_PARTS)}")
        word_lists = [normalise_text(t).split() for t in texts]
        empty = [i for i, words in enumerate(word_lists) if not words]
        if empty:
            raise ValueError(f"text {empty[0]} has no words to score: {texts[empty[0]]!r}")
        tokens = encoder.encode_batch(word_lists)
        samples = [SampleInput(text=t.values, text_mask=np.ones(len(t.tokens), dtype=bool)) for t in tokens]
        return miar.predict(samples)

    def close(self) -> None:
        self.models.close()

    def __enter__(self) -> TextScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def score_texts(texts: Sequence[str], config: PipelineConfig | None = None) -> list[float]:
    """Sentiment in [-3, 3] for each text, from the shipped weights' text path.

    Loads the encoder and weights on every call: for many calls, keep a ``TextScorer``.

    Args:
        texts: Sentences (any case and punctuation; normalised as ASR words are).
        config: Which weights and encoder; defaults to ``PipelineConfig()``.
    """
    if not texts:
        return []
    with TextScorer.load(config or PipelineConfig()) as scorer:
        return [float(s) for s in scorer.score(texts)]
