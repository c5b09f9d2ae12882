"""The features folder: model inputs of a labelled dataset stored on disk, defined once.

``python -m pipeline extract`` writes it (features made by the same stage sequence that
scores videos); training reads it with NumPy only. Layout::

    FEATURES_DIR/manifest.json                          what made the features (see write_manifest)
    FEATURES_DIR/<split>/<video_id>/<clip_id>.npz       one clip

Each ``.npz`` holds ``text`` (Lt, Dt) float32 and ``text_mask`` (Lt,) bool, ``audio`` /
``vision`` (L, D) float32 with their masks (0 rows when the modality is missing in the
clip), ``label`` float32 scalar, and strings ``video_id``, ``clip_id``, ``asr_text``,
``label_text``. Files are written atomically, so one that exists is complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from model.batch import SampleInput
from model.schema import MODALITIES
from storage.files import write_text_atomic, write_via_atomic

__all__ = ["FEATURES_FORMAT", "MANIFEST_FILE", "SPLITS", "sample_arrays", "sample_from_arrays", "save_clip",
           "write_manifest", "read_manifest", "load_split"]

#: Version of the layout; readers refuse any other.
FEATURES_FORMAT = "miar-features-v1"
MANIFEST_FILE = "manifest.json"
#: MMSA's split names, in the order they are listed.
SPLITS: tuple[str, ...] = ("train", "valid", "test")


def sample_arrays(sample: SampleInput, widths: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The arrays of one sample as stored: every modality present, missing ones as 0 rows.

    Args:
        sample: The model input.
        widths: Feature width per modality ({"text": 384, "audio": 34, "vision": 56}).
    """
    arrays: dict[str, np.ndarray] = {}
    for name in MODALITIES:
        values, mask = sample.modality(name)
        if values is None:
            arrays[name] = np.zeros((0, widths[name]), np.float32)
            arrays[f"{name}_mask"] = np.zeros(0, bool)
        else:
            arrays[name] = np.asarray(values, np.float32)
            arrays[f"{name}_mask"] = np.asarray(mask, bool)
    return arrays


def sample_from_arrays(arrays: Mapping[str, np.ndarray]) -> SampleInput:
    """The ``SampleInput`` of stored arrays (a modality with 0 rows is missing)."""
    parts: dict[str, Any] = {}
    for name in MODALITIES:
        values = arrays[name]
        if name == "text" or len(values):
            parts[name], parts[f"{name}_mask"] = values, np.asarray(arrays[f"{name}_mask"], bool)
    return SampleInput(**parts)


def save_clip(path: Path, sample: SampleInput, widths: Mapping[str, int], *, label: float,
              strings: Mapping[str, str]) -> None:
    """Write one clip's ``.npz`` atomically (an existing file is therefore complete).

    Args:
        path: ``<split>/<video_id>/<clip_id>.npz`` under the features folder.
        sample: The model input.
        widths: Feature width per modality.
        label: Sentiment in [-3, 3].
        strings: ``video_id``, ``clip_id``, ``asr_text``, ``label_text``.
    """
    arrays = sample_arrays(sample, widths)
    arrays["label"] = np.float32(label)
    for key, value in strings.items():
        arrays[key] = np.array(value)
    write_via_atomic(path, lambda tmp: np.savez(tmp, **arrays))


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` (``format`` is set here) atomically; returns its path.

    The manifest records what made the features: ``dataset``, ``text_encoder``,
    ``text_extractor_version``, ``max_tokens``, ``asr_model``, ``frame_fps``,
    ``audio_columns``, ``vision_columns``, ``counts`` and ``samples`` per split (each sample
    ``{"video_id", "clip_id", "label", "file"}`` with ``file`` relative to the folder), and
    ``failures``.
    """
    path = folder / MANIFEST_FILE
    write_text_atomic(path, json.dumps({"format": FEATURES_FORMAT, **manifest}, indent=1) + "\n")
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a features folder.

    Raises:
        ValueError: Missing, unreadable, or not of ``FEATURES_FORMAT``.
    """
    path = folder / MANIFEST_FILE
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a features manifest ({e}); run 'python -m pipeline extract' first") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FEATURES_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path}: format {found!r}, expected {FEATURES_FORMAT!r}")
    return manifest


def load_split(folder: Path, split: str) -> tuple[list[SampleInput], np.ndarray, list[str]]:
    """Samples, labels and ``video_id/clip_id`` keys of one split, in manifest order.

    Raises:
        ValueError: Not a features folder of this format.
    """
    manifest = read_manifest(folder)
    samples, labels, keys = [], [], []
    for entry in manifest["samples"].get(split, []):
        with np.load(folder / entry["file"]) as z:
            samples.append(sample_from_arrays(z))
            labels.append(float(z["label"]))
        keys.append(f"{entry['video_id']}/{entry['clip_id']}")
    return samples, np.asarray(labels, np.float32), keys
