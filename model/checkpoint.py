"""A MIAR weights folder: ``model.pt`` (state_dict only) + ``config.json``, verified on load.

``config.json`` carries everything needed to rebuild and feed the network: its dims, the
text encoder's name, the audio and vision column names, per-column normalisation stats
from the training data, which modalities training saw, the SHA-256 of ``model.pt`` and a
training summary. ``load_checkpoint`` refuses weights whose hash, encoder or columns do
not match what the extractors produce: a silent mismatch would score garbage.

config.json is checked against a schema before anything is allocated
(``validate_weights_config``: every key present, types, ranges, ``n_heads`` dividing
``d_model``, known modalities, normalisation as long as the columns, sizes bounded) and
``model.pt`` must be as large as the parameters those dims describe; each problem is one
``CheckpointError`` naming the file and the field.

The SHA-256 in config.json proves integrity, not trust: it catches a truncated or damaged
``model.pt``, but whoever can edit the folder can edit both files. Trust comes from where
the folder came from; ``torch.load(weights_only=True)`` keeps a hostile ``model.pt`` from
running code, and the schema keeps a hostile config.json from exhausting memory.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.batch import ModalityStats, SampleInput, collate
from model.errors import CheckpointError
from model.miar import Miar, MiarDims, parameter_shapes
from model.schema import MODALITIES, SCORE_MAX, SCORE_MIN
from storage.files import sha256_of, write_text_atomic, write_via_atomic

__all__ = ["CheckpointError", "LoadedMiar", "load_checkpoint", "read_weights_config", "save_checkpoint",
           "validate_weights_config", "WEIGHTS_FORMAT", "MAX_PARAMETERS"]

log = logging.getLogger(__name__)

#: Version of the folder layout; bump when config.json changes incompatibly.
WEIGHTS_FORMAT = "miar-weights-v1"
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
#: A config.json larger than this is refused unread (the shipped one is about 32 KB).
MAX_CONFIG_BYTES = 16 << 20
#: The largest network built: 2**29 float32 parameters (2 GiB); miar-v7 has 12.1 M (10.6 M: fine-tuned text layers).
MAX_PARAMETERS = 1 << 29
#: model.pt may exceed its parameters' bytes by torch.save's framing: this, plus 1 KiB a tensor.
_MODEL_FILE_SLACK_BYTES = 64 << 10

#: Every ``MiarDims`` field: (type, lowest, highest). The bounds keep a mistyped or hostile
#: config from asking for terabytes before ``model.pt`` is compared with it.
_DIMS_SCHEMA: dict[str, tuple[type, float, float]] = {
    "text_dim": (int, 1, 8192),
    "audio_dim": (int, 1, 4096),
    "vision_dim": (int, 1, 4096),
    "d_model": (int, 1, 4096),
    "n_heads": (int, 1, 128),
    "n_layers": (int, 1, 64),
    "ff_mult": (int, 1, 16),
    "dropout": (float, 0.0, 0.99),
    "proj_dim": (int, 1, 4096),
    "max_len": (int, 1, 16384),
    "init_temperature": (float, 0.01, 1.0),
    "interaction": (bool, 0, 1),
    "sentence_path": (bool, 0, 1),
    "n_classes": (int, 0, 1024),
    "text_tune_layers": (int, 0, 64),
    "text_tune_heads": (int, 1, 128),
    "text_tune_ff": (int, 1, 65536),
}
#: Dims added after the first weights were shipped: a config without them takes MiarDims' defaults.
_OPTIONAL_DIMS: frozenset[str] = frozenset({"text_tune_layers", "text_tune_heads", "text_tune_ff"})
#: Top-level keys of config.json and what each must be (``training`` is free-form and optional).
_REQUIRED_KEYS: dict[str, type] = {
    "dims": dict,
    "text_encoder": str,
    "text_extractor_version": str,
    "max_tokens": int,
    "audio_columns": list,
    "vision_columns": list,
    "normalisation": dict,
    "trained_modalities": list,
    "model_sha256": str,
}


def _stats_to_json(stats: ModalityStats | None) -> dict[str, Any]:
    if stats is None:
        return {"trained": False, "note": "never seen in training; masked as missing at inference"}
    return {"trained": True, "mean": [float(v) for v in stats.mean], "std": [float(v) for v in stats.std]}


def _stats_from_json(entry: dict[str, Any] | None) -> ModalityStats | None:
    if not entry or not entry.get("trained"):
        return None
    return ModalityStats(np.asarray(entry["mean"], np.float32), np.asarray(entry["std"], np.float32))


def save_checkpoint(
    folder: Path,
    model: Miar,
    *,
    text_encoder: str,
    text_extractor_version: str,
    max_tokens: int,
    audio_columns: tuple[str, ...],
    vision_columns: tuple[str, ...],
    stats: dict[str, ModalityStats | None],
    trained_modalities: Sequence[str],
    training: dict[str, Any],
    text_layers: int | None = None,
    voice_states_source: str | None = None,
) -> Path:
    """Write ``model.pt`` and ``config.json`` into ``folder`` (each atomically).

    Args:
        folder: Target folder (created if needed).
        model: The trained network.
        text_encoder: Name of the text encoder the features came from.
        text_extractor_version: ``extractors.text.TEXT_EXTRACTOR_VERSION`` at training time.
        max_tokens: Token limit the text features were made with.
        audio_columns, vision_columns: Column names of the audio and vision features.
        stats: Normalisation per modality; None for a modality training never saw.
        trained_modalities: Modalities the network was trained on (others are masked at inference).
        training: Free-form summary (sources, sizes, seed, dev metrics).
        text_layers: Encoder layers the text features went through (None: all); the
            pipeline's text extractor runs exactly these for the weights.
        voice_states_source: Where the audio's encoder-state columns came from (a name the
            extractors define; the pipeline computes the same kind for these weights), or None.

    Returns:
        The folder.
    """
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_via_atomic(folder / MODEL_FILE, lambda tmp: torch.save(state, tmp))
    config = {
        "format": WEIGHTS_FORMAT,
        "dims": asdict(model.dims),
        "text_encoder": text_encoder,
        "text_extractor_version": text_extractor_version,
        "max_tokens": max_tokens,
        "text_layers": text_layers,
        "audio_columns": list(audio_columns),
        "voice_states_source": voice_states_source,
        "vision_columns": list(vision_columns),
        "normalisation": {m: _stats_to_json(stats.get(m)) for m in MODALITIES},
        "trained_modalities": [m for m in MODALITIES if m in trained_modalities],
        "model_sha256": sha256_of(folder / MODEL_FILE),
        "training": training,
    }
    write_text_atomic(folder / CONFIG_FILE, json.dumps(config, indent=1) + "\n")
    log.info("weights written to %s (%d bytes)", folder, (folder / MODEL_FILE).stat().st_size)
    return folder


class LoadedMiar:
    """A verified MIAR network with its normalisation, ready to score samples."""

    def __init__(self, model: Miar, config: dict[str, Any], folder: Path) -> None:
        self._model = model.eval()
        self.config = config
        self.folder = folder
        self._stats = {m: _stats_from_json(config["normalisation"].get(m)) for m in MODALITIES}
        self._dims = {m: model.dims.input_dim(m) for m in MODALITIES}

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities the network was trained on and is fed; the rest are masked."""
        return tuple(self.config["trained_modalities"])

    @property
    def text_encoder(self) -> str:
        return str(self.config["text_encoder"])

    @property
    def text_layers(self) -> int | None:
        """Encoder layers the text features must go through (None: all), as trained."""
        value = self.config.get("text_layers")
        return None if value is None else int(value)

    def predict(self, samples: Sequence[SampleInput], batch_size: int = 64) -> np.ndarray:
        """Sentiment of each sample.

        Features are standardised with the shipped training statistics; modalities the
        network never trained on are masked as missing. Deterministic (eval mode, no grad).

        Args:
            samples: Raw per-token features per utterance.
            batch_size: Samples per forward pass.

        Returns:
            (N,) float32 scores in [-3, 3]; empty when ``samples`` is empty.
        """
        if not samples:
            return np.zeros(0, dtype=np.float32)
        scores = []
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                batch = collate(samples[start:start + batch_size], self._dims, self._stats, use=self.modalities)
                out = self._model(batch.text, batch.text_mask, batch.audio, batch.audio_mask,
                                  batch.vision, batch.vision_mask)
                scores.append(out.score.numpy())
        return np.clip(np.concatenate(scores), SCORE_MIN, SCORE_MAX).astype(np.float32)

    def class_probabilities(self, samples: Sequence[SampleInput], batch_size: int = 64) -> np.ndarray:
        """Probabilities of the auxiliary classes (MELD: negative, neutral, positive) per sample.

        Returns:
            (N, n_classes) float32; (N, 0) when the network has no class head.
        """
        out = []
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                batch = collate(samples[start:start + batch_size], self._dims, self._stats, use=self.modalities)
                logits = self._model(batch.text, batch.text_mask, batch.audio, batch.audio_mask,
                                     batch.vision, batch.vision_mask).class_logits
                out.append(torch.softmax(logits, dim=-1).numpy() if logits.shape[1] else logits.numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

    def predict_readings(self, samples: Sequence[SampleInput], batch_size: int = 64) -> np.ndarray:
        """What each modality says on its own: the fused score with the other two masked.

        One sample per (utterance, modality present), scored by ``predict``: the same network
        and head as the fused score, fed that modality alone, as the held-out single-modality
        sets of the model card were scored (MOSI text, EmoDB voice, face photos). Not the
        auxiliary heads of one all-modality pass: there each modality's token attends to the
        others, and training taught the audio and vision heads to echo the text's label on
        mixed samples (model/DESIGN.md, "Per-modality readings").

        Args:
            samples: Raw per-token features per utterance.
            batch_size: Samples per forward pass.

        Returns:
            (N, 3) float32 in ``MODALITIES`` order (text, audio, vision), in [-3, 3]; NaN where
            the sample lacks the modality (no valid row) or the network never trained on it.
        """
        readings = np.full((len(samples), len(MODALITIES)), np.nan, dtype=np.float32)
        for j, modality in enumerate(MODALITIES):
            if modality not in self.modalities:
                continue
            rows, alone = [], []
            for i, sample in enumerate(samples):
                values, mask = sample.modality(modality)
                if values is None or not mask.any():
                    continue
                rows.append(i)
                parts: dict[str, np.ndarray] = {"text": np.zeros((0, 1), np.float32), "text_mask": np.zeros(0, bool)}
                parts[modality], parts[f"{modality}_mask"] = values, mask
                alone.append(SampleInput(**parts))
            if rows:
                readings[rows, j] = self.predict(alone, batch_size)
        return readings


    def head_readings(self, samples: Sequence[SampleInput], batch_size: int = 64) -> np.ndarray:
        """The auxiliary per-modality heads of one pass with every modality present (for comparison).

        Not what the outputs show (``predict_readings`` is): with several modalities present
        each modality's token attends to the others, so these heads echo the fused view.
        ``bench/readings.py`` measures both.

        Returns:
            (N, 3) float32 in ``MODALITIES`` order, clipped to [-3, 3]; NaN where a modality is absent.
        """
        out = np.full((len(samples), len(MODALITIES)), np.nan, dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                batch = collate(samples[start:start + batch_size], self._dims, self._stats, use=self.modalities)
                result = self._model(batch.text, batch.text_mask, batch.audio, batch.audio_mask,
                                     batch.vision, batch.vision_mask)
                if result.modality_scores is None:  # a network without auxiliary heads
                    continue
                scores = np.clip(result.modality_scores.numpy(), SCORE_MIN, SCORE_MAX)
                out[start:start + len(scores)] = np.where(result.present.numpy(), scores, np.nan)
        return out

def read_weights_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a weights folder, checked against the schema (``validate_weights_config``)
    but not yet against ``model.pt``'s hash and size.

    For callers that must know what the weights expect (their ``text_encoder`` and
    ``max_tokens``) before loading them with ``load_checkpoint``.

    Raises:
        CheckpointError: ``model.pt`` or ``config.json`` missing, ``model.pt`` empty,
            ``config.json`` unreadable, too large, of another format, or off the schema.
    """
    return _read_config(Path(folder))[0]


def _read_config(folder: Path) -> tuple[dict[str, Any], MiarDims]:
    """``read_weights_config`` with the dims the schema check gave."""
    model_path, config_path = folder / MODEL_FILE, folder / CONFIG_FILE
    missing = [p.name for p in (model_path, config_path) if not p.is_file()]
    if missing:
        raise CheckpointError(f"weights folder {folder} lacks {', '.join(missing)}: not a MIAR weights folder")
    if model_path.stat().st_size == 0:
        raise CheckpointError(f"{model_path} is empty (0 bytes): the weights were not written; restore them")
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{config_path}: {config_path.stat().st_size:,} bytes, more than a weights config "
                              f"holds ({MAX_CONFIG_BYTES:,} at most)")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"{config_path} cannot be read as JSON: {_first_line(e)}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: a JSON object expected, found {type(config).__name__}")
    if config.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{config_path}: format {_shown(config.get('format'))}, this code reads "
                              f"{WEIGHTS_FORMAT!r}")
    return config, validate_weights_config(config, config_path)


def validate_weights_config(config: dict[str, Any], where: Path | str = CONFIG_FILE) -> MiarDims:
    """Check a weights config against the schema, before anything is built from it.

    Every key ``save_checkpoint`` writes must be there with the right type: ``dims`` (each
    ``MiarDims`` field an integer, number or boolean within ``_DIMS_SCHEMA``'s bounds,
    ``n_heads`` dividing ``d_model``), column lists as long as ``audio_dim``/``vision_dim``,
    ``trained_modalities`` known and not repeated, each trained modality's normalisation with
    ``mean``/``std`` as long as its columns (finite, std > 0), and a 64-digit ``model_sha256``.

    Args:
        config: The parsed config.json.
        where: The file, for messages.

    Returns:
        The network's dims.

    Raises:
        CheckpointError: The first problem, naming ``where`` and the field.
    """
    for key, kind in _REQUIRED_KEYS.items():
        if key not in config:
            raise CheckpointError(f"{where}: no {key!r}; a weights config holds {', '.join(_REQUIRED_KEYS)}")
        if not _is_kind(config[key], kind):
            raise CheckpointError(f"{where}: {key} is {_shown(config[key])}, expected {_KIND_NAMES[kind]}")
    dims_json = config["dims"]
    values: dict[str, Any] = {}
    for name, (kind, lowest, highest) in _DIMS_SCHEMA.items():
        if name not in dims_json and name in _OPTIONAL_DIMS:
            continue
        if name not in dims_json:
            raise CheckpointError(f"{where}: dims has no {name!r}")
        value = dims_json[name]
        if not _is_kind(value, kind) or (kind is not bool and not lowest <= value <= highest):
            bounds = "" if kind is bool else f" in [{lowest:g}, {highest:g}]"
            raise CheckpointError(f"{where}: dims.{name} is {_shown(value)}, expected {_KIND_NAMES[kind]}{bounds}")
        values[name] = value
    dims = MiarDims(**values)
    if dims.d_model % dims.n_heads:
        raise CheckpointError(f"{where}: dims.n_heads {dims.n_heads} does not divide dims.d_model {dims.d_model}")
    if not 1 <= config["max_tokens"] <= 8192:
        raise CheckpointError(f"{where}: max_tokens is {config['max_tokens']}, expected an integer in [1, 8192]")
    if not config["text_encoder"]:
        raise CheckpointError(f"{where}: text_encoder is empty")
    layers = config.get("text_layers")
    if layers is not None and not (_is_kind(layers, int) and 0 <= layers <= 64):
        raise CheckpointError(f"{where}: text_layers is {_shown(layers)}, expected null or an integer in [0, 64]")
    if not re.fullmatch(r"[0-9a-f]{64}", config["model_sha256"]):
        raise CheckpointError(f"{where}: model_sha256 is {_shown(config['model_sha256'])}, expected 64 hex digits")
    for name, width in (("audio_columns", dims.audio_dim), ("vision_columns", dims.vision_dim)):
        columns = config[name]
        if not all(isinstance(c, str) for c in columns):
            raise CheckpointError(f"{where}: {name} holds a non-string")
        if len(columns) != width:
            raise CheckpointError(f"{where}: {name} lists {len(columns)} columns, dims say {width}")
    trained = config["trained_modalities"]
    unknown = [m for m in trained if m not in MODALITIES]
    if unknown or not trained or len(set(trained)) != len(trained):
        raise CheckpointError(f"{where}: trained_modalities is {_shown(trained)}, expected some of {list(MODALITIES)} "
                              "(each once)")
    for modality in MODALITIES:
        entry = config["normalisation"].get(modality)
        if entry is None and modality not in trained:
            continue
        if not isinstance(entry, dict) or (modality in trained and entry.get("trained") is not True):
            raise CheckpointError(f"{where}: normalisation.{modality} is {_shown(entry)}, expected "
                                  "{'trained': true, 'mean': [...], 'std': [...]} for a trained modality")
        if entry.get("trained"):
            width = dims.input_dim(modality)
            for stat in ("mean", "std"):
                numbers = entry.get(stat)
                if not isinstance(numbers, list) or len(numbers) != width:
                    size = len(numbers) if isinstance(numbers, list) else _shown(numbers)
                    raise CheckpointError(f"{where}: normalisation.{modality}.{stat} has {size} values, "
                                          f"its columns are {width}")
                if not all(_is_kind(v, float) and (stat == "mean" or v > 0) for v in numbers):
                    raise CheckpointError(f"{where}: normalisation.{modality}.{stat} holds a value that is not a "
                                          f"finite number{' above 0' if stat == 'std' else ''}")
    return dims


_KIND_NAMES: dict[type, str] = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                                list: "a list", dict: "an object"}


def _is_kind(value: Any, kind: type) -> bool:
    """JSON type check where a boolean is not a number and a number must be finite."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def _shown(value: Any, limit: int = 60) -> str:
    """``value`` for a one-line message, cut when long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _check_model_size(model_path: Path, dims: MiarDims) -> None:
    """Refuse dims that describe more than ``MAX_PARAMETERS``, or a ``model.pt`` whose size does not fit them.

    The shapes come from ``parameter_shapes``, which allocates nothing (the network is built only
    once its size is known to be sane).
    """
    shapes = parameter_shapes(dims)
    n_parameters = sum(math.prod(shape) for shape in shapes)
    if n_parameters > MAX_PARAMETERS:
        raise CheckpointError(f"{model_path.parent / CONFIG_FILE}: dims describe a network of {n_parameters:,} "
                              f"parameters, more than the {MAX_PARAMETERS:,} this code builds")
    expected = n_parameters * (torch.finfo(torch.get_default_dtype()).bits // 8)
    size = model_path.stat().st_size
    if not expected <= size <= expected + _MODEL_FILE_SLACK_BYTES + 1024 * len(shapes):
        raise CheckpointError(f"{model_path}: {size:,} bytes, but the dims in config.json make {expected:,} bytes "
                              "of parameters: the file and the config do not belong together")


def read_columns(folder: Path, name: str) -> tuple[str, ...]:
    """A column list of a weights folder's config.json (``()`` when absent or unreadable).

    Read before loading, so the caller can tell which feature layout the weights expect;
    ``load_checkpoint`` still verifies it.
    """
    try:
        value = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8")).get(name, ())
    except (OSError, ValueError, AttributeError):
        return ()
    return tuple(str(c) for c in value) if isinstance(value, list) else ()


def load_checkpoint(
    folder: Path,
    *,
    expected_encoder: str,
    expected_audio_columns: tuple[str, ...],
    expected_vision_columns: tuple[str, ...],
) -> LoadedMiar:
    """Load and verify a weights folder.

    Args:
        folder: Holds ``model.pt`` and ``config.json``.
        expected_encoder: The text encoder the pipeline will use.
        expected_audio_columns: ``extractors.voice.COLUMNS``.
        expected_vision_columns: ``extractors.face.COLUMNS``.

    Returns:
        The network in eval mode with its normalisation.

    Raises:
        CheckpointError: Files missing, config.json off the schema, dims too large or unlike
            model.pt's size, hash mismatch, unreadable state, or encoder/columns unlike the
            expected ones. All but the last two are found before the network is built.
    """
    folder = Path(folder)
    config, dims = _read_config(folder)
    _check_model_size(folder / MODEL_FILE, dims)
    actual = sha256_of(folder / MODEL_FILE)
    if actual != config.get("model_sha256"):
        raise CheckpointError(
            f"{folder / MODEL_FILE}: SHA-256 {actual[:12]}... differs from config.json's "
            f"{str(config.get('model_sha256'))[:12]}...: the file is corrupt or was replaced; restore the weights"
        )
    if config.get("text_encoder") != expected_encoder:
        raise CheckpointError(
            f"{folder}: weights were trained on text encoder {config.get('text_encoder')!r}, "
            f"but the pipeline uses {expected_encoder!r}; use matching weights or encoder"
        )
    for name, expected in (("audio_columns", expected_audio_columns), ("vision_columns", expected_vision_columns)):
        got = tuple(config.get(name, ()))
        if got != tuple(expected):
            diff = sorted(set(got) ^ set(expected))[:5]
            raise CheckpointError(
                f"{folder}: {name} in config.json ({len(got)}) differ from the extractors' ({len(expected)}); "
                f"first differences {diff or 'in order'}; retrain or use matching weights"
            )
    if dims.audio_dim != len(expected_audio_columns) or dims.vision_dim != len(expected_vision_columns):
        raise CheckpointError(f"{folder}: dims {dims} do not match the column counts")
    model = Miar(dims)
    try:
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"it holds a {type(state).__name__}, not a state_dict of tensors")
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        # RuntimeError: not a torch zip, missing/unexpected keys, shape mismatch; UnpicklingError: weights_only refused
        raise CheckpointError(f"{folder / MODEL_FILE} does not fit the network in config.json: {_first_line(e)}") from e
    log.info("MIAR weights %s loaded (modalities %s)", folder.name, ", ".join(config["trained_modalities"]))
    return LoadedMiar(model, config, folder)
