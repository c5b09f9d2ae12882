"""What the model eats: per-sample arrays and padded batches (arrays in, no media).

``SampleInput`` holds raw (unnormalised) per-token features of each modality;
``ModalityStats`` standardises them with training statistics; ``collate`` pads a list of
samples into tensors with masks. Nothing here knows where the features came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.schema import MODALITIES

__all__ = ["MODALITIES", "SampleInput", "Batch", "ModalityStats", "collate"]


@dataclass(frozen=True)
class SampleInput:
    """One utterance as the model sees it: raw per-token features of each modality.

    Audio and vision are per-token too (the pipeline spreads per-word voice and face
    descriptors onto the word's sub-word tokens), but the model does not rely on that:
    each modality is its own sequence with its own mask.

    Attributes:
        text: (Lt, Dt) float text-encoder token embeddings (special tokens included).
        text_mask: (Lt,) bool, True where a token is real.
        audio: (La, 34) raw voice descriptors (``extractors.voice.COLUMNS``), or None when missing.
        audio_mask: (La,) bool, True where voice was measured; None means all rows valid.
        vision: (Lv, 56) raw face descriptors (``extractors.face.COLUMNS``), or None when missing.
        vision_mask: (Lv,) bool, True where a face was seen; None means all rows valid.
    """

    text: np.ndarray
    text_mask: np.ndarray
    audio: np.ndarray | None = None
    audio_mask: np.ndarray | None = None
    vision: np.ndarray | None = None
    vision_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in MODALITIES:
            values, mask = getattr(self, name), getattr(self, f"{name}_mask")
            if values is None:
                continue
            if values.ndim != 2:
                raise ValueError(f"SampleInput.{name}: expected (L, D), got {values.shape}")
            if mask is not None and mask.shape != (len(values),):
                raise ValueError(f"SampleInput.{name}_mask: shape {mask.shape}, {name} has {len(values)} rows")

    def modality(self, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(values, mask)`` of one modality; mask is None-free when values are given."""
        values, mask = getattr(self, name), getattr(self, f"{name}_mask")
        if values is not None and mask is None:
            mask = np.ones(len(values), dtype=bool)
        return values, mask


@dataclass(frozen=True)
class ModalityStats:
    """Per-column normalisation of one modality, computed on training data.

    Attributes:
        mean: (D,) float32 column means over valid rows.
        std: (D,) float32 column standard deviations (floored so constant columns do not blow up).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, arrays: Sequence[np.ndarray], masks: Sequence[np.ndarray], min_std: float = 1e-3) -> ModalityStats:
        """Mean and std of the valid rows of many (L, D) arrays."""
        # Streamed sums: the text corpora hold ~10^6 tokens, too many to stack in float64.
        count, total, squares = 0, 0.0, 0.0
        for a, m in zip(arrays, masks):
            rows = np.asarray(a, np.float64)[m]
            count, total, squares = count + len(rows), total + rows.sum(axis=0), squares + (rows**2).sum(axis=0)
        if count == 0:
            raise ValueError("ModalityStats.fit: no valid rows")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        return cls(mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / std`` as float32; non-finite inputs become 0 (the mean)."""
        out = (np.asarray(values, np.float32) - self.mean) / self.std
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class Batch:
    """Padded tensors of a list of samples; a modality absent from the whole batch is one masked row.

    Attributes:
        text, audio, vision: (B, L, D) float32, zeros where padded or missing.
        text_mask, audio_mask, vision_mask: (B, L) bool, True where valid.
    """

    text: torch.Tensor
    text_mask: torch.Tensor
    audio: torch.Tensor
    audio_mask: torch.Tensor
    vision: torch.Tensor
    vision_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.text.shape[0])


def collate(
    samples: Sequence[SampleInput],
    dims: dict[str, int],
    stats: dict[str, ModalityStats | None] | None = None,
    use: Sequence[str] = MODALITIES,
) -> Batch:
    """Pad samples into a ``Batch``, normalising each modality and masking unused ones.

    Args:
        samples: The samples.
        dims: Feature width per modality ({"text": 384, "audio": 34, "vision": 56}).
        stats: Per-modality normalisation; None (or a None entry) leaves values as they are.
        use: Modalities to feed; the others are masked out in every sample (a model that
            never saw audio must not be fed audio).

    Raises:
        ValueError: A sample's feature width differs from ``dims``.
    """
    stats = stats or {}
    tensors: dict[str, torch.Tensor] = {}
    for name in MODALITIES:
        pairs = [s.modality(name) if name in use else (None, None) for s in samples]
        length = max([len(v) for v, _ in pairs if v is not None] + [1])
        values = np.zeros((len(samples), length, dims[name]), dtype=np.float32)
        mask = np.zeros((len(samples), length), dtype=bool)
        for i, (v, m) in enumerate(pairs):
            if v is None or len(v) == 0:
                continue
            if v.shape[1] != dims[name]:
                raise ValueError(f"collate: {name} has {v.shape[1]} columns, the model expects {dims[name]}")
            norm = stats.get(name)
            values[i, : len(v)] = norm.apply(v) if norm is not None else np.nan_to_num(np.asarray(v, np.float32))
            mask[i, : len(v)] = m
        values[~mask] = 0.0
        tensors[name], tensors[f"{name}_mask"] = torch.from_numpy(values), torch.from_numpy(mask)
    return Batch(**tensors)
