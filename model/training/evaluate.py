"""Held-out scores of MIAR weights.

    python -m model.training.evaluate [--weights weights/miar-v1] [--seeds 0,1,2] [--ablations]

- ``--weights W``: every held-out score of one weights folder: MOSI test (manual
  transcripts; MMSA's MAE, Corr, Acc-2 and weighted F1 has-0 / non-0, Acc-7), the VADER
  held-out slice (Pearson), SST-5 dev (MAE, Pearson), MELD test (3-class accuracy of the
  auxiliary head), EmoDB held-out speakers (sign accuracy on clearly positive/negative
  emotions: happiness vs anger, disgust, fear, sadness), speech_valence held-out files
  (Pearson), Taiwan held-out performers and muxspace held-out people (sign accuracy on
  clearly positive/negative photos, |valence| >= 1).
- ``--seeds 0,1,2``: trains the config (``--config``, default model/training/configs/miar-v1.json)
  once per seed with the one training loop into ``<cache>/runs/`` (reused when present),
  then prints mean ± std.
- ``--ablations``: the same for the variants (text-only regressor, no interaction tokens,
  no contrastive loss, MPNet text encoder) and the full config, all at ``--ablation-epochs``.
- ``--probes``: polarity accuracy of ``--weights`` (default: the shipped weights) on our own
  probe sentences (``tests/data/probe_sentences.csv``), per category, with every miss.
- ``--baseline``: also fits the reference ridge baseline (mean-pooled MiniLM sentence
  embeddings, MOSI train + VADER train, alpha picked on MOSI dev).

Weights and the text encoder are loaded through ``pipeline.models.Models`` (parts "text"
and "miar"), the holder the pipeline itself uses. MOSI test is read here only, never by training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from extractors.errors import ExtractionError
from extractors.text import TextEncoder, TextOptions
from model.batch import SampleInput
from model.checkpoint import CheckpointError, LoadedMiar, read_weights_config
from model.metrics import mosi_metrics
from model.schema import SCORE_MAX, SCORE_MIN, sentiment_bin
from model.training import sources as src
from model.training.assemble import VADER_SPLIT_SEED, load_training_data
from model.training.corpora import TextCorpus, encode_corpus, load_meld, load_mosi, load_sst5, load_vader
from model.training.loop import TrainOptions, train_model
from model.training.train import DEFAULT_CONFIG, write_weights
from pipeline.config import PipelineConfig
from pipeline.models import Models
from storage.files import write_text_atomic
from storage.locations import cache_dir, shared_dir

__all__ = ["evaluate_weights", "ridge_baseline", "format_table", "train_seeds", "ABLATIONS", "main", "pearson",
           "sign_accuracy"]

log = logging.getLogger(__name__)

#: Ridge strengths tried for the baseline (picked on MOSI dev).
RIDGE_ALPHAS: tuple[float, ...] = (0.1, 1.0, 3.0, 10.0, 30.0, 100.0)
#: Held-out scores in the order they are printed: (key, header, percent?).
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("mosi_mae", "MAE", False), ("mosi_corr", "Corr", False), ("mosi_acc2_has0", "Acc2h0", True),
    ("mosi_f1_has0", "F1h0", True), ("mosi_acc2_non0", "Acc2n0", True), ("mosi_f1_non0", "F1n0", True),
    ("mosi_acc7", "Acc7", True), ("vader_corr", "VADERr", False), ("sst5_corr", "SST5r", False),
    ("meld_acc3", "MELD3", True), ("emodb_sign", "EmoDB", True), ("emodb_balanced", "EmoDB bal", True),
    ("speech_valence_corr", "SpVal r", False), ("taiwan_sign", "Taiwan", True), ("taiwan_balanced", "Taiwan bal", True),
    ("muxspace_sign", "muxsp", True), ("muxspace_balanced", "muxsp bal", True),
)
#: Text held-out sets ``evaluate_weights`` scores by default.
TEXT_SETS: tuple[str, ...] = ("mosi", "vader", "sst5", "meld")
#: Overrides that turn off what text-only sources give nothing to act on (the loop refuses them otherwise):
#: mixing and modality dropout need audio or vision, the alignment loss two modalities.
TEXT_ONLY: dict[str, Any] = {"mix_rate": 0.0, "modality_dropout": 0.0, "align_weight": 0.0}
#: Without MELD there is no class target: no class loss, no class head ("dims": {"n_classes": 0}).
NO_CLASSES: dict[str, Any] = {"class_weight": 0.0}
#: Ablation variants: name -> (description, overrides of TrainOptions fields; "dims"/"text" merge).
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "full MIAR": ("the config as is", {}),
    "text-only regressor": ("the config's text sources only (MOSI, VADER, MELD); audio/vision never seen",
                            {"sources": ("mosi", "vader", "meld"), **TEXT_ONLY}),
    "no interaction tokens": ("global tokens = own pooled summaries, no cross-modal attention",
                              {"dims": {"interaction": False}}),
    "no contrastive loss": ("align_weight 0", {"align_weight": 0.0}),
    "MiniLM, MOSI text only": ("MOSI train only, MiniLM-L6 tokens (pair with the next row)",
                               {"sources": ("mosi",), **TEXT_ONLY, **NO_CLASSES, "dims": {"n_classes": 0}}),
    "MPNet, MOSI text only": ("MOSI train only, all-mpnet-base-v2 tokens (768-d)",
                              {"sources": ("mosi",), **TEXT_ONLY, **NO_CLASSES,
                               "text": {"encoder": "all-mpnet-base-v2"}, "dims": {"text_dim": 768, "n_classes": 0}}),
}
#: Variants scored on MOSI test only (their encoder's features for the other text sets are not cached).
MOSI_ONLY_EVAL: frozenset[str] = frozenset({"MiniLM, MOSI text only", "MPNet, MOSI text only"})


def _mean_pooled(samples: list[SampleInput]) -> np.ndarray:
    """Sentence embeddings as sentence-transformers' mean pooling makes them (special tokens included)."""
    return np.stack([np.asarray(s.text, np.float32)[s.text_mask].mean(axis=0) for s in samples])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else float("nan")


def sign_accuracy(pred: np.ndarray, label: np.ndarray, clear: float, balanced: bool = False) -> float:
    """Share of samples with |label| >= clear whose prediction has the label's sign.

    ``balanced``: the mean of the positive and the negative samples' accuracies, which a
    constant guess cannot push above 50% (EmoDB has four negative emotions for one positive).
    """
    keep = np.abs(label) >= clear
    if not keep.any():
        return float("nan")
    right, positive = (pred[keep] > 0) == (label[keep] > 0), label[keep] > 0
    if not balanced:
        return float(np.mean(right))
    return float(np.mean([right[positive].mean(), right[~positive].mean()])) if positive.any() and (~positive).any() \
        else float("nan")


def _models_config(weights: Path) -> PipelineConfig:
    """A pipeline config whose text encoder and token limit are those the weights were trained with."""
    config = read_weights_config(weights)
    try:
        text = TextOptions(encoder=str(config["text_encoder"]), max_tokens=int(config["max_tokens"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{weights}/config.json lacks a usable text_encoder / max_tokens: {e}") from e
    return PipelineConfig(text=text, weights_dir=weights)


def evaluate_weights(
    weights: Path, shared: Path | None = None, cache: Path | None = None, text_sets: tuple[str, ...] = TEXT_SETS,
) -> dict[str, float]:
    """Every held-out score of a weights folder (keys of ``COLUMNS``; NaN where the modality was never trained).

    Args:
        weights: The weights folder.
        shared: Team data.
        cache: Feature cache root.
        text_sets: Text held-out sets to score ("mosi" always).

    Raises:
        CheckpointError: The weights cannot be loaded.
    """
    shared = shared or shared_dir()
    config = _models_config(Path(weights))
    with Models.load(config, parts=("text", "miar")) as models:
        assert models.text_encoder is not None and models.miar is not None
        return _scores(models.miar, models.text_encoder, config.text.max_tokens, shared, cache, text_sets)


def _scores(miar: LoadedMiar, encoder: TextEncoder, max_tokens: int, shared: Path, cache: Path | None,
            text_sets: tuple[str, ...]) -> dict[str, float]:
    def text_scores(corpus: TextCorpus) -> tuple[np.ndarray, list[SampleInput]]:
        samples = encode_corpus(corpus, encoder, max_tokens, cache)
        return miar.predict(samples), samples

    scores: dict[str, float] = {}
    mosi = load_mosi(shared)["test"]
    for key, value in mosi_metrics(text_scores(mosi)[0], mosi.labels).as_dict().items():
        if key != "n":
            scores[f"mosi_{key}"] = value
    if "vader" in text_sets:
        vader = load_vader(shared, seed=VADER_SPLIT_SEED)["dev"]
        scores["vader_corr"] = pearson(text_scores(vader)[0], vader.labels)
    if "sst5" in text_sets:
        sst5 = load_sst5(shared)["dev"]
        pred, _ = text_scores(sst5)
        scores["sst5_corr"] = pearson(pred, sst5.labels)
        scores["sst5_mae"] = float(np.mean(np.abs(pred - sst5.labels)))
    if "meld" in text_sets:
        meld, meld_classes = load_meld(shared)["test"]
        pred, samples = text_scores(meld)
        probs = miar.class_probabilities(samples)
        # no class head: the polarity the outputs would print
        guess = probs.argmax(axis=1) if probs.shape[1] else np.array([sentiment_bin(float(p)) for p in pred])
        scores["meld_acc3"] = float(np.mean(guess == meld_classes))
    for name, load, metric in (("emodb", src.load_emodb, "sign"), ("speech_valence", src.load_speech_valence, "corr"),
                               ("taiwan", src.load_taiwan, "sign"), ("muxspace", src.load_muxspace, "sign")):
        modality = "audio" if name in ("emodb", "speech_valence") else "vision"
        if modality not in miar.modalities:
            continue
        held = load(shared, cache)["test"]
        pred = miar.predict(list(held.samples))
        clear = 1.5 if name == "emodb" else 1.0
        if metric == "sign":
            scores[f"{name}_sign"] = sign_accuracy(pred, held.labels, clear)
            scores[f"{name}_balanced"] = sign_accuracy(pred, held.labels, clear, balanced=True)
        else:
            scores[f"{name}_corr"] = pearson(pred, held.labels)
    return scores


def ridge_baseline(shared: Path | None = None) -> dict[str, float]:
    """The reference baseline: ridge on mean-pooled MiniLM embeddings, MOSI train + VADER train, on MOSI test."""
    from sklearn.linear_model import Ridge

    options = TextOptions()
    mosi = load_mosi(shared)
    vader = load_vader(shared, seed=VADER_SPLIT_SEED)
    with Models.load(PipelineConfig(text=options), parts=("text",)) as models:
        assert models.text_encoder is not None
        x = {name: _mean_pooled(encode_corpus(c, models.text_encoder, options.max_tokens))
             for name, c in (("mosi_train", mosi["train"]), ("vader", vader["train"]), ("dev", mosi["dev"]),
                             ("test", mosi["test"]), ("vader_dev", vader["dev"]))}
    x_train = np.concatenate([x["mosi_train"], x["vader"]])
    y_train = np.concatenate([mosi["train"].labels, vader["train"].labels])
    best_alpha, best_mae = RIDGE_ALPHAS[0], np.inf
    for alpha in RIDGE_ALPHAS:
        mae = mosi_metrics(np.clip(Ridge(alpha=alpha).fit(x_train, y_train).predict(x["dev"]), SCORE_MIN, SCORE_MAX),
                           mosi["dev"].labels).mae
        if mae < best_mae:
            best_alpha, best_mae = alpha, mae
    ridge = Ridge(alpha=best_alpha).fit(x_train, y_train)
    metrics = mosi_metrics(np.clip(ridge.predict(x["test"]), SCORE_MIN, SCORE_MAX), mosi["test"].labels)
    out = {f"mosi_{k}": v for k, v in metrics.as_dict().items() if k != "n"}
    out["vader_corr"] = pearson(ridge.predict(x["vader_dev"]), vader["dev"].labels)
    out["alpha"] = best_alpha
    return out


def _variant_options(config: Path, overrides: dict[str, Any], seed: int, epochs: int | None) -> TrainOptions:
    options = TrainOptions.from_json(config)
    plain = {k: v for k, v in overrides.items() if k not in ("dims", "text")}
    if "dims" in overrides:
        plain["dims"] = replace(options.dims, **overrides["dims"])
    if "text" in overrides:
        plain["text"] = replace(options.text, **overrides["text"])
    if "sources" in overrides:  # the config weighs sources the variant drops
        plain["source_weights"] = {k: w for k, w in options.source_weights.items() if k in overrides["sources"]}
    options = replace(options, seed=seed, **plain)
    if epochs:
        options = replace(options, epochs=epochs)
    return options


def train_seeds(
    config: Path, seeds: list[int], overrides: dict[str, Any] | None = None, epochs: int | None = None,
    shared: Path | None = None, cache: Path | None = None, text_sets: tuple[str, ...] = TEXT_SETS,
) -> list[dict[str, float]]:
    """Train (or reuse) one weights folder per seed under ``<cache>/runs`` and score each.

    A run's folder name is a hash of its full options, so a changed config retrains and an
    unchanged one is only scored (its scores are cached beside the weights too).
    """
    root = (cache or cache_dir()) / "runs"
    results, data, data_key = [], None, None
    for seed in seeds:
        options = _variant_options(config, overrides or {}, seed, epochs)
        blob = json.dumps(options, default=lambda o: o.__dict__, sort_keys=True)
        folder = root / hashlib.sha256(blob.encode()).hexdigest()[:16]
        scores_path = folder / f"scores-{'-'.join(text_sets)}.json"
        if scores_path.is_file():
            with open(scores_path, encoding="utf-8") as f:
                results.append(json.load(f))
            continue
        if not (folder / "model.pt").is_file():
            key = (options.sources, options.text)
            if data is None or key != data_key:
                data, data_key = load_training_data(options, shared, cache), key
            write_weights(folder, train_model(options, data, log_every_epoch=False), data.spec)
        scores = evaluate_weights(folder, shared, cache, text_sets)
        with open(folder / "config.json", encoding="utf-8") as f:
            scores["train_seconds"] = json.load(f)["training"]["train_seconds"]
        write_text_atomic(scores_path, json.dumps(scores))
        results.append(scores)
    return results


def _cell(values: list[float], percent: bool) -> str:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if len(arr) == 0:
        return "-"
    scale = 100.0 if percent else 1.0
    if len(arr) == 1:
        return f"{scale * arr[0]:.1f}" if percent else f"{arr[0]:.3f}"
    return (f"{scale * arr.mean():.1f}±{scale * arr.std():.1f}" if percent
            else f"{arr.mean():.3f}±{arr.std():.3f}")


def format_table(rows: dict[str, list[dict[str, float]]]) -> str:
    """Markdown table: one row per model, mean ± std (population) over its runs; accuracies in percent."""
    header = "| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, runs in rows.items():
        cells = [_cell([r.get(k, float("nan")) for r in runs], pct) for k, _, pct in COLUMNS]
        lines.append(f"| {name} (n={len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _probe_text(weights: Path | None) -> str:
    """The probe report of a weights folder (default: the shipped one) as printable lines."""
    from model.training.probes import load_probes, probe_report
    from pipeline.config import PipelineConfig
    from pipeline.text_scoring import TextScorer

    config = PipelineConfig().with_overrides(weights_dir=weights)
    probes = load_probes()
    with TextScorer.load(config) as scorer:
        report = probe_report(probes, scorer.score([p.text for p in probes]))
    lines = [f"probes ({config.weights_dir.name}): {report.accuracy:.1%} of {len(probes)} with the expected polarity"]
    lines += [f"  {category:16s} {right}/{total}" for category, (right, total) in report.by_category.items()]
    lines += [f"  miss {score:+.2f} (expected {probe.expected}): {probe.text}" for score, probe in report.misses]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="score this weights folder")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"training config (default model/training/configs/{DEFAULT_CONFIG.name})")
    parser.add_argument("--seeds", default=None, help="train (cached) and score these seeds, e.g. 0,1,2")
    parser.add_argument("--ablations", action="store_true", help="also train and score the ablation variants")
    parser.add_argument("--ablation-epochs", type=int, default=4, help="epochs of every ablation run (default 4)")
    parser.add_argument("--baseline", action="store_true", help="also fit and print the ridge baseline")
    parser.add_argument("--probes", action="store_true",
                        help="polarity accuracy of --weights (default: shipped) on tests/data/probe_sentences.csv")
    parser.add_argument("--shared", type=Path, default=None, help="team data (default $MIAR_SHARED or ../shared)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    shared = args.shared or shared_dir()
    start = time.perf_counter()
    rows: dict[str, list[dict[str, float]]] = {}
    if args.probes:
        try:
            sys.stdout.write(_probe_text(args.weights) + "\n")
        except (CheckpointError, ExtractionError, OSError, ValueError) as e:
            log.error("%s", e)
            return 1
        if args.weights is None and not (args.seeds or args.ablations or args.baseline):
            return 0
    try:
        if args.weights is not None:
            rows[f"{args.weights.name}"] = [evaluate_weights(args.weights, shared)]
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [0, 1, 2]
        if args.seeds and not args.ablations:
            rows[f"{args.config.stem} seeds {args.seeds}"] = train_seeds(args.config, seeds, shared=shared)
        if args.ablations:
            for name, (_, overrides) in ABLATIONS.items():
                text_sets = ("mosi",) if name in MOSI_ONLY_EVAL else TEXT_SETS
                rows[name] = train_seeds(args.config, seeds, overrides, args.ablation_epochs, shared=shared,
                                         text_sets=text_sets)
                sys.stdout.write(f"{name}: done ({time.perf_counter() - start:.0f} s)\n")
                sys.stdout.flush()
        if args.baseline:
            rows["ridge MiniLM (MOSI+VADER)"] = [ridge_baseline(shared)]
    except (CheckpointError, ExtractionError, OSError, ValueError) as e:
        log.error("%s", e)
        return 1
    if not rows:
        log.error("nothing to do: give --weights, --seeds or --ablations")
        return 1
    sys.stdout.write("Held-out scores (MOSI test = manual transcripts; accuracies in %; mean±std over runs)\n")
    sys.stdout.write(format_table(rows) + "\n")
    if args.ablations:
        sys.stdout.write(f"(ablation runs: {args.ablation_epochs} epochs each, seeds {seeds})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
