"""Single-node graphs of the transformer ops (docs/model-format.md) with random operands, for the
per-op tests: numpy engine = native guest = guest in the VM.

Every graph takes one flat input tensor: ops of two activations (MATMUL, CONCAT) SLICE it into
their operands and RESHAPE those, so the operands are activations, as inside a transformer block.
`OpCase.build(rng)` draws shapes, values, parameters and attributes from a numpy generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from prover.model.graph import SOFTMAX_ONE, DType, Graph, Op, f32_bits

INT8 = DType.I8


def values(rng: np.random.Generator, dtype: DType, dims: tuple[int, ...]) -> np.ndarray:
    count = math.prod(dims)
    if dtype == DType.F32:
        return rng.normal(0, 2, count).astype(np.float32)
    if dtype == DType.I32:
        return rng.integers(-(2**31), 2**31, count, dtype=np.int64).astype(np.int32)
    return rng.integers(-128, 128, count).astype(np.int8)


def requant_attrs(rng: np.random.Generator, shifts: tuple[int, int], prefix: str = "Y_") -> dict[str, int]:
    """Random int8 output parameters; the shift range suits the op's accumulator size."""
    low = int(rng.integers(-128, 0))
    return {
        "Y_ZP": int(rng.integers(-128, 128)),
        f"{prefix}MULT": int(rng.integers(1 << 30, 1 << 31)),
        f"{prefix}SHIFT": int(rng.integers(*shifts)),
        "ACT_MIN": low,
        "ACT_MAX": int(rng.integers(low, 128)),
    }


@dataclass
class Built:
    graph: Graph
    data: np.ndarray  # the input tensor's values (one input)

    def payload(self) -> bytes:
        tensor = self.graph.tensors[self.graph.input]
        return self.data.astype(tensor.dtype.numpy.newbyteorder(">")).tobytes()


def with_activations(
    parts: list[tuple[DType, tuple[int, ...]]], rng: np.random.Generator
) -> tuple[Graph, list[int], np.ndarray]:
    """A graph whose flat input is SLICEd into activations of the given dtypes (all one) and dims."""
    dtype = parts[0][0]
    counts = [math.prod(dims) for _, dims in parts]
    graph = Graph(metadata={"mode": "int8" if dtype == INT8 else "f32"})
    graph.input = graph.add_tensor("input", dtype, (sum(counts),))
    tensors, start = [], 0
    for i, ((_, dims), count) in enumerate(zip(parts, counts, strict=True)):
        flat = graph.add_node(Op.SLICE, [graph.input], f"part{i}", dtype, (count,), AXIS=0, START=start)
        tensors.append(graph.add_node(Op.RESHAPE, [flat], f"x{i}", dtype, dims))
        start += count
    return graph, tensors, values(rng, dtype, (sum(counts),))


def matmul(rng: np.random.Generator, dtype: DType) -> Built:
    k, m, cols, b_heads = (int(v) for v in rng.integers(1, 9, 4))
    heads, batch = b_heads * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    transposed = int(rng.integers(0, 2))
    b_dims = (k, cols, b_heads, batch) if transposed else (cols, k, b_heads, batch)
    graph, (a, b), data = with_activations([(dtype, (k, m, heads, batch)), (dtype, b_dims)], rng)
    attrs = {"TRANSPOSE_B": transposed}
    if dtype == INT8:
        attrs |= {"A_ZP": int(rng.integers(-128, 128)), "B_ZP": int(rng.integers(-128, 128))}
        attrs |= requant_attrs(rng, (-16, -2))
    else:
        attrs["ALPHA"] = f32_bits(float(rng.uniform(0.1, 1)))
    graph.output = graph.add_node(Op.MATMUL, [a, b], "y", dtype, (cols, m, heads, batch), **attrs)
    return Built(graph, data)


def random_dims(rng: np.random.Generator, high: int = 6) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(1, high, int(rng.integers(1, 5))))


def transpose(rng: np.random.Generator, dtype: DType) -> Built:
    dims = random_dims(rng)
    order = [int(v) for v in rng.permutation(4)]
    full = (*dims, *(1,) * (4 - len(dims)))
    graph, (x,), data = with_activations([(dtype, dims)], rng)
    perm = sum(p << (2 * i) for i, p in enumerate(order))
    graph.output = graph.add_node(Op.TRANSPOSE, [x], "y", dtype, tuple(full[p] for p in order), PERM=perm)
    return Built(graph, data)


def slice_concat(rng: np.random.Generator, dtype: DType) -> Built:
    """SLICE a piece off one activation, then CONCAT it with another along the same axis."""
    dims = random_dims(rng)
    axis = int(rng.integers(0, len(dims)))
    other = tuple(int(rng.integers(1, 4)) if d == axis else n for d, n in enumerate(dims))
    graph, (x, z), data = with_activations([(dtype, dims), (dtype, other)], rng)
    length = int(rng.integers(1, dims[axis] + 1))
    start = int(rng.integers(0, dims[axis] - length + 1))
    piece_dims = tuple(length if d == axis else n for d, n in enumerate(dims))
    piece = graph.add_node(Op.SLICE, [x], "piece", dtype, piece_dims, AXIS=axis, START=start)
    out = tuple(length + other[axis] if d == axis else n for d, n in enumerate(dims))
    graph.output = graph.add_node(
        Op.CONCAT,
        [z, piece, z],
        "y",
        dtype,
        tuple(n + other[axis] if d == axis else n for d, n in enumerate(out)),
        AXIS=axis,
    )
    return Built(graph, data)


def gather(rng: np.random.Generator, dtype: DType) -> Built:
    width, vocabulary, tokens = (int(v) for v in rng.integers(1, 9, 3))
    graph = Graph(metadata={"mode": "int8" if dtype == INT8 else "f32"})
    graph.input = graph.add_tensor("ids", DType.I32, (tokens,))
    table = graph.add_tensor("table", dtype, (width, vocabulary), values(rng, dtype, (width, vocabulary)))
    graph.output = graph.add_node(Op.GATHER, [graph.input, table], "y", dtype, (width, tokens))
    return Built(graph, rng.integers(0, vocabulary, tokens).astype(np.int32))


def softmax(rng: np.random.Generator, dtype: DType) -> Built:
    queries = int(rng.integers(1, 7))
    keys = queries + int(rng.integers(0, 4))
    dims = (keys, queries, int(rng.integers(1, 4)))
    graph, (x,), data = with_activations([(dtype, dims)], rng)
    inputs, attrs = [x], {"CAUSAL": int(rng.integers(0, 2))}
    if dtype == INT8:
        scale = float(rng.uniform(0.005, 0.2))
        table = np.round(SOFTMAX_ONE * np.exp(-scale * np.arange(256))).astype(np.int32)
        inputs.append(graph.add_tensor("exp", DType.I32, (256,), table))
    graph.output = graph.add_node(Op.SOFTMAX, inputs, "y", dtype, dims, **attrs)
    return Built(graph, data)


def norm(rng: np.random.Generator, dtype: DType, op: Op) -> Built:
    row = int(rng.integers(1, 40))
    dims = (row, int(rng.integers(1, 5)))
    graph, (x,), data = with_activations([(dtype, dims)], rng)
    beta = None if rng.integers(0, 2) else graph.add_tensor("beta", *_beta(rng, dtype, row))
    if dtype == INT8:
        per_channel = row if rng.integers(0, 2) else 1
        inputs = [
            x,
            graph.add_tensor("gamma", INT8, (row,), values(rng, INT8, (row,))),
            beta,
            graph.add_tensor("mult", DType.I32, (per_channel,), rng.integers(1 << 30, 1 << 31, per_channel)),
            graph.add_tensor("shift", DType.I32, (per_channel,), rng.integers(-20, -8, per_channel)),
        ]
        attrs = requant_attrs(rng, (0, 1)) | {"X_ZP": int(rng.integers(-128, 128))}
        attrs |= {"EPS": int(rng.integers(0, 1000))}
        del attrs["Y_MULT"], attrs["Y_SHIFT"]
        if rng.integers(0, 4) == 0:  # a constant row: the root may be 0
            data[:] = data[0]
    else:
        inputs = [x, graph.add_tensor("gamma", dtype, (row,), values(rng, dtype, (row,))), beta]
        attrs = {"EPS_F": f32_bits(1e-5)}
    graph.output = graph.add_node(op, inputs, "y", dtype, dims, **attrs)
    return Built(graph, data)


def _beta(rng: np.random.Generator, dtype: DType, row: int) -> tuple[DType, tuple[int], np.ndarray]:
    if dtype == INT8:
        return DType.I32, (row,), rng.integers(-(1 << 24), 1 << 24, row)
    return dtype, (row,), values(rng, dtype, (row,))


def rope(rng: np.random.Generator, dtype: DType) -> Built:
    half, positions = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    dims = (2 * half, positions, int(rng.integers(1, 4)))
    graph, (x,), data = with_activations([(dtype, dims)], rng)
    angles = np.outer(np.arange(positions), 10000.0 ** (-np.arange(half) / half))  # (T, half)
    attrs: dict[str, int] = {}
    if dtype == INT8:
        tables = [np.round(f(angles) * (1 << 14)).astype(np.int32) for f in (np.cos, np.sin)]
        attrs = requant_attrs(rng, (-18, -10), prefix="") | {"X_ZP": int(rng.integers(-128, 128))}
    else:
        tables = [f(angles).astype(np.float32) for f in (np.cos, np.sin)]
    table_type = DType.I32 if dtype == INT8 else DType.F32
    cos, sin = (
        graph.add_tensor(n, table_type, (half, positions), t)
        for n, t in zip(("cos", "sin"), tables, strict=True)
    )
    graph.output = graph.add_node(Op.ROPE, [x, cos, sin], "y", dtype, dims, **attrs)
    return Built(graph, data)


def activation(rng: np.random.Generator, op: Op) -> Built:
    dims = random_dims(rng)
    graph, (x,), data = with_activations([(DType.F32, dims)], rng)
    graph.output = graph.add_node(op, [x], "y", DType.F32, dims)
    return Built(graph, data)


CASES = {
    "matmul": matmul,
    "transpose": transpose,
    "slice_concat": slice_concat,
    "gather": gather,
    "softmax": softmax,
    "layernorm": lambda rng, dtype: norm(rng, dtype, Op.LAYERNORM),
    "rmsnorm": lambda rng, dtype: norm(rng, dtype, Op.RMSNORM),
    "rope": rope,
}
F32_ONLY = {"gelu": lambda rng: activation(rng, Op.GELU), "silu": lambda rng: activation(rng, Op.SILU)}
# f32 ops whose guest result equals numpy's bit for bit (same IEEE operations in the same order);
# the others use the guest's own exp / sqrt / erf or sum in another order.
F32_EXACT = {"transpose", "slice_concat", "gather", "rope"}


def attention_block(rng: np.random.Generator, tokens: int = 6, width: int = 8, heads: int = 2) -> Built:
    """A causal int8 attention block with random parameters touching every transformer op: GATHER,
    positional ADD, LAYERNORM, LINEAR to Q / K / V (SLICEd from one product), heads split by RESHAPE
    and TRANSPOSE, ROPE, MATMUL Q Kᵀ, causal SOFTMAX, MATMUL with V, heads merged, CONCAT, residual
    ADD, RMSNORM and a LOOKUP activation."""
    vocabulary, dh = 11, width // heads
    graph = Graph(metadata={"mode": "int8", "arch": "test-attention"})
    graph.input = graph.add_tensor("ids", DType.I32, (tokens,))

    def stored(name: str, dtype: DType, dims: tuple[int, ...]) -> int:
        return graph.add_tensor(name, dtype, dims, values(rng, dtype, dims))

    def node(op: Op, inputs: list[int | None], name: str, dims: tuple[int, ...], **attrs: int) -> int:
        return graph.add_node(op, inputs, name, INT8, dims, **attrs)

    def mult_shift(name: str, count: int, shifts: tuple[int, int]) -> list[int]:
        mult = graph.add_tensor(f"{name}.mult", DType.I32, (count,), rng.integers(1 << 30, 1 << 31, count))
        shift = graph.add_tensor(f"{name}.shift", DType.I32, (count,), rng.integers(*shifts, count))
        return [mult, shift]

    seq = (width, tokens)
    x = graph.add_node(Op.GATHER, [graph.input, stored("embed", INT8, (width, vocabulary))], "x", INT8, seq)
    add = {
        "A_MULT": 1 << 30,
        "A_SHIFT": 0,
        "B_MULT": 1 << 30,
        "B_SHIFT": 0,
        "Y_MULT": 1 << 30,
        "LEFT_SHIFT": 2,
    }
    x = node(Op.ADD, [x, stored("pos", INT8, seq)], "x+pos", seq, **add)
    gamma = stored("ln.gamma", INT8, (width,))
    ln = node(Op.LAYERNORM, [x, gamma, None, *mult_shift("ln", width, (-16, -12))], "ln", seq, EPS=10)
    qkv = node(
        Op.LINEAR,
        [ln, stored("qkv.w", INT8, (width, 3 * width)), None, *mult_shift("qkv", 3 * width, (-10, -7))],
        "qkv",
        (3 * width, tokens),
    )
    per_head = {}
    for i, name in enumerate("qkv"):
        part = node(Op.SLICE, [qkv], name, seq, AXIS=0, START=i * width)
        split = node(Op.RESHAPE, [part], f"{name}.split", (dh, heads, tokens))
        per_head[name] = node(Op.TRANSPOSE, [split], f"{name}.heads", (dh, tokens, heads), PERM=0b11_01_10_00)
    angles = np.outer(np.arange(tokens), 10000.0 ** (-np.arange(dh // 2) / (dh // 2)))
    cos, sin = (
        graph.add_tensor(n, DType.I32, (dh // 2, tokens), np.round(f(angles) * (1 << 14)))
        for n, f in (("cos", np.cos), ("sin", np.sin))
    )
    rope = {"MULT": 1 << 30, "SHIFT": -13}
    q = node(Op.ROPE, [per_head["q"], cos, sin], "q.rope", (dh, tokens, heads), **rope)
    k = node(Op.ROPE, [per_head["k"], cos, sin], "k.rope", (dh, tokens, heads), **rope)
    scores = node(
        Op.MATMUL, [q, k], "scores", (tokens, tokens, heads), TRANSPOSE_B=1, Y_MULT=1 << 30, Y_SHIFT=0
    )
    table = np.round(SOFTMAX_ONE * np.exp(-0.05 * np.arange(256)))
    exp = graph.add_tensor("exp", DType.I32, (256,), table)
    probs = node(Op.SOFTMAX, [scores, exp], "probs", (tokens, tokens, heads), CAUSAL=1)
    mixed = node(
        Op.MATMUL, [probs, per_head["v"]], "mixed", (dh, tokens, heads), A_ZP=-128, Y_MULT=1 << 30, Y_SHIFT=-4
    )
    merged = node(Op.TRANSPOSE, [mixed], "merged", (dh, heads, tokens), PERM=0b11_01_10_00)
    halves = [node(Op.SLICE, [merged], f"half{h}", (dh, 1, tokens), AXIS=1, START=h) for h in range(heads)]
    joined = node(Op.CONCAT, halves, "joined", (dh, heads, tokens), AXIS=1)
    flat = node(Op.RESHAPE, [joined], "attn", seq)
    x = node(Op.ADD, [x, flat], "residual", seq, **add)
    rms = node(Op.RMSNORM, [x, gamma, None, *mult_shift("rms", 1, (-14, -12))], "rms", seq)
    gelu = np.round(np.arange(-128, 128) * 0.5 * (1 + np.tanh(np.arange(-128, 128) / 64))) // 2
    graph.output = node(
        Op.LOOKUP, [rms, graph.add_tensor("gelu", INT8, (256,), np.clip(gelu, -128, 127))], "y", seq
    )
    return Built(graph, rng.integers(0, vocabulary, tokens).astype(np.int32))
