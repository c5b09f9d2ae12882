"""MIAR: Modality Interaction and Alignment Representation (a documented reconstruction).

The paper (arXiv 2601.02414) is public only as an abstract: a representation that lets
each modality draw on the others (interaction), aligns the modalities' representations
(contrastive alignment) beside the regression objective, and fuses global tokens into a
sentiment score. Everything below the abstract's level is our choice; model/DESIGN.md
explains each one. In short:

1. Projection: each modality's per-token features (text 384-d MiniLM tokens, audio 34-d
   voice descriptors, vision 56-d face descriptors, all standardised beforehand) go
   through Linear -> LayerNorm into ``d_model`` plus a learned position embedding.
2. Modality encoders: a small pre-norm Transformer encoder per modality with key padding
   masks. A sample that lacks the modality entirely gets one dummy key unmasked inside
   the encoder (so softmax never sees an all-masked row, which is where NaNs come from)
   and its outputs are discarded by the presence flag afterwards.
3. Interaction -> four global tokens. For modality m, a learned query plus m's own pooled
   summary cross-attends over the *other* modalities' token sequences ("text draws on
   audio and vision", ...); a fourth learned query attends over all modalities. Every
   key set includes a learned null key/value, so a sample with nothing to attend to
   attends to "nothing" rather than producing NaN.
4. Alignment: the pooled unimodal summaries (before interaction, so cross-attention
   cannot satisfy it by copying) are projected and L2-normalised; ``info_nce`` is the
   symmetric InfoNCE between every pair of modalities, computed only on samples where
   both are present, with a learnable temperature.
5. Fusion: an MLP over [global token, masked mean of the present modality tokens,
   optionally the mean-pooled text features ("sentence path")] -> 3 * tanh -> score in
   [-3, 3]. A missing modality's token is excluded by the mask.
6. Auxiliary heads: a score per modality-centred token (so audio-only and vision-only
   training samples teach their own branch) and optional class logits (MELD's 3 classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from extractors.bert import BertLayer
from model.schema import MODALITIES

__all__ = ["MiarDims", "MiarOutput", "Miar", "info_nce", "masked_mean", "sentiment_alignment_loss"]


@dataclass(frozen=True)
class MiarDims:
    """Shape of the network; saved in the weights config so loading rebuilds the same net.

    Attributes:
        text_dim: Width of text token features (384 for MiniLM-L6).
        audio_dim: Number of voice descriptor columns.
        vision_dim: Number of face descriptor columns.
        d_model: Width of every hidden representation.
        n_heads: Attention heads in encoders and cross-attention.
        n_layers: Transformer encoder layers per modality.
        ff_mult: Feed-forward width as a multiple of ``d_model``.
        dropout: Dropout inside encoders, attention and the head.
        proj_dim: Width of the contrastive projection.
        max_len: Longest sequence the position embedding covers (longer inputs are cut).
        init_temperature: Starting InfoNCE temperature (learnable, clamped to [0.01, 1]).
        interaction: True: global tokens come from cross-modal attention (MIAR). False (an
            ablation): each modality's token is its own pooled summary and the fourth token
            is their masked mean, so no modality draws on another.
        sentence_path: Also feed the fusion head the mean-pooled raw text features (the
            sentence embedding a ridge baseline uses) through one Linear + GELU: a direct,
            hard-to-overfit route for the strongest modality beside the token path.
        n_classes: Width of an auxiliary classification head over the fused vector (MELD's
            3 sentiment classes); 0 for none.
        text_tune_layers: Transformer layers of the text encoder that run, fine-tuned, inside
            the text branch (0: the text features are final). Their input is the hidden state
            of the encoder's frozen lower layers (``TextOptions.layers``); they are BERT layers
            (post-LayerNorm, exact GELU) initialised from the encoder's top layers by
            ``load_text_layers``, so the weights hold only what training changed.
        text_tune_heads: Attention heads of those layers (12 for MiniLM-L6).
        text_tune_ff: Feed-forward width of those layers (1536 for MiniLM-L6).
    """

    text_dim: int = 384
    audio_dim: int = 34
    vision_dim: int = 56
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 1
    ff_mult: int = 2
    dropout: float = 0.1
    proj_dim: int = 64
    max_len: int = 512
    init_temperature: float = 0.07
    interaction: bool = True
    sentence_path: bool = False
    n_classes: int = 0
    text_tune_layers: int = 0
    text_tune_heads: int = 12
    text_tune_ff: int = 1536

    def input_dim(self, modality: str) -> int:
        return {"text": self.text_dim, "audio": self.audio_dim, "vision": self.vision_dim}[modality]


class MiarOutput(NamedTuple):
    """What a forward pass gives.

    Attributes:
        score: (B,) sentiment in [-3, 3].
        present: (B, 3) bool, which modalities each sample had (text, audio, vision).
        global_tokens: (B, 4, d_model): text-, audio-, vision-centred and the all-modality token.
        aligned: (B, 3, proj_dim) L2-normalised contrastive projections of the unimodal summaries.
        modality_scores: (B, 3) score of each modality-centred token alone (auxiliary heads,
            so every branch learns to carry sentiment even when it trains alone).
        class_logits: (B, n_classes) auxiliary class logits (B, 0 when ``n_classes`` is 0).
    """

    score: torch.Tensor
    present: torch.Tensor
    global_tokens: torch.Tensor
    aligned: torch.Tensor
    modality_scores: torch.Tensor | None = None
    class_logits: torch.Tensor | None = None


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` where ``mask`` is True; 0 where nothing is valid (never NaN)."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


class _ModalityEncoder(nn.Module):
    """Projection + LayerNorm + position embedding + small Transformer encoder for one modality."""

    def __init__(self, in_dim: int, dims: MiarDims) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(in_dim, dims.d_model), nn.LayerNorm(dims.d_model))
        self.pos = nn.Embedding(dims.max_len, dims.d_model)
        nn.init.normal_(self.pos.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dims.d_model, dims.n_heads, dims.ff_mult * dims.d_model, dims.dropout,
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, dims.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dims.d_model)
        self.max_len = dims.max_len

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, mask = x[:, : self.max_len], mask[:, : self.max_len]
        h = self.proj(x) + self.pos.weight[: x.shape[1]].unsqueeze(0)
        # A sample without this modality would have an all-masked attention row (NaN);
        # unmask its first (zero) position inside the encoder only.
        absent = ~mask.any(dim=1)
        attend = mask.clone()
        attend[absent, 0] = True
        h = self.norm(self.encoder(h, src_key_padding_mask=~attend))
        return h * mask.unsqueeze(-1).to(h.dtype)


class _Interaction(nn.Module):
    """A learned query (plus an optional own summary) cross-attending over key sequences and a null token."""

    def __init__(self, dims: MiarDims) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(dims.d_model) * 0.02)
        self.null = nn.Parameter(torch.randn(1, 1, dims.d_model) * 0.02)
        self.attn = nn.MultiheadAttention(dims.d_model, dims.n_heads, dropout=dims.dropout, batch_first=True)
        self.norm_q = nn.LayerNorm(dims.d_model)
        self.ff = nn.Sequential(
            nn.LayerNorm(dims.d_model), nn.Linear(dims.d_model, dims.ff_mult * dims.d_model), nn.GELU(),
            nn.Dropout(dims.dropout), nn.Linear(dims.ff_mult * dims.d_model, dims.d_model),
        )
        self.out_norm = nn.LayerNorm(dims.d_model)

    def forward(self, summary: torch.Tensor | None, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b = keys.shape[0]
        q = self.query.expand(b, -1) if summary is None else self.query + summary
        q = self.norm_q(q).unsqueeze(1)
        kv = torch.cat([self.null.expand(b, -1, -1), keys], dim=1)
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=keys.device), key_mask], dim=1)
        drawn, _ = self.attn(q, kv, kv, key_padding_mask=~valid, need_weights=False)
        h = q.squeeze(1) + drawn.squeeze(1)
        return self.out_norm(h + self.ff(h))


class Miar(nn.Module):
    """The MIAR network: any subset of modalities per sample in, a score in [-3, 3] out."""

    def __init__(self, dims: MiarDims = MiarDims()) -> None:
        super().__init__()
        self.dims = dims
        self.encoders = nn.ModuleDict({m: _ModalityEncoder(dims.input_dim(m), dims) for m in MODALITIES})
        self.text_layers = nn.ModuleList(
            BertLayer(dims.text_dim, dims.text_tune_heads, dims.text_tune_ff, dims.dropout)
            for _ in range(dims.text_tune_layers)
        )
        self.interactions = nn.ModuleDict({m: _Interaction(dims) for m in MODALITIES})
        self.global_interaction = _Interaction(dims)
        self.align_proj = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(dims.d_model, dims.d_model), nn.GELU(), nn.Linear(dims.d_model, dims.proj_dim))
            for m in MODALITIES
        })
        self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(1.0 / dims.init_temperature)))
        fused_dim = (3 if dims.sentence_path else 2) * dims.d_model
        if dims.sentence_path:
            self.sentence = nn.Sequential(nn.Linear(dims.text_dim, dims.d_model), nn.GELU(), nn.Dropout(dims.dropout))
        if not dims.interaction:
            self.summary_proj = nn.ModuleDict({m: nn.Linear(dims.d_model, dims.d_model) for m in MODALITIES})
        self.head = nn.Sequential(
            nn.Linear(fused_dim, dims.d_model), nn.GELU(), nn.Dropout(dims.dropout), nn.Linear(dims.d_model, 1),
        )
        self.modality_heads = nn.Linear(dims.d_model, len(MODALITIES))
        if dims.n_classes > 0:
            self.class_head = nn.Linear(fused_dim, dims.n_classes)

    def load_text_layers(self, encoder_state: dict[str, torch.Tensor], first: int) -> None:
        """Initialise the fine-tuned text layers from a pretrained encoder's layers.

        Args:
            encoder_state: State of a Hugging Face encoder stack (keys ``layer.<i>.attention...``,
                ``extractors.text.TextEncoder.weights_of_layers``).
            first: Index of the encoder layer the first fine-tuned layer copies (the number
                of layers the extractor runs frozen).

        Raises:
            ValueError: The state lacks a layer or a parameter, or its shapes differ.
        """
        for j, layer in enumerate(self.text_layers):
            layer.load_hf_state(encoder_state, f"layer.{first + j}.")

    def tune_text(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """The fine-tuned text layers over the samples that have text (others stay zero)."""
        if not len(self.text_layers):
            return text
        text, text_mask = text[:, : self.dims.max_len], text_mask[:, : self.dims.max_len]
        rows = text_mask.any(dim=1)
        if not bool(rows.any()):
            return text
        h = text[rows]
        m = text_mask[rows]
        for layer in self.text_layers:
            h = layer(h, m)
        out = text.new_zeros(text.shape)
        out[rows] = h * m.unsqueeze(-1).to(h.dtype)
        return out

    @property
    def temperature(self) -> torch.Tensor:
        """InfoNCE temperature, clamped to [0.01, 1] so the logits stay sane."""
        return (1.0 / self.log_inv_temperature.exp()).clamp(0.01, 1.0)

    def forward(
        self,
        text: torch.Tensor, text_mask: torch.Tensor,
        audio: torch.Tensor, audio_mask: torch.Tensor,
        vision: torch.Tensor, vision_mask: torch.Tensor,
    ) -> MiarOutput:
        """Score a padded batch.

        Args:
            text, audio, vision: (B, L_m, D_m) standardised features, zeros where masked.
            text_mask, audio_mask, vision_mask: (B, L_m) bool, True where valid. A modality
                is missing for a sample when its row is all False.
        """
        text = self.tune_text(text, text_mask)
        inputs = {"text": (text, text_mask), "audio": (audio, audio_mask), "vision": (vision, vision_mask)}
        seqs, masks, summaries = {}, {}, {}
        for m in MODALITIES:
            x, mask = inputs[m]
            mask = mask[:, : self.dims.max_len]
            seqs[m], masks[m] = self.encoders[m](x, mask), mask
            summaries[m] = masked_mean(seqs[m], mask)
        present = torch.stack([masks[m].any(dim=1) for m in MODALITIES], dim=1)  # (B, 3)

        tokens = []
        if self.dims.interaction:
            for m in MODALITIES:
                others = [o for o in MODALITIES if o != m]
                keys = torch.cat([seqs[o] for o in others], dim=1)
                key_mask = torch.cat([masks[o] for o in others], dim=1)
                tokens.append(self.interactions[m](summaries[m], keys, key_mask))
            all_keys = torch.cat([seqs[m] for m in MODALITIES], dim=1)
            all_mask = torch.cat([masks[m] for m in MODALITIES], dim=1)
            tokens.append(self.global_interaction(None, all_keys, all_mask))
        else:
            tokens = [self.summary_proj[m](summaries[m]) for m in MODALITIES]
            tokens.append(masked_mean(torch.stack(tokens, dim=1), present))
        global_tokens = torch.stack(tokens, dim=1)  # (B, 4, d)

        modality_mean = masked_mean(global_tokens[:, :3], present)
        parts = [global_tokens[:, 3], modality_mean]
        if self.dims.sentence_path:
            text_mask = masks["text"]
            sentence = masked_mean(text[:, : self.dims.max_len], text_mask)
            parts.append(self.sentence(sentence) * present[:, :1].to(sentence.dtype))
        fused = torch.cat(parts, dim=-1)
        score = 3.0 * torch.tanh(self.head(fused).squeeze(-1))
        modality_scores = 3.0 * torch.tanh(
            torch.stack([self.modality_heads(global_tokens[:, i])[:, i] for i in range(len(MODALITIES))], dim=1)
        )
        class_logits = self.class_head(fused) if self.dims.n_classes > 0 else fused.new_zeros(len(fused), 0)

        aligned = torch.stack([F.normalize(self.align_proj[m](summaries[m]), dim=-1) for m in MODALITIES], dim=1)
        return MiarOutput(score=score, present=present, global_tokens=global_tokens, aligned=aligned,
                          modality_scores=modality_scores, class_logits=class_logits)

    def alignment_loss(self, out: MiarOutput) -> torch.Tensor:
        """Mean symmetric InfoNCE over modality pairs that have at least two co-present samples."""
        losses = []
        for i in range(len(MODALITIES)):
            for j in range(i + 1, len(MODALITIES)):
                both = out.present[:, i] & out.present[:, j]
                if int(both.sum()) >= 2:
                    losses.append(info_nce(out.aligned[both, i], out.aligned[both, j], self.temperature))
        if not losses:
            return out.score.new_zeros(())
        return torch.stack(losses).mean()


def parameter_shapes(dims: MiarDims) -> list[tuple[int, ...]]:
    """The shape of every tensor in ``Miar(dims).state_dict()``, computed without building it.

    Why: a weights folder's config is checked against its ``model.pt`` before anything is
    allocated (``model.checkpoint``). Building the network on PyTorch's "meta" device would do it,
    but that imports ``torch._dynamo`` (over a second of start-up on 2 cores) for the first
    operation it runs. ``tests/test_model.py`` keeps this list equal to the built network's.
    """
    d, ff = dims.d_model, dims.ff_mult * dims.d_model

    def linear(i: int, o: int) -> list[tuple[int, ...]]:
        return [(o, i), (o,)]

    def norm(w: int) -> list[tuple[int, ...]]:
        return [(w,), (w,)]

    attention = [(3 * d, d), (3 * d,), (d, d), (d,)]  # nn.MultiheadAttention: in_proj, out_proj
    encoder_layer = attention + linear(d, ff) + linear(ff, d) + norm(d) + norm(d)
    shapes: list[tuple[int, ...]] = []
    for m in MODALITIES:
        shapes += linear(dims.input_dim(m), d) + norm(d) + [(dims.max_len, d)]
        shapes += encoder_layer * dims.n_layers + norm(d)
    t, tff = dims.text_dim, dims.text_tune_ff
    shapes += (linear(t, t) * 4 + norm(t) + linear(t, tff) + linear(tff, t) + norm(t)) * dims.text_tune_layers
    interaction = [(d,), (1, 1, d)] + attention + norm(d) + norm(d) + linear(d, ff) + linear(ff, d) + norm(d)
    shapes += interaction * (len(MODALITIES) + 1)
    shapes += (linear(d, d) + linear(d, dims.proj_dim)) * len(MODALITIES)
    shapes += [()]  # log_inv_temperature
    fused = (3 if dims.sentence_path else 2) * d
    if dims.sentence_path:
        shapes += linear(t, d)
    if not dims.interaction:
        shapes += linear(d, d) * len(MODALITIES)
    shapes += linear(fused, d) + linear(d, 1) + linear(d, len(MODALITIES))
    if dims.n_classes > 0:
        shapes += linear(fused, dims.n_classes)
    return shapes


def sentiment_alignment_loss(out: MiarOutput, bins: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Supervised contrastive alignment across modalities, with sentiment bins as weak positives.

    Our training sources rarely hold two modalities of one utterance (MOSI comes as text
    only; EmoDB, speech_valence and the face photos are single-modality), so instance-level
    InfoNCE has almost nothing to work on. Instead, every present modality embedding of the
    batch is an anchor whose positives are the embeddings *of other modalities* with the same
    sentiment bin (negative / neutral / positive); all other embeddings of the batch are the
    denominator (SupCon, Khosla et al. 2020, restricted to cross-modal positives). This pulls
    a happy voice, a smiling face and a positive sentence to one region of the shared space.

    Args:
        out: A forward pass.
        bins: (B,) int sentiment bin per sample (-1 means no label: never a positive).
        temperature: Softmax temperature.

    Returns:
        Scalar loss; 0 when no anchor has a cross-modal positive.
    """
    b, n_mod, _ = out.aligned.shape
    emb = out.aligned.reshape(b * n_mod, -1)
    valid = out.present.reshape(-1)
    modality = torch.arange(n_mod, device=emb.device).repeat(b)
    label = bins.repeat_interleave(n_mod)
    emb, modality, label = emb[valid], modality[valid], label[valid]
    if len(emb) < 2:
        return out.score.new_zeros(())
    logits = emb @ emb.T / temperature
    self_mask = torch.eye(len(emb), dtype=torch.bool, device=emb.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positive = (label[:, None] == label[None, :]) & (modality[:, None] != modality[None, :]) & (label[:, None] >= 0)
    anchors = positive.any(dim=1)
    if not bool(anchors.any()):
        return out.score.new_zeros(())
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(self_mask, 0.0)
    per_anchor = -(log_prob * positive).sum(dim=1) / positive.sum(dim=1).clamp_min(1)
    return per_anchor[anchors].mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` should match row i of ``b`` against every other row.

    Args:
        a, b: (N, P) L2-normalised embeddings of the same N samples in two modalities.
        temperature: Softmax temperature (> 0).

    Returns:
        Scalar loss: mean of the a->b and b->a cross-entropies.
    """
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
