"""Records that flow out of the extractors.

Frozen dataclasses, one per concept; the producer (this package) owns them. Arrays
are numpy, float32 for features, with shapes checked on construction so a mismatch
fails where it is made rather than three stages later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Media", "Frame", "Word", "Segment", "Transcript", "FeatureTrack", "TokenFeatures"]


@dataclass(frozen=True)
class Media:
    """What ``extractors.media.probe`` learnt about an input file.

    Attributes:
        path: The file as given.
        duration_s: Container duration in seconds (0.0 when unknown).
        has_audio: True when the file holds at least one audio stream.
        has_video: True when the file holds a video stream that is not a cover picture.
        width: Frame width in pixels after rotation metadata is applied, or None.
        height: Frame height in pixels after rotation, or None.
        fps: Nominal frame rate of the video stream, or None.
        rotation_deg: Display rotation from the stream metadata (0, 90, 180, 270).
        audio_sample_rate_hz: Native sample rate of the first audio stream, or None.
        video_codec: Codec name of the video stream ("h264", ...), or None.
        audio_codec: Codec name of the audio stream, or None.
        audio_stream_count: How many audio streams the file holds (``probe`` counts them;
            a record made by hand may leave 0, which reads as one when ``has_audio``).
        audio_duration_s: Duration of the first audio stream when the container records
            it per stream (Matroska/WebM do), else None; it can be shorter than
            ``duration_s``, which is the longest stream's.
    """

    path: Path
    duration_s: float
    has_audio: bool
    has_video: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation_deg: int = 0
    audio_sample_rate_hz: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_stream_count: int = 0
    audio_duration_s: float | None = None


@dataclass(frozen=True)
class Frame:
    """One sampled video frame.

    Attributes:
        time_s: Presentation time of the frame in seconds from the start.
        image: (H, W, 3) uint8 RGB, already scaled to the sampling size.
    """

    time_s: float
    image: np.ndarray


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing.

    Attributes:
        text: The word as the recogniser wrote it (with punctuation; normalise before encoding).
        start_s: Start time in seconds.
        end_s: End time in seconds (>= start_s).
        probability: The recogniser's probability for the word, in [0, 1].
    """

    text: str
    start_s: float
    end_s: float
    probability: float = 1.0

    def __post_init__(self) -> None:
        if not (self.end_s >= self.start_s):
            raise ValueError(f"Word {self.text!r}: end_s {self.end_s} < start_s {self.start_s}")


@dataclass(frozen=True)
class Segment:
    """A stretch of speech as the recogniser decoded it (roughly a sentence)."""

    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Transcript:
    """Everything the speech recogniser produced for one file.

    Attributes:
        segments: Decoded segments in time order, each with its words.
        language: ISO code of the detected (or forced) language.
        language_probability: The recogniser's confidence in ``language``.
        duration_s: Length of the audio that was transcribed.
        model_name: Which Whisper model produced it ("tiny.en", "base", or a path).
    """

    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration_s: float
    model_name: str

    @property
    def words(self) -> tuple[Word, ...]:
        """All words of all segments, in time order."""
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True)
class FeatureTrack:
    """One modality over time.

    Attributes:
        name: "voice" or "face".
        times_s: (T,) float64 frame centres in seconds, non-decreasing.
        values: (T, D) float32 features; rows where ``present`` is False are zeros.
        columns: D column names, used verbatim in CSV, weights config and model card.
        present: (T,) bool; False where the modality is missing (no face, unvoiced is NOT missing).
        rate_hz: Nominal frame rate of the track.
    """

    name: str
    times_s: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    present: np.ndarray
    rate_hz: float

    def __post_init__(self) -> None:
        t, v, p = self.times_s, self.values, self.present
        if t.ndim != 1 or v.ndim != 2 or p.ndim != 1:
            raise ValueError(
                f"FeatureTrack {self.name}: times_s {t.shape}, values {v.shape}, present {p.shape} "
                "must be (T,), (T, D), (T,)"
            )
        if not (len(t) == len(v) == len(p)):
            raise ValueError(
                f"FeatureTrack {self.name}: times_s has {len(t)} rows, values {len(v)}, present {len(p)}"
            )
        if v.shape[1] != len(self.columns):
            raise ValueError(
                f"FeatureTrack {self.name}: values has {v.shape[1]} columns, columns names {len(self.columns)}"
            )

    @property
    def coverage(self) -> float:
        """Share of frames where the modality is present (0.0 for an empty track)."""
        return float(self.present.mean()) if len(self.present) else 0.0

    def column(self, name: str) -> np.ndarray:
        """The (T,) values of one named column."""
        return self.values[:, self.columns.index(name)]


@dataclass(frozen=True)
class TokenFeatures:
    """Token-level text features with the word each token came from.

    Attributes:
        tokens: L sub-word tokens as the encoder's tokenizer wrote them (special tokens included).
        word_ids: (L,) int64 index into the encoded word list, -1 for special tokens.
        values: (L, D) float32 contextual token embeddings from the encoder's last layer.
        encoder: Name of the encoder that made them (must match the weights' config).
    """

    tokens: tuple[str, ...]
    word_ids: np.ndarray
    values: np.ndarray
    encoder: str

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or len(self.values) != len(self.tokens) or len(self.word_ids) != len(self.tokens):
            raise ValueError(
                f"TokenFeatures: {len(self.tokens)} tokens, word_ids {self.word_ids.shape}, values {self.values.shape}"
            )
