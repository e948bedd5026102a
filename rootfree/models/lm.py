"""Language models: a stacked-LSTM word model (AWD/AdaBelief layout) and a small GPT.

Both map token ids (batch, time) to next-token logits (batch, time, vocab) and tie the output
layer to the input embedding. ``LM_MODELS`` holds their specs with CPU-scale defaults; the
trainer builds them for a text dataset (``model=lstm``, ``model=gpt``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rootfree.models.registry import ModelSpec

# The 3-layer LSTM of AdaBelief's PTB benchmark (juntang-zhuang/Adabelief-Optimizer,
# PyTorch_Experiments/LSTM: main.py defaults and run_all_layer3.py), architecture only. Its
# training there: batch 20, BPTT 70 (randomized), clip 0.25, weight decay 1.2e-6, 200 epochs,
# lr / 10 at epochs 100 and 145, hidden state carried across batches; its AWD-LSTM regularizers
# (locked dropout: input 0.4, between layers 0.25, output 0.4; embedding dropout 0.1; weight
# drop 0.5 on hidden-to-hidden; AR 2, TAR 1) are not built here.
ADABELIEF_PTB_LSTM = {"embed_dim": 400, "hidden_dim": 1150, "layers": 3, "tie_weights": True}


def _check_positive(option: str, value: Any) -> None:
    """A one-line error naming the option when an integer size is not positive."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {option}: {value!r} (must be a positive integer)")


def _check_dropout(value: Any) -> None:
    """A one-line error when the dropout probability is outside [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"Invalid dropout: {value!r} (must be in [0, 1))")


def _check_tokens(tokens: torch.Tensor) -> None:
    """Token ids must come as a (batch, time) integer tensor."""
    if tokens.ndim != 2 or tokens.is_floating_point():
        raise ValueError(
            f"Invalid input: {tuple(tokens.shape)} {tokens.dtype} (need (batch, time) token ids)"
        )


def _lstm_sizes(vocab_size, embed_dim, hidden_dim, layers, tie_weights) -> list[int]:
    """Checked options -> each LSTM's input size, then the last one's output size."""
    for option, value in (
        ("vocab_size", vocab_size),
        ("embed_dim", embed_dim),
        ("hidden_dim", hidden_dim),
        ("layers", layers),
    ):
        _check_positive(option, value)
    if not isinstance(tie_weights, bool):
        raise ValueError(f"Invalid tie_weights: {tie_weights!r} (must be true or false)")
    last = embed_dim if tie_weights else hidden_dim  # tying needs embed_dim out of the top
    return [embed_dim] + [hidden_dim] * (layers - 1) + [last]


class LSTMLanguageModel(nn.Module):
    """Embedding, ``layers`` single-layer LSTMs, dropout and a linear decoder (AWD-LSTM layout).

    With ``tie_weights`` the last LSTM outputs ``embed_dim`` so that the decoder can share the
    embedding matrix, as AWD-LSTM and AdaBelief do. Stateless: every batch starts from a zero
    state, nothing is carried across batches (no truncated BPTT over a stream yet).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_dim: int = 128,
        layers: int = 3,
        dropout: float = 0.1,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        sizes = _lstm_sizes(vocab_size, embed_dim, hidden_dim, layers, tie_weights)
        _check_dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, embed_dim)
        self.rnns = nn.ModuleList(
            nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(layers)
        )
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        self.tie_weights = tie_weights
        self._init_weights()
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def _init_weights(self) -> None:
        """AWD-LSTM's: embedding and decoder uniform in +-0.1, decoder bias 0, LSTMs PyTorch's."""
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, time) ids -> (batch, time, vocab) logits, from a zero state."""
        _check_tokens(tokens)
        hidden = self.drop(self.encoder(tokens))
        for rnn in self.rnns:
            hidden = self.drop(rnn(hidden)[0])
        return self.decoder(hidden)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t sees positions <= t only."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, width) -> the same shape, through PyTorch's fused causal attention."""
        batch, time, width = x.shape
        heads = self.qkv(x).view(batch, time, 3, self.num_heads, width // self.num_heads)
        q, k, v = heads.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, time, head_dim)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.drop(self.proj(out.transpose(1, 2).reshape(batch, time, width)))


class Block(nn.Module):
    """A pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = CausalSelfAttention(embed_dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, embed_dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Two residual updates of the stream x."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _check_gpt_options(vocab_size, context, embed_dim, depth, num_heads, mlp_ratio, dropout):
    """One-line errors for GPT options that cannot build a model."""
    for option, value in (
        ("vocab_size", vocab_size),
        ("context", context),
        ("embed_dim", embed_dim),
        ("depth", depth),
        ("num_heads", num_heads),
    ):
        _check_positive(option, value)
    if embed_dim % num_heads:
        raise ValueError(f"Invalid num_heads: {num_heads} does not divide embed_dim {embed_dim}")
    if not isinstance(mlp_ratio, (int, float)) or int(embed_dim * mlp_ratio) < 1:
        raise ValueError(f"Invalid mlp_ratio: {mlp_ratio!r} (embed_dim * mlp_ratio must be >= 1)")
    _check_dropout(dropout)


class GPT(nn.Module):
    """A small decoder-only transformer: token + learned position embeddings, pre-norm blocks,
    a final LayerNorm and a head tied to the token embedding (GPT-2's layout, GPT-2's init)."""

    def __init__(
        self,
        vocab_size: int,
        context: int = 64,
        embed_dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_gpt_options(vocab_size, context, embed_dim, depth, num_heads, mlp_ratio, dropout)
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, embed_dim)
        self.pos_emb = nn.Embedding(context, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, vocab_size, bias=False)  # the last Linear: Muon's head
        self.apply(_gpt_init)
        self._scale_residual_projections(depth)
        self.head.weight = self.tok_emb.weight

    def _scale_residual_projections(self, depth: int) -> None:
        """GPT-2: layers that write into the residual stream start at std 0.02 / sqrt(2 depth)."""
        for block in self.blocks:
            for layer in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * depth))

    def no_weight_decay(self) -> set[str]:
        """The embeddings (the head shares the token one): rootfree's groups skip them."""
        return {"tok_emb.weight", "pos_emb.weight"}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, time <= context) ids -> (batch, time, vocab) logits."""
        _check_tokens(tokens)
        time = tokens.shape[1]
        if time > self.context:
            raise ValueError(f"Invalid input length: {time} > context {self.context}")
        positions = torch.arange(time, device=tokens.device)
        x = self.drop(self.tok_emb(tokens) + self.pos_emb(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def _gpt_init(module: nn.Module) -> None:
    """GPT-2's initialization: weights normal(0, 0.02), biases 0 (LayerNorms keep (1, 0))."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


LM_MODELS: dict[str, ModelSpec] = {
    "lstm": ModelSpec(
        lambda vocab_size, **options: LSTMLanguageModel(vocab_size, **options),
        "rnn",
        "stacked LSTM word model, AWD/AdaBelief layout (tied); CPU default 64/128/3 layers",
        {"tie_weights": (True, False)},
    ),
    "gpt": ModelSpec(
        lambda vocab_size, **options: GPT(vocab_size, **options),
        "transformer",
        "small pre-norm decoder-only transformer (tied head); CPU default 64 wide, depth 2",
    ),
}


def create_language_model(name: str, vocab_size: int, **options: Any) -> nn.Module:
    """Build a language model of ``LM_MODELS`` by name (options as its class takes them)."""
    if name not in LM_MODELS:
        raise ValueError(f"Unknown language model {name!r}; choose one of {sorted(LM_MODELS)}")
    return LM_MODELS[name].build(vocab_size=vocab_size, **options)
