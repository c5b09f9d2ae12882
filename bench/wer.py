"""Word error rate of a recognised transcript against a reference, with fair normalisation.

GRID references spell letters and digits as words ("x four"), Whisper writes "X4", so
both sides are lower-cased, stripped of punctuation, letter-digit runs split, and
digits spelt out before the edit distance is taken.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["wer_tokens", "word_error_rate"]

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def wer_tokens(text: str) -> list[str]:
    """Lower-case words with punctuation removed, letter/digit runs split, digits spelt out."""
    text = re.sub(r"([a-zA-Z])(\d)", r"\1 \2", text.lower())
    text = re.sub(r"(\d)([a-zA-Z])", r"\1 \2", text)
    text = re.sub(r"\d", lambda m: f" {_DIGITS[int(m.group())]} ", text)
    return re.sub(r"[^\w' ]+", " ", text).split()


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after ``wer_tokens``."""
    ref, hyp = wer_tokens(reference), wer_tokens(hypothesis)
    return _edit_distance(ref, hyp) / max(len(ref), 1)
