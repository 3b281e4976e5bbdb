"""Post-training int8 quantization: an f32 graph and calibration inputs in, an int8 graph out.

    int8_graph = quantize(f32_graph, calibration)   # calibration: (N, ...) raw uint8 inputs
    int8_graph = quantize(f32_graph, calibration, method="mse")

The int8 graph computes with integers only (docs/arithmetic.md):
- Calibration: the f32 engine runs the calibration inputs (e.g. 1,000 training images) and each
  activation gets a range [low, high], widened to hold 0; its int8 scale is (high - low) / 255 and
  its zero point puts low at -128 (asymmetric, TFLite's convention). The range is, by `method`:
  "minmax" (the default) the minimum and maximum of the values, so no calibration value is ever
  clamped; "percentile" the 0.01th and 99.99th percentiles (outliers clamped for a finer scale);
  "mse" the range [t * min, t * max], t in (0, 1] by steps of 1/100, whose quantize-dequantize
  round trip has the least mean squared error over the values (at most 100,000 of them, evenly
  strided).
- The u8 input's DEQUANTIZE (pixel * scale + offset) becomes a REQUANTIZE straight into the first
  layer's int8 input; its range is exact (pixels 0..255), not calibrated.
- LINEAR and CONV2D: per-output-channel symmetric int8 weights (scale max|w| / 127, values in
  -127..127), int32 bias at scale x_scale * w_scale[c], and a per-channel multiplier (M0, shift) for
  x_scale * w_scale[c] / y_scale. A RELU right after is fused: the node's output takes the ReLU's
  range (which starts at 0) and ACT_MIN clamps at the zero point.
- SUBSAMPLE (avgpool * coef + bias) becomes a depthwise CONV2D with weights coef[c] / (kh * kw).
- MAXPOOL2D, AVGPOOL2D, RESHAPE and an unfused RELU keep their input's scale and zero point.
- TANH and SIGMOID become LOOKUP tables computed here, with the fixed output scales of TFLite
  (tanh: 1/128, zero point 0; sigmoid: 1/256, zero point -128).
- A SOFTMAX producing the graph output is dropped (the argmax is unchanged): the int8 output is the
  logits, whose scale and zero point are recorded on the output tensor.
Any other node raises a ProverError naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from prover.errors import ProverError
from prover.model.engine import activations, erf, masked_weights
from prover.model.graph import SOFTMAX_ONE, Attr, DType, Graph, Node, Op, bits_f32

CALIBRATION_CHUNK = 500
CALIBRATION_METHODS = ("minmax", "percentile", "mse")
PERCENTILE = 99.99
MSE_STEPS = 100
MSE_SAMPLE = 100_000
MIN_SCALE = 2.0**-32
TANH_QPARAMS = (1 / 128, 0)
SIGMOID_QPARAMS = (1 / 256, -128)
SOFTMAX_QPARAMS = (1 / 256, -128)
ADD_LEFT_SHIFT = 20
NORM_FRACTION_BITS = 12  # LAYERNORM's normalized values are Q12 (docs/arithmetic.md)
ROPE_ONE = 1 << 14  # ROPE's cos / sin tables are integers at this scale
LOOKUP_FUNCTIONS = {
    Op.TANH: np.tanh,
    Op.SIGMOID: lambda x: 1 / (1 + np.exp(-x)),
    Op.GELU: lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))),
    Op.SILU: lambda x: x / (1 + np.exp(-x)),
}


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M0, shift) with real = M0 * 2^(shift - 31), M0 in [2^30, 2^31); (0, 0) for a multiplier too
    small to matter (below 2^-32: it moves no int32 value by half a unit)."""
    if real < 0 or not math.isfinite(real):
        raise ProverError(f"requantization multiplier {real} is not a finite non-negative number")
    if real == 0:
        return 0, 0
    fraction, exponent = math.frexp(real)
    m0 = round(fraction * (1 << 31))
    if m0 == 1 << 31:
        m0, exponent = m0 // 2, exponent + 1
    if exponent < -31:
        return 0, 0
    if exponent > 30:
        raise ProverError(f"requantization multiplier {real} is too large (>= 2^30)")
    return m0, exponent


def qparams(low: float, high: float) -> tuple[float, int]:
    """int8 (scale, zero point) for values in [low, high], widened to hold 0 exactly. A (nearly)
    empty range gets MIN_SCALE, which keeps the multipliers that divide by it finite."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max((high - low) / 255, MIN_SCALE)
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return float(np.float32(scale)), zero_point


def calibrate(
    graph: Graph, calibration: np.ndarray, method: str = "minmax"
) -> dict[int, tuple[float, float]]:
    """The calibrated (low, high) of every f32 activation over the calibration inputs."""
    if method not in CALIBRATION_METHODS:
        raise ProverError(f"calibration method {method!r}: one of {', '.join(CALIBRATION_METHODS)}")
    batch = np.asarray(calibration).reshape(-1, graph.tensors[graph.input].count)
    if len(batch) == 0:
        raise ProverError("no calibration inputs")
    samples: dict[int, list[np.ndarray]] = {}
    for start in range(0, len(batch), CALIBRATION_CHUNK):
        values = activations(graph, batch[start : start + CALIBRATION_CHUNK])
        for index, value in enumerate(values):
            if value is None or graph.tensors[index].dtype != DType.F32:
                continue
            if not np.all(np.isfinite(value)):
                raise ProverError(
                    f"tensor {index} ({graph.tensors[index].name}): non-finite calibration values"
                )
            flat = value.reshape(-1)
            # min / max needs only the extremes so far; the others need every value
            kept = np.array([flat.min(), flat.max()]) if method == "minmax" else flat.astype(np.float32)
            samples.setdefault(index, []).append(kept)
    return {index: calibrated_range(np.concatenate(parts), method) for index, parts in samples.items()}


def calibrated_range(values: np.ndarray, method: str) -> tuple[float, float]:
    """(low, high) of one activation's calibration values by `method` (see the module docstring)."""
    if method == "percentile":
        low, high = np.percentile(values, [100 - PERCENTILE, PERCENTILE])
        return float(low), float(high)
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if method == "minmax" or low == high:
        return low, high
    sample = values[:: -(-len(values) // MSE_SAMPLE)].astype(np.float64)
    best, best_error = (low, high), math.inf
    for step in range(MSE_STEPS, 0, -1):
        t = step / MSE_STEPS
        scale, zero_point = qparams(low * t, high * t)
        q = np.clip(np.round(sample / scale) + zero_point, -128, 127)
        error = float(np.mean((scale * (q - zero_point) - sample) ** 2))
        if error < best_error:
            best, best_error = (low * t, high * t), error
    return best


class _Quantizer:
    def __init__(self, source: Graph, ranges: dict[int, tuple[float, float]]) -> None:
        self.source = source
        self.ranges = ranges
        self.graph = Graph(metadata={**source.metadata, "mode": "int8"})
        self.mapped: dict[int, int] = {}  # source tensor -> int8 graph tensor

    def qparams_of(self, new_tensor: int) -> tuple[float, int]:
        t = self.graph.tensors[new_tensor]
        return t.scales[0], t.zero_point

    def activation(
        self, op: Op, inputs: list[int | None], source_out: int, scale_zp: tuple[float, int], **attrs: int
    ) -> int:
        out = self.source.tensors[source_out]
        scale, zp = scale_zp
        index = self.graph.add_node(op, inputs, out.name, DType.I8, out.dims, (scale,), zp, **attrs)
        self.mapped[source_out] = index
        return index

    def weighted(self, node: Node, where: str, fused_relu: int | None) -> None:
        """LINEAR / CONV2D / SUBSAMPLE as an int8 LINEAR or CONV2D: per-channel int8 weights, int32
        bias and multipliers; a fused ReLU's output range and ACT_MIN."""
        src, a = self.source, node.attr
        stored = [None if t is None else src.tensors[t].data for t in node.inputs]
        if any(t is not None and data is None for t, data in zip(node.inputs[1:], stored[1:], strict=True)):
            raise ProverError(f"{where}: weights computed by the graph cannot be quantized")
        if node.op == Op.SUBSAMPLE:  # a depthwise conv with weights coef[c] / (kh * kw)
            kh, kw = a(Attr.KERNEL_H), a(Attr.KERNEL_W)
            coef = stored[1].reshape(-1).astype(np.float64)
            weight = np.broadcast_to((coef / (kh * kw)).reshape(-1, 1, 1, 1), (len(coef), 1, kh, kw))
            attrs = {"STRIDE_H": a(Attr.STRIDE_H), "STRIDE_W": a(Attr.STRIDE_W), "GROUPS": len(coef)}
        else:
            weight = stored[1].astype(np.float64)
            if node.op == Op.CONV2D:
                weight = masked_weights(weight, stored[5] if len(stored) > 5 else None, a(Attr.GROUPS))
            attrs = {key.name: value for key, value in node.attrs.items()}
        out = node.output if fused_relu is None else src.nodes[fused_relu].output
        x = self.mapped[node.inputs[0]]
        x_scale, x_zp = self.qparams_of(x)
        y_scale, y_zp = qparams(*self.ranges[out])
        channels = weight.shape[0]
        per_channel = np.abs(weight.reshape(channels, -1)).max(axis=1) / 127
        w_scale = np.where(per_channel > 0, per_channel, 1.0).astype(np.float32).astype(np.float64)
        expand = (-1,) + (1,) * (weight.ndim - 1)
        w_q = np.clip(np.round(weight / w_scale.reshape(expand)), -127, 127).astype(np.int8)
        bias_scale = x_scale * w_scale
        bias_data = stored[2] if len(stored) > 2 else None  # the bias input is optional
        bias = np.zeros(channels) if bias_data is None else bias_data.astype(np.float64).reshape(-1)
        b_q = np.clip(np.round(bias / bias_scale), -(2**31), 2**31 - 1).astype(np.int32)
        multipliers = [quantize_multiplier(float(x_scale * s / y_scale)) for s in w_scale]
        g, name = self.graph, src.tensors[out].name
        inputs: list[int | None] = [
            x,
            g.add_tensor(src.tensors[node.inputs[1]].name, DType.I8, w_q.shape[::-1], w_q, tuple(w_scale)),
            g.add_tensor(f"{name}.bias", DType.I32, (channels,), b_q, tuple(bias_scale)),
            g.add_tensor(f"{name}.mult", DType.I32, (channels,), [m for m, _ in multipliers]),
            g.add_tensor(f"{name}.shift", DType.I32, (channels,), [s for _, s in multipliers]),
        ]
        if node.op == Op.CONV2D and node.input(5) is not None:
            mask = src.tensors[node.inputs[5]]
            inputs.append(g.add_tensor(mask.name, DType.U8, mask.dims, mask.data))
        if fused_relu is not None:
            attrs["ACT_MIN"] = max(-128, y_zp)
        op = Op.LINEAR if node.op == Op.LINEAR else Op.CONV2D
        self.activation(op, inputs, out, (y_scale, y_zp), X_ZP=x_zp, Y_ZP=y_zp, **attrs)

    def run(self) -> Graph:
        src = self.source
        fused: set[int] = set()
        for index, node in enumerate(src.nodes):
            if index in fused:
                continue
            where = f"node {index} ({node.op.name})"
            if node.op == Op.DEQUANTIZE:
                self.input_requantize(node, where)
                continue
            if node.op in self.SEQUENCE_OPS:
                self.SEQUENCE_OPS[node.op](self, node)
                continue
            if node.inputs[0] not in self.mapped:
                raise ProverError(f"{where}: its input is not an activation of the quantized graph")
            x = self.mapped[node.inputs[0]]
            if node.op in (Op.LINEAR, Op.CONV2D, Op.SUBSAMPLE):
                follower = self.sole_consumer(node.output)
                relu = follower if follower is not None and src.nodes[follower].op == Op.RELU else None
                if relu is not None:
                    fused.add(relu)
                self.weighted(node, where, relu)
            elif node.op in (Op.MAXPOOL2D, Op.AVGPOOL2D, Op.RESHAPE, Op.TRANSPOSE, Op.SLICE):
                attrs = {key.name: value for key, value in node.attrs.items()}
                self.activation(node.op, [x], node.output, self.qparams_of(x), **attrs)
            elif node.op == Op.RELU:
                scale, zp = self.qparams_of(x)
                self.activation(Op.RELU, [x], node.output, (scale, zp), X_ZP=zp)
            elif node.op in (Op.TANH, Op.SIGMOID):
                self.lookup(node, x)
            elif node.op == Op.SOFTMAX and node.output == src.output:
                self.mapped[node.output] = x
            elif node.op == Op.SOFTMAX:
                self.softmax(node)
            else:
                raise ProverError(f"{where}: no int8 form for this node (f32 only)")
        if src.output not in self.mapped:
            raise ProverError("the graph output is not computed by a quantizable node")
        self.graph.output = self.mapped[src.output]
        return self.graph

    def operand(self, tensor: int, scale_zp: tuple[float, int] | None = None) -> int:
        """The int8 form of a source tensor: its mapped activation, or stored f32 data quantized
        per tensor (with `scale_zp`, or its own min / max)."""
        if tensor in self.mapped:
            return self.mapped[tensor]
        source = self.source.tensors[tensor]
        if source.data is None:
            raise ProverError(f"tensor {tensor} ({source.name}): not computed before its use")
        data = source.data.astype(np.float64)
        scale, zp = scale_zp or qparams(float(data.min()), float(data.max()))
        q = np.clip(np.round(data / scale) + zp, -128, 127)
        return self.graph.add_tensor(source.name, DType.I8, source.dims, q, (scale,), zp)

    def requantized(self, x: int, scale_zp: tuple[float, int], name: str) -> int:
        """x itself when it has these parameters, else a REQUANTIZE of it to them."""
        if self.qparams_of(x) == scale_zp:
            return x
        (x_scale, x_zp), (scale, zp) = self.qparams_of(x), scale_zp
        m0, shift = quantize_multiplier(x_scale / scale)
        t = self.graph.tensors[x]
        return self.graph.add_node(
            Op.REQUANTIZE, [x], name, DType.I8, t.dims, (scale,), zp, X_ZP=x_zp, Y_ZP=zp, MULT=m0, SHIFT=shift
        )

    def output_qparams(self, node: Node) -> tuple[float, int]:
        return qparams(*self.ranges[node.output])

    def ids(self, node: Node) -> None:
        """GATHER of the i32 graph input: the table quantized per tensor, whose parameters the
        embeddings keep."""
        src = self.source
        if node.inputs[0] != src.input or src.tensors[src.input].dtype != DType.I32:
            raise ProverError("GATHER: only of the graph input's token ids")
        ids = src.tensors[src.input]
        self.graph.input = self.mapped[src.input] = self.graph.add_tensor(ids.name, DType.I32, ids.dims)
        table = self.operand(node.inputs[1])
        self.activation(Op.GATHER, [self.graph.input, table], node.output, self.qparams_of(table))

    def concat(self, node: Node) -> None:
        """All inputs at the output's parameters (stored ones quantized so, activations requantized)."""
        out = self.output_qparams(node)
        name = self.source.tensors[node.output].name
        parts = [
            self.requantized(self.operand(t, out), out, f"{name}.in{i}")
            for i, t in enumerate(node.inputs)
            if t is not None
        ]
        self.activation(Op.CONCAT, parts, node.output, out, AXIS=node.attr(Attr.AXIS))

    def add(self, node: Node) -> None:
        """TFLite's int8 ADD: both inputs scaled by 2^20 / (2 max scale), summed, rescaled."""
        a, b = (self.operand(t) for t in node.inputs)
        (a_scale, a_zp), (b_scale, b_zp) = self.qparams_of(a), self.qparams_of(b)
        y_scale, y_zp = self.output_qparams(node)
        twice_max = 2 * max(a_scale, b_scale)
        (am, ash), (bm, bsh) = (quantize_multiplier(s / twice_max) for s in (a_scale, b_scale))
        ym, ysh = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * y_scale))
        attrs = dict(A_ZP=a_zp, B_ZP=b_zp, Y_ZP=y_zp, LEFT_SHIFT=ADD_LEFT_SHIFT)
        attrs |= dict(A_MULT=am, A_SHIFT=ash, B_MULT=bm, B_SHIFT=bsh, Y_MULT=ym, Y_SHIFT=ysh)
        self.activation(Op.ADD, [a, b], node.output, (y_scale, y_zp), **attrs)

    def matmul(self, node: Node) -> None:
        a, b = (self.operand(t) for t in node.inputs)
        (a_scale, a_zp), (b_scale, b_zp) = self.qparams_of(a), self.qparams_of(b)
        y_scale, y_zp = self.output_qparams(node)
        m0, shift = quantize_multiplier(a_scale * b_scale * bits_f32(node.attr(Attr.ALPHA)) / y_scale)
        attrs = dict(A_ZP=a_zp, B_ZP=b_zp, Y_ZP=y_zp, Y_MULT=m0, Y_SHIFT=shift)
        self.activation(
            Op.MATMUL, [a, b], node.output, (y_scale, y_zp), TRANSPOSE_B=node.attr(Attr.TRANSPOSE_B), **attrs
        )

    def softmax(self, node: Node) -> None:
        """The exp table of docs/arithmetic.md; the output at TFLite's 1/256, -128."""
        x = self.mapped[node.inputs[0]]
        x_scale, _ = self.qparams_of(x)
        table = np.round(SOFTMAX_ONE * np.exp(-x_scale * np.arange(256, dtype=np.float64)))
        exp = self.graph.add_tensor(f"{self.source.tensors[node.output].name}.exp", DType.I32, (256,), table)
        causal = {"CAUSAL": 1} if node.attr(Attr.CAUSAL) else {}
        self.activation(Op.SOFTMAX, [x, exp], node.output, SOFTMAX_QPARAMS, **causal)

    def norm(self, node: Node) -> None:
        """LAYERNORM / RMSNORM (docs/arithmetic.md): gamma as sign * 127 with its magnitude in the
        per-channel multiplier, beta at gamma's scale * 2^-12, EPS in units of the integer variance."""
        src = self.source
        x = self.mapped[node.inputs[0]]
        x_scale, x_zp = self.qparams_of(x)
        y_scale, y_zp = self.output_qparams(node)
        gamma = src.tensors[node.inputs[1]].data.astype(np.float64).reshape(-1)
        beta_t = node.input(2)
        beta = (
            np.zeros_like(gamma)
            if beta_t is None
            else src.tensors[beta_t].data.astype(np.float64).reshape(-1)
        )
        row = len(gamma)
        g_scale = np.where(gamma != 0, np.abs(gamma) / 127, 1.0)
        step = g_scale * 2.0**-NORM_FRACTION_BITS
        multipliers = [quantize_multiplier(float(s / y_scale)) for s in step]
        eps = bits_f32(node.attr(Attr.EPS_F)) * row * row / (x_scale * x_scale)
        name, g = src.tensors[node.output].name, self.graph
        inputs: list[int | None] = [
            x,
            g.add_tensor(f"{name}.gamma", DType.I8, (row,), np.sign(gamma) * 127, tuple(g_scale)),
            g.add_tensor(
                f"{name}.beta", DType.I32, (row,), np.clip(np.round(beta / step), -(2**31), 2**31 - 1)
            ),
            g.add_tensor(f"{name}.mult", DType.I32, (row,), [m for m, _ in multipliers]),
            g.add_tensor(f"{name}.shift", DType.I32, (row,), [s for _, s in multipliers]),
        ]
        attrs = dict(X_ZP=x_zp, Y_ZP=y_zp, EPS=int(min(round(eps), 2**31 - 1)))
        self.activation(node.op, inputs, node.output, (y_scale, y_zp), **attrs)

    def mul(self, node: Node) -> None:
        """int8 MUL (gates): y = Y_ZP + MBQM((a - A_ZP)(b - B_ZP), a_scale b_scale / y_scale)."""
        a, b = (self.operand(t) for t in node.inputs)
        (a_scale, a_zp), (b_scale, b_zp) = self.qparams_of(a), self.qparams_of(b)
        y_scale, y_zp = self.output_qparams(node)
        m0, shift = quantize_multiplier(a_scale * b_scale / y_scale)
        attrs = dict(A_ZP=a_zp, B_ZP=b_zp, Y_ZP=y_zp, Y_MULT=m0, Y_SHIFT=shift)
        self.activation(Op.MUL, [a, b], node.output, (y_scale, y_zp), **attrs)

    def rope(self, node: Node) -> None:
        """ROPE with cos / sin as integers at 2^-14 (docs/arithmetic.md)."""
        src, x = self.source, self.mapped[node.inputs[0]]
        x_scale, x_zp = self.qparams_of(x)
        y_scale, y_zp = self.output_qparams(node)
        tables = []
        for t in node.inputs[1:]:
            table = src.tensors[t]
            if table.data is None:
                raise ProverError(f"ROPE: the {table.name} table must be stored data")
            tables.append(
                self.graph.add_tensor(table.name, DType.I32, table.dims, np.round(table.data * ROPE_ONE))
            )
        m0, shift = quantize_multiplier(x_scale / ROPE_ONE / y_scale)
        attrs = dict(X_ZP=x_zp, Y_ZP=y_zp, MULT=m0, SHIFT=shift)
        self.activation(Op.ROPE, [x, *tables], node.output, (y_scale, y_zp), **attrs)

    def activation_table(self, node: Node) -> None:
        """GELU / SILU as a LOOKUP table into the calibrated output range."""
        x = self.mapped[node.inputs[0]]
        self.lookup_into(node, x, self.output_qparams(node))

    SEQUENCE_OPS: ClassVar[dict[Op, Callable[[_Quantizer, Node], None]]] = {
        Op.GATHER: ids,
        Op.CONCAT: concat,
        Op.ADD: add,
        Op.MATMUL: matmul,
        Op.LAYERNORM: norm,
        Op.RMSNORM: norm,
        Op.GELU: activation_table,
        Op.SILU: activation_table,
        Op.MUL: mul,
        Op.ROPE: rope,
    }

    def sole_consumer(self, tensor: int) -> int | None:
        consumers = self.source.consumers(tensor)
        if len(consumers) == 1 and tensor != self.source.output:
            return consumers[0]
        return None

    def input_requantize(self, node: Node, where: str) -> None:
        src = self.source
        pixels = src.tensors[node.inputs[0]]
        if node.inputs[0] != src.input or pixels.dtype != DType.U8:
            raise ProverError(f"{where}: only the DEQUANTIZE of the u8 graph input can be quantized")
        a = node.attr
        scale, offset = bits_f32(a(Attr.SCALE)), bits_f32(a(Attr.OFFSET))
        if scale <= 0 or not math.isfinite(scale) or not math.isfinite(offset):
            raise ProverError(f"{where}: input SCALE must be positive and finite")
        # real = (pixel - ZP) * scale + offset = (pixel - x_zp) * scale, with offset / scale rounded
        x_zp = a(Attr.ZP) - round(offset / scale)
        ends = [(v - x_zp) * scale for v in (0, 255)]
        y_scale, y_zp = qparams(min(ends), max(ends))
        m0, shift = quantize_multiplier(scale / y_scale)
        self.graph.input = self.graph.add_tensor(pixels.name, DType.U8, pixels.dims)
        self.mapped[src.input] = self.graph.input
        self.activation(
            Op.REQUANTIZE,
            [self.graph.input],
            node.output,
            (y_scale, y_zp),
            X_ZP=x_zp,
            Y_ZP=y_zp,
            MULT=m0,
            SHIFT=shift,
        )

    def lookup(self, node: Node, x: int) -> None:
        self.lookup_into(node, x, TANH_QPARAMS if node.op == Op.TANH else SIGMOID_QPARAMS)

    def lookup_into(self, node: Node, x: int, scale_zp: tuple[float, int]) -> None:
        """An elementwise function as LOOKUP: table[q + 128] = clamp(round(f(real(q)) / y_scale) + y_zp)."""
        x_scale, x_zp = self.qparams_of(x)
        real = (np.arange(-128, 128, dtype=np.float64) - x_zp) * x_scale
        y = LOOKUP_FUNCTIONS[node.op](real)
        y_scale, y_zp = scale_zp
        table = np.clip(np.round(y / y_scale) + y_zp, -128, 127).astype(np.int8)
        name = self.source.tensors[node.output].name
        table_tensor = self.graph.add_tensor(f"{name}.table", DType.I8, (256,), table)
        self.activation(Op.LOOKUP, [x, table_tensor], node.output, (y_scale, y_zp))


def quantize(graph: Graph, calibration: np.ndarray, method: str = "minmax") -> Graph:
    """The int8 graph of an f32 graph, calibrated on `calibration` (raw inputs, (N, ...)) by
    `method` (one of CALIBRATION_METHODS)."""
    return _Quantizer(graph, calibrate(graph, calibration, method)).run()
