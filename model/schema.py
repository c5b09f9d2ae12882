"""What the model's inputs are called and what its score means: names and thresholds, no code.

Light on purpose (no NumPy, no torch): the CLI, the output writers, the report, training
and evaluation all read the same names and the same neutral band from here.
"""

from __future__ import annotations

__all__ = ["MODALITIES", "SCORE_MIN", "SCORE_MAX", "NEUTRAL_BAND", "POLARITIES", "polarity_of", "sentiment_bin"]

#: The three modalities, in the order the model, its configs and its outputs use.
MODALITIES: tuple[str, ...] = ("text", "audio", "vision")

#: The CMU-MOSI scale: -3 very negative .. +3 very positive.
SCORE_MIN = -3.0
SCORE_MAX = 3.0

#: Scores with ``abs(score) < NEUTRAL_BAND`` are neutral. 0.5 is half a step on MOSI's
#: 7-point scale, where the annotators' mean of a neutral clip usually lands. Training's
#: sentiment bins (contrastive alignment) and the outputs' polarity use this one value.
NEUTRAL_BAND = 0.5

#: Polarity labels, in bin order (``sentiment_bin`` gives the index).
POLARITIES: tuple[str, ...] = ("negative", "neutral", "positive")


def sentiment_bin(score: float, band: float = NEUTRAL_BAND) -> int:
    """0 negative (``score <= -band``), 1 neutral, 2 positive (``score >= band``)."""
    if score >= band:
        return 2
    if score <= -band:
        return 0
    return 1


def polarity_of(score: float, band: float = NEUTRAL_BAND) -> str:
    """"negative", "neutral" or "positive" for a score on the MOSI scale."""
    return POLARITIES[sentiment_bin(score, band)]
