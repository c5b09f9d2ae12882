"""Long texts as overlapping word windows, scored one by one and pooled (pure: counts in, windows out).

The text encoder takes at most ``TextEncoder.max_words_tokens`` sub-word tokens of words (128
with [CLS] and [SEP]). A text or utterance longer than that used to be cut there, so a
2,000-word paragraph was judged on its first ~120 words. Now it is cut into windows of whole
words that each fit the limit, overlapping by about half, so every word is read with context on
both sides in at least one window:

    tokens  |----- window 0 -----|
                       |----- window 1 -----|
                                    |----- window 2 ---|

Each window is scored like a short text, and the scores are pooled with ``pool``: a weighted
mean whose weights count each word once, giving it to the window whose centre it is nearest
(``window_weights``), i.e. the window where it has the most context around it. A window thus
weighs as many words as it "owns"; a last window that only adds a few words weighs little.

A text that fits is one window over all its words, scored exactly as before (no pooling), so
the common case gives the same score to the last bit. It costs nothing extra either: a text whose
UTF-8 bytes (plus one per word) fit the limit needs no tokenizer pass to know it fits
(``text_windows``), since no tokenizer makes more tokens of a word than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

__all__ = ["OVERLAP", "Tokenizer", "text_windows", "plan_windows", "window_weights", "pool", "pool_rows"]


class Tokenizer(Protocol):
    """What windowing needs of the text encoder (``extractors.text.TextEncoder`` has it)."""

    @property
    def max_words_tokens(self) -> int: ...

    def token_counts(self, words: Sequence[str]) -> list[int]: ...

#: Share of a window's tokens that the next window starts inside (the next one starts at its middle).
OVERLAP = 0.5


def text_windows(words: Sequence[str], tokenizer: Tokenizer) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The windows ``words`` are scored over and their pooling weights.

    ``[(0, len(words))]`` with weight 1 when the words fit ``tokenizer.max_words_tokens``; when
    their UTF-8 bytes plus one per word fit, that is known without tokenizing: WordPiece and
    byte-level BPE tokens each cover at least one byte, and SentencePiece adds at most a word
    marker per word.

    Returns:
        ``plan_windows`` over the words' token counts and ``window_weights`` of those windows.
    """
    limit = tokenizer.max_words_tokens
    if sum(len(w.encode("utf-8")) + 1 for w in words) <= limit:
        return [(0, len(words))], np.ones(1)
    counts = tokenizer.token_counts(words)
    windows = plan_windows(counts, limit)
    return windows, window_weights(counts, windows)


def plan_windows(token_counts: Sequence[int], limit: int, overlap: float = OVERLAP) -> list[tuple[int, int]]:
    """Windows of whole words, each holding at most ``limit`` tokens, covering every word.

    Greedy: a window takes words while they fit; the next starts at the first word at or past
    ``1 - overlap`` of the previous window's tokens (its middle for 0.5), at least one word on.
    A single word longer than ``limit`` gets a window of its own (the encoder cuts that word).

    Args:
        token_counts: Sub-word tokens of each word (``TextEncoder.token_counts``; 0 for a word
            the tokenizer drops).
        limit: Tokens a window may hold (``TextEncoder.max_words_tokens``), >= 1.
        overlap: Share of a window the next one overlaps, in [0, 1).

    Returns:
        ``(start, end)`` word index ranges (end exclusive), in order; ``[(0, n)]`` when every word
        fits, ``[]`` for no words.

    Raises:
        ValueError: ``limit`` < 1, ``overlap`` outside [0, 1), or a negative count.
    """
    if limit < 1:
        raise ValueError(f"plan_windows: limit {limit}, expected 1 or more tokens")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"plan_windows: overlap {overlap}, expected a share in [0, 1)")
    counts = [int(c) for c in token_counts]
    if any(c < 0 for c in counts):
        raise ValueError("plan_windows: a token count is negative")
    n = len(counts)
    if n == 0:
        return []
    if sum(counts) <= limit:
        return [(0, n)]
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start + 1, counts[start]  # a window holds at least one word
        while end < n and used + counts[end] <= limit:
            used += counts[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            return windows
        skip, skipped, nxt = used * (1.0 - overlap), 0, start
        while nxt < end and skipped < skip:
            skipped += counts[nxt]
            nxt += 1
        start = min(max(nxt, start + 1), end)


def window_weights(token_counts: Sequence[int], windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """How many words each window owns: every word belongs to one window, the one holding it
    whose centre (in tokens) is nearest the word's centre (the earlier one on a tie).

    Returns:
        (K,) float64 word counts, summing to the number of words the windows cover.
    """
    counts = np.asarray(token_counts, dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(counts)])  # token offset of each word's start
    word_centre = (edges[:-1] + edges[1:]) / 2
    owner = np.full(len(counts), -1, dtype=np.int64)
    nearest = np.full(len(counts), np.inf)
    for k, (s, e) in enumerate(windows):  # windows in order: strict "<" keeps the earlier one on a tie
        distance = np.abs(word_centre[s:e] - (edges[s] + edges[e]) / 2)
        closer = distance < nearest[s:e]
        owner[s:e][closer], nearest[s:e][closer] = k, distance[closer]
    return np.bincount(owner[owner >= 0], minlength=len(windows)).astype(np.float64)


def pool(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of the windows' scores, column by column, skipping NaN (a modality a window lacks).

    Args:
        scores: (K,) or (K, M) scores of the K windows of one text; NaN where a window has no value.
        weights: (K,) non-negative window weights (``window_weights``).

    Returns:
        () or (M,) float32: the pooled score(s); NaN where no window with weight has a value.
        One window returns its own scores unchanged (bit for bit).
    """
    scores = np.asarray(scores, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float64)
    if len(scores) != len(weights) or len(scores) == 0:
        raise ValueError(f"pool: {len(scores)} window scores, {len(weights)} weights")
    if len(scores) == 1:
        return scores[0].copy()
    values = scores.astype(np.float64).reshape(len(scores), -1)
    have = ~np.isnan(values) & (weights[:, None] > 0)
    w = np.where(have, weights[:, None], 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.where(total > 0, (np.where(have, values, 0.0) * w).sum(axis=0) / total, np.nan)
    return pooled.astype(np.float32).reshape(scores.shape[1:])


def pool_rows(values: np.ndarray, rows: Sequence[Sequence[int]], weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``pool`` for many texts whose windows were scored together in one array.

    Args:
        values: (K,) or (K, M) scores of every window of every text.
        rows: Per text, the rows of ``values`` that hold its windows, in window order.
        weights: Per text, its windows' weights (``text_windows``).

    Returns:
        Per text, its pooled score(s) (see ``pool``).
    """
    return [pool(values[list(r)], w) for r, w in zip(rows, weights)]
