"""What the model eats: per-sample arrays, padded batches, training corpora and their cache.

The model sees named arrays only, never video: ``SampleInput`` holds raw (unnormalised)
per-token features of each modality; ``collate`` pads a list of them into tensors with
masks. Training text comes from MOSI (the benchmark, labels in [-3, 3]) and, as extra
text-only sources, VADER (valence in [-4, 4], scaled by 0.75) and SST-5 (classes 0..4 mapped
to -3, -1.5, 0, 1.5, 3). Encoded token features are cached under ``$MIAR_CACHE`` (default
``~/.cache/miar``), keyed by encoder, text-extractor version and the texts themselves, so
retraining never re-encodes and a changed encoder never reuses stale features.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from extractors.text import TEXT_EXTRACTOR_VERSION, TextEncoder, normalise_text

__all__ = [
    "MODALITIES",
    "SampleInput",
    "Batch",
    "ModalityStats",
    "TextCorpus",
    "collate",
    "default_shared_dir",
    "default_cache_dir",
    "load_mosi",
    "load_vader",
    "load_sst5",
    "encode_corpus",
    "write_atomic_file",
    "save_npz_atomic",
]

log = logging.getLogger(__name__)


def write_atomic_file(path: Path, write: Callable[[str], None]) -> None:
    """Create ``path`` through ``write(temporary_name)`` and rename it into place.

    The final name only ever holds a complete file: caches and resumable extraction
    treat an existing file as finished, and a crash must not leave half of one. The
    temporary name keeps ``path``'s suffix (``np.savez`` would otherwise append one).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are meant to be read by anyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` of ``arrays`` to ``path`` (ending in .npz), atomically."""
    write_atomic_file(path, lambda tmp: np.savez(tmp, **arrays))

#: The three modalities, in the order the model and configs use.
MODALITIES: tuple[str, ...] = ("text", "audio", "vision")

#: VADER's valence scale is [-4, 4]; MOSI's is [-3, 3].
VADER_TO_MOSI = 0.75
#: SST-5 classes (very negative .. very positive) on the MOSI scale.
SST5_TO_MOSI: tuple[float, ...] = (-3.0, -1.5, 0.0, 1.5, 3.0)
VADER_FILES: tuple[str, ...] = (
    "tweets_GroundTruth.txt", "movieReviewSnippets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt",
)


def default_shared_dir() -> Path:
    """The team's data: ``$MIAR_SHARED``, else ``../shared`` beside the checkout."""
    return Path(os.environ.get("MIAR_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def default_cache_dir() -> Path:
    """Feature cache: ``$MIAR_CACHE``, else ``$XDG_CACHE_HOME/miar``, else ``~/.cache/miar``."""
    if os.environ.get("MIAR_CACHE"):
        return Path(os.environ["MIAR_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "miar"


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


@dataclass(frozen=True)
class TextCorpus:
    """Labelled sentences of one source and split, already normalised.

    Attributes:
        name: "mosi", "vader" or "sst5".
        split: "train", "dev" or "test".
        ids: One id per sentence.
        texts: Normalised sentences (``normalise_text``), none empty.
        labels: (N,) float32 sentiment on the MOSI scale [-3, 3].
    """

    name: str
    split: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def _corpus(name: str, split: str, rows: list[tuple[str, str, float]]) -> TextCorpus:
    kept = [(i, normalise_text(t), y) for i, t, y in rows]
    kept = [(i, t, y) for i, t, y in kept if t]
    if len(kept) < len(rows):
        log.info("%s/%s: %d empty sentences dropped after normalisation", name, split, len(rows) - len(kept))
    return TextCorpus(
        name, split, tuple(i for i, _, _ in kept), tuple(t for _, t, _ in kept),
        np.array([y for _, _, y in kept], dtype=np.float32),
    )


def load_mosi(shared: Path | None = None) -> dict[str, TextCorpus]:
    """CMU-MOSI manual transcripts and labels, by standard split ("train", "dev", "test").

    Raises:
        FileNotFoundError: ``data/mosi/label.csv`` is not under ``shared``.
    """
    path = (shared or default_shared_dir()) / "data" / "mosi" / "label.csv"
    splits: dict[str, list[tuple[str, str, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            splits.setdefault(row["mode"], []).append((row["id"], row["text"], float(row["label"])))
    return {split: _corpus("mosi", split, rows) for split, rows in splits.items()}


def load_vader(shared: Path | None = None, dev_fraction: float = 0.1, seed: int = 0) -> dict[str, TextCorpus]:
    """VADER's human-rated sentences (tweets, movie and product reviews) on the MOSI scale.

    A seeded ``dev_fraction`` slice is held out as "dev" (VADER has no official split).
    """
    folder = (shared or default_shared_dir()) / "data" / "vader"
    rows: list[tuple[str, str, float]] = []
    for name in VADER_FILES:
        with open(folder / name, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    rows.append((f"{name.split('_')[0]}/{parts[0]}", "\t".join(parts[2:]),
                                 float(parts[1]) * VADER_TO_MOSI))
    order = np.random.default_rng(seed).permutation(len(rows))
    n_dev = int(round(dev_fraction * len(rows)))
    dev, train = sorted(order[:n_dev].tolist()), sorted(order[n_dev:].tolist())
    return {"train": _corpus("vader", "train", [rows[i] for i in train]),
            "dev": _corpus("vader", "dev", [rows[i] for i in dev])}


# SST is Penn-tokenised ("does n't", "it 's", "-lrb-"); join clitics back so that after
# normalisation it reads like recognised speech ("doesn't", "it's").
_SST_CLITIC = re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b")
_SST_BRACKETS = re.compile(r"-(lrb|rrb|lsb|rsb|lcb|rcb)-")


def _detokenise_sst(sentence: str) -> str:
    return _SST_CLITIC.sub(r"\1", _SST_BRACKETS.sub(" ", sentence)).replace("``", " ").replace("''", " ")


def load_sst5(shared: Path | None = None) -> dict[str, TextCorpus]:
    """SST-5 sentences ("train", "dev"), classes 0..4 mapped to -3, -1.5, 0, 1.5, 3."""
    folder = (shared or default_shared_dir()) / "data" / "sst5"
    out = {}
    for split in ("train", "dev"):
        rows = []
        with open(folder / f"stsa.fine.{split}", encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f):
                label, _, sentence = line.strip().partition(" ")
                if sentence:
                    rows.append((f"{split}/{n}", _detokenise_sst(sentence), SST5_TO_MOSI[int(label)]))
        out[split] = _corpus("sst5", split, rows)
    return out


def _cache_key(corpus: TextCorpus, encoder: TextEncoder, max_tokens: int) -> str:
    digest = hashlib.sha256(f"{encoder.name}\n{TEXT_EXTRACTOR_VERSION}\n{max_tokens}\n".encode())
    for text in corpus.texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def encode_corpus(
    corpus: TextCorpus, encoder: TextEncoder, max_tokens: int, cache_dir: Path | None = None
) -> list[SampleInput]:
    """Text-only ``SampleInput`` per sentence, encoded once and then read from the cache.

    Token features are stored as float16 (halves the cache; MiniLM's hidden values are
    small) under ``cache_dir / "text-features"``; the file name carries a hash of encoder
    name, extractor version, ``max_tokens`` and the texts, so any change re-encodes.

    Args:
        corpus: The sentences.
        encoder: A loaded text encoder (its name is part of the key).
        max_tokens: The encoder's ``TextOptions.max_tokens`` (part of the key).
        cache_dir: Cache root (default ``default_cache_dir()``).
    """
    folder = (cache_dir or default_cache_dir()) / "text-features"
    path = folder / f"{corpus.name}-{corpus.split}-{_cache_key(corpus, encoder, max_tokens)}.npz"
    if path.is_file():
        with np.load(path) as cached:
            values, offsets = cached["values"], cached["offsets"]
        log.info("%s/%s: %d sentences read from cache %s", corpus.name, corpus.split, len(corpus), path)
    else:
        log.info("%s/%s: encoding %d sentences with %s (once; cached in %s)",
                 corpus.name, corpus.split, len(corpus), encoder.name, folder)
        order = np.argsort([len(t) for t in corpus.texts], kind="stable")  # similar lengths pad less
        encoded: list[np.ndarray] = [np.zeros(0)] * len(corpus)
        step = 256
        for start in range(0, len(order), step):
            idx = order[start:start + step]
            for i, feats in zip(idx, encoder.encode_batch([corpus.texts[i].split() for i in idx])):
                encoded[i] = feats.values.astype(np.float16)
            log.info("%s/%s: %d / %d encoded", corpus.name, corpus.split, min(start + step, len(order)), len(order))
        offsets = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
        values = np.concatenate(encoded, axis=0)
        save_npz_atomic(path, {"values": values, "offsets": offsets})
    return [
        SampleInput(text=values[a:b], text_mask=np.ones(b - a, dtype=bool))
        for a, b in zip(offsets[:-1], offsets[1:])
    ]
