"""The model core: MIAR network, masks, alignment loss, checkpoints and the shipped weights (metrics:
tests/test_metrics.py).

Training (corpora, sources, the loop, evaluation) is tested in tests/test_training.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.voice_states import audio_columns
from model import checkpoint as checkpoint_mod
from model.batch import ModalityStats, SampleInput, collate
from model.checkpoint import CheckpointError, load_checkpoint, read_weights_config, save_checkpoint
from model.miar import Miar, MiarDims, info_nce
from storage.files import sha256_of
from storage.locations import DEFAULT_WEIGHTS

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = DEFAULT_WEIGHTS
DIMS = MiarDims(d_model=32, n_heads=2, n_layers=1, proj_dim=16, dropout=0.0)
INPUT_DIMS = {"text": 384, "audio": len(voice_mod.COLUMNS), "vision": len(face_mod.COLUMNS)}


def _sample(rng: np.random.Generator, text: int = 6, audio: int | None = 5, vision: int | None = 4) -> SampleInput:
    def arr(n: int | None, d: int) -> np.ndarray | None:
        return None if n is None else rng.normal(size=(n, d)).astype(np.float32)

    return SampleInput(
        text=arr(text, 384), text_mask=np.ones(text, dtype=bool),
        audio=arr(audio, INPUT_DIMS["audio"]), audio_mask=None if audio is None else np.ones(audio, dtype=bool),
        vision=arr(vision, INPUT_DIMS["vision"]), vision_mask=None if vision is None else np.ones(vision, dtype=bool),
    )


def _forward(model: Miar, samples: list[SampleInput]):
    b = collate(samples, INPUT_DIMS)
    return model(b.text, b.text_mask, b.audio, b.audio_mask, b.vision, b.vision_mask)


@pytest.fixture(scope="module")
def model() -> Miar:
    torch.manual_seed(0)
    return Miar(replace(DIMS, audio_dim=INPUT_DIMS["audio"], vision_dim=INPUT_DIMS["vision"])).eval()


def test_forward_finite_whatever_is_missing(model: Miar) -> None:
    rng = np.random.default_rng(0)
    batches = {
        "all present": [_sample(rng), _sample(rng, text=3, audio=7, vision=2)],
        "audio absent everywhere": [_sample(rng, audio=None), _sample(rng, audio=None, vision=None)],
        "vision absent everywhere": [_sample(rng, vision=None), _sample(rng, vision=None)],
        "text only": [_sample(rng, audio=None, vision=None)] * 3,
        "mixed": [_sample(rng, audio=None), _sample(rng, vision=None), _sample(rng, text=2)],
    }
    for name, samples in batches.items():
        out = _forward(model, samples)
        assert torch.isfinite(out.score).all(), name
        assert torch.isfinite(out.global_tokens).all(), name
        assert (out.score.abs() <= 3).all(), name
    out = _forward(model, batches["audio absent everywhere"])
    assert not out.present[:, 1].any() and out.present[:, 0].all()


def test_sample_with_no_valid_token_at_all_is_finite(model: Miar) -> None:
    empty = SampleInput(text=np.zeros((2, 384), np.float32), text_mask=np.zeros(2, dtype=bool))
    out = _forward(model, [empty, _sample(np.random.default_rng(1))])
    assert torch.isfinite(out.score).all()
    loss = model.alignment_loss(out)
    assert torch.isfinite(loss)


def test_gradients_are_finite_with_missing_modalities() -> None:
    torch.manual_seed(0)
    net = Miar(replace(DIMS, audio_dim=INPUT_DIMS["audio"], vision_dim=INPUT_DIMS["vision"]))
    rng = np.random.default_rng(2)
    out = _forward(net, [_sample(rng, audio=None, vision=None), _sample(rng, audio=None, vision=None)])
    out.score.sum().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_padding_values_do_not_change_the_output(model: Miar) -> None:
    rng = np.random.default_rng(3)
    short, long = _sample(rng, text=3, audio=2, vision=2), _sample(rng, text=9, audio=8, vision=7)
    b = collate([short, long], INPUT_DIMS)
    base = model(b.text, b.text_mask, b.audio, b.audio_mask, b.vision, b.vision_mask).score
    noisy = {}
    for name in ("text", "audio", "vision"):
        values, mask = getattr(b, name).clone(), getattr(b, f"{name}_mask")
        values[~mask] = torch.randn_like(values[~mask]) * 100
        noisy[name] = values
    out = model(noisy["text"], b.text_mask, noisy["audio"], b.audio_mask, noisy["vision"], b.vision_mask).score
    torch.testing.assert_close(out, base, atol=1e-5, rtol=1e-5)
    # and the masked-out sample scores as it does alone
    alone = _forward(model, [short]).score
    torch.testing.assert_close(base[:1], alone, atol=1e-5, rtol=1e-5)


def test_info_nce_prefers_aligned_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(16, 8, generator=g), dim=-1)
    b = torch.nn.functional.normalize(a + 0.1 * torch.randn(16, 8, generator=g), dim=-1)
    aligned = info_nce(a, b, 0.1)
    shuffled = info_nce(a, b[torch.randperm(16, generator=g)], 0.1)
    assert float(aligned) < float(shuffled)
    assert float(aligned) < np.log(16)  # better than chance


def test_alignment_loss_only_uses_co_present_pairs(model: Miar) -> None:
    rng = np.random.default_rng(4)
    text_only = _forward(model, [_sample(rng, audio=None, vision=None) for _ in range(4)])
    assert float(model.alignment_loss(text_only).detach()) == 0.0
    full = _forward(model, [_sample(rng) for _ in range(4)])
    assert float(model.alignment_loss(full).detach()) > 0.0


def _save(folder: Path, model: Miar, **overrides) -> Path:
    rng = np.random.default_rng(5)
    stats = {"text": ModalityStats(rng.normal(size=384).astype(np.float32), np.full(384, 2.0, np.float32)),
             "audio": None, "vision": None}
    kwargs = dict(text_encoder="all-MiniLM-L6-v2", text_extractor_version="text-v1", max_tokens=128,
                  audio_columns=voice_mod.COLUMNS, vision_columns=face_mod.COLUMNS, stats=stats,
                  trained_modalities=("text",), training={"sources": ["unit-test"]})
    kwargs.update(overrides)
    return save_checkpoint(folder, model, **kwargs)


#: The shipped weights read the voice descriptors and Whisper's encoder states (extractors.voice_states).
SHIPPED_AUDIO = audio_columns(True)


def _load(folder: Path, **overrides):
    kwargs = dict(expected_encoder="all-MiniLM-L6-v2", expected_audio_columns=voice_mod.COLUMNS,
                  expected_vision_columns=face_mod.COLUMNS)
    kwargs.update(overrides)
    return load_checkpoint(folder, **kwargs)


def test_checkpoint_round_trip(model: Miar, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    samples = [_sample(rng, text=n) for n in (3, 8, 5)]
    first = _load(_save(tmp_path / "w", model))
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["trained_modalities"] == ["text"]
    assert config["normalisation"]["audio"]["trained"] is False
    assert config["audio_columns"] == list(voice_mod.COLUMNS)
    pred = first.predict(samples)
    assert pred.shape == (3,) and pred.dtype == np.float32 and np.isfinite(pred).all()
    np.testing.assert_array_equal(pred, _load(tmp_path / "w").predict(samples))
    np.testing.assert_array_equal(pred, first.predict(samples))  # deterministic
    assert first.predict([]).shape == (0,)
    assert first.modalities == ("text",)


def test_untrained_modalities_are_not_fed(model: Miar, tmp_path: Path) -> None:
    loaded = _load(_save(tmp_path / "w", model))
    rng = np.random.default_rng(7)
    full = _sample(rng)
    text_only = SampleInput(text=full.text, text_mask=full.text_mask)
    np.testing.assert_array_equal(loaded.predict([full]), loaded.predict([text_only]))


def test_sha256_mismatch_raises(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    data = bytearray((folder / "model.pt").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        _load(folder)


def test_missing_files_raise(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="lacks"):
        _load(tmp_path)


def test_weights_config_is_readable_before_loading(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    config = read_weights_config(folder)
    assert config["text_encoder"] == "all-MiniLM-L6-v2" and config["max_tokens"] == 128
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        read_weights_config(folder)


def test_checkpoint_files_are_written_atomically_with_ordinary_permissions(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.pt"]  # no temporary file left
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("config.json", "model.pt"):  # the permissions any new file gets (mkstemp alone gives 0600)
        assert (folder / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_core_imports_no_extractor_pipeline_training_or_sklearn() -> None:
    # One exception: extractors.bert, the BERT layer that the text extractor runs frozen and MIAR
    # fine-tunes (one definition for both; pure PyTorch, no media).
    code = ("import sys, model.schema, model.errors, model.batch, model.miar, model.checkpoint, model.metrics, "
            "model.feature_store; print(sorted({m for m in sys.modules "
            "if m.startswith(('extractors', 'pipeline', 'training', 'sklearn'))}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['extractors', 'extractors.bert']"


def test_column_and_encoder_mismatch_raise(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    with pytest.raises(CheckpointError, match="audio_columns"):
        _load(folder, expected_audio_columns=voice_mod.COLUMNS[::-1])
    with pytest.raises(CheckpointError, match="vision_columns"):
        _load(folder, expected_vision_columns=face_mod.COLUMNS[:-1] + ("extra",))
    with pytest.raises(CheckpointError, match="text encoder"):
        _load(folder, expected_encoder="some-other-encoder")


def _edit_config(folder: Path, edit) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def _set_dims(**values):
    return lambda c: c["dims"].update(values)


def _drop(*keys):
    def edit(config: dict) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return edit


# Each edit is a case of issue 11 item 7 (or a neighbour of one); the message names config.json and the field.
@pytest.mark.parametrize("edit,message", [
    (_set_dims(d_model=40000), r"dims.d_model is 40000, expected an integer in \[1, 4096\]"),
    (_set_dims(d_model=1e9), r"dims.d_model is 1000000000.0, expected an integer in \[1, 4096\]"),
    (_set_dims(n_layers=1_000_000), r"dims.n_layers is 1000000, expected an integer in \[1, 64\]"),
    (_set_dims(d_model="128"), r"dims.d_model is '128', expected an integer"),
    (_set_dims(dropout="0.1"), r"dims.dropout is '0.1', expected a number in \[0, 0.99\]"),
    (_set_dims(interaction=1), r"dims.interaction is 1, expected true or false"),
    (_set_dims(n_heads=3), r"dims.n_heads 3 does not divide dims.d_model 32"),
    (_set_dims(n_heads=0), r"dims.n_heads is 0, expected an integer in \[1, 128\]"),
    (_set_dims(init_temperature=float("nan")), r"dims.init_temperature is nan, expected a number"),
    (_set_dims(d_model=4096, n_heads=8, n_layers=64, ff_mult=16), r"more than the 536,870,912 this code builds"),
    (_set_dims(d_model=64), r"model.pt: [\d,]+ bytes, but the dims in config.json make [\d,]+ bytes"),
    (_drop("dims"), r"config.json: no 'dims'; a weights config holds dims, text_encoder"),
    (_drop("normalisation"), r"config.json: no 'normalisation'"),
    (_drop("dims", "n_heads"), r"config.json: dims has no 'n_heads'"),
    (lambda c: c.update(dims=[1, 2]), r"config.json: dims is \[1, 2\], expected an object"),
    (lambda c: c.update(max_tokens="128"), r"config.json: max_tokens is '128', expected an integer"),
    (lambda c: c.update(trained_modalities=["smell"]), r"trained_modalities is \['smell'\], expected some of"),
    (lambda c: c.update(trained_modalities=[]), r"trained_modalities is \[\], expected some of"),
    (lambda c: c.update(trained_modalities=["text", "audio"]), r"normalisation.audio is \{'trained': False"),
    (lambda c: c["normalisation"]["text"].update(mean=[0.0] * 10), r"normalisation.text.mean has 10 values, its "
                                                                    r"columns are 384"),
    (lambda c: c["normalisation"]["text"]["std"].__setitem__(0, 0.0), r"normalisation.text.std holds a value that "
                                                                     r"is not a finite number above 0"),
    (lambda c: c.update(audio_columns=c["audio_columns"][:-1]), r"audio_columns lists 33 columns, dims say 34"),
    (lambda c: c.update(model_sha256=None), r"model_sha256 is None, expected a string"),
    (_set_dims(text_tune_layers=1000), r"dims.text_tune_layers is 1000, expected an integer in \[0, 64\]"),
    (lambda c: c.update(text_layers="4"), r"text_layers is '4', expected null or an integer in \[0, 64\]"),
    (lambda c: c.update(text_layers=-1), r"text_layers is -1, expected null or an integer in \[0, 64\]"),
])
def test_malformed_weights_config_is_one_line_before_anything_is_built(model: Miar, tmp_path: Path, edit,
                                                                       message: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _save(tmp_path / "w", model)
    _edit_config(folder, edit)
    built = []

    def no_allocation(dims: MiarDims) -> Miar:  # the size check may build it on the meta device only
        net = build(dims)
        built.append(dims)
        assert all(t.is_meta for t in net.state_dict().values()), "the network was allocated before the refusal"
        return net

    def no_weights(*args: object, **kwargs: object) -> None:
        raise AssertionError("model.pt was read before the refusal")

    build = checkpoint_mod.Miar
    monkeypatch.setattr(checkpoint_mod, "Miar", no_allocation)
    monkeypatch.setattr(checkpoint_mod.torch, "load", no_weights)
    with pytest.raises(CheckpointError, match=message) as raised:
        _load(folder)
    assert len(built) <= 1
    text = str(raised.value)
    assert "\n" not in text and str(folder) in text and len(text) < 400


def test_empty_or_foreign_model_file_is_one_line(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    (folder / "model.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"model.pt is empty \(0 bytes\)"):
        _load(folder)
    with pytest.raises(CheckpointError, match=r"model.pt is empty"):
        read_weights_config(folder)
    folder = _save(tmp_path / "w2", model)  # a pickle of the right size and hash that is not a state_dict
    size = (folder / "model.pt").stat().st_size
    torch.save([torch.zeros(1)], folder / "model.pt")
    with open(folder / "model.pt", "ab") as f:
        f.write(b"\0" * (size - (folder / "model.pt").stat().st_size))
    _edit_config(folder, lambda c: c.update(model_sha256=sha256_of(folder / "model.pt")))
    with pytest.raises(CheckpointError, match=r"model.pt does not fit the network in config.json"):
        _load(folder)


def test_oversized_or_nested_config_json_is_refused_unread(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="cannot be read as JSON"):
        read_weights_config(folder)
    with open(folder / "config.json", "w") as f:
        f.truncate(17 << 20)
    with pytest.raises(CheckpointError, match="more than a weights config holds"):
        read_weights_config(folder)


def test_weights_from_before_the_text_layers_load_with_every_encoder_layer(model: Miar, tmp_path: Path) -> None:
    folder = _save(tmp_path / "w", model)
    added = ("text_tune_layers", "text_tune_heads", "text_tune_ff")
    _edit_config(folder, lambda c: (c.pop("text_layers", None), [c["dims"].pop(k) for k in added]))
    loaded = _load(folder)
    assert loaded.text_layers is None and len(loaded._model.text_layers) == 0


def test_dims_schema_covers_every_dims_field() -> None:
    from dataclasses import fields

    from model.checkpoint import _DIMS_SCHEMA

    assert set(_DIMS_SCHEMA) == {f.name for f in fields(MiarDims)}


NEEDS_WEIGHTS = pytest.mark.skipif(not (SHIPPED / "model.pt").is_file(), reason=f"{SHIPPED} not trained yet")


@NEEDS_WEIGHTS
def test_text_options_come_from_the_weights_in_one_place() -> None:
    from extractors.text import TextOptions
    from pipeline.models import weights_text_options

    config = read_weights_config(SHIPPED)
    text = weights_text_options(config, TextOptions(max_tokens=24, batch_size=7, layers=None))
    assert text == TextOptions(encoder=config["text_encoder"], max_tokens=config["max_tokens"], batch_size=7,
                               layers=config["text_layers"])
    frozen = {k: v for k, v in config.items() if k != "text_layers"}  # miar-v1: fed every layer
    assert weights_text_options(frozen).layers is None
    with pytest.raises(CheckpointError, match="max_tokens"):
        weights_text_options({"text_encoder": "x", "max_tokens": "many"})


@pytest.mark.slow
@NEEDS_WEIGHTS
def test_shipped_weights_score_obvious_sentences() -> None:
    from extractors.text import TextEncoder, TextOptions, normalise_text

    loaded = _load(SHIPPED, expected_audio_columns=SHIPPED_AUDIO)
    # weights/ holds only what training changed (the base encoder stays in its package): 60 MB in all
    assert sum(p.stat().st_size for p in (REPO_ROOT / "weights").rglob("*") if p.is_file()) <= 60e6
    encoder = TextEncoder(TextOptions(encoder=loaded.text_encoder, layers=loaded.text_layers))
    sentences = ["I loved this movie, it was wonderful!", "This was a terrible, boring waste of time."]
    feats = encoder.encode_batch([normalise_text(s).split() for s in sentences])
    samples = [SampleInput(text=f.values, text_mask=np.ones(len(f.tokens), dtype=bool)) for f in feats]
    positive, negative = loaded.predict(samples)
    assert positive > 1.0
    assert negative < -1.0


@pytest.mark.slow
@NEEDS_WEIGHTS
def test_shipped_weights_loaded_twice_score_identically() -> None:
    from extractors.text import TextEncoder, TextOptions, normalise_text

    first, second = (_load(SHIPPED, expected_audio_columns=SHIPPED_AUDIO) for _ in range(2))
    assert first.text_layers == 0 and len(first._model.text_layers) == 6  # the embeddings frozen, all 6 layers tuned
    encoder = TextEncoder(TextOptions(encoder=first.text_encoder, layers=first.text_layers))
    feats = encoder.encode_batch([normalise_text(s).split() for s in ("Not bad at all.", "The meeting is at 3 pm.")])
    samples = [SampleInput(text=f.values, text_mask=np.ones(len(f.tokens), dtype=bool)) for f in feats]
    assert np.array_equal(first.predict(samples), second.predict(samples))


@NEEDS_WEIGHTS
def test_shipped_config_lists_every_trained_modality_and_source() -> None:
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["trained_modalities"] == ["text", "audio", "vision"]
    assert {"mosi", "crema_d", "taiwan"} <= set(config["training"]["sources"])
    for modality in config["trained_modalities"]:
        assert config["normalisation"][modality]["trained"]


def _text_free(audio: np.ndarray | None = None, vision: np.ndarray | None = None) -> SampleInput:
    return SampleInput(
        text=np.zeros((0, 1), np.float32), text_mask=np.zeros(0, bool),
        audio=audio, audio_mask=None if audio is None else np.ones(len(audio), bool),
        vision=vision, vision_mask=None if vision is None else np.ones(len(vision), bool),
    )


@NEEDS_WEIGHTS
def test_shipped_audio_only_and_vision_only_scores_are_finite_and_follow_the_input() -> None:
    loaded = _load(SHIPPED, expected_audio_columns=SHIPPED_AUDIO)
    audio_mean = np.asarray(loaded.config["normalisation"]["audio"]["mean"], np.float32)
    audio_std = np.asarray(loaded.config["normalisation"]["audio"]["std"], np.float32)
    vision_mean = np.asarray(loaded.config["normalisation"]["vision"]["mean"], np.float32)
    vision_std = np.asarray(loaded.config["normalisation"]["vision"]["std"], np.float32)
    rng = np.random.default_rng(0)
    audio = [audio_mean + audio_std * rng.normal(size=(5, len(audio_mean))).astype(np.float32) for _ in range(4)]
    vision = [vision_mean + vision_std * rng.normal(size=(1, len(vision_mean))).astype(np.float32) for _ in range(4)]
    scores = loaded.predict([_text_free(audio=a) for a in audio] + [_text_free(vision=v) for v in vision])
    assert np.all(np.isfinite(scores)) and np.all(np.abs(scores) <= 3.0)
    assert np.ptp(scores[:4]) > 1e-3, "audio-only scores ignore the audio"
    assert np.ptp(scores[4:]) > 1e-3, "vision-only scores ignore the face"


@NEEDS_WEIGHTS
def test_shipped_vision_branch_reads_a_smile() -> None:
    """Raising the smile blendshapes of an average face must raise the vision-only score."""
    loaded = _load(SHIPPED, expected_audio_columns=SHIPPED_AUDIO)
    mean = np.asarray(loaded.config["normalisation"]["vision"]["mean"], np.float32)
    std = np.asarray(loaded.config["normalisation"]["vision"]["std"], np.float32)
    smiling = mean.copy()
    for name in ("bs_mouthSmileLeft", "bs_mouthSmileRight", "bs_cheekSquintLeft", "bs_cheekSquintRight"):
        i = face_mod.COLUMNS.index(name)
        smiling[i] = mean[i] + 2.0 * std[i]
    neutral_score, smile_score = loaded.predict([_text_free(vision=mean[None]), _text_free(vision=smiling[None])])
    assert smile_score > neutral_score + 0.3


def test_interaction_free_ablation_and_sentence_path_are_finite() -> None:
    torch.manual_seed(0)
    dims = replace(DIMS, audio_dim=INPUT_DIMS["audio"], vision_dim=INPUT_DIMS["vision"], interaction=False,
                   sentence_path=True, n_classes=3)
    net = Miar(dims).eval()
    rng = np.random.default_rng(1)
    out = _forward(net, [_sample(rng), _sample(rng, audio=None, vision=None), _sample(rng, text=0)])
    assert torch.isfinite(out.score).all() and out.class_logits.shape == (3, 3)
    assert torch.isfinite(out.modality_scores).all()


def test_sentiment_alignment_prefers_same_bin_across_modalities() -> None:
    from model.miar import MiarOutput, sentiment_alignment_loss

    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    present = torch.tensor([[True, True, False], [True, True, False]])
    bins = torch.tensor([2, 0])
    aligned = torch.stack([torch.stack([pos, pos, pos]), torch.stack([neg, neg, neg])])
    crossed = torch.stack([torch.stack([pos, neg, pos]), torch.stack([neg, pos, neg])])

    def loss(emb: torch.Tensor) -> float:
        out = MiarOutput(score=torch.zeros(2), present=present, global_tokens=torch.zeros(2, 4, 2), aligned=emb)
        return float(sentiment_alignment_loss(out, bins, 0.1))

    assert loss(aligned) < loss(crossed)
    text_only = MiarOutput(score=torch.zeros(2), present=present & torch.tensor([True, False, False]),
                           global_tokens=torch.zeros(2, 4, 2), aligned=aligned)
    assert float(sentiment_alignment_loss(text_only, bins, 0.1)) == 0.0


def test_parameter_shapes_are_the_built_networks() -> None:
    """The size check before loading (model.checkpoint) trusts parameter_shapes instead of building
    the network; every option that adds or removes a part must move both alike."""
    import collections
    import itertools

    from model.miar import parameter_shapes

    base = MiarDims(text_dim=24, audio_dim=5, vision_dim=7, d_model=8, n_heads=2, max_len=11, proj_dim=6,
                    text_tune_heads=4, text_tune_ff=12)
    for n_layers, tune, sentence, interaction, classes, ff_mult in itertools.product(
            [1, 2], [0, 2], [False, True], [False, True], [0, 3], [2, 3]):
        dims = replace(base, n_layers=n_layers, text_tune_layers=tune, sentence_path=sentence,
                       interaction=interaction, n_classes=classes, ff_mult=ff_mult)
        built = collections.Counter(tuple(t.shape) for t in Miar(dims).state_dict().values())
        assert collections.Counter(parameter_shapes(dims)) == built, dims
