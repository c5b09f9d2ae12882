"""Word-level time alignment of text, voice and face.

For each word we average the frames of a modality whose centres fall inside the word's
interval. Whisper gives some words zero or sub-frame length, and face frames come only
every 200 ms, so an interval often holds no frame: it then takes the nearest frame
within ``max_gap_s`` (never NaN). Frames where a modality is missing (no face) are never
averaged in; a word with no usable frame near it is marked missing, not zero-filled as
if it were data. Everything is vectorised with cumulative sums and ``searchsorted``:
cost is O((T + W) log T), no word-by-frame loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractors.records import FeatureTrack, TokenFeatures
from pipeline.records import AlignedUtterance, Utterance

__all__ = ["AlignOptions", "pool_over_intervals", "align_utterance", "spread_to_tokens"]


@dataclass(frozen=True)
class AlignOptions:
    """How frames are brought to words.

    Attributes:
        audio_max_gap_s: An empty word interval takes the nearest voice frame within this.
        vision_max_gap_s: Same for face frames (sampled sparsely, so a wider reach).
    """

    audio_max_gap_s: float = 0.1
    vision_max_gap_s: float = 0.5


def pool_over_intervals(
    track: FeatureTrack, starts_s: np.ndarray, ends_s: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Average a track's present frames over each interval [start, end].

    Args:
        track: Frames with times (T,), values (T, D), present (T,).
        starts_s: (W,) interval starts.
        ends_s: (W,) interval ends (>= starts).
        max_gap_s: Reach of the nearest-frame fallback for intervals with no frame.

    Returns:
        values (W, D) float32 and present (W,) bool; rows with present False are zeros.
    """
    starts_s = np.asarray(starts_s, dtype=np.float64)
    ends_s = np.asarray(ends_s, dtype=np.float64)
    n_words, dim = len(starts_s), track.values.shape[1]
    out = np.zeros((n_words, dim), dtype=np.float32)
    ok = np.zeros(n_words, dtype=bool)
    keep = track.present.astype(bool)
    times = track.times_s[keep]
    values = track.values[keep].astype(np.float64)
    if n_words == 0 or len(times) == 0:
        return out, ok
    csum = np.vstack([np.zeros((1, dim)), np.cumsum(values, axis=0)])
    lo = np.searchsorted(times, starts_s, side="left")
    hi = np.searchsorted(times, ends_s, side="right")
    count = hi - lo
    inside = count > 0
    out[inside] = ((csum[hi[inside]] - csum[lo[inside]]) / count[inside, None]).astype(np.float32)
    ok[inside] = True
    # Fallback: nearest present frame to the interval (distance to the interval, not its middle)
    empty = ~inside
    if np.any(empty):
        mid = (starts_s[empty] + ends_s[empty]) / 2
        right = np.clip(np.searchsorted(times, mid), 0, len(times) - 1)
        left = np.clip(right - 1, 0, len(times) - 1)
        pick = np.where(np.abs(times[left] - mid) <= np.abs(times[right] - mid), left, right)
        dist = np.maximum(0.0, np.maximum(starts_s[empty] - times[pick], times[pick] - ends_s[empty]))
        near = dist <= max_gap_s
        rows = np.flatnonzero(empty)[near]
        out[rows] = values[pick[near]].astype(np.float32)
        ok[rows] = True
    return out, ok


def _near(track: FeatureTrack, start_s: float, end_s: float, reach_s: float) -> FeatureTrack:
    """The frames of ``track`` within ``reach_s`` of [start_s, end_s] (views, no copy)."""
    part = _frames_between(track, start_s - reach_s - 1e-9, end_s + reach_s + 1e-9)
    return FeatureTrack(track.name, track.times_s[part], track.values[part], track.columns, track.present[part],
                        track.rate_hz)


def _frames_between(track: FeatureTrack, start_s: float, end_s: float) -> slice:
    lo = int(np.searchsorted(track.times_s, start_s, side="left"))
    hi = int(np.searchsorted(track.times_s, end_s, side="right"))
    return slice(lo, hi)


def align_utterance(
    utterance: Utterance,
    words: Sequence[str],
    word_times_s: np.ndarray,
    tokens: TokenFeatures,
    voice: FeatureTrack,
    face: FeatureTrack,
    options: AlignOptions,
) -> AlignedUtterance:
    """Bring voice and face frames to the words of one utterance.

    Args:
        utterance: The utterance.
        words: (W) normalised words that were encoded.
        word_times_s: (W, 2) their start/end times.
        tokens: The encoder's output for ``words``.
        voice: The voice track of the whole file (may be empty).
        face: The face track of the whole file (may be empty: audio-only input).
        options: Fallback reach per modality.
    """
    word_times_s = np.asarray(word_times_s, dtype=np.float64).reshape(-1, 2)
    # Pool over the frames near this utterance only: the same rows (a frame farther than the reach
    # from every word is never used), at a cost that does not grow with the length of the file
    # (the whole track's running sums per utterance made a 10-minute video's alignment quadratic).
    lo_s = float(word_times_s[:, 0].min(initial=utterance.start_s))
    hi_s = float(word_times_s[:, 1].max(initial=utterance.end_s))
    audio_words, audio_present = pool_over_intervals(
        _near(voice, lo_s, hi_s, options.audio_max_gap_s), word_times_s[:, 0], word_times_s[:, 1],
        options.audio_max_gap_s,
    )
    vision_words, vision_present = pool_over_intervals(
        _near(face, lo_s, hi_s, options.vision_max_gap_s), word_times_s[:, 0], word_times_s[:, 1],
        options.vision_max_gap_s,
    )
    a = _frames_between(voice, utterance.start_s, utterance.end_s)
    v = _frames_between(face, utterance.start_s, utterance.end_s)
    return AlignedUtterance(
        utterance=utterance,
        words=tuple(words),
        word_times_s=word_times_s,
        tokens=tokens,
        audio_words=audio_words,
        audio_present=audio_present,
        vision_words=vision_words,
        vision_present=vision_present,
        audio_frames=voice.values[a],
        vision_frames=face.values[v],
        vision_frames_present=face.present[v].astype(bool),
    )


def spread_to_tokens(
    word_values: np.ndarray, word_present: np.ndarray, word_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Copy each word's row to its sub-word tokens; special tokens (id -1) are missing.

    Returns:
        values (L, D) float32 and present (L,) bool, aligned with the text tokens.
    """
    word_ids = np.asarray(word_ids)
    values = np.zeros((len(word_ids), word_values.shape[1]), dtype=np.float32)
    present = np.zeros(len(word_ids), dtype=bool)
    real = word_ids >= 0
    if len(word_values):
        values[real] = word_values[word_ids[real]]
        present[real] = word_present[word_ids[real]]
    return values, present
