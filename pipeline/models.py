"""The one model holder: every model a caller needs, loaded once and reused for a batch.

    with Models.load(config) as models:                       # scoring videos: everything
        ...
    Models.load(config, parts=("asr", "face", "text"))        # dataset extraction
    Models.load(config, parts=("text", "miar"))               # the text path, evaluation

The video path, the text path, dataset extraction and evaluation all load through here,
so the weights are checked against the extractors (text encoder, voice and face columns)
in exactly one place. Importing this module loads no model library: that happens in
``Models.load``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
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

__all__ = ["ALL_PARTS", "Models", "native_stderr_quiet", "weights_text_options"]

log = logging.getLogger(__name__)

#: The loadable parts: speech recognition, face extraction, text encoder, MIAR weights.
ALL_PARTS: tuple[str, ...] = ("asr", "face", "text", "miar")
#: Parts that run on PyTorch (MTCNN, the text transformer, MIAR), hence obey ``torch_threads``.
_TORCH_PARTS = frozenset({"face", "text", "miar"})


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
    """

    ffmpeg: Path
    transcriber: Transcriber | None = None
    voice_states: VoiceStates | None = None
    face: FaceExtractor | None = None
    text_encoder: TextEncoder | None = None
    miar: LoadedMiar | None = None

    @classmethod
    def load(cls, config: PipelineConfig, parts: Collection[str] = ALL_PARTS) -> Models:
        """Load the models named by ``config`` for the given parts (offline).

        Also sets PyTorch's thread count (``config.torch_threads``) when a part runs on
        PyTorch: a process-wide setting, so it is applied here, where the process commits
        to running these models. If a part fails to load, the parts already loaded are
        closed before the error propagates.

        Args:
            config: Which models and weights, and their options.
            parts: Any of ``ALL_PARTS``.

        Raises:
            ValueError: An unknown part name.
            ModelNotFoundError: ffmpeg or a model file that should be installed is missing.
            CheckpointError: The weights are missing, corrupt, or made for other features.
        """
        unknown = sorted(set(parts) - set(ALL_PARTS))
        if unknown:
            raise ValueError(f"Models.load: unknown parts {unknown}, expected some of {ALL_PARTS}")
        from extractors.assets import resolve_ffmpeg

        if config.torch_threads > 0 and _TORCH_PARTS & set(parts):
            import torch

            torch.set_num_threads(config.torch_threads)
        models = cls(ffmpeg=resolve_ffmpeg())
        try:
            # The weights first: the cheapest part, and the one a wrong --weights breaks.
            if "miar" in parts:
                models.miar = _load_miar(config)
                from extractors.voice_states import has_states

                # The weights decide whether the voice states are computed: weights trained on the
                # descriptors alone (miar-v2) never see them.
                reads_states = has_states(models.miar.config.get("audio_columns"))
                config = replace(config, voice_states=replace(config.voice_states, enabled=reads_states))
            if "face" in parts:
                from extractors.face import FaceExtractor

                with native_stderr_quiet():
                    models.face = FaceExtractor(config.face)
            if "asr" in parts:
                from extractors.transcript import Transcriber

                models.transcriber = Transcriber(config.asr, config.cache_dir)
                if config.voice_states.enabled:
                    from extractors.voice_states import VoiceStates

                    if models.transcriber.options.model == config.voice_states.model:
                        models.voice_states = VoiceStates(models.transcriber.whisper, config.voice_states)
                    else:
                        models.voice_states = VoiceStates.load(config.voice_states, config.cache_dir,
                                                               config.asr.compute_type, config.asr.cpu_threads)
            if "text" in parts:
                from extractors.text import TextEncoder

                text = config.text
                if models.miar is not None:  # the weights decide how the text is encoded
                    text = weights_text_options(models.miar.config, text)
                models.text_encoder = TextEncoder(text)
        except BaseException:
            models.close()
            raise
        return models

    def close(self) -> None:
        """Release every loaded model (MediaPipe's graph is closed; the rest is dropped)."""
        face, self.face = self.face, None
        self.transcriber = self.voice_states = self.text_encoder = self.miar = None
        if face is not None:
            face.close()

    def __enter__(self) -> Models:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

