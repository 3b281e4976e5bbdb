"""The numpy reference engine: runs any valid .ggml graph on a batch of inputs.

    outputs = run(graph, batch)          # batch: (B, ...) inputs, each of the input tensor's size
    classes = outputs.argmax(axis=1)     # the first index of the maximum, as the guest reports it
    values = activations(graph, batch)   # every tensor's value (the graph-level trace)

Values are arrays of shape (B, count) in the tensor's dtype (float32, int8, uint8 or int32); an op
views them through the tensor's dims as (B, N, C, H, W) where it needs to.

int8 mode is integer arithmetic only, bit for bit the guest's (docs/arithmetic.md): int64 arrays
holding int32 values, wrapped to 32 bits wherever C wraps (`wrap32`), C's truncating division and
arithmetic shifts written out. Dot products run in int64, whose wrap-around modulo 2^64 keeps the
sum right modulo 2^32, as the guest's u32 accumulators. f32 mode is IEEE single precision in
whole-layer numpy operations; the guest sums in another order and has its own tanh / sigmoid / exp,
so the two agree on the class, not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from prover.errors import ProverError
from prover.model.graph import (
    SOFTMAX_ONE,
    Attr,
    DType,
    Graph,
    Node,
    Op,
    Tensor,
    bits_f32,
    dims4,
    permutation,
)
from prover.model.linear import native_linear, native_requantize

INT32_MIN = -(1 << 31)


def wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values reduced to int32 two's complement (C's conversion of a u32 sum to i32)."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def integer_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of int64 arrays, exactly: in float64 (BLAS) when every partial sum stays below 2^53 in
    magnitude, so each is an exact integer whatever the order; else in int64 (exact modulo 2^64,
    which is all the int32 wrap-around needs)."""
    terms = a.shape[-1]
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)) * terms
    if bound < 2.0**53:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a, b)


LINEAR_CHUNK = 1 << 22  # weights converted at a time (16 MB in float32): never a whole matrix
EXACT_F32 = 1 << 24  # float32 sums of integers are exact below this magnitude
MIN_F32_BLOCK = 64  # narrower column blocks than this: float64 instead


def integer_linear(x: np.ndarray, w: np.ndarray, w_zp: int) -> np.ndarray:
    """x @ (w - w_zp).T exactly, for int64 x (..., IN) and stored int8 weights w (OUT, IN) (a memory
    map's pages): natively in int32 (prover/model/linear.c) when every sum fits, else `blas_linear`."""
    native = native_linear(x, w, w_zp)
    return blas_linear(x, w, w_zp) if native is None else native


def blas_linear(x: np.ndarray, w: np.ndarray, w_zp: int) -> np.ndarray:
    """x @ (w - w_zp).T exactly, for int64 x (..., IN) and stored int8 weights w (OUT, IN),
    converted a chunk of rows at a time (a 7 B model's matrices pass through in 16 MB
    pieces). In float32 BLAS over column blocks short enough that every partial sum stays below
    2^24 in magnitude (each is then an exact integer whatever the order), the blocks summed in
    float64; in float64 when such blocks would be too short, while sums stay below 2^53; else int64."""
    inputs = w.shape[1]
    term = float(np.abs(x).max(initial=0)) * (128 + abs(w_zp))  # |x| |w - w_zp| for int8 w
    block = inputs if term == 0 else int((EXACT_F32 - 1) // term)
    if block >= MIN_F32_BLOCK:
        kind, block = np.float32, min(block, inputs)
    elif term * inputs < 2.0**53:
        kind, block = np.float64, inputs
    else:
        kind, block = np.int64, inputs
    rows = max(1, LINEAR_CHUNK // max(1, inputs))
    xs = x.astype(kind)
    out = np.zeros((*x.shape[:-1], w.shape[0]), np.float64 if kind != np.int64 else np.int64)
    for start in range(0, w.shape[0], rows):
        part = w[start : start + rows].astype(kind)
        if w_zp:
            part -= kind(w_zp)
        for k in range(0, inputs, block):
            out[..., start : start + rows] += xs[..., k : k + block] @ part[:, k : k + block].T
    return out.astype(np.int64)


def srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Saturating rounding doubling high multiply of int32 values (in int64 arrays)."""
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    ab = a * b
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    quotient = np.where(v >= 0, v >> 31, -((-v) >> 31))  # v / 2^31 truncated toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), (1 << 31) - 1, quotient)


def rdbpot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Rounding divide by 2^exponent (0..31), ties away from zero."""
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def mbqm(x: np.ndarray, m0: np.ndarray, shift: np.ndarray, rounding: int = 0) -> np.ndarray:
    """x * M0 * 2^(shift - 31), rounded: MultiplyByQuantizedMultiplier, rounded twice (gemmlowp's
    SRDHM then RDBPOT: rounding 0) or once (TFLite's single rounding: rounding 1, shift <= 30)."""
    shift = np.asarray(shift, np.int64)
    if rounding:
        return mbqm_single(x, m0, shift)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return rdbpot(srdhm(wrap32(np.asarray(x, np.int64) << left), m0), right)


def mbqm_single(x: np.ndarray, m0: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(x * M0 + 2^(30 - shift)) >> (31 - shift) in int64, wrapped to int32; shift in [-31, 30].
    |x * M0| < 2^62 and the sum stays below 2^63: exact in int64."""
    total = 31 - np.asarray(shift, np.int64)
    product = np.asarray(x, np.int64) * np.asarray(m0, np.int64)
    return wrap32((product + (np.int64(1) << (total - 1))) >> total)


def _geometry(node: Node) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    a = node.attr
    return (a(Attr.STRIDE_H), a(Attr.STRIDE_W)), (
        a(Attr.PAD_TOP),
        a(Attr.PAD_LEFT),
        a(Attr.PAD_BOTTOM),
        a(Attr.PAD_RIGHT),
    )


def _windows(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pads: tuple[int, ...], fill: float
) -> np.ndarray:
    """(..., H, W) -> (..., OH, OW, KH, KW) windows of x padded with `fill`."""
    top, left, bottom, right = pads
    spread = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    padded = np.pad(x, spread, constant_values=fill)
    return sliding_window_view(padded, kernel, axis=(-2, -1))[..., :: stride[0], :: stride[1], :, :]


def _spatial(value: np.ndarray, tensor: Tensor) -> np.ndarray:
    """(B, count) -> (B * N, C, H, W)."""
    width, height, channels, _ = dims4(tensor.dims)
    return value.reshape(-1, channels, height, width)


def masked_weights(w: np.ndarray, mask: np.ndarray | None, groups: int) -> np.ndarray:
    """Conv weights (COUT, CIN / groups, KH, KW) with the unconnected pairs (mask[cout][cin] != 1)
    zeroed: they take no part in the sum."""
    if mask is None:
        return w
    cout, cin_group = w.shape[:2]
    group_of = np.arange(cout) // (cout // groups)
    connected = mask.reshape(cout, groups, cin_group)[np.arange(cout), group_of] == 1
    return np.where(connected[:, :, None, None], w, np.zeros((), w.dtype))


def wide(x: np.ndarray) -> np.ndarray:
    """f32 operands of a sum of products or of exp / tanh, in float64, the result rounded once to
    f32: a float32 BLAS sum's order, and numpy's float32 exp / tanh, depend on the CPU's
    instruction set and move the last bits, while the float64 result rounded to f32 is the same on
    every CPU (but for a tie at the rounding boundary), so a calibration is too."""
    return x.astype(np.float64)


def _conv_sums(node: Node, x: np.ndarray, w: np.ndarray, mask: np.ndarray | None, dtype: type) -> np.ndarray:
    """sum over each window and the group's input channels of x * w: (B * N, C, H, W) ->
    (B * N, COUT, OH, OW) in `dtype` (int64 for int8 mode: exact modulo 2^64; float64 for f32 mode)."""
    groups = node.attr(Attr.GROUPS)
    w = masked_weights(w, mask, groups)
    cout, cin_group, kh, kw = w.shape
    stride, pads = _geometry(node)
    patches = _windows(x, (kh, kw), stride, pads, 0)  # (BN, C, OH, OW, KH, KW)
    batch, _, oh, ow = patches.shape[:4]
    cout_group = cout // groups
    out = np.empty((batch, cout, oh, ow), dtype)
    for g in range(groups):
        group = patches[:, g * cin_group : (g + 1) * cin_group]  # (BN, CG, OH, OW, KH, KW)
        rows = group.transpose(0, 2, 3, 1, 4, 5).reshape(batch * oh * ow, cin_group * kh * kw)
        weights = w[g * cout_group : (g + 1) * cout_group].reshape(cout_group, -1).astype(dtype)
        sums = integer_matmul(rows, weights.T) if dtype == np.int64 else rows.astype(dtype) @ weights.T
        out[:, g * cout_group : (g + 1) * cout_group] = sums.reshape(batch, oh, ow, cout_group).transpose(
            0, 3, 1, 2
        )
    return out


def _pool(node: Node, x: np.ndarray, int8: bool) -> np.ndarray:
    """MAXPOOL2D / AVGPOOL2D / SUBSAMPLE over (B * N, C, H, W), non-padded positions only."""
    a = node.attr
    kernel = (a(Attr.KERNEL_H), a(Attr.KERNEL_W))
    stride, pads = _geometry(node)
    if node.op == Op.SUBSAMPLE:
        pads = (0, 0, 0, 0)
    if node.op == Op.MAXPOOL2D:
        fill = -128 if int8 else -np.inf  # never above a real position, and every window has one
        return _windows(x, kernel, stride, pads, fill).max(axis=(-2, -1))
    counts = _windows(np.ones(x.shape[-2:], np.int64), kernel, stride, pads, 0).sum(axis=(-2, -1))
    if int8:
        s = _windows(x.astype(np.int64), kernel, stride, pads, 0).sum(axis=(-2, -1))
        half = counts // 2
        return np.where(s >= 0, (s + half) // counts, -((half - s) // counts))  # C's truncating '/'
    return _windows(x, kernel, stride, pads, 0).sum(axis=(-2, -1), dtype=np.float32) / counts.astype(
        np.float32
    )


def _requantize(
    acc: np.ndarray, node: Node, mult: np.ndarray, shift: np.ndarray, axis_shape: tuple
) -> np.ndarray:
    """clamp(Y_ZP + MBQM(acc, mult[c], shift[c]), ACT_MIN, ACT_MAX) with per-channel vectors shaped to
    broadcast over acc."""
    rounding = node.attr(Attr.ROUNDING)
    if np.any((shift < -31) | (shift > 31 - rounding)):
        raise ProverError(f"a requantization shift outside -31..{31 - rounding}")
    bounds = node.attr(Attr.ACT_MIN), node.attr(Attr.ACT_MAX)
    if axis_shape[-1] == -1:  # channels last (LINEAR): in C
        native = native_requantize(acc, mult, shift, node.attr(Attr.Y_ZP), bounds, rounding)
        if native is not None:
            return native
    mult, shift = mult.astype(np.int64).reshape(axis_shape), shift.astype(np.int64).reshape(axis_shape)
    y = wrap32(node.attr(Attr.Y_ZP) + mbqm(acc, mult, shift, rounding))
    return np.clip(y, *bounds)


def _f32_elementwise(node: Node, x: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    a = node.attr
    if node.op == Op.RELU:
        return np.where(x > 0, x, np.float32(0))
    if node.op == Op.TANH:
        return np.tanh(wide(x))
    if node.op == Op.SIGMOID:
        return 1 / (1 + np.exp(-wide(x)))
    if node.op == Op.GELU:
        return _gelu(x)
    if node.op == Op.SILU:
        return x / (1 + np.exp(-wide(x)))
    if node.op == Op.CLIP:
        lo, hi = np.float32(bits_f32(a(Attr.MIN_F))), np.float32(bits_f32(a(Attr.MAX_F)))
        return np.where(x < lo, lo, np.where(x > hi, hi, x))
    if node.op == Op.ADD:
        return x + b
    if node.op == Op.MUL:
        return x * b
    if node.op == Op.QUANTIZE:
        scaled = np.clip(x / np.float32(bits_f32(a(Attr.SCALE))), -(2.0**30), 2.0**30)
        rounded = np.rint(np.nan_to_num(scaled, nan=0.0)).astype(np.int64)
        return np.clip(rounded + a(Attr.ZP), -128, 127)
    raise ProverError(f"{node.op.name} has no f32 form")


def _int8_elementwise(node: Node, x: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    a = node.attr
    if node.op == Op.RELU:
        return np.maximum(x, a(Attr.X_ZP))
    if node.op == Op.CLIP:
        return np.clip(x, a(Attr.ACT_MIN), a(Attr.ACT_MAX))
    if node.op == Op.REQUANTIZE:
        shifted = mbqm(wrap32(x - a(Attr.X_ZP)), a(Attr.MULT), a(Attr.SHIFT), a(Attr.ROUNDING))
        y = wrap32(a(Attr.Y_ZP) + shifted)
        return np.clip(y, a(Attr.ACT_MIN), a(Attr.ACT_MAX))
    da, db = wrap32(x - a(Attr.A_ZP)), wrap32(b - a(Attr.B_ZP))
    if node.op == Op.ADD:
        left = a(Attr.LEFT_SHIFT)
        s = wrap32(
            mbqm(wrap32(da << left), a(Attr.A_MULT), a(Attr.A_SHIFT))
            + mbqm(wrap32(db << left), a(Attr.B_MULT), a(Attr.B_SHIFT))
        )
    else:
        s = wrap32(da * db)
    y = wrap32(a(Attr.Y_ZP) + mbqm(s, a(Attr.Y_MULT), a(Attr.Y_SHIFT)))
    return np.clip(y, a(Attr.ACT_MIN), a(Attr.ACT_MAX))


# Ops whose operands after the first are parameters (weights, bias, multipliers, mask, coef, table).
_PARAMETER_OPS = {
    Op.LINEAR,
    Op.CONV2D,
    Op.SUBSAMPLE,
    Op.LOOKUP,
    Op.SOFTMAX,
    Op.GATHER,
    Op.LAYERNORM,
    Op.RMSNORM,
    Op.ROPE,
}


def _view4(value: np.ndarray, tensor: Tensor) -> np.ndarray:
    """(B, count) -> (B, d3, d2, d1, d0): numpy axis 4 - i is the tensor's dim i."""
    return value.reshape(value.shape[0], *dims4(tensor.dims)[::-1])


def _moved(node: Node, parts: list[np.ndarray], tensors: list[Tensor], out: Tensor) -> np.ndarray:
    """TRANSPOSE, SLICE and CONCAT: the elements moved, whatever their dtype."""
    views = [_view4(v, t) for v, t in zip(parts, tensors, strict=True)]
    batch = max(v.shape[0] for v in views)
    if node.op == Op.TRANSPOSE:
        order = permutation(node.attr(Attr.PERM))
        return views[0].transpose(0, *(4 - order[4 - axis] for axis in range(1, 5)))
    axis = 4 - node.attr(Attr.AXIS)
    if node.op == Op.SLICE:
        start = node.attr(Attr.START)
        return np.take(views[0], range(start, start + dims4(out.dims)[4 - axis]), axis=axis)
    return np.concatenate([np.broadcast_to(v, (batch, *v.shape[1:])) for v in views], axis=axis)


def _gather(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rows of the (V, E) table by token id."""
    if np.any((ids < 0) | (ids >= len(table))):
        raise ProverError(f"GATHER: a token id outside 0..{len(table) - 1}")
    return table[ids.astype(np.int64)]


def _matmul(node: Node, a: np.ndarray, b: np.ndarray, ta: Tensor, tb: Tensor, f32: bool) -> np.ndarray:
    """(B, N, H, M, K) x (B, N, HB, K, J) -> (B, N, H, M, J), each b head shared by H / HB a heads."""
    av, bv = _view4(a, ta), _view4(b, tb)
    if node.attr(Attr.TRANSPOSE_B):
        bv = bv.swapaxes(-1, -2)
    bv = np.repeat(bv, av.shape[2] // bv.shape[2], axis=2)
    if f32:
        return np.matmul(wide(av), wide(bv)) * np.float32(bits_f32(node.attr(Attr.ALPHA)))
    ac = wrap32(av.astype(np.int64) - node.attr(Attr.A_ZP))
    bc = wrap32(bv.astype(np.int64) - node.attr(Attr.B_ZP))
    acc = wrap32(integer_matmul(ac, bc))
    y = wrap32(node.attr(Attr.Y_ZP) + mbqm(acc, node.attr(Attr.Y_MULT), node.attr(Attr.Y_SHIFT)))
    return np.clip(y, node.attr(Attr.ACT_MIN), node.attr(Attr.ACT_MAX))


def _softmax(node: Node, x: np.ndarray, tensor: Tensor, table: np.ndarray | None) -> np.ndarray:
    """Along dims[0]; with CAUSAL, query i (along dims[1]) sees keys j <= i + keys - queries and the
    others give 0 (int8: -128)."""
    v = _view4(x, tensor)
    queries, keys = v.shape[-2:]
    allowed = np.arange(keys)[None, :] <= np.arange(queries)[:, None] + (keys - queries)
    if not node.attr(Attr.CAUSAL):
        allowed[:] = True
    if table is None:
        shifted = v - np.where(allowed, v, -np.inf).max(axis=-1, keepdims=True)
        e = np.where(allowed, np.exp(np.where(allowed, wide(shifted), 0)), 0)
        return e / e.sum(axis=-1, keepdims=True)
    table = table.reshape(-1).astype(np.int64)
    if np.any((table < 0) | (table > SOFTMAX_ONE)) or table[0] < 1:
        raise ProverError("SOFTMAX: exp table entries outside 0..2^20, or table[0] = 0")
    v = v.astype(np.int64)
    top = np.where(allowed, v, -129).max(axis=-1, keepdims=True)
    e = np.where(allowed, table[np.clip(top - v, 0, 255)], 0)
    reciprocal = (1 << 40) // e.sum(axis=-1, keepdims=True)
    q = (e * reciprocal + (1 << 31)) >> 32
    return np.where(allowed, np.minimum(q - 128, 127), -128)


def _norm(node: Node, x: np.ndarray, row: int, params: list[np.ndarray | None], f32: bool) -> np.ndarray:
    """LAYERNORM / RMSNORM over rows of `row` elements (docs/arithmetic.md for int8)."""
    gamma, beta, mult, shift = params
    rows = x.reshape(x.shape[0], -1, row)
    centred = node.op == Op.LAYERNORM
    if f32:
        mean = rows.mean(axis=-1, keepdims=True, dtype=np.float32) if centred else np.float32(0)
        d = rows - mean
        var = (d * d).mean(axis=-1, keepdims=True, dtype=np.float32)
        eps = np.float32(bits_f32(node.attr(Attr.EPS_F)))
        y = d / np.sqrt(var + eps) * gamma.reshape(-1)
        return y + beta.reshape(-1) if beta is not None else y
    xc = rows.astype(np.int64) - node.attr(Attr.X_ZP)
    d = row * xc - (xc.sum(axis=-1, keepdims=True) if centred else 0)
    level = (d * d).sum(axis=-1, keepdims=True) // row + node.attr(Attr.EPS)
    root = np.vectorize(math.isqrt, otypes=[np.int64])(level)
    inverse = np.where(root > 0, (1 << 40) // np.maximum(root, 1), 0)
    z = rdbpot(d * inverse, 28)
    acc = wrap32(
        z * gamma.reshape(-1).astype(np.int64) + (0 if beta is None else beta.reshape(-1).astype(np.int64))
    )
    return _requantize(acc, node, mult, shift, (1, 1, -1))


def _rope(
    node: Node, x: np.ndarray, tensor: Tensor, cos: np.ndarray, sin: np.ndarray, f32: bool
) -> np.ndarray:
    """Rotates the pairs (x[2i], x[2i+1]) of each position t by the angle whose cos / sin are
    cos[t][i] / sin[t][i]."""
    v = _view4(x, tensor)
    pairs = v.reshape(*v.shape[:-1], -1, 2)
    if f32:
        xa, xb = pairs[..., 0], pairs[..., 1]
        return np.stack([xa * cos - xb * sin, xa * sin + xb * cos], axis=-1)
    xa, xb = (wrap32(pairs[..., k].astype(np.int64) - node.attr(Attr.X_ZP)) for k in (0, 1))
    c, s = cos.astype(np.int64), sin.astype(np.int64)
    acc = wrap32(np.stack([xa * c - xb * s, xa * s + xb * c], axis=-1))
    y = wrap32(node.attr(Attr.Y_ZP) + mbqm(acc, node.attr(Attr.MULT), node.attr(Attr.SHIFT)))
    return np.clip(y, node.attr(Attr.ACT_MIN), node.attr(Attr.ACT_MAX))


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 by Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7, the guest's formula):
    vectorized, where math.erf per element would dominate a language model's calibration."""
    t = 1 / (1 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    """0.5 x (1 + erf(x / sqrt 2)), in float64 rounded to f32."""
    wide = x.astype(np.float64)
    return 0.5 * wide * (1 + erf(wide / math.sqrt(2)))


def _run_node(graph: Graph, node: Node, values: list[np.ndarray | None]) -> np.ndarray:
    def batched(i: int) -> np.ndarray | None:
        """A data operand as (B, count), or (1, count) when it is stored."""
        t = node.input(i)
        if t is None:
            return None
        stored = graph.tensors[t].data
        return stored.reshape(1, -1) if stored is not None else values[t]

    def param(i: int) -> np.ndarray | None:
        """A parameter operand in its own shape (the first input's value if computed: see
        `activations`)."""
        t = node.input(i)
        if t is None:
            return None
        tensor = graph.tensors[t]
        return tensor.data if tensor.data is not None else values[t][0].reshape(tensor.shape)

    x_tensor = graph.tensors[node.inputs[0]]
    x = batched(0)
    batch = x.shape[0]
    if node.op in (Op.TRANSPOSE, Op.SLICE, Op.CONCAT):
        present = [i for i in range(len(node.inputs)) if node.input(i) is not None]
        tensors = [graph.tensors[node.inputs[i]] for i in present]
        return _moved(node, [batched(i) for i in present], tensors, graph.tensors[node.output]).reshape(
            batch if node.op != Op.CONCAT else -1, graph.tensors[node.output].count
        )
    if node.op == Op.GATHER:
        return _gather(x, param(1)).reshape(batch, -1)
    f32 = x_tensor.dtype == DType.F32 or node.op == Op.DEQUANTIZE
    a = node.attr
    op = node.op

    if op == Op.RESHAPE:
        return x
    if op == Op.GREEDY:  # per position: [u32 id][u32 first index of the row's maximum], big-endian
        ids = batched(1).astype(np.int64).reshape(batch, -1)
        tokens = np.argmax(x.reshape(batch, ids.shape[1], -1), axis=2)
        return np.stack([ids, tokens], axis=2).astype(">u4").view(np.uint8).reshape(batch, -1)
    if op == Op.ANSWER:  # [u32 class, big-endian][x's bytes]: the first index of the maximum
        classes = np.argmax(x, axis=1).astype(">u4").view(np.uint8).reshape(batch, 4)
        return np.concatenate([classes, x.astype(np.int8).view(np.uint8)], axis=1)
    if op == Op.DEQUANTIZE:
        centred = wrap32(x.astype(np.int64) - a(Attr.ZP)).astype(np.float32)
        return centred * np.float32(bits_f32(a(Attr.SCALE))) + np.float32(bits_f32(a(Attr.OFFSET)))
    if op == Op.LINEAR:
        w, bias = param(1), param(2)
        inp = w.shape[-1]
        if f32:
            y = wide(x).reshape(batch, -1, inp) @ wide(w).reshape(-1, inp).T
            return (y + bias.reshape(-1) if bias is not None else y).reshape(batch, -1)
        xc = wrap32(x.astype(np.int64) - a(Attr.X_ZP)).reshape(batch, -1, inp)
        acc = integer_linear(xc, w.reshape(-1, inp), a(Attr.W_ZP))
        if bias is not None:
            acc = acc + bias.reshape(-1).astype(np.int64)
        return _requantize(wrap32(acc), node, param(3), param(4), (1, 1, -1)).reshape(batch, -1)
    if op == Op.CONV2D:
        w_dims = dims4(graph.tensors[node.inputs[1]].dims)
        w, bias, mask = param(1).reshape(w_dims[::-1]), param(2), param(5)
        if f32:
            sums = _conv_sums(node, _spatial(x, x_tensor), w, mask, np.float64)
            y = sums + bias.reshape(1, -1, 1, 1) if bias is not None else sums
            return y.reshape(batch, -1)
        xc = wrap32(_spatial(x, x_tensor).astype(np.int64) - a(Attr.X_ZP))
        acc = _conv_sums(node, xc, w.astype(np.int64) - a(Attr.W_ZP), mask, np.int64)
        if bias is not None:
            acc = acc + bias.astype(np.int64).reshape(1, -1, 1, 1)
        return _requantize(wrap32(acc), node, param(3), param(4), (1, -1, 1, 1)).reshape(batch, -1)
    if op in (Op.MAXPOOL2D, Op.AVGPOOL2D, Op.SUBSAMPLE):
        y = _pool(node, _spatial(x, x_tensor), int8=not f32)
        if op == Op.SUBSAMPLE:
            y = y * param(1).reshape(1, -1, 1, 1) + param(2).reshape(1, -1, 1, 1)
        return y.reshape(batch, -1)
    if op == Op.SOFTMAX:
        return _softmax(node, x, x_tensor, param(1)).reshape(batch, -1)
    if op == Op.MATMUL:
        b_tensor = graph.tensors[node.inputs[1]]
        return _matmul(node, x, batched(1), x_tensor, b_tensor, f32).reshape(
            -1, graph.tensors[node.output].count
        )
    if op in (Op.LAYERNORM, Op.RMSNORM):
        return _norm(node, x, x_tensor.dims[0], [param(i) for i in range(1, 5)], f32).reshape(batch, -1)
    if op == Op.ROPE:
        return _rope(node, x, x_tensor, param(1), param(2), f32).reshape(batch, -1)
    if op == Op.LOOKUP:
        return param(1).reshape(-1)[x.astype(np.int64) + 128]
    b = batched(1)
    if f32:
        return _f32_elementwise(node, x, b)
    return _int8_elementwise(node, x.astype(np.int64), None if b is None else b.astype(np.int64))


def activations(graph: Graph, batch: np.ndarray) -> list[np.ndarray | None]:
    """Every tensor's value for a batch of inputs: (B, count) arrays for activations, None for
    stored tensors. `batch` is (B, ...) with the input tensor's element count per input, in its dtype
    (or values that fit it)."""
    inputs = graph.tensors[graph.input]
    batch = np.asarray(batch)
    if batch.size % inputs.count or batch.size == 0:
        raise ProverError(f"input of {batch.size} values is not a batch of {inputs.count}-value inputs")
    batch = batch.reshape(-1, inputs.count)
    if len(batch) > 1 and _computes_parameters(graph):
        # A parameter computed from the input may differ per input: run them one at a time.
        runs = [activations(graph, one) for one in batch]
        return [None if v is None else np.concatenate([r[i] for r in runs]) for i, v in enumerate(runs[0])]
    values: list[np.ndarray | None] = [None] * len(graph.tensors)
    values[graph.input] = batch.astype(inputs.dtype.numpy)
    for node in graph.nodes:
        values[node.output] = node_value(graph, node, values, len(batch))
    return values


def node_value(graph: Graph, node: Node, values: list[np.ndarray | None], batch: int = 1) -> np.ndarray:
    """One node's output, (batch, count) in its dtype, from the values of its activation operands
    in `values` (indexed by tensor, (batch, count) each): what the graph phase of a multi-phase
    game computes per node, and what the guest's single-node program computes in the VM."""
    y = graph.tensors[node.output]
    with np.errstate(all="ignore"):  # f32 overflow and NaN are IEEE results, not errors
        result = np.asarray(_run_node(graph, node, values)).astype(y.dtype.numpy, copy=False)
    return np.broadcast_to(result.reshape(-1, y.count), (batch, y.count))


def _computes_parameters(graph: Graph) -> bool:
    return any(
        t is not None and graph.tensors[t].data is None
        for node in graph.nodes
        if node.op in _PARAMETER_OPS
        for t in node.inputs[1:]
    )


def run(graph: Graph, batch: np.ndarray) -> np.ndarray:
    """The output tensor's values, (B, count), for a batch of inputs."""
    return activations(graph, batch)[graph.output]


def dequantized(graph: Graph, outputs: np.ndarray) -> np.ndarray:
    """Output values as floats: int8 ones through the output tensor's scale and zero point when
    it has them (the logits of an int8 model), others as they are."""
    tensor = graph.tensors[graph.output]
    if tensor.dtype == DType.F32 or not tensor.scales:
        return outputs.astype(np.float64)
    return (outputs.astype(np.float64) - tensor.zero_point) * np.asarray(tensor.scales, np.float64)
