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
        face_coverage: Share of sampled frames with a face over the whole file; None without a
            video track (nothing to look at, so nothing measured).
        stage_seconds: Wall seconds per stage (decode, asr, voice, face, face_wait, text, align), and
            ``models_wait``: what the stages waited for models still loading in the background.
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
    face_coverage: float | None
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def asr_model(self) -> str:
        """The Whisper model that made the transcript."""
        return self.transcript.model_name


@dataclass(frozen=True)
class Signals:
    """Readable per-utterance signals written beside the score (the evidence behind it).

    Missing is None, never 0: a value is None when what it summarises was not observed in the
    utterance (no sampled video frame in it, no face in those frames, no voiced frame), so a
    reader can tell "not measured" from a measured zero.

    Attributes:
        n_words: Words in the utterance.
        asr_word_prob: Mean recogniser probability of its words (low: doubtful transcript).
        face_coverage: Share of the video frames sampled inside the utterance with the face
            found (0.0: frames, no face); None when no frame was sampled there (no video track).
        voiced_share: Share of 10 ms voice frames with a pitch; None without voice frames.
        f0_mean_hz: Mean pitch over voiced frames; None when no frame was voiced.
        loudness_db: Mean frame energy in dB; None without voice frames.
        smile: Mean of mouthSmileLeft/Right blendshapes over frames with a face (0..1); None
            when no face was seen in the utterance.
        brow_down: Mean of browDownLeft/Right blendshapes over frames with a face (0..1); None as ``smile``.
    """

    n_words: int
    asr_word_prob: float
    face_coverage: float | None
    voiced_share: float | None
    f0_mean_hz: float | None
    loudness_db: float | None
    smile: float | None
    brow_down: float | None


@dataclass(frozen=True)
class UtteranceScore:
    """The model's sentiment for one utterance, and what each modality says on its own.

    Attributes:
        utterance: What was scored.
        sentiment: Fused score in [-3, 3] (MOSI scale: -3 very negative .. +3 very positive).
        polarity: "negative", "neutral" or "positive" of ``sentiment`` (see ``OutputOptions.neutral_band``).
        signals: The measured signals behind it.
        text_score: The words alone: the model's score with voice and face masked (what
            ``python -m pipeline text`` gives for these words), in [-3, 3]; None only for
            weights that never trained on text.
        voice_score: The voice alone (text and face masked); None when the utterance has no
            voice frames or the weights never trained on audio.
        face_score: The face alone (text and voice masked); None when no face was seen in the
            utterance or the weights never trained on vision.
    """

    utterance: Utterance
    sentiment: float
    polarity: str
    signals: Signals
    text_score: float | None = None
    voice_score: float | None = None
    face_score: float | None = None


@dataclass(frozen=True)
class VideoResult:
    """Everything scored for one input file, and what made it.

    Attributes:
        media: What the probe found.
        status: "ok", or "no_speech" when nothing was recognised (no rows, not an error).
        language: Language the recogniser reported; "" when nothing was said (no_speech: a
            language guessed from silence is noise, not a finding).
        language_probability: Its confidence; None when ``language`` is "".
        asr_model: Whisper model used.
        weights: Name of the MIAR weights folder used.
        modalities_used: Modalities present in the input and fed to the model for at least one
            utterance ("text", "audio", "vision"; a wav gives no "vision"); () when nothing was scored.
        face_coverage: Share of sampled frames with a face over the whole file (measured for
            no_speech files too); None without a video track.
        utterances: One score per utterance, in time order.
        stage_seconds: Wall seconds per stage (decode, asr, voice, face, face_wait, text, align,
            model). ``face`` runs beside ``asr`` on a worker thread, so stages overlap:
            ``face_wait`` is what the main thread waited for the face after ASR and voice;
            ``models_wait`` what it waited for models still loading in the background
            (``Models.load(..., background=...)``; ``face`` counts from when its models are there).
        warnings: Human-readable notes (low face coverage, non-English speech, ...).
    """

    media: Media
    status: str
    language: str
    language_probability: float | None
    asr_model: str
    weights: str
    modalities_used: tuple[str, ...]
    face_coverage: float | None
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
