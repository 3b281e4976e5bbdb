"""PyTorch transformer modules written with exactly the ops of the .ggml graph (docs/model-format.md),
so that a trained model maps onto the graph weight for weight: pre-norm blocks of multi-head
self-attention (fused q/k/v projection, optional causal mask) and a GELU MLP; a vision transformer
(patch convolution, class token, learned positions) and a byte-level causal language model (token
embedding, learned positions, untied output head).

Sequences are (batch, tokens, features) here and (features, tokens) dims in the graph (x[t][f]);
head h of a projection is the features h * head_dim .. (h + 1) * head_dim - 1.

This module imports torch at load time: only the training scripts and the torch importer load it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from prover.model.importers.torch_layers import PixelNormalize

LAYERNORM_EPS = 1e-5


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, causal: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide the width {dim}")
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        if self.causal:
            hidden = torch.ones(tokens, tokens, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(hidden, float("-inf"))
        mixed = scores.softmax(dim=-1) @ v  # (batch, heads, tokens, head_dim)
        return self.proj(mixed.transpose(1, 2).reshape(batch, tokens, dim))


class TransformerBlock(nn.Module):
    """x + attn(ln1(x)), then x + mlp(ln2(x)) with mlp = Linear, GELU (erf), Linear."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, causal: bool = False) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.attn = SelfAttention(dim, heads, causal)
        self.ln2 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(functional.gelu(self.fc1(self.ln2(x))))


class VisionTransformer(nn.Module):
    """Raw pixels (batch, channels, height, width) -> class logits: an optional convolutional stem
    (the hybrid ViT of Dosovitskiy et al.: `stem` conv channels, each a 5x5 conv, ReLU and 2x2 max
    pool), patches of `patch` x `patch` embedded by a stride-`patch` convolution, a class token in
    front, learned positions, blocks, a final LayerNorm and a linear head on the class token."""

    def __init__(
        self,
        image: tuple[int, int, int],
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        classes: int,
        pixel_scale: float = 1.0,
        pixel_offset: float = 0.0,
        stem: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        channels, height, width = image
        self.normalize = PixelNormalize(pixel_scale, pixel_offset)
        layers: list[nn.Module] = []
        for out in stem:
            layers += [nn.Conv2d(channels, out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            channels, height, width = out, height // 2, width // 2
        self.stem = nn.Sequential(*layers)
        self.patch = nn.Conv2d(channels, dim, patch, stride=patch)
        tokens = (height // patch) * (width // patch) + 1
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.head = nn.Linear(dim, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch(self.stem(self.normalize(pixels))).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


class CausalLM(nn.Module):
    """Token ids (batch, context) -> next-token logits (batch, context, vocabulary)."""

    def __init__(self, vocabulary: int, context: int, dim: int, depth: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocabulary, dim)
        self.pos = nn.Parameter(torch.randn(1, context, dim) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim, causal=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.head = nn.Linear(dim, vocabulary, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
