"""extractors.voice on synthesized signals with known answers, and on one real speech clip."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.assets import resolve_ffmpeg
from extractors.media import decode_audio
from extractors.voice import COLUMNS, VoiceOptions, extract_voice
from tests.conftest import SHARED, requires_shared

SPEECH_CLIP = SHARED / "data" / "mosi" / "clips" / "03bSnISJMiM_1.wav"
SR = 16000
MFCC = [c for c in COLUMNS if c.startswith("mfcc_")]


def _seconds(duration_s: float, sr: int = SR) -> np.ndarray:
    return np.arange(int(duration_s * sr)) / sr


@pytest.fixture(scope="module")
def tone_220hz() -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 220 * _seconds(3.0))).astype(np.float32)


@pytest.fixture(scope="module")
def white_noise() -> np.ndarray:
    return (0.3 * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32)


@pytest.fixture(scope="module")
def silence() -> np.ndarray:
    return np.zeros(3 * SR, dtype=np.float32)


def test_column_names_are_frozen() -> None:
    assert len(COLUMNS) == 34
    assert COLUMNS[:9] == ("f0_hz", "voiced", "rms_db", "h1_h2_db", "spectral_tilt_db_per_khz", "peak_slope",
                           "spectral_centroid_hz", "spectral_flux", "zero_crossing_rate")
    assert MFCC == [f"mfcc_{i:02d}" for i in range(25)]


@pytest.mark.parametrize("signal", ["tone_220hz", "white_noise", "silence"])
def test_track_shape_rate_and_finite_values(signal: str, request: pytest.FixtureRequest) -> None:
    audio = request.getfixturevalue(signal)
    track = extract_voice(audio, SR, VoiceOptions())
    assert track.name == "voice" and track.rate_hz == 100.0
    assert track.columns == COLUMNS
    assert track.values.shape == (300, 34) and track.values.dtype == np.float32
    assert track.times_s == pytest.approx((np.arange(300) + 0.5) / 100)
    assert track.present.dtype == bool and track.present.all()
    assert np.isfinite(track.values).all()


def test_f0_of_generated_tone(tone_220hz: np.ndarray) -> None:
    track = extract_voice(tone_220hz, SR, VoiceOptions())
    voiced = track.column("voiced") > 0
    assert voiced.mean() > 0.9
    assert np.median(track.column("f0_hz")[voiced]) == pytest.approx(220, rel=0.02)
    assert set(np.unique(track.column("voiced"))) <= {0.0, 1.0}
    assert np.all(track.column("f0_hz")[~voiced] == 0)


@pytest.mark.parametrize("signal", ["white_noise", "silence"])
def test_noise_and_silence_are_unvoiced(signal: str, request: pytest.FixtureRequest) -> None:
    track = extract_voice(request.getfixturevalue(signal), SR, VoiceOptions())
    voiced = track.column("voiced") > 0
    assert voiced.mean() < 0.1
    assert np.all(track.column("f0_hz")[~voiced] == 0)
    assert np.all(track.column("h1_h2_db")[~voiced] == 0)


def test_loudness_zero_crossings_and_centroid(tone_220hz: np.ndarray, white_noise: np.ndarray,
                                              silence: np.ndarray) -> None:
    tone = extract_voice(tone_220hz, SR, VoiceOptions())
    noise = extract_voice(white_noise, SR, VoiceOptions())
    quiet = extract_voice(silence, SR, VoiceOptions())
    inner = slice(5, -5)  # away from the zero padding at the ends
    # A 0.5-amplitude sine has RMS 0.5 / sqrt(2): -9.03 dB re full scale.
    assert np.median(tone.column("rms_db")[inner]) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)
    assert np.all(quiet.column("rms_db") == pytest.approx(-100.0))
    # A sine crosses zero twice per period; white noise on half of all sample pairs.
    assert np.median(tone.column("zero_crossing_rate")[inner]) == pytest.approx(2 * 220 / SR, rel=0.1)
    assert np.median(noise.column("zero_crossing_rate")[inner]) == pytest.approx(0.5, abs=0.03)
    assert np.median(tone.column("spectral_centroid_hz")[inner]) == pytest.approx(220, rel=0.1)
    assert np.median(noise.column("spectral_centroid_hz")[inner]) == pytest.approx(SR / 4, rel=0.1)
    # A steady sine barely changes from frame to frame; noise does.
    assert np.median(tone.column("spectral_flux")[inner]) < 0.05 < np.median(noise.column("spectral_flux")[inner])
    assert np.all(quiet.column("spectral_flux") == 0)


@pytest.mark.parametrize("f0_hz", [100.0, 220.0])
def test_h1_h2_of_known_harmonic_amplitudes(f0_hz: float) -> None:
    t = _seconds(2.0)
    # Second harmonic at half the amplitude of the first: H1-H2 = 20 log10(2) = 6.02 dB.
    audio = 0.4 * np.sin(2 * np.pi * f0_hz * t) + 0.2 * np.sin(2 * np.pi * 2 * f0_hz * t)
    audio += 0.1 * np.sin(2 * np.pi * 3 * f0_hz * t)
    track = extract_voice(audio.astype(np.float32), SR, VoiceOptions())
    voiced = track.column("voiced") > 0
    assert voiced.mean() > 0.9
    assert np.median(track.column("f0_hz")[voiced]) == pytest.approx(f0_hz, rel=0.02)
    assert np.median(track.column("h1_h2_db")[voiced]) == pytest.approx(20 * np.log10(2), abs=0.5)


def test_spectral_tilt_and_peak_slope_fall_for_dull_sound(white_noise: np.ndarray) -> None:
    # Integrated white noise ("brown" noise) loses 6 dB per octave; white noise is flat.
    brown = np.cumsum(white_noise.astype(np.float64))
    brown = (0.3 * (brown - brown.mean()) / np.abs(brown - brown.mean()).max()).astype(np.float32)
    flat = extract_voice(white_noise, SR, VoiceOptions())
    dull = extract_voice(brown, SR, VoiceOptions())
    inner = slice(5, -5)
    assert abs(np.median(flat.column("spectral_tilt_db_per_khz")[inner])) < 1.0
    assert np.median(dull.column("spectral_tilt_db_per_khz")[inner]) < -2.0
    assert abs(np.median(flat.column("peak_slope")[inner])) < 3.0
    assert np.median(dull.column("peak_slope")[inner]) == pytest.approx(-6.0, abs=2.0)


def test_mfccs_differ_between_tone_and_noise(tone_220hz: np.ndarray, white_noise: np.ndarray) -> None:
    tone = extract_voice(tone_220hz, SR, VoiceOptions()).values[:, [COLUMNS.index(c) for c in MFCC]]
    noise = extract_voice(white_noise, SR, VoiceOptions()).values[:, [COLUMNS.index(c) for c in MFCC]]
    between = np.linalg.norm(tone.mean(axis=0) - noise.mean(axis=0))
    within = np.linalg.norm(noise.std(axis=0))
    assert between > 10 * within


def test_empty_and_very_short_audio() -> None:
    empty = extract_voice(np.zeros(0, dtype=np.float32), SR, VoiceOptions())
    assert empty.values.shape == (0, 34) and len(empty.times_s) == 0 and empty.coverage == 0.0
    shorter_than_a_hop = extract_voice(np.full(100, 0.1, dtype=np.float32), SR, VoiceOptions())
    assert shorter_than_a_hop.values.shape == (0, 34)
    short = extract_voice((0.5 * np.sin(2 * np.pi * 220 * _seconds(0.03))).astype(np.float32), SR, VoiceOptions())
    assert short.values.shape == (3, 34) and np.isfinite(short.values).all()


def test_other_sample_rates_give_the_same_pitch_and_rate() -> None:
    sr = 44100
    audio = (0.5 * np.sin(2 * np.pi * 220 * _seconds(2.0, sr))).astype(np.float32)
    track = extract_voice(audio, sr, VoiceOptions())
    assert track.values.shape == (200, 34)
    assert np.median(track.column("f0_hz")) == pytest.approx(220, rel=0.02)
    assert np.isfinite(track.values).all()


def test_bad_input_and_options() -> None:
    with pytest.raises(ValueError, match="mono"):
        extract_voice(np.zeros((SR, 2), dtype=np.float32), SR, VoiceOptions())
    with pytest.raises(ValueError, match="n_mfcc"):
        VoiceOptions(n_mfcc=13)
    with pytest.raises(ValueError, match="f0_min_hz"):
        VoiceOptions(f0_min_hz=500.0, f0_max_hz=60.0)


@pytest.mark.slow
@pytest.mark.skipif(not SPEECH_CLIP.exists(), reason=f"shared data not found at {SPEECH_CLIP} (set MIAR_SHARED)")
def test_real_speech_clip() -> None:
    audio = decode_audio(SPEECH_CLIP, resolve_ffmpeg(), 16000)
    track = extract_voice(audio, 16000, VoiceOptions())
    assert len(track.times_s) == pytest.approx(len(audio) / 160, abs=1)
    voiced = track.column("voiced") > 0
    assert 0.2 < voiced.mean() < 0.9
    assert 70 < np.median(track.column("f0_hz")[voiced]) < 400
    assert np.isfinite(track.values).all()
    # Speech has a negative spectral tilt and H1 usually above H2 within a few dB.
    assert np.median(track.column("spectral_tilt_db_per_khz")) < 0
    assert -10 < np.median(track.column("h1_h2_db")[voiced]) < 20


def _parity(audio: np.ndarray) -> None:
    """librosa's columns against the old NumPy definitions (tests/voice_reference.py) on real speech."""
    from tests.voice_reference import SPECTRAL, reference_columns

    track = extract_voice(audio, 16000, VoiceOptions())
    reference = reference_columns(audio, 16000)
    speech = track.column("rms_db") > -60  # frames with sound: silence makes every definition agree trivially
    assert speech.sum() > 50
    for name in SPECTRAL:
        new, old = track.column(name)[speech], reference[name][speech]
        if name.startswith("mfcc_"):
            assert np.corrcoef(new, old)[0, 1] > 0.9999, name
            assert np.max(np.abs(new - old)) < 0.01, name
        elif name == "zero_crossing_rate":
            # by design: librosa divides by the frame length (400), the old code by the 399 sample pairs
            assert np.max(np.abs(new - old)) < 0.03, name
            assert np.corrcoef(new, old)[0, 1] > 0.999, name
        elif name == "spectral_centroid_hz":
            assert np.max(np.abs(new - old)) < 0.5, name
        else:
            assert np.max(np.abs(new - old)) < 0.01, name


@pytest.mark.slow
def test_librosa_columns_match_the_old_definitions_on_the_example(example_clip) -> None:
    _parity(decode_audio(example_clip, resolve_ffmpeg(), 16000))


@pytest.mark.slow
@requires_shared
def test_librosa_columns_match_the_old_definitions_on_a_grid_clip(shared) -> None:
    clip = shared / "data" / "clips" / "grid" / "bbaf2n.mpg"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    _parity(decode_audio(clip, resolve_ffmpeg(), 16000))


def test_audio_at_22050_hz_is_analysed_on_the_same_frame_times() -> None:
    sr = 22050  # a 10 ms hop is 220.5 samples: resampled to 16 kHz inside, times unchanged
    t = np.arange(int(1.0 * sr)) / sr
    track = extract_voice((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, VoiceOptions())
    assert len(track.times_s) == 100 and track.times_s[0] == pytest.approx(0.005)
    voiced = track.column("voiced") > 0
    assert np.median(track.column("f0_hz")[voiced]) == pytest.approx(220, rel=0.02)
    assert np.median(track.column("spectral_centroid_hz")[voiced]) == pytest.approx(220, rel=0.1)
