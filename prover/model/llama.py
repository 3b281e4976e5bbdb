"""LLaMA-architecture language models as f32 graphs (docs/model-format.md, "LLaMA graphs").

    config = LlamaConfig(vocab=256, dim=64, layers=2, heads=4, kv_heads=2, ffn_dim=128, context=64)
    graph = llama_graph(config, weights, tokens=16)     # weights: llama.cpp tensor name -> array
    int8 = quantize(graph, calibration_ids)             # prover/model/quantize.py, as for any graph

`weights` maps llama.cpp's GGUF tensor names to numpy arrays in the shapes the `gguf` package's
reader yields (a matrix is (rows, cols) = (out, in), llama.cpp's ne[1], ne[0]):

    token_embd.weight            (vocab, dim)
    blk.{i}.attn_norm.weight     (dim,)
    blk.{i}.attn_q.weight        (heads * head_dim, dim)       head_dim = dim / heads
    blk.{i}.attn_k.weight        (kv_heads * head_dim, dim)
    blk.{i}.attn_v.weight        (kv_heads * head_dim, dim)
    blk.{i}.attn_output.weight   (dim, heads * head_dim)
    blk.{i}.ffn_norm.weight      (dim,)
    blk.{i}.ffn_gate.weight      (ffn_dim, dim)
    blk.{i}.ffn_up.weight        (ffn_dim, dim)
    blk.{i}.ffn_down.weight      (dim, ffn_dim)
    output_norm.weight           (dim,)
    output.weight                (vocab, dim)    optional: absent, the head is token_embd (tied)

Any array type numpy reads (a memory map included) is taken without a copy when it is already
contiguous f32. The graph computes llama.cpp's forward pass (`llm_build_llama`) over `tokens`
positions: input i32 ids (tokens,), output f32 logits (vocab, tokens), `x[t][v]` the scores of the
token after position t, which is what prover.model.generate.LanguageModel decodes. Per layer:

    h = x + attn_output(attention(rope(attn_q(n)), rope(attn_k(n)), attn_v(n)))   n = rmsnorm(x) * attn_norm
    x = h + ffn_down(silu(ffn_gate(m)) * ffn_up(m))                                m = rmsnorm(h) * ffn_norm

RoPE is llama.cpp's NORM mode (adjacent pairs (2i, 2i + 1) at angle t * rope_theta^(-2i / head_dim),
the GGUF converter having permuted attn_q / attn_k for it); attention is causal with scale
1 / sqrt(head_dim), query head h reading key / value head h / (heads / kv_heads) (grouped-query
attention). The rotated keys `blk.{i}.k` (head_dim, tokens, kv_heads) and the values `blk.{i}.v`
are the layer's KV cache, tensors of the graph with commitments like any other (docs/dispute-game.md,
"Generation claims"). Graph tensors keep the llama.cpp names for stored weights; metadata holds
the config (`LlamaConfig.metadata`), so `LlamaConfig.from_metadata` reads it back from a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from prover.errors import ProverError
from prover.model.graph import DType, Graph, MetaValue, Op, f32_bits
from prover.model.sequence_layers import SWAP_12

ARCH = "llama"
# GGUF metadata keys (llama.cpp's `{arch}.` keys) of each config field; vocab is the tokenizer's size.
GGUF_KEYS = {
    "dim": "llama.embedding_length",
    "layers": "llama.block_count",
    "heads": "llama.attention.head_count",
    "kv_heads": "llama.attention.head_count_kv",
    "ffn_dim": "llama.feed_forward_length",
    "context": "llama.context_length",
    "rope_theta": "llama.rope.freq_base",
    "rms_eps": "llama.attention.layer_norm_rms_epsilon",
}


@dataclass(frozen=True)
class LlamaConfig:
    """The hyper-parameters of a LLaMA-architecture model (GGUF's `llama.*` keys)."""

    vocab: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    ffn_dim: int
    context: int = 2048
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("rope_theta", "rms_eps"):  # f32 in GGUF and in the .ggml metadata
            object.__setattr__(self, name, float(np.float32(getattr(self, name))))
        sizes = (self.vocab, self.dim, self.layers, self.heads, self.kv_heads, self.ffn_dim, self.context)
        if min(sizes) < 1 or self.dim % self.heads or self.heads % self.kv_heads or self.head_dim % 2:
            raise ProverError(
                f"not a LLaMA shape: {self}: sizes >= 1, dim a multiple of heads, heads of kv_heads, "
                "and an even head_dim are needed"
            )

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def parameters(self) -> int:
        """Weights of an untied model (the embedding and the output head counted apart)."""
        kv = self.kv_heads * self.head_dim
        block = 2 * self.dim * self.dim + 2 * self.dim * kv + 3 * self.dim * self.ffn_dim + 2 * self.dim
        return self.layers * block + 2 * self.vocab * self.dim + self.dim

    def shapes(self, tied: bool = False) -> dict[str, tuple[int, ...]]:
        """Every weight's name and numpy shape (the contract above)."""
        d, kv, f = self.dim, self.kv_heads * self.head_dim, self.ffn_dim
        result: dict[str, tuple[int, ...]] = {"token_embd.weight": (self.vocab, d)}
        for i in range(self.layers):
            b = f"blk.{i}."
            result |= {
                b + "attn_norm.weight": (d,),
                b + "attn_q.weight": (d, d),
                b + "attn_k.weight": (kv, d),
                b + "attn_v.weight": (kv, d),
                b + "attn_output.weight": (d, d),
                b + "ffn_norm.weight": (d,),
                b + "ffn_gate.weight": (f, d),
                b + "ffn_up.weight": (f, d),
                b + "ffn_down.weight": (d, f),
            }
        result["output_norm.weight"] = (d,)
        if not tied:
            result["output.weight"] = (self.vocab, d)
        return result

    @classmethod
    def from_gguf(cls, fields: Mapping[str, MetaValue], vocab: int) -> LlamaConfig:
        """From GGUF metadata values (key -> value) and the vocabulary size; head_count_kv defaults
        to head_count, the other optional keys to llama.cpp's defaults."""
        defaults = {"kv_heads": fields.get(GGUF_KEYS["heads"]), "context": 2048}
        defaults |= {"rope_theta": 10000.0, "rms_eps": 1e-5}
        values: dict[str, MetaValue] = {"vocab": vocab}
        for name, key in GGUF_KEYS.items():
            value = fields.get(key, defaults.get(name))
            if value is None:
                raise ProverError(f"GGUF metadata: {key} is missing")
            values[name] = value
        return cls(**values)  # type: ignore[arg-type]

    def gguf_fields(self) -> dict[str, MetaValue]:
        return {key: getattr(self, name) for name, key in GGUF_KEYS.items()}

    def metadata(self) -> dict[str, MetaValue]:
        """The .ggml metadata entries holding the config (`llama_` + field name)."""
        return {f"llama_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, MetaValue]) -> LlamaConfig:
        try:
            return cls(**{name: metadata[f"llama_{name}"] for name in cls.__dataclass_fields__})  # type: ignore[arg-type]
        except KeyError as exc:
            raise ProverError(f"not a LLaMA model file: metadata {exc.args[0]} is missing") from None


def rope_tables(config: LlamaConfig, tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (tokens, head_dim / 2) of position t, pair i: angle t * theta^(-2i / head_dim),
    in float64 (llama.cpp computes theta_scale = theta^(-2 / head_dim) and powers of it in f32;
    they agree to ~1e-7 relative)."""
    half = config.head_dim // 2
    angles = np.outer(np.arange(tokens), config.rope_theta ** (-2.0 * np.arange(half) / config.head_dim))
    return np.cos(angles), np.sin(angles)


def llama_graph(
    config: LlamaConfig, weights: Mapping[str, np.ndarray], tokens: int, name: str = "llama"
) -> Graph:
    """The f32 graph of the forward pass over `tokens` positions (see the module docstring).
    Raises ProverError naming the first weight that is missing or of the wrong shape."""
    if tokens < 1:
        raise ProverError(f"a forward pass needs at least one position, not {tokens}")
    tied = "output.weight" not in weights
    for key, shape in config.shapes(tied).items():
        if key not in weights:
            raise ProverError(f"LLaMA weights: {key} is missing")
        if tuple(np.shape(weights[key])) != shape:
            raise ProverError(f"LLaMA weights: {key} has shape {tuple(np.shape(weights[key]))}, not {shape}")
    g = Graph(metadata={"name": name, "arch": ARCH, "mode": "f32", **config.metadata()})
    stored: dict[str, int] = {}

    def weight(key: str) -> int:
        if key not in stored:
            array = weights[key]
            stored[key] = g.add_tensor(key, DType.F32, tuple(reversed(np.shape(array))), array)
        return stored[key]

    def node(op: Op, inputs: list[int | None], label: str, dims: tuple[int, ...], **attrs: int) -> int:
        return g.add_node(op, inputs, label, DType.F32, dims, **attrs)

    d, t, dh = config.dim, tokens, config.head_dim
    eps = f32_bits(config.rms_eps)
    cos, sin = rope_tables(config, tokens)
    cos_t = g.add_tensor("rope.cos", DType.F32, (dh // 2, t), cos)
    sin_t = g.add_tensor("rope.sin", DType.F32, (dh // 2, t), sin)

    def heads(x: int, label: str, count: int) -> int:
        split = node(Op.RESHAPE, [x], f"{label}.split", (dh, count, t))
        return node(Op.TRANSPOSE, [split], f"{label}.heads", (dh, t, count), PERM=SWAP_12)

    g.input = g.add_tensor("ids", DType.I32, (t,))
    x = node(Op.GATHER, [g.input, weight("token_embd.weight")], "embd", (d, t))
    for i in range(config.layers):
        b = f"blk.{i}."
        n = node(Op.RMSNORM, [x, weight(b + "attn_norm.weight")], b + "attn_norm", (d, t), EPS_F=eps)
        kv = config.kv_heads * dh
        q = node(Op.LINEAR, [n, weight(b + "attn_q.weight")], b + "q.proj", (d, t))
        k = node(Op.LINEAR, [n, weight(b + "attn_k.weight")], b + "k.proj", (kv, t))
        v = node(Op.LINEAR, [n, weight(b + "attn_v.weight")], b + "v.proj", (kv, t))
        h, kvh = config.heads, config.kv_heads
        q = node(Op.ROPE, [heads(q, b + "q", h), cos_t, sin_t], b + "q", (dh, t, h))
        k = node(Op.ROPE, [heads(k, b + "k", kvh), cos_t, sin_t], b + "k", (dh, t, kvh))
        v = heads(v, b + "v", config.kv_heads)
        scores = node(
            Op.MATMUL, [q, k], b + "scores", (t, t, h), TRANSPOSE_B=1, ALPHA=f32_bits(1 / math.sqrt(dh))
        )
        probs = node(Op.SOFTMAX, [scores], b + "probs", (t, t, config.heads), CAUSAL=1)
        mixed = node(Op.MATMUL, [probs, v], b + "mixed", (dh, t, config.heads))
        merged = node(Op.TRANSPOSE, [mixed], b + "merge", (dh, config.heads, t), PERM=SWAP_12)
        flat = node(Op.RESHAPE, [merged], b + "merged", (d, t))
        attention = node(Op.LINEAR, [flat, weight(b + "attn_output.weight")], b + "attn_out", (d, t))
        x = node(Op.ADD, [x, attention], b + "attn_residual", (d, t))
        m = node(Op.RMSNORM, [x, weight(b + "ffn_norm.weight")], b + "ffn_norm", (d, t), EPS_F=eps)
        f = config.ffn_dim
        gate = node(Op.LINEAR, [m, weight(b + "ffn_gate.weight")], b + "gate", (f, t))
        up = node(Op.LINEAR, [m, weight(b + "ffn_up.weight")], b + "up", (f, t))
        gated = node(Op.MUL, [node(Op.SILU, [gate], b + "silu", (f, t)), up], b + "gated", (f, t))
        down = node(Op.LINEAR, [gated, weight(b + "ffn_down.weight")], b + "down", (d, t))
        x = node(Op.ADD, [x, down], b + "ffn_residual", (d, t))
    x = node(Op.RMSNORM, [x, weight("output_norm.weight")], "output_norm", (d, t), EPS_F=eps)
    head = weight("token_embd.weight" if tied else "output.weight")
    g.output = node(Op.LINEAR, [x, head], "logits", (config.vocab, t))
    return g


def random_weights(config: LlamaConfig, seed: int = 0, tied: bool = False) -> dict[str, np.ndarray]:
    """f32 weights of `config` drawn at random (matrices N(0, 1 / in), norms near 1): a model for
    tests and benchmarks whose activations stay in range through its layers."""
    rng = np.random.default_rng(seed)
    result = {}
    for key, shape in config.shapes(tied).items():
        if len(shape) == 1:
            result[key] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            scale = 1.0 if key == "token_embd.weight" else 1 / math.sqrt(shape[1])
            result[key] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return result
