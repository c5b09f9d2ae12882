"""The training package: the one loop (curated sources and a features folder), refusals, CLI, caches, mappings.

Everything here runs on tiny synthetic arrays in seconds; tests reading the team's data
use ``requires_shared``. No test loads a face model or Whisper; the one that loads the text
encoder (the tuned layers continue its frozen stack exactly) is marked slow.
"""

from __future__ import annotations

import csv
import json
import shutil
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from extractors import voice as voice_mod
from model.batch import SampleInput
from model.checkpoint import load_checkpoint
from model.feature_store import LabelFileError, save_clip, write_manifest
from model.miar import MiarDims
from model.schema import NEUTRAL_BAND
from storage.locations import REPO_ROOT
from tests.conftest import SHARED, requires_shared
from training import sources as src
from training.assemble import CLASS_SOURCES, SOURCE_MODALITY, load_features_data
from training.corpora import MELD_CLASSES, TextCorpus, encode_corpus, load_meld, load_mosi
from training.evaluate import ABLATIONS, _variant_options, format_table
from training.loop import (
    NO_CLASS,
    FeatureSpec,
    TrainingData,
    TrainOptions,
    data_refusals,
    option_refusals,
    sentiment_bins,
    train_model,
)
from training.train import DEFAULT_CONFIG, FEATURES_CONFIG, train_on_features, write_weights
from training.train import main as train_main

WIDTHS = {"text": 8, "audio": 5, "vision": 6}
AUDIO_COLUMNS = tuple(f"a{i}" for i in range(WIDTHS["audio"]))
VISION_COLUMNS = tuple(f"v{i}" for i in range(WIDTHS["vision"]))
SPEC = FeatureSpec("all-MiniLM-L6-v2", "text-v1", 128, AUDIO_COLUMNS, VISION_COLUMNS)
DIMS = MiarDims(text_dim=WIDTHS["text"], audio_dim=WIDTHS["audio"], vision_dim=WIDTHS["vision"], d_model=16,
                n_heads=2, proj_dim=8, dropout=0.0)
CURATED_KINDS = dict(SOURCE_MODALITY)


def _rows(rng: np.random.Generator, modality: str, label: float) -> np.ndarray:
    n = int(rng.integers(2, 6))
    return (rng.normal(size=(n, WIDTHS[modality])) + label).astype(np.float32)  # the label shifts the features


def _sample(rng: np.random.Generator, label: float, modalities: tuple[str, ...]) -> SampleInput:
    parts: dict[str, np.ndarray] = {"text": np.zeros((0, WIDTHS["text"]), np.float32), "text_mask": np.zeros(0, bool)}
    for m in modalities:
        values = _rows(rng, m, label)
        parts[m], parts[f"{m}_mask"] = values, np.ones(len(values), bool)
    return SampleInput(**parts)


def _curated_data(seed: int = 0) -> TrainingData:
    """Three single-modality sources, as MOSI, EmoDB and the face photos are."""
    rng = np.random.default_rng(seed)
    kinds = {"mosi": ("text",), "emodb": ("audio",), "taiwan": ("vision",)}
    samples, labels = {}, {}
    for name, modalities in kinds.items():
        labels[name] = rng.uniform(-3, 3, 24).astype(np.float32)
        samples[name] = [_sample(rng, float(y), modalities) for y in labels[name]]
    classes = {name: np.full(24, NO_CLASS, np.int64) for name in kinds}
    select_labels = rng.uniform(-3, 3, 8).astype(np.float32)
    select = [_sample(rng, float(y), ("text",)) for y in select_labels]
    return TrainingData(samples, labels, classes, kinds, select, select_labels, "synthetic dev", SPEC)


CURATED_OPTIONS = TrainOptions(
    sources=("mosi", "emodb", "taiwan"), source_weights={"mosi": 2.0}, epoch_size=32, epochs=3, batch_size=8,
    lr=1e-3, align_weight=0.1, mix_rate=0.5, modality_dropout=0.3, token_dropout=0.1, dims=DIMS,
)


def _write_features(folder: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """A features folder as ``pipeline extract`` writes it: every clip has text, audio and vision."""
    rng = np.random.default_rng(seed)
    entries: dict[str, list[dict[str, object]]] = {}
    for split, n in counts.items():
        for i in range(n):
            label = float(rng.uniform(-3, 3))
            path = folder / split / "vid" / f"{split}{i}.npz"
            save_clip(path, _sample(rng, label, ("text", "audio", "vision")), WIDTHS, label=label,
                      strings={"video_id": "vid", "clip_id": f"{split}{i}", "asr_text": "a b", "label_text": "a b"})
            entries.setdefault(split, []).append({"video_id": "vid", "clip_id": f"{split}{i}", "label": label,
                                                  "file": str(path.relative_to(folder))})
    write_manifest(folder, {"dataset": "synthetic", "text_encoder": SPEC.text_encoder,
                            "text_extractor_version": SPEC.text_extractor_version, "max_tokens": SPEC.max_tokens,
                            "asr_model": "none", "frame_fps": 5.0, "audio_columns": list(AUDIO_COLUMNS),
                            "vision_columns": list(VISION_COLUMNS), "counts": counts, "samples": entries,
                            "failures": []})
    return folder


FEATURES_OPTIONS = TrainOptions(
    sources=("features",), epoch_size=None, epochs=3, batch_size=4, lr=1e-3, align_weight=0.1,
    modality_dropout=0.3, token_dropout=0.1, dims=DIMS,
)


class _Recorder:
    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.terms: list[dict[str, float]] = []

    def __call__(self, step: int, lr: float, terms: dict[str, float]) -> None:
        assert step == len(self.lrs)
        self.lrs.append(lr)
        self.terms.append(dict(terms))


def _assert_warmup_then_cosine(lrs: list[float], steps_per_epoch: int, peak: float) -> None:
    warm, decay = lrs[:steps_per_epoch], lrs[steps_per_epoch:]
    assert warm[0] == pytest.approx(peak / steps_per_epoch)
    assert all(a < b for a, b in zip(warm, warm[1:])) and warm[-1] == pytest.approx(peak)
    assert decay[0] == pytest.approx(peak) and all(a > b for a, b in zip(decay, decay[1:]))


def test_one_loop_trains_on_single_modality_sources(tmp_path: Path) -> None:
    record = _Recorder()
    trained = train_model(CURATED_OPTIONS, _curated_data(), on_step=record, log_every_epoch=False)
    assert len(record.lrs) == 3 * 4  # epochs x epoch_size // batch_size
    _assert_warmup_then_cosine(record.lrs, 4, CURATED_OPTIONS.lr)
    # single-modality samples of different sources meet in a batch (and mixing adds co-present ones)
    assert max(t["align"] for t in record.terms) > 0
    assert all(np.isfinite(list(t.values())).all() for t in record.terms)
    summary = trained.summary
    assert trained.modalities == ("text", "audio", "vision")
    assert summary["sizes"] == {"mosi": 24, "emodb": 24, "taiwan": 24} and summary["steps_per_epoch"] == 4
    assert summary["sampling_probabilities"] == {"mosi": 0.5, "emodb": 0.25, "taiwan": 0.25}
    best = min(summary["history"], key=lambda h: h["dev"]["mae"])
    assert summary["selected_epoch"] == best["epoch"] and summary["selection"] == "lowest MAE on synthetic dev"

    loaded = load_checkpoint(write_weights(tmp_path / "w", trained, SPEC), expected_encoder=SPEC.text_encoder,
                             expected_audio_columns=AUDIO_COLUMNS, expected_vision_columns=VISION_COLUMNS)
    assert loaded.modalities == ("text", "audio", "vision")
    data = _curated_data()
    pred = loaded.predict(data.select_samples)
    assert pred.shape == (8,) and np.isfinite(pred).all()
    assert float(np.abs(pred - data.select_labels).mean()) == pytest.approx(summary["dev_metrics"]["mae"], abs=1e-4)


def test_one_loop_trains_on_a_features_folder(tmp_path: Path) -> None:
    data = load_features_data(_write_features(tmp_path / "features", {"train": 12, "valid": 4, "test": 2}))
    assert data.modalities == {"features": ("text", "audio", "vision")} and len(data.select_samples) == 4
    assert data.spec == SPEC
    record = _Recorder()
    trained = train_model(FEATURES_OPTIONS, data, on_step=record, log_every_epoch=False)
    assert len(record.lrs) == 3 * 3  # one pass per epoch: ceil(12 / 4) steps
    _assert_warmup_then_cosine(record.lrs, 3, FEATURES_OPTIONS.lr)
    # every clip holds text, audio and vision of one utterance: the alignment term always acts
    assert min(t["align"] for t in record.terms) > 0
    assert trained.summary["sizes"] == {"features": 12} and trained.summary["selection_size"] == 4
    assert trained.summary["selection"] == "lowest MAE on the features' valid split"
    assert trained.summary["features"]["dataset"] == "synthetic"
    assert all(trained.stats[m] is not None for m in ("text", "audio", "vision"))


def test_features_folder_without_valid_split_selects_on_train(tmp_path: Path) -> None:
    data = load_features_data(_write_features(tmp_path / "features", {"train": 5}))
    assert len(data.select_samples) == 5 and "no valid split" in data.select_name


def test_same_seed_same_weights() -> None:
    options = replace(CURATED_OPTIONS, epochs=1)
    first = train_model(options, _curated_data(), log_every_epoch=False).model.state_dict()
    second = train_model(options, _curated_data(), log_every_epoch=False).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_features_cli_writes_weights_the_loader_accepts(tmp_path: Path) -> None:
    features = _write_features(tmp_path / "features", {"train": 8, "valid": 2})
    config = json.loads(FEATURES_CONFIG.read_text())
    config.update(epochs=2, batch_size=4, dims={"text_dim": 8, "audio_dim": 5, "vision_dim": 6, "d_model": 16,
                                                "n_heads": 2, "proj_dim": 8})
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    out = tmp_path / "weights"
    assert train_main(["--features", str(features), "--config", str(tmp_path / "tiny.json"), "--out", str(out),
                       "-q"]) == 0
    written = json.loads((out / "config.json").read_text())
    assert written["trained_modalities"] == ["text", "audio", "vision"]
    assert written["training"]["sizes"] == {"features": 8} and written["training"]["selection_size"] == 2
    assert written["audio_columns"] == list(AUDIO_COLUMNS) and written["text_encoder"] == SPEC.text_encoder
    assert written["normalisation"]["vision"]["trained"]
    load_checkpoint(out, expected_encoder=SPEC.text_encoder, expected_audio_columns=AUDIO_COLUMNS,
                    expected_vision_columns=VISION_COLUMNS)
    with pytest.raises(SystemExit):  # never overwrite the shipped weights by default
        train_main(["--features", str(features)])
    # the curated config names curated sources: refused with a pointer to features.json, nothing written
    assert train_main(["--features", str(features), "--config", str(DEFAULT_CONFIG), "--out",
                       str(tmp_path / "w2"), "-q"]) == 1
    assert not (tmp_path / "w2").exists()


def test_shipped_configs_and_ablations_are_accepted() -> None:
    curated = TrainOptions.from_json(DEFAULT_CONFIG)
    assert option_refusals(curated, CURATED_KINDS, CLASS_SOURCES) == []
    features = TrainOptions.from_json(FEATURES_CONFIG)
    assert option_refusals(features, {"features": ("text", "audio", "vision")}, ()) == []
    for name, (_, overrides) in ABLATIONS.items():
        assert option_refusals(_variant_options(DEFAULT_CONFIG, overrides, 0, 3), CURATED_KINDS, CLASS_SOURCES) == [], \
            name
    assert option_refusals(TrainOptions(), CURATED_KINDS, CLASS_SOURCES) == []  # defaults: a MOSI text regressor


@pytest.mark.parametrize("overrides, kinds, refused", [
    ({"sources": ("mosi",), "align_weight": 0.1}, CURATED_KINDS, "align_weight"),
    ({"sources": ("mosi", "vader"), "mix_rate": 0.2}, CURATED_KINDS, "mix_rate"),
    ({"sources": ("mosi",), "modality_dropout": 0.3}, CURATED_KINDS, "modality_dropout"),
    ({"sources": ("mosi",), "class_weight": 0.3, "dims": MiarDims(n_classes=3)}, CURATED_KINDS, "class_weight"),
    ({"sources": ("mosi", "meld"), "class_weight": 0.3}, CURATED_KINDS, "dims.n_classes"),
    ({"sources": ("mosi", "meld"), "dims": MiarDims(n_classes=3)}, CURATED_KINDS, "untrained class head"),
    ({"sources": ("mosi",), "source_weights": {"vader": 1.0}}, CURATED_KINDS, "source_weights"),
    ({"sources": ("mosi",), "source_weights": {"mosi": 0.0}}, CURATED_KINDS, "source_weights"),
    ({"sources": ("mosi", "nope")}, CURATED_KINDS, "sources"),
    ({"sources": ("emodb",), "token_dropout": 0.1}, CURATED_KINDS, "token_dropout"),
    ({"sources": ("mosi",), "epoch_size": 10, "batch_size": 64}, CURATED_KINDS, "epoch_size"),
    ({"sources": ("mosi",), "teacher_weight": 0.5}, CURATED_KINDS, "needs teacher_scores"),
    ({"sources": ("mosi",), "teacher_weight": 1.5, "teacher_scores": "t.csv"}, CURATED_KINDS, "teacher_weight"),
    ({"sources": ("mosi",), "teacher_scores": "t.csv"}, CURATED_KINDS, "read for nothing"),
    ({"sources": ("emodb",), "teacher_weight": 0.5, "teacher_scores": "t.csv", "token_dropout": 0.0},
     CURATED_KINDS, "text-only source"),
    ({"sources": ("features",), "mix_rate": 0.2}, {"features": ("text", "audio", "vision")}, "mix_rate"),
    ({"sources": ("features",), "class_weight": 0.3, "dims": MiarDims(n_classes=3)},
     {"features": ("text", "audio", "vision")}, "class_weight"),
    ({"sources": ("features",), "align_weight": 0.1}, {"features": ("text",)}, "align_weight"),
])
def test_options_that_cannot_act_are_refused(overrides: dict, kinds: dict, refused: str) -> None:
    problems = option_refusals(replace(TrainOptions(), **overrides), kinds, CLASS_SOURCES)
    assert len(problems) == 1 and refused in problems[0]


def test_options_unlike_the_features_are_refused(tmp_path: Path) -> None:
    data = load_features_data(_write_features(tmp_path / "features", {"train": 4, "valid": 2}))
    assert data_refusals(FEATURES_OPTIONS, data) == []
    assert "text" in data_refusals(replace(FEATURES_OPTIONS, text=replace(FEATURES_OPTIONS.text,
                                                                          encoder="all-mpnet-base-v2")), data)[0]
    assert "dims.audio_dim" in data_refusals(replace(FEATURES_OPTIONS, dims=replace(DIMS, audio_dim=34)), data)[0]
    assert "features.json" in data_refusals(replace(FEATURES_OPTIONS, sources=("mosi",)), data)[0]
    with pytest.raises(ValueError, match="training config refused: .*mix_rate"):
        train_model(replace(FEATURES_OPTIONS, mix_rate=0.2), data)
    with pytest.raises(ValueError, match="one source 'features'"):
        train_on_features(TrainOptions(), tmp_path / "features", tmp_path / "w")


def test_config_files_with_unknown_keys_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"epochs": 2, "align_weigth": 0.1}))
    with pytest.raises(ValueError, match="align_weigth"):
        TrainOptions.from_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"dims": {"d_modle": 8}}))
    with pytest.raises(ValueError, match="dims.d_modle"):
        TrainOptions.from_json(tmp_path / "b.json")
    assert TrainOptions.from_json(FEATURES_CONFIG).epoch_size is None  # null: one pass per epoch


def test_sentiment_bins_use_the_neutral_band_and_class_targets() -> None:
    labels = np.array([-NEUTRAL_BAND, -0.49, 0.0, NEUTRAL_BAND, np.nan, np.nan, 2.0], np.float32)
    classes = np.array([NO_CLASS, NO_CLASS, NO_CLASS, NO_CLASS, 2, NO_CLASS, 0])
    assert sentiment_bins(labels, classes).tolist() == [0, 1, 1, 2, 2, NO_CLASS, 0]


class _FakeEncoder:
    """Stands in for ``TextEncoder``: one 4-d row per word, valued by word length."""

    name = "fake-encoder"
    layers = total_layers = 6
    recorded_layers = None

    def __init__(self) -> None:
        self.calls = 0

    def encode_batch(self, batch: list[list[str]]) -> list:
        self.calls += 1
        return [type("Features", (), {"values": np.array([[len(w)] * 4 for w in words], np.float32)})()
                for words in batch]


def test_encoded_corpus_is_cached_atomically(tmp_path: Path) -> None:
    corpus = TextCorpus("unit", "train", ("a", "b"), ("good movie", "bad"), np.array([2.0, -2.0], np.float32))
    encoder = _FakeEncoder()
    first = encode_corpus(corpus, encoder, 128, tmp_path)  # type: ignore[arg-type]
    assert encoder.calls == 1 and [len(s.text) for s in first] == [2, 1]
    files = list((tmp_path / "text-features").iterdir())
    assert len(files) == 1 and files[0].name.startswith("unit-train-") and files[0].suffix == ".npz"
    again = encode_corpus(corpus, encoder, 128, tmp_path)  # type: ignore[arg-type]
    assert encoder.calls == 1  # read from the cache
    np.testing.assert_array_equal(again[0].text, first[0].text)
    encode_corpus(corpus, encoder, 64, tmp_path)  # type: ignore[arg-type]
    assert encoder.calls == 2  # another token limit is another key


def test_label_mappings_are_written_down_with_the_right_signs() -> None:
    assert src.EMODB_VALENCE["happiness"] > 1.0
    assert all(src.EMODB_VALENCE[e] < -1.0 for e in ("anger", "disgust", "fear", "anxiety", "sadness"))
    assert abs(src.EMODB_VALENCE["neutral"]) < 0.1 and abs(src.EMODB_VALENCE["boredom"]) <= 0.5
    assert src.FACE_VALENCE["happiness"] > 1.0 and src.FACE_VALENCE["surprise"] == 0.0
    assert all(src.FACE_VALENCE[e] < -1.0 for e in ("anger", "disgust", "fear", "sadness", "contempt"))
    props = {"happy": 0.9, "sad": 0.1, "angry": 0, "disgusted": 0, "fearful": 0, "surprised": 0}
    assert src.taiwan_valence(props) > 1.5
    assert src.taiwan_valence({"happy": 0, "sad": 0, "angry": 0.3, "disgusted": 0.7, "fearful": 0, "surprised": 0}) < -2
    assert src.emodb_speaker("03a01Fa.wav") == "03"


def test_voice_windows_are_word_length_means_without_silence() -> None:
    frames = np.zeros((5 * src.WORD_FRAMES, len(voice_mod.COLUMNS)), np.float32)
    rms = voice_mod.COLUMNS.index("rms_db")
    frames[:, rms] = -20.0
    frames[3 * src.WORD_FRAMES:4 * src.WORD_FRAMES, rms] = -90.0  # a pause
    frames[:src.WORD_FRAMES, 0] = 200.0
    rows = src.voice_windows(frames)
    assert rows.shape == (4, len(voice_mod.COLUMNS))
    assert rows[0, 0] == pytest.approx(200.0) and np.all(rows[:, rms] == -20.0)


def test_corpora_read_label_csv_with_the_one_reader(tmp_path: Path) -> None:
    """MOSI and MOSEI come through ``model.feature_store.read_label_rows``, the reader extraction uses."""
    folder = tmp_path / "data" / "mosi"
    folder.mkdir(parents=True)
    (folder / "label.csv").write_bytes("\ufeffid,text,label,mode\na_1,Great film,2.0,train\n".encode())
    train = load_mosi(tmp_path)["train"]  # a byte-order mark is not part of the first column
    assert train.ids == ("a_1",) and train.texts == ("great film",) and train.labels.tolist() == [2.0]
    (folder / "label.csv").write_bytes("id,text,label,mode\na_1,caf\xe9,1,train\n".encode("latin-1"))
    with pytest.raises(LabelFileError, match=r"label.csv:2: byte 0xe9 is not UTF-8"):
        load_mosi(tmp_path)


def test_evaluation_table() -> None:
    table = format_table({"m": [{"mosi_mae": 0.8, "mosi_acc7": 0.4}, {"mosi_mae": 0.9, "mosi_acc7": 0.5}]})
    assert "| m (n=2) | 0.850±0.050 |" in table and "45.0±5.0" in table


@requires_shared
def test_emodb_split_is_speaker_disjoint_and_labelled() -> None:
    with open(SHARED / "data" / "emodb" / "audio_labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    speakers = {src.emodb_speaker(r["Filename"]) for r in rows}
    assert src.EMODB_HELD_OUT_SPEAKERS < speakers and len(speakers) == 10
    assert {r["Emotion"] for r in rows} <= set(src.EMODB_VALENCE)


@requires_shared
def test_face_splits_are_person_disjoint() -> None:
    with open(SHARED / "data" / "faces" / "taiwan" / "labels.csv", newline="", encoding="utf-8") as f:
        performers = {r["performer_id"] for r in csv.DictReader(f)}
    held = {p for p in performers if int(p) % 5 == 0}
    assert held and held < performers
    with open(SHARED / "data" / "faces" / "muxspace" / "labels.csv", newline="", encoding="utf-8") as f:
        people = {Path(r["path"]).stem.rsplit("_", 1)[0] for r in csv.DictReader(f)}
    held = {p for p in people if zlib.crc32(p.encode()) % 5 == 0}
    assert 0.1 < len(held) / len(people) < 0.3


@requires_shared
def test_meld_classes_follow_the_sentiment_column() -> None:
    corpus, classes = load_meld(SHARED)["dev"]
    assert len(corpus) == len(classes) > 1000
    assert set(np.unique(classes)) == set(MELD_CLASSES.values())


def _text_init(layers: int, width: int, ff: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A Hugging Face-shaped encoder state (``layer.<i>.attention.self.query.weight``, ...)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"attention.self.query": (width, width), "attention.self.key": (width, width),
              "attention.self.value": (width, width), "attention.output.dense": (width, width),
              "attention.output.LayerNorm": (width,), "intermediate.dense": (ff, width),
              "output.dense": (width, ff), "output.LayerNorm": (width,)}
    state = {}
    for i in range(layers):
        for name, shape in shapes.items():
            state[f"layer.{i}.{name}.weight"] = (torch.ones(shape) if len(shape) == 1
                                                 else 0.2 * torch.randn(shape, generator=gen))
            state[f"layer.{i}.{name}.bias"] = 0.01 * torch.randn(shape[0], generator=gen)
    return state


TUNED_DIMS = replace(DIMS, text_tune_layers=1, text_tune_heads=2, text_tune_ff=16)


def _tuned_data() -> TrainingData:
    data = _curated_data()
    return replace(data, spec=replace(SPEC, text_layers=2), text_init=_text_init(3, WIDTHS["text"], 16))


def test_fine_tuned_text_layers_start_from_the_encoder_and_learn_at_their_own_rate(tmp_path: Path) -> None:
    options = replace(CURATED_OPTIONS, dims=TUNED_DIMS, text_lr=1e-4, length_buckets=2,
                      text=replace(CURATED_OPTIONS.text, layers=2))
    data = _tuned_data()
    trained = train_model(options, data, log_every_epoch=False)
    layer = trained.model.text_layers[0]
    start = data.text_init["layer.2.attention.self.query.weight"]  # layer index = the extractor's 2 frozen layers
    moved = float((layer.query.weight.detach() - start).abs().max())
    assert 0 < moved < 0.05  # trained, but at text_lr: far less than the fresh network moves
    # tuned layers read the encoder's raw values: identity normalisation for text
    assert np.array_equal(trained.stats["text"].mean, np.zeros(WIDTHS["text"], np.float32))
    assert np.array_equal(trained.stats["text"].std, np.ones(WIDTHS["text"], np.float32))
    folder = write_weights(tmp_path / "w", trained, data.spec)
    loaded = load_checkpoint(folder, expected_encoder=SPEC.text_encoder, expected_audio_columns=AUDIO_COLUMNS,
                             expected_vision_columns=VISION_COLUMNS)
    assert loaded.text_layers == 2
    pred = loaded.predict(data.select_samples)
    assert float(np.abs(pred - data.select_labels).mean()) == pytest.approx(trained.summary["dev_metrics"]["mae"],
                                                                            abs=1e-4)


def test_text_layers_need_the_encoder_state_and_matching_depth() -> None:
    options = replace(CURATED_OPTIONS, dims=TUNED_DIMS, text=replace(CURATED_OPTIONS.text, layers=2))
    with pytest.raises(ValueError, match="needs the text encoder's layer weights"):
        train_model(options, replace(_tuned_data(), text_init=None), log_every_epoch=False)
    with pytest.raises(ValueError, match="text.layers 3, but the text features went through 2"):
        train_model(replace(options, text=replace(options.text, layers=3)), _tuned_data(), log_every_epoch=False)
    with pytest.raises(ValueError, match="text_lr"):
        train_model(replace(CURATED_OPTIONS, text_lr=1e-4), _curated_data(), log_every_epoch=False)


def test_length_buckets_group_similar_lengths() -> None:
    from training.loop import _epoch_batches

    options = replace(CURATED_OPTIONS, length_buckets=3, mix_rate=0.0, token_dropout=0.0)
    data = _curated_data()
    names = list(options.sources)
    probs = np.array([0.5, 0.25, 0.25])
    batches = list(_epoch_batches(options, data, names, probs, np.random.default_rng(0), 7))
    assert len(batches) == 7 and all(len(b[0]) == options.batch_size for b in batches)
    # within one group of 3 batches, the longest text of one is at most the shortest of the next in length order
    spans = sorted((min(len(s.text_mask) for s in b[0]), max(len(s.text_mask) for s in b[0])) for b in batches[:3])
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    options = replace(CURATED_OPTIONS, epochs=3)
    whole = train_model(options, _curated_data(), log_every_epoch=False)
    resume = tmp_path / "run.resume.pt"

    def stop(step: int, lr: float, terms: object) -> None:
        if step == 2 * 4:  # first step of epoch 3
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(options, _curated_data(), on_step=stop, log_every_epoch=False, resume_path=resume)
    assert resume.is_file()
    # another config's run does not pick it up: it trains from its first step
    other_resume = tmp_path / "other.resume.pt"
    shutil.copyfile(resume, other_resume)
    other_steps: list[int] = []
    other = train_model(replace(options, epochs=1), _curated_data(), on_step=lambda s, *_: other_steps.append(s),
                        log_every_epoch=False, resume_path=other_resume)
    assert other.summary["epochs"] == 1 and other_steps[0] == 0
    # the same config's run goes on after the last finished epoch (a run started again from scratch would end
    # with the same weights too, so the steps it takes are what tells them apart)
    steps: list[int] = []
    again = train_model(options, _curated_data(), on_step=lambda s, *_: steps.append(s), log_every_epoch=False,
                        resume_path=resume)
    assert steps == list(range(2 * 4, 3 * 4))
    assert not resume.exists()
    a, b = whole.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["dev"] for h in again.summary["history"]] == [h["dev"] for h in whole.summary["history"]]


@pytest.mark.slow
@pytest.mark.parametrize("frozen", [4, 0])  # 0: the extractor gives the embeddings, every layer runs in MIAR
def test_miar_text_layers_continue_the_frozen_encoder_exactly(frozen: int) -> None:
    from extractors.text import TextEncoder, TextOptions
    from model.miar import Miar

    lower, full = TextEncoder(TextOptions(layers=frozen)), TextEncoder(TextOptions(layers=None))
    assert lower.recorded_layers == frozen
    model = Miar(MiarDims(text_tune_layers=6 - frozen)).eval()
    model.load_text_layers(lower.weights_of_layers(), first=frozen)
    words = [["this", "movie", "was", "not", "bad", "at", "all"], ["i", "don't", "hate", "it"]]
    low, high = lower.encode_batch(words), full.encode_batch(words)
    width = max(len(f.values) for f in low)
    x, mask = torch.zeros(2, width, 384), torch.zeros(2, width, dtype=torch.bool)
    for i, f in enumerate(low):
        x[i, : len(f.values)], mask[i, : len(f.values)] = torch.from_numpy(f.values), True
    with torch.no_grad():
        tuned = model.tune_text(x, mask).numpy()
    for i, f in enumerate(high):
        np.testing.assert_allclose(tuned[i, : len(f.values)], f.values, atol=1e-4)


@requires_shared
def test_mosei_has_the_standard_train_and_valid_folds_without_html_entities() -> None:
    from training.corpora import load_mosei

    mosei = load_mosei(SHARED)
    assert {k: len(v) for k, v in mosei.items()} == {"train": 14700, "valid": 1759}
    assert not any("&amp;" in t for t in mosei["train"].texts)
    assert all(-3 <= y <= 3 for y in mosei["valid"].labels)
    assert len(set(mosei["train"].ids)) == 14700  # video_id/clip_id is unique


def _acted_data() -> TrainingData:
    """MOSI-like text plus a CREMA-D-like source: neutral words, the label in the voice, four
    negative takes for one positive and one neutral (CREMA-D's draw)."""
    rng = np.random.default_rng(3)
    labels = np.array([2.0] * 10 + [0.0] * 10 + [-2.0] * 40, np.float32)
    acted = [_sample(rng, float(y), ("text", "audio")) for y in labels]
    data = _curated_data()
    return replace(data, samples={**data.samples, "crema_d": acted}, labels={**data.labels, "crema_d": labels},
                   classes={**data.classes, "crema_d": np.full(len(labels), NO_CLASS, np.int64)},
                   modalities={**data.modalities, "crema_d": ("text", "audio")}, neutral_text=frozenset({"crema_d"}))


def test_polarity_balanced_source_draws_each_polarity_alike_and_neutral_words_drop_at_their_rate() -> None:
    from training.loop import _draw_batch

    data = _acted_data()
    names = ["mosi", "crema_d"]
    probs = np.array([0.0, 1.0])

    def draw(options: TrainOptions) -> tuple[np.ndarray, float]:
        batch, labels, _, neutral = _draw_batch(options, data, names, probs, np.random.default_rng(0), size=3000)
        assert neutral.all()
        return labels, float(np.mean([len(s.text_mask) == 0 for s in batch]))

    base = replace(CURATED_OPTIONS, sources=("mosi", "crema_d"), source_weights={}, token_dropout=0.0,
                   mix_rate=0.0, modality_dropout=0.3)
    uniform, dropped = draw(base)
    assert np.mean(uniform < 0) == pytest.approx(40 / 60, abs=0.03)  # as the source is
    assert dropped == pytest.approx(0.3, abs=0.03)  # null: the modality_dropout chance
    balanced, dropped = draw(replace(base, polarity_balanced=("crema_d",), neutral_text_dropout=0.6))
    for sign in (-1, 0, 1):
        assert np.mean(np.sign(balanced) == sign) == pytest.approx(1 / 3, abs=0.03)
    assert dropped == pytest.approx(0.6, abs=0.03)
    assert draw(replace(base, neutral_text_dropout=0.0))[1] == 0.0  # the words stay, whatever modality_dropout


def test_new_sampling_options_are_checked_and_leave_cached_runs_found() -> None:
    from training.loop import option_refusals, options_key

    kinds = {**CURATED_KINDS, "crema_d": ("text", "audio")}
    problems = option_refusals(replace(CURATED_OPTIONS, polarity_balanced=("crema_d",), neutral_text_dropout=1.0),
                               kinds, ())
    assert any("polarity_balanced names ['crema_d']" in p for p in problems)
    assert any("neutral_text_dropout must be in [0, 1)" in p for p in problems)
    # options added after miar-v3 leave its runs' folders (keyed by options_key) as they were at their defaults
    v3 = TrainOptions.from_json(REPO_ROOT / "training" / "configs" / "miar-v3.json")
    assert options_key(v3)[:16] == "d1bedea4e616a06a"
    assert options_key(replace(v3, neutral_text_dropout=0.3)) != options_key(v3)
    assert options_key(replace(v3, polarity_balanced=("crema_d",))) != options_key(v3)


def test_the_release_ablations_are_the_releases_themselves() -> None:
    """The shipped recipe at 8 epochs (with miar-v4's reader, or the voice states kept from transcription) is
    miar-v5's (miar-v4's, miar-v6's) config to the key, so their three cached seeds are read, not trained again."""
    from training.loop import options_key

    for release, name in (("miar-v5", "8 epochs (miar-v5)"), ("miar-v4", "4 text layers tuned (miar-v4)"),
                          ("miar-v6", "voice states kept from transcription (miar-v6)")):
        config = TrainOptions.from_json(REPO_ROOT / "training" / "configs" / f"{release}.json")
        variant = _variant_options(DEFAULT_CONFIG, ABLATIONS[name][1], config.seed, None)
        assert options_key(variant) == options_key(config), name
        assert options_key(TrainOptions.from_json(DEFAULT_CONFIG)) != options_key(config)


def test_crema_d_features_are_kept_per_text_depth_and_derived_from_another(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """One folder per text depth and states source; a recipe of a new depth gets its folder by
    encoding the text of an existing one again, never by running Whisper over the clips a second time."""
    import pipeline.extract
    from training import crema_d

    # second-pass states (the shipped weights'): the folders keep their names
    assert crema_d.features_dir(tmp_path) == crema_d.features_dir(tmp_path, 2) == tmp_path / "crema-d-features"
    assert crema_d.features_dir(tmp_path, 0).name == "crema-d-features-layers-0"
    assert crema_d.features_dir(tmp_path, None).name == "crema-d-features-layers-all"
    # states kept from Whisper's transcription pass (miar-v6's recipe): folders of their own
    asr = "transcription pass"
    assert crema_d.features_dir(tmp_path, 2, asr) == tmp_path / "crema-d-features-asr-states-layers-2"
    assert crema_d.features_dir(tmp_path, 0, asr).name == "crema-d-features-asr-states-layers-0"
    with pytest.raises(ValueError, match="one of"):
        crema_d.features_dir(tmp_path, 0, "third pass")
    existing = crema_d.features_dir(tmp_path, 2, asr)
    existing.mkdir()
    (existing / "manifest.json").write_text("{}")
    calls = []
    monkeypatch.setattr(pipeline.extract, "reencode_text", lambda source, out, text: calls.append((source, out, text))
                        or pipeline.extract.ExtractSummary(0, 0, (), out / "manifest.json"))
    monkeypatch.setattr(crema_d, "build_dataset", lambda *a: pytest.fail("the clips were extracted again"))
    config = REPO_ROOT / "training" / "configs" / "miar-v6.json"
    assert crema_d.extract(cache=tmp_path, config=config) == crema_d.features_dir(tmp_path, 0, asr)
    assert [(s, o, t.layers) for s, o, t in calls] == [(existing, crema_d.features_dir(tmp_path, 0, asr), 0)]
    # a recipe on second-pass states (miar-v5) derives from a folder of that kind only
    calls.clear()
    second = crema_d.features_dir(tmp_path, 2, "second pass")
    second.mkdir()
    (second / "manifest.json").write_text("{}")
    config = REPO_ROOT / "training" / "configs" / "miar-v5.json"
    assert crema_d.extract(cache=tmp_path, config=config) == crema_d.features_dir(tmp_path, 0, "second pass")
    assert [(s, o) for s, o, _ in calls] == [(second, crema_d.features_dir(tmp_path, 0, "second pass"))]
