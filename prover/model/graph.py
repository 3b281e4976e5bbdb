"""The in-memory model: tensors, nodes and the op / attribute / dtype codes of docs/model-format.md.

    graph = Graph(metadata={"name": "tiny", "mode": "f32"})
    pixels = graph.add_tensor("pixels", DType.U8, (784,))              # the graph input (no data)
    x = graph.add_node(Op.DEQUANTIZE, [pixels], "x", DType.F32, (784,), SCALE=f32_bits(1 / 255))
    w = graph.add_tensor("w", DType.F32, (784, 10), data)             # dims innermost first
    graph.output = graph.add_node(Op.LINEAR, [x, w], "logits", DType.F32, (10,))
    graph.input = pixels
    check_graph(graph)                                                  # GraphError if it is not valid

Dims are innermost first, as in the file; `Tensor.data` is a numpy array of shape `dims[::-1]`
(so `W.data[out][in]` for a Linear, `[cout][cin][kh][kw]` for a conv, `x[c][h][w]` for a feature
map) in the native-endian numpy dtype of the tensor (`DType.numpy`). Activations (computed by a
node, and the graph input) have `data = None`. Node inputs are tensor indices, `None` for an absent
optional input; attributes are ints keyed by `Attr` (f32 attributes hold their IEEE bits: `f32_bits`).

`check_graph` holds the validity rules of the format page (the guest's check.c, rule for rule):
the reader applies it to every file and the writer to every graph it writes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from prover.errors import ProverError

MAX_META = 1024
MAX_TENSORS = 4096
MAX_NODES = 4096
MAX_STR = 255
MAX_INPUTS = 6
MAX_GEOMETRY = 0xFFFF  # kernel, stride and pad attributes (so in + pads never overflows)
MAX_BYTES = 1 << 31  # a tensor's element count and byte size stay below this


class DType(IntEnum):
    F32 = 0
    I8 = 1
    U8 = 2
    I32 = 3

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(_NUMPY_DTYPES[self])

    @property
    def size(self) -> int:
        return self.numpy.itemsize


_NUMPY_DTYPES = {DType.F32: np.float32, DType.I8: np.int8, DType.U8: np.uint8, DType.I32: np.int32}


class Op(IntEnum):
    LINEAR = 1
    CONV2D = 2
    MAXPOOL2D = 3
    AVGPOOL2D = 4
    SUBSAMPLE = 5
    RELU = 6
    TANH = 7
    SIGMOID = 8
    LOOKUP = 9
    RESHAPE = 10
    ADD = 11
    MUL = 12
    CLIP = 13
    SOFTMAX = 14
    QUANTIZE = 15
    DEQUANTIZE = 16
    REQUANTIZE = 17
    MATMUL = 18
    TRANSPOSE = 19
    SLICE = 20
    CONCAT = 21
    GATHER = 22
    LAYERNORM = 23
    RMSNORM = 24
    GELU = 25
    SILU = 26
    ROPE = 27
    ANSWER = 28
    GREEDY = 29


class Attr(IntEnum):
    STRIDE_H = 1
    STRIDE_W = 2
    PAD_TOP = 3
    PAD_LEFT = 4
    PAD_BOTTOM = 5
    PAD_RIGHT = 6
    GROUPS = 7
    KERNEL_H = 8
    KERNEL_W = 9
    X_ZP = 10
    Y_ZP = 11
    ACT_MIN = 12
    ACT_MAX = 13
    A_ZP = 14
    B_ZP = 15
    LEFT_SHIFT = 16
    A_MULT = 17
    A_SHIFT = 18
    B_MULT = 19
    B_SHIFT = 20
    Y_MULT = 21
    Y_SHIFT = 22
    MULT = 23
    SHIFT = 24
    SCALE = 25
    ZP = 26
    MIN_F = 27
    MAX_F = 28
    OFFSET = 29
    PERM = 30
    AXIS = 31
    START = 32
    CAUSAL = 33
    TRANSPOSE_B = 34
    EPS = 35
    EPS_F = 36
    ALPHA = 37
    ROUNDING = 38
    W_ZP = 39


ATTR_DEFAULTS = {
    Attr.STRIDE_H: 1,
    Attr.STRIDE_W: 1,
    Attr.GROUPS: 1,
    Attr.ACT_MIN: -128,
    Attr.ACT_MAX: 127,
    Attr.PERM: 0b11100100,  # the identity: output dim i is input dim i
    Attr.ALPHA: 0x3F800000,  # 1.0
}
# (min, max) inputs per op; inputs past the minimum are optional.
ARITY = {
    Op.LINEAR: (2, 5),
    Op.CONV2D: (2, 6),
    Op.MAXPOOL2D: (1, 1),
    Op.AVGPOOL2D: (1, 1),
    Op.SUBSAMPLE: (3, 3),
    Op.RELU: (1, 1),
    Op.TANH: (1, 1),
    Op.SIGMOID: (1, 1),
    Op.LOOKUP: (2, 2),
    Op.RESHAPE: (1, 1),
    Op.ADD: (2, 2),
    Op.MUL: (2, 2),
    Op.CLIP: (1, 1),
    Op.SOFTMAX: (1, 2),
    Op.QUANTIZE: (1, 1),
    Op.DEQUANTIZE: (1, 1),
    Op.REQUANTIZE: (1, 1),
    Op.MATMUL: (2, 2),
    Op.TRANSPOSE: (1, 1),
    Op.SLICE: (1, 1),
    Op.CONCAT: (2, 6),
    Op.GATHER: (2, 2),
    Op.LAYERNORM: (2, 5),
    Op.RMSNORM: (2, 5),
    Op.GELU: (1, 1),
    Op.SILU: (1, 1),
    Op.ROPE: (3, 3),
    Op.ANSWER: (1, 1),
    Op.GREEDY: (2, 2),
}
MAX_NORM = 16384  # LAYERNORM / RMSNORM row length: the int8 sum of squares stays below 2^61
SOFTMAX_ONE = 1 << 20  # int8 SOFTMAX: table entries lie in 0..2^20 (exp(0) = 2^20)


class GraphError(ProverError):
    """A graph that breaks a rule of docs/model-format.md; the message names the node or tensor,
    and so do the attributes `node` / `tensor` (indices, None when the graph as a whole is at fault)."""

    def __init__(self, message: str, node: int | None = None, tensor: int | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.tensor = tensor


def f32_bits(value: float) -> int:
    """The IEEE single-precision bits of `value` as a signed int32 (how f32 attributes are stored)."""
    return struct.unpack(">i", struct.pack(">f", value))[0]


def bits_f32(bits: int) -> float:
    return struct.unpack(">f", struct.pack(">i", bits))[0]


def dims4(dims: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Dims padded to four with 1s: shapes are compared this way, so (10,) equals (10, 1)."""
    return (*dims, *(1,) * (4 - len(dims)))  # type: ignore[return-value]


@dataclass
class Tensor:
    name: str
    dtype: DType
    dims: tuple[int, ...]
    data: np.ndarray | None = None
    scales: tuple[float, ...] = ()
    zero_point: int = 0

    @property
    def count(self) -> int:
        return math.prod(self.dims)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.size

    @property
    def dims4(self) -> tuple[int, int, int, int]:
        return dims4(self.dims)

    @property
    def shape(self) -> tuple[int, ...]:
        """The numpy shape of the data: dims reversed."""
        return tuple(reversed(self.dims))


@dataclass
class Node:
    op: Op
    inputs: list[int | None]
    output: int
    attrs: dict[Attr, int] = field(default_factory=dict)

    def attr(self, key: Attr) -> int:
        return self.attrs.get(key, ATTR_DEFAULTS.get(key, 0))

    def input(self, i: int) -> int | None:
        return self.inputs[i] if i < len(self.inputs) else None


MetaValue = int | float | str


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    input: int = 0
    output: int = 0
    metadata: dict[str, MetaValue] = field(default_factory=dict)

    def add_tensor(
        self,
        name: str,
        dtype: DType,
        dims: tuple[int, ...],
        data: np.ndarray | None = None,
        scales: tuple[float, ...] = (),
        zero_point: int = 0,
    ) -> int:
        """Append a tensor and return its index; `data` (any array of `dims[::-1]`'s element count)
        is converted to the tensor's dtype and shape, and made contiguous unless all its strides
        are zero (np.broadcast_to of one value: no memory), which it stays: the placeholders of
        weights converted only as the file is written (save_model's `fill`) are such arrays."""
        dims = tuple(int(d) for d in dims)
        if data is not None:
            data = np.asarray(data).astype(dtype.numpy, copy=False).reshape(dims[::-1])
            if any(data.strides):
                data = np.ascontiguousarray(data)
        self.tensors.append(Tensor(name, DType(dtype), dims, data, tuple(scales), int(zero_point)))
        return len(self.tensors) - 1

    def add_node(
        self,
        op: Op,
        inputs: list[int | None],
        name: str,
        dtype: DType,
        dims: tuple[int, ...],
        scales: tuple[float, ...] = (),
        zero_point: int = 0,
        **attrs: int,
    ) -> int:
        """Append a node computing a new activation tensor `name`; returns that tensor's index.
        Attributes by name: `STRIDE_H=2`."""
        output = self.add_tensor(name, dtype, dims, scales=scales, zero_point=zero_point)
        self.nodes.append(Node(Op(op), list(inputs), output, {Attr[k]: int(v) for k, v in attrs.items()}))
        return output

    def producer(self, tensor: int) -> int | None:
        """The index of the node computing `tensor`, or None."""
        return next((i for i, node in enumerate(self.nodes) if node.output == tensor), None)

    def consumers(self, tensor: int) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if tensor in node.inputs]


def check_graph(graph: Graph, *, single_node: bool = False) -> None:
    """Raise GraphError unless `graph` follows every rule of docs/model-format.md. With
    `single_node`, the rules of a node file (docs/memory-map.md, "Node tasks"): one node, producing
    the output tensor, whose operands without stored data are given (its activation inputs)."""
    n = len(graph.tensors)
    if len(graph.metadata) > MAX_META or n > MAX_TENSORS or len(graph.nodes) > MAX_NODES:
        raise GraphError(f"too many metadata entries, tensors or nodes (limits {MAX_META}, 4096, 4096)")
    for key, value in graph.metadata.items():
        check_metadata(key, value)
    if not (0 <= graph.input < n and 0 <= graph.output < n):
        raise GraphError(f"graph input {graph.input} or output {graph.output} is not a tensor index (< {n})")
    for i, tensor in enumerate(graph.tensors):
        try:
            check_tensor(tensor, f"tensor {i} ({tensor.name!r})")
        except GraphError as exc:
            raise GraphError(str(exc), tensor=i) from None
    if graph.tensors[graph.input].data is not None:
        raise GraphError(f"the graph input tensor {graph.input} has stored data", tensor=graph.input)
    ready = [t.data is not None for t in graph.tensors]
    ready[graph.input] = True
    if single_node:
        if len(graph.nodes) != 1 or graph.output != graph.nodes[0].output:
            raise GraphError("a node file holds exactly one node, which produces the output tensor")
        for t in graph.nodes[0].inputs:
            if t is not None and 0 <= t < n:
                ready[t] = True
    for index, node in enumerate(graph.nodes):
        where = f"node {index} ({Op(node.op).name})"
        try:
            _check_links(node, ready, where)
            check_node(graph, node, where)
        except GraphError as exc:
            raise GraphError(str(exc), node=index) from None
    out = graph.tensors[graph.output]
    if graph.output == graph.input or out.data is not None or not ready[graph.output]:
        raise GraphError(f"the graph output tensor {graph.output} is never computed by a node")


def _check_links(node: Node, ready: list[bool], where: str) -> None:
    """Inputs exist and are ready (stored, the graph input or computed before: topological order,
    hence no cycles); the output exists and is produced once. Marks the output ready."""
    n = len(ready)
    for t in node.inputs:
        if t is None:
            continue
        if not 0 <= t < n:
            raise GraphError(f"{where}: input tensor {t} does not exist (dangling; {n} tensors)")
        if not ready[t]:
            raise GraphError(
                f"{where}: input tensor {t} is neither stored data, the graph input nor an earlier "
                "node's output (nodes must be in topological order)"
            )
    if not 0 <= node.output < n:
        raise GraphError(f"{where}: output tensor {node.output} does not exist (dangling; {n} tensors)")
    if ready[node.output]:
        raise GraphError(f"{where}: output tensor {node.output} is stored, the graph input or produced twice")
    ready[node.output] = True


def check_metadata(key: str, value: MetaValue) -> None:
    """A key and value the file can hold: str (<= 255 bytes), f32, u32 or i32."""
    if len(key.encode()) > MAX_STR or (isinstance(value, str) and len(value.encode()) > MAX_STR):
        raise GraphError(f"metadata {key[:40]!r}: key or value longer than {MAX_STR} bytes")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not (isinstance(value, str | float) or (is_int and -(1 << 31) <= value < 1 << 32)):
        raise GraphError(f"metadata {key[:40]!r}: {value!r} is not a u32, i32, f32 or str")


def check_tensor(tensor: Tensor, where: str) -> None:
    if len(tensor.name.encode()) > MAX_STR:
        raise GraphError(f"{where}: name longer than {MAX_STR} bytes")
    if not 1 <= len(tensor.dims) <= 4:
        raise GraphError(f"{where}: {len(tensor.dims)} dims (1..4 allowed)")
    if any(d < 1 for d in tensor.dims):
        raise GraphError(f"{where}: a zero dim in {tensor.dims}")
    if any(d >= 1 << 32 for d in tensor.dims) or tensor.nbytes >= MAX_BYTES:
        raise GraphError(f"{where}: dims {tensor.dims} give {tensor.nbytes} bytes (>= 2^31)")
    if len(tensor.scales) not in (0, 1, tensor.dims[-1]):
        raise GraphError(f"{where}: {len(tensor.scales)} scales (0, 1 or dims[last] = {tensor.dims[-1]})")
    if tensor.data is not None and (
        tensor.data.dtype != tensor.dtype.numpy or tensor.data.shape != tensor.shape
    ):
        raise GraphError(f"{where}: data {tensor.data.dtype}{tensor.data.shape} does not match the dims")


def in_range(value: int, low: int, high: int) -> bool:
    return low <= value <= high


def _window_out(size: int, kernel: int, stride: int, pad_a: int, pad_b: int) -> int:
    """Output extent of a window sliding over `size` positions; 0 when the window does not fit."""
    if not (1 <= kernel <= MAX_GEOMETRY and 1 <= stride <= MAX_GEOMETRY):
        return 0
    if not (0 <= pad_a <= MAX_GEOMETRY and 0 <= pad_b <= MAX_GEOMETRY):
        return 0
    padded = size + pad_a + pad_b
    return 0 if padded < kernel else (padded - kernel) // stride + 1


def conv_output_dims(x_dims: tuple[int, ...], w_dims: tuple[int, ...], node: Node) -> tuple[int, ...] | None:
    """(OW, OH, COUT, N) of a CONV2D, or None when the window does not fit."""
    width, height, _, batch = dims4(x_dims)
    kw, kh, _, cout = dims4(w_dims)
    oh = _window_out(
        height, kh, node.attr(Attr.STRIDE_H), node.attr(Attr.PAD_TOP), node.attr(Attr.PAD_BOTTOM)
    )
    ow = _window_out(width, kw, node.attr(Attr.STRIDE_W), node.attr(Attr.PAD_LEFT), node.attr(Attr.PAD_RIGHT))
    return (ow, oh, cout, batch) if oh and ow else None


def pool_output_dims(x_dims: tuple[int, ...], node: Node) -> tuple[int, ...] | None:
    """(OW, OH, C, N) of a pool or SUBSAMPLE (which has no padding), or None when it does not fit.
    A pooling pad must be smaller than the window: every window then holds a real position."""
    width, height, channels, batch = dims4(x_dims)
    kh, kw = node.attr(Attr.KERNEL_H), node.attr(Attr.KERNEL_W)
    padded = node.op != Op.SUBSAMPLE
    pt, pl, pb, pr = (
        (node.attr(a) for a in (Attr.PAD_TOP, Attr.PAD_LEFT, Attr.PAD_BOTTOM, Attr.PAD_RIGHT))
        if padded
        else (0,) * 4
    )
    if pt >= kh or pb >= kh or pl >= kw or pr >= kw:
        return None
    oh = _window_out(height, kh, node.attr(Attr.STRIDE_H), pt, pb)
    ow = _window_out(width, kw, node.attr(Attr.STRIDE_W), pl, pr)
    return (ow, oh, channels, batch) if oh and ow else None


def check_node(graph: Graph, node: Node, where: str) -> None:
    """Operands, attributes and the declared output of one node (the guest's check.c)."""
    low, high = ARITY[node.op]
    if len(node.inputs) > MAX_INPUTS or any(t is not None for t in node.inputs[high:]):
        raise GraphError(f"{where}: more than {high} inputs")
    if any(node.input(i) is None for i in range(low)):
        raise GraphError(f"{where}: a required input is absent ({low} required)")
    for key in node.attrs:
        if not isinstance(key, Attr):
            raise GraphError(f"{where}: unknown attribute key {key}")

    def operand(i: int) -> Tensor | None:
        t = node.input(i)
        return None if t is None else graph.tensors[t]

    def fail(problem: str) -> None:
        raise GraphError(f"{where}: {problem}")

    x, y = operand(0), graph.tensors[node.output]
    assert x is not None
    if node.attr(Attr.ROUNDING) not in (0, 1):
        fail(f"ROUNDING {node.attr(Attr.ROUNDING)} is neither 0 (double) nor 1 (single)")

    def check_activation_range() -> None:
        lo, hi = node.attr(Attr.ACT_MIN), node.attr(Attr.ACT_MAX)
        if not (in_range(lo, -128, 127) and in_range(hi, lo, 127)):
            fail(f"ACT_MIN {lo} / ACT_MAX {hi} outside -128 <= ACT_MIN <= ACT_MAX <= 127")

    def check_vector(t: Tensor | None, dtype: DType, count: int, what: str) -> None:
        if t is not None and (t.dtype != dtype or t.count != count):
            fail(f"{what} must be {dtype.name} with {count} elements, not {t.dtype.name} {t.dims}")

    def check_weighted(channels: int) -> None:
        bias, mult, shift = operand(2), operand(3), operand(4)
        if x.dtype == DType.I8:
            if w.dtype != DType.I8 or y.dtype != DType.I8:
                fail("int8 input needs int8 weights and output")
            check_vector(bias, DType.I32, channels, "bias")
            if mult is None or shift is None or mult.dtype != DType.I32 or shift.dtype != DType.I32:
                fail("int8 needs i32 mult and shift inputs")
            if mult.count not in (channels, 1) or shift.count != mult.count:
                fail(f"mult and shift need {channels} or 1 elements each")
            check_activation_range()
            if not in_range(node.attr(Attr.W_ZP), -128, 127):
                fail("W_ZP outside -128..127")
        elif x.dtype == DType.F32 and w.dtype == DType.F32 and y.dtype == DType.F32:
            check_vector(bias, DType.F32, channels, "bias")
            if mult is not None or shift is not None:
                fail("f32 takes no mult / shift inputs")
        else:
            fail(f"dtypes x {x.dtype.name}, W {w.dtype.name}, y {y.dtype.name} do not fit (f32 or int8)")

    def check_unary(accepted: set[DType], to: DType | None = None) -> None:
        if x.dtype not in accepted:
            fail(f"input dtype {x.dtype.name} not accepted")
        if dims4(x.dims) != dims4(y.dims):
            fail(f"output dims {y.dims} differ from input dims {x.dims}")
        if y.dtype != (to if to is not None else x.dtype):
            fail(f"output dtype {y.dtype.name} does not fit")

    int8_or_f32 = {DType.I8, DType.F32}
    op = node.op
    if op == Op.LINEAR:
        w = operand(1)
        w_in, w_out, w2, w3 = dims4(w.dims)
        if w2 != 1 or w3 != 1 or x.dims[0] != w_in:
            fail(f"W dims {w.dims} do not fit input dims {x.dims} (W is (IN, OUT))")
        if y.dims[0] != w_out or y.count != w_out * (x.count // w_in):
            fail(f"output dims {y.dims} should be ({w_out}, ...) with {w_out * (x.count // w_in)} elements")
        check_weighted(w_out)
    elif op == Op.CONV2D:
        w = operand(1)
        cin, cout, groups = dims4(x.dims)[2], dims4(w.dims)[3], node.attr(Attr.GROUPS)
        if not in_range(groups, 1, MAX_GEOMETRY) or cout % groups or dims4(w.dims)[2] * groups != cin:
            fail(f"W dims {w.dims} and GROUPS {groups} do not fit {cin} input channels")
        out_dims = conv_output_dims(x.dims, w.dims, node)
        if out_dims is None:
            fail("kernel, stride or padding out of range, or the window does not fit the input")
        if dims4(y.dims) != out_dims:
            fail(f"output dims {y.dims} should be {out_dims}")
        mask = operand(5)
        if mask is not None and (mask.dtype != DType.U8 or mask.dims[0] != cin or mask.count != cin * cout):
            fail(f"mask must be u8 ({cin}, {cout})")
        if mask is not None and x.dtype == DType.I8 and node.attr(Attr.W_ZP) != 0:
            fail("a mask with a weight zero point W_ZP")
        check_weighted(cout)
    elif op in (Op.MAXPOOL2D, Op.AVGPOOL2D, Op.SUBSAMPLE):
        if op == Op.SUBSAMPLE:
            channels = dims4(x.dims)[2]
            if x.dtype != DType.F32 or y.dtype != DType.F32:
                fail("SUBSAMPLE is f32 only")
            check_vector(operand(1), DType.F32, channels, "coef")
            check_vector(operand(2), DType.F32, channels, "bias")
        elif x.dtype not in int8_or_f32 or y.dtype != x.dtype:
            fail("pools take and give f32 or int8")
        out_dims = pool_output_dims(x.dims, node)
        if out_dims is None:
            fail("kernel, stride or padding out of range, or the window does not fit the input")
        if dims4(y.dims) != out_dims:
            fail(f"output dims {y.dims} should be {out_dims}")
    elif op == Op.RELU:
        check_unary(int8_or_f32)
        if x.dtype == DType.I8 and not in_range(node.attr(Attr.X_ZP), -128, 127):
            fail("X_ZP outside -128..127")
    elif op in (Op.TANH, Op.SIGMOID, Op.GELU, Op.SILU):
        check_unary({DType.F32}, DType.F32)
    elif op == Op.SOFTMAX:
        table = operand(1)
        if x.dtype == DType.I8:
            check_unary({DType.I8}, DType.I8)
            if table is None:
                fail("int8 SOFTMAX needs its exp table (i32, 256)")
            check_vector(table, DType.I32, 256, "table")
        else:
            check_unary({DType.F32}, DType.F32)
            if table is not None:
                fail("f32 SOFTMAX takes no table")
        causal = node.attr(Attr.CAUSAL)
        if causal not in (0, 1) or (causal and x.dims4[0] < x.dims4[1]):
            fail("CAUSAL must be 0 or 1, and a causal row needs at least as many keys as queries")
    elif op == Op.LOOKUP:
        check_unary({DType.I8}, DType.I8)
        check_vector(operand(1), DType.I8, 256, "table")
    elif op == Op.RESHAPE:
        if y.dtype != x.dtype or y.count != x.count:
            fail(f"output {y.dtype.name} {y.dims} is not a reshape of {x.dtype.name} {x.dims}")
    elif op in (Op.ADD, Op.MUL):
        b = operand(1)
        if b.dtype != x.dtype or y.dtype != x.dtype or dims4(x.dims) != dims4(y.dims):
            fail("a, b and the output need one dtype and a's dims")
        if dims4(x.dims) != dims4(b.dims) and b.count != 1:
            fail(f"b dims {b.dims} are neither a's {x.dims} nor one element")
        if x.dtype not in int8_or_f32:
            fail(f"dtype {x.dtype.name} not accepted")
        if x.dtype == DType.I8:
            check_activation_range()
            shifts = [Attr.Y_SHIFT] + ([Attr.A_SHIFT, Attr.B_SHIFT] if op == Op.ADD else [])
            if any(not in_range(node.attr(s), -31, 31) for s in shifts):
                fail("a shift attribute outside -31..31")
            if op == Op.ADD and not in_range(node.attr(Attr.LEFT_SHIFT), 0, 31):
                fail("LEFT_SHIFT outside 0..31")
    elif op == Op.CLIP:
        check_unary(int8_or_f32)
        if x.dtype == DType.I8:
            check_activation_range()
    elif op == Op.QUANTIZE:
        check_unary({DType.F32}, DType.I8)
    elif op == Op.DEQUANTIZE:
        check_unary({DType.U8, DType.I8, DType.I32}, DType.F32)
    elif op == Op.REQUANTIZE:
        check_unary({DType.U8, DType.I8}, DType.I8)
        check_activation_range()
        top = 31 - node.attr(Attr.ROUNDING)
        if not in_range(node.attr(Attr.SHIFT), -31, top):
            fail(f"SHIFT outside -31..{top}")
    elif op == Op.MATMUL:
        _check_matmul(node, x, operand(1), y, fail)
        if x.dtype == DType.I8:
            check_activation_range()
    elif op in (Op.TRANSPOSE, Op.SLICE, Op.CONCAT):
        parts = [operand(i) for i in range(len(node.inputs)) if node.input(i) is not None]
        if any(t.dtype != y.dtype for t in parts):
            fail("inputs and output need one dtype")
        out_dims = _moved_dims(node, [t.dims4 for t in parts], y.dims4)
        if out_dims is None:
            fail("PERM, AXIS or START out of range, or input dims that do not fit")
        if y.dims4 != out_dims:
            fail(f"output dims {y.dims} should be {out_dims}")
    elif op == Op.GATHER:
        table = operand(1)
        ids = x.dims4
        if x.dtype != DType.I32 or table.dims4[2:] != (1, 1) or ids[3] != 1 or y.dtype != table.dtype:
            fail("GATHER takes i32 ids (up to 3 dims) and a 2-D table (E, V) giving the table's dtype")
        if y.dims4 != (table.dims4[0], *ids[:3]):
            fail(f"output dims {y.dims} should be {(table.dims4[0], *ids[:3])}")
    elif op in (Op.LAYERNORM, Op.RMSNORM):
        row = x.dims[0]
        if row > MAX_NORM or dims4(x.dims) != dims4(y.dims):
            fail(f"rows longer than {MAX_NORM}, or output dims {y.dims} differ from {x.dims}")
        w = operand(1)
        check_vector(w, DType.I8 if x.dtype == DType.I8 else DType.F32, row, "gamma")
        check_weighted(row)
        zp_ok = in_range(node.attr(Attr.X_ZP), -128, 127)
        if x.dtype == DType.I8 and not (zp_ok and node.attr(Attr.EPS) >= 0):
            fail("X_ZP outside -128..127 or a negative EPS")
    elif op == Op.ROPE:
        half, positions = x.dims4[0] // 2, x.dims4[1]
        table = DType.I32 if x.dtype == DType.I8 else DType.F32
        if x.dims4[0] % 2 or x.dtype not in int8_or_f32 or y.dtype != x.dtype or y.dims4 != x.dims4:
            fail("ROPE takes f32 or int8 x with an even dims[0] and gives the same dims and dtype")
        for i, what in ((1, "cos"), (2, "sin")):
            t = operand(i)
            if t.dtype != table or t.dims4 != (half, positions, 1, 1):
                fail(f"{what} must be {table.name} ({half}, {positions})")
        if x.dtype == DType.I8:
            check_activation_range()
            if not in_range(node.attr(Attr.SHIFT), -31, 31):
                fail("SHIFT outside -31..31")
    elif op == Op.ANSWER and (x.dtype != DType.I8 or y.dtype != DType.U8 or y.dims != (4 + x.nbytes,)):
        fail(f"ANSWER takes int8 and gives u8 ({4 + x.nbytes},): the class, then the input's bytes")
    elif op == Op.GREEDY:
        ids, positions = operand(1), x.dims4[1]
        if x.dtype != DType.I8 or x.dims4[2:] != (1, 1) or ids.dtype != DType.I32 or ids.count != positions:
            fail("GREEDY takes int8 logits (V, T) and i32 ids of T elements")
        if y.dtype != DType.U8 or y.dims != (8 * positions,):
            fail(f"GREEDY gives u8 ({8 * positions},): each position's id, then its greedy token")


def permutation(perm: int) -> tuple[int, int, int, int] | None:
    """TRANSPOSE's PERM (output dim i is input dim (PERM >> 2i) & 3) as a tuple, None if invalid."""
    order = tuple((perm >> (2 * i)) & 3 for i in range(4))
    return order if 0 <= perm <= 255 and sorted(order) == [0, 1, 2, 3] else None  # type: ignore[return-value]


def _moved_dims(
    node: Node, parts: list[tuple[int, int, int, int]], out: tuple[int, int, int, int]
) -> tuple[int, ...] | None:
    """The 4-D output dims of TRANSPOSE / SLICE / CONCAT, None when the attributes do not fit
    (a SLICE's length along AXIS is the declared output's)."""
    x = parts[0]
    if node.op == Op.TRANSPOSE:
        order = permutation(node.attr(Attr.PERM))
        return None if order is None else tuple(x[p] for p in order)
    axis = node.attr(Attr.AXIS)
    if not in_range(axis, 0, 3):
        return None
    if node.op == Op.SLICE:
        length, start = out[axis], node.attr(Attr.START)
        fits = in_range(start, 0, x[axis]) and length <= x[axis] - start
        return (*x[:axis], length, *x[axis + 1 :]) if fits else None
    if any(p[:axis] + p[axis + 1 :] != x[:axis] + x[axis + 1 :] for p in parts):
        return None
    return (*x[:axis], sum(p[axis] for p in parts), *x[axis + 1 :])


def _check_matmul(node: Node, a: Tensor, b: Tensor, y: Tensor, fail) -> None:
    """y[n][h][m][j] = sum_k a[n][h][m][k] * b[n][h / (H / HB)][j][k] (TRANSPOSE_B 1) or
    b[n][h / (H / HB)][k][j] (TRANSPOSE_B 0): heads of b may be shared by groups of a's heads."""
    if a.dtype not in (DType.I8, DType.F32) or b.dtype != a.dtype or y.dtype != a.dtype:
        fail("a, b and the output need one dtype, f32 or i8")
    transposed = node.attr(Attr.TRANSPOSE_B)
    if transposed not in (0, 1):
        fail("TRANSPOSE_B must be 0 or 1")
    k, m, heads, batch = a.dims4
    bd = b.dims4
    b_k, b_cols = (bd[0], bd[1]) if transposed else (bd[1], bd[0])
    if b_k != k or bd[3] != batch or heads % bd[2]:
        fail(f"b dims {b.dims} do not fit a dims {a.dims}")
    if y.dims4 != (b_cols, m, heads, batch):
        fail(f"output dims {y.dims} should be {(b_cols, m, heads, batch)}")
    if a.dtype == DType.I8 and not in_range(node.attr(Attr.Y_SHIFT), -31, 31):
        fail("Y_SHIFT outside -31..31")
