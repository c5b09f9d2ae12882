"""A bigger reader, measured: all-mpnet-base-v2 with its top layers fine-tuned on the regression text.

Why this module (issue 21, "a stronger reader"): the shipped text path is MiniLM-L6 (22 M parameters)
with every layer tuned. The issue asks whether a bigger encoder, tuned as far as the CPU allows,
reads unseen text and negation better, and whether its scores could teach the shipped size
(distillation). all-mpnet-base-v2 (110 M parameters) fine-tuned end to end costs about 0.15 s per
short sentence forward and backward on our 2 cores (64 sentences of 18 tokens in 9.6 s, beside
other work), hours a pass over the ~85k training texts: out of reach. So its lower layers run once
over every text and their output is cached (``frozen_states``, ~20 min); training then runs only the
top ``tuned_layers``: with 4, about 13 min per 16,000 samples. That is as much of MPNet as the CPU
can tune; what it scores on the held-out sets says how much a bigger reader is worth here, and its
scores on the training text are the soft targets a distillation reads (``training.soft_targets``).

Read alone, never shipped: MPNet is a training-only package (requirements-train.txt), and the
product scores with MiniLM. The teacher reads the same normalised text as MIAR's text path, is
selected on MOSI dev + MOSEI valid only, and is scored on the same held-out rows and probes as MIAR
(``training.evaluate``'s sets and measures)::

    python -m training.teacher                       # train (or resume) and score; ~1.5 h on 2 cores
    python -m training.teacher --scores FILE.csv.gz  # also write its scores on the training text

Everything it computes lives under ``<cache>/teacher``: the frozen states per corpus (keyed by
encoder, depth, token limit and the texts) and one run folder per options key, which keeps its
state after every epoch and continues from there when started again.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from extractors.assets import resolve_text_encoder
from extractors.text import normalise_text
from model.metrics import mae
from storage.files import atomic_path, write_text_atomic
from storage.locations import cache_dir
from training.assemble import training_text
from training.corpora import TextCorpus, load_mosei, load_mosi
from training.evaluate import held_out_text, text_set_scores
from training.probes import load_probes, probe_report
from training.soft_targets import write_scores

__all__ = ["TeacherOptions", "FrozenStates", "frozen_states", "TopLayers", "train_teacher", "predict", "main"]

log = logging.getLogger(__name__)

#: Held-out text sets the teacher is scored on (``training.evaluate.held_out_text`` names).
HELD_OUT: tuple[str, ...] = ("mosi", "mosei", "vader", "sst5")


@dataclass(frozen=True)
class TeacherOptions:
    """How the teacher is built and trained.

    Attributes:
        encoder: The text encoder (``extractors.assets.TEXT_ENCODERS``).
        tuned_layers: Top layers fine-tuned; the ones below are frozen and cached once.
        max_tokens: Sub-word tokens per text, special tokens included (MIAR's limit).
        source_weights: Share of each training source per batch: the shipped recipe's text
            sources (miar-v7), renormalised by the sampler.
        epoch_size: Samples per epoch. epochs: Epochs; the one with the lowest selection MAE is kept.
        batch_size, lr (tuned layers), head_lr (pooling head), weight_decay, warmup (share of the
        steps): the optimiser (AdamW, linear warm-up then cosine decay, L1 loss as MIAR's).
        seed: Seeds the sampler, dropout and head. threads: PyTorch threads.
    """

    encoder: str = "all-mpnet-base-v2"
    tuned_layers: int = 4
    max_tokens: int = 128
    source_weights: dict[str, float] = field(default_factory=lambda: {
        "mosi": 0.13, "mosei": 0.30, "vader": 0.15, "sst5": 0.06, "sst5_phrases": 0.08})
    epoch_size: int = 16000
    epochs: int = 4
    batch_size: int = 32
    lr: float = 4e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    seed: int = 0
    threads: int = 2

    def key(self) -> str:
        """What names the run folder: every option but the thread count (it changes no result)."""
        options = {k: v for k, v in asdict(self).items() if k != "threads"}
        return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FrozenStates:
    """The frozen layers' output for a list of texts, ragged: text ``i`` is ``tokens[offsets[i]:offsets[i+1]]``.

    ``tokens`` is float16 (memory-mapped when read from the cache), so the states of ~90k texts
    (~2 GB) never need to sit in memory at once.
    """

    tokens: np.ndarray  # (total tokens, width) float16
    offsets: np.ndarray  # (N + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, T, width) float32 zero-padded to the longest row, and the mask (B, T) bool."""
        lengths = [int(self.offsets[i + 1] - self.offsets[i]) for i in rows]
        states = np.zeros((len(rows), max(lengths), self.tokens.shape[1]), np.float32)
        mask = np.zeros((len(rows), max(lengths)), bool)
        for b, (i, n) in enumerate(zip(rows, lengths)):
            states[b, :n] = self.tokens[self.offsets[i]: self.offsets[i] + n]
            mask[b, :n] = True
        return torch.from_numpy(states), torch.from_numpy(mask)


def _load_encoder(name: str) -> tuple[Any, Any]:
    """The Hugging Face tokenizer and model of a sentence-transformers folder (eval mode)."""
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_text_encoder(name)
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) bool -> (B, 1, 1, T) added to attention scores: 0 where a token is, the dtype's minimum at padding."""
    return torch.zeros(mask.shape[0], 1, 1, mask.shape[1], dtype=dtype).masked_fill(
        ~mask[:, None, None, :], torch.finfo(dtype).min)


def _encode_frozen(texts: Sequence[str], tokenizer: Any, model: Any, frozen: int, max_tokens: int,
                   what: str, tokens_per_batch: int = 4096) -> FrozenStates:
    """Run the embeddings and the first ``frozen`` layers over ``texts``, shortest first, in token-bounded batches."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    width = model.config.hidden_size
    tokens = np.zeros((int(offsets[-1]), width), np.float16)
    order = np.argsort(lengths, kind="stable")
    layers = model.encoder.layer
    model.encoder.layer = layers[:frozen]  # the model's own forward, stopped after the frozen layers
    began, done, reported = time.perf_counter(), 0, 0.0
    try:
        start = 0
        while start < len(order):
            stop = start + 1  # rows are sorted by length: the batch's longest is its last
            while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= tokens_per_batch:
                stop += 1
            rows = order[start:stop]
            longest = int(lengths[rows].max())
            batch = np.zeros((len(rows), longest), np.int64)
            mask = np.zeros((len(rows), longest), np.int64)
            for b, i in enumerate(rows):
                batch[b, : lengths[i]] = ids[i]
                mask[b, : lengths[i]] = 1
            with torch.inference_mode():
                hidden = model(input_ids=torch.from_numpy(batch), attention_mask=torch.from_numpy(mask))[0]
            hidden = hidden.to(torch.float16).numpy()
            for b, i in enumerate(rows):
                tokens[offsets[i]: offsets[i + 1]] = hidden[b, : lengths[i]]
            done += len(rows)
            start = stop
            if done / len(order) >= reported + 0.1 or done == len(order):
                reported = done / len(order)
                log.info("%s: frozen states of %d/%d texts (%.0f s)", what, done, len(order),
                         time.perf_counter() - began)
    finally:
        model.encoder.layer = layers
    return FrozenStates(tokens, offsets)


def frozen_states(corpus_name: str, texts: Sequence[str], options: TeacherOptions, tokenizer: Any, model: Any,
                  cache: Path) -> FrozenStates:
    """The frozen layers' states of ``texts``, computed once and then read from ``<cache>/teacher/states``."""
    frozen = model.config.num_hidden_layers - options.tuned_layers
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    stem = f"{corpus_name}-{options.encoder}-l{frozen}-t{options.max_tokens}-{digest}"
    folder = cache / "teacher" / "states"
    tokens_path, offsets_path = folder / f"{stem}.tokens.npy", folder / f"{stem}.offsets.npy"
    if not (tokens_path.is_file() and offsets_path.is_file()):
        states = _encode_frozen(texts, tokenizer, model, frozen, options.max_tokens, corpus_name)
        for path, array in ((tokens_path, states.tokens), (offsets_path, states.offsets)):
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, array)
    return FrozenStates(np.load(tokens_path, mmap_mode="r"), np.load(offsets_path))


class TopLayers(nn.Module):
    """The encoder's top layers over frozen states, mean-pooled, and a linear head to one score.

    A copy of the encoder module itself (its relative-position bias and the layers from
    ``first`` on), so its forward is the library's own: fed the output of layer ``first``, it
    gives what the whole model gives (``tests/test_teacher.py``).
    """

    def __init__(self, encoder: nn.Module, first: int, width: int) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.encoder.layer = nn.ModuleList(list(self.encoder.layer)[first:])
        self.head = nn.Linear(width, 1)

    def hidden(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The last layer's states (B, T, width)."""
        return self.encoder(states, attention_mask=_additive_mask(mask, states.dtype))[0]

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(states, mask)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)


def predict(model: TopLayers, states: FrozenStates, batch_size: int = 64) -> np.ndarray:
    """Scores (N,) on the MOSI scale, clipped to [-3, 3], in the rows' order."""
    model.eval()
    order = np.argsort(np.diff(states.offsets), kind="stable")
    out = np.zeros(len(states), np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start: start + batch_size]
            out[rows] = model(*states.batch(rows)).numpy()
    return np.clip(out, -3.0, 3.0)


@dataclass(frozen=True)
class _Labelled:
    states: FrozenStates
    labels: np.ndarray


def train_teacher(options: TeacherOptions, encoder: nn.Module, width: int, train: dict[str, _Labelled],
                  select: Sequence[_Labelled], run: Path) -> TopLayers:
    """Train the top layers; keep the epoch with the lowest selection MAE (pooled over ``select``'s rows).

    Resumable: ``run/state.pt`` holds everything after each epoch, and a run started again with
    the same options continues from there. The kept model is ``run/teacher.pt``.
    """
    torch.manual_seed(options.seed)
    model = TopLayers(encoder, len(encoder.layer) - options.tuned_layers, width)
    head = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    optimiser = torch.optim.AdamW([{"params": body, "lr": options.lr}, {"params": head, "lr": options.head_lr}],
                                  weight_decay=options.weight_decay)
    steps_per_epoch = math.ceil(options.epoch_size / options.batch_size)
    total = steps_per_epoch * options.epochs
    warm = max(1, int(options.warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    names = sorted(train)
    weights = np.array([options.source_weights[n] for n in names], float)
    weights /= weights.sum()
    rng = np.random.default_rng(options.seed)
    epoch, best, history = 0, math.inf, []
    state_path, kept_path = run / "state.pt", run / "teacher.pt"
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        epoch, best, history = state["epoch"], state["best"], state["history"]
        log.info("teacher: resuming after epoch %d of %d", epoch, options.epochs)
    select_labels = np.concatenate([s.labels for s in select])
    while epoch < options.epochs:
        model.train()
        began, loss_sum = time.perf_counter(), 0.0
        for step in range(steps_per_epoch):
            sources = rng.choice(len(names), size=options.batch_size, p=weights)
            states, masks, labels = [], [], []
            for s in np.unique(sources):
                data = train[names[s]]
                rows = rng.integers(0, len(data.labels), size=int((sources == s).sum()))
                x, m = data.states.batch(rows)
                states.append(x)
                masks.append(m)
                labels.append(torch.from_numpy(data.labels[rows]))
            longest = max(x.shape[1] for x in states)
            x = torch.cat([nn.functional.pad(s, (0, 0, 0, longest - s.shape[1])) for s in states])
            m = torch.cat([nn.functional.pad(s, (0, longest - s.shape[1])) for s in masks])
            loss = (model(x, m) - torch.cat(labels)).abs().mean()
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            loss_sum += float(loss.detach())
            if (step + 1) % max(1, steps_per_epoch // 5) == 0:
                log.info("teacher: epoch %d step %d/%d, L1 %.3f (%.0f s)", epoch + 1, step + 1, steps_per_epoch,
                         loss_sum / (step + 1), time.perf_counter() - began)
        epoch += 1
        selection = mae(np.concatenate([predict(model, s.states) for s in select]), select_labels)
        history.append({"epoch": epoch, "train_l1": loss_sum / steps_per_epoch, "selection_mae": selection,
                        "seconds": time.perf_counter() - began})
        log.info("teacher: epoch %d, selection MAE %.4f (%.0f s)", epoch, selection, time.perf_counter() - began)
        if selection < best:
            best = selection
            with atomic_path(kept_path) as tmp:
                torch.save(model.state_dict(), tmp)
        with atomic_path(state_path) as tmp:
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "epoch": epoch, "best": best, "history": history}, tmp)
    write_text_atomic(run / "history.json", json.dumps({"options": asdict(options), "history": history}, indent=1))
    model.load_state_dict(torch.load(kept_path, weights_only=True))
    return model.eval()


def run_teacher(options: TeacherOptions, shared: Path | None = None, cache: Path | None = None,
                scores_path: Path | None = None) -> str:
    """Train (or resume) the teacher, score it on the held-out sets and probes; the report as text."""
    cache = cache or cache_dir()
    torch.set_num_threads(options.threads)
    tokenizer, encoder_model = _load_encoder(options.encoder)
    width = encoder_model.config.hidden_size

    def states_of(corpus: TextCorpus, name: str) -> FrozenStates:
        return frozen_states(name, corpus.texts, options, tokenizer, encoder_model, cache)

    corpora = training_text(shared, sorted(options.source_weights))
    train = {n: _Labelled(states_of(c, f"{n}-train"), c.labels) for n, c in corpora.items()}
    select = [_Labelled(states_of(c, f"{c.name}-{c.split}"), c.labels)
              for c in (load_mosi(shared)["dev"], load_mosei(shared)["valid"])]
    run = cache / "teacher" / "runs" / options.key()
    model = train_teacher(options, encoder_model.encoder, width, train, select, run)

    held = held_out_text(shared, HELD_OUT)
    preds = {n: predict(model, states_of(c, f"{n}-held-out")) for n, (c, _) in held.items()}
    scores = text_set_scores(held, preds)
    probes = load_probes()
    probe_texts = [normalise_text(p.text) for p in probes]
    probe_states = _encode_frozen(probe_texts, tokenizer, encoder_model,
                                  encoder_model.config.num_hidden_layers - options.tuned_layers,
                                  options.max_tokens, "probes")
    report = probe_report(probes, predict(model, probe_states))
    if scores_path is not None:
        count = write_scores(scores_path, ((n, i, s) for n, c in corpora.items()
                                           for i, s in zip(c.ids, predict(model, train[n].states))))
        log.info("teacher scores of %d training texts written to %s", count, scores_path)
    history = json.loads((run / "history.json").read_text())["history"]
    lines = [f"teacher {options.encoder}, top {options.tuned_layers} layers tuned, run {options.key()} "
             f"({sum(h['seconds'] for h in history):.0f} s of training)"]
    lines += [f"  epoch {h['epoch']}: train L1 {h['train_l1']:.3f}, selection MAE {h['selection_mae']:.4f}"
              for h in history]
    lines.append(f"  MOSI test  MAE {scores['mosi_mae']:.3f}  r {scores['mosi_corr']:.3f}  "
                 f"Acc-2 non-0 {100 * scores['mosi_acc2_non0']:.1f}")
    lines.append(f"  MOSEI valid MAE {scores['mosei_mae']:.3f}  r {scores['mosei_corr']:.3f}  "
                 f"Acc-2 non-0 {100 * scores['mosei_acc2_non0']:.1f}")
    lines.append(f"  VADER held-out r {scores['vader_corr']:.3f}   SST-5 dev r {scores['sst5_corr']:.3f}")
    lines.append(f"  probes {report.accuracy:.1%} of {len(probes)}: " + ", ".join(
        f"{c} {r}/{t}" for c, (r, t) in report.by_category.items()))
    lines += [f"  miss {s:+.2f} (expected {p.expected}): {p.text}" for s, p in report.misses]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.teacher",
        description="Fine-tune all-mpnet-base-v2's top layers on the shipped recipe's regression text (lower "
                    "layers frozen and cached once) and score it on MOSI test, MOSEI valid, VADER held-out, "
                    "SST-5 dev and the probes: what a bigger reader is worth before any distillation. Needs "
                    "requirements-train.txt; ~1.5 h on 2 cores the first time, resumable.")
    defaults = TeacherOptions()
    parser.add_argument("--tuned-layers", type=int, default=defaults.tuned_layers,
                        help=f"top layers fine-tuned (default {defaults.tuned_layers}); the rest are cached")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"default {defaults.epochs}")
    parser.add_argument("--epoch-size", type=int, default=defaults.epoch_size,
                        help=f"samples per epoch (default {defaults.epoch_size})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"default {defaults.seed}")
    parser.add_argument("--threads", type=int, default=defaults.threads, help=f"default {defaults.threads}")
    parser.add_argument("--scores", type=Path, default=None,
                        help="also write the teacher's scores on every training text here (training.soft_targets: "
                             "CSV, gzip when it ends in .gz): the soft targets TrainOptions.teacher_weight distils")
    parser.add_argument("--shared", type=Path, default=None, help="shared data folder (default $MIAR_SHARED)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = TeacherOptions(tuned_layers=args.tuned_layers, epochs=args.epochs, epoch_size=args.epoch_size,
                             seed=args.seed, threads=args.threads)
    print(run_teacher(options, args.shared, scores_path=args.scores))  # the report is the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
