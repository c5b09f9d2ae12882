"""Train MIAR weights: ``python -m training.train [--config C] [--out W] [--features FEATURES_DIR]``.

Two kinds of data, one loop (``training.loop.train_model``):

- the curated sources of the config (default ``training/configs/miar-v7.json``,
  written to ``weights/miar-v7``): text "mosi" (train), "mosei" (train; its valid split
  selects beside MOSI dev), "vader" (train; a fixed 10% slice
  is held out), "sst5" (train), "meld" (train; 3-class auxiliary head only); audio "emodb"
  (speakers 03 and 08 held out), "speech_valence" (every 5th file held out); vision
  "taiwan" (performers whose id is a multiple of 5 held out), "muxspace" (~20% of people
  held out). The epoch is selected on MOSI dev (+ MOSEI valid); MOSI test is never read here. Features
  come from on-disk caches, so only the first run extracts.
- ``--features FEATURES_DIR`` from ``python -m pipeline extract`` (default config
  ``training/configs/features.json``; ``--out`` is required so that the shipped
  weights are never overwritten by accident): its train split is the one source
  "features", its valid split selects, and the weights record the manifest's text
  encoder and columns.

Options that cannot act on the data are refused before training (exit 1, one line naming
each key); see ``model/DESIGN.md``.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from extractors.errors import ExtractionError
from model.checkpoint import CheckpointError, save_checkpoint
from storage.locations import DEFAULT_TRAINING_CONFIG, DEFAULT_WEIGHTS, TRAINING_CONFIGS
from training.assemble import FEATURES_SOURCE, load_features_data, load_training_data
from training.loop import FeatureSpec, TrainedMiar, TrainOptions, train_model

__all__ = ["CONFIGS", "DEFAULT_CONFIG", "FEATURES_CONFIG", "resume_file", "write_weights", "train", "train_on_features",
           "build_parser", "main"]

log = logging.getLogger(__name__)

#: The training configs shipped with the code (``storage.locations`` keeps them beside the weights they make).
CONFIGS = TRAINING_CONFIGS
#: The config of the shipped weights (curated sources).
DEFAULT_CONFIG = DEFAULT_TRAINING_CONFIG
#: The default config for ``--features``.
FEATURES_CONFIG = CONFIGS / "features.json"


def resume_file(out: Path) -> Path:
    """Where a run writing ``out`` keeps its per-epoch state: beside the folder, so an interrupted
    run started again with the same options continues (``loop.train_model``'s ``resume_path``)."""
    out = Path(out)
    return out.parent / f".{out.name}.resume.pt"


def write_weights(folder: Path, trained: TrainedMiar, spec: FeatureSpec) -> Path:
    """Write a trained network as a weights folder (``model.checkpoint.save_checkpoint``).

    Raises:
        OSError: The folder cannot be written.
    """
    return save_checkpoint(
        folder, trained.model, text_encoder=spec.text_encoder, text_extractor_version=spec.text_extractor_version,
        max_tokens=spec.max_tokens, audio_columns=spec.audio_columns, vision_columns=spec.vision_columns,
        stats=trained.stats, trained_modalities=trained.modalities, training=trained.summary,
        text_layers=spec.text_layers, voice_states_source=spec.voice_states_source,
    )


def train(options: TrainOptions, out: Path, shared: Path | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Train on the curated sources, select on MOSI dev, write the weights folder.

    Returns:
        The training summary written into config.json.

    Raises:
        ValueError: A refused option or unknown source.
        FileNotFoundError: Team data missing.
    """
    data = load_training_data(options, shared, cache)
    trained = train_model(options, data, resume_path=resume_file(out))
    write_weights(out, trained, data.spec)
    return trained.summary


def train_on_features(options: TrainOptions, features: Path, out: Path) -> dict[str, Any]:
    """Train on a features folder (train split), select on its valid split, write the weights folder.

    Returns:
        The training summary written into config.json.

    Raises:
        ValueError: Not a features folder, no training samples, or a refused option (the
            config's sources must be exactly ["features"]; text and dims must match the features).
    """
    if tuple(options.sources) != (FEATURES_SOURCE,):
        raise ValueError(f"a features folder is the one source {FEATURES_SOURCE!r}, the config lists "
                         f"{list(options.sources)}: use {FEATURES_CONFIG.name} or set \"sources\": "
                         f"[\"{FEATURES_SOURCE}\"] (and --sources is for curated sources only)")
    data = load_features_data(features)
    trained = train_model(options, data, resume_path=resume_file(out))
    write_weights(out, trained, data.spec)
    return trained.summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None,
                        help=f"training config JSON (default {DEFAULT_CONFIG.name}, with --features "
                        f"{FEATURES_CONFIG.name}, both in training/configs/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="weights folder to write (default weights/miar-v7; required with --features)")
    parser.add_argument("--sources", default=None,
                        help="override the config's sources, e.g. mosi,vader,meld,emodb,taiwan (their source_weights "
                        "are kept; options they give nothing to act on are refused)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--shared", type=Path, default=None, help="team data (default $MIAR_SHARED or ../shared)")
    parser.add_argument("--features", type=Path, default=None, metavar="FEATURES_DIR",
                        help="train on features from 'python -m pipeline extract' (train split, selected on valid) "
                        "instead of the curated sources")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.features is not None and args.out is None:
        parser.error("--features needs --out (a new weights folder)")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    start = time.perf_counter()
    try:
        config = args.config or (FEATURES_CONFIG if args.features is not None else DEFAULT_CONFIG)
        options = TrainOptions.from_json(config)
        overrides: dict[str, Any] = {}
        if args.sources:
            overrides["sources"] = tuple(args.sources.split(","))
            overrides["source_weights"] = {k: w for k, w in options.source_weights.items() if k in overrides["sources"]}
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        if args.seed is not None:
            overrides["seed"] = args.seed
        if overrides:
            options = replace(options, **overrides)
        if args.features is not None:
            train_on_features(options, args.features, args.out)
        else:
            train(options, args.out or DEFAULT_WEIGHTS, shared=args.shared)
    except (ValueError, OSError, CheckpointError, ExtractionError) as e:
        log.error("%s", e)
        return 1
    log.info("done in %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
