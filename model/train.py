"""Train MIAR from a config file: ``python -m model.train --config model/configs/miar-v1.json --out weights/miar-v1``.

Sources (``TrainOptions.sources``), each turned into samples by ``model.data`` (text) or
``model.sources`` (audio, vision, MELD):

- text: "mosi" (train), "vader" (train; a fixed 10% slice is held out), "sst5" (train),
  "meld" (train; 3-class auxiliary head only);
- audio: "emodb" (speakers 03 and 08 held out), "speech_valence" (every 5th file held out);
- vision: "taiwan" (performers whose id is a multiple of 5 held out), "muxspace" (~20% of people held out).

Each step draws a batch by source-balanced sampling (``source_weights``), so the 1,281
MOSI segments are not drowned by 16,000 VADER sentences nor the 300 EmoDB files by
either. A share of text draws (``mix_rate``) gets a random audio and vision sample
attached, with modality dropout, so the fusion head also sees co-present modalities;
their label stays the text's (the attachments are unrelated, which teaches the head that
a voice or face of another clip does not overturn the words).

Loss: L1 on the fused score + ``modality_head_weight`` x L1 of each present modality's own
head + ``align_weight`` x cross-modal sentiment-bin contrastive alignment
(``model.miar.sentiment_alignment_loss``) + ``class_weight`` x cross-entropy of MELD's
3 classes. The checkpoint is chosen on MOSI dev (lowest MAE); MOSI test is never read here.
Features come from on-disk caches, so only the first run extracts. Seeds are fixed (Python,
NumPy, torch) and torch uses ``threads`` CPU threads, so a run on one machine repeats.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.text import TEXT_EXTRACTOR_VERSION, TextEncoder, TextOptions
from model import sources as src
from model.checkpoint import save_checkpoint
from model.data import (
    MODALITIES,
    ModalityStats,
    SampleInput,
    collate,
    default_shared_dir,
    encode_corpus,
    load_mosi,
    load_sst5,
    load_vader,
)
from model.metrics import MosiMetrics, mosi_metrics
from model.miar import Miar, MiarDims, sentiment_alignment_loss

__all__ = ["TrainOptions", "TrainingData", "load_training_data", "train", "predict", "main", "SOURCE_MODALITY",
           "train_on_features", "load_feature_split"]

log = logging.getLogger(__name__)

#: Every source a config may name, with the modality it brings.
SOURCE_MODALITY: dict[str, str] = {
    "mosi": "text", "vader": "text", "sst5": "text", "meld": "text",
    "emodb": "audio", "speech_valence": "audio", "taiwan": "vision", "muxspace": "vision",
}
#: The VADER held-out slice is fixed (seed 0) whatever the training seed, so every run is scored on one slice.
VADER_SPLIT_SEED = 0
#: No class target (every source but MELD).
NO_CLASS = -1


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run depends on (read from the JSON config).

    Attributes:
        seed: Seed of Python, NumPy and torch.
        sources: Source names (keys of ``SOURCE_MODALITY``); "mosi" is required.
        source_weights: Sampling weight per source (missing ones weigh 1); a batch draws each
            sample's source with these probabilities, then a sample of it uniformly.
        epoch_size: Samples drawn per epoch (an epoch ends with a MOSI dev evaluation).
        epochs: Number of epochs.
        batch_size: Samples per step.
        lr: Peak AdamW learning rate (linear warm-up over the first epoch, cosine decay).
        weight_decay: AdamW weight decay.
        align_weight: Weight of the cross-modal sentiment-bin contrastive loss.
        modality_head_weight: Weight of the per-modality heads' L1 loss.
        class_weight: Weight of MELD's 3-class cross-entropy (needs ``dims.n_classes`` 3).
        mix_rate: Share of text samples that get a random audio and vision sample attached.
        modality_dropout: Chance to drop each attached modality of a mixed sample.
        token_dropout: Share of text tokens masked at random per training sample (regulariser).
        threads: torch CPU threads.
        dims: Network shape.
        text: Text encoder options (name and token limit are recorded in the weights).
    """

    seed: int = 0
    sources: tuple[str, ...] = ("mosi",)
    source_weights: dict[str, float] = field(default_factory=dict)
    epoch_size: int = 8000
    epochs: int = 8
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    align_weight: float = 0.1
    modality_head_weight: float = 0.3
    class_weight: float = 0.3
    mix_rate: float = 0.2
    modality_dropout: float = 0.3
    token_dropout: float = 0.1
    threads: int = 1
    dims: MiarDims = field(default_factory=MiarDims)
    text: TextOptions = field(default_factory=TextOptions)

    @classmethod
    def from_json(cls, path: Path) -> TrainOptions:
        """Options from a JSON file; unknown keys are an error (typos must not pass silently)."""
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}")
        raw["dims"] = MiarDims(**raw.get("dims", {}))
        raw["text"] = TextOptions(**raw.get("text", {}))
        raw["sources"] = tuple(raw.get("sources", ("mosi",)))
        return cls(**raw)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities the sources bring, in model order."""
        return tuple(m for m in MODALITIES if any(SOURCE_MODALITY[s] == m for s in self.sources))


@dataclass(frozen=True)
class TrainingData:
    """Training samples by source plus the MOSI dev set used for selection.

    Attributes:
        samples: Per source, its training samples.
        labels: Per source, (N,) float32 regression targets on the MOSI scale.
        classes: Per source, (N,) int64 class targets (``NO_CLASS`` where none).
        dev_samples: MOSI dev (text only).
        dev_labels: MOSI dev labels.
    """

    samples: dict[str, list[SampleInput]]
    labels: dict[str, np.ndarray]
    classes: dict[str, np.ndarray]
    dev_samples: list[SampleInput]
    dev_labels: np.ndarray


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_training_data(options: TrainOptions, shared: Path | None = None, cache: Path | None = None) -> TrainingData:
    """Build (or read from the caches) every source's training samples.

    Raises:
        ValueError: Unknown source, or "mosi" missing.
    """
    unknown = sorted(set(options.sources) - set(SOURCE_MODALITY))
    if "mosi" not in options.sources or unknown:
        raise ValueError(f"sources must include 'mosi' and only {sorted(SOURCE_MODALITY)}; unknown {unknown}")
    shared = shared or default_shared_dir()
    samples: dict[str, list[SampleInput]] = {}
    labels: dict[str, np.ndarray] = {}
    classes: dict[str, np.ndarray] = {}
    encoder = TextEncoder(options.text)
    if encoder.dim != options.dims.text_dim:
        raise ValueError(f"text encoder {encoder.name} gives {encoder.dim}-d tokens, dims.text_dim is "
                         f"{options.dims.text_dim}")
    mosi = load_mosi(shared)
    text_corpora = {"mosi": mosi["train"]}
    if "vader" in options.sources:
        text_corpora["vader"] = load_vader(shared, seed=VADER_SPLIT_SEED)["train"]
    if "sst5" in options.sources:
        text_corpora["sst5"] = load_sst5(shared)["train"]
    for name, corpus in text_corpora.items():
        samples[name] = encode_corpus(corpus, encoder, options.text.max_tokens, cache)
        labels[name] = corpus.labels.astype(np.float32)
        classes[name] = np.full(len(corpus), NO_CLASS, np.int64)
    if "meld" in options.sources:
        corpus, meld_classes = src.load_meld(shared)["train"]
        samples["meld"] = encode_corpus(corpus, encoder, options.text.max_tokens, cache)
        labels["meld"] = np.full(len(corpus), np.nan, np.float32)  # no regression target
        classes["meld"] = meld_classes
    dev_samples = encode_corpus(mosi["dev"], encoder, options.text.max_tokens, cache)
    del encoder
    loaders = {"emodb": src.load_emodb, "speech_valence": src.load_speech_valence,
               "taiwan": src.load_taiwan, "muxspace": src.load_muxspace}
    for name, load in loaders.items():
        if name in options.sources:
            part = load(shared, cache)["train"]
            samples[name], labels[name] = list(part.samples), part.labels
            classes[name] = np.full(len(part), NO_CLASS, np.int64)
    return TrainingData(samples, labels, classes, dev_samples, mosi["dev"].labels)


def _dims_by_modality(dims: MiarDims) -> dict[str, int]:
    return {m: dims.input_dim(m) for m in MODALITIES}


def fit_stats(data: TrainingData) -> dict[str, ModalityStats | None]:
    """Per-modality normalisation from the training samples (None for a modality no source brings)."""
    stats: dict[str, ModalityStats | None] = {}
    for m in MODALITIES:
        arrays, masks = [], []
        for name, samples in data.samples.items():
            if SOURCE_MODALITY[name] != m:
                continue
            for s in samples:
                values, mask = s.modality(m)
                if values is not None and len(values):
                    arrays.append(values)
                    masks.append(mask)
        stats[m] = ModalityStats.fit(arrays, masks) if arrays else None
    return stats


def predict(
    model: Miar, samples: Sequence[SampleInput], stats: dict[str, ModalityStats | None], use: Sequence[str],
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores (N,) and class logits (N, n_classes) of ``model`` in eval mode."""
    model.eval()
    scores, logits = [], []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            b = collate(samples[start:start + batch_size], _dims_by_modality(model.dims), stats, use=use)
            out = model(b.text, b.text_mask, b.audio, b.audio_mask, b.vision, b.vision_mask)
            scores.append(out.score.numpy())
            logits.append(out.class_logits.numpy())
    return np.concatenate(scores), np.concatenate(logits)


def _drop_tokens(sample: SampleInput, rate: float, rng: np.random.Generator) -> SampleInput:
    if rate <= 0 or sample.text is None or len(sample.text_mask) == 0:
        return sample
    keep = sample.text_mask & (rng.random(len(sample.text_mask)) >= rate)
    if not keep.any():
        keep = sample.text_mask
    return replace(sample, text_mask=keep)


def _bins(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Sentiment bin per sample: 0 negative (< -0.5), 1 neutral, 2 positive (> 0.5); MELD uses its class."""
    bins = np.where(labels < -0.5, 0, np.where(labels > 0.5, 2, 1))
    bins = np.where(np.isnan(labels), NO_CLASS, bins)
    return np.where(classes >= 0, classes, bins).astype(np.int64)


def _draw_batch(
    options: TrainOptions, data: TrainingData, names: list[str], probs: np.ndarray, rng: np.random.Generator,
) -> tuple[list[SampleInput], np.ndarray, np.ndarray]:
    """One source-balanced batch with token dropout and mixed (co-present) text samples."""
    audio_pool = [n for n in names if SOURCE_MODALITY[n] == "audio"]
    vision_pool = [n for n in names if SOURCE_MODALITY[n] == "vision"]
    batch, labels, classes = [], [], []
    for name in rng.choice(names, size=options.batch_size, p=probs):
        i = int(rng.integers(len(data.samples[name])))
        sample = data.samples[name][i]
        if SOURCE_MODALITY[name] == "text":
            sample = _drop_tokens(sample, options.token_dropout, rng)
            if rng.random() < options.mix_rate and (audio_pool or vision_pool):
                extra: dict[str, Any] = {}
                for modality, pool in (("audio", audio_pool), ("vision", vision_pool)):
                    if pool and rng.random() >= options.modality_dropout:
                        other_name = pool[int(rng.integers(len(pool)))]
                        other = data.samples[other_name][int(rng.integers(len(data.samples[other_name])))]
                        values, mask = other.modality(modality)
                        extra[modality], extra[f"{modality}_mask"] = values, mask
                sample = replace(sample, **extra)
        batch.append(sample)
        labels.append(data.labels[name][i])
        classes.append(data.classes[name][i])
    return batch, np.asarray(labels, np.float32), np.asarray(classes, np.int64)


def train_model(
    options: TrainOptions, data: TrainingData, log_every_epoch: bool = True,
) -> tuple[Miar, dict[str, ModalityStats | None], dict[str, Any]]:
    """Train one network on prepared data; returns it (best MOSI dev epoch), its stats and a summary."""
    start_time = time.perf_counter()
    torch.set_num_threads(options.threads)
    _seed_everything(options.seed)
    stats = fit_stats(data)
    names = [n for n in options.sources if n in data.samples and len(data.samples[n])]
    weights = np.array([options.source_weights.get(n, 1.0) for n in names], np.float64)
    probs = weights / weights.sum()
    model = Miar(options.dims)
    optimiser = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = max(1, options.epoch_size // options.batch_size)
    total_steps = steps_per_epoch * options.epochs

    def lr_at(step: int) -> float:
        if step < steps_per_epoch:
            return (step + 1) / steps_per_epoch
        progress = (step - steps_per_epoch) / max(1, total_steps - steps_per_epoch)
        return 0.5 * (1.0 + np.cos(np.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    rng = np.random.default_rng(options.seed)
    dims = _dims_by_modality(options.dims)
    use = options.modalities
    best: tuple[float, int, dict[str, torch.Tensor], MosiMetrics] | None = None
    history = []
    for epoch in range(1, options.epochs + 1):
        model.train()
        sums = {"reg": 0.0, "mod": 0.0, "align": 0.0, "cls": 0.0}
        for _ in range(steps_per_epoch):
            samples, labels, classes = _draw_batch(options, data, names, probs, rng)
            batch = collate(samples, dims, stats, use=use)
            out = model(batch.text, batch.text_mask, batch.audio, batch.audio_mask, batch.vision, batch.vision_mask)
            target = torch.from_numpy(np.nan_to_num(labels))
            has_target = torch.from_numpy(~np.isnan(labels))
            zero = out.score.new_zeros(())
            regression = F.l1_loss(out.score[has_target], target[has_target]) if has_target.any() else zero
            per_modality = out.present & has_target[:, None]
            modality = ((out.modality_scores - target[:, None]).abs()[per_modality].mean()
                        if per_modality.any() else zero)
            cls_target = torch.from_numpy(classes)
            with_class = cls_target >= 0
            classification = (F.cross_entropy(out.class_logits[with_class], cls_target[with_class])
                              if options.dims.n_classes and with_class.any() else zero)
            alignment = (sentiment_alignment_loss(out, torch.from_numpy(_bins(labels, classes)), model.temperature)
                         if options.align_weight > 0 else zero)
            loss = (regression + options.modality_head_weight * modality + options.align_weight * alignment
                    + options.class_weight * classification)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            for key, value in (("reg", regression), ("mod", modality), ("align", alignment), ("cls", classification)):
                sums[key] += float(value.detach()) / steps_per_epoch
        dev = mosi_metrics(predict(model, data.dev_samples, stats, use)[0], data.dev_labels)
        history.append({"epoch": epoch, "train": {k: round(v, 4) for k, v in sums.items()}, "dev": dev.as_dict()})
        if log_every_epoch:
            log.info("seed %d epoch %d/%d  L1 %.3f  modality %.3f  align %.3f  cls %.3f  dev MAE %.3f corr %.3f "
                     "acc2(non0) %.3f  (%.0f s)", options.seed, epoch, options.epochs, sums["reg"], sums["mod"],
                     sums["align"], sums["cls"], dev.mae, dev.corr, dev.acc2_non0, time.perf_counter() - start_time)
        if best is None or dev.mae < best[0]:
            best = (dev.mae, epoch, copy.deepcopy(model.state_dict()), dev)
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    summary = {
        "sources": list(options.sources),
        "sizes": {n: len(data.samples[n]) for n in names},
        "sampling_probabilities": {n: round(float(p), 4) for n, p in zip(names, probs)},
        "label_mappings": {
            "mosi": "label as is", "vader": "valence x 0.75 ([-4,4] -> [-3,3])",
            "sst5": "classes 0..4 -> -3, -1.5, 0, 1.5, 3",
            "meld": "negative/neutral/positive -> class 0/1/2 (aux head)",
            "emodb": src.EMODB_VALENCE, "speech_valence": "valence x 3", "taiwan": "rater-weighted " +
            json.dumps(src.TAIWAN_VALENCE), "muxspace": src.FACE_VALENCE,
        },
        "seed": options.seed,
        "epochs": options.epochs,
        "selected_epoch": best[1],
        "selection": "lowest MAE on MOSI dev (manual transcripts)",
        "dev_metrics": best[3].as_dict(),
        "history": history,
        "train_seconds": round(time.perf_counter() - start_time, 1),
        "options": json.loads(json.dumps(options, default=_jsonable)),
    }
    log.info("seed %d: best epoch %d, dev MAE %.3f corr %.3f (%.0f s)", options.seed, best[1], best[3].mae,
             best[3].corr, summary["train_seconds"])
    return model, stats, summary


def train(options: TrainOptions, out: Path, shared: Path | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Train, select on MOSI dev, write the weights folder.

    Returns:
        The training summary written into config.json.
    """
    data = load_training_data(options, shared, cache)
    model, stats, summary = train_model(options, data)
    save_checkpoint(
        out, model, text_encoder=options.text.encoder, text_extractor_version=TEXT_EXTRACTOR_VERSION,
        max_tokens=options.text.max_tokens, audio_columns=voice_mod.COLUMNS, vision_columns=face_mod.COLUMNS,
        stats=stats, trained_modalities=options.modalities, training=summary,
    )
    return summary


#: The features folder layout ``python -m pipeline extract`` writes (see pipeline/extract.py).
FEATURES_FORMAT = "miar-features-v1"


def load_feature_split(features: Path, split: str) -> tuple[list[SampleInput], np.ndarray, list[str]]:
    """Samples, labels and clip keys of one split of a features folder (NumPy only: no pipeline import).

    Raises:
        ValueError: Not a features folder of this format.
    """
    manifest = _read_features_manifest(features)
    samples, labels, keys = [], [], []
    for entry in manifest["samples"].get(split, []):
        with np.load(features / entry["file"]) as z:
            parts: dict[str, Any] = {"text": z["text"], "text_mask": z["text_mask"].astype(bool)}
            for m in ("audio", "vision"):
                if len(z[m]):
                    parts[m], parts[f"{m}_mask"] = z[m], z[f"{m}_mask"].astype(bool)
            samples.append(SampleInput(**parts))
            labels.append(float(z["label"]))
        keys.append(f"{entry['video_id']}/{entry['clip_id']}")
    return samples, np.asarray(labels, np.float32), keys


def _read_features_manifest(features: Path) -> dict[str, Any]:
    path = features / "manifest.json"
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a features manifest ({e}); run 'python -m pipeline extract' first") from e
    if manifest.get("format") != FEATURES_FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FEATURES_FORMAT!r}")
    return manifest


def train_on_features(options: TrainOptions, features: Path, out: Path) -> dict[str, Any]:
    """Train MIAR on extracted features (train split), select on valid (lowest MAE), write weights.

    The features were made by the inference extractors, so the weights' encoder, columns and
    normalisation are those of the features; ``trained_modalities`` are the modalities present
    in the training split. Plain epochs over the train split (L1 on the fused score plus the
    per-modality heads), with ``options``' seed, lr, batch size, dims and threads.

    Raises:
        ValueError: No training samples, or features unlike ``options.dims``.
    """
    start_time = time.perf_counter()
    manifest = _read_features_manifest(features)
    torch.set_num_threads(options.threads)
    _seed_everything(options.seed)
    train_samples, train_labels, _ = load_feature_split(features, "train")
    valid_samples, valid_labels, _ = load_feature_split(features, "valid")
    if not train_samples:
        raise ValueError(f"{features}: no training samples (mode 'train' in label.csv)")
    modalities = tuple(m for m in MODALITIES if any(s.modality(m)[0] is not None for s in train_samples))
    dims_cfg = replace(options.dims, n_classes=0)
    if train_samples[0].text.shape[1] != dims_cfg.text_dim:
        raise ValueError(f"{features}: text features are {train_samples[0].text.shape[1]}-d, dims.text_dim is "
                         f"{dims_cfg.text_dim}")
    stats: dict[str, ModalityStats | None] = {}
    for m in MODALITIES:
        pairs = [s.modality(m) for s in train_samples]
        pairs = [(v, k) for v, k in pairs if v is not None and len(v)]
        stats[m] = ModalityStats.fit([v for v, _ in pairs], [k for _, k in pairs]) if m in modalities else None
    model = Miar(dims_cfg)
    optimiser = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    dims = _dims_by_modality(dims_cfg)
    rng = np.random.default_rng(options.seed)
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    history = []
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = rng.permutation(len(train_samples))
        total = 0.0
        for start in range(0, len(order), options.batch_size):
            idx = order[start:start + options.batch_size]
            batch = collate([_drop_tokens(train_samples[i], options.token_dropout, rng) for i in idx], dims, stats,
                            use=modalities)
            result = model(batch.text, batch.text_mask, batch.audio, batch.audio_mask, batch.vision, batch.vision_mask)
            target = torch.from_numpy(train_labels[idx])
            loss = F.l1_loss(result.score, target)
            if result.present.any():
                loss = loss + options.modality_head_weight * (
                    (result.modality_scores - target[:, None]).abs()[result.present].mean())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            total += float(loss.detach()) * len(idx) / len(order)
        held = (valid_samples, valid_labels) if valid_samples else (train_samples, train_labels)
        mae = float(np.abs(predict(model, held[0], stats, modalities)[0] - held[1]).mean())
        history.append({"epoch": epoch, "train_loss": round(total, 4), "select_mae": round(mae, 4)})
        log.info("epoch %d/%d  loss %.3f  %s MAE %.3f", epoch, options.epochs, total,
                 "valid" if valid_samples else "train", mae)
        if best is None or mae < best[0]:
            best = (mae, epoch, copy.deepcopy(model.state_dict()))
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    summary = {
        "sources": [f"features:{manifest.get('dataset', str(features))}"],
        "sizes": {"train": len(train_samples), "valid": len(valid_samples)},
        "seed": options.seed,
        "epochs": options.epochs,
        "selected_epoch": best[1],
        "selection": "lowest MAE on the valid split" if valid_samples else "lowest MAE on train (no valid split)",
        "select_mae": round(best[0], 4),
        "history": history,
        "features_asr_model": manifest.get("asr_model"),
        "train_seconds": round(time.perf_counter() - start_time, 1),
    }
    save_checkpoint(
        out, model, text_encoder=manifest["text_encoder"],
        text_extractor_version=manifest.get("text_extractor_version", TEXT_EXTRACTOR_VERSION),
        max_tokens=int(manifest.get("max_tokens", options.text.max_tokens)),
        audio_columns=tuple(manifest["audio_columns"]), vision_columns=tuple(manifest["vision_columns"]),
        stats=stats, trained_modalities=modalities, training=summary,
    )
    return summary


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    raise TypeError(f"not JSON-serialisable: {type(obj)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("model/configs/miar-v1.json"),
                        help="training config JSON (default model/configs/miar-v1.json)")
    parser.add_argument("--out", type=Path, default=Path("weights/miar-v1"), help="weights folder to write")
    parser.add_argument("--sources", default=None, help="override the config's sources, e.g. mosi,vader")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--shared", type=Path, default=None, help="team data (default $MIAR_SHARED or ../shared)")
    parser.add_argument("--features", type=Path, default=None, metavar="FEATURES_DIR",
                        help="train on features from 'python -m pipeline extract' (train split, selected on valid) "
                        "instead of the config's sources; the config still gives seed, lr, batch size and dims")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = TrainOptions.from_json(args.config)
    overrides: dict[str, Any] = {}
    if args.sources:
        overrides["sources"] = tuple(args.sources.split(","))
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    if overrides:
        options = replace(options, **overrides)
    start = time.perf_counter()
    try:
        if args.features is not None:
            train_on_features(options, args.features, args.out)
        else:
            train(options, args.out, shared=args.shared)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1
    log.info("done in %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
