"""The stage sequence: one media file in, the model's inputs out. Defined here only.

    decode (probe once, audio) -> language check -> ASR -> utterances -> voice
    -> face (on a worker thread beside ASR) -> text -> align -> SampleInput per utterance

Models may still be loading when the stages start (``Models.load(..., background=...)``): each
stage reads its model where it first needs it, which waits for it then (``models_wait`` in the
stage seconds: what the stages waited for models still loading).

The text step encodes each utterance's first word window (``pipeline.windows``): all of it when
it fits the encoder's token limit, as for nearly every utterance. Scoring reads an utterance
longer than that over overlapping windows (``window_inputs``, which encodes the later ones);
dataset extraction stores the first window, the model's input of one labelled clip.

Scoring (``pipeline.score.score_video``) and dataset extraction (``pipeline.extract``)
both call ``featurize``, so training features are made exactly as inference makes them
(``tests/test_extract.py`` compares the two). They differ only in how the words are
grouped: inference splits them into utterances; a dataset clip is one labelled segment,
hence one utterance over all its words (``segmentation="whole"``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from extractors import face as face_mod
from extractors.media import decode_audio, iter_frames, probe
from extractors.records import FeatureTrack, Frame, Media, TokenFeatures
from extractors.text import TextEncoder, normalise_text
from extractors.transcript import LanguageGuess
from extractors.voice import extract_voice
from extractors.voice_states import StatesFromTranscription, combine
from pipeline.align import align_utterance, spread_to_tokens
from pipeline.config import PipelineConfig
from pipeline.errors import UnsupportedLanguageError
from pipeline.languages import ENGLISH, speech_language
from pipeline.models import Models
from pipeline.records import AlignedUtterance, Utterance, VideoFeatures
from pipeline.utterances import split_utterances
from pipeline.windows import text_windows

if TYPE_CHECKING:  # model.batch imports PyTorch: seconds the first stages need not wait for
    from model.batch import SampleInput

__all__ = ["Progress", "SEGMENTATIONS", "featurize", "encodable_words", "to_sample_input", "window_inputs"]

#: ``progress(stage, done, total)``: seconds of media done in the named stage.
Progress = Callable[[str, float, float], None]

#: "utterances": words grouped into utterances (inference). "whole": one utterance over
#: every recognised word (a labelled dataset clip).
SEGMENTATIONS: tuple[str, ...] = ("utterances", "whole")

#: Face coverage below this over a whole video earns a warning in the result.
LOW_FACE_COVERAGE = 0.5

def featurize(
    path: Path,
    config: PipelineConfig,
    models: Models,
    progress: Progress | None = None,
    *,
    segmentation: str = "utterances",
    language: str | None = None,
) -> VideoFeatures:
    """Run every stage on one video (or audio file) and return the model's inputs.

    Args:
        path: A video or audio file.
        config: Stage options.
        models: Models loaded with at least the parts "asr", "face" and "text".
        progress: Optional callback, see ``Progress``.
        segmentation: One of ``SEGMENTATIONS``.
        language: None identifies the spoken language and refuses speech that is
            confidently not English, then decodes in English; a code (dataset extraction)
            skips identification and decodes in that language.

    Returns:
        The features; ``status == "no_speech"`` with no utterances when no word could be encoded.

    Raises:
        MediaError: The file cannot be read as media, or lasts longer than
            ``config.media.max_duration_s``.
        NoAudioTrackError: The file has no audio, so there is nothing to transcribe.
        UnsupportedLanguageError: The speech is confidently not English (``language=None`` only).
        ValueError: An unknown segmentation, or the part "asr" or "text" missing from ``models``
            (without "face", a video track is scored without the face and the result says so).
    """
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"featurize: segmentation {segmentation!r}, expected one of {SEGMENTATIONS}")
    # The face models are needed only by files with a video track (checked after the probe):
    # a batch of audio files loads none (pipeline.api), and pays none of their start-up.
    # Loaded or still loading: each part is waited for where its stage reads it.
    missing = [part for part in ("asr", "text") if not models.has(part)]
    if missing:
        raise ValueError(f"featurize: Models loaded without {missing} (Models.load(config, parts=...))")
    transcriber = models.transcriber
    assert transcriber is not None  # for type checkers
    report = progress or _no_progress
    seconds: dict[str, float] = {}
    warnings: list[str] = []

    with _timed(seconds, "decode"):
        media = probe(path, models.ffmpeg)  # the only probe: decode_audio and the face stage take its result
        # Too long a file is refused here, before anything is decoded (max_duration_s).
        audio = decode_audio(media, models.ffmpeg, config.media.sample_rate_hz,
                             max_duration_s=config.media.max_duration_s)
    total = max(len(audio) / config.media.sample_rate_hz, media.duration_s)
    report("decode", total, total)

    def result(status: str, utterances: tuple[Utterance, ...] = (), aligned: tuple[AlignedUtterance, ...] = (),
               samples: tuple[SampleInput, ...] = (), coverage: float | None = None) -> VideoFeatures:
        return VideoFeatures(
            media=media, status=status, duration_s=total, language=language_id, language_probability=language_p,
            transcript=transcript, utterances=utterances, aligned=aligned, samples=samples, face_coverage=coverage,
            stage_seconds=dict(seconds), warnings=tuple(warnings),
        )

    # The face stage runs on a worker thread while Whisper decodes: both spend their time
    # in native code that releases the GIL, so on 2 cores a video costs about
    # max(ASR, face) instead of their sum.
    with _FaceJob(media, config, models, lambda done: report("face", done, total)) as face_job:
        # Whisper's pass keeps its encoder states when they are the kind the weights read
        # (Models.keeps_voice_states) and it is the states' model: no second encoder pass.
        kept = (StatesFromTranscription(len(audio))
                if models.keeps_voice_states and transcriber.options.model == config.voice_states.model else None)
        with _timed(seconds, "asr"):
            # Speech that is not English is not scored: the text model reads English, and an
            # English-only recogniser turns other languages into English-sounding nonsense that
            # would get a confident, meaningless score (pipeline.languages.speech_language decides).
            guess = transcriber.identify_language(audio) if language is None else None
            if guess is not None:
                _refuse_unless_english(path, guess, None)
            transcript = transcriber.transcribe(
                audio, lambda done: report("asr", done, total), language or ENGLISH, states=kept
            )
            if guess is not None:
                _refuse_unless_english(path, guess, [w.probability for w in transcript.words])
            # What the results say is the language the speech was read in, with English's probability.
            language_id = language or ENGLISH
            language_p = guess.english_probability if guess is not None else 1.0
        if segmentation == "whole":
            words = transcript.words
            candidates = [Utterance(0, words[0].start_s, words[-1].end_s, words)] if words else []
        else:
            candidates = split_utterances(transcript, config.utterances)
        encodable = [(u, encodable_words(u)) for u in candidates]
        encodable = [(u, (words, times)) for u, (words, times) in encodable if words]
        if not encodable:
            warnings.append("no speech recognised: nothing to score")
            with _timed(seconds, "face_wait"):  # the face is measured, speech or not
                face, seconds["face"] = face_job.result()
            seen = media.has_video and models.face is not None
            return result("no_speech", coverage=face.coverage if seen else None)

        with _timed(seconds, "models_wait"):
            voice_states = models.voice_states
        with _timed(seconds, "voice"):
            voice = extract_voice(audio, config.media.sample_rate_hz, config.voice)
            if voice_states is not None:  # the weights read Whisper's encoder states too
                voice = combine(voice, kept.track() if kept is not None else voice_states.extract(audio))
        report("voice", total, total)

        with _timed(seconds, "face_wait"):
            face, seconds["face"] = face_job.result()
    if not media.has_video:
        warnings.append("no video track: scored without the face")
    elif models.face is None:
        warnings.append("a video track, but the face models were not loaded (the batch was named as audio): "
                        "scored without the face")
    elif face.coverage < LOW_FACE_COVERAGE:
        warnings.append(f"face found in only {face.coverage:.0%} of sampled frames")

    with _timed(seconds, "models_wait"):
        encoder = models.text_encoder
    assert encoder is not None  # checked above
    with _timed(seconds, "text"):  # the first window of each utterance: all its words when they fit
        tokens = encoder.encode_batch([_first_window(words, encoder) for _, (words, _) in encodable])
    report("text", total, total)

    with _timed(seconds, "align"):
        aligned = tuple(
            align_utterance(u, words, times, tok, voice, face, config.align)
            for (u, (words, times)), tok in zip(encodable, tokens)
        )
        samples = tuple(to_sample_input(a) for a in aligned)
    coverage = face.coverage if media.has_video and models.face is not None else None
    return result("ok", tuple(u for u, _ in encodable), aligned, samples, coverage)


def _refuse_unless_english(path: Path, guess: LanguageGuess, word_probabilities: list[float] | None) -> None:
    """Raise ``UnsupportedLanguageError`` when the speech is not English (before decoding: only when certain)."""
    decision = speech_language(guess.language, guess.probability, guess.english_probability, word_probabilities)
    if not decision.english and decision.reason:
        raise UnsupportedLanguageError(f"{path}: {decision.reason}; the sentiment model reads English only "
                                       "(use --language en to score it anyway)")


def encodable_words(utterance: Utterance) -> tuple[list[str], np.ndarray]:
    """Normalised words of an utterance (empty ones dropped) and their (W, 2) float64 start/end times."""
    kept = [(normalise_text(w.text), w) for w in utterance.words]
    kept = [(t, w) for t, w in kept if t]
    times = np.array([[w.start_s, w.end_s] for _, w in kept], dtype=np.float64).reshape(-1, 2)
    return [t for t, _ in kept], times


def to_sample_input(aligned: AlignedUtterance) -> SampleInput:
    """The model's input for one utterance (its first window): text tokens with voice and face spread onto them."""
    return _window_input(aligned, aligned.tokens, 0)


def window_inputs(
    aligned: Sequence[AlignedUtterance], samples: Sequence[SampleInput], encoder: TextEncoder
) -> list[tuple[list[SampleInput], np.ndarray]]:
    """Every window's model input of each utterance, and the windows' pooling weights.

    An utterance that fits the encoder is its one sample from ``featurize`` (nothing is encoded
    again). A longer one is read in overlapping windows of whole words; ``featurize`` encoded
    the first, the rest are encoded here in one batch, each window carrying the voice and
    face rows of its own words.

    Args:
        aligned: ``VideoFeatures.aligned``.
        samples: ``VideoFeatures.samples`` (one per utterance: its first window).
        encoder: The text encoder that made them.

    Returns:
        Per utterance: its window inputs in order and their weights (``pipeline.windows.text_windows``),
        ready for ``pipeline.windows.pool``.
    """
    out: list[tuple[list[SampleInput], np.ndarray]] = [([s], np.ones(1)) for s in samples]
    later: list[tuple[int, int, int]] = []  # (utterance, start, end) of every window after the first
    for i, a in enumerate(aligned):
        if int(a.tokens.word_ids.max(initial=-1)) + 1 >= len(a.words):
            continue  # the first window holds every word
        windows, weights = text_windows(a.words, encoder)
        if len(windows) > 1:
            out[i] = ([samples[i]], weights)
            later.extend((i, start, end) for start, end in windows[1:])
    encoded = encoder.encode_batch([aligned[i].words[start:end] for i, start, end in later]) if later else []
    for (i, start, _), tokens in zip(later, encoded):
        out[i][0].append(_window_input(aligned[i], tokens, start))
    return out


def _first_window(words: list[str], encoder: TextEncoder) -> list[str]:
    """The words of the first window ``words`` are read in: all of them when they fit the encoder."""
    windows, _ = text_windows(words, encoder)
    return words[:windows[0][1]]


def _window_input(aligned: AlignedUtterance, tokens: TokenFeatures, start: int) -> SampleInput:
    """The model's input for the window of ``aligned``'s words from ``start`` that ``tokens`` encode
    (their ``word_ids`` count from ``start``): each word's voice and face rows spread onto its tokens."""
    from model.batch import SampleInput

    ids = tokens.word_ids
    audio, audio_mask = spread_to_tokens(aligned.audio_words[start:], aligned.audio_present[start:], ids)
    vision, vision_mask = spread_to_tokens(aligned.vision_words[start:], aligned.vision_present[start:], ids)
    return SampleInput(
        text=tokens.values,
        text_mask=np.ones(len(ids), dtype=bool),
        audio=audio if audio_mask.any() else None,
        audio_mask=audio_mask if audio_mask.any() else None,
        vision=vision if vision_mask.any() else None,
        vision_mask=vision_mask if vision_mask.any() else None,
    )


def _no_progress(stage: str, done: float, total: float) -> None:
    """The progress callback when the caller gives none."""


def _empty_track(name: str, columns: tuple[str, ...], rate_hz: float) -> FeatureTrack:
    return FeatureTrack(name, np.zeros(0), np.zeros((0, len(columns)), np.float32), columns,
                        np.zeros(0, bool), rate_hz)


@contextmanager
def _timed(stage_seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        stage_seconds[stage] = stage_seconds.get(stage, 0.0) + time.perf_counter() - start


def _until(frames: Iterator[Frame], stop: threading.Event) -> Iterator[Frame]:
    """Pass frames through until ``stop`` is set; always closes the source (ends ffmpeg)."""
    try:
        for frame in frames:
            if stop.is_set():
                return
            yield frame
    finally:
        frames.close()


class _FaceJob:
    """Face extraction of one video on a worker thread (a context manager).

    Leaving the ``with`` block early (no speech, an error, Ctrl-C) stops the job at its
    next frame and waits for it, so no thread or ffmpeg process outlives the video.
    """

    def __init__(self, media: Media, config: PipelineConfig, models: Models, report: Callable[[float], None]) -> None:
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face")
        self._future = self._pool.submit(self._run, media, config, models, report)

    def _run(
        self, media: Media, config: PipelineConfig, models: Models, report: Callable[[float], None]
    ) -> tuple[FeatureTrack, float]:
        face = models.face if media.has_video else None  # waits while the face models load
        started = time.perf_counter()  # the stage's own time: from when its models are there
        if face is None:
            return _empty_track("face", face_mod.COLUMNS, config.media.frame_fps), 0.0
        frames = iter_frames(media, models.ffmpeg, config.media.frame_fps, config.media.max_side_px)
        track = face.extract(_until(frames, self._stop), report, rate_hz=config.media.frame_fps)
        return track, time.perf_counter() - started

    def result(self) -> tuple[FeatureTrack, float]:
        """The face track and the wall seconds the job took (raises what the job raised)."""
        return self._future.result()

    def __enter__(self) -> _FaceJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)
