"""The network description's sequence layers (transformers), used by prover.model.network:

    Network((1, 28, 28), [Conv2D(64, 7, stride=7), Tokens(), ClassToken(), PositionalEmbedding(),
                          TransformerBlock(4, 64, 128), TransformerBlock(4, 64, 128), LayerNorm(),
                          TakeToken(0), Linear(10)])                      # a ViT: 17 tokens of 64
    Network((32,), [Embedding(256, 160), PositionalEmbedding(), TransformerBlock(4, 160, causal=True),
                    LayerNorm(), Linear(256)])                            # a causal LM over 32 bytes

A sequence's shape is (tokens, features), PyTorch's without the batch; in the graph it is dims
(features, tokens), `x[t][f]`. Parameters keep PyTorch's layouts and names under the layer index:
Embedding weight (vocabulary, dim); ClassToken token (dim,); PositionalEmbedding weight (tokens,
dim); LayerNorm weight, bias (dim,); TransformerBlock ln1/ln2 weight and bias, qkv (3 dim, dim:
q, k, v, each head's features contiguous), proj (dim, dim), fc1 (mlp, dim), fc2 (dim, mlp) weights
and biases. A TransformerBlock is pre-norm: x + proj(attention(ln1(x))), then x + fc2(gelu(fc1(ln2(x)))).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from prover.errors import ProverError
from prover.model.graph import DType, Graph, Op, f32_bits

LAYERNORM_EPS = 1e-5
# TRANSPOSE codes: output dim i is input dim (PERM >> 2i) & 3
SWAP_01 = 1 | (0 << 2) | (2 << 4) | (3 << 6)
SWAP_12 = 0 | (2 << 2) | (1 << 4) | (3 << 6)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Embedding:
    """Token ids (tokens,) -> (tokens, dim): the first layer of a language model (the graph input
    is then i32 token ids)."""

    vocabulary: int
    dim: int


@dataclass(frozen=True)
class Tokens:
    """A feature map (channels, height, width) as a sequence (height * width, channels)."""


@dataclass(frozen=True)
class ClassToken:
    """A learned token put before the sequence: (tokens, dim) -> (tokens + 1, dim)."""


@dataclass(frozen=True)
class PositionalEmbedding:
    """Learned positions added to a (tokens, dim) sequence."""


@dataclass(frozen=True)
class LayerNorm:
    """Over the features of each token (or of a flat vector)."""


@dataclass(frozen=True)
class TakeToken:
    """One token of the sequence: (tokens, dim) -> (dim,)."""

    index: int = 0


@dataclass(frozen=True)
class TransformerBlock:
    heads: int
    dim: int
    mlp_dim: int | None = None  # default 4 * dim
    causal: bool = False

    @property
    def hidden(self) -> int:
        return self.mlp_dim if self.mlp_dim is not None else 4 * self.dim


SequenceLayer = (
    Embedding | Tokens | ClassToken | PositionalEmbedding | LayerNorm | TakeToken | TransformerBlock
)
SEQUENCE_LAYERS = (Embedding, Tokens, ClassToken, PositionalEmbedding, LayerNorm, TakeToken, TransformerBlock)


def infer(layer: SequenceLayer, shape: Shape, where: str, first: bool) -> Shape:
    """The output shape of a sequence layer, or a ProverError naming it."""

    def need_sequence() -> tuple[int, int]:
        if len(shape) != 2:
            raise ProverError(f"{where}: needs a (tokens, features) sequence, got {shape}")
        return shape  # type: ignore[return-value]

    if isinstance(layer, Embedding):
        if not first or len(shape) != 1:
            raise ProverError(f"{where}: Embedding must be the first layer, on an input of (tokens,) ids")
        if layer.vocabulary < 1 or layer.dim < 1:
            raise ProverError(f"{where}: vocabulary and dim must be >= 1")
        return (shape[0], layer.dim)
    if isinstance(layer, Tokens):
        if len(shape) != 3:
            raise ProverError(f"{where}: needs a (channels, height, width) input, got {shape}")
        return (shape[1] * shape[2], shape[0])
    if isinstance(layer, ClassToken):
        tokens, dim = need_sequence()
        return (tokens + 1, dim)
    if isinstance(layer, PositionalEmbedding):
        return need_sequence()
    if isinstance(layer, LayerNorm):
        if len(shape) not in (1, 2):
            raise ProverError(f"{where}: needs a sequence or a flat input, got {shape}")
        return shape
    if isinstance(layer, TakeToken):
        tokens, dim = need_sequence()
        if not 0 <= layer.index < tokens:
            raise ProverError(f"{where}: token {layer.index} of {tokens}")
        return (dim,)
    tokens, dim = need_sequence()
    if dim != layer.dim or layer.heads < 1 or dim % layer.heads or layer.hidden < 1:
        raise ProverError(f"{where}: width {layer.dim} with {layer.heads} heads does not fit {dim} features")
    return shape


def parameter_shapes(layer: SequenceLayer, index: int, shape: Shape, out: Shape) -> dict[str, Shape]:
    """The layer's parameters: name -> shape (`shape` is its input, `out` its output)."""
    if isinstance(layer, Embedding):
        return {f"{index}.weight": (layer.vocabulary, layer.dim)}
    if isinstance(layer, ClassToken):
        return {f"{index}.token": (shape[1],)}
    if isinstance(layer, PositionalEmbedding):
        return {f"{index}.weight": shape}
    if isinstance(layer, LayerNorm):
        return {f"{index}.weight": (shape[-1],), f"{index}.bias": (shape[-1],)}
    if isinstance(layer, TransformerBlock):
        d, h = layer.dim, layer.hidden
        result: dict[str, Shape] = {}
        for name, rows, cols in (("qkv", 3 * d, d), ("proj", d, d), ("fc1", h, d), ("fc2", d, h)):
            result[f"{index}.{name}.weight"] = (rows, cols)
            result[f"{index}.{name}.bias"] = (rows,)
        for norm in ("ln1", "ln2"):
            result[f"{index}.{norm}.weight"] = (d,)
            result[f"{index}.{norm}.bias"] = (d,)
        return result
    return {}


class Emitter:
    """Adds a sequence layer's nodes to an f32 graph. `param(key)` is the stored tensor of the
    layer's parameter `{index}.{key}` (numpy shape = PyTorch's)."""

    def __init__(self, graph: Graph, index: int, param: Callable[[str], int]) -> None:
        self.graph, self.index, self.param = graph, index, param

    def node(self, op: Op, inputs: list[int | None], name: str, dims: Shape, **attrs: int) -> int:
        return self.graph.add_node(op, inputs, f"{self.index}.{name}", DType.F32, dims, **attrs)

    def linear(self, x: int, name: str, rows: int, tokens: int) -> int:
        weights = [x, self.param(f"{name}.weight"), self.param(f"{name}.bias")]
        return self.node(Op.LINEAR, weights, name, (rows, tokens))

    def norm(self, x: int, name: str, dims: Shape, prefix: str = "") -> int:
        """LAYERNORM with the parameters `{prefix}weight` and `{prefix}bias`."""
        inputs = [x, self.param(f"{prefix}weight"), self.param(f"{prefix}bias")]
        return self.node(Op.LAYERNORM, inputs, name, dims, EPS_F=f32_bits(LAYERNORM_EPS))

    def emit(self, layer: SequenceLayer, x: int, in_dims: Shape, dims: Shape) -> int:
        """`in_dims` / `dims`: the input's / output's graph dims (innermost first)."""
        if isinstance(layer, Embedding):
            return self.graph.add_node(
                Op.GATHER, [x, self.param("weight")], f"{self.index}.embedding", DType.F32, dims
            )
        if isinstance(layer, Tokens):
            width, height, channels = in_dims
            flat = self.node(Op.RESHAPE, [x], "planes", (width * height, channels))
            return self.node(Op.TRANSPOSE, [flat], "tokens", dims, PERM=SWAP_01)
        if isinstance(layer, ClassToken):
            return self.node(Op.CONCAT, [self.param("token"), x], "class_token", dims, AXIS=1)
        if isinstance(layer, PositionalEmbedding):
            return self.node(Op.ADD, [x, self.param("weight")], "positions", dims)
        if isinstance(layer, LayerNorm):
            return self.norm(x, "layernorm", dims)
        if isinstance(layer, TakeToken):
            token = self.node(Op.SLICE, [x], "token", (dims[0], 1), AXIS=1, START=layer.index)
            return self.node(Op.RESHAPE, [token], "take", dims)
        return self.block(layer, x, dims)

    def block(self, layer: TransformerBlock, x: int, dims: Shape) -> int:
        dim, tokens = dims
        heads, head_dim = layer.heads, dim // layer.heads
        qkv = self.linear(self.norm(x, "ln1", dims, "ln1."), "qkv", 3 * dim, tokens)
        split = {}
        for i, name in enumerate("qkv"):
            part = self.node(Op.SLICE, [qkv], name, dims, AXIS=0, START=i * dim)
            grouped = self.node(Op.RESHAPE, [part], f"{name}.split", (head_dim, heads, tokens))
            split[name] = self.node(
                Op.TRANSPOSE, [grouped], f"{name}.heads", (head_dim, tokens, heads), PERM=SWAP_12
            )
        scores = self.node(
            Op.MATMUL,
            [split["q"], split["k"]],
            "scores",
            (tokens, tokens, heads),
            TRANSPOSE_B=1,
            ALPHA=f32_bits(1 / math.sqrt(head_dim)),
        )
        causal = {"CAUSAL": 1} if layer.causal else {}
        probs = self.node(Op.SOFTMAX, [scores], "probs", (tokens, tokens, heads), **causal)
        mixed = self.node(Op.MATMUL, [probs, split["v"]], "mixed", (head_dim, tokens, heads))
        merged = self.node(Op.TRANSPOSE, [mixed], "merge", (head_dim, heads, tokens), PERM=SWAP_12)
        attention = self.linear(self.node(Op.RESHAPE, [merged], "merged", dims), "proj", dim, tokens)
        x = self.node(Op.ADD, [x, attention], "residual1", dims)
        hidden = self.linear(self.norm(x, "ln2", dims, "ln2."), "fc1", layer.hidden, tokens)
        mlp = self.linear(self.node(Op.GELU, [hidden], "gelu", (layer.hidden, tokens)), "fc2", dim, tokens)
        return self.node(Op.ADD, [x, mlp], "residual2", dims)
