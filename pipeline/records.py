"""Records the pipeline produces: utterances, their aligned features, scores, results.

The pipeline owns these (STYLE.md §2); extractors' records come from
``extractors.records``. All frozen: a stage returns new records, never edits old ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from extractors.records import Media, TokenFeatures, Transcript, Word

if TYPE_CHECKING:  # model.batch imports torch; these records are read by light modules too
    from model.batch import SampleInput

__all__ = ["Utterance", "AlignedUtterance", "VideoFeatures", "Signals", "UtteranceScore", "VideoResult"]


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech scored as one unit (roughly a sentence).

    Attributes:
        index: 0-based position in the video.
        start_s: Start of the first word, seconds.
        end_s: End of the last word, seconds.
        words: The recognised words, in time order.
    """

    index: int
    start_s: float
    end_s: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        """The words joined with single spaces, as the recogniser wrote them."""
        return " ".join(w.text for w in self.words)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class AlignedUtterance:
    """One utterance with every modality brought to its words.

    Word-level rows are the mean of the frames inside each word's interval (or the
    nearest frame when the interval holds none); ``*_present`` says where a modality
    had data. The unaligned frame sequences inside the utterance are kept as well.

    Attributes:
        utterance: The utterance.
        words: (W) normalised word strings that were encoded (empty words dropped).
        word_times_s: (W, 2) float64 start/end of each encoded word.
        tokens: Text features; ``tokens.word_ids`` index into ``words``.
        audio_words: (W, Da) float32 voice descriptors per word.
        audio_present: (W,) bool.
        vision_words: (W, Dv) float32 face descriptors per word.
        vision_present: (W,) bool.
        audio_frames: (La, Da) float32 voice frames inside the utterance (unaligned).
        vision_frames: (Lv, Dv) float32 face frames inside the utterance (unaligned).
        vision_frames_present: (Lv,) bool.
    """

    utterance: Utterance
    words: tuple[str, ...]
    word_times_s: np.ndarray
    tokens: TokenFeatures
    audio_words: np.ndarray
    audio_present: np.ndarray
    vision_words: np.ndarray
    vision_present: np.ndarray
    audio_frames: np.ndarray
    vision_frames: np.ndarray
    vision_frames_present: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.words)
        for name in ("word_times_s", "audio_words", "audio_present", "vision_words", "vision_present"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"AlignedUtterance {self.utterance.index}: {name} has "
                                 f"{len(getattr(self, name))} rows for {n} words")


@dataclass(frozen=True)
class VideoFeatures:
    """What the stage sequence (``pipeline.features.featurize``) made of one file: the model's inputs.

    Scoring and dataset extraction both read this record, so a clip is fed to the model
    exactly as it is stored for training.

    Attributes:
        media: What the probe found.
        status: "ok", or "no_speech" when no word could be encoded (then ``utterances``,
            ``aligned`` and ``samples`` are empty and voice, face and text did not run).
        duration_s: Seconds of media: the longer of the decoded audio and the container's
            duration (the total of progress reports).
        language: Language identified (or fixed by the caller).
        language_probability: Its probability (1.0 when fixed by the caller).
        transcript: The recogniser's words.
        utterances: The utterances scored, in time order; each has encodable words.
        aligned: Per utterance, every modality brought to its words.
        samples: Per utterance, the model input (``model.batch.SampleInput``).
        face_coverage: Share of sampled frames with a face over the whole file (0.0 for no_speech).
        stage_seconds: Wall seconds per stage (decode, asr, voice, face, face_wait, text, align).
        warnings: Human-readable notes (no speech, no video track, low face coverage).
    """

    media: Media
    status: str
    duration_s: float
    language: str
    language_probability: float
    transcript: Transcript
    utterances: tuple[Utterance, ...]
    aligned: tuple[AlignedUtterance, ...]
    samples: tuple[SampleInput, ...]
    face_coverage: float
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def asr_model(self) -> str:
        """The Whisper model that made the transcript."""
        return self.transcript.model_name


@dataclass(frozen=True)
class Signals:
    """Readable per-utterance signals written beside the score (the evidence behind it).

    Attributes:
        n_words: Words in the utterance.
        asr_word_prob: Mean recogniser probability of its words (low: doubtful transcript).
        face_coverage: Share of sampled frames in the utterance with the face found.
        voiced_share: Share of 10 ms voice frames with a pitch.
        f0_mean_hz: Mean pitch over voiced frames (0 when none).
        loudness_db: Mean frame energy in dB.
        smile: Mean of mouthSmileLeft/Right blendshapes over frames with a face (0..1).
        brow_down: Mean of browDownLeft/Right blendshapes over frames with a face (0..1).
    """

    n_words: int
    asr_word_prob: float
    face_coverage: float
    voiced_share: float
    f0_mean_hz: float
    loudness_db: float
    smile: float
    brow_down: float


@dataclass(frozen=True)
class UtteranceScore:
    """The model's sentiment for one utterance.

    Attributes:
        utterance: What was scored.
        sentiment: Score in [-3, 3] (MOSI scale: -3 very negative .. +3 very positive).
        polarity: "negative", "neutral" or "positive" (see ``OutputOptions.neutral_band``).
        signals: The measured signals behind it.
    """

    utterance: Utterance
    sentiment: float
    polarity: str
    signals: Signals


@dataclass(frozen=True)
class VideoResult:
    """Everything scored for one input file, and what made it.

    Attributes:
        media: What the probe found.
        status: "ok", or "no_speech" when nothing was recognised (no rows, not an error).
        language: Language the recogniser reported.
        language_probability: Its confidence.
        asr_model: Whisper model used.
        weights: Name of the MIAR weights folder used.
        modalities_used: Modalities the model was fed ("text", "audio", "vision").
        face_coverage: Share of sampled frames with a face over the whole file.
        utterances: One score per utterance, in time order.
        stage_seconds: Wall seconds per stage (decode, asr, voice, face, face_wait, text, align,
            model). ``face`` runs beside ``asr`` on a worker thread, so stages overlap:
            ``face_wait`` is what the main thread waited for the face after ASR and voice.
        warnings: Human-readable notes (low face coverage, non-English speech, ...).
    """

    media: Media
    status: str
    language: str
    language_probability: float
    asr_model: str
    weights: str
    modalities_used: tuple[str, ...]
    face_coverage: float
    utterances: tuple[UtteranceScore, ...]
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def mean_sentiment(self) -> float | None:
        """Mean score weighted by utterance duration, or None without utterances."""
        if not self.utterances:
            return None
        weights = np.array([max(u.utterance.duration_s, 0.1) for u in self.utterances])
        scores = np.array([u.sentiment for u in self.utterances])
        return float(np.average(scores, weights=weights))
