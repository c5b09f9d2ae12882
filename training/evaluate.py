"""Held-out scores of MIAR weights, and peers scored on the same rows.

    python -m training.evaluate [--weights W] [--seeds 0,1,2] [--ablations] [--baseline] [--probes]

- ``--weights W``: every held-out score of one weights folder: MOSI test (manual
  transcripts; MMSA's MAE, Corr, Acc-2 and weighted F1 has-0 / non-0, Acc-7), MOSEI valid
  (the same metrics; the team keeps MOSEI test aside), the VADER held-out slice (Pearson),
  SST-5 dev (MAE, Pearson), MELD test (3-class accuracy of the auxiliary head), EmoDB
  held-out speakers (sign accuracy on clearly positive/negative emotions: happiness vs
  anger, disgust, fear, sadness), speech_valence held-out files (Pearson), Taiwan held-out
  performers and muxspace held-out people (sign accuracy on clearly positive/negative
  photos, |valence| >= 1). A second table gives the neutral band (``|score| <
  model.schema.NEUTRAL_BAND``, the outputs' "neutral") against neutral-rated rows: MOSI test
  and MOSEI valid rows labelled exactly 0, VADER held-out rows with |label| <= 0.25
  (``baselines.VADER_NEUTRAL``); recall (share of neutral rows scored neutral) and precision
  (share of rows scored neutral that are rated neutral), pooled and per set.
- ``--seeds 0,1,2``: trains the config (``--config``, default training/configs/miar-v7.json)
  once per seed with the one training loop into ``<cache>/runs/`` (reused when present),
  then prints mean ± std.
- ``--ablations``: the same for the variants of ``ABLATIONS`` (the shipped config with one change), at
  ``--ablation-epochs``.
- ``--probes``: polarity accuracy of ``--weights`` (default: the shipped weights) on our own
  probe sentences (``tests/data/probe_sentences.csv``), per category, with every miss.
- ``--baseline``: peers of ``--weights`` (default: the shipped weights) on the same rows of
  MOSI test, MOSEI valid, the VADER held-out slice, SST-5 dev and MELD test: VADER
  (``vaderSentiment`` compound x 3), and a ridge regression on frozen, mean-pooled MiniLM-L6
  (all 6 layers) and all-mpnet-base-v2 sentence embeddings, each ridge trained on the
  shipped config's training text (MOSI train + MOSEI train + VADER train + SST-5 train,
  labels on the MOSI scale) with its strength picked on MOSI dev + MOSEI valid. Prints
  every model's scores, then MIAR minus each peer with paired bootstrap 95% intervals (fixed
  seed, 1,000 resamples) for Pearson r and Acc-2 non-0 (MELD: polarity accuracy of the score,
  the same rule for every model). The statistics live in ``training/baselines.py``.
  The first run encodes ~48k sentences with each encoder (MPNet: tens of minutes on 2 CPU
  cores); the features are cached under ``<cache>/text-features``.

Weights and the text encoder are loaded through ``pipeline.models.Models`` (parts "text"
and "miar"), the holder the pipeline itself uses. MOSI test is read here only, never by training.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from extractors.errors import ExtractionError
from extractors.text import TextEncoder, TextOptions
from extractors.voice_states import STATES_SOURCES, has_states, weights_states_source
from model.checkpoint import CheckpointError, LoadedMiar, read_weights_config
from model.feature_store import load_split, read_manifest
from model.metrics import accuracy_rows, mae, mosi_metrics, pearson, roc_auc, sign_accuracy
from model.schema import MODALITIES, NEUTRAL_BAND, sentiment_bin
from pipeline.config import PipelineConfig
from pipeline.models import Models, weights_text_options
from storage.files import write_text_atomic
from storage.locations import cache_dir, shared_dir
from training import baselines as bl
from training import crema_d
from training import sources as src
from training.assemble import VADER_SPLIT_SEED, load_training_data
from training.corpora import (
    TextCorpus,
    encode_corpus,
    load_meld,
    load_mosei,
    load_mosi,
    load_sst5,
    load_vader,
)
from training.loop import TrainOptions, options_key, train_model
from training.train import DEFAULT_CONFIG, resume_file, write_weights

__all__ = ["evaluate_weights", "held_out_text", "text_set_scores", "ridge_peer", "BaselineReport", "run_baseline",
           "format_table", "format_report", "format_baseline", "train_seeds", "ABLATIONS", "COLUMNS",
           "NEUTRAL_COLUMNS", "TEXT_SETS", "PEER_SETS", "RIDGE_PEERS", "main"]

log = logging.getLogger(__name__)

#: Held-out scores in the order they are printed: (key, header, percent?).
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("mosi_mae", "MAE", False), ("mosi_corr", "Corr", False), ("mosi_acc2_has0", "Acc2h0", True),
    ("mosi_f1_has0", "F1h0", True), ("mosi_acc2_non0", "Acc2n0", True), ("mosi_f1_non0", "F1n0", True),
    ("mosi_acc7", "Acc7", True),
    ("mosei_mae", "MOSEI MAE", False), ("mosei_corr", "MOSEI Corr", False),
    ("mosei_acc2_has0", "MOSEI Acc2h0", True), ("mosei_acc2_non0", "MOSEI Acc2n0", True),
    ("mosei_f1_non0", "MOSEI F1n0", True), ("mosei_acc7", "MOSEI Acc7", True),
    ("vader_corr", "VADERr", False), ("sst5_corr", "SST5r", False),
    ("meld_acc3", "MELD3", True), ("emodb_sign", "EmoDB", True), ("emodb_balanced", "EmoDB bal", True),
    ("speech_valence_corr", "SpVal r", False), ("taiwan_sign", "Taiwan", True), ("taiwan_balanced", "Taiwan bal", True),
    ("muxspace_sign", "muxsp", True), ("muxspace_balanced", "muxsp bal", True),
    ("emodb_voice_auc", "EmoDB AUC", True),
    ("crema_voice_auc", "CREMA voice AUC", True), ("crema_voice_balanced", "CREMA voice bal", True),
    ("crema_fused_auc", "CREMA fused AUC", True), ("crema_fused_balanced", "CREMA fused bal", True),
    ("crema_neutral_in_band", "CREMA neutral in band", True),
    ("crema_sel_voice_auc", "CREMA sel voice AUC", True), ("crema_sel_voice_balanced", "CREMA sel voice bal", True),
    ("crema_sel_fused_auc", "CREMA sel fused AUC", True),
)
#: Version of the scores cached beside a run (``scores-v<N>-<sets>.json``): raised when the
#: scores gain a column, so cached runs are scored again rather than printed with a gap.
SCORES_VERSION = 2
#: Text held-out sets ``evaluate_weights`` scores by default.
TEXT_SETS: tuple[str, ...] = ("mosi", "mosei", "vader", "sst5", "meld")
#: Held-out text set -> what the tables call it (the split is part of the name).
SET_TITLES: dict[str, str] = {"mosi": "MOSI test", "mosei": "MOSEI valid", "vader": "VADER held-out",
                              "sst5": "SST-5 dev", "meld": "MELD test"}
#: Sets with neutral-rated rows (``baselines.neutral_rows``), in the order of the neutral table.
NEUTRAL_SETS: tuple[str, ...] = ("mosi", "mosei", "vader")
#: The neutral-band table: pooled over the sets scored, then per set.
NEUTRAL_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("neutral_recall", "recall", True), ("neutral_precision", "precision", True),
    *((f"neutral_{name}_{kind}", f"{SET_TITLES[name].split()[0]} {kind[0].upper()}", True)
      for name in NEUTRAL_SETS for kind in ("recall", "precision")),
)
#: Sets the peers of ``--baseline`` are compared on.
PEER_SETS: tuple[str, ...] = ("mosi", "mosei", "vader", "sst5", "meld")
#: Frozen-encoder ridge peers: row name -> the encoder they read (every layer: ``layers=None``).
RIDGE_PEERS: dict[str, TextOptions] = {
    "ridge MiniLM-L6": TextOptions(encoder="all-MiniLM-L6-v2", layers=None),
    "ridge MPNet": TextOptions(encoder="all-mpnet-base-v2", layers=None),
}
#: Overrides that turn off what text-only sources give nothing to act on (the loop refuses them otherwise):
#: mixing and modality dropout need audio or vision, the alignment loss two modalities.
TEXT_ONLY: dict[str, Any] = {"mix_rate": 0.0, "modality_dropout": 0.0, "align_weight": 0.0}
#: Without MELD there is no class target: no class loss, no class head ("dims": {"n_classes": 0}).
NO_CLASSES: dict[str, Any] = {"class_weight": 0.0}
#: The shipped config without CREMA-D: the source and the options that need it.
WITHOUT_CREMA_D: dict[str, Any] = {
    "sources": ("mosi", "mosei", "vader", "sst5", "sst5_phrases", "meld", "taiwan", "muxspace"),
    "neutral_voice_rate": 0.0, "neutral_text_dropout": None, "polarity_balanced": (), "modality_dropout": 0.0,
}
#: The shipped config on its text sources alone (MELD's classes included): the quick bench for text-path
#: changes, a fraction of a full run's cost, whose text figures carried to the full recipe before
#: (miar-v4's tuned depth was chosen on "without CREMA-D" and held with it).
TEXT_SOURCES_ONLY: dict[str, Any] = {
    "sources": ("mosi", "mosei", "vader", "sst5", "sst5_phrases", "meld"),
    "neutral_voice_rate": 0.0, "neutral_text_dropout": None, "polarity_balanced": (), **TEXT_ONLY,
}
#: The MPNet teacher's scores on the training text (``python -m training.teacher --scores``), kept in the repository.
TEACHER_SCORES = "training/data/teacher-mpnet-top4.csv.gz"
#: Distillation from it: half label, half teacher on every text it scored.
DISTILLED: dict[str, Any] = {"teacher_scores": TEACHER_SCORES, "teacher_weight": 0.5}
#: Ablation variants: name -> (description, overrides of TrainOptions fields; "dims"/"text" merge).
#: Each is the shipped config with one change, except those named after an earlier release: they are
#: that release's recipe (its 8 epochs included), so that its cached runs are read, not trained again.
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "shipped (miar-v7)": ("the config as is", {}),
    "8 epochs (miar-v5)": (
        "8 epochs instead of 10, the rest alike: = training/configs/miar-v5.json, shipped before miar-v7 (issue 21: "
        "more epochs, measured both ways)", {"epochs": 8}),
    "voice states kept from transcription (miar-v6)": (
        "CREMA-D's voice states kept from Whisper's own transcription pass instead of a second encoder pass over "
        "each clip, so that inference does not encode the audio twice (issue 19: cost), at miar-v5's 8 epochs; = "
        "training/configs/miar-v6.json, measured and not shipped",
        {"crema_d_states": "transcription pass", "epochs": 8}),
    "4 text layers tuned (miar-v4)": (
        "the top 4 MiniLM layers fine-tuned over the extractor's states after layer 2, at 8 epochs, as in miar-v4 "
        "(issue 21: more tuned layers, measured both ways)",
        {"text": {"layers": 2}, "dims": {"text_tune_layers": 4}, "epochs": 8}),
    "without SST phrases": ("the SST phrase source left out (issue: phrase-level supervision, with/without)",
                            {"sources": ("mosi", "mosei", "vader", "sst5", "meld", "crema_d", "taiwan",
                                         "muxspace")}),
    "SST phrases at 0.20 of each batch": (
        "the treebank's phrase labels (composition, negation) drawn 2.5 times as often, the share taken from MOSEI "
        "(issue 21: does more phrase supervision move negation once every layer is tuned?)",
        {"source_weights": {"mosi": 0.13, "mosei": 0.18, "vader": 0.15, "sst5": 0.06, "sst5_phrases": 0.20,
                            "meld": 0.05, "crema_d": 0.16, "taiwan": 0.04, "muxspace": 0.03}}),
    "without CREMA-D": ("the CREMA-D source left out, with the options that act on it", WITHOUT_CREMA_D),
    "distilled from the MPNet teacher": (
        "every text-source label blended half and half with the MPNet teacher's score (training.teacher; "
        "issue 21: a bigger teacher distilled into the shipped size)", DISTILLED),
    "text sources only": ("the text sources alone (MOSI, MOSEI, VADER, SST-5 and its phrases, MELD's classes): "
                          "the quick bench for text-path changes", TEXT_SOURCES_ONLY),
    "text sources only (MPNet teacher distilled)": (
        "'text sources only' with the MPNet teacher distilled as in 'distilled from the MPNet teacher'",
        {**TEXT_SOURCES_ONLY, **DISTILLED}),
    "text sources only (MPNet teacher's scores alone)": (
        "'text sources only' with every text the teacher scored learning its score instead of the label "
        "(teacher_weight 1)", {**TEXT_SOURCES_ONLY, **DISTILLED, "teacher_weight": 1.0}),
    "4 text layers tuned without CREMA-D": (
        "miar-v4's reader without CREMA-D: read against 'without CREMA-D' (how the tuned depth was first "
        "measured, before CREMA-D's features were made at depth 0)",
        {**WITHOUT_CREMA_D, "text": {"layers": 2}, "dims": {"text_tune_layers": 4}}),
}
#: Variants scored on MOSI test only (their encoder's features for the other text sets are not cached).
MOSI_ONLY_EVAL: frozenset[str] = frozenset()


def _models_config(weights: Path) -> PipelineConfig:
    """A pipeline config whose text encoder, token limit and depth are those the weights were trained with
    (``pipeline.models.weights_text_options``, the rule ``Models.load`` applies)."""
    return PipelineConfig(text=weights_text_options(read_weights_config(weights)), weights_dir=weights)


def held_out_text(shared: Path | None, names: tuple[str, ...]) -> dict[str, tuple[TextCorpus, np.ndarray | None]]:
    """The held-out text sets by name (``SET_TITLES``): corpus and, for MELD, its class ids (else None).

    Raises:
        ValueError: An unknown set name.
        OSError: A corpus file is missing.
    """
    out: dict[str, tuple[TextCorpus, np.ndarray | None]] = {}
    for name in names:
        if name == "mosi":
            out[name] = (load_mosi(shared)["test"], None)
        elif name == "mosei":
            out[name] = (load_mosei(shared)["valid"], None)
        elif name == "vader":
            out[name] = (load_vader(shared, seed=VADER_SPLIT_SEED)["dev"], None)
        elif name == "sst5":
            out[name] = (load_sst5(shared)["dev"], None)
        elif name == "meld":
            out[name] = load_meld(shared)["test"]
        else:
            raise ValueError(f"unknown held-out text set {name!r}; expected some of {', '.join(SET_TITLES)}")
    return out


def text_set_scores(held: dict[str, tuple[TextCorpus, np.ndarray | None]],
                    preds: dict[str, np.ndarray]) -> dict[str, float]:
    """The text columns of ``COLUMNS`` and ``NEUTRAL_COLUMNS`` of one model's scores on the held-out sets.

    MELD's 3-class accuracy is not here: for MIAR it is the class head's (``_scores``), which
    a peer does not have. Pooled neutral figures count every neutral-rated row of the sets given.
    """
    scores: dict[str, float] = {}
    for name in ("mosi", "mosei"):
        if name in held:
            for key, value in mosi_metrics(preds[name], held[name][0].labels).as_dict().items():
                if key != "n":
                    scores[f"{name}_{key}"] = value
    if "vader" in held:
        scores["vader_corr"] = pearson(preds["vader"], held["vader"][0].labels)
    if "sst5" in held:
        scores["sst5_corr"] = pearson(preds["sst5"], held["sst5"][0].labels)
        scores["sst5_mae"] = mae(preds["sst5"], held["sst5"][0].labels)
    pooled_pred, pooled_neutral = [], []
    for name in NEUTRAL_SETS:
        if name not in held:
            continue
        neutral = bl.neutral_rows(name, held[name][0].labels)
        band = bl.neutral_band(preds[name], neutral)
        scores[f"neutral_{name}_recall"], scores[f"neutral_{name}_precision"] = band.recall, band.precision
        scores[f"neutral_{name}_n"] = float(band.n_neutral)
        pooled_pred.append(preds[name])
        pooled_neutral.append(neutral)
    if pooled_pred:
        band = bl.neutral_band(np.concatenate(pooled_pred), np.concatenate(pooled_neutral))
        scores["neutral_recall"], scores["neutral_precision"] = band.recall, band.precision
        scores["neutral_n"] = float(band.n_neutral)
    return scores


def _evaluate(
    weights: Path, shared: Path | None, cache: Path | None, text_sets: tuple[str, ...],
    crema_d_states: str | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Scores of a weights folder and its text predictions per held-out text set."""
    shared = shared or shared_dir()
    config = _models_config(Path(weights))
    with Models.load(config, parts=("text", "miar")) as models:
        assert models.text_encoder is not None and models.miar is not None
        return _scores(models.miar, models.text_encoder, config.text.max_tokens, shared, cache, text_sets,
                       crema_d_states)


def evaluate_weights(
    weights: Path, shared: Path | None = None, cache: Path | None = None, text_sets: tuple[str, ...] = TEXT_SETS,
    crema_d_states: str | None = None,
) -> dict[str, float]:
    """Every held-out score of a weights folder (keys of ``COLUMNS`` and ``NEUTRAL_COLUMNS``; NaN or absent
    where the modality was never trained or the set not asked for).

    Args:
        weights: The weights folder.
        shared: Team data.
        cache: Feature cache root.
        text_sets: Text held-out sets to score ("mosi" always).
        crema_d_states: Score CREMA-D on the features whose voice states come from this source
            (``extractors.voice_states.STATES_SOURCES``) instead of the one the weights were trained on:
            how older weights read what the pipeline computes now.

    Raises:
        CheckpointError: The weights cannot be loaded.
    """
    return _evaluate(weights, shared, cache, text_sets, crema_d_states)[0]


def _scores(miar: LoadedMiar, encoder: TextEncoder, max_tokens: int, shared: Path, cache: Path | None,
            text_sets: tuple[str, ...], crema_d_states: str | None = None,
            ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    held = held_out_text(shared, ("mosi", *(s for s in text_sets if s != "mosi")))
    preds: dict[str, np.ndarray] = {}
    scores: dict[str, float] = {}
    for name, (corpus, classes) in held.items():
        samples = encode_corpus(corpus, encoder, max_tokens, cache)
        preds[name] = np.asarray(miar.predict(samples), np.float64)
        if name == "meld":
            assert classes is not None
            probs = miar.class_probabilities(samples)
            # no class head: the polarity the outputs would print
            guess = probs.argmax(axis=1) if probs.shape[1] else np.array([sentiment_bin(float(p)) for p in preds[name]])
            scores["meld_acc3"] = float(accuracy_rows(classes, guess))
    scores.update(text_set_scores(held, preds))
    with_states = has_states(miar.config.get("audio_columns"))
    for name, load, metric in (("emodb", src.load_emodb, "sign"), ("speech_valence", src.load_speech_valence, "corr"),
                               ("taiwan", src.load_taiwan, "sign"), ("muxspace", src.load_muxspace, "sign")):
        modality = "audio" if name in ("emodb", "speech_valence") else "vision"
        if modality not in miar.modalities:
            continue
        parts = load(shared, cache, with_states=with_states) if modality == "audio" else load(shared, cache)
        held_media = parts["test"]
        pred = miar.predict(list(held_media.samples))
        if name == "emodb":
            clear = np.abs(held_media.labels) >= 1.5
            scores["emodb_voice_auc"] = roc_auc(pred[clear], held_media.labels[clear] > 0)
        clear = 1.5 if name == "emodb" else 1.0
        if metric == "sign":
            scores[f"{name}_sign"] = sign_accuracy(pred, held_media.labels, clear)
            scores[f"{name}_balanced"] = sign_accuracy(pred, held_media.labels, clear, balanced=True)
        else:
            scores[f"{name}_corr"] = pearson(pred, held_media.labels)
    if "audio" in miar.modalities:
        scores.update(crema_d_scores(miar, cache, states=crema_d_states))
        # the selection actors (ids ending in 3), which choose configs: "sel" columns
        scores.update({f"crema_sel_{k.removeprefix('crema_')}": v
                       for k, v in crema_d_scores(miar, cache, split="valid", states=crema_d_states).items()
                       if k in ("crema_voice_auc", "crema_voice_balanced", "crema_fused_auc")})
    return scores, preds


#: CREMA-D clip-name emotion codes: happy against the four negative emotions, and neutral.
CREMA_HAPPY, CREMA_NEGATIVE, CREMA_NEUTRAL = "HAP", ("ANG", "DIS", "FEA", "SAD"), "NEU"


def crema_d_folder(miar: LoadedMiar, cache: Path | None = None, states: str | None = None) -> Path:
    """The CREMA-D features folder the weights are scored on: of their text depth, and with the voice
    states their training read (``TrainOptions.crema_d_states``; weights from before that option read
    the second pass) unless ``states`` names the other source."""
    return crema_d.features_dir(cache, miar.text_layers, states or weights_states_source(miar.config))


def crema_d_scores(miar: LoadedMiar, cache: Path | None = None, split: str = "test",
                   states: str | None = None) -> dict[str, float]:
    """Voice and fused readings on the held-out CREMA-D actors (``training.crema_d``: ids that are
    multiples of 5), from the features ``python -m training.crema_d`` made through the stage sequence.

    By the emotion each actor played (the words are neutral in every clip): ``voice_score`` (the
    network fed the voice alone, ``LoadedMiar.predict_readings``) and the fused sentiment, each as
    the AUC of happy against anger, disgust, fear and sadness and as balanced sign accuracy
    (happy > 0, negative < 0; the mean of both sides); and the share of neutral takes whose fused
    score is inside the neutral band. Weights that read the 34 descriptors only get those columns
    (the first 34 of the features). Empty when the features are not there.
    """
    folder = crema_d_folder(miar, cache, states)
    if not (folder / "manifest.json").is_file():
        log.warning("no CREMA-D features in %s (python -m training.crema_d): CREMA-D not scored", folder)
        return {}
    manifest = read_manifest(folder)
    made = (manifest.get("text_encoder"), manifest.get("text_layers"))
    if made != (miar.text_encoder, miar.text_layers):
        # The words' states would be of another encoder or depth than the weights read: silently wrong scores.
        log.warning("CREMA-D features in %s are text %s at depth %s, the weights read %s at depth %s: "
                    "CREMA-D not scored", folder, made[0], made[1], miar.text_encoder, miar.text_layers)
        return {}
    samples, _, keys = load_split(folder, split)
    width = len(miar.config.get("audio_columns", ()))
    samples = [replace(s, audio=s.audio[:, :width]) if s.audio is not None else s for s in samples]
    emotion = np.array([key.rsplit("/", 1)[-1].split("_")[2] for key in keys])
    happy, negative = emotion == CREMA_HAPPY, np.isin(emotion, CREMA_NEGATIVE)
    polar = happy | negative
    sign = np.where(happy, 1.0, -1.0)[polar]
    voice = miar.predict_readings(samples)[:, MODALITIES.index("audio")]
    fused = np.asarray(miar.predict(samples), np.float64)
    return {
        "crema_voice_auc": roc_auc(voice[polar], happy[polar]),
        "crema_voice_balanced": sign_accuracy(voice[polar], sign, 0.5, balanced=True),
        "crema_fused_auc": roc_auc(fused[polar], happy[polar]),
        "crema_fused_balanced": sign_accuracy(fused[polar], sign, 0.5, balanced=True),
        "crema_neutral_in_band": float(np.mean(np.abs(fused[emotion == CREMA_NEUTRAL]) < NEUTRAL_BAND)),
        "crema_n": float(len(samples)),
    }


#: The ridge peers' training text by default: the shipped config's regression text.
RIDGE_TEXT: tuple[str, ...] = ("mosi", "mosei", "vader", "sst5")


def _ridge_text(shared: Path | None, sources: tuple[str, ...] = RIDGE_TEXT) -> tuple[list[TextCorpus],
                                                                                   list[TextCorpus]]:
    """The ridge peers' training text (``sources``' train splits; by default the shipped config's: MOSI, MOSEI,
    VADER, SST-5) and selection sets (MOSI dev, MOSEI valid)."""
    unknown = sorted(set(sources) - set(RIDGE_TEXT))
    if unknown or "mosi" not in sources:
        raise ValueError(f"ridge text {list(sources)}: 'mosi' and only {list(RIDGE_TEXT)}")
    mosi, mosei = load_mosi(shared), load_mosei(shared)
    loaders = {"mosi": lambda: mosi["train"], "mosei": lambda: mosei["train"],
               "vader": lambda: load_vader(shared, seed=VADER_SPLIT_SEED)["train"],
               "sst5": lambda: load_sst5(shared)["train"]}
    return [loaders[name]() for name in RIDGE_TEXT if name in sources], [mosi["dev"], mosei["valid"]]


def ridge_peer(
    options: TextOptions, held: dict[str, tuple[TextCorpus, np.ndarray | None]], shared: Path | None = None,
    cache: Path | None = None, text: tuple[str, ...] = RIDGE_TEXT,
) -> tuple[bl.RidgeFit, dict[str, np.ndarray]]:
    """A ridge on frozen, mean-pooled sentence embeddings of ``options.encoder``, and its scores on ``held``.

    Trained on ``_ridge_text``'s training sets, strength picked there on the selection sets
    (``baselines.fit_ridge``). Token features go through ``corpora.encode_corpus``, so each
    corpus is encoded once per encoder and read from the cache afterwards.

    Raises:
        ExtractionError: The encoder cannot be loaded.
        OSError: A corpus file is missing.
    """
    train, selection = _ridge_text(shared, text)
    pooled: dict[tuple[str, str], np.ndarray] = {}
    # a bulk encoding of ~48k sentences: every core (the pipeline's default of one thread suits short clips)
    with Models.load(PipelineConfig(text=options, torch_threads=os.cpu_count() or 1), parts=("text",)) as models:
        assert models.text_encoder is not None
        encoder = models.text_encoder

        def embed(corpus: TextCorpus) -> np.ndarray:
            key = (corpus.name, corpus.split)
            if key not in pooled:
                pooled[key] = bl.mean_pooled(encode_corpus(corpus, encoder, options.max_tokens, cache))
            return pooled[key]

        x_train = np.concatenate([embed(c) for c in train])
        y_train = np.concatenate([c.labels for c in train])
        fit = bl.fit_ridge(x_train, y_train, [(embed(c), c.labels) for c in selection])
        del x_train
        preds = {name: fit.predict(embed(corpus)) for name, (corpus, _) in held.items()}
    if fit.at_edge:
        log.warning("%s: ridge strength %g is at the edge of %s", options.encoder, fit.alpha, bl.RIDGE_ALPHAS)
    log.info("%s: ridge alpha %g (selection MAE %.3f)", options.encoder, fit.alpha, fit.selection_mae[fit.alpha])
    return fit, preds


@dataclass(frozen=True)
class BaselineReport:
    """What ``--baseline`` prints.

    Attributes:
        reference: The MIAR row's name ("MIAR miar-v1").
        scores: Model -> its ``COLUMNS`` / ``NEUTRAL_COLUMNS`` scores (MIAR's has every held-out score).
        comparison: Every model on the same rows, with MIAR-minus-peer intervals.
        alphas: Ridge peer -> the strength its selection picked.
        ridge_text: The ridges' training text, e.g. "MOSI+MOSEI+VADER+SST-5".
    """

    reference: str
    scores: dict[str, dict[str, float]]
    comparison: bl.PeerComparison
    alphas: dict[str, float]
    ridge_text: str = "MOSI+MOSEI+VADER+SST-5"


def run_baseline(weights: Path, shared: Path | None = None, cache: Path | None = None,
                 peers: tuple[str, ...] = ("VADER", *RIDGE_PEERS), sets: tuple[str, ...] = PEER_SETS,
                 ridge_text: tuple[str, ...] = RIDGE_TEXT) -> BaselineReport:
    """MIAR ``weights`` and its peers (``peers``: "VADER" and names of ``RIDGE_PEERS``) on the rows of ``sets``,
    the ridges trained on ``ridge_text``'s train splits.

    Raises:
        CheckpointError: The weights cannot be loaded.
        ExtractionError: An encoder cannot be loaded.
        BaselineError: VADER is asked for and vaderSentiment is not installed.
        OSError: A corpus file is missing.
    """
    shared = shared or shared_dir()
    if "VADER" in peers:
        bl.vader_scores(["check"])  # fail before the long encodings, not after them
    held = held_out_text(shared, sets)
    reference = f"MIAR {Path(weights).name}"
    miar_scores, miar_preds = _evaluate(Path(weights), shared, cache, sets)
    predictions: dict[str, dict[str, np.ndarray]] = {reference: miar_preds}
    scores: dict[str, dict[str, float]] = {reference: miar_scores}
    alphas: dict[str, float] = {}
    for peer in peers:
        start = time.perf_counter()
        if peer == "VADER":
            predictions[peer] = {name: bl.vader_scores(corpus.texts) for name, (corpus, _) in held.items()}
        else:
            fit, predictions[peer] = ridge_peer(RIDGE_PEERS[peer], held, shared, cache, ridge_text)
            alphas[peer] = fit.alpha
        scores[peer] = text_set_scores(held, predictions[peer])
        log.info("%s: done in %.0f s", peer, time.perf_counter() - start)
    peer_sets = [bl.PeerSet(name, SET_TITLES[name], held[name][0].labels if classes is None else classes,
                       is_classes=classes is not None) for name, (_, classes) in held.items()]
    return BaselineReport(reference, scores, bl.compare_peers(peer_sets, predictions, reference), alphas,
                          "+".join(SET_TITLES[name].split()[0] for name in ridge_text))


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
        folder = root / options_key(options)[:16]
        scores_path = folder / f"scores-v{SCORES_VERSION}-{'-'.join(text_sets)}.json"
        if scores_path.is_file():
            with open(scores_path, encoding="utf-8") as f:
                results.append(json.load(f))
            continue
        if not (folder / "model.pt").is_file():
            key = (options.sources, options.text)
            if data is None or key != data_key:
                data, data_key = load_training_data(options, shared, cache), key
            trained = train_model(options, data, log_every_epoch=False, resume_path=resume_file(folder))
            write_weights(folder, trained, data.spec)
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


def format_table(rows: dict[str, list[dict[str, float]]],
                 columns: tuple[tuple[str, str, bool], ...] = COLUMNS) -> str:
    """Markdown table: one row per model, mean ± std (population) over its runs; accuracies in percent.

    ``columns``: ``(key, header, percent?)`` per column (``COLUMNS``, or ``NEUTRAL_COLUMNS`` for the
    neutral band); a key a run lacks prints "-".
    """
    header = "| model | " + " | ".join(h for _, h, _ in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for name, runs in rows.items():
        cells = [_cell([r.get(k, float("nan")) for r in runs], pct) for k, _, pct in columns]
        lines.append(f"| {name} (n={len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_report(rows: dict[str, list[dict[str, float]]]) -> str:
    """The held-out table, then the neutral-band table for the rows that have neutral figures."""
    out = ["Held-out scores (MOSI test = manual transcripts; MOSEI = valid split; accuracies in %; "
           "mean±std over runs)", format_table(rows)]
    neutral = {name: runs for name, runs in rows.items() if any("neutral_recall" in r for r in runs)}
    if neutral:
        out += ["", f"Neutral band (|score| < {NEUTRAL_BAND}) on neutral-rated rows (MOSI test and MOSEI valid: "
                f"label 0; VADER held-out: |label| <= {bl.VADER_NEUTRAL}); R = recall, P = precision, in %",
                format_table(neutral, NEUTRAL_COLUMNS)]
    return "\n".join(out)


def format_baseline(report: BaselineReport) -> str:
    """The peer tables of ``--baseline`` with the ridge strengths picked."""
    alphas = ", ".join(f"{peer} alpha {alpha:g}" for peer, alpha in report.alphas.items())
    return "\n".join([
        f"Peers on the same rows ({alphas}; ridges trained on {report.ridge_text} train, alpha picked on "
        "MOSI dev + MOSEI valid; MELD: polarity of the score for every model; accuracies in %)",
        bl.format_peer_tables(report.comparison)])


def _probe_text(weights: Path | None) -> str:
    """The probe report of a weights folder (default: the shipped one) as printable lines."""
    from pipeline.text_scoring import TextScorer
    from training.probes import load_probes, probe_report

    config = PipelineConfig().with_overrides(weights_dir=weights)
    probes = load_probes()
    with TextScorer.load(config) as scorer:
        report = probe_report(probes, scorer.score([p.text for p in probes]))
    lines = [f"probes ({config.weights_dir.name}): {report.accuracy:.1%} of {len(probes)} with the expected polarity"]
    lines += [f"  {category:16s} {right}/{total}" for category, (right, total) in report.by_category.items()]
    lines += [f"  miss {score:+.2f} (expected {probe.expected}): {probe.text}" for score, probe in report.misses]
    return "\n".join(lines)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=__doc__.splitlines()[0],
        epilog="Any of --weights, --seeds, --ablations, --baseline, --probes; each adds its rows or tables. "
               "Results go to stdout, progress (-v) and errors to stderr; exit 0 on success, 1 on an error "
               "(one line). Features are cached under $MIAR_CACHE or ~/.cache/miar.")
    parser.add_argument("--weights", type=Path, default=None,
                        help="score this weights folder on every held-out set (table row named after the folder); "
                             "also the MIAR that --baseline and --probes use (default there: the shipped weights)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="training config of --seeds and --ablations "
                             f"(default training/configs/{DEFAULT_CONFIG.name})")
    parser.add_argument("--seeds", default=None,
                        help="train --config once per seed (cached under <cache>/runs, reused when present) and "
                             "print mean±std of every held-out score, e.g. 0,1,2; also the seeds of --ablations "
                             "(default there 0,1,2)")
    parser.add_argument("--ablations", action="store_true",
                        help="train and score every ablation variant (evaluate.ABLATIONS) and the full config, "
                             "each at --ablation-epochs and every seed")
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="with --ablations: only these variants (comma-separated names of ABLATIONS)")
    parser.add_argument("--ablation-epochs", type=int, default=None,
                        help="epochs of every ablation run (default: the config's)")
    parser.add_argument("--baseline", action="store_true",
                        help="compare MIAR (--weights, default the shipped weights) with VADER and ridges on frozen "
                             "MiniLM-L6 and all-mpnet-base-v2 embeddings on the same rows of MOSI test, MOSEI "
                             "valid, VADER held-out, SST-5 dev and MELD test, with paired bootstrap 95%% "
                             f"intervals ({bl.BOOTSTRAP_RESAMPLES} resamples, seed {bl.BOOTSTRAP_SEED}); needs "
                             "requirements-train.txt; the first run encodes ~48k sentences per encoder (MPNet: "
                             "tens of minutes on 2 cores), cached afterwards")
    parser.add_argument("--peers", default=",".join(("VADER", *RIDGE_PEERS)),
                        help="with --baseline: the peers to compare, comma-separated (default: all: "
                             f"{', '.join(('VADER', *RIDGE_PEERS))})")
    parser.add_argument("--peer-sets", default=",".join(PEER_SETS),
                        help=f"with --baseline: the held-out sets compared (default: {','.join(PEER_SETS)})")
    parser.add_argument("--ridge-text", default=",".join(RIDGE_TEXT),
                        help=f"with --baseline: the ridges' training text (default: the shipped config's, "
                             f"{','.join(RIDGE_TEXT)}; 'mosi' required)")
    parser.add_argument("--probes", action="store_true",
                        help="polarity accuracy of --weights (default: shipped) on tests/data/probe_sentences.csv, "
                             "per category, with every miss")
    parser.add_argument("--crema-d-states", choices=STATES_SOURCES, default=None,
                        help="with --weights: score CREMA-D on features whose voice states come from this pass, not "
                             "the one the weights trained on (how older weights read what the pipeline computes now)")
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
    baseline: BaselineReport | None = None
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [0, 1, 2]
        if args.baseline:  # scores --weights on the way, so it is not scored twice
            peers = tuple(p.strip() for p in args.peers.split(",") if p.strip())
            unknown = sorted(set(peers) - {"VADER", *RIDGE_PEERS})
            if unknown:
                raise ValueError(f"--peers: unknown {unknown}; choose from VADER, {', '.join(RIDGE_PEERS)}")
            baseline = run_baseline(args.weights or PipelineConfig().weights_dir, shared, peers=peers,
                                    sets=_names(args.peer_sets), ridge_text=_names(args.ridge_text))
            rows.update({name: [scores] for name, scores in baseline.scores.items()})
        elif args.weights is not None:
            name = args.weights.name + (f" (CREMA-D states: {args.crema_d_states})" if args.crema_d_states else "")
            rows[name] = [evaluate_weights(args.weights, shared, crema_d_states=args.crema_d_states)]
        if args.seeds and not args.ablations:
            rows[f"{args.config.stem} seeds {args.seeds}"] = train_seeds(args.config, seeds, shared=shared)
        if args.ablations:
            chosen = [n.strip() for n in args.only.split(",")] if args.only else list(ABLATIONS)
            unknown = sorted(set(chosen) - set(ABLATIONS))
            if unknown:
                raise ValueError(f"--only: unknown ablations {unknown}; choose from {sorted(ABLATIONS)}")
            for name, (_, overrides) in ((n, ABLATIONS[n]) for n in chosen):
                text_sets = ("mosi",) if name in MOSI_ONLY_EVAL else TEXT_SETS
                rows[name] = train_seeds(args.config, seeds, overrides, args.ablation_epochs, shared=shared,
                                         text_sets=text_sets)
                log.info("%s: done (%.0f s)", name, time.perf_counter() - start)  # progress: stderr, not results
    except (CheckpointError, ExtractionError, bl.BaselineError, OSError, ValueError) as e:
        log.error("%s", e)
        return 1
    if not rows:
        log.error("nothing to do: give --weights, --seeds, --ablations, --baseline or --probes")
        return 1
    sys.stdout.write(format_report(rows) + "\n")
    if baseline is not None:
        sys.stdout.write("(peer rows: MELD3 is MIAR's class head only; the peer tables compare every model by the "
                         "polarity of its score)\n\n" + format_baseline(baseline) + "\n")
    if args.ablations:
        sys.stdout.write(f"(ablation runs: {args.ablation_epochs or 'the config'}'s epochs each, seeds {seeds})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
