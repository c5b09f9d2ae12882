"""The hand-written NumPy definitions of the voice columns that librosa replaced (reference only).

``extractors.voice`` now takes its spectra, MFCCs, RMS, centroid and zero-crossing rate
from librosa. This module keeps the previous definitions, written for this project, so
that ``tests/test_voice.py`` can show the two agree where they should and document where
they differ by design. It is a test oracle, not a second implementation of the product.
"""

from __future__ import annotations

import numpy as np

from extractors.voice import COLUMNS, VoiceOptions

_FLOOR_DB = -100.0
_EPS_POWER = 10.0 ** (_FLOOR_DB / 10.0)
SPECTRAL = ("rms_db", "spectral_tilt_db_per_khz", "peak_slope", "spectral_centroid_hz", "spectral_flux",
            "zero_crossing_rate") + tuple(c for c in COLUMNS if c.startswith("mfcc_"))


def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(np.array(sr / 2.0)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    weights = np.clip(np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)), 0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def _dct(n_in: int, n_out: int) -> np.ndarray:
    k, n = np.arange(n_out)[None, :], np.arange(n_in)[:, None]
    matrix = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    matrix[:, 0] /= np.sqrt(2.0)
    return matrix


def reference_columns(x: np.ndarray, sr: int, options: VoiceOptions = VoiceOptions()) -> dict[str, np.ndarray]:
    """The spectral columns of ``x`` (16 kHz mono float32) by the old NumPy definitions."""
    hop_s = options.hop_ms / 1000.0
    n_frames = int(np.floor(len(x) / (hop_s * sr) + 1e-9))
    times = (np.arange(n_frames) + 0.5) * hop_s
    win = int(round(options.window_ms / 1000.0 * sr))
    n_fft = 1 << int(win - 1).bit_length()
    pad = win
    padded = np.pad(x.astype(np.float32), (pad, pad))
    starts = np.rint(times * sr).astype(np.int64) - win // 2 + pad
    frames = padded[starts[:, None] + np.arange(win)[None, :]]
    window = np.hanning(win + 2)[1:-1]
    out: dict[str, np.ndarray] = {}
    out["rms_db"] = 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=1), _EPS_POWER))
    signs = np.signbit(frames)
    out["zero_crossing_rate"] = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    magnitude = np.abs(np.fft.rfft(frames * window, n=n_fft, axis=1))
    unit = magnitude / np.maximum(np.linalg.norm(magnitude, axis=1, keepdims=True), 1e-30)
    out["spectral_flux"] = np.concatenate(([0.0], np.linalg.norm(np.diff(unit, axis=0), axis=1)))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    total = magnitude.sum(axis=1)
    out["spectral_centroid_hz"] = np.where(total > 0, magnitude @ freqs / np.maximum(total, 1e-30), 0.0)
    db = 10.0 * np.log10(np.maximum(magnitude**2, _EPS_POWER))
    band = (freqs >= 50.0) & (freqs <= min(8000.0, sr / 2.0))
    centred = freqs[band] / 1000.0 - (freqs[band] / 1000.0).mean()
    out["spectral_tilt_db_per_khz"] = db[:, band] @ (centred / np.sum(centred**2))
    bands, centre = [], 250.0
    while centre * np.sqrt(2.0) <= sr / 2.0 + 1e-6:
        bins = np.flatnonzero((freqs >= centre / np.sqrt(2.0)) & (freqs < centre * np.sqrt(2.0)))
        if len(bins):
            bands.append(bins)
        centre *= 2.0
    octave = np.arange(len(bands), dtype=np.float64) - (len(bands) - 1) / 2.0
    peaks = np.stack([db[:, b].max(axis=1) for b in bands], axis=1)
    out["peak_slope"] = peaks @ (octave / np.sum(octave**2))
    mel_db = 10.0 * np.log10(np.maximum(magnitude**2 @ _mel_filterbank(sr, n_fft, options.n_mels).T, _EPS_POWER))
    mfcc = mel_db @ _dct(options.n_mels, options.n_mfcc)
    for i in range(options.n_mfcc):
        out[f"mfcc_{i:02d}"] = mfcc[:, i]
    return out
