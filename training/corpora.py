"""Text corpora for training and evaluation, and their encoded-feature cache.

Training text comes from MOSI (the benchmark, labels in [-3, 3]) and, as extra text-only
sources, VADER (valence in [-4, 4], scaled by 0.75), SST-5 (classes 0..4 mapped to -3,
-1.5, 0, 1.5, 3) and MELD (negative / neutral / positive as classes of an auxiliary head;
no intensity, so no regression target). Every corpus is read from the team's data
(``storage.locations.shared_dir() / "data"`` unless a folder is given).

Encoded token features are cached under ``storage.locations.cache_dir() / "text-features"``,
keyed by encoder, text-extractor version, token limit and the texts themselves, so
retraining never re-encodes and a changed encoder never reuses stale features.
"""

from __future__ import annotations

import csv
import hashlib
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extractors.text import TEXT_EXTRACTOR_VERSION, TextEncoder, normalise_text
from model.batch import SampleInput
from model.feature_store import read_label_rows
from storage.files import write_via_atomic
from storage.locations import cache_dir, shared_dir

__all__ = [
    "TextCorpus",
    "VADER_TO_MOSI",
    "SST5_TO_MOSI",
    "VADER_FILES",
    "MELD_CLASSES",
    "make_corpus",
    "load_mosi",
    "load_mosei",
    "load_vader",
    "load_sst5",
    "load_sst5_phrases",
    "parse_sst_tree",
    "load_meld",
    "encode_corpus",
]

log = logging.getLogger(__name__)

#: VADER's valence scale is [-4, 4]; MOSI's is [-3, 3].
VADER_TO_MOSI = 0.75
#: SST-5 classes (very negative .. very positive) on the MOSI scale.
SST5_TO_MOSI: tuple[float, ...] = (-3.0, -1.5, 0.0, 1.5, 3.0)
VADER_FILES: tuple[str, ...] = (
    "tweets_GroundTruth.txt", "movieReviewSnippets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt",
)
#: MELD sentiment -> class index of the auxiliary head (the order of ``model.schema.POLARITIES``).
MELD_CLASSES: dict[str, int] = {"negative": 0, "neutral": 1, "positive": 2}


@dataclass(frozen=True)
class TextCorpus:
    """Labelled sentences of one source and split, already normalised.

    Attributes:
        name: "mosi", "mosei", "vader", "sst5" or "meld".
        split: "train", "dev" or "test".
        ids: One id per sentence.
        texts: Normalised sentences (``normalise_text``), none empty.
        labels: (N,) float32 sentiment on the MOSI scale [-3, 3] (0.0 for MELD, which has none).
    """

    name: str
    split: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def _data(shared: Path | None, name: str) -> Path:
    return (shared or shared_dir()) / "data" / name


def make_corpus(name: str, split: str, rows: list[tuple[str, str, float]]) -> TextCorpus:
    """A corpus of ``(id, raw text, label)`` rows; sentences empty after normalisation are dropped."""
    kept = [(i, normalise_text(t), y) for i, t, y in rows]
    kept = [(i, t, y) for i, t, y in kept if t]
    if len(kept) < len(rows):
        log.info("%s/%s: %d empty sentences dropped after normalisation", name, split, len(rows) - len(kept))
    return TextCorpus(
        name, split, tuple(i for i, _, _ in kept), tuple(t for _, t, _ in kept),
        np.array([y for _, _, y in kept], dtype=np.float32),
    )


def _label_csv_corpora(
    name: str, path: Path, row_id: Callable[[dict[str, str]], str], text: Callable[[str], str] = str,
) -> dict[str, TextCorpus]:
    """Corpora by split of an MMSA-style ``label.csv`` (``text``, ``label``, ``mode`` columns)."""
    splits: dict[str, list[tuple[str, str, float]]] = {}
    for _, row in read_label_rows(path, ("text", "label", "mode")):
        splits.setdefault(row["mode"], []).append((row_id(row), text(row["text"]), float(row["label"])))
    return {split: make_corpus(name, split, rows) for split, rows in splits.items()}


def load_mosi(shared: Path | None = None) -> dict[str, TextCorpus]:
    """CMU-MOSI manual transcripts and labels, by standard split ("train", "dev", "test").

    Args:
        shared: The team's data folder (default ``storage.locations.shared_dir()``).

    Raises:
        FileNotFoundError: ``data/mosi/label.csv`` is not under ``shared``.
    """
    return _label_csv_corpora("mosi", _data(shared, "mosi") / "label.csv", lambda row: row["id"])


def load_mosei(shared: Path | None = None) -> dict[str, TextCorpus]:
    """CMU-MOSEI punctuated transcripts and labels, by split ("train", "valid").

    The team's copy has no test split (it is kept aside and measured on what lands), so
    "valid" is what selection and reports use. HTML entities left in a few transcripts
    (``&amp;``) are unescaped; ids are ``video_id/clip_id``.

    Raises:
        FileNotFoundError: ``data/mosei/label.csv`` is not under ``shared``.
    """
    return _label_csv_corpora("mosei", _data(shared, "mosei") / "label.csv",
                              lambda row: f"{row['video_id']}/{row['clip_id']}", html.unescape)


def load_vader(shared: Path | None = None, dev_fraction: float = 0.1, seed: int = 0) -> dict[str, TextCorpus]:
    """VADER's human-rated sentences (tweets, movie and product reviews) on the MOSI scale.

    A seeded ``dev_fraction`` slice is held out as "dev" (VADER has no official split).
    """
    folder = _data(shared, "vader")
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
    return {"train": make_corpus("vader", "train", [rows[i] for i in train]),
            "dev": make_corpus("vader", "dev", [rows[i] for i in dev])}


# SST is Penn-tokenised ("does n't", "it 's", "-lrb-"); join clitics back so that after
# normalisation it reads like recognised speech ("doesn't", "it's").
_SST_CLITIC = re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b")
_SST_BRACKETS = re.compile(r"-(lrb|rrb|lsb|rsb|lcb|rcb)-", re.IGNORECASE)


def _detokenise_sst(sentence: str) -> str:
    return _SST_CLITIC.sub(r"\1", _SST_BRACKETS.sub(" ", sentence)).replace("``", " ").replace("''", " ")


def load_sst5(shared: Path | None = None) -> dict[str, TextCorpus]:
    """SST-5 sentences ("train", "dev"), classes 0..4 mapped to -3, -1.5, 0, 1.5, 3."""
    folder = _data(shared, "sst5")
    out = {}
    for split in ("train", "dev"):
        rows = []
        with open(folder / f"stsa.fine.{split}", encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f):
                label, _, sentence = line.strip().partition(" ")
                if sentence:
                    rows.append((f"{split}/{n}", _detokenise_sst(sentence), SST5_TO_MOSI[int(label)]))
        out[split] = make_corpus("sst5", split, rows)
    return out


#: SST phrases kept per length band (words): (lowest, highest, at most). Short phrases are
#: most of the treebank's 159k distinct phrases; capping each band keeps them from swamping
#: the longer, compositional ones (negation scopes, contrasts) the phrase labels are for.
SST_PHRASE_BANDS: tuple[tuple[int, int, int], ...] = ((1, 1, 3000), (2, 2, 5000), (3, 5, 12000), (6, 10, 12000),
                                                      (11, 10_000, 12000))


def parse_sst_tree(line: str) -> list[tuple[int, list[str]]]:
    """Every node of one PTB-form treebank line as (label 0..4, its tokens), root first.

    ``(3 (2 does) (3 (2 n't) (3 disappoint)))`` gives (3, [does, n't, disappoint]),
    (2, [does]), (3, [n't, disappoint]), ...
    """
    tokens = line.replace("(", " ( ").replace(")", " ) ").split()
    nodes: list[tuple[int, list[str]]] = []

    def node(i: int) -> tuple[list[str], int]:
        # tokens[i] == "(", tokens[i + 1] is the label; returns (words, index after the closing ")")
        label, i = int(tokens[i + 1]), i + 2
        slot = len(nodes)
        nodes.append((label, []))
        words: list[str] = []
        while tokens[i] != ")":
            if tokens[i] == "(":
                child, i = node(i)
                words.extend(child)
            else:
                words.append(tokens[i])
                i += 1
        nodes[slot] = (label, words)
        return words, i + 1

    if tokens:
        node(0)
    return nodes


def load_sst5_phrases(shared: Path | None = None, seed: int = 0) -> TextCorpus:
    """Labelled phrases of the SST training trees (``trees/train.txt``) on the MOSI scale.

    Whole sentences are left out (they are the "sst5" source); each distinct phrase (after
    detokenising to the text the pipeline sees) is kept once with the label of its first
    occurrence, then at most ``SST_PHRASE_BANDS`` phrases per length band are drawn (seeded).
    Only the training trees are read: the dev trees are the SST dev split that is reported.
    """
    path = _data(shared, "sst5") / "trees" / "train.txt"
    seen: dict[str, float] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            for label, words in parse_sst_tree(line.strip())[1:]:
                text = normalise_text(_detokenise_sst(" ".join(words)))
                if text and text not in seen:
                    seen[text] = SST5_TO_MOSI[label]
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, float]] = []
    texts = sorted(seen)
    lengths = np.array([len(t.split()) for t in texts])
    for low, high, most in SST_PHRASE_BANDS:
        band = np.flatnonzero((lengths >= low) & (lengths <= high))
        chosen = np.sort(rng.choice(band, size=min(most, len(band)), replace=False)) if len(band) else band
        rows.extend((f"phrase/{i}", texts[i], seen[texts[i]]) for i in chosen)
    log.info("sst5 phrases: %d distinct in the training trees, %d kept", len(seen), len(rows))
    return make_corpus("sst5_phrases", "train", rows)


def load_meld(shared: Path | None = None) -> dict[str, tuple[TextCorpus, np.ndarray]]:
    """MELD utterances by split ("train", "dev", "test") with their 3-class sentiment index.

    Returns:
        Per split, the corpus (labels 0.0; MELD has no intensity) and (N,) int64 class ids
        (``MELD_CLASSES``), aligned with the corpus after empty utterances are dropped.
    """
    folder = _data(shared, "meld")
    out = {}
    for split in ("train", "dev", "test"):
        rows, classes = [], {}
        with open(folder / f"{split}_sent_emo.csv", newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                key = f"{split}/{row['Dialogue_ID']}_{row['Utterance_ID']}"
                rows.append((key, row["Utterance"], 0.0))
                classes[key] = MELD_CLASSES[row["Sentiment"].strip().lower()]
        corpus = make_corpus("meld", split, rows)
        out[split] = (corpus, np.array([classes[i] for i in corpus.ids], dtype=np.int64))
    return out


def _cache_key(corpus: TextCorpus, encoder: TextEncoder, max_tokens: int) -> str:
    digest = hashlib.sha256(f"{encoder.name}\n{TEXT_EXTRACTOR_VERSION}\n{max_tokens}\n".encode())
    if encoder.recorded_layers is not None:  # features of the frozen lower layers only
        digest.update(f"layers {encoder.recorded_layers}\n".encode())
    for text in corpus.texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def encode_corpus(
    corpus: TextCorpus, encoder: TextEncoder, max_tokens: int, cache: Path | None = None
) -> list[SampleInput]:
    """Text-only ``SampleInput`` per sentence, encoded once and then read from the cache.

    Token features are stored as float16 (halves the cache; MiniLM's hidden values are
    small) under ``cache / "text-features"``; the file name carries a hash of encoder
    name, extractor version, ``max_tokens``, the layers run (when not all) and the texts, so any change re-encodes. The
    file is written atomically, so one that exists is complete.

    Args:
        corpus: The sentences.
        encoder: A loaded text encoder (its name is part of the key).
        max_tokens: The encoder's ``TextOptions.max_tokens`` (part of the key).
        cache: Cache root (default ``storage.locations.cache_dir()``).
    """
    folder = (cache or cache_dir()) / "text-features"
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
        write_via_atomic(path, lambda tmp: np.savez(tmp, values=values, offsets=offsets))
    return [
        SampleInput(text=values[a:b], text_mask=np.ones(b - a, dtype=bool))
        for a, b in zip(offsets[:-1], offsets[1:])
    ]
