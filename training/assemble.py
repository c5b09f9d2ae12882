"""Training data for the one loop: the curated sources, or a features folder.

- ``load_training_data(options)``: the curated sources named in ``options.sources``
  (``SOURCE_MODALITY``), text encoded through ``pipeline.models.Models`` and cached
  (``training.corpora``), audio and vision through the extractors
  (``training.sources``); MOSI dev selects (with MOSEI valid when "mosei" is a
  source). MOSI test is never read here (MOSEI's test split is not in the team's data).
- ``load_features_data(folder)``: a features folder written by ``python -m pipeline extract``
  (format: ``model.feature_store``) as one multimodal source ``"features"`` (its train split);
  its valid split selects. The text encoder, token limit and columns come from its manifest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extractors import face as face_mod
from extractors.text import TEXT_EXTRACTOR_VERSION
from extractors.voice_states import SECOND_PASS, audio_columns, has_states
from model.batch import SampleInput
from model.feature_store import load_split, read_manifest
from model.schema import MODALITIES
from pipeline.config import PipelineConfig
from pipeline.models import Models
from storage.files import sha256_of
from storage.locations import REPO_ROOT
from training import corpora, crema_d
from training import sources as src
from training.loop import NO_CLASS, FeatureSpec, TrainingData, TrainOptions, check_options
from training.soft_targets import blend_labels, read_scores

__all__ = ["SOURCE_MODALITY", "CLASS_SOURCES", "FEATURES_SOURCE", "LABEL_MAPPINGS", "VADER_SPLIT_SEED",
           "TEXT_TRAINING", "training_text", "load_training_data", "load_features_data"]

log = logging.getLogger(__name__)

#: Every curated source a config may name, with the modality it brings.
SOURCE_MODALITY: dict[str, tuple[str, ...]] = {
    "mosi": ("text",), "mosei": ("text",), "vader": ("text",), "sst5": ("text",), "sst5_phrases": ("text",),
    "meld": ("text",), "emodb": ("audio",), "speech_valence": ("audio",), "taiwan": ("vision",),
    "muxspace": ("vision",), "crema_d": ("text", "audio"),
}
#: Sources whose words are neutral by design (CREMA-D's 12 sentences): their label is the
#: voice's, so it trains the fused score and the audio head, and the text head learns 0.
NEUTRAL_TEXT_SOURCES: frozenset[str] = frozenset({"crema_d"})
#: Curated sources with class targets (for ``class_weight``).
CLASS_SOURCES: frozenset[str] = frozenset({"meld"})
#: The one source of a features folder.
FEATURES_SOURCE = "features"
#: How each curated source's labels reach the MOSI scale (recorded in the weights).
LABEL_MAPPINGS: dict[str, Any] = {
    "mosi": "label as is", "mosei": "label as is", "vader": "valence x 0.75 ([-4,4] -> [-3,3])",
    "sst5": "classes 0..4 -> -3, -1.5, 0, 1.5, 3",
    "sst5_phrases": "phrase classes 0..4 -> -3, -1.5, 0, 1.5, 3 (training trees; sampled per length band "
                    + json.dumps(corpora.SST_PHRASE_BANDS) + ")",
    "crema_d": "mean of played emotion x intensity and voice-only crowd vote x (0.5 + level/100); "
               + json.dumps(crema_d.VOICE_VALENCE) + "; text head target 0 (neutral sentences)",
    "meld": "negative/neutral/positive -> class 0/1/2 (aux head)",
    "emodb": src.EMODB_VALENCE, "speech_valence": "valence x 3",
    "taiwan": "rater-weighted " + json.dumps(src.TAIWAN_VALENCE), "muxspace": src.FACE_VALENCE,
}
#: The VADER held-out slice is fixed (seed 0) whatever the training seed, so every run is scored on one slice.
VADER_SPLIT_SEED = 0


#: The labelled text sources, in the order training reads them (MELD, class targets only, is apart).
TEXT_TRAINING: tuple[str, ...] = ("mosi", "mosei", "vader", "sst5", "sst5_phrases")


def training_text(shared: Path | None, names: Sequence[str],
                  loaded: Mapping[str, dict[str, corpora.TextCorpus] | None] | None = None
                  ) -> dict[str, corpora.TextCorpus]:
    """The training corpus of each named text source (``TEXT_TRAINING``), as training reads it.

    The one place that says which split and slice a source trains on (VADER's fixed held-out slice
    excluded); ``loaded`` passes corpora a caller already read (their "train" split is taken).

    Raises:
        ValueError: A name not in ``TEXT_TRAINING``.
    """
    unknown = sorted(set(names) - set(TEXT_TRAINING))
    if unknown:
        raise ValueError(f"text sources {unknown} unknown; expected some of {', '.join(TEXT_TRAINING)}")
    loaders = {
        "mosi": lambda: corpora.load_mosi(shared), "mosei": lambda: corpora.load_mosei(shared),
        "vader": lambda: corpora.load_vader(shared, seed=VADER_SPLIT_SEED),
        "sst5": lambda: corpora.load_sst5(shared), "sst5_phrases": lambda: {"train": corpora.load_sst5_phrases(shared)},
    }
    out = {}
    for name in names:
        splits = (loaded or {}).get(name) or loaders[name]()
        out[name] = splits["train"]
    return out


def _curated_kinds(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {n: SOURCE_MODALITY[n] for n in names if n in SOURCE_MODALITY}


def load_training_data(options: TrainOptions, shared: Path | None = None, cache: Path | None = None) -> TrainingData:
    """Build (or read from the caches) every curated source's training samples and MOSI dev.

    The options are checked first (``loop.option_refusals``), so a config that would be
    refused costs no extraction.

    Args:
        options: The config (its sources and text encoder).
        shared: The team's data folder (default ``storage.locations.shared_dir()``).
        cache: Feature cache root (default ``storage.locations.cache_dir()``).

    Raises:
        ValueError: Unknown source, "mosi" missing, a refused option, or an encoder unlike ``dims.text_dim``.
        FileNotFoundError: A source's files are not under ``shared``.
    """
    unknown = sorted(set(options.sources) - set(SOURCE_MODALITY))
    if "mosi" not in options.sources or unknown:
        raise ValueError(f"sources must include 'mosi' (its dev split selects the epoch) and only "
                         f"{sorted(SOURCE_MODALITY)}; unknown {unknown}")
    check_options(options, _curated_kinds(tuple(SOURCE_MODALITY)), CLASS_SOURCES)
    # The dims decide the audio layout: the descriptors alone, or with Whisper's encoder states.
    with_states = options.dims.audio_dim == len(audio_columns(True))
    samples: dict[str, list[SampleInput]] = {}
    labels: dict[str, np.ndarray] = {}
    classes: dict[str, np.ndarray] = {}
    with Models.load(PipelineConfig(text=options.text), parts=("text",)) as models:
        encoder = models.text_encoder
        assert encoder is not None
        if encoder.dim != options.dims.text_dim:
            raise ValueError(f"text encoder {encoder.name} gives {encoder.dim}-d tokens, dims.text_dim is "
                             f"{options.dims.text_dim}")
        mosi = corpora.load_mosi(shared)
        mosei = corpora.load_mosei(shared) if "mosei" in options.sources else None
        text_corpora = training_text(shared, [n for n in TEXT_TRAINING if n in options.sources],
                                     {"mosi": mosi, "mosei": mosei})
        for name, corpus in text_corpora.items():
            samples[name] = corpora.encode_corpus(corpus, encoder, options.text.max_tokens, cache)
            labels[name] = corpus.labels.astype(np.float32)
            classes[name] = np.full(len(corpus), NO_CLASS, np.int64)
        notes: dict[str, Any] = {"label_mappings": {n: LABEL_MAPPINGS[n] for n in SOURCE_MODALITY}}
        if options.teacher_weight > 0:
            notes["teacher"] = _distil(options, text_corpora, labels)
        if "meld" in options.sources:
            corpus, meld_classes = corpora.load_meld(shared)["train"]
            samples["meld"] = corpora.encode_corpus(corpus, encoder, options.text.max_tokens, cache)
            labels["meld"] = np.full(len(corpus), np.nan, np.float32)  # no regression target
            classes["meld"] = meld_classes
        dev_samples = corpora.encode_corpus(mosi["dev"], encoder, options.text.max_tokens, cache)
        dev_labels, dev_name = mosi["dev"].labels, "MOSI dev (manual transcripts)"
        if mosei is not None:
            dev_samples = dev_samples + corpora.encode_corpus(mosei["valid"], encoder, options.text.max_tokens, cache)
            dev_labels = np.concatenate([dev_labels, mosei["valid"].labels])
            dev_name = "MOSI dev + MOSEI valid"
        if "crema_d" in options.sources:
            folder = crema_d.features_dir(cache, options.text.layers, options.crema_d_states)
            _check_features(folder, options, with_states)
            samples["crema_d"], labels["crema_d"], _ = load_split(folder, "train")
            classes["crema_d"] = np.full(len(samples["crema_d"]), NO_CLASS, np.int64)
            valid, valid_labels, _ = load_split(folder, "valid")
            dev_samples = dev_samples + valid
            dev_labels = np.concatenate([dev_labels, valid_labels])
            dev_name += " + CREMA-D valid actors"
        text_init = encoder.weights_of_layers() if options.dims.text_tune_layers > 0 else None
    loaders = {"emodb": src.load_emodb, "speech_valence": src.load_speech_valence,
               "taiwan": src.load_taiwan, "muxspace": src.load_muxspace}
    for name, load in loaders.items():
        if name in options.sources:
            part = (load(shared, cache, with_states=with_states) if name in ("emodb", "speech_valence")
                    else load(shared, cache))["train"]
            samples[name], labels[name] = list(part.samples), part.labels
            classes[name] = np.full(len(part), NO_CLASS, np.int64)
    spec = FeatureSpec(options.text.encoder, TEXT_EXTRACTOR_VERSION, options.text.max_tokens,
                       audio_columns(with_states), face_mod.COLUMNS, encoder.recorded_layers,
                       options.crema_d_states if with_states else None)
    return TrainingData(
        samples, labels, classes, _curated_kinds(tuple(samples)), dev_samples, dev_labels, dev_name, spec,
        notes=notes, text_init=text_init,
        neutral_text=NEUTRAL_TEXT_SOURCES & set(samples),
    )


def teacher_scores_path(options: TrainOptions) -> Path:
    """The recipe's soft-target file: absolute, or relative to the repository root."""
    path = Path(options.teacher_scores or "")
    return path if path.is_absolute() else REPO_ROOT / path


def _distil(options: TrainOptions, text_corpora: dict[str, corpora.TextCorpus],
            labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Blend the teacher's scores into the text sources' labels in place; what was done, for the summary.

    Raises:
        ValueError: The file is unreadable as soft targets, or scores none of the text sources' texts.
    """
    path = teacher_scores_path(options)
    try:
        scores = read_scores(path)
    except OSError as e:
        raise ValueError(f"teacher_scores {path}: cannot be read ({e}); make it with 'python -m training.teacher "
                         "--scores FILE'") from e
    blended = {}
    for name, corpus in text_corpora.items():
        labels[name], blended[name] = blend_labels(labels[name], corpus.ids, scores.get(name, {}),
                                                   options.teacher_weight)
    if not any(blended.values()):
        raise ValueError(f"teacher_scores {path}: scores none of the training texts of {sorted(text_corpora)}")
    log.info("distilling: %s", ", ".join(f"{n} {k}/{len(text_corpora[n])}" for n, k in blended.items()))
    return {"file": str(options.teacher_scores), "sha256": sha256_of(path), "weight": options.teacher_weight,
            "texts_blended": blended}


def _check_features(folder: Path, options: TrainOptions, with_states: bool) -> None:
    """Refuse a features folder made for other text features or another audio layout.

    Raises:
        ValueError: Missing (with the command that makes it) or unlike the config.
    """
    if not (folder / "manifest.json").is_file():
        raise ValueError(f"{folder}: no CREMA-D features; make them with 'python -m training.crema_d' (resumable)")
    manifest = read_manifest(folder)
    made = (manifest.get("text_encoder"), manifest.get("max_tokens"), manifest.get("text_layers"),
            tuple(manifest.get("audio_columns", ())))
    wanted = (options.text.encoder, options.text.max_tokens, options.text.layers, audio_columns(with_states))
    if made != wanted:
        raise ValueError(f"{folder}: features made with encoder/max_tokens/layers {made[:3]} and "
                         f"{len(made[3])} audio columns, the config wants {wanted[:3]} and {len(wanted[3])}; "
                         "extract them again (python -m training.crema_d --out NEW_FOLDER)")


def load_features_data(folder: Path) -> TrainingData:
    """A features folder as ``TrainingData``: one source ``"features"`` (train split), valid selects.

    The source's modalities are those present in at least one training clip. Without a
    valid split the train split selects (logged as a warning and named in the summary).

    Raises:
        ValueError: Not a features folder of ``model.feature_store.FEATURES_FORMAT``, a manifest
            without encoder, token limit or columns, or no training samples.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    missing = [k for k in ("text_encoder", "text_extractor_version", "max_tokens", "audio_columns",
                           "vision_columns") if k not in manifest]
    if missing:
        raise ValueError(f"{folder}: manifest lacks {missing}; extract the features again")
    train_samples, train_labels, _ = load_split(folder, "train")
    if not train_samples:
        raise ValueError(f"{folder}: no training samples (mode 'train' in label.csv)")
    valid_samples, valid_labels, _ = load_split(folder, "valid")
    if valid_samples:
        select_samples, select_labels, select_name = valid_samples, valid_labels, "the features' valid split"
    else:
        log.warning("%s: no valid split; the epoch is selected on the train split", folder)
        select_samples, select_labels, select_name = train_samples, train_labels, "the features' train split " \
            "(no valid split)"
    kinds = tuple(m for m in MODALITIES
                  if any(v is not None and len(v) for v in (s.modality(m)[0] for s in train_samples)))
    with_states = has_states(manifest["audio_columns"])  # folders before the key held second-pass states
    spec = FeatureSpec(str(manifest["text_encoder"]), str(manifest["text_extractor_version"]),
                       int(manifest["max_tokens"]), tuple(manifest["audio_columns"]),
                       tuple(manifest["vision_columns"]), manifest.get("text_layers"),
                       manifest.get("voice_states_source", SECOND_PASS) if with_states else None)
    notes = {"features": {"folder": str(folder), "dataset": manifest.get("dataset"),
                          "asr_model": manifest.get("asr_model"), "counts": manifest.get("counts")}}
    return TrainingData(
        {FEATURES_SOURCE: train_samples}, {FEATURES_SOURCE: train_labels},
        {FEATURES_SOURCE: np.full(len(train_samples), NO_CLASS, np.int64)}, {FEATURES_SOURCE: kinds},
        select_samples, select_labels, select_name, spec, notes,
    )
