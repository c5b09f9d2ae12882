"""The one model holder: every model a caller needs, loaded once and reused for a batch.

    with Models.load(config) as models:                       # scoring videos: everything
        ...
    Models.load(config, parts=("asr", "face", "text"))        # dataset extraction
    Models.load(config, parts=("text", "miar"))               # the text path, evaluation
    Models.load(config, background=("face", "text", "miar"))  # Whisper now, the rest while it runs

The video path, the text path, dataset extraction and evaluation all load through here,
so the weights are checked against the extractors (text encoder, voice and face columns)
in exactly one place. Importing this module loads no model library: that happens in
``Models.load``.

Loading the face models, the text encoder and the weights takes seconds that decoding and
recognising speech do not need (issue 20), so a batch (``pipeline.api``) loads Whisper first and
leaves the rest to a worker thread: the first stages start while the rest loads. Reading a part
still loading (``models.face``) waits for it there and raises its load error there, so a stage
never sees a half-loaded holder, and code given already-loaded models reads them as before.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import logging
import os
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractors.text import TextOptions
from model.errors import CheckpointError
from pipeline.config import PipelineConfig

if TYPE_CHECKING:
    from extractors.face import FaceExtractor
    from extractors.text import TextEncoder
    from extractors.transcript import Transcriber
    from extractors.voice_states import VoiceStates
    from model.checkpoint import LoadedMiar

__all__ = ["ALL_PARTS", "FIRST_STAGE_PARTS", "Models", "native_stderr_quiet", "weights_keep_states",
           "weights_text_options"]

log = logging.getLogger(__name__)

#: The loadable parts: speech recognition, face extraction, text encoder, MIAR weights.
ALL_PARTS: tuple[str, ...] = ("asr", "face", "text", "miar")
#: The parts the first stages read (decoding needs only ffmpeg, the ASR stage Whisper): what a caller
#: loads before the work starts when it leaves the others to the background.
FIRST_STAGE_PARTS: tuple[str, ...] = ("asr",)

#: The steps of a load, each setting one attribute of ``Models``, in the order ``Models.load`` takes them
#: in the calling thread: the weights first (they decide whether the voice states are computed and how the
#: text is encoded, and they are what a wrong --weights breaks), Whisper's encoder states right after Whisper.
_STEPS: tuple[str, ...] = ("miar", "face", "asr", "voice_states", "text")
#: The order of the steps left to the background: the weights still first (loaded a few tenths of a second
#: after PyTorch, which the face models import anyway, they decide the voice states), then the order the
#: stages read them in: the voice states (the voice stage, right after ASR), the face models (the face job,
#: whose result is waited for after the voice stage), the text encoder (the text stage, after the face).
_BACKGROUND_ORDER: tuple[str, ...] = ("miar", "asr", "voice_states", "face", "text")
#: The attribute of ``Models`` each step sets.
_ATTRIBUTE: dict[str, str] = {"miar": "miar", "face": "face", "asr": "transcriber", "voice_states": "voice_states",
                              "text": "text_encoder"}
#: The part each step belongs to (the voice states come with "asr").
_PART: dict[str, str] = {"miar": "miar", "face": "face", "asr": "asr", "voice_states": "asr", "text": "text"}
#: Steps that need what earlier steps decide: one waits for the background when any of these does.
_NEEDS: dict[str, tuple[str, ...]] = {"voice_states": ("asr", "miar"), "text": ("miar",)}
#: Steps that run on PyTorch (MTCNN, the text transformer, MIAR), hence obey ``torch_threads``.
_TORCH_STEPS = frozenset({"face", "text", "miar"})


@contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Hide what C++ libraries print to fd 2 while they start (MediaPipe's glog banner).

    Python logging is untouched; at debug level nothing is hidden. fd 2 belongs to the process, so
    whatever another thread writes to stderr meanwhile is hidden too: keep the window to the
    native start-up itself (imports before it).
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


class _Part:
    """A model attribute of ``Models``: reading it while its part loads in the background waits for it.

    A data descriptor, so the dataclass keeps its fields (``Models(ffmpeg, face=...)``,
    ``dataclasses.replace``) and every reader, in any thread, gets a loaded model or the load's
    error, never a None that would read as "not loaded".
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, models: Models | None, owner: type | None = None) -> Any:
        if models is None:
            return None  # the field's default, as the dataclass reads it from the class: not loaded
        background = models.__dict__.get("_background")
        if background is not None:
            background.wait(self._name)
        return models.__dict__.get(self._name)

    def __set__(self, models: Models, value: Any) -> None:
        models.__dict__[self._name] = value


@dataclass
class Models:
    """Loaded models (holds models only, no per-call state).

    Attributes:
        ffmpeg: The ffmpeg executable (always resolved).
        transcriber: Whisper (part "asr"), or None when not loaded.
        voice_states: Whisper's encoder states as voice features (part "asr", when
            ``config.voice_states.enabled`` and the weights read them), or None.
        face: Face extractor (part "face"), or None.
        text_encoder: Text encoder named by ``config.text.encoder`` (part "text"), or None.
        miar: The MIAR weights of ``config.weights_dir`` (part "miar"), or None.
        keeps_voice_states: Whisper's transcription pass keeps its encoder states as the voice
            states (``extractors.voice_states.StatesFromTranscription``) instead of a second
            encoder pass: the weights' choice when they are among the parts (read from their
            config.json before they load, so ASR never waits for them: ``weights_keep_states``),
            else ``config.voice_states.kept`` (feature extraction follows its recipe).

    A model attribute whose part is loading in the background (``Models.load(..., background=...)``)
    waits for it when read, and raises the error that stopped its loading.
    """

    ffmpeg: Path
    transcriber: Transcriber | None = _Part()  # type: ignore[assignment]
    voice_states: VoiceStates | None = _Part()  # type: ignore[assignment]
    face: FaceExtractor | None = _Part()  # type: ignore[assignment]
    text_encoder: TextEncoder | None = _Part()  # type: ignore[assignment]
    miar: LoadedMiar | None = _Part()  # type: ignore[assignment]
    keeps_voice_states: bool = False
    _background: _Background | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, config: PipelineConfig, parts: Collection[str] = ALL_PARTS, *,
             background: Collection[str] = ()) -> Models:
        """Load the models named by ``config`` for the given parts (offline).

        Also sets PyTorch's thread count (``config.torch_threads``) when a part runs on
        PyTorch: a process-wide setting, so it is applied here, where the process commits
        to running these models. If a part fails to load, the parts already loaded are
        closed before the error propagates.

        Args:
            config: Which models and weights, and their options.
            parts: Any of ``ALL_PARTS``.
            background: Parts of ``parts`` to load on a worker thread once the others are loaded:
                the call returns without waiting for them. Reading one (``models.face``) waits
                until it is loaded; ``wait()`` waits for them all; ``close()`` stops the loading
                after the model being loaded. Their load errors (below) are raised by those reads
                and by ``wait()``. The voice states and the text encoder follow the weights
                there when the weights load in the background.

        Raises:
            ValueError: An unknown part name, or a background part not among ``parts``.
            ModelNotFoundError: ffmpeg or a model file that should be installed is missing.
            CheckpointError: The weights are missing, corrupt, or made for other features.
        """
        unknown = sorted(set(parts) - set(ALL_PARTS))
        if unknown:
            raise ValueError(f"Models.load: unknown parts {unknown}, expected some of {ALL_PARTS}")
        stray = sorted(set(background) - set(parts))
        if stray:
            raise ValueError(f"Models.load: background parts {stray} are not among the parts {sorted(parts)}")
        from extractors.assets import resolve_ffmpeg

        steps = [step for step in _STEPS if _PART[step] in parts]
        later = {step for step in steps if _PART[step] in background}
        for step in steps:  # in order: a step follows any step it needs into the background
            if any(need in later for need in _NEEDS.get(step, ())):
                later.add(step)
        _spare_the_teardown_at_exit()
        loader = _Loader(config)
        models = cls(ffmpeg=resolve_ffmpeg())
        states = config.voice_states
        models.keeps_voice_states = states.enabled and (
            weights_keep_states(config) if "miar" in parts else states.kept)
        try:
            for step in steps:
                if step not in later:
                    setattr(models, _ATTRIBUTE[step], loader.run(step))
        except BaseException:
            models.close()
            raise
        if later:
            models._background = _Background(models, loader, [s for s in _BACKGROUND_ORDER if s in later])
        return models

    def has(self, part: str) -> bool:
        """Whether ``part`` is loaded or loading in the background (never waits): what a stage
        checks before the work starts."""
        attribute = _ATTRIBUTE[part]
        background = self._background
        if background is not None and background.covers(attribute):
            return True
        return self.__dict__.get(attribute) is not None

    def wait(self) -> Models:
        """Wait until every part loading in the background is loaded (at once when none is).

        Raises:
            ModelNotFoundError, CheckpointError: The error that stopped the background loading
                (the one ``Models.load`` raises when the part loads in the calling thread).
        """
        background = self._background
        if background is not None:
            background.wait_all()
        return self

    def close(self) -> None:
        """Release every loaded model (MediaPipe's graph is closed; the rest is dropped).

        A background load is stopped first: the model being loaded is finished, the rest are not
        started, and their reads raise from then on.
        """
        background = self._background
        if background is not None:
            background.stop()
        self._background = None
        loaded = self.__dict__
        face = loaded.get("face")
        for step in _STEPS:
            loaded[_ATTRIBUTE[step]] = None
        if face is not None:
            face.close()

    def __enter__(self) -> Models:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _spare_the_teardown_at_exit() -> None:
    """Freeze the garbage collector's heap when the process exits (registered once, by the first load).

    The interpreter collects garbage several times while it shuts down, each time walking every
    object PyTorch, MediaPipe and the models created (millions): 0.9 s of a 2-core machine after
    the caller's last line (``bench/cold_start.py``'s ``Models.load`` figure). An exit hook runs
    before those collections, and frozen objects are skipped, still released with the process. The
    CLI freezes as its command ends (``pipeline.cli``); this spares library callers the same wait.
    Only at exit: in a running process, frozen objects that later became garbage would never be
    collected.
    """
    atexit.register(gc.freeze)


class _Loader:
    """Runs the steps of one load in order, carrying what the weights decide (whether the voice
    states are computed, how the text is encoded) to the steps after them, in whichever thread."""

    def __init__(self, config: PipelineConfig) -> None:
        self._config = config
        self._text = config.text
        self._transcriber: Transcriber | None = None
        self._threads_set = False

    def run(self, step: str, *, beside: bool = False) -> Any:
        """Load one step's model and return it (for ``Models``' attribute ``_ATTRIBUTE[step]``).

        ``beside``: other threads are working meanwhile (a background load), so the window that
        hides stderr is kept to the native start-up of the face models.
        """
        config = self._config
        if step in _TORCH_STEPS and config.torch_threads > 0 and not self._threads_set:
            import torch

            torch.set_num_threads(config.torch_threads)
            self._threads_set = True
        if step == "miar":
            from extractors.voice_states import has_states

            miar = _load_miar(config)
            # The weights decide whether the voice states are computed: weights trained on the
            # descriptors alone (miar-v2) never see them; and how the text is encoded.
            reads_states = has_states(miar.config.get("audio_columns"))
            self._config = replace(config, voice_states=replace(config.voice_states, enabled=reads_states))
            self._text = weights_text_options(miar.config, config.text)
            return miar
        if step == "face":
            from extractors.face import FaceExtractor

            if beside:  # seconds that print nothing, taken outside the window that hides every thread's stderr
                from extractors.face import import_libraries

                import_libraries()
            with native_stderr_quiet():
                return FaceExtractor(config.face)
        if step == "asr":
            from extractors.transcript import Transcriber

            self._transcriber = Transcriber(config.asr, config.cache_dir)
            return self._transcriber
        if step == "voice_states":
            if not config.voice_states.enabled:
                return None
            from extractors.voice_states import VoiceStates

            assert self._transcriber is not None  # "asr" comes first
            if self._transcriber.options.model == config.voice_states.model:
                return VoiceStates(self._transcriber.whisper, config.voice_states)
            return VoiceStates.load(config.voice_states, config.cache_dir, config.asr.compute_type,
                                    config.asr.cpu_threads)
        if step == "text":
            from extractors.text import TextEncoder

            return TextEncoder(self._text)
        raise ValueError(f"unknown load step {step!r}")


class _Background:
    """The steps of a load left to a worker thread: one future per attribute they set, resolved in order.

    A failed step fails its own future and every later one with its error (later steps may depend on
    it), and the thread ends: nothing waits on a load that will never come. The thread is not a
    daemon, so the interpreter never tears down under a half-built native model; ``stop()`` bounds
    how long an exit waits to the step being loaded.
    """

    def __init__(self, models: Models, loader: _Loader, steps: Sequence[str]) -> None:
        self._pending: dict[str, Future[None]] = {_ATTRIBUTE[step]: Future() for step in steps}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._load, args=(models, loader, list(steps)), name="models-load")
        self._thread.start()

    def _load(self, models: Models, loader: _Loader, steps: list[str]) -> None:
        for i, step in enumerate(steps):
            future = self._pending[_ATTRIBUTE[step]]
            if self._stop.is_set():
                future.set_exception(RuntimeError(f"Models closed before {_ATTRIBUTE[step]} was loaded"))
                continue
            try:
                models.__dict__[_ATTRIBUTE[step]] = loader.run(step, beside=True)
            except BaseException as e:  # handed to the readers; a thread's exception would be lost
                for rest in steps[i:]:
                    self._pending[_ATTRIBUTE[rest]].set_exception(e)
                return
            future.set_result(None)

    def covers(self, attribute: str) -> bool:
        """Whether ``attribute`` is set by this background load."""
        return attribute in self._pending

    def wait(self, attribute: str) -> None:
        """Block until ``attribute`` is loaded (at once when it is not loaded here); raises its load error."""
        future = self._pending.get(attribute)
        if future is not None:
            future.result()

    def wait_all(self) -> None:
        """Block until every step is loaded; raises the first failed step's error."""
        for future in self._pending.values():
            future.result()

    def stop(self) -> None:
        """Start no further step and wait for the thread (it finishes the step it is loading)."""
        self._stop.set()
        self._thread.join()


def weights_text_options(weights: Mapping[str, Any], text: TextOptions | None = None) -> TextOptions:
    """The text options a weights folder was trained with: ``text`` (default ``TextOptions()``) with the
    weights' encoder, token limit and depth.

    The one place that reads them from a weights config (``config.json``, as ``LoadedMiar.config`` or
    ``model.checkpoint.read_weights_config`` give it): ``Models.load`` builds the text encoder with
    them, and evaluation builds its pipeline config from them before loading. The depth matters
    most: fine-tuned text layers in the weights continue where the frozen encoder stops; weights
    without ``text_layers`` (miar-v1, trained on frozen features) were fed every layer.

    Args:
        weights: The weights' config (``text_encoder``, ``max_tokens``, optional ``text_layers``).
        text: Options to keep the rest of (``batch_size``).

    Raises:
        CheckpointError: The config lacks a usable ``text_encoder``, ``max_tokens`` or ``text_layers``.
    """
    try:
        layers = weights.get("text_layers")
        return replace(text or TextOptions(), encoder=str(weights["text_encoder"]),
                       max_tokens=int(weights["max_tokens"]), layers=None if layers is None else int(layers))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"weights config lacks a usable text_encoder / max_tokens / text_layers: {e}") from e


def weights_keep_states(config: PipelineConfig) -> bool:
    """Whether the weights of ``config`` read voice states kept from Whisper's transcription pass
    (``extractors.voice_states.states_kept_from_transcription``), from their ``config.json`` alone:
    read once, before the weights load, so that ASR, which keeps them, need not wait. An unreadable
    file says False (its load then fails with the reason, or a second pass runs)."""
    from extractors.voice_states import states_kept_from_transcription
    from model.checkpoint import CONFIG_FILE

    try:
        weights = json.loads((config.weights_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(weights, dict) and states_kept_from_transcription(weights)


def _load_miar(config: PipelineConfig) -> LoadedMiar:
    """The weights, refused unless they match the text encoder and the extractors' columns.

    Two audio layouts are accepted: the voice descriptors alone (weights before the voice
    states) or followed by Whisper's encoder states (``extractors.voice_states``).
    """
    from extractors import face
    from extractors.voice_states import audio_columns, has_states
    from model.checkpoint import load_checkpoint, read_columns

    with_states = has_states(read_columns(config.weights_dir, "audio_columns"))
    return load_checkpoint(
        config.weights_dir,
        expected_encoder=config.text.encoder,
        expected_audio_columns=audio_columns(with_states),
        expected_vision_columns=face.COLUMNS,
    )

