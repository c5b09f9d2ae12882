"""MOSI test scores of a weights folder: ``python -m model.evaluate --weights weights/miar-v1 [--baseline]``.

Scores the manual transcripts of a MOSI split (default ``test``) with the shipped weights
and prints MMSA's metrics as a table on stdout. ``--baseline`` also fits the reference
baseline, ridge regression on frozen mean-pooled MiniLM sentence embeddings trained on
MOSI train + VADER train (alpha chosen on MOSI dev), and prints it beside.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.text import TextEncoder, TextOptions
from model.checkpoint import CheckpointError, load_checkpoint
from model.data import SampleInput, default_shared_dir, encode_corpus, load_mosi, load_vader
from model.metrics import MosiMetrics, mosi_metrics

__all__ = ["evaluate_weights", "ridge_baseline", "format_table", "main"]

log = logging.getLogger(__name__)

#: Ridge strengths tried for the baseline (picked on MOSI dev).
RIDGE_ALPHAS: tuple[float, ...] = (0.1, 1.0, 3.0, 10.0, 30.0, 100.0)


def _mean_pooled(samples: list[SampleInput]) -> np.ndarray:
    """Sentence embeddings as sentence-transformers' mean pooling makes them (special tokens included)."""
    return np.stack([np.asarray(s.text, np.float32)[s.text_mask].mean(axis=0) for s in samples])


def evaluate_weights(weights: Path, split: str = "test", shared: Path | None = None) -> MosiMetrics:
    """MOSI metrics of the weights on one split's manual transcripts.

    Raises:
        CheckpointError: The weights cannot be loaded.
    """
    encoder_name = _encoder_of(weights)
    miar = load_checkpoint(weights, expected_encoder=encoder_name, expected_audio_columns=voice_mod.COLUMNS,
                           expected_vision_columns=face_mod.COLUMNS)
    options = TextOptions(encoder=encoder_name, max_tokens=int(miar.config["max_tokens"]))
    corpus = load_mosi(shared)[split]
    samples = encode_corpus(corpus, TextEncoder(options), options.max_tokens)
    return mosi_metrics(miar.predict(samples), corpus.labels)


def _encoder_of(weights: Path) -> str:
    import json

    try:
        with open(weights / "config.json", encoding="utf-8") as f:
            return str(json.load(f)["text_encoder"])
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{weights}: config.json missing or without text_encoder: {e}") from e


def ridge_baseline(split: str = "test", shared: Path | None = None, seed: int = 0) -> tuple[MosiMetrics, float]:
    """The reference baseline: ridge on mean-pooled MiniLM embeddings, MOSI train + VADER train.

    Returns:
        Metrics on ``split`` and the ridge alpha chosen on MOSI dev (lowest MAE).
    """
    from sklearn.linear_model import Ridge

    options = TextOptions()
    encoder = TextEncoder(options)
    mosi = load_mosi(shared)
    vader = load_vader(shared, seed=seed)["train"]
    x = {name: _mean_pooled(encode_corpus(c, encoder, options.max_tokens))
         for name, c in (("mosi_train", mosi["train"]), ("vader", vader), ("dev", mosi["dev"]), (split, mosi[split]))}
    x_train = np.concatenate([x["mosi_train"], x["vader"]])
    y_train = np.concatenate([mosi["train"].labels, vader.labels])
    best_alpha, best_mae = RIDGE_ALPHAS[0], np.inf
    for alpha in RIDGE_ALPHAS:
        mae = mosi_metrics(np.clip(Ridge(alpha=alpha).fit(x_train, y_train).predict(x["dev"]), -3, 3),
                           mosi["dev"].labels).mae
        if mae < best_mae:
            best_alpha, best_mae = alpha, mae
    pred = np.clip(Ridge(alpha=best_alpha).fit(x_train, y_train).predict(x[split]), -3, 3)
    return mosi_metrics(pred, mosi[split].labels), best_alpha


def format_table(rows: dict[str, MosiMetrics]) -> str:
    """A plain-text table, accuracies and F1 in percent as papers print them."""
    header = f"{'model':<28}{'MAE':>7}{'Corr':>7}{'Acc-2 h0':>10}{'F1 h0':>8}{'Acc-2 n0':>10}{'F1 n0':>8}" \
             f"{'Acc-7':>8}{'N':>6}"
    lines = [header, "-" * len(header)]
    for name, m in rows.items():
        lines.append(f"{name:<28}{m.mae:>7.3f}{m.corr:>7.3f}{100 * m.acc2_has0:>10.1f}{100 * m.f1_has0:>8.1f}"
                     f"{100 * m.acc2_non0:>10.1f}{100 * m.f1_non0:>8.1f}{100 * m.acc7:>8.1f}{m.n:>6d}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="MIAR weights folder")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test", help="MOSI split (default test)")
    parser.add_argument("--baseline", action="store_true", help="also fit and print the ridge baseline")
    parser.add_argument("--shared", type=Path, default=None, help="team data (default $MIAR_SHARED or ../shared)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    shared = args.shared or default_shared_dir()
    try:
        rows = {f"{args.weights.name} (MIAR)": evaluate_weights(args.weights, args.split, shared)}
        if args.baseline:
            metrics, alpha = ridge_baseline(args.split, shared)
            rows[f"ridge MiniLM a={alpha:g}"] = metrics
    except (CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 1
    sys.stdout.write(f"MOSI {args.split} (manual transcripts)\n{format_table(rows)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
