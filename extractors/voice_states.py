"""How it is said, as Whisper hears it: the speech encoder's hidden states, 50 per second.

Why: the 34 COVAREP-style descriptors (``extractors.voice``) carry pitch, energy and timbre,
but on acted emotional speech from unseen speakers a linear read-out of their clip means
separates happy from negative voices far less well than the same read-out of Whisper's
encoder states (team feasibility on CREMA-D: AUC 68.9 against 87.1 on held-out actors).
The encoder is already installed and loaded for transcription, so its states cost one
encoder pass per 30 s of audio and no new package.

The states come from one fixed model (``VoiceStatesOptions.model``, default Whisper
``tiny.en``: 384 values a frame) whatever model transcribes, because weights trained on
one model's states cannot read another's. Whisper's encoder only takes 30 s windows
(shorter audio is zero-padded, as Whisper itself does), so audio is read in consecutive
30 s windows and only the frames that cover real audio are kept.

``combine`` puts the states beside the descriptors on the descriptors' 100 Hz clock (each
20 ms state covers two 10 ms frames), so alignment, pooling per word and the model see
one audio track; its columns are ``voice.COLUMNS + STATE_COLUMNS``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from extractors.media import SAMPLE_RATE_HZ
from extractors.records import FeatureTrack

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["VoiceStatesOptions", "VoiceStates", "STATE_COLUMNS", "STATES_RATE_HZ", "WINDOW_S", "combine",
           "audio_columns", "has_states"]

log = logging.getLogger(__name__)

#: One encoder frame per 20 ms (Whisper's mel hop of 10 ms, halved by its strided convolution).
STATES_RATE_HZ = 50.0
#: Whisper's encoder reads exactly 30 s of audio at a time.
WINDOW_S = 30.0
#: Width of Whisper tiny.en's encoder states.
STATE_WIDTH = 384
#: Column names of the states (model input columns recorded in the weights).
STATE_COLUMNS: tuple[str, ...] = tuple(f"whisper_tiny_{i:03d}" for i in range(STATE_WIDTH))
_SAMPLE_RATE_HZ = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class VoiceStatesOptions:
    """Whether and from which model the encoder states are taken.

    Attributes:
        enabled: Compute the states (the shipped weights read them; older weights that
            know only the descriptors switch them off when loaded).
        model: Whisper model whose encoder is read; its width must be ``STATE_WIDTH``.
        batch_windows: 30 s windows encoded per call (memory stays flat in file length).
    """

    enabled: bool = True
    model: str = "tiny.en"
    batch_windows: int = 4


def has_states(columns: Iterable[str] | None) -> bool:
    """True when a list of audio columns (a weights folder's or a features folder's) holds the states."""
    return STATE_COLUMNS[0] in tuple(columns or ())


def audio_columns(with_states: bool) -> tuple[str, ...]:
    """The model's audio input columns: the descriptors, then the states when they are used."""
    from extractors import voice

    return voice.COLUMNS + (STATE_COLUMNS if with_states else ())


class VoiceStates:
    """Whisper's encoder over a whole file, as a 50 Hz track of ``STATE_COLUMNS``.

    Holds a loaded faster-whisper model; the transcriber's own model is shared when it is
    the same one, so nothing is loaded twice.
    """

    def __init__(self, whisper: WhisperModel, options: VoiceStatesOptions = VoiceStatesOptions()) -> None:
        self._whisper = whisper
        self.options = options

    @classmethod
    def load(cls, options: VoiceStatesOptions, cache_dir: Path, compute_type: str = "int8",
             cpu_threads: int = 0) -> VoiceStates:
        """Load ``options.model`` on its own (when the transcriber runs another model)."""
        from extractors.assets import resolve_whisper_model
        from extractors.transcript import AsrOptions, _load_whisper

        asr = AsrOptions(model=options.model, compute_type=compute_type, cpu_threads=cpu_threads)
        return cls(_load_whisper(resolve_whisper_model(options.model, cache_dir), asr), options)

    def extract(self, audio: np.ndarray) -> FeatureTrack:
        """The encoder states of 16 kHz mono ``audio``, one row per 20 ms of it.

        Returns:
            A "voice_states" track: times_s (T,) frame centres, values (T, 384) float32,
            present all True; T = ceil(duration / 20 ms) (0 for empty audio).
        """
        from faster_whisper.audio import pad_or_trim

        audio = np.asarray(audio, dtype=np.float32)
        window = int(WINDOW_S * _SAMPLE_RATE_HZ)
        per_frame = int(_SAMPLE_RATE_HZ / STATES_RATE_HZ)
        starts = list(range(0, len(audio), window))
        rows: list[np.ndarray] = []
        for b in range(0, len(starts), max(1, self.options.batch_windows)):
            chunk_starts = starts[b:b + max(1, self.options.batch_windows)]
            features = np.stack([
                pad_or_trim(self._whisper.feature_extractor(audio[s:s + window])) for s in chunk_starts
            ]).astype(np.float32)
            states = np.array(self._whisper.encode(features), dtype=np.float32)
            if states.shape[-1] != STATE_WIDTH:
                raise ValueError(f"Whisper {self.options.model} gives {states.shape[-1]}-wide encoder states, "
                                 f"the voice states are {STATE_WIDTH} wide (use tiny.en)")
            for k, s in enumerate(chunk_starts):
                n = -(-min(window, len(audio) - s) // per_frame)
                rows.append(states[k, :n])
        values = np.concatenate(rows) if rows else np.zeros((0, STATE_WIDTH), np.float32)
        times = (np.arange(len(values)) + 0.5) / STATES_RATE_HZ
        return FeatureTrack("voice_states", times, values, STATE_COLUMNS, np.ones(len(values), bool),
                            STATES_RATE_HZ)


def combine(voice: FeatureTrack, states: FeatureTrack) -> FeatureTrack:
    """The descriptors with each frame's encoder state beside it, on the descriptors' clock.

    Each 10 ms descriptor frame takes the 20 ms state frame that holds its centre (the
    last one past the end); a frame is present when its descriptors are.
    """
    if len(states.values) == 0 or len(voice.values) == 0:
        values = np.zeros((len(voice.values), len(voice.columns) + len(STATE_COLUMNS)), np.float32)
        if len(voice.values):
            values[:, :len(voice.columns)] = voice.values
        return FeatureTrack(voice.name, voice.times_s, values, voice.columns + STATE_COLUMNS,
                            np.zeros(len(voice.values), bool) if len(states.values) == 0 else voice.present,
                            voice.rate_hz)
    index = np.clip(np.floor(np.asarray(voice.times_s) * states.rate_hz).astype(np.int64), 0, len(states.values) - 1)
    values = np.concatenate([voice.values.astype(np.float32), states.values[index]], axis=1)
    return FeatureTrack(voice.name, voice.times_s, values, voice.columns + STATE_COLUMNS, voice.present,
                        voice.rate_hz)
