"""Word-level alignment: averages inside intervals, nearest-frame fallback, masks, no NaN."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.records import FeatureTrack, TokenFeatures, Word
from pipeline.align import AlignOptions, align_utterance, pool_over_intervals, spread_to_tokens
from pipeline.records import Utterance


def track(times: np.ndarray, values: np.ndarray, present: np.ndarray | None = None, name: str = "t") -> FeatureTrack:
    values = (values if values.ndim == 2 else values.reshape(len(times), -1)).astype(np.float32)
    cols = tuple(f"c{i}" for i in range(values.shape[1]))
    return FeatureTrack(name, times, values, cols, np.ones(len(times), bool) if present is None else present, 100.0)


def test_mean_of_frames_inside_interval():
    times = np.arange(100) * 0.01  # 100 Hz
    tr = track(times, times.copy())  # value == time
    vals, ok = pool_over_intervals(tr, np.array([0.10, 0.50]), np.array([0.20, 0.60]), max_gap_s=0.1)
    assert ok.all()
    np.testing.assert_allclose(vals[:, 0], [0.15, 0.55], atol=1e-6)


def test_zero_length_word_takes_nearest_frame_never_nan():
    times = np.arange(0, 3, 0.2)  # face-like 5 fps
    tr = track(times, np.arange(len(times), dtype=float))
    starts = np.array([0.31, 1.0, 2.95])
    vals, ok = pool_over_intervals(tr, starts, starts.copy(), max_gap_s=0.5)
    assert ok.all() and np.isfinite(vals).all()
    np.testing.assert_allclose(vals[:, 0], [2.0, 5.0, 14.0])  # frames at 0.4, 1.0, 2.8


def test_missing_frames_are_not_averaged_and_far_words_are_missing():
    times = np.arange(0, 4, 0.2)
    values = np.full(len(times), 7.0)
    present = times < 1.0  # face lost after 1 s
    values[~present] = 0.0
    tr = track(times, values, present)
    vals, ok = pool_over_intervals(tr, np.array([0.0, 0.9, 3.0]), np.array([0.5, 1.5, 3.5]), max_gap_s=0.5)
    assert ok.tolist() == [True, True, False]
    np.testing.assert_allclose(vals[:, 0], [7.0, 7.0, 0.0])  # the lost-face frames did not dilute word 2


def test_empty_track_gives_all_missing():
    tr = track(np.zeros(0), np.zeros((0, 3)))
    vals, ok = pool_over_intervals(tr, np.array([0.0, 1.0]), np.array([0.5, 1.5]), max_gap_s=1.0)
    assert vals.shape == (2, 3) and not ok.any() and np.isfinite(vals).all()


def test_linear_in_words_not_quadratic():
    times = np.arange(0, 3600, 0.01)  # one hour at 100 Hz
    tr = track(times, np.sin(times))
    starts = np.sort(np.random.default_rng(0).uniform(0, 3599, 20000))
    vals, ok = pool_over_intervals(tr, starts, starts + 0.25, max_gap_s=0.1)
    assert ok.all() and vals.shape == (20000, 1)


def test_spread_to_tokens_follows_word_ids_and_masks_specials():
    word_vals = np.array([[1.0], [2.0], [3.0]], np.float32)
    word_ok = np.array([True, False, True])
    ids = np.array([-1, 0, 0, 1, 2, -1])
    vals, ok = spread_to_tokens(word_vals, word_ok, ids)
    assert vals[:, 0].tolist() == [0, 1, 1, 2, 3, 0]
    assert ok.tolist() == [False, True, True, False, True, False]


def test_align_utterance_shapes_and_unaligned_sequences():
    words = [Word("good", 0.5, 0.9), Word("film", 0.9, 0.9)]  # second word has zero length
    utt = Utterance(0, 0.5, 0.9, tuple(words))
    voice = track(np.arange(0, 2, 0.01), np.ones((200, 4)), name="voice")
    face = track(np.arange(0, 2, 0.2), np.ones((10, 5)), np.arange(10) % 2 == 0, name="face")
    tokens = TokenFeatures(("[CLS]", "good", "film", "[SEP]"), np.array([-1, 0, 1, -1]),
                           np.zeros((4, 8), np.float32), "x")
    a = align_utterance(utt, ["good", "film"], np.array([[0.5, 0.9], [0.9, 0.9]]), tokens, voice, face, AlignOptions())
    assert a.audio_words.shape == (2, 4) and a.vision_words.shape == (2, 5)
    assert a.audio_present.all() and a.vision_present.all()
    assert len(a.audio_frames) == 41  # frames at 0.50 .. 0.90 inclusive
    assert a.vision_frames_present.tolist() == [False, True]  # frames at 0.6 (absent) and 0.8 (present)
    for arr in (a.audio_words, a.vision_words, a.audio_frames, a.vision_frames):
        assert np.isfinite(arr).all()


def test_align_rejects_mismatched_rows():
    utt = Utterance(0, 0.0, 1.0, (Word("a", 0, 1),))
    tokens = TokenFeatures(("a",), np.array([0]), np.zeros((1, 2), np.float32), "x")
    empty = track(np.zeros(0), np.zeros((0, 1)))
    with pytest.raises(ValueError):
        align_utterance(utt, ["a", "b"], np.array([[0, 1]]), tokens, empty, empty, AlignOptions())


def test_sample_input_spreads_words_onto_tokens_and_drops_an_absent_modality():
    from pipeline.features import to_sample_input

    words = [Word("good", 0.5, 0.9), Word("film", 1.0, 1.2)]
    utt = Utterance(0, 0.5, 1.2, tuple(words))
    voice = track(np.arange(0, 0.95, 0.01), np.arange(95, dtype=np.float32), name="voice")  # ends before "film"
    no_face = track(np.zeros(0), np.zeros((0, 5)), name="face")
    values = np.arange(32, dtype=np.float32).reshape(4, 8)
    tokens = TokenFeatures(("[CLS]", "good", "film", "[SEP]"), np.array([-1, 0, 1, -1]), values, "x")
    a = align_utterance(utt, ["good", "film"], np.array([[0.5, 0.9], [1.0, 1.2]]), tokens, voice, no_face,
                        AlignOptions(audio_max_gap_s=0.05))
    sample = to_sample_input(a)
    np.testing.assert_array_equal(sample.text, values)
    assert sample.text_mask.tolist() == [True] * 4
    assert sample.audio_mask.tolist() == [False, True, False, False]  # specials and the unheard word masked
    assert sample.audio[1, 0] == pytest.approx(np.mean(np.arange(50, 91))) and not sample.audio[[0, 2, 3]].any()
    assert sample.vision is None and sample.vision_mask is None  # no face anywhere: missing, not zeros
