"""Train MIAR from a config file: ``python -m model.train --config model/configs/miar-v1.json --out weights/miar-v1``.

The checkpoint is chosen on MOSI dev (lowest MAE); MOSI test is never read here. Text
features come from the on-disk cache (``model.data.encode_corpus``), so a second run
starts training within seconds. Seeds are fixed (Python, NumPy, torch) and torch uses
``threads`` CPU threads, so a run on the same machine repeats.
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
from model.checkpoint import save_checkpoint
from model.data import (
    MODALITIES, ModalityStats, SampleInput, TextCorpus, collate, default_shared_dir, encode_corpus, load_mosi,
    load_sst5, load_vader,
)
from model.metrics import MosiMetrics, mosi_metrics
from model.miar import Miar, MiarDims

__all__ = ["TrainOptions", "train", "main"]

log = logging.getLogger(__name__)

#: Extra text-only sources that may join MOSI train.
EXTRA_SOURCES: tuple[str, ...] = ("vader", "sst5")


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run depends on (read from the JSON config).

    Attributes:
        seed: Seed of Python, NumPy and torch.
        sources: "mosi" plus any of "vader", "sst5" (their train splits).
        mosi_repeat: Times MOSI train is repeated per epoch, so the small in-domain set is
            not drowned by the larger extra sources.
        epochs: Passes over the (repeated) training set.
        batch_size: Samples per step.
        lr: Peak AdamW learning rate (linear warm-up over the first epoch, cosine decay).
        weight_decay: AdamW weight decay.
        align_weight: Weight of the InfoNCE alignment loss beside the L1 regression loss
            (zero contribution while only text is trained: no modality pairs exist).
        token_dropout: Share of text tokens masked at random per training sample (regulariser).
        threads: torch CPU threads.
        dims: Network shape.
        text: Text encoder options (name and token limit are recorded in the weights).
    """

    seed: int = 0
    sources: tuple[str, ...] = ("mosi",)
    mosi_repeat: int = 1
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    align_weight: float = 0.1
    token_dropout: float = 0.1
    threads: int = 2
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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_corpora(options: TrainOptions, shared: Path) -> tuple[list[TextCorpus], TextCorpus]:
    unknown = set(options.sources) - {"mosi", *EXTRA_SOURCES}
    if "mosi" not in options.sources or unknown:
        raise ValueError(f"sources must include 'mosi' and only {EXTRA_SOURCES}; got {options.sources}")
    mosi = load_mosi(shared)
    train = [mosi["train"]]
    if "vader" in options.sources:
        train.append(load_vader(shared, seed=options.seed)["train"])
    if "sst5" in options.sources:
        train.append(load_sst5(shared)["train"])
    return train, mosi["dev"]


def _dims_by_modality(dims: MiarDims) -> dict[str, int]:
    return {m: dims.input_dim(m) for m in MODALITIES}


def evaluate_samples(
    model: Miar, samples: Sequence[SampleInput], labels: np.ndarray, stats: dict[str, ModalityStats | None],
    batch_size: int = 128,
) -> MosiMetrics:
    """MOSI metrics of ``model`` (text only) on encoded samples."""
    model.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            b = collate(samples[start:start + batch_size], _dims_by_modality(model.dims), stats, use=("text",))
            preds.append(model(b.text, b.text_mask, b.audio, b.audio_mask, b.vision, b.vision_mask).score.numpy())
    return mosi_metrics(np.concatenate(preds), labels)


def _drop_tokens(sample: SampleInput, rate: float, rng: np.random.Generator) -> SampleInput:
    if rate <= 0:
        return sample
    keep = sample.text_mask & (rng.random(len(sample.text_mask)) >= rate)
    if not keep.any():
        keep = sample.text_mask
    return SampleInput(text=sample.text, text_mask=keep)


def train(options: TrainOptions, out: Path, shared: Path | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Train, select on MOSI dev, write the weights folder.

    Returns:
        The training summary written into config.json.
    """
    start_time = time.perf_counter()
    torch.set_num_threads(options.threads)
    _seed_everything(options.seed)
    shared = shared or default_shared_dir()
    train_corpora, dev_corpus = _load_corpora(options, shared)
    encoder = TextEncoder(options.text)
    if encoder.dim != options.dims.text_dim:
        raise ValueError(f"text encoder {encoder.name} gives {encoder.dim}-d tokens, dims.text_dim is "
                         f"{options.dims.text_dim}")

    train_samples: list[SampleInput] = []
    train_labels: list[np.ndarray] = []
    sizes = {}
    for corpus in train_corpora:
        samples = encode_corpus(corpus, encoder, options.text.max_tokens, cache)
        repeat = options.mosi_repeat if corpus.name == "mosi" else 1
        train_samples += samples * repeat
        train_labels += [corpus.labels] * repeat
        sizes[f"{corpus.name}/{corpus.split}"] = len(corpus)
    labels = np.concatenate(train_labels).astype(np.float32)
    dev_samples = encode_corpus(dev_corpus, encoder, options.text.max_tokens, cache)
    del encoder

    unique = train_samples[sizes["mosi/train"] * (options.mosi_repeat - 1):]  # MOSI once, then the extras
    stats: dict[str, ModalityStats | None] = {
        "text": ModalityStats.fit([s.text for s in unique], [s.text_mask for s in unique]),
        "audio": None,  # never seen in training: recorded as such and masked at inference
        "vision": None,
    }
    log.info("training on %d samples (%s, MOSI x%d), dev MOSI %d", len(train_samples), sizes,
             options.mosi_repeat, len(dev_samples))

    model = Miar(options.dims)
    optimiser = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = (len(train_samples) + options.batch_size - 1) // options.batch_size
    total_steps = steps_per_epoch * options.epochs

    def lr_at(step: int) -> float:
        if step < steps_per_epoch:
            return (step + 1) / steps_per_epoch
        progress = (step - steps_per_epoch) / max(1, total_steps - steps_per_epoch)
        return 0.5 * (1.0 + np.cos(np.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    rng = np.random.default_rng(options.seed)
    dims = _dims_by_modality(options.dims)
    best: tuple[float, int, dict[str, torch.Tensor], MosiMetrics] | None = None
    history = []
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = rng.permutation(len(train_samples))
        total_loss, total_align = 0.0, 0.0
        for start in range(0, len(order), options.batch_size):
            idx = order[start:start + options.batch_size]
            batch = collate([_drop_tokens(train_samples[i], options.token_dropout, rng) for i in idx],
                            dims, stats, use=("text",))
            target = torch.from_numpy(labels[idx])
            result = model(batch.text, batch.text_mask, batch.audio, batch.audio_mask, batch.vision, batch.vision_mask)
            regression = F.l1_loss(result.score, target)
            alignment = model.alignment_loss(result)
            loss = regression + options.align_weight * alignment
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            total_loss += float(regression.detach()) * len(idx)
            total_align += float(alignment.detach()) * len(idx)
        dev = evaluate_samples(model, dev_samples, dev_corpus.labels, stats)
        history.append({"epoch": epoch, "train_l1": total_loss / len(order), "dev": dev.as_dict()})
        log.info("epoch %d/%d  train L1 %.3f  align %.3f  dev MAE %.3f corr %.3f acc2(non0) %.3f  (%.0f s)",
                 epoch, options.epochs, total_loss / len(order), total_align / len(order), dev.mae, dev.corr,
                 dev.acc2_non0, time.perf_counter() - start_time)
        if best is None or dev.mae < best[0]:
            best = (dev.mae, epoch, copy.deepcopy(model.state_dict()), dev)
    assert best is not None
    model.load_state_dict(best[2])
    summary = {
        "sources": list(options.sources),
        "sizes": sizes,
        "mosi_repeat": options.mosi_repeat,
        "label_mappings": {"mosi": "label as is", "vader": "valence x 0.75 ([-4,4] -> [-3,3])",
                           "sst5": "classes 0..4 -> -3, -1.5, 0, 1.5, 3"},
        "seed": options.seed,
        "epochs": options.epochs,
        "selected_epoch": best[1],
        "selection": "lowest MAE on MOSI dev (manual transcripts)",
        "dev_metrics": best[3].as_dict(),
        "history": history,
        "train_seconds": round(time.perf_counter() - start_time, 1),
        "options": {k: v for k, v in json.loads(json.dumps(options, default=_jsonable)).items()},
    }
    save_checkpoint(
        out, model, text_encoder=options.text.encoder, text_extractor_version=TEXT_EXTRACTOR_VERSION,
        max_tokens=options.text.max_tokens, audio_columns=voice_mod.COLUMNS, vision_columns=face_mod.COLUMNS,
        stats=stats, trained_modalities=("text",), training=summary,
    )
    log.info("best epoch %d: dev MAE %.3f corr %.3f; weights in %s", best[1], best[3].mae, best[3].corr, out)
    return summary


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    raise TypeError(f"not JSON-serialisable: {type(obj)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="training config JSON (model/configs/)")
    parser.add_argument("--out", type=Path, required=True, help="weights folder to write")
    parser.add_argument("--sources", default=None, help="override the config's sources, e.g. mosi,vader")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--shared", type=Path, default=None, help="team data (default $MIAR_SHARED or ../shared)")
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
    if overrides:
        options = replace(options, **overrides)
    try:
        train(options, args.out, shared=args.shared)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
