"""The one training loop of MIAR, for the curated sources and for a features folder alike.

``train_model(options, data)`` takes a ``TrainingData`` (samples by source, each source
with the modalities it brings, plus a selection set) and a ``TrainOptions`` (the JSON
config). ``training.assemble`` builds the data: from the curated sources (MOSI,
VADER, SST-5, MELD, EmoDB, speech_valence, faces; MOSI dev selects) or from a features
folder written by ``python -m pipeline extract`` (one multimodal source "features"; its
valid split selects). Each step:

- draws a batch by source-balanced sampling (``source_weights``; ``epoch_size`` samples
  per epoch, or one pass's worth when it is null);
- masks ``token_dropout`` of the text tokens of every sample that has text;
- gives a ``mix_rate`` share of the samples of text-only sources a random audio and
  vision sample of the audio-only / vision-only sources, each kept with probability
  1 - ``modality_dropout``; the label stays the text's (data without co-present
  modalities then still shows the fusion head every pattern of presence);
- drops each of audio and vision of a sample that has them *with* its text (a features
  folder) with probability ``modality_dropout`` (classic modality dropout); for a source whose
  words are neutral by design (``TrainingData.neutral_text``: CREMA-D) it drops the text
  instead, since the label is the voice's;
- loss: L1 of the fused score + ``modality_head_weight`` x L1 of each present modality's
  own head + ``align_weight`` x cross-modal sentiment-bin contrastive alignment
  (``model.miar.sentiment_alignment_loss``; bins from ``model.schema.sentiment_bin``) +
  ``class_weight`` x cross-entropy of the class targets (MELD);
- AdamW, linear warm-up over the first epoch, cosine decay to 0 (``lr`` is the peak).

After every epoch the selection set is scored; the epoch with the lowest MAE is kept.

Every option either acts or is refused (``ValueError`` naming each offending key, before
any training): a loss term, augmentation or head that the data gives nothing to act on
is an error, not a silent no-op. See ``option_refusals`` and ``data_refusals``.
Seeds are fixed (Python, NumPy, torch) and torch uses ``threads`` CPU threads, so a run on
one machine repeats bit for bit.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from extractors.text import TextOptions
from extractors.voice_states import SECOND_PASS, STATES_SOURCES
from model.batch import ModalityStats, SampleInput, collate
from model.metrics import MosiMetrics, mosi_metrics
from model.miar import Miar, MiarDims, sentiment_alignment_loss
from model.schema import MODALITIES, POLARITIES, polarity_of, sentiment_bin
from storage.files import write_via_atomic

__all__ = ["NO_CLASS", "FeatureSpec", "TrainingData", "TrainOptions", "TrainedMiar", "StepCallback",
           "option_refusals", "data_refusals", "check_options", "options_key", "fit_stats", "predict", "sentiment_bins",
           "train_model"]

log = logging.getLogger(__name__)

#: No class target (every source but MELD).
NO_CLASS = -1
#: Modalities that can be attached to (mixing) or dropped from (modality dropout) a text sample.
_NON_TEXT: tuple[str, ...] = tuple(m for m in MODALITIES if m != "text")


@dataclass(frozen=True)
class FeatureSpec:
    """What made the features of a ``TrainingData``; the weights record it and loading checks it.

    Attributes:
        text_encoder: Name of the text encoder the text features came from.
        text_extractor_version: ``extractors.text.TEXT_EXTRACTOR_VERSION`` of those features.
        max_tokens: Token limit the text features were made with.
        audio_columns: Names of the audio feature columns (``extractors.voice.COLUMNS``).
        vision_columns: Names of the vision feature columns (``extractors.face.COLUMNS``).
        text_layers: Encoder layers the text features went through (``TextOptions.layers``;
            None: all of them).
        voice_states_source: Where the voice states of the speech-with-words rows came from
            ("transcription pass" or "second pass", ``extractors.voice_states.states_source``),
            so that inference computes the same kind; None without states.
    """

    text_encoder: str
    text_extractor_version: str
    max_tokens: int
    audio_columns: tuple[str, ...]
    vision_columns: tuple[str, ...]
    text_layers: int | None = None
    voice_states_source: str | None = None


@dataclass(frozen=True)
class TrainingData:
    """Training samples by source, plus the set that selects the epoch.

    Attributes:
        samples: Per source, its training samples (raw features, as ``SampleInput``).
        labels: Per source, (N,) float32 regression targets on [-3, 3]; NaN where a sample
            has none (MELD).
        classes: Per source, (N,) int64 class targets, ``NO_CLASS`` where none.
        modalities: Per source, the modalities its samples bring, in model order
            (("text",) for MOSI, ("audio",) for EmoDB, ("text", "audio", "vision") for a
            features folder).
        select_samples: The selection set (MOSI dev, or a features folder's valid split).
        select_labels: (M,) float32 labels of the selection set.
        select_name: What the selection set is, for logs and the summary.
        spec: What made the features (recorded in the weights).
        notes: Extra entries of the training summary (label mappings, provenance).
        neutral_text: Sources whose words are neutral by design: the text head's target is 0
            for their samples (the label is the voice's), the fused and other heads take the label.
        text_init: State of the text encoder's layer stack (``TextEncoder.weights_of_layers``),
            from which fine-tuned text layers start (``dims.text_tune_layers`` > 0); None when
            the data came without it.
    """

    samples: dict[str, list[SampleInput]]
    labels: dict[str, np.ndarray]
    classes: dict[str, np.ndarray]
    modalities: dict[str, tuple[str, ...]]
    select_samples: list[SampleInput]
    select_labels: np.ndarray
    select_name: str
    spec: FeatureSpec
    notes: dict[str, Any] = field(default_factory=dict)
    text_init: dict[str, Any] | None = None
    neutral_text: frozenset[str] = frozenset()

    @property
    def trained_modalities(self) -> tuple[str, ...]:
        """Modalities any source brings, in model order: the network is fed these and no others."""
        return tuple(m for m in MODALITIES if any(m in kinds for kinds in self.modalities.values()))

    @property
    def class_sources(self) -> tuple[str, ...]:
        """Sources with at least one class target."""
        return tuple(name for name, c in self.classes.items() if len(c) and bool((c >= 0).any()))


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run depends on (read from the JSON config).

    Defaults are "off" for every loss term and augmentation that needs more than one text
    source can give, so ``TrainOptions()`` is a valid MOSI-only text regressor; the
    shipped config (``configs/miar-v7.json``) sets every key.

    Attributes:
        seed: Seed of Python, NumPy and torch.
        sources: Source names: the curated ones (``assemble.SOURCE_MODALITY``; "mosi" is
            required, its dev split selects) or exactly ``("features",)`` for a features folder.
        source_weights: Sampling weight per source (missing ones weigh 1; only listed sources,
            each > 0); a batch draws each sample's source with these probabilities, then a
            sample of it uniformly.
        epoch_size: Samples drawn per epoch (>= ``batch_size``); null: one pass's worth
            (the number of training samples, rounded up to whole batches).
        epochs: Number of epochs (each ends with a selection-set evaluation).
        batch_size: Samples per step.
        lr: Peak AdamW learning rate (linear warm-up over the first epoch, cosine decay to 0).
        text_lr: Peak learning rate of the fine-tuned text layers (``dims.text_tune_layers``);
            pretrained layers want a far smaller step than the fresh network. Null: ``lr``.
        weight_decay: AdamW weight decay.
        align_weight: Weight of the cross-modal sentiment-bin contrastive loss; > 0 needs
            data with at least two modalities.
        modality_head_weight: Weight of the per-modality heads' L1 loss.
        class_weight: Weight of the class cross-entropy; > 0 needs a source with class
            targets (MELD) and ``dims.n_classes`` > 0, and ``dims.n_classes`` > 0 needs it > 0.
        neutral_voice_rate: Share of text-only samples that get the voice of a neutral take of a
            neutral-words source (``TrainingData.neutral_text``: a CREMA-D clip labelled 0); the
            label stays the text's, which the voice does not contradict. Without it the only
            samples with words and voice together are ones whose words say nothing, and the fusion
            learns to follow the voice whenever there is one.
        mix_rate: Share of text-only samples that get a random audio and vision sample
            attached; > 0 needs a text-only source and an audio-only or vision-only source.
        modality_dropout: Chance to drop each attached modality of a mixed sample, and each
            of audio and vision of a sample that has them with its text; > 0 needs one of
            the two to exist. In [0, 1).
        neutral_text_dropout: Chance to drop the words of a neutral-words source's sample
            (``TrainingData.neutral_text``: CREMA-D), whose label is in the voice; null: the
            ``modality_dropout`` chance. Only then does the network see that voice alone, which
            is what the outputs' ``voice_score`` is, and dropping words that say nothing loses
            no label. In [0, 1).
        polarity_balanced: Sources drawn with an equal chance per polarity of the label
            (negative, neutral, positive: ``model.schema.polarity_of``), then uniformly within
            it, instead of uniformly: CREMA-D plays four negative emotions for one positive,
            and a voice learned from that draw leans negative, which costs balanced accuracy.
        token_dropout: Share of text tokens masked at random per training sample; > 0 needs
            text. In [0, 1).
        crema_d_states: Which CREMA-D features folder a recipe with ``crema_d`` reads, by where
            its voice states came from (``extractors.voice_states.STATES_SOURCES``): "second pass" (a
            separate encoder pass over each clip, miar-v3 to v5) or "transcription pass" (kept
            from Whisper's own pass: no second pass at inference; miar-v6's recipe).
        teacher_scores: A soft-target file (``training.soft_targets``: a teacher's scores on the
            training text), absolute or relative to the repository root; read only when
            ``teacher_weight`` > 0.
        teacher_weight: Distillation: every text-source sample the teacher scored learns
            ``(1 - teacher_weight) * label + teacher_weight * teacher`` instead of its label (the
            selection sets keep their labels). In [0, 1]; 0 (default) reads no file.
        threads: torch CPU threads.
        length_buckets: Batches drawn at once and cut by text length, so a batch pads to
            similar lengths (the fine-tuned text layers cost per padded token); the batches
            then run in random order. 1: no bucketing.
        dims: Network shape (``text_dim``, ``audio_dim``, ``vision_dim`` must match the features).
        text: Text encoder options: curated sources are encoded with them; a features folder
            must have been made with the same ``encoder`` and ``max_tokens`` (``batch_size``
            only sets encoding speed).
    """

    seed: int = 0
    sources: tuple[str, ...] = ("mosi",)
    source_weights: dict[str, float] = field(default_factory=dict)
    epoch_size: int | None = 8000
    epochs: int = 8
    batch_size: int = 64
    lr: float = 5e-4
    text_lr: float | None = None
    weight_decay: float = 0.01
    align_weight: float = 0.0
    modality_head_weight: float = 0.3
    class_weight: float = 0.0
    mix_rate: float = 0.0
    neutral_voice_rate: float = 0.0
    modality_dropout: float = 0.0
    neutral_text_dropout: float | None = None
    polarity_balanced: tuple[str, ...] = ()
    crema_d_states: str = SECOND_PASS
    token_dropout: float = 0.1
    teacher_scores: str | None = None
    teacher_weight: float = 0.0
    threads: int = 1
    length_buckets: int = 1
    dims: MiarDims = field(default_factory=MiarDims)
    text: TextOptions = field(default_factory=TextOptions)

    @classmethod
    def from_json(cls, path: Path) -> TrainOptions:
        """Options from a JSON file; unknown keys (also inside "dims" and "text") are an error.

        Raises:
            ValueError: Unreadable file, not an object, or unknown keys (typos must not pass silently).
        """
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a readable training config ({e})") from e
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a JSON object expected, found {type(raw).__name__}")
        for name, record, entries in (("", cls, raw), ("dims.", MiarDims, raw.get("dims", {})),
                                      ("text.", TextOptions, raw.get("text", {}))):
            if not isinstance(entries, dict):
                raise ValueError(f"{path}: {name.rstrip('.')} must be an object")
            unknown = sorted(set(entries) - {f.name for f in fields(record)})
            if unknown:
                raise ValueError(f"{path}: unknown keys {[name + k for k in unknown]}")
        raw["dims"] = MiarDims(**raw.get("dims", {}))
        raw["text"] = TextOptions(**raw.get("text", {}))
        raw["sources"] = tuple(raw.get("sources", ("mosi",)))
        raw["polarity_balanced"] = tuple(raw.get("polarity_balanced", ()))
        return cls(**raw)


@dataclass(frozen=True)
class TrainedMiar:
    """The result of ``train_model``.

    Attributes:
        model: The network in eval mode, with the weights of the selected epoch.
        stats: Normalisation per modality (None for a modality training never saw).
        modalities: The modalities it was trained on (and is fed at inference).
        summary: The training summary recorded in the weights' config.json.
    """

    model: Miar
    stats: dict[str, ModalityStats | None]
    modalities: tuple[str, ...]
    summary: dict[str, Any]


#: Called after every optimiser step with (step index from 0, the learning rate that step
#: used, its loss terms "reg", "mod", "align", "cls").
StepCallback = Callable[[int, float, Mapping[str, float]], None]


def option_refusals(
    options: TrainOptions, source_modalities: Mapping[str, tuple[str, ...]], class_sources: Collection[str],
) -> list[str]:
    """What in ``options`` cannot act on sources of these kinds (empty: nothing refused).

    Needs only the kind of each source, so a run is refused before any data is loaded.

    Args:
        options: The config.
        source_modalities: Modalities of each source the options may name.
        class_sources: Sources with class targets.

    Returns:
        One message per refused key, naming it and what to do.
    """
    problems: list[str] = []
    listed = list(options.sources)
    unknown = [s for s in listed if s not in source_modalities]
    if not listed or unknown or len(set(listed)) != len(listed):
        problems.append(f"sources {listed}: each once, at least one, from {sorted(source_modalities)}")
        return problems
    kinds = {s: source_modalities[s] for s in listed}
    present = {m for k in kinds.values() for m in k}
    text_only = [s for s, k in kinds.items() if k == ("text",)]
    attachable = [s for s, k in kinds.items() if len(k) == 1 and k[0] in _NON_TEXT]
    co_present = [s for s, k in kinds.items() if "text" in k and len(k) > 1]
    has_class = any(s in class_sources for s in listed)

    stray = sorted(set(options.source_weights) - set(listed))
    if stray:
        problems.append(f"source_weights names {stray}, which are not in sources")
    if any(not (math.isfinite(w) and w > 0) for w in options.source_weights.values()):
        problems.append("source_weights must be > 0 (drop a source from sources instead of weighting it 0)")
    if options.epochs < 1 or options.batch_size < 1 or options.threads < 1:
        problems.append("epochs, batch_size and threads must be >= 1")
    if options.epoch_size is not None and options.epoch_size < options.batch_size:
        problems.append(f"epoch_size {options.epoch_size} < batch_size {options.batch_size} (or null for one pass)")
    if not options.lr > 0 or options.weight_decay < 0:
        problems.append("lr must be > 0 and weight_decay >= 0")
    if options.length_buckets < 1:
        problems.append("length_buckets must be >= 1")
    if options.text_lr is not None and not (options.dims.text_tune_layers > 0 and options.text_lr > 0):
        problems.append(f"text_lr {options.text_lr} needs fine-tuned text layers (dims.text_tune_layers > 0) and "
                        "must be > 0: set text_lr null")
    if options.dims.text_tune_layers > 0 and "text" not in present:
        problems.append(f"dims.text_tune_layers {options.dims.text_tune_layers} needs text, sources bring none")
    if min(options.align_weight, options.modality_head_weight, options.class_weight) < 0:
        problems.append("loss weights must be >= 0")
    if options.align_weight > 0 and len(present) < 2:
        problems.append(f"align_weight {options.align_weight} needs two modalities, sources bring only "
                        f"{sorted(present)}: set align_weight 0")
    if not 0 <= options.mix_rate <= 1:
        problems.append("mix_rate must be in [0, 1]")
    elif options.mix_rate > 0 and not (text_only and attachable):
        problems.append(f"mix_rate {options.mix_rate} needs a text-only source and an audio-only or vision-only "
                        f"source to attach; sources {listed} lack one: set mix_rate 0")
    if not 0 <= options.neutral_voice_rate <= 1:
        problems.append("neutral_voice_rate must be in [0, 1]")
    elif options.neutral_voice_rate > 0 and not (text_only and co_present):
        problems.append(f"neutral_voice_rate {options.neutral_voice_rate} needs a text-only source and a source "
                        f"with words and voice (crema_d); sources {listed} lack one: set neutral_voice_rate 0")
    if not 0 <= options.modality_dropout < 1:
        problems.append("modality_dropout must be in [0, 1)")
    elif options.modality_dropout > 0 and not co_present and not (options.mix_rate > 0 and attachable):
        problems.append(f"modality_dropout {options.modality_dropout} has nothing to drop (no audio or vision "
                        "attached by mixing, no source with text and audio or vision together): set modality_dropout 0")
    if options.neutral_text_dropout is not None and not 0 <= options.neutral_text_dropout < 1:
        problems.append("neutral_text_dropout must be in [0, 1) or null")
    if options.crema_d_states not in STATES_SOURCES:
        problems.append(f"crema_d_states {options.crema_d_states!r}: one of {list(STATES_SOURCES)}")
    unbalanceable = sorted(set(options.polarity_balanced) - set(listed))
    if unbalanceable:
        problems.append(f"polarity_balanced names {unbalanceable}, which are not in sources")
    if not 0 <= options.token_dropout < 1:
        problems.append("token_dropout must be in [0, 1)")
    elif options.token_dropout > 0 and "text" not in present:
        problems.append(f"token_dropout {options.token_dropout} needs text, sources bring none: set token_dropout 0")
    if not 0 <= options.teacher_weight <= 1:
        problems.append("teacher_weight must be in [0, 1]")
    elif options.teacher_weight > 0 and not options.teacher_scores:
        problems.append(f"teacher_weight {options.teacher_weight} needs teacher_scores (a soft-target file, "
                        "python -m training.teacher --scores FILE)")
    elif options.teacher_weight > 0 and not text_only:
        problems.append(f"teacher_weight {options.teacher_weight} needs a text-only source to distil into")
    elif options.teacher_scores and options.teacher_weight == 0:
        problems.append(f"teacher_scores {options.teacher_scores!r} with teacher_weight 0 would be read for "
                        "nothing: set teacher_weight > 0 or teacher_scores null")
    if options.class_weight > 0 and not has_class:
        problems.append(f"class_weight {options.class_weight} needs a source with class targets (meld), sources "
                        f"{listed} have none: set class_weight 0 and dims.n_classes 0")
    elif options.class_weight > 0 and options.dims.n_classes <= 0:
        problems.append(f"class_weight {options.class_weight} needs a class head: set dims.n_classes (3 for meld)")
    if options.dims.n_classes > 0 and not options.class_weight > 0:
        problems.append(f"dims.n_classes {options.dims.n_classes} with class_weight {options.class_weight} would "
                        "ship an untrained class head: set dims.n_classes 0 (or class_weight > 0 with meld)")
    return problems


def data_refusals(options: TrainOptions, data: TrainingData) -> list[str]:
    """What in ``options`` does not fit the loaded data (empty: nothing refused)."""
    problems: list[str] = []
    if sorted(options.sources) != sorted(data.samples):
        return [f"sources {list(options.sources)} differ from the data's {list(data.samples)}"
                + (" (a features folder is the one source 'features': use configs/features.json)"
                   if "features" in data.samples else "")]
    empty = [name for name, samples in data.samples.items() if not samples]
    if empty:
        problems.append(f"sources {empty} have no training samples")
    if not data.select_samples:
        problems.append(f"the selection set ({data.select_name}) is empty")
    spec, dims = data.spec, options.dims
    if (options.text.encoder, options.text.max_tokens) != (spec.text_encoder, spec.max_tokens):
        problems.append(f"text {options.text.encoder!r} / max_tokens {options.text.max_tokens}, but the features "
                        f"were made with {spec.text_encoder!r} / {spec.max_tokens}: set text in the config to match")
    for name, columns in (("audio", spec.audio_columns), ("vision", spec.vision_columns)):
        if dims.input_dim(name) != len(columns):
            problems.append(f"dims.{name}_dim {dims.input_dim(name)}, but the features have {len(columns)} "
                            f"{name} columns")
    for m in data.trained_modalities:
        widths = {v.shape[1] for samples in data.samples.values() for s in samples
                  for v in [s.modality(m)[0]] if v is not None and len(v)}
        if widths and widths != {dims.input_dim(m)}:
            problems.append(f"dims.{m}_dim {dims.input_dim(m)}, but the {m} features are {sorted(widths)} wide")
    if (options.text.layers or None) != (spec.text_layers or None):
        problems.append(f"text.layers {options.text.layers}, but the text features went through "
                        f"{spec.text_layers or 'all'} layers: set text.layers to match")
    if dims.text_tune_layers > 0 and data.text_init is None:
        problems.append(f"dims.text_tune_layers {dims.text_tune_layers} needs the text encoder's layer weights, "
                        "which this data does not carry (a features folder): set dims.text_tune_layers 0")
    n_max = max((int(c.max()) for c in data.classes.values() if len(c)), default=NO_CLASS)
    if options.dims.n_classes > 0 and n_max >= options.dims.n_classes:
        problems.append(f"dims.n_classes {options.dims.n_classes}, but class ids go up to {n_max}")
    return problems


def check_options(
    options: TrainOptions, source_modalities: Mapping[str, tuple[str, ...]], class_sources: Collection[str],
    data: TrainingData | None = None,
) -> None:
    """Refuse options that cannot act (see ``option_refusals``; with ``data``, also ``data_refusals``).

    Raises:
        ValueError: One line naming every refused key.
    """
    problems = option_refusals(options, source_modalities, class_sources)
    if data is not None and not problems:
        problems = data_refusals(options, data)
    if problems:
        raise ValueError("training config refused: " + "; ".join(problems))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _input_dims(dims: MiarDims) -> dict[str, int]:
    return {m: dims.input_dim(m) for m in MODALITIES}


def fit_stats(data: TrainingData, raw_text: bool = False) -> dict[str, ModalityStats | None]:
    """Per-modality normalisation from the training samples (None for a modality no source brings).

    ``raw_text``: text stays as the encoder gives it (identity statistics), because
    fine-tuned text layers expect their pretrained input, not standardised values.
    """
    stats: dict[str, ModalityStats | None] = {}
    for m in MODALITIES:
        if m == "text" and raw_text and "text" in data.trained_modalities:
            width = next(s.text.shape[1] for samples in data.samples.values() for s in samples
                         if s.text is not None and len(s.text))
            stats[m] = ModalityStats(np.zeros(width, np.float32), np.ones(width, np.float32))
            continue
        arrays, masks = [], []
        for name, samples in data.samples.items():
            if m not in data.modalities[name]:
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
            b = collate(samples[start:start + batch_size], _input_dims(model.dims), stats, use=use)
            out = model(b.text, b.text_mask, b.audio, b.audio_mask, b.vision, b.vision_mask)
            scores.append(out.score.numpy())
            logits.append(out.class_logits.numpy())
    return np.concatenate(scores), np.concatenate(logits)


def sentiment_bins(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Sentiment bin per sample for the alignment loss: the class where there is one, else
    ``model.schema.sentiment_bin`` of the label, ``NO_CLASS`` where there is neither."""
    return np.array([int(c) if c >= 0 else NO_CLASS if np.isnan(y) else sentiment_bin(float(y))
                     for y, c in zip(labels, classes)], np.int64)


def _drop_tokens(sample: SampleInput, rate: float, rng: np.random.Generator) -> SampleInput:
    if rate <= 0 or len(sample.text_mask) == 0:
        return sample
    keep = sample.text_mask & (rng.random(len(sample.text_mask)) >= rate)
    if not keep.any():
        keep = sample.text_mask
    return replace(sample, text_mask=keep)


def _drop_modalities(sample: SampleInput, rate: float, rng: np.random.Generator) -> SampleInput:
    """Drop each present non-text modality with probability ``rate`` (the text stays)."""
    dropped: dict[str, Any] = {}
    for m in _NON_TEXT:
        values, _ = sample.modality(m)
        if values is not None and len(values) and rng.random() < rate:
            dropped[m], dropped[f"{m}_mask"] = None, None
    return replace(sample, **dropped) if dropped else sample


def _drop_text(sample: SampleInput, rate: float, rng: np.random.Generator) -> SampleInput:
    """Drop the text (keep voice and face) with probability ``rate``: for sources whose label is
    not in their words, so the voice alone learns to carry it (the outputs' ``voice_score`` is the
    network fed the voice alone), while the words never learn a label they do not show."""
    if rng.random() >= rate:
        return sample
    return replace(sample, text=np.zeros((0, sample.text.shape[1] if sample.text is not None else 1), np.float32),
                   text_mask=np.zeros(0, bool))


def _neutral_voices(data: TrainingData, names: list[str]) -> list[tuple[str, int]]:
    """(source, index) of every neutral take (label 0, a voice) of the neutral-words sources."""
    return [(n, i) for n in names if n in data.neutral_text for i, y in enumerate(data.labels[n])
            if y == 0 and data.samples[n][i].audio is not None]


def _polarity_groups(labels: np.ndarray) -> list[np.ndarray]:
    """Indices of the samples by the polarity of their label (the non-empty groups only;
    unlabelled samples stay out)."""
    labels = np.asarray(labels, np.float64)
    known = ~np.isnan(labels)
    polarity = np.array([polarity_of(float(y)) if k else "" for y, k in zip(labels, known)])
    return [np.flatnonzero(polarity == p) for p in POLARITIES if (polarity == p).any()]


def _draw_batch(
    options: TrainOptions, data: TrainingData, names: list[str], probs: np.ndarray, rng: np.random.Generator,
    size: int | None = None,
) -> tuple[list[SampleInput], np.ndarray, np.ndarray, np.ndarray]:
    """One source-balanced batch (``size`` samples, default ``batch_size``) with token dropout,
    mixing and modality dropout; the last array flags samples of ``data.neutral_text`` sources."""
    pools = {m: [n for n in names if data.modalities[n] == (m,)] for m in _NON_TEXT}
    neutral_voices = _neutral_voices(data, names) if options.neutral_voice_rate > 0 else []
    by_polarity = {n: _polarity_groups(data.labels[n]) for n in options.polarity_balanced if n in names}
    text_dropout = (options.modality_dropout if options.neutral_text_dropout is None
                    else options.neutral_text_dropout)
    batch, labels, classes, neutral = [], [], [], []
    for name in rng.choice(names, size=size or options.batch_size, p=probs):
        if name in by_polarity:
            group = by_polarity[name][int(rng.integers(len(by_polarity[name])))]
            i = int(group[int(rng.integers(len(group)))])
        else:
            i = int(rng.integers(len(data.samples[name])))
        sample = _drop_tokens(data.samples[name][i], options.token_dropout, rng)
        kinds = data.modalities[name]
        if kinds == ("text",):
            if neutral_voices and rng.random() < options.neutral_voice_rate:
                other_name, j = neutral_voices[int(rng.integers(len(neutral_voices)))]
                voice, voice_mask = data.samples[other_name][j].modality("audio")
                sample = replace(sample, audio=voice, audio_mask=voice_mask)
            elif rng.random() < options.mix_rate and any(pools.values()):
                extra: dict[str, Any] = {}
                for modality, pool in pools.items():
                    if pool and rng.random() >= options.modality_dropout:
                        other_name = pool[int(rng.integers(len(pool)))]
                        other = data.samples[other_name][int(rng.integers(len(data.samples[other_name])))]
                        extra[modality], extra[f"{modality}_mask"] = other.modality(modality)
                sample = replace(sample, **extra)
        elif "text" in kinds and len(kinds) > 1 and name in data.neutral_text:
            if text_dropout > 0:
                sample = _drop_text(sample, text_dropout, rng)
        elif "text" in kinds and len(kinds) > 1 and options.modality_dropout > 0:
            sample = _drop_modalities(sample, options.modality_dropout, rng)
        batch.append(sample)
        labels.append(data.labels[name][i])
        classes.append(data.classes[name][i])
        neutral.append(name in data.neutral_text)
    return batch, np.asarray(labels, np.float32), np.asarray(classes, np.int64), np.asarray(neutral, bool)


def _epoch_batches(
    options: TrainOptions, data: TrainingData, names: list[str], probs: np.ndarray, rng: np.random.Generator,
    steps: int,
) -> Iterator[tuple[list[SampleInput], np.ndarray, np.ndarray]]:
    """``steps`` batches; with ``length_buckets`` K > 1, K batches are drawn at once, sorted by
    text length, cut into K batches of similar lengths and yielded in random order."""
    k = max(1, options.length_buckets)
    done = 0
    while done < steps:
        group = min(k, steps - done)
        samples, labels, classes, neutral = _draw_batch(options, data, names, probs, rng,
                                                        group * options.batch_size)
        if group == 1:
            yield samples, labels, classes, neutral
        else:
            order = np.argsort([len(s.text_mask) if s.text is not None else 0 for s in samples], kind="stable")
            cuts = np.array_split(order, group)
            for j in rng.permutation(group):
                idx = cuts[j]
                yield [samples[i] for i in idx], labels[idx], classes[idx], neutral[idx]
        done += group


def _steps_per_epoch(options: TrainOptions, data: TrainingData) -> int:
    size = options.epoch_size
    if size is None:
        return max(1, math.ceil(sum(len(s) for s in data.samples.values()) / options.batch_size))
    return max(1, size // options.batch_size)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    raise TypeError(f"not JSON-serialisable: {type(obj)}")


#: Options added after miar-v3's runs, left out of ``options_key`` while they hold their default.
_KEY_SKIPS_DEFAULT = ("neutral_text_dropout", "polarity_balanced", "crema_d_states", "teacher_scores",
                      "teacher_weight")
_DEFAULT_OPTIONS = {f.name: f.default for f in fields(TrainOptions) if f.name in _KEY_SKIPS_DEFAULT}


def options_key(options: TrainOptions) -> str:
    """SHA-256 of every option: a resume file is trusted only by a run of the same options, and
    ``evaluate`` names a cached run's folder by it."""
    fields_ = {f.name: getattr(options, f.name) for f in fields(options)}
    for name in _KEY_SKIPS_DEFAULT:  # options added after runs were cached: at their default they
        if fields_[name] == _DEFAULT_OPTIONS[name]:  # leave the key (and those runs' folders) as it was
            del fields_[name]
    blob = json.dumps(fields_, default=_jsonable, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _save_resume(path: Path, state: dict[str, Any]) -> None:
    write_via_atomic(path, lambda tmp: torch.save(state, tmp))


def _load_resume(path: Path | None, key: str) -> dict[str, Any] | None:
    """The resume state at ``path`` when it belongs to a run of these options, else None (logged)."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        log.warning("%s cannot be read (%s): training starts from the beginning", path, str(e).splitlines()[0])
        return None
    if not isinstance(state, dict) or state.get("options_key") != key:
        log.warning("%s belongs to a run with other options: training starts from the beginning", path)
        return None
    return state


def _as_random_state(text: str) -> tuple[Any, ...]:
    """``random.getstate()`` back from its JSON form (lists become the tuples it needs)."""
    version, internal, gauss = json.loads(text)
    return (version, tuple(internal), gauss)


def train_model(
    options: TrainOptions, data: TrainingData, *, on_step: StepCallback | None = None, log_every_epoch: bool = True,
    resume_path: Path | None = None,
) -> TrainedMiar:
    """Train one network on prepared data and keep the epoch with the lowest selection-set MAE.

    Args:
        options: The config (checked against ``data`` first).
        data: Samples by source and the selection set.
        on_step: Called after each optimiser step (learning rate and loss terms), e.g. by tests.
        log_every_epoch: Log one line per epoch (INFO) and progress inside epochs.
        resume_path: After every epoch the whole run state (network, optimiser, schedule,
            random generators, best epoch so far) is written here atomically; a run started
            with the same options and an existing file continues after its last finished
            epoch, and ends as the uninterrupted run would have. Removed when training ends.

    Returns:
        The network (eval mode), its normalisation, its modalities and the training summary.

    Raises:
        ValueError: An option cannot act on this data (see ``option_refusals``, ``data_refusals``).
    """
    check_options(options, data.modalities, data.class_sources, data)
    start_time = time.perf_counter()
    torch.set_num_threads(options.threads)
    _seed_everything(options.seed)
    tuned = options.dims.text_tune_layers > 0
    stats = fit_stats(data, raw_text=tuned)
    names = list(options.sources)
    weights = np.array([options.source_weights.get(n, 1.0) for n in names], np.float64)
    probs = weights / weights.sum()
    model = Miar(options.dims)
    groups: list[dict[str, Any]] = [{"params": [p for n, p in model.named_parameters()
                                                if not n.startswith("text_layers.")]}]
    if tuned:
        assert data.text_init is not None  # data_refusals
        model.load_text_layers(data.text_init, first=int(data.spec.text_layers or 0))
        groups.append({"params": list(model.text_layers.parameters()), "lr": options.text_lr or options.lr})
    optimiser = torch.optim.AdamW(groups, lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = _steps_per_epoch(options, data)
    total_steps = steps_per_epoch * options.epochs

    def lr_at(step: int) -> float:
        if step < steps_per_epoch:
            return (step + 1) / steps_per_epoch
        progress = (step - steps_per_epoch) / max(1, total_steps - steps_per_epoch)
        return float(0.5 * (1.0 + math.cos(math.pi * progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    rng = np.random.default_rng(options.seed)
    dims = _input_dims(options.dims)
    use = data.trained_modalities
    best: tuple[float, int, dict[str, torch.Tensor], MosiMetrics] | None = None
    history: list[dict[str, Any]] = []
    step = 0
    first_epoch = 1
    key = options_key(options)
    resumed = _load_resume(resume_path, key)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimiser.load_state_dict(resumed["optimiser"])
        scheduler.load_state_dict(resumed["scheduler"])
        rng.bit_generator.state = json.loads(resumed["numpy_rng"])
        torch.set_rng_state(resumed["torch_rng"])
        random.setstate(_as_random_state(resumed["python_rng"]))
        history = json.loads(resumed["history"])
        best_dev = json.loads(resumed["best_dev"])
        best = (float(best_dev["mae"]), int(resumed["best_epoch"]), resumed["best_state"], MosiMetrics(**best_dev))
        first_epoch = int(resumed["epoch"]) + 1
        step = (first_epoch - 1) * steps_per_epoch
        log.info("resuming after epoch %d of %d from %s", first_epoch - 1, options.epochs, resume_path)
    for epoch in range(first_epoch, options.epochs + 1):
        model.train()
        sums = {"reg": 0.0, "mod": 0.0, "align": 0.0, "cls": 0.0}
        epoch_start = time.perf_counter()
        for samples, labels, classes, neutral in _epoch_batches(options, data, names, probs, rng, steps_per_epoch):
            batch = collate(samples, dims, stats, use=use)
            out = model(batch.text, batch.text_mask, batch.audio, batch.audio_mask, batch.vision, batch.vision_mask)
            target = torch.from_numpy(np.nan_to_num(labels))
            has_target = torch.from_numpy(~np.isnan(labels))
            zero = out.score.new_zeros(())
            regression = F.l1_loss(out.score[has_target], target[has_target]) if has_target.any() else zero
            per_modality = out.present & has_target[:, None]
            head_target = target[:, None].repeat(1, out.modality_scores.shape[1])
            if neutral.any():  # neutral words: the text head learns 0, the voice carries the label
                head_target[torch.from_numpy(neutral), MODALITIES.index("text")] = 0.0
            modality = ((out.modality_scores - head_target).abs()[per_modality].mean()
                        if per_modality.any() else zero)
            cls_target = torch.from_numpy(classes)
            with_class = cls_target >= 0
            classification = (F.cross_entropy(out.class_logits[with_class], cls_target[with_class])
                              if options.dims.n_classes and with_class.any() else zero)
            alignment = (sentiment_alignment_loss(out, torch.from_numpy(sentiment_bins(labels, classes)),
                                                  model.temperature)
                         if options.align_weight > 0 else zero)
            loss = (regression + options.modality_head_weight * modality + options.align_weight * alignment
                    + options.class_weight * classification)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            lr = float(optimiser.param_groups[0]["lr"])
            optimiser.step()
            scheduler.step()
            terms = {"reg": float(regression.detach()), "mod": float(modality.detach()),
                     "align": float(alignment.detach()), "cls": float(classification.detach())}
            for term, value in terms.items():
                sums[term] += value / steps_per_epoch
            if on_step is not None:
                on_step(step, lr, terms)
            step += 1
            done = step - (epoch - 1) * steps_per_epoch
            if log_every_epoch and done % 50 == 0 and done < steps_per_epoch:
                rate = done / (time.perf_counter() - epoch_start)
                log.info("seed %d epoch %d: step %d/%d, %.2f steps/s, %.0f s to the epoch's end",
                         options.seed, epoch, done, steps_per_epoch, rate, (steps_per_epoch - done) / rate)
        train_seconds = time.perf_counter() - epoch_start
        dev = mosi_metrics(predict(model, data.select_samples, stats, use)[0], data.select_labels)
        history.append({"epoch": epoch, "lr": lr, "train": {k: round(v, 4) for k, v in sums.items()},
                        "dev": dev.as_dict(), "seconds": round(train_seconds, 1)})
        if log_every_epoch:
            log.info("seed %d epoch %d/%d  L1 %.3f  modality %.3f  align %.3f  cls %.3f  %s MAE %.3f corr %.3f "
                     "acc2(non0) %.3f  (%.0f s)", options.seed, epoch, options.epochs, sums["reg"], sums["mod"],
                     sums["align"], sums["cls"], data.select_name, dev.mae, dev.corr, dev.acc2_non0,
                     time.perf_counter() - start_time)
        if best is None or dev.mae < best[0]:
            best = (dev.mae, epoch, copy.deepcopy(model.state_dict()), dev)
        if resume_path is not None and epoch < options.epochs:
            _save_resume(resume_path, {
                "options_key": key, "epoch": epoch, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(), "numpy_rng": json.dumps(rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "python_rng": json.dumps(random.getstate()),
                "history": json.dumps(history), "best_epoch": best[1], "best_state": best[2],
                "best_dev": json.dumps(best[3].as_dict()),
            })
    assert best is not None
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    model.load_state_dict(best[2])
    model.eval()
    summary = {
        "sources": list(options.sources),
        "sizes": {n: len(data.samples[n]) for n in names},
        "sampling_probabilities": {n: round(float(p), 4) for n, p in zip(names, probs)},
        **data.notes,
        "seed": options.seed,
        "epochs": options.epochs,
        "steps_per_epoch": steps_per_epoch,
        "selected_epoch": best[1],
        "selection": f"lowest MAE on {data.select_name}",
        "selection_size": len(data.select_samples),
        "dev_metrics": best[3].as_dict(),
        "history": history,
        "train_seconds": round(time.perf_counter() - start_time, 1),
        "options": json.loads(json.dumps(options, default=_jsonable)),
    }
    log.info("seed %d: best epoch %d, %s MAE %.3f corr %.3f (%.0f s)", options.seed, best[1], data.select_name,
             best[3].mae, best[3].corr, summary["train_seconds"])
    return TrainedMiar(model, stats, use, summary)
