"""Split a transcript into utterances: the units that get one sentiment score each.

MOSI labels opinion segments of roughly a sentence, so we cut where a sentence ends
(Whisper writes . ? !) or where the speaker pauses, then repair the two failure modes
of that rule: fragments ("Yeah." / "So,") are merged into a neighbour, and run-ons
(long unpunctuated speech) are split at their longest pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from extractors.records import Transcript, Word
from pipeline.records import Utterance

__all__ = ["UtteranceOptions", "split_utterances"]

_SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True)
class UtteranceOptions:
    """How words are grouped into utterances.

    Attributes:
        pause_s: A silence at least this long between words ends an utterance.
        min_words: Utterances with fewer words are merged into the nearer neighbour.
        max_duration_s: Longer utterances are split at their longest inner pause.
        merge_gap_s: A fragment is merged only across a gap shorter than this; beyond it
            the fragment stands alone (a lone "Yes." after a long silence is an answer).
    """

    pause_s: float = 1.0
    min_words: int = 3
    max_duration_s: float = 15.0
    merge_gap_s: float = 2.0


def split_utterances(transcript: Transcript, options: UtteranceOptions) -> list[Utterance]:
    """Group the transcript's words into utterances.

    Returns:
        Utterances in time order, indexed from 0; every word lands in exactly one.
    """
    groups = _cut_at_boundaries(transcript.words, options.pause_s)
    groups = _merge_fragments(groups, options)
    groups = [part for g in groups for part in _split_run_on(g, options.max_duration_s)]
    return [Utterance(i, g[0].start_s, g[-1].end_s, tuple(g)) for i, g in enumerate(groups)]


def _cut_at_boundaries(words: Sequence[Word], pause_s: float) -> list[list[Word]]:
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current and word.start_s - current[-1].end_s >= pause_s:
            groups.append(current)
            current = []
        current.append(word)
        if word.text.rstrip("\"')]").endswith(_SENTENCE_END):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _merge_fragments(groups: list[list[Word]], options: UtteranceOptions) -> list[list[Word]]:
    """Merge groups shorter than ``min_words`` into the neighbour across the smaller gap."""
    groups = [list(g) for g in groups]
    i = 0
    while i < len(groups):
        if len(groups) == 1 or len(groups[i]) >= options.min_words:
            i += 1
            continue
        gap_before = groups[i][0].start_s - groups[i - 1][-1].end_s if i > 0 else float("inf")
        gap_after = groups[i + 1][0].start_s - groups[i][-1].end_s if i + 1 < len(groups) else float("inf")
        if min(gap_before, gap_after) > options.merge_gap_s:
            i += 1
            continue
        if gap_before <= gap_after:
            groups[i - 1].extend(groups.pop(i))
            # the grown group before may itself need no further work; re-check from it
            i = max(i - 1, 0)
        else:
            groups[i].extend(groups.pop(i + 1))
    return groups


def _split_run_on(words: list[Word], max_duration_s: float) -> list[list[Word]]:
    """Split recursively at the longest pause until every part is short enough."""
    if len(words) < 2 or words[-1].end_s - words[0].start_s <= max_duration_s:
        return [words]
    gaps = [words[k + 1].start_s - words[k].end_s for k in range(len(words) - 1)]
    # prefer a comma among near-longest pauses: it is where a speaker breathes
    def preference(k: int) -> tuple[float, float]:
        comma_bonus = 0.05 if words[k].text.endswith(",") else 0.0
        return gaps[k] + comma_bonus, -abs(k - len(gaps) / 2)  # ties: nearer the middle

    cut = max(range(len(gaps)), key=preference)
    return _split_run_on(words[: cut + 1], max_duration_s) + _split_run_on(words[cut + 1 :], max_duration_s)
