"""Our own BERT forward: the embeddings and post-LayerNorm layers of a BERT-family encoder.

Why not ``transformers``: importing it to run MiniLM-L6 costs more than a second of a 2-core
machine's start-up (its model utilities pull in torchvision, ``torch._dynamo`` and
``scipy.optimize`` through loss functions this encoder never uses), which is a third of what
``pipeline text`` takes to score two lines. A BERT encoder is a few dozen lines of PyTorch, and
the model package ships its weights as ``model.safetensors`` and its tokenizer as
``tokenizer.json``, which ``safetensors`` and ``tokenizers`` read without ``transformers``.

The operations are those of ``transformers``' ``BertModel`` (eval mode, SDPA attention), in the
same order, so the states are the same to the bit: ``tests/test_text.py`` compares them where
``transformers`` is installed. ``BertLayer`` is also the layer MIAR fine-tunes
(``model.miar.Miar.text_layers``): one definition, so the frozen layers here and the tuned copies
there compute alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BERT_LAYER_NAMES", "BertConfig", "BertEncoder", "BertLayer", "is_bert_folder"]

#: Hugging Face ``BertLayer`` parameter names (as in a model.safetensors) -> ours (``BertLayer``).
BERT_LAYER_NAMES: dict[str, str] = {
    "attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
    "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "ff_in", "output.dense": "ff_out", "output.LayerNorm": "ff_norm",
}
_WEIGHTS_FILE = "model.safetensors"
_CONFIG_FILE = "config.json"


class BertLayer(nn.Module):
    """One BERT encoder layer (post-LayerNorm, GELU), the shape of MiniLM's and BERT's."""

    def __init__(self, width: int, heads: int, ff: int, dropout: float, eps: float = 1e-12) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"text layer width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)
        self.attn_out = nn.Linear(width, width)
        self.attn_norm = nn.LayerNorm(width, eps=eps)
        self.ff_in = nn.Linear(width, ff)
        self.ff_out = nn.Linear(ff, width)
        self.ff_norm = nn.LayerNorm(width, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.p = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N, width) states and (B, N) True-where-valid mask -> the layer's (B, N, width) output."""
        b, n, width = x.shape
        split = (b, n, self.heads, width // self.heads)
        q, k, v = (f(x).view(split).transpose(1, 2) for f in (self.query, self.key, self.value))
        # Additive mask as the encoder was trained with; a row with no valid key stays finite.
        bias = (~mask).to(x.dtype)[:, None, None, :] * torch.finfo(x.dtype).min
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0)
        h = self.attn_norm(x + self.dropout(self.attn_out(ctx.transpose(1, 2).reshape(b, n, width))))
        return self.ff_norm(h + self.dropout(self.ff_out(F.gelu(self.ff_in(h)))))

    def load_hf_state(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Load this layer from a Hugging Face state whose keys for it start with ``prefix``
        (``"encoder.layer.3."``, ``"layer.3."``).

        Raises:
            ValueError: A parameter is missing or has another shape.
        """
        ours = {}
        for hf, name in BERT_LAYER_NAMES.items():
            for kind in ("weight", "bias"):
                key = f"{prefix}{hf}.{kind}"
                if key not in state:
                    raise ValueError(f"encoder state lacks {key}: it has fewer layers or another layout")
                ours[f"{name}.{kind}"] = state[key]
        try:
            self.load_state_dict(ours)
        except RuntimeError as e:
            raise ValueError(f"encoder state {prefix}*: {str(e).splitlines()[-1].strip()}") from e


@dataclass(frozen=True)
class BertConfig:
    """The shape of a BERT encoder, read from its folder's config.json."""

    width: int
    heads: int
    ff: int
    layers: int
    eps: float
    vocab: int
    positions: int
    token_types: int

    @classmethod
    def read(cls, folder: Path) -> BertConfig:
        """The config of ``folder``.

        Raises:
            ValueError: config.json is missing, unreadable or not a BERT encoder's.
        """
        path = Path(folder) / _CONFIG_FILE
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
        if raw.get("model_type") != "bert":
            raise ValueError(f"{path}: model_type {raw.get('model_type')!r}, not a BERT encoder")
        if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only GELU layers with absolute positions are supported")
        try:
            return cls(width=int(raw["hidden_size"]), heads=int(raw["num_attention_heads"]),
                       ff=int(raw["intermediate_size"]), layers=int(raw["num_hidden_layers"]),
                       eps=float(raw.get("layer_norm_eps", 1e-12)), vocab=int(raw["vocab_size"]),
                       positions=int(raw["max_position_embeddings"]), token_types=int(raw.get("type_vocab_size", 2)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e!r}") from e


def is_bert_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a BERT encoder this module runs (config.json says so, weights are there)."""
    try:
        BertConfig.read(folder)
    except ValueError:
        return False
    return (Path(folder) / _WEIGHTS_FILE).is_file()


class BertEncoder(nn.Module):
    """Token ids in, the states after the first ``layers`` BERT layers out (CPU, eval mode); with 0
    layers, the embeddings (for weights that fine-tune every layer)."""

    def __init__(self, config: BertConfig, layers: int) -> None:
        super().__init__()
        if not 0 <= layers <= config.layers:
            raise ValueError(f"the encoder has {config.layers} layers; {layers} asked for")
        self.config = config
        self.word = nn.Embedding(config.vocab, config.width)
        self.position = nn.Embedding(config.positions, config.width)
        self.token_type = nn.Embedding(config.token_types, config.width)
        self.norm = nn.LayerNorm(config.width, eps=config.eps)
        self.layers = nn.ModuleList(BertLayer(config.width, config.heads, config.ff, 0.0, config.eps)
                                    for _ in range(layers))

    @classmethod
    def from_folder(cls, folder: Path, layers: int | None = None) -> BertEncoder:
        """The encoder of a model folder (config.json + model.safetensors), its first ``layers``
        layers (None: all), in eval mode.

        Raises:
            ValueError: The folder is not a BERT encoder's or its weights do not fit its config.
        """
        config = BertConfig.read(folder)
        encoder = cls(config, config.layers if layers is None else layers)
        state = read_state(folder)
        try:
            encoder.word.weight.data.copy_(state["embeddings.word_embeddings.weight"])
            encoder.position.weight.data.copy_(state["embeddings.position_embeddings.weight"])
            encoder.token_type.weight.data.copy_(state["embeddings.token_type_embeddings.weight"])
            encoder.norm.weight.data.copy_(state["embeddings.LayerNorm.weight"])
            encoder.norm.bias.data.copy_(state["embeddings.LayerNorm.bias"])
        except (KeyError, RuntimeError) as e:
            raise ValueError(f"{Path(folder) / _WEIGHTS_FILE}: embeddings do not fit config.json: {e!r}") from e
        for i, layer in enumerate(encoder.layers):
            layer.load_hf_state(state, f"encoder.layer.{i}.")
        return encoder.eval()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N) token ids and (B, N) True-where-valid mask -> (B, N, width) states.

        As ``BertModel`` with one segment: word + token type 0, then + position, then LayerNorm.
        """
        if ids.shape[1] > self.config.positions:
            raise ValueError(f"{ids.shape[1]} tokens, more than the encoder's {self.config.positions} positions")
        x = self.word(ids) + self.token_type(torch.zeros_like(ids))
        x = self.norm(x + self.position.weight[: ids.shape[1]].unsqueeze(0))
        for layer in self.layers:
            x = layer(x, mask)
        return x


def read_state(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a model folder's model.safetensors (CPU).

    Raises:
        ValueError: The file is missing or not a safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / _WEIGHTS_FILE
    try:
        return load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as e:
        raise ValueError(f"{path}: {e}") from e
