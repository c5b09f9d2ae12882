"""How it is said, as Whisper hears it: the speech encoder's hidden states, 50 per second.

Why: the 34 COVAREP-style descriptors (``extractors.voice``) carry pitch, energy and timbre,
but on acted emotional speech from unseen speakers a linear read-out of their clip means
separates happy from negative voices far less well than the same read-out of Whisper's
encoder states (team feasibility on CREMA-D: AUC 68.9 against 87.1 on held-out actors).
The encoder is installed and loaded for transcription anyway, so the states cost no new
package. They come in two kinds, and weights read the kind they were trained on
(``weights_states_source``; ``STATES_SOURCES``):

- a second pass (``VoiceStates.extract``, what the shipped miar-v7 reads, as miar-v5 did): the encoder runs
  again over the file in consecutive 30 s windows (shorter audio is zero-padded, as Whisper
  itself does), and only the frames that cover real audio are kept;
- kept from transcription (``StatesFromTranscription``): the output of every window Whisper
  encoded while it transcribed (its speech only, the VAD's silences removed), with no second
  pass; possible only when the transcribing model is the states' model.

The states come from one fixed model (``VoiceStatesOptions.model``, default Whisper
``tiny.en``: 384 values a frame) whatever model transcribes, because weights trained on
one model's states cannot read another's; when another model transcribes (``--asr base``)
they always come from a second pass. The two kinds differ (the windows start elsewhere), so
weights trained on one are not fed the other.

``combine`` puts the states beside the descriptors on the descriptors' 100 Hz clock (each
20 ms state covers two 10 ms frames), so alignment, pooling per word and the model see
one audio track; its columns are ``voice.COLUMNS + STATE_COLUMNS``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.media import SAMPLE_RATE_HZ
from extractors.records import FeatureTrack

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["VoiceStatesOptions", "VoiceStates", "StatesFromTranscription", "STATE_COLUMNS", "SECOND_PASS",
           "TRANSCRIPTION_PASS", "STATES_SOURCES", "states_source", "weights_states_source",
           "states_kept_from_transcription", "STATES_RATE_HZ", "WINDOW_S", "combine", "audio_columns", "has_states"]

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


#: The two kinds of states, by where they come from (features manifests, weights configs and
#: training recipes name them so): a second encoder pass over the file (``VoiceStates.extract``;
#: miar-v3 to v5) or kept from Whisper's own transcription pass (``StatesFromTranscription``).
SECOND_PASS = "second pass"
TRANSCRIPTION_PASS = "transcription pass"
STATES_SOURCES: tuple[str, ...] = (SECOND_PASS, TRANSCRIPTION_PASS)


@dataclass(frozen=True)
class VoiceStatesOptions:
    """Whether and from which model the encoder states are taken.

    Attributes:
        enabled: Compute the states (the shipped weights read them; older weights that
            know only the descriptors switch them off when loaded).
        model: Whisper model whose encoder is read; its width must be ``STATE_WIDTH``.
        batch_windows: 30 s windows encoded per call (memory stays flat in file length).
        kept: Keep the states from Whisper's own transcription pass when it transcribes with
            ``model`` (``StatesFromTranscription``); False always runs the second pass
            (``VoiceStates.extract``). Followed where no weights are loaded (feature extraction);
            loaded weights decide for themselves (``states_kept_from_transcription``,
            ``pipeline.models.Models.keeps_voice_states``).
    """

    enabled: bool = True
    model: str = "tiny.en"
    batch_windows: int = 4
    kept: bool = True


def states_source(asr_model: str, options: VoiceStatesOptions) -> str | None:
    """Where the pipeline's states come from, as features manifests record it: Whisper's own
    transcription pass when it transcribes with ``options.model`` and the options keep them
    (``StatesFromTranscription``), else a second pass of that model over the file
    (``VoiceStates.extract``); None without states."""
    if not options.enabled:
        return None
    return TRANSCRIPTION_PASS if options.kept and asr_model == options.model else SECOND_PASS


def weights_states_source(weights_config: Mapping[str, Any]) -> str:
    """The kind of states weights were trained on (``STATES_SOURCES``): their config's
    ``voice_states_source``, else the CREMA-D features their recipe read
    (``TrainOptions.crema_d_states``), else the second pass (weights from before either existed)."""
    source = weights_config.get("voice_states_source")
    if source is None:
        options = (weights_config.get("training") or {}).get("options") or {}
        source = options.get("crema_d_states", SECOND_PASS)
    return str(source)


def states_kept_from_transcription(weights_config: Mapping[str, Any]) -> bool:
    """Whether weights were trained on states kept from Whisper's transcription pass (miar-v6's recipe)
    rather than on those of a second pass (``weights_states_source``)."""
    return weights_states_source(weights_config) == TRANSCRIPTION_PASS


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


class StatesFromTranscription:
    """Whisper's encoder states as its own transcription computed them, on the file's 50 Hz clock.

    Why: ``VoiceStates.extract`` runs the encoder a second time over audio that transcription
    has just encoded (about 11 CPU-seconds per 10 minutes of speech, a third of Whisper's own
    cost). ``extractors.transcript.Transcriber.transcribe`` hands this object each piece's speech
    chunks and each 30 s window's encoder output instead.

    What the states are: Whisper encodes the speech only (Silero VAD removes the silences and
    joins the speech chunks, and ``chunk_s`` pieces split long files) in 30 s windows that start
    where the previous window's last word ended. A frame of the file takes its state from the
    last window that starts at or before it (the window its words were decoded from), at the
    frame's place in the joined speech. A frame in a removed silence is placed as faster-whisper
    places a word there: with the offset of the speech chunk before it. Frames of a piece without
    speech, or before its first window, stay zero; no word lies there.

    On a clip shorter than 30 s whose speech the VAD keeps whole (the training clips), these are
    the states ``VoiceStates.extract`` computes, up to the last mel frame, which Whisper's
    transcription leaves out (``tests/test_voice_states.py`` measures the difference).
    """

    def __init__(self, n_samples: int) -> None:
        per_frame = int(_SAMPLE_RATE_HZ / STATES_RATE_HZ)
        self._n_samples = int(n_samples)
        self._values = np.zeros((-(-self._n_samples // per_frame), STATE_WIDTH), np.float32)
        self._centres_s = (np.arange(len(self._values)) + 0.5) / STATES_RATE_HZ
        self._frames = np.zeros(0, np.int64)  # the current piece's frames of the file
        self._heard_s = np.zeros(0)  # and their times in the piece's joined speech
        self.windows = 0  # windows placed so far

    def piece(self, start_sample: int, end_sample: int, speech: list[dict[str, int]] | None) -> None:
        """A piece of the file is about to be transcribed.

        Args:
            start_sample, end_sample: The piece, in samples of the file.
            speech: Its speech chunks (``{"start", "end"}`` in samples of the piece) as the
                VAD kept them, in order; None when the whole piece is heard as it is.
        """
        lo, hi = start_sample / _SAMPLE_RATE_HZ, end_sample / _SAMPLE_RATE_HZ
        self._frames = np.flatnonzero((self._centres_s >= lo) & (self._centres_s < hi))
        t = self._centres_s[self._frames] - lo
        if speech is None:
            self._heard_s = t
            return
        if not speech:
            self._frames, self._heard_s = np.zeros(0, np.int64), np.zeros(0)
            return
        starts = np.array([c["start"] for c in speech], np.float64) / _SAMPLE_RATE_HZ
        lengths = np.array([c["end"] - c["start"] for c in speech], np.float64) / _SAMPLE_RATE_HZ
        joined_starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
        chunk = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
        self._heard_s = np.maximum(0.0, t - (starts[chunk] - joined_starts[chunk]))

    def window(self, start_s: float, states: np.ndarray) -> None:
        """One 30 s window's encoder output: it starts ``start_s`` into the piece's joined speech.

        Windows come in the order Whisper decodes them (later starts last), so each overwrites
        the frames from its start on.
        """
        states = np.asarray(states, np.float32).reshape(-1, np.shape(states)[-1])
        if states.shape[-1] != STATE_WIDTH:
            raise ValueError(f"the transcribing Whisper gives {states.shape[-1]}-wide encoder states, the voice "
                             f"states are {STATE_WIDTH} wide (use tiny.en)")
        self.windows += 1
        index = np.floor((self._heard_s - start_s) * STATES_RATE_HZ + 1e-6).astype(np.int64)
        inside = (index >= 0) & (index < len(states))
        self._values[self._frames[inside]] = states[index[inside]]

    def track(self) -> FeatureTrack:
        """The "voice_states" track (as ``VoiceStates.extract`` returns it) once the file is transcribed."""
        return FeatureTrack("voice_states", self._centres_s.copy(), self._values, STATE_COLUMNS,
                            np.ones(len(self._values), bool), STATES_RATE_HZ)


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
