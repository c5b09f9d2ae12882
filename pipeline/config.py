"""The one place where the pipeline's configuration is assembled.

``PipelineConfig`` is a frozen bundle of the option dataclasses each stage owns
(defaults live once, in those dataclasses). Locations (the shipped weights, the cache)
come from ``storage.locations``, the only module that reads environment variables.
Light on purpose: importing it loads no model library (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from extractors.face import FaceOptions
from extractors.media import MediaOptions
from extractors.text import TextOptions
from extractors.transcript import AsrOptions
from extractors.voice import VoiceOptions
from extractors.voice_states import VoiceStatesOptions
from model.schema import NEUTRAL_BAND
from pipeline.align import AlignOptions
from pipeline.utterances import UtteranceOptions
from storage.locations import DEFAULT_WEIGHTS, cache_dir

__all__ = ["OutputOptions", "PipelineConfig"]


@dataclass(frozen=True)
class OutputOptions:
    """How results are written.

    Attributes:
        neutral_band: Scores with ``abs(score) < neutral_band`` are labelled "neutral"
            (default ``model.schema.NEUTRAL_BAND``, the band training uses too).
        float_digits: Decimal places of floats in the CSV.
    """

    neutral_band: float = NEUTRAL_BAND
    float_digits: int = 3


@dataclass(frozen=True)
class PipelineConfig:
    """Options of every stage, plus where the weights and cache live.

    Attributes:
        media: Decoding and frame sampling.
        asr: Speech recognition.
        voice: Voice descriptors.
        voice_states: Whisper's encoder states beside them (switched to what the weights read
            when the weights are loaded).
        face: Face detection and expression features.
        text: Text encoder (must match the weights' encoder).
        utterances: Grouping words into utterances.
        align: Bringing frames to words.
        output: CSV writing and polarity labels.
        weights_dir: MIAR weights folder (model.pt + config.json); default
            ``storage.locations.DEFAULT_WEIGHTS``.
        cache_dir: Writable cache for assembled models; default ``storage.locations.cache_dir()``.
        torch_threads: Threads for PyTorch (MTCNN, text encoder, MIAR). 1 is fastest on a
            2-core machine: torch's threads otherwise fight MediaPipe's and CTranslate2's
            (face stage measured 10 ms/frame with 1 thread, 34-78 ms with 2). 0 leaves torch's default.
    """

    media: MediaOptions = field(default_factory=MediaOptions)
    asr: AsrOptions = field(default_factory=AsrOptions)
    voice: VoiceOptions = field(default_factory=VoiceOptions)
    voice_states: VoiceStatesOptions = field(default_factory=VoiceStatesOptions)
    face: FaceOptions = field(default_factory=FaceOptions)
    text: TextOptions = field(default_factory=TextOptions)
    utterances: UtteranceOptions = field(default_factory=UtteranceOptions)
    align: AlignOptions = field(default_factory=AlignOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    weights_dir: Path = DEFAULT_WEIGHTS
    cache_dir: Path = field(default_factory=cache_dir)
    torch_threads: int = 1

    def with_overrides(
        self,
        *,
        asr_model: str | None = None,
        language: str | None = None,
        fps: float | None = None,
        max_duration_s: float | None = None,
        weights_dir: Path | None = None,
    ) -> PipelineConfig:
        """A copy with the CLI's overrides applied (None leaves the default)."""
        config = self
        if asr_model is not None:
            config = replace(config, asr=replace(config.asr, model=asr_model))
        if language is not None:
            config = replace(config, asr=replace(config.asr, language=language))
        if fps is not None:
            config = replace(config, media=replace(config.media, frame_fps=fps))
        if max_duration_s is not None:
            config = replace(config, media=replace(config.media, max_duration_s=max_duration_s))
        if weights_dir is not None:
            config = replace(config, weights_dir=weights_dir)
        return config
