"""Quantized TFLite files (.tflite) to int8 .ggml graphs that compute what LiteRT's reference kernels
compute, bit for bit (docs/tflite.md). The flatbuffer is read with the `tflite` package (the code
generated from TFLite's schema); no recalibration: every scale and zero point is the file's own.

The file must be full-integer quantized: int8 activations (weights int8, per channel or per
tensor) or uint8 activations (weights uint8, per tensor, asymmetric). uint8 values are held as int8
minus 128 (the same differences x - zero_point, so the same integers flow). Operators:

    FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D   LINEAR / CONV2D with TFLite's own multipliers
                                                  (QuantizeMultiplier of the double
                                                  s_in * s_w[c] / s_out) and fused activation range
    MAX_POOL_2D, AVERAGE_POOL_2D                  MAXPOOL2D / AVGPOOL2D (+ CLIP for a fused activation)
    RESHAPE                                       RESHAPE (a Flatten of an NHWC feature map reorders
                                                  the next FULLY_CONNECTED's weight columns)
    LOGISTIC, TANH                                LOOKUP: TFLite's own 256-entry table
    RELU, RELU6, RELU_N1_TO_1, QUANTIZE (int)     REQUANTIZE
    QUANTIZE from float at the input              REQUANTIZE from the raw pixels (below)
    SOFTMAX, QUANTIZE, DEQUANTIZE at the output   dropped: the output is the int8 logits tensor
                                                  (its scale and zero point stored on it)

The graph input is raw uint8 pixels (one-channel images or flat vectors, as every .ggml model
takes): the model's input is pixel * pixel_scale + pixel_offset (default 1/255 and -1, the
project's convention for its MNIST copy), quantized into the model's first int8 tensor by one
REQUANTIZE. Anything else (another operator, float, float16 or hybrid-quantized files, dilation,
per-channel weight zero points, more than one subgraph, input or output, a damaged file) is one
ProverError naming the operator and the tensor.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from prover.errors import ProverError
from prover.model.graph import DType, Graph, Op, check_graph

# The project's MNIST copy is dark ink on white (255); its models take pixel / 255 - 1.
PIXEL_SCALE, PIXEL_OFFSET = 1 / 255, -1.0
# Operators after the logits that the graph leaves out (softmax is monotonic: the class is the same).
TAIL_OPS = {"SOFTMAX", "QUANTIZE", "DEQUANTIZE"}
FLOAT_TYPES = {"FLOAT32", "FLOAT16"}
# LiteRT's MultiplyByQuantizedMultiplier rounds once (its builds define TFLITE_SINGLE_ROUNDING), but its
# reference CONV_2D / DEPTHWISE_CONV_2D kernels round twice (gemmlowp), as measured against the
# interpreter (docs/tflite.md).
SINGLE_ROUNDING_OPS = {Op.LINEAR, Op.REQUANTIZE}


def tflite_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (M0, shift) with real = M0 * 2^(shift - 31), M0 rounded half away
    from zero (TfLiteRound), 2^31 renormalized, a shift below -31 giving (0, 0) and one above 30
    saturating to (2^31 - 1, 30)."""
    if real == 0:
        return 0, 0
    fraction, exponent = math.frexp(real)
    m0 = math.floor(fraction * (1 << 31) + 0.5)
    if m0 == 1 << 31:
        m0, exponent = m0 // 2, exponent + 1
    if exponent < -31:
        return 0, 0
    if exponent > 30:
        return (1 << 31) - 1, 30
    return m0, exponent


def round_half_away(value: np.floating) -> int:
    """TfLiteRound / roundf of a float32 value."""
    return int(math.copysign(math.floor(abs(float(value)) + 0.5), float(value)))


def quantize_f32(value: float, scale: float, zero_point: int) -> int:
    """TFLite's quantization of a constant at Prepare time: zp + roundf(value / scale) in float32."""
    return zero_point + round_half_away(np.float32(value) / np.float32(scale))


@dataclass
class TensorInfo:
    """One TFLite tensor: its type name, shape without the batch, quantization and constant data."""

    index: int
    name: str
    type: str
    shape: tuple[int, ...]
    scales: np.ndarray  # float32
    zero_points: np.ndarray  # int64, in the file's dtype domain
    axis: int
    data: np.ndarray | None

    @property
    def offset(self) -> int:
        """The int8 domain: uint8 values (and zero points) are held minus 128."""
        return -128 if self.type == "UINT8" else 0

    @property
    def scale(self) -> float:
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        """The per-tensor zero point in the int8 domain."""
        return int(self.zero_points[0]) + self.offset


@dataclass
class Value:
    """A TFLite activation as it lives in the graph: our tensor, and for a flattened feature map the
    TFLite (NHWC) flat index of each of our (CHW) elements (None when the orders agree)."""

    tensor: int
    info: TensorInfo
    order: np.ndarray | None = None

    @property
    def image(self) -> bool:
        return len(self.info.shape) == 3


def _read_model(data: bytes):  # -> tflite.Model
    import tflite

    if len(data) < 8 or not tflite.Model.ModelBufferHasIdentifier(data, 0):
        raise ProverError("not a TFLite flatbuffer (no TFL3 identifier)")
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ProverError(f"{model.SubgraphsLength()} subgraphs (one is supported)")
    return model


class TfliteImporter:
    def __init__(self, data: bytes, pixel_scale: float, pixel_offset: float) -> None:
        import tflite

        self.tflite = tflite
        self.data = data
        self.model = _read_model(data)
        self.subgraph = self.model.Subgraphs(0)
        self.pixel_scale, self.pixel_offset = pixel_scale, pixel_offset
        self.type_names = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
        self.graph = Graph(metadata={"mode": "int8", "source": "tflite", "input_scale": float(pixel_scale)})
        self.graph.metadata["input_offset"] = float(pixel_offset)
        self.values: dict[int, Value] = {}
        self.infos: dict[int, TensorInfo] = {}
        self.where = ""

    # --- reading -------------------------------------------------------------------------------

    def info(self, index: int) -> TensorInfo:
        if index not in self.infos:
            self.infos[index] = self._read_tensor(index)
        return self.infos[index]

    def _read_tensor(self, index: int) -> TensorInfo:
        tensor = self.subgraph.Tensors(index)
        name = tensor.Name().decode("utf-8", "replace")
        type_name = self.type_names.get(tensor.Type(), str(tensor.Type()))
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        quant = tensor.Quantization()
        scales, zero_points, axis = np.zeros(0, np.float32), np.zeros(0, np.int64), 0
        if quant is not None and quant.ScaleLength():
            scales = quant.ScaleAsNumpy().astype(np.float32)
            zero_points = quant.ZeroPointAsNumpy().astype(np.int64)
            axis = quant.QuantizedDimension()
        data = self._buffer(tensor.Buffer(), type_name, shape, name)
        if data is None and len(shape) in (2, 4) and shape[0] == 1:
            shape = shape[1:]  # an activation's batch of one
        return TensorInfo(index, name, type_name, shape, scales, zero_points, axis, data)

    def _buffer(
        self, buffer_index: int, type_name: str, shape: tuple[int, ...], name: str
    ) -> np.ndarray | None:
        buffer = self.model.Buffers(buffer_index)
        if buffer.Offset() > 1:  # stored after the flatbuffer (files over 2 GB)
            raw = self.data[buffer.Offset() : buffer.Offset() + buffer.Size()]
        elif buffer.DataLength():
            raw = buffer.DataAsNumpy().tobytes()
        else:
            return None
        dtypes = {"INT8": "i1", "UINT8": "u1", "INT32": "<i4", "FLOAT32": "<f4", "FLOAT16": "<f2"}
        if type_name not in dtypes:
            raise ProverError(f"tensor {name!r}: constant of type {type_name} is not supported")
        array = np.frombuffer(raw, dtypes[type_name])
        if array.size != math.prod(shape):
            raise ProverError(f"tensor {name!r}: {array.size} stored values for shape {shape}")
        return array.reshape(shape)

    def op_name(self, op) -> str:  # op: tflite.Operator
        code = self.model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        return self.tflite.opcode2name(builtin) if builtin != 32 else "CUSTOM"

    def options(self, op, kind: type):
        table = op.BuiltinOptions()
        options = kind()
        options.Init(table.Bytes, table.Pos)
        return options

    # --- graph building ------------------------------------------------------------------------

    def fail(self, problem: str) -> NoReturn:
        raise ProverError(f"{self.where}: {problem}")

    def activation(self, index: int) -> Value:
        if index not in self.values:
            info = self.info(index)
            what = "a constant" if info.data is not None else "not computed by a supported operator"
            self.fail(f"input tensor {info.name!r} is {what}")
        return self.values[index]

    def constant(self, index: int, what: str) -> TensorInfo:
        info = self.info(index)
        if info.data is None:
            self.fail(f"{what} {info.name!r} is not a constant")
        return info

    def quantized(self, info: TensorInfo) -> None:
        """An int8 / uint8 activation with one scale and zero point."""
        if info.type in FLOAT_TYPES:
            kind = "float16" if info.type == "FLOAT16" else "float"
            self.fail(f"tensor {info.name!r} is {kind}: only full-integer quantized files are supported")
        if info.type not in ("INT8", "UINT8") or len(info.scales) != 1:
            self.fail(
                f"tensor {info.name!r}: {info.type} with {len(info.scales)} scales (int8 or uint8 per tensor)"
            )

    def dims(self, info: TensorInfo) -> tuple[int, ...]:
        """Our dims of an activation: (W, H, C) for an NHWC feature map, (N,) for a vector."""
        if len(info.shape) == 3:
            height, width, channels = info.shape
            return (width, height, channels)
        if len(info.shape) == 1:
            return info.shape
        self.fail(f"tensor {info.name!r} has shape {info.shape} (batch 1 with (N) or (H, W, C) expected)")

    def node(self, op: Op, inputs: list[int | None], info: TensorInfo, **attrs: int) -> int:
        """A node computing an int8 tensor quantized as `info`; returns the tensor's index."""
        self.quantized(info)
        if op in SINGLE_ROUNDING_OPS:
            attrs["ROUNDING"] = 1
        scales, zero_point = (info.scale,), info.zero_point
        return self.graph.add_node(
            op, inputs, info.name[:255], DType.I8, self.dims(info), scales, zero_point, **attrs
        )

    def produce(self, op: Op, inputs: list[int | None], info: TensorInfo, order=None, **attrs: int) -> Value:
        """The node computing the TFLite tensor `info`."""
        value = Value(self.node(op, inputs, info, **attrs), info, order)
        self.values[info.index] = value
        return value

    def act_range(self, fused: int, info: TensorInfo) -> tuple[int, int]:
        """CalculateActivationRangeQuantized, in the int8 domain."""
        kinds = self.tflite.ActivationFunctionType
        low, high = -128 - info.offset, 127 - info.offset
        zp, scale = int(info.zero_points[0]), info.scale
        bounds = {kinds.NONE: (None, None), kinds.RELU: (0.0, None), kinds.RELU6: (0.0, 6.0)}
        bounds[kinds.RELU_N1_TO_1] = (-1.0, 1.0)
        if fused not in bounds:
            self.fail(f"fused activation {fused} is not supported")
        lo, hi = bounds[fused]
        if lo is not None:
            low = max(low, quantize_f32(lo, scale, zp))
        if hi is not None:
            high = min(high, quantize_f32(hi, scale, zp))
        return low + info.offset, high + info.offset

    def add_constant(self, name: str, dtype: DType, dims: tuple[int, ...], data: np.ndarray) -> int:
        return self.graph.add_tensor(name[:255], dtype, dims, data)

    def flat(self, value: Value) -> Value:
        """A feature map as a vector through RESHAPE, with the NHWC order of its elements."""
        if not value.image:
            return value
        height, width, channels = value.info.shape
        order = None  # no reordering needed
        if channels > 1 and height * width > 1:
            order = np.arange(height * width * channels).reshape(height, width, channels)
            order = order.transpose(2, 0, 1).reshape(-1)
        old = value.info
        info = TensorInfo(-1, old.name + "/flat", old.type, (old.shape[0] * old.shape[1] * old.shape[2],),
                          old.scales, old.zero_points, 0, None)  # fmt: skip
        return Value(self.node(Op.RESHAPE, [value.tensor], info), info, order)

    def build(self) -> Graph:
        sub = self.subgraph
        if sub.InputsLength() != 1 or sub.OutputsLength() != 1:
            raise ProverError(f"{sub.InputsLength()} inputs and {sub.OutputsLength()} outputs (one each)")
        ops = [sub.Operators(i) for i in range(sub.OperatorsLength())]
        producers = {int(op.Outputs(j)): i for i, op in enumerate(ops) for j in range(op.OutputsLength())}
        logits, tail = int(sub.Outputs(0)), set()
        while logits in producers and self.op_name(ops[producers[logits]]) in TAIL_OPS:
            tail.add(producers[logits])
            logits = int(ops[producers[logits]].Inputs(0))
        self.check_types(ops)
        skipped = tail | self.shape_ops(ops) | {self.input(int(sub.Inputs(0)), ops)}
        for i, op in enumerate(ops):
            if i in skipped:
                continue
            name = self.op_name(op)
            self.where = self.locate(i, op)
            handler = getattr(self, "op_" + name.lower(), None)
            if handler is None:
                self.fail("operator not supported")
            handler(op)
        self.where = "the model output"
        if logits not in self.values:
            raise ProverError(f"the logits tensor {self.info(logits).name!r} is not computed")
        value = self.values[logits]
        if value.order is not None:
            raise ProverError(f"the output tensor {value.info.name!r} is a flattened feature map")
        self.graph.output = value.tensor
        check_graph(self.graph)
        return self.graph

    def locate(self, index: int, op) -> str:
        output = self.info(int(op.Outputs(0))).name if op.OutputsLength() else "none"
        return f"operator {index} {self.op_name(op)} (output tensor {output!r})"

    def check_types(self, ops) -> None:
        """A float16 or hybrid-quantized file, or float arithmetic, is refused at its first operator."""
        for i, op in enumerate(ops):
            name = self.op_name(op)
            self.where = self.locate(i, op)
            tensors = [self.info(int(t)) for t in op.InputsAsNumpy().tolist() if t >= 0]
            for tensor in tensors:
                if tensor.type == "FLOAT16":
                    self.fail(f"tensor {tensor.name!r} is float16: float16-quantized files are not supported")
            if name in ("QUANTIZE", "DEQUANTIZE"):
                continue  # at the edges (checked where they are mapped or dropped)
            floats = [t for t in tensors if t.type == "FLOAT32"]
            if floats and any(t.type == "INT8" for t in tensors):
                self.fail(
                    f"tensor {floats[0].name!r} is float32 with int8 weights: hybrid-quantized files are "
                    "not supported, only full-integer quantized ones"
                )
            if floats:
                self.fail(
                    f"tensor {floats[0].name!r} is float32: float models are not supported, "
                    "only full-integer quantized ones"
                )

    def shape_ops(self, ops) -> set[int]:
        """Operators that only compute a RESHAPE's new shape (Keras's Flatten: SHAPE, STRIDED_SLICE,
        PACK): RESHAPE takes its output shape from the file, so they are left out."""
        shape_inputs = {
            int(op.Inputs(1)) for op in ops if self.op_name(op) == "RESHAPE" and op.InputsLength() > 1
        }
        found: set[int] = set()
        for i in reversed(range(len(ops))):
            outputs = ops[i].OutputsAsNumpy().tolist()
            if outputs and all(self.info(t).type == "INT32" and t in shape_inputs for t in outputs):
                found.add(i)
                shape_inputs.update(int(t) for t in ops[i].InputsAsNumpy().tolist() if t >= 0)
        return found

    def input(self, index: int, ops) -> int | None:
        """The raw pixel input and its REQUANTIZE into the first int8 tensor; returns the index of a
        float input's QUANTIZE operator (absorbed), else None."""
        info = self.info(index)
        skipped = None
        if info.type == "FLOAT32":
            users = [i for i, op in enumerate(ops) if index in op.InputsAsNumpy().tolist()]
            if len(users) != 1 or self.op_name(ops[users[0]]) != "QUANTIZE":
                raise ProverError(f"the float input {info.name!r} does not go through one QUANTIZE")
            skipped = users[0]
            self.where = f"operator {skipped} QUANTIZE (input tensor {info.name!r})"
            quantized_index = int(ops[skipped].Outputs(0))
        else:
            self.where = f"the input tensor {info.name!r}"
            quantized_index = index
        target = self.info(quantized_index)
        self.quantized(target)
        if len(target.shape) == 3 and target.shape[2] != 1:
            self.fail(f"input shape {target.shape}: only one-channel images and vectors take raw pixels")
        pixels = self.graph.add_tensor("pixels", DType.U8, self.dims(target))
        self.graph.input = pixels
        # q = zp + round((pixel * a + b) / s) = zp + round((pixel - X_ZP) * a / s) with X_ZP = -b / a
        x_zp = -self.pixel_offset / self.pixel_scale
        if x_zp != round(x_zp) or not 0 <= x_zp <= 255:
            self.fail(f"pixel offset {self.pixel_offset} is not a whole number of pixel steps in 0..255")
        m0, shift = tflite_multiplier(self.pixel_scale / target.scale)
        self.produce(
            Op.REQUANTIZE, [pixels], target, X_ZP=round(x_zp), Y_ZP=target.zero_point, MULT=m0, SHIFT=shift
        )
        return skipped

    # --- operators -----------------------------------------------------------------------------

    def weighted(self, op, channel_axis: int):
        """(x, weights in the int8 domain, [bias tensor or None, mult tensor, shift tensor], output
        info, the X_ZP / Y_ZP / W_ZP attributes) of a FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D,
        whose per-channel weight scales run along the output channels, dimension `channel_axis`."""
        x = self.activation(int(op.Inputs(0)))
        w = self.constant(int(op.Inputs(1)), "weights")
        y = self.info(int(op.Outputs(0)))
        self.quantized(y)
        if w.type in FLOAT_TYPES or x.info.type in FLOAT_TYPES:
            self.fail(
                f"weights {w.name!r} are {w.type} with {x.info.type} input: hybrid or float files are "
                "not supported (full-integer quantization only)"
            )
        if w.type != x.info.type:
            self.fail(f"weights {w.name!r} are {w.type} for {x.info.type} activations")
        if np.any(w.zero_points != w.zero_points[0]):
            self.fail(f"weights {w.name!r} have per-channel zero points (one zero point is supported)")
        bias = None
        if op.InputsLength() > 2 and int(op.Inputs(2)) >= 0:
            b = self.constant(int(op.Inputs(2)), "bias")
            if b.type != "INT32":
                self.fail(f"bias {b.name!r} is {b.type} (int32 expected)")
            bias = b
        channels = y.shape[-1]
        if len(w.scales) not in (1, channels):
            self.fail(f"weights {w.name!r} have {len(w.scales)} scales for {channels} output channels")
        if len(w.scales) > 1 and w.axis != channel_axis:
            self.fail(f"weights {w.name!r} are quantized along dimension {w.axis}, not {channel_axis}")
        scales = np.broadcast_to(w.scales, (channels,))
        pairs = [tflite_multiplier(float(x.info.scale) * float(s) / float(y.scale)) for s in scales]
        mult = np.array([p[0] for p in pairs], np.int64)
        shift = np.array([p[1] for p in pairs], np.int64)
        if np.all(mult == mult[0]) and np.all(shift == shift[0]):
            mult, shift = mult[:1], shift[:1]
        base = y.name
        mult_t = self.add_constant(base + "/mult", DType.I32, (len(mult),), mult)
        shift_t = self.add_constant(base + "/shift", DType.I32, (len(shift),), shift)
        bias_t = None
        if bias is not None:
            bias_t = self.add_constant(bias.name, DType.I32, (channels,), bias.data.reshape(-1))
        weights = w.data.astype(np.int64) + w.offset
        zero_points = {"X_ZP": x.info.zero_point, "Y_ZP": y.zero_point}
        if w.zero_point:  # uint8 weights
            zero_points["W_ZP"] = w.zero_point
        return x, weights, [bias_t, mult_t, shift_t], y, zero_points

    def op_fully_connected(self, op) -> None:
        options = self.options(op, self.tflite.FullyConnectedOptions)
        if options.WeightsFormat() != 0:
            self.fail("shuffled weights are not supported")
        x, w, operands, y, zero_points = self.weighted(op, channel_axis=0)
        x = self.flat(x)
        if w.shape[1] != x.info.shape[0]:
            self.fail(f"weights {w.shape} do not fit {x.info.shape[0]} inputs")
        if x.order is not None:
            w = w[:, x.order]
        w_t = self.add_constant(y.name + "/weights", DType.I8, (w.shape[1], w.shape[0]), w)
        if y.shape != (w.shape[0],):
            y = TensorInfo(y.index, y.name, y.type, (w.shape[0],), y.scales, y.zero_points, 0, None)
        low, high = self.act_range(options.FusedActivationFunction(), y)
        self.produce(
            Op.LINEAR,
            [x.tensor, w_t, *operands],
            y,
            **zero_points,
            ACT_MIN=low,
            ACT_MAX=high,
        )

    def _padding(self, kind: int, size: int, kernel: int, stride: int) -> tuple[int, int]:
        if kind == self.tflite.Padding.VALID:
            return 0, 0
        out = (size + stride - 1) // stride
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def _geometry(self, options, x: TensorInfo, kernel: tuple[int, int]) -> dict[str, int]:
        if hasattr(options, "DilationHFactor") and (
            options.DilationHFactor() != 1 or options.DilationWFactor() != 1
        ):
            self.fail("dilation is not supported")
        height, width = x.shape[0], x.shape[1]
        top, bottom = self._padding(options.Padding(), height, kernel[0], options.StrideH())
        left, right = self._padding(options.Padding(), width, kernel[1], options.StrideW())
        return {
            "STRIDE_H": options.StrideH(),
            "STRIDE_W": options.StrideW(),
            "PAD_TOP": top,
            "PAD_LEFT": left,
            "PAD_BOTTOM": bottom,
            "PAD_RIGHT": right,
        }

    def _conv(self, op, depthwise: bool) -> None:
        kind = self.tflite.DepthwiseConv2DOptions if depthwise else self.tflite.Conv2DOptions
        options = self.options(op, kind)
        x, w, operands, y, zero_points = self.weighted(op, channel_axis=3 if depthwise else 0)
        if not x.image or len(y.shape) != 3:
            self.fail("input and output must be (H, W, C) feature maps")
        cin = x.info.shape[2]
        if depthwise:  # (1, KH, KW, CIN * M) -> (COUT, 1, KH, KW), one group per input channel
            w, groups = w[0].transpose(2, 0, 1)[:, None], cin
        else:  # (COUT, KH, KW, CIN) -> (COUT, CIN, KH, KW)
            w, groups = w.transpose(0, 3, 1, 2), 1
        cout, cin_group, kh, kw = w.shape
        if cout != y.shape[2] or cin_group * groups != cin:
            self.fail(f"weights {w.shape} do not fit input {x.info.shape} and output {y.shape}")
        geometry = self._geometry(options, x.info, (kh, kw))
        w_t = self.add_constant(y.name + "/weights", DType.I8, (kw, kh, cin_group, cout), w)
        low, high = self.act_range(options.FusedActivationFunction(), y)
        self.produce(
            Op.CONV2D,
            [x.tensor, w_t, *operands],
            y,
            **zero_points,
            GROUPS=groups,
            ACT_MIN=low,
            ACT_MAX=high,
            **geometry,
        )
        self._check_shape(y)

    def op_conv_2d(self, op) -> None:
        self._conv(op, depthwise=False)

    def op_depthwise_conv_2d(self, op) -> None:
        self._conv(op, depthwise=True)

    def _check_shape(self, info: TensorInfo) -> None:
        tensor = self.graph.tensors[self.values[info.index].tensor]
        if tensor.dims != self.dims(info):
            self.fail(f"computed dims {tensor.dims} differ from the file's {info.shape}")

    def _same_quantization(self, x: Value, y: TensorInfo) -> None:
        self.quantized(y)
        if x.info.scale != y.scale or x.info.zero_point != y.zero_point or x.info.type != y.type:
            self.fail(f"output {y.name!r} is quantized unlike its input {x.info.name!r}")

    def _pool(self, op, kind: Op) -> None:
        options = self.options(op, self.tflite.Pool2DOptions)
        x = self.activation(int(op.Inputs(0)))
        y = self.info(int(op.Outputs(0)))
        if not x.image:
            self.fail("the input must be an (H, W, C) feature map")
        self._same_quantization(x, y)
        kernel = (options.FilterHeight(), options.FilterWidth())
        geometry = self._geometry(options, x.info, kernel)
        low, high = self.act_range(options.FusedActivationFunction(), y)
        if (low, high) == (-128, 127):
            self.produce(kind, [x.tensor], y, KERNEL_H=kernel[0], KERNEL_W=kernel[1], **geometry)
        else:
            pooled = TensorInfo(-2, y.name + "/pool", y.type, y.shape, y.scales, y.zero_points, 0, None)
            inner = self.produce(kind, [x.tensor], pooled, KERNEL_H=kernel[0], KERNEL_W=kernel[1], **geometry)
            self.produce(Op.CLIP, [inner.tensor], y, ACT_MIN=low, ACT_MAX=high)
        self._check_shape(y)

    def op_max_pool_2d(self, op) -> None:
        self._pool(op, Op.MAXPOOL2D)

    def op_average_pool_2d(self, op) -> None:
        self._pool(op, Op.AVGPOOL2D)

    def op_reshape(self, op) -> None:
        x = self.activation(int(op.Inputs(0)))
        y = self.info(int(op.Outputs(0)))
        self._same_quantization(x, y)
        if len(y.shape) == 1:
            flat = self.flat(x)
            self.produce(Op.RESHAPE, [flat.tensor], y, order=flat.order)
        elif (
            len(y.shape) == 3
            and x.order is None
            and (y.shape[2] == 1 or (not x.image and y.shape[:2] == (1, 1)))
        ):
            self.produce(Op.RESHAPE, [x.tensor], y)
        else:
            self.fail(f"reshape {x.info.shape} -> {y.shape} is not supported (flatten, or to one channel)")

    def _requantize(self, op, fused: int | None) -> None:
        """RELU / RELU6 / RELU_N1_TO_1 (multiplier s_in / s_out in float, as ReluPrepare) and an integer
        QUANTIZE (multiplier in double): y = clamp(y_zp + MBQM(x - x_zp), range)."""
        x = self.activation(int(op.Inputs(0)))
        y = self.info(int(op.Outputs(0)))
        self.quantized(y)
        if fused is None:
            real = float(x.info.scale) / float(y.scale)
            low, high = -128, 127
        else:
            real = float(np.float32(x.info.scale) / np.float32(y.scale))
            low, high = self.act_range(fused, y)
        m0, shift = tflite_multiplier(real)
        self.produce(
            Op.REQUANTIZE,
            [x.tensor],
            y,
            order=x.order,
            X_ZP=x.info.zero_point,
            Y_ZP=y.zero_point,
            MULT=m0,
            SHIFT=shift,
            ACT_MIN=low,
            ACT_MAX=high,
        )

    def op_relu(self, op) -> None:
        self._requantize(op, self.tflite.ActivationFunctionType.RELU)

    def op_relu6(self, op) -> None:
        self._requantize(op, self.tflite.ActivationFunctionType.RELU6)

    def op_relu_n1_to_1(self, op) -> None:
        self._requantize(op, self.tflite.ActivationFunctionType.RELU_N1_TO_1)

    def op_quantize(self, op) -> None:
        x = self.info(int(op.Inputs(0)))
        if x.type in FLOAT_TYPES:
            self.fail(
                f"QUANTIZE of the float tensor {x.name!r} inside the model (float parts are not supported)"
            )
        self._requantize(op, None)

    def _lookup(self, op, function) -> None:
        """TFLite's LUTPopulate for int8 / uint8: float32 dequantize, transform, roundf(v / s_out) + zp."""
        x = self.activation(int(op.Inputs(0)))
        y = self.info(int(op.Outputs(0)))
        self.quantized(y)
        lo, hi = -128 - x.info.offset, 127 - x.info.offset  # the file's domain
        zp_in, zp_out = int(x.info.zero_points[0]), int(y.zero_points[0])
        inverse = np.float32(1) / np.float32(y.scale)
        table = np.empty(256, np.int64)
        for q in range(lo, hi + 1):
            real = np.float32(x.info.scale) * np.float32(q - zp_in)
            rescaled = round_half_away(np.float32(function(real)) * inverse)
            table[q + x.info.offset + 128] = min(max(rescaled + zp_out, lo), hi) + y.offset
        table_t = self.add_constant(y.name + "/table", DType.I8, (256,), table)
        self.produce(Op.LOOKUP, [x.tensor, table_t], y, order=x.order)

    def op_logistic(self, op) -> None:
        def sigmoid(v: np.float32) -> np.float32:
            e = np.float32(math.exp(-float(v))) if -float(v) < 88.8 else np.float32(np.inf)
            return np.float32(1) / (np.float32(1) + e)

        self._lookup(op, sigmoid)

    def op_tanh(self, op) -> None:
        self._lookup(op, lambda v: np.float32(math.tanh(float(v))))


def import_tflite(path: Path, pixel_scale: float = PIXEL_SCALE, pixel_offset: float = PIXEL_OFFSET) -> Graph:
    """The int8 graph of the TFLite file at `path` (see the module docstring)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProverError(f"cannot read: {exc.strerror}") from None
    try:
        return TfliteImporter(data, pixel_scale, pixel_offset).build()
    # what flatbuffers and numpy raise on a damaged file (offsets past the end, wrong types)
    except (AttributeError, IndexError, TypeError, UnicodeDecodeError, ValueError, struct.error) as exc:
        raise ProverError(f"damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
