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

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.text import TextEncoder, normalise_text
from model.checkpoint import LoadedMiar, load_checkpoint
from model.data import SampleInput
from pipeline.config import PipelineConfig

__all__ = ["TextScorer", "score_texts"]


@dataclass
class TextScorer:
    """The text encoder and MIAR weights, loaded once (holds models only)."""

    encoder: TextEncoder
    miar: LoadedMiar

    @classmethod
    def load(cls, config: PipelineConfig) -> TextScorer:
        miar = load_checkpoint(
            config.weights_dir,
            expected_encoder=config.text.encoder,
            expected_audio_columns=voice_mod.COLUMNS,
            expected_vision_columns=face_mod.COLUMNS,
        )
        return cls(TextEncoder(config.text), miar)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores in [-3, 3], one per text.

        Raises:
            ValueError: A text has no words after normalisation (nothing to score).
        """
        word_lists = [normalise_text(t).split() for t in texts]
        empty = [i for i, words in enumerate(word_lists) if not words]
        if empty:
            raise ValueError(f"text {empty[0]} has no words to score: {texts[empty[0]]!r}")
        tokens = self.encoder.encode_batch(word_lists)
        samples = [SampleInput(text=t.values, text_mask=np.ones(len(t.tokens), dtype=bool)) for t in tokens]
        return self.miar.predict(samples)


def score_texts(texts: Sequence[str], config: PipelineConfig | None = None) -> list[float]:
    """Sentiment in [-3, 3] for each text, from the shipped weights' text path.

    Loads the encoder and weights on every call: for many calls, keep a ``TextScorer``.

    Args:
        texts: Sentences (any case and punctuation; normalised as ASR words are).
        config: Which weights and encoder; defaults to ``PipelineConfig()``.
    """
    if not texts:
        return []
    scorer = TextScorer.load(config or PipelineConfig())
    return [float(s) for s in scorer.score(texts)]
