"""A MIAR weights folder: ``model.pt`` (state_dict only) + ``config.json``, verified on load.

``config.json`` carries everything needed to rebuild and feed the network: its dims, the
text encoder's name, the audio and vision column names, per-column normalisation stats
from the training data, which modalities training saw, the SHA-256 of ``model.pt`` and a
training summary. ``load_checkpoint`` refuses weights whose hash, encoder or columns do
not match what the extractors produce: a silent mismatch would score garbage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.batch import ModalityStats, SampleInput, collate
from model.errors import CheckpointError
from model.miar import Miar, MiarDims
from model.schema import MODALITIES, SCORE_MAX, SCORE_MIN
from storage.files import sha256_of, write_text_atomic, write_via_atomic

__all__ = ["CheckpointError", "LoadedMiar", "load_checkpoint", "read_weights_config", "save_checkpoint",
           "WEIGHTS_FORMAT"]

log = logging.getLogger(__name__)

#: Version of the folder layout; bump when config.json changes incompatibly.
WEIGHTS_FORMAT = "miar-weights-v1"
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"


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
        "audio_columns": list(audio_columns),
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


def read_weights_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a weights folder, read but not verified against ``model.pt``.

    For callers that must know what the weights expect (their ``text_encoder`` and
    ``max_tokens``) before loading them with ``load_checkpoint``.

    Raises:
        CheckpointError: ``model.pt`` or ``config.json`` missing, unreadable, or of another format.
    """
    folder = Path(folder)
    model_path, config_path = folder / MODEL_FILE, folder / CONFIG_FILE
    missing = [p.name for p in (model_path, config_path) if not p.is_file()]
    if missing:
        raise CheckpointError(f"weights folder {folder} lacks {', '.join(missing)}: not a MIAR weights folder")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_path} cannot be read as JSON: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: a JSON object expected, found {type(config).__name__}")
    if config.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{config_path}: format {config.get('format')!r}, this code reads {WEIGHTS_FORMAT!r}")
    return config


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
        CheckpointError: Files missing, hash mismatch, unreadable state, or encoder/columns
            unlike the expected ones.
    """
    folder = Path(folder)
    config = read_weights_config(folder)
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
    known = {f.name for f in fields(MiarDims)}
    dims = MiarDims(**{k: v for k, v in config["dims"].items() if k in known})
    if dims.audio_dim != len(expected_audio_columns) or dims.vision_dim != len(expected_vision_columns):
        raise CheckpointError(f"{folder}: dims {dims} do not match the column counts")
    model = Miar(dims)
    try:
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, ValueError) as e:  # RuntimeError: missing/unexpected keys, shape mismatch
        raise CheckpointError(f"{folder / MODEL_FILE} does not fit the network in config.json: {e}") from e
    log.info("MIAR weights %s loaded (modalities %s)", folder.name, ", ".join(config["trained_modalities"]))
    return LoadedMiar(model, config, folder)
