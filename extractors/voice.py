"""COVAREP-style voice descriptors at 100 Hz, computed on the CPU in a fraction of real time.

CMU-MOSI's acoustic features come from COVAREP (MATLAB, 74 columns at 100 Hz). We cannot
ship MATLAB, so this module computes a smaller, documented set with the same frame rate
and the same kind of information: pitch and voicing, loudness, voice quality (H1-H2,
spectral tilt, peak slope), spectral shape and MFCCs. The model is trained on *these*
columns, never on COVAREP's, so the stand-ins only need to be stable and meaningful.

Every row describes one 10 ms hop; its time is the hop's centre, ``(i + 0.5) * hop_ms``,
so a frame belongs to a word when its time falls inside the word. The analysis windows
(25 ms for spectra, 50 ms for harmonics, Praat's own for F0) are centred on that time,
with zeros beyond the ends of the audio.

==========================  ============================  ==========================================
column                      COVAREP counterpart           how it is computed here
==========================  ============================  ==========================================
f0_hz                       F0                            Praat autocorrelation pitch (parselmouth),
                                                          0 where unvoiced
voiced                      VUV                           1 where Praat finds a pitch, else 0
rms_db                      none (energy)                 ``librosa.feature.rms`` of the plain 25 ms
                                                          frame, ``amplitude_to_db`` re full scale,
                                                          floored at -100 dB
h1_h2_db                    H1H2                          dB difference of the spectral peaks at F0
                                                          and 2*F0 in the ``librosa.stft`` of a 50 ms
                                                          Hann window (no formant correction), 0
                                                          where unvoiced
spectral_tilt_db_per_khz    none (closest: HMPDD/NAQ      least-squares slope of the 25 ms
                            family of glottal-source      ``librosa.stft`` power in dB
                            measures)                     (``power_to_db``) against frequency,
                                                          50 Hz to min(8 kHz, Nyquist)
peak_slope                  peakSlope                     stand-in: slope (dB per octave) of a line
                                                          fitted to the peak level (dB) of the 25 ms
                                                          ``librosa.stft`` in each octave band centred
                                                          at 250, 500, ... Hz; COVAREP uses wavelet
                                                          band peaks instead
spectral_centroid_hz        none                          ``librosa.feature.spectral_centroid`` of the
                                                          25 ms magnitude spectrum, 0 in silence
spectral_flux               none                          Euclidean distance between consecutive
                                                          frames' unit-norm ``librosa.stft``
                                                          magnitudes, in [0, sqrt(2)]; 0 for the
                                                          first frame (librosa's ``onset_strength``
                                                          is half-wave rectified, a different
                                                          measure, so the column keeps its own)
zero_crossing_rate          none                          ``librosa.feature.zero_crossing_rate`` of
                                                          the 25 ms frame (crossings / frame length;
                                                          |x| <= 1e-10 counts as zero)
mfcc_00 .. mfcc_24          MCEP_0 .. MCEP_24 (stand-in)  ``librosa.feature.mfcc`` (DCT-II,
                                                          orthonormal) of ``power_to_db`` of
                                                          ``melspectrogram``: 40 HTK-mel bands with
                                                          unit-sum filters over the 25 ms power
                                                          spectrum; mfcc_00 is the log-energy term
==========================  ============================  ==========================================

The 25 ms spectrum is ``librosa.stft`` with a 25 ms Hann window (no zero end points) centred
in a 512-point frame (16 kHz). librosa frames at a constant whole-sample hop, so audio whose
10 ms hop is not a whole number of samples (22.05 kHz) is first resampled to 16 kHz with
``librosa.resample``; frame times never change. Against the hand-written NumPy definitions
these columns replaced, on real speech every column agrees to float precision (MFCC
correlation 1.000000 per coefficient, centroid within 0.001 Hz) except the zero-crossing
rate, which differs by design by at most about 0.02 (librosa divides by the frame length,
400 samples, where the old code divided by the 399 sample pairs): ``tests/test_voice.py``
checks this parity against a reference copy of the old definitions.

COVAREP columns without any counterpart here: NAQ, QOQ, MDQ, Rd, Rd_conf, creak,
HMPDM/HMPDD, and the harmonic model phase features.

Speed (``python bench/voice.py --compare 860853d``: this module against the hand-written NumPy
version it replaced, interleaved in one process, 60 s of 16 kHz speech, best of 7, load average 0.5):
0.370 s per 60 s here, 0.416 s for the NumPy version; Praat's pitch alone took 0.238 s of it in that
run, so the 0.25 s target is out of reach on this machine today for either version (the NumPy version
measured 0.17 s in an earlier session, on a faster day of the same shared machine). librosa's first use
in a process costs about 2 s more (its lazy imports of scipy.signal and numba's cached kernels): it
lands in the first file's voice stage. Doing it on a thread while the models load was tried and
dropped: it slowed the loads by as much (two cores, one GIL). librosa's ``yin`` took 12.3 s per 60 s
and ``pyin`` 2.6 s per 10 s on this project's 2-core CPU, which is why F0 comes from Praat.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import librosa
import numpy as np
import parselmouth

from extractors.media import SAMPLE_RATE_HZ
from extractors.records import FeatureTrack

__all__ = ["COLUMNS", "VoiceOptions", "extract_voice", "RATE_HZ"]

log = logging.getLogger(__name__)

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

_COL = {name: i for i, name in enumerate(COLUMNS)}
_MFCC_COLUMNS = tuple(name for name in COLUMNS if name.startswith("mfcc_"))

#: Nominal frame rate with the default 10 ms hop (COVAREP's rate).
RATE_HZ = 100.0

#: Floor for dB values, so that digital silence gives finite numbers.
_FLOOR_DB = -100.0
_EPS_POWER = 10.0 ** (_FLOOR_DB / 10.0)
_FLOOR_AMPLITUDE = 10.0 ** (_FLOOR_DB / 20.0)
#: Rate that audio is resampled to when the hop is not a whole number of samples at its own rate.
_RESAMPLE_RATE_HZ = SAMPLE_RATE_HZ
#: Frames analysed at once: bounds memory (a few MB) for hour-long audio.
_CHUNK_FRAMES = 2000
#: Spectral tilt is fitted over this band, so that 16 kHz and 44.1 kHz audio agree.
_TILT_BAND_HZ = (50.0, 8000.0)
#: Centre of the lowest octave band of the peak-slope stand-in.
_PEAK_SLOPE_LOWEST_HZ = 250.0
#: Harmonic peaks are searched within this fraction of F0 around k * F0.
_HARMONIC_SEARCH = 0.1
#: Bin spacing wanted for the harmonic spectrum (zero-padding), in Hz.
_HARMONIC_BIN_HZ = 8.0


@dataclass(frozen=True)
class VoiceOptions:
    """How voice descriptors are computed.

    Attributes:
        hop_ms: Frame step. 10 ms (100 Hz) as COVAREP, so the model sees CMU-MOSI's rate.
        window_ms: Window of the spectral features and MFCCs. 25 ms spans two to three
            glottal periods of a low voice, the usual speech-analysis compromise between
            time and frequency resolution.
        harmonic_window_ms: Window for H1-H2. It must hold about three periods of the
            lowest F0 (3 / 60 Hz = 50 ms) so that the first two harmonics are resolved
            as separate peaks; 25 ms would merge them for low voices.
        f0_min_hz: Lowest pitch searched. 60 Hz covers low male voices; lower values
            lengthen Praat's window (3 periods) and blur fast pitch changes.
        f0_max_hz: Highest pitch searched. 500 Hz covers high female and excited speech
            while keeping octave errors on noise rare.
        voicing_threshold: Praat's voicing threshold (its default, 0.45): a frame is voiced
            when its normalised autocorrelation peak exceeds this.
        n_mfcc: Number of cepstral coefficients. Fixed at 25 by ``COLUMNS`` (the count
            of COVAREP's MCEP columns); kept here so the options record what made a track.
        n_mels: Mel bands the MFCCs are computed from (40 is usual at 16 kHz).
    """

    hop_ms: float = 10.0
    window_ms: float = 25.0
    harmonic_window_ms: float = 50.0
    f0_min_hz: float = 60.0
    f0_max_hz: float = 500.0
    voicing_threshold: float = 0.45
    n_mfcc: int = 25
    n_mels: int = 40

    def __post_init__(self) -> None:
        if self.n_mfcc != len(_MFCC_COLUMNS):
            raise ValueError(f"VoiceOptions.n_mfcc is {self.n_mfcc}, but COLUMNS hold {len(_MFCC_COLUMNS)} MFCCs")
        if self.n_mels < self.n_mfcc:
            raise ValueError(f"VoiceOptions.n_mels ({self.n_mels}) must be >= n_mfcc ({self.n_mfcc})")
        if not 0 < self.f0_min_hz < self.f0_max_hz:
            raise ValueError(f"VoiceOptions: need 0 < f0_min_hz ({self.f0_min_hz}) < f0_max_hz ({self.f0_max_hz})")
        if self.hop_ms <= 0 or self.window_ms <= 0 or self.harmonic_window_ms <= 0:
            raise ValueError("VoiceOptions: hop_ms, window_ms and harmonic_window_ms must be positive")


def extract_voice(audio: np.ndarray, sample_rate_hz: int, options: VoiceOptions = VoiceOptions()) -> FeatureTrack:
    """Voice descriptors of mono audio, one row per ``hop_ms``.

    Silence is data, not a gap: every row is present; ``voiced`` says whether the frame
    has a pitch and ``f0_hz`` / ``h1_h2_db`` are 0 where it has none.

    Args:
        audio: (N,) mono samples in [-1, 1] (float32 from ``extractors.media.decode_audio``).
        sample_rate_hz: Sample rate of ``audio``; 16 kHz is the pipeline's, any rate works.
        options: Analysis settings.

    Returns:
        A "voice" track: times_s (T,) hop centres with T = floor(duration / hop), values
        (T, 34) float32 in ``COLUMNS`` order, present all True, rate_hz = 1000 / hop_ms.
        Empty (T = 0) for audio shorter than one hop.

    Raises:
        ValueError: ``audio`` is not one-dimensional or the sample rate is not positive.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"extract_voice wants mono (N,) audio, got shape {audio.shape}")
    if sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
    x = audio.astype(np.float32, copy=True)
    if not np.all(np.isfinite(x)):
        log.warning("audio holds NaN or infinite samples; they are treated as silence")
        x[~np.isfinite(x)] = 0.0

    hop_s = options.hop_ms / 1000.0
    n_frames = int(np.floor(len(x) / (hop_s * sample_rate_hz) + 1e-9))
    times_s = (np.arange(n_frames) + 0.5) * hop_s
    values = np.zeros((n_frames, len(COLUMNS)), dtype=np.float32)
    if n_frames > 0:
        x, rate_hz = _with_whole_hop(x, sample_rate_hz, hop_s)
        hop = int(round(hop_s * rate_hz))
        f0_hz = _pitch(x, rate_hz, times_s, options)
        values[:, _COL["f0_hz"]] = f0_hz
        values[:, _COL["voiced"]] = f0_hz > 0
        analyser = _Analyser(x, rate_hz, hop, options)
        for start in range(0, n_frames, _CHUNK_FRAMES):
            analyser.fill(values, f0_hz, start, min(start + _CHUNK_FRAMES, n_frames))
    return FeatureTrack(
        name="voice",
        times_s=times_s,
        values=values,
        columns=COLUMNS,
        present=np.ones(n_frames, dtype=bool),
        rate_hz=1000.0 / options.hop_ms,
    )


def _with_whole_hop(x: np.ndarray, sample_rate_hz: int, hop_s: float) -> tuple[np.ndarray, int]:
    """``x`` at a rate where one hop is a whole number of samples (librosa frames at an integer hop).

    16, 44.1 and 48 kHz already are (10 ms = 160, 441, 480 samples); 22.05 kHz is not
    (220.5), and rounding the hop would let frames drift from their times, so such audio is
    resampled to 16 kHz with ``librosa.resample`` (soxr) first. Frame times do not change.
    """
    hop = hop_s * sample_rate_hz
    if abs(hop - round(hop)) < 1e-6:
        return x, sample_rate_hz
    log.debug("resampling %d Hz audio to %d Hz (a %.1f ms hop is %.2f samples)", sample_rate_hz,
              _RESAMPLE_RATE_HZ, hop_s * 1000, hop)
    resampled = librosa.resample(x, orig_sr=sample_rate_hz, target_sr=_RESAMPLE_RATE_HZ, res_type="soxr_hq")
    return resampled.astype(np.float32), _RESAMPLE_RATE_HZ


def _pitch(x: np.ndarray, sample_rate_hz: int, times_s: np.ndarray, options: VoiceOptions) -> np.ndarray:
    """F0 in Hz at ``times_s`` (0 = unvoiced) from Praat's autocorrelation method.

    Praat places its own frames; each of ours takes the nearest one, and frames outside
    Praat's range (the first and last half window) count as unvoiced.
    """
    sound = parselmouth.Sound(x.astype(np.float64), sampling_frequency=float(sample_rate_hz))
    try:
        pitch = sound.to_pitch_ac(
            time_step=options.hop_ms / 1000.0,
            pitch_floor=options.f0_min_hz,
            pitch_ceiling=options.f0_max_hz,
            voicing_threshold=options.voicing_threshold,
        )
    except parselmouth.PraatError as e:  # audio shorter than Praat's window (3 periods of f0_min)
        log.debug("no pitch analysis for %.3f s of audio: %s", len(x) / sample_rate_hz, e)
        return np.zeros(len(times_s), dtype=np.float32)
    praat_f0 = np.nan_to_num(pitch.selected_array["frequency"].astype(np.float32), nan=0.0)
    if len(praat_f0) == 0:
        return np.zeros(len(times_s), dtype=np.float32)
    index = np.rint((times_s - pitch.x1) / pitch.dx).astype(np.int64)
    inside = (index >= 0) & (index < len(praat_f0))
    f0_hz = np.zeros(len(times_s), dtype=np.float32)
    f0_hz[inside] = praat_f0[index[inside]]
    return f0_hz


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class _Analyser:
    """The fixed parts of the spectral analysis for one signal: framing, windows, filters.

    Built once per call of ``extract_voice`` and filled chunk by chunk; holds no state
    between calls. Frame ``i`` is centred on sample ``floor((i + 0.5) * hop)``; librosa
    frames a signal at a constant hop from its first sample (``center=False``), so each
    chunk hands librosa the slice of the zero-padded signal whose first frame is centred
    on the chunk's first frame centre.
    """

    def __init__(self, x: np.ndarray, sample_rate_hz: int, hop: int, options: VoiceOptions) -> None:
        sr = sample_rate_hz
        self.sr = sr
        self.hop = hop
        self.win = max(2, int(round(options.window_ms / 1000.0 * sr)))
        self.n_fft = _next_pow2(self.win)
        self.win_h = max(2, int(round(options.harmonic_window_ms / 1000.0 * sr)))
        self.n_fft_h = _next_pow2(max(self.win_h, int(np.ceil(sr / _HARMONIC_BIN_HZ))))
        self.pad = max(self.n_fft, self.n_fft_h) // 2 + 1
        self.padded = np.pad(x, (self.pad, self.pad))
        # Hann windows without zero end points: every sample of the window counts.
        self.window = np.hanning(self.win + 2)[1:-1]
        self.window_h = np.hanning(self.win_h + 2)[1:-1]
        self.freqs = librosa.fft_frequencies(sr=sr, n_fft=self.n_fft).astype(np.float32)

        # Spectral tilt: slope = dB-spectrum @ tilt_weights (least squares against kHz).
        lo, hi = _TILT_BAND_HZ[0], min(_TILT_BAND_HZ[1], sr / 2.0)
        band = (self.freqs >= lo) & (self.freqs <= hi)
        f_khz = self.freqs[band] / 1000.0
        centred = f_khz - f_khz.mean()
        self.tilt_bins = np.flatnonzero(band)
        self.tilt_weights = (centred / np.sum(centred**2)).astype(np.float32)

        # Peak slope stand-in: octave bands that fit below Nyquist.
        self.octave_bins: list[np.ndarray] = []
        centre_hz = _PEAK_SLOPE_LOWEST_HZ
        while centre_hz * np.sqrt(2.0) <= sr / 2.0 + 1e-6:
            bins = np.flatnonzero((self.freqs >= centre_hz / np.sqrt(2.0)) & (self.freqs < centre_hz * np.sqrt(2.0)))
            if len(bins):
                self.octave_bins.append(bins)
            centre_hz *= 2.0
        octave = np.arange(len(self.octave_bins), dtype=np.float32)
        octave -= octave.mean() if len(octave) else 0.0
        denominator = float(np.sum(octave**2))
        self.octave_weights = octave / denominator if denominator > 0 else octave * 0.0

        # MFCCs from unit-sum (L1-normalised) HTK-mel filters from 0 Hz to Nyquist: a band's value
        # is the mean power in the band, so they do not depend on how many FFT bins a band covers.
        self.n_mels = options.n_mels
        self.n_mfcc = options.n_mfcc

    def _slice(self, first: int, count: int, length: int) -> np.ndarray:
        """The padded signal holding ``count`` frames of ``length`` samples from frame ``first`` on."""
        centre = (2 * first + 1) * self.hop // 2  # floor((first + 0.5) * hop)
        start = centre - length // 2 + self.pad
        return self.padded[start:start + (count - 1) * self.hop + length]

    def _stft_magnitude(self, first: int, count: int, n_fft: int, window: np.ndarray) -> np.ndarray:
        """(count, n_fft // 2 + 1) float32 magnitudes; librosa centres the window in each n_fft frame."""
        segment = self._slice(first, count, n_fft)
        spectrum = librosa.stft(segment, n_fft=n_fft, hop_length=self.hop, win_length=len(window),
                                window=window, center=False)
        return np.abs(spectrum[:, :count]).T.astype(np.float32)

    def fill(self, values: np.ndarray, f0_hz: np.ndarray, start: int, stop: int) -> None:
        """Write every spectral column of rows ``start:stop`` of ``values``."""
        # One extra frame before the chunk, for the flux of its first row.
        first = max(0, start - 1)
        rows = slice(start, stop)
        n = stop - start
        own = slice(start - first, None)  # the chunk's rows within the frames from ``first``

        # Time-domain columns over the plain (unwindowed) 25 ms frames.
        segment = self._slice(start, n, self.win)
        rms = librosa.feature.rms(y=segment, frame_length=self.win, hop_length=self.hop, center=False)[0, :n]
        values[rows, _COL["rms_db"]] = librosa.amplitude_to_db(rms, ref=1.0, amin=_FLOOR_AMPLITUDE, top_db=None)
        values[rows, _COL["zero_crossing_rate"]] = librosa.feature.zero_crossing_rate(
            segment, frame_length=self.win, hop_length=self.hop, center=False)[0, :n]

        magnitude = self._stft_magnitude(first, stop - first, self.n_fft, self.window)
        norms = np.linalg.norm(magnitude, axis=1, keepdims=True)
        unit = np.divide(magnitude, norms, out=np.zeros_like(magnitude), where=norms > 0)
        flux = np.linalg.norm(np.diff(unit, axis=0), axis=1)
        values[rows, _COL["spectral_flux"]] = flux if start > 0 else np.concatenate(([0.0], flux))

        magnitude = magnitude[own]
        values[rows, _COL["spectral_centroid_hz"]] = librosa.feature.spectral_centroid(
            S=magnitude.T, freq=self.freqs)[0]

        power = magnitude**2
        db = librosa.power_to_db(power, ref=1.0, amin=_EPS_POWER, top_db=None)
        values[rows, _COL["spectral_tilt_db_per_khz"]] = db[:, self.tilt_bins] @ self.tilt_weights
        if self.octave_bins:
            peaks_db = np.stack([db[:, bins].max(axis=1) for bins in self.octave_bins], axis=1)
            values[rows, _COL["peak_slope"]] = peaks_db @ self.octave_weights

        with warnings.catch_warnings():  # at very low rates a band can be narrower than a bin: it stays empty
            warnings.simplefilter("ignore", UserWarning)
            mel_power = librosa.feature.melspectrogram(S=power.T, sr=self.sr, n_fft=self.n_fft, n_mels=self.n_mels,
                                                       htk=True, norm=1.0)
        mel_db = librosa.power_to_db(mel_power, ref=1.0, amin=_EPS_POWER, top_db=None)
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=self.n_mfcc, dct_type=2, norm="ortho")
        values[rows, _COL["mfcc_00"]:_COL["mfcc_00"] + self.n_mfcc] = mfcc.T

        values[rows, _COL["h1_h2_db"]] = self._h1_h2_db(start, n, f0_hz[rows])

    def _h1_h2_db(self, start: int, count: int, f0_hz: np.ndarray) -> np.ndarray:
        """H1-H2 in dB for voiced frames (0 elsewhere) from a long, zero-padded window."""
        result = np.zeros(count, dtype=np.float32)
        voiced = np.flatnonzero(f0_hz > 0)
        if len(voiced) == 0:
            return result
        # One librosa.stft per run of consecutive voiced frames: unvoiced frames cost no FFT.
        breaks = np.flatnonzero(np.diff(voiced) > 1) + 1
        runs = zip(np.concatenate(([0], breaks)), np.concatenate((breaks, [len(voiced)])))
        magnitude = np.concatenate([
            self._stft_magnitude(start + int(voiced[a]), int(b - a), self.n_fft_h, self.window_h) for a, b in runs
        ])
        # Only the bins around F0 and 2*F0 are read: convert just those to dB.
        top_bin = min(magnitude.shape[1], int(np.ceil(2 * (1 + _HARMONIC_SEARCH) * f0_hz.max() * self.n_fft_h
                                                      / self.sr)) + 2)
        db = librosa.amplitude_to_db(magnitude[:, :top_bin], ref=1.0, amin=_FLOOR_AMPLITUDE, top_db=None)
        bin_hz = self.sr / self.n_fft_h
        f0 = f0_hz[voiced].astype(np.float64)
        half_width = np.maximum(1, np.ceil(_HARMONIC_SEARCH * f0 / bin_hz)).astype(np.int64)
        offsets = np.arange(-half_width.max(), half_width.max() + 1)
        last_bin = db.shape[1] - 1

        def harmonic_db(k: int) -> np.ndarray:
            centre = np.rint(k * f0 / bin_hz).astype(np.int64)
            candidates = np.clip(centre[:, None] + offsets[None, :], 0, last_bin)
            levels = np.take_along_axis(db, candidates, axis=1)
            levels[np.abs(offsets)[None, :] > half_width[:, None]] = -np.inf
            return levels.max(axis=1)

        result[voiced] = harmonic_db(1) - harmonic_db(2)
        return result

