"""COVAREP-style voice descriptors at 100 Hz (helper: fill in; keep COLUMNS exactly)."""

from __future__ import annotations

#: Column names of the voice FeatureTrack, in order. The shipped weights record them
#: and refuse to load against different ones.
COLUMNS: tuple[str, ...] = (
    "f0_hz",
    "voiced",
    "rms_db",
    "h1_h2_db",
    "spectral_tilt_db_per_khz",
    "peak_slope",
    "spectral_centroid_hz",
    "spectral_flux",
    "zero_crossing_rate",
) + tuple(f"mfcc_{i:02d}" for i in range(25))
