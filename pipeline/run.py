"""Scoring a video end to end: the library API the CLI is a thin layer over.

    config = PipelineConfig()
    with Models.load(config) as models:          # every model loaded once
        result = score_video(Path("clip.mp4"), config, models)

Stages, each timed in ``VideoResult.stage_seconds``: decode (probe + audio), asr, voice,
face (frames are streamed, never all in memory; runs beside asr on a worker thread),
text, align, model.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.assets import resolve_ffmpeg
from extractors.errors import NoAudioTrackError
from extractors.face import FaceExtractor
from extractors.media import decode_audio, iter_frames, probe
from extractors.records import FeatureTrack, Frame, Media
from extractors.text import TextEncoder, normalise_text
from extractors.transcript import SAMPLE_RATE_HZ, Transcriber
from extractors.voice import extract_voice
from model.checkpoint import LoadedMiar, load_checkpoint
from model.data import SampleInput
from pipeline.align import align_utterance, spread_to_tokens
from pipeline.config import PipelineConfig
from pipeline.errors import UnsupportedLanguageError
from pipeline.output import polarity_of
from pipeline.records import AlignedUtterance, Utterance, UtteranceScore, VideoResult
from pipeline.signals import utterance_signals
from pipeline.utterances import split_utterances

__all__ = ["Progress", "Models", "score_video", "to_sample_input", "encodable_words", "empty_track",
           "native_stderr_quiet"]

log = logging.getLogger(__name__)

#: ``progress(stage, done, total)``: seconds of media done in the named stage.
Progress = Callable[[str, float, float], None]

#: Face coverage below this over a whole video earns a warning in the result.
LOW_FACE_COVERAGE = 0.5
#: Speech identified as another language with at least this probability is not scored:
#: the text model reads English, and an English-only recogniser turns other languages
#: into English-sounding nonsense that would get a confident, meaningless score.
#: (Whisper gives clean English clips 0.4 to 0.95, German EmoDB clips > 0.99.)
NON_ENGLISH_MIN_PROBABILITY = 0.5


@dataclass
class Models:
    """Every model the pipeline needs, loaded once per process and reused for a batch."""

    ffmpeg: Path
    transcriber: Transcriber
    text_encoder: TextEncoder
    face: FaceExtractor
    miar: LoadedMiar

    @classmethod
    def load(cls, config: PipelineConfig) -> Models:
        """Load all models named by ``config`` (offline; raises ModelNotFoundError/CheckpointError).

        Also sets PyTorch's thread count (``config.torch_threads``): a process-wide
        setting, so it is applied here, where the process commits to running the pipeline.
        """
        if config.torch_threads > 0:
            import torch

            torch.set_num_threads(config.torch_threads)
        miar = load_checkpoint(
            config.weights_dir,
            expected_encoder=config.text.encoder,
            expected_audio_columns=voice_mod.COLUMNS,
            expected_vision_columns=face_mod.COLUMNS,
        )
        with native_stderr_quiet():
            face = FaceExtractor(config.face)
        return cls(
            ffmpeg=resolve_ffmpeg(),
            transcriber=Transcriber(config.asr, config.cache_dir),
            text_encoder=TextEncoder(config.text),
            face=face,
            miar=miar,
        )

    def close(self) -> None:
        self.face.close()

    def __enter__(self) -> Models:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def empty_track(name: str, columns: tuple[str, ...], rate_hz: float) -> FeatureTrack:
    return FeatureTrack(name, np.zeros(0), np.zeros((0, len(columns)), np.float32), columns,
                        np.zeros(0, bool), rate_hz)


@contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Hide what C++ libraries print to fd 2 while they start (MediaPipe's glog banner).

    Python logging is untouched; at debug level nothing is hidden.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


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
        started = time.perf_counter()
        if not media.has_video:
            return empty_track("face", face_mod.COLUMNS, config.media.frame_fps), 0.0
        frames = iter_frames(media, models.ffmpeg, config.media.frame_fps, config.media.max_side_px)
        track = models.face.extract(_until(frames, self._stop), report, rate_hz=config.media.frame_fps)
        return track, time.perf_counter() - started

    def result(self) -> tuple[FeatureTrack, float]:
        """The face track and the wall seconds the job took (raises what the job raised)."""
        return self._future.result()

    def __enter__(self) -> _FaceJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)


def to_sample_input(aligned: AlignedUtterance) -> SampleInput:
    """The model's input for one utterance: text tokens with voice and face spread onto them."""
    ids = aligned.tokens.word_ids
    audio, audio_mask = spread_to_tokens(aligned.audio_words, aligned.audio_present, ids)
    vision, vision_mask = spread_to_tokens(aligned.vision_words, aligned.vision_present, ids)
    return SampleInput(
        text=aligned.tokens.values,
        text_mask=np.ones(len(ids), dtype=bool),
        audio=audio if audio_mask.any() else None,
        audio_mask=audio_mask if audio_mask.any() else None,
        vision=vision if vision_mask.any() else None,
        vision_mask=vision_mask if vision_mask.any() else None,
    )


def encodable_words(utterance: Utterance) -> tuple[list[str], np.ndarray]:
    """Normalised words of an utterance (empty ones dropped) and their times."""
    kept = [(normalise_text(w.text), w) for w in utterance.words]
    kept = [(t, w) for t, w in kept if t]
    times = np.array([[w.start_s, w.end_s] for _, w in kept], dtype=np.float64).reshape(-1, 2)
    return [t for t, _ in kept], times


def score_video(
    path: Path, config: PipelineConfig, models: Models, progress: Progress | None = None
) -> VideoResult:
    """Score every utterance of one video (or audio file).

    Args:
        path: A video or audio file.
        config: Stage options.
        models: Loaded models (``Models.load(config)``).
        progress: Optional callback, see ``Progress``.

    Returns:
        The result; ``status == "no_speech"`` with no utterances when nothing was said.

    Raises:
        MediaError: The file cannot be read as media.
        NoAudioTrackError: The file has no audio, so there is nothing to transcribe.
        UnsupportedLanguageError: The speech is confidently not English.
    """
    report = progress or (lambda stage, done, total: None)
    seconds: dict[str, float] = {}
    warnings: list[str] = []

    with _timed(seconds, "decode"):
        media: Media = probe(path, models.ffmpeg)
        if not media.has_audio:
            raise NoAudioTrackError(f"{path}: no audio track, so there is no speech to score")
        audio = decode_audio(path, models.ffmpeg, config.media.sample_rate_hz)
    duration_s = len(audio) / SAMPLE_RATE_HZ
    total = max(duration_s, media.duration_s)
    report("decode", total, total)

    # The face stage runs on a worker thread while Whisper decodes: both spend their time
    # in native code that releases the GIL, so on 2 cores the video costs about
    # max(ASR, face) instead of their sum.
    with _FaceJob(media, config, models, lambda done: report("face", done, total)) as face_job:
        with _timed(seconds, "asr"):
            language, language_p = models.transcriber.identify_language(audio)
            if language != "en" and language_p >= NON_ENGLISH_MIN_PROBABILITY:
                raise UnsupportedLanguageError(
                    f"{path}: speech identified as {language!r} (p={language_p:.2f}); the sentiment model reads "
                    "English only (use --language en to score it anyway)"
                )
            transcript = models.transcriber.transcribe(audio, lambda done: report("asr", done, total), "en")
        utterances = [u for u in split_utterances(transcript, config.utterances) if encodable_words(u)[0]]

        def result(status: str, scores: tuple[UtteranceScore, ...], coverage: float) -> VideoResult:
            return VideoResult(
                media=media, status=status, language=language, language_probability=language_p,
                asr_model=transcript.model_name, weights=config.weights_dir.name,
                modalities_used=models.miar.modalities, face_coverage=coverage, utterances=scores,
                stage_seconds=dict(seconds), warnings=tuple(warnings),
            )

        if not utterances:
            warnings.append("no speech recognised: nothing to score")
            return result("no_speech", (), 0.0)

        with _timed(seconds, "voice"):
            voice = extract_voice(audio, SAMPLE_RATE_HZ, config.voice)
        report("voice", total, total)

        with _timed(seconds, "face_wait"):
            face, seconds["face"] = face_job.result()
    if not media.has_video:
        warnings.append("no video track: scored without the face")
    if media.has_video and face.coverage < LOW_FACE_COVERAGE:
        warnings.append(f"face found in only {face.coverage:.0%} of sampled frames")

    with _timed(seconds, "text"):
        encodable = [encodable_words(u) for u in utterances]
        tokens = models.text_encoder.encode_batch([words for words, _ in encodable])
    report("text", total, total)

    with _timed(seconds, "align"):
        aligned = [
            align_utterance(u, words, times, tok, voice, face, config.align)
            for u, (words, times), tok in zip(utterances, encodable, tokens)
        ]
    with _timed(seconds, "model"):
        scores = models.miar.predict([to_sample_input(a) for a in aligned])
    report("model", total, total)

    scored = tuple(
        UtteranceScore(a.utterance, float(s), polarity_of(float(s), config.output), utterance_signals(a))
        for a, s in zip(aligned, scores)
    )
    return result("ok", scored, face.coverage)
