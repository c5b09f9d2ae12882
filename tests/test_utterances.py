"""Utterance splitting: sentence ends, pauses, fragments, run-ons."""

from __future__ import annotations

import numpy as np

from extractors.records import Segment, Transcript, Word
from pipeline.utterances import UtteranceOptions, split_utterances


def transcript_of(words: list[Word]) -> Transcript:
    return Transcript((Segment(words[0].start_s, words[-1].end_s, "", tuple(words)),), "en", 1.0, 60.0, "test")


def timed(
    text: str, start_s: float = 0.0, step_s: float = 0.3, gap_after: dict[int, float] | None = None
) -> list[Word]:
    words, t = [], start_s
    for i, token in enumerate(text.split()):
        words.append(Word(token, t, t + step_s * 0.8))
        t += step_s + (gap_after or {}).get(i, 0.0)
    return words


def test_sentence_ends_split():
    words = timed("I loved this film. The ending was terrible though. It is fine overall.")
    utts = split_utterances(transcript_of(words), UtteranceOptions())
    assert [u.text for u in utts] == ["I loved this film.", "The ending was terrible though.", "It is fine overall."]
    assert [u.index for u in utts] == [0, 1, 2]


def test_long_pause_splits_unpunctuated_speech():
    words = timed("so i went there and it was great then we left and it was awful", gap_after={7: 1.5})
    utts = split_utterances(transcript_of(words), UtteranceOptions(pause_s=1.0))
    assert [len(u.words) for u in utts] == [8, 7]
    assert utts[1].start_s - utts[0].end_s >= 1.0


def test_fragment_merges_into_nearer_neighbour():
    words = timed("Yeah. I really liked the acting in it. And the music was great too.", gap_after={0: 0.05})
    utts = split_utterances(transcript_of(words), UtteranceOptions(min_words=3))
    assert utts[0].text == "Yeah. I really liked the acting in it."
    assert len(utts) == 2


def test_isolated_fragment_after_long_silence_stands_alone():
    words = timed("I think it was a very good film. Yes.", gap_after={7: 5.0})
    utts = split_utterances(transcript_of(words), UtteranceOptions(min_words=3, pause_s=1.0, merge_gap_s=2.0))
    assert [u.text for u in utts] == ["I think it was a very good film.", "Yes."]


def test_run_on_is_split_below_max_duration_and_keeps_every_word():
    words = timed(" ".join(["word"] * 100), step_s=0.4, gap_after={30: 0.6, 60: 0.7})
    opts = UtteranceOptions(max_duration_s=15.0)
    utts = split_utterances(transcript_of(words), opts)
    assert all(u.duration_s <= opts.max_duration_s for u in utts)
    assert sum(len(u.words) for u in utts) == 100
    flat = [w for u in utts for w in u.words]
    assert flat == words  # every word exactly once, in order


def test_no_words_gives_no_utterances():
    empty = Transcript((), "en", 1.0, 3.0, "test")
    assert split_utterances(empty, UtteranceOptions()) == []


def test_encodable_words_drop_wordless_tokens_and_keep_times():
    from pipeline.features import encodable_words
    from pipeline.records import Utterance

    utterance = Utterance(0, 0.0, 1.0, (Word("Well,", 0.0, 0.4), Word("--", 0.4, 0.5), Word("GREAT!", 0.5, 1.0)))
    words, times = encodable_words(utterance)
    assert words == ["well", "great"]
    assert times.dtype == np.float64 and times.tolist() == [[0.0, 0.4], [0.5, 1.0]]
    assert encodable_words(Utterance(0, 0.0, 0.1, (Word("?!", 0.0, 0.1),)))[1].shape == (0, 2)
