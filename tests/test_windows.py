"""Long texts as overlapping word windows (``pipeline.windows``) and the video path's window inputs
(``pipeline.features.window_inputs``): pure, no model (a stub encoder stands in for MiniLM), but for
one slow test that scores the example clip with the encoder's window shrunk."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest

from extractors.records import TokenFeatures, Word
from pipeline.features import to_sample_input, window_inputs
from pipeline.records import AlignedUtterance, Utterance
from pipeline.windows import plan_windows, pool, text_windows, window_weights


def check_plan(counts: list[int], limit: int, windows: list[tuple[int, int]]) -> None:
    """Every word in a window, windows in order, each fitting ``limit`` (or one over-long word), overlapping."""
    n = len(counts)
    assert windows[0][0] == 0 and windows[-1][1] == n
    covered = set()
    for k, (start, end) in enumerate(windows):
        assert 0 <= start < end <= n
        assert sum(counts[start:end]) <= limit or end - start == 1, (start, end)
        covered.update(range(start, end))
        if k:
            previous_start, previous_end = windows[k - 1]
            assert previous_start < start <= previous_end, "windows move on and leave no gap"
        if k + 1 < len(windows):
            assert end == n or end - start == 1 or sum(counts[start:end + 1]) > limit, "a window takes what fits"
    assert covered == set(range(n))


@pytest.mark.parametrize("seed", range(40))
def test_windows_cover_every_word_and_fit_the_limit(seed: int):
    rng = random.Random(seed)
    counts = [rng.choice([0, 1, 1, 1, 2, 2, 3, 5]) for _ in range(rng.randint(1, 600))]
    limit = rng.choice([1, 3, 10, 126])
    windows = plan_windows(counts, limit)
    check_plan(counts, limit, windows)
    weights = window_weights(counts, windows)
    assert weights.sum() == len(counts) and (weights >= 0).all()


def test_a_text_that_fits_is_one_window():
    assert plan_windows([1, 2, 3], 6) == [(0, 3)]
    assert plan_windows([], 126) == []
    assert list(window_weights([1, 2, 3], [(0, 3)])) == [3.0]


def test_windows_overlap_by_about_half():
    windows = plan_windows([1] * 100, 20)
    assert windows[:3] == [(0, 20), (10, 30), (20, 40)]
    assert windows[-1] == (80, 100) and len(windows) == 9
    # each word counted once, in the window whose middle it is nearest: the inner windows own 10 words each
    assert list(window_weights([1] * 100, windows)) == [15, 10, 10, 10, 10, 10, 10, 10, 15]


def test_a_word_longer_than_the_limit_gets_its_own_window():
    windows = plan_windows([2, 50, 2, 2], 10)
    check_plan([2, 50, 2, 2], 10, windows)
    assert (1, 2) in windows


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="limit"):
        plan_windows([1], 0)
    with pytest.raises(ValueError, match="overlap"):
        plan_windows([1], 5, overlap=1.0)
    with pytest.raises(ValueError, match="negative"):
        plan_windows([1, -1], 5)


def test_pool_of_one_window_is_its_score_bit_for_bit():
    score = np.float32(0.1)
    assert pool(np.array([score], np.float32), np.array([7.0])) == score  # not (0.1 * 7) / 7
    row = np.array([[0.1, np.nan, -2.3]], np.float32)
    np.testing.assert_array_equal(pool(row, np.array([3.0])), row[0])


def test_pool_weights_windows_and_skips_missing_readings():
    scores = np.array([[1.0, np.nan, 2.0], [3.0, 1.0, np.nan], [-1.0, np.nan, np.nan]], np.float32)
    pooled = pool(scores, np.array([1.0, 3.0, 0.0]))
    np.testing.assert_allclose(pooled, [2.5, 1.0, 2.0])  # a window without the modality is left out
    assert np.isnan(pool(np.array([[np.nan], [np.nan]], np.float32), np.array([1.0, 1.0]))).all()
    assert pool(np.array([1.0, 3.0], np.float32), np.array([1.0, 1.0])) == pytest.approx(2.0)


def test_text_windows_tokenizes_only_texts_that_may_not_fit():
    calls = []

    class Counting:
        max_words_tokens = 20

        def token_counts(self, words: Sequence[str]) -> list[int]:
            calls.append(list(words))
            return [len(w) for w in words]  # one token per character: as many as a tokenizer can make

    assert text_windows(["it", "was", "fine"], Counting()) == ([(0, 3)], pytest.approx([1.0]))
    assert calls == []  # 2+1 + 3+1 + 4+1 bytes fit in 20 tokens: no tokenizer pass
    windows, weights = text_windows(["wonderful"] * 4, Counting())
    assert windows == [(0, 2), (1, 3), (2, 4)] and list(weights) == [2.0, 1.0, 1.0] and len(calls) == 1
    windows, weights = text_windows(["ünïcödé", "words"], Counting())  # 7 letters, 11 bytes, +1 each: 18
    assert windows == [(0, 2)] and len(calls) == 1


class StubEncoder:
    """One token per word (two for words starting with "x"), a window limit of 6, values = word index."""

    name = "stub"
    max_words_tokens = 6

    def token_counts(self, words: Sequence[str]) -> list[int]:
        return [2 if w.startswith("x") else 1 for w in words]

    def encode_batch(self, word_lists: Sequence[Sequence[str]]) -> list[TokenFeatures]:
        out = []
        for words in word_lists:
            ids = [-1] + [i for i, n in enumerate(self.token_counts(words)) for _ in range(n)] + [-1]
            assert len(ids) - 2 <= self.max_words_tokens, "a window over the limit reached the encoder"
            values = np.array([[float(i)] for i in ids], np.float32)
            out.append(TokenFeatures(tuple(map(str, ids)), np.array(ids), values, self.name))
        return out


def aligned_utterance(words: list[str], encoder: StubEncoder) -> AlignedUtterance:
    """An utterance whose word w has voice row [w] (face only on even words), encoded as ``featurize`` does:
    the first window only."""
    n = len(words)
    times = np.array([[i, i + 0.5] for i in range(n)], np.float64)
    first_end = plan_windows(encoder.token_counts(words), encoder.max_words_tokens)[0][1]
    utterance = Utterance(0, 0.0, n - 0.5, tuple(Word(w, s, e, 0.9) for w, (s, e) in zip(words, times)))
    rows = np.arange(n, dtype=np.float32)[:, None]
    return AlignedUtterance(
        utterance=utterance, words=tuple(words), word_times_s=times,
        tokens=encoder.encode_batch([words[:first_end]])[0],
        audio_words=rows * 10, audio_present=np.ones(n, bool),
        vision_words=rows * 100, vision_present=np.arange(n) % 2 == 0,
        audio_frames=np.zeros((0, 1), np.float32), vision_frames=np.zeros((0, 1), np.float32),
        vision_frames_present=np.zeros(0, bool),
    )


def test_a_short_utterance_is_its_one_sample():
    encoder = StubEncoder()
    short = aligned_utterance(["it", "was", "fine"], encoder)
    sample = to_sample_input(short)
    [(inputs, weights)] = window_inputs([short], [sample], encoder)
    assert inputs == [sample] and list(weights) == [1.0]


def test_each_window_carries_the_voice_and_face_of_its_own_words():
    encoder = StubEncoder()
    words = [f"w{i}" if i != 5 else "xlong" for i in range(14)]
    long = aligned_utterance(words, encoder)
    [(inputs, weights)] = window_inputs([long], [to_sample_input(long)], encoder)
    windows = plan_windows(encoder.token_counts(words), encoder.max_words_tokens)
    assert len(inputs) == len(windows) > 2 and weights.sum() == len(words)
    for sample, (start, end) in zip(inputs, windows):
        word = sample.text[1:-1, 0].astype(int) + start  # the stub's text value is the word's index in its window
        assert list(np.unique(word)) == list(range(start, end))
        np.testing.assert_array_equal(sample.audio[1:-1, 0], word * 10)  # voice row of the token's own word
        assert sample.vision_mask is not None
        np.testing.assert_array_equal(sample.vision_mask[1:-1], word % 2 == 0)
        np.testing.assert_array_equal(sample.vision[1:-1, 0][sample.vision_mask[1:-1]], word[word % 2 == 0] * 100)
        assert not sample.audio_mask[0] and not sample.audio_mask[-1]  # special tokens carry no voice


@pytest.mark.slow
def test_video_utterances_longer_than_the_window_are_pooled_like_the_text_path(
        loaded_models, example_clip, monkeypatch: pytest.MonkeyPatch):
    """With the window shrunk to 8 tokens the example's utterances (6 to 15 words) span several windows:
    every reading is still there, and text_score is what the text path gives for the same words."""
    from extractors.text import TextEncoder, normalise_text
    from pipeline.config import PipelineConfig
    from pipeline.score import score_video
    from pipeline.text_scoring import TextScorer

    monkeypatch.setattr(TextEncoder, "max_words_tokens", property(lambda self: 8))
    result = score_video(example_clip, PipelineConfig(), loaded_models)
    assert len(result.utterances) == 3
    texts = [" ".join(normalise_text(w.text) for w in u.utterance.words) for u in result.utterances]
    windows = [r.windows for r in TextScorer(loaded_models).score_checked(texts)]
    assert windows[0] > 2 and windows[1] > 1
    text_alone = TextScorer(loaded_models).score(texts)
    for u, expected in zip(result.utterances, text_alone):
        assert -3 <= u.sentiment <= 3 and u.voice_score is not None and u.face_score is not None
        assert u.text_score == pytest.approx(float(expected), abs=1e-4)
