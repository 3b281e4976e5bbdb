"""ONNX (opset >= 13) to the network description.

The graph must be a chain: the raw pixel input, an optional elementwise normalization, then layers
one after the other. Nodes whose inputs are all constants are evaluated with numpy first (constant
folding: quantized weights through QuantizeLinear -> DequantizeLinear, reshaped or masked
initializers). The remaining nodes are matched to layers:

    Gemm, MatMul (+ Add of a bias)           Linear
    Conv (+ Add of a bias)                   Conv2D; (out, in) kernel slices that are all zero
                                             become the connectivity mask (LeNet-5's C3)
    AveragePool, Mul and Add per channel     Subsample (LeNet's trainable subsampling)
    MaxPool, AveragePool                     MaxPool2D, AvgPool2D
    Relu, Clip(min 0, no max)                ReLU
    Tanh, Sigmoid, Softmax                   Tanh, Sigmoid, Softmax
    Flatten, Reshape to (batch, -1)          Flatten
    Mul, Div, Add by a scalar before the     the input normalization (pixel * scale + offset)
    first layer; DequantizeLinear of a u8
    input; Round or Clip(0, 255) of the raw
    pixels (no-ops on integer pixels)
    QuantizeLinear -> DequantizeLinear       removed (fake quantization: `--int8` calibrates
    of an activation                         its own scales)

Anything else raises ProverError naming the node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import ProverError
from prover.model.importers.imported import ImportedLayer, ImportedModel, LayerChain
from prover.model.importers.onnx_fold import FOLDABLE, fold

MIN_OPSET = 13
# Ops that may act on the activation chain (the others of FOLDABLE only fold constants).
LAYER_OPS = {
    "Gemm", "MatMul", "Add", "Mul", "Div", "Relu", "Tanh", "Sigmoid", "Conv", "MaxPool", "AveragePool",
    "Flatten", "Reshape", "Clip", "Round", "QuantizeLinear", "DequantizeLinear", "Softmax",
}  # fmt: skip


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


def _node_label(node: Any) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def _load(source: str | Path | bytes | Any) -> Any:
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source
    try:
        if isinstance(source, bytes):
            return onnx.load_from_string(source)
        return onnx.load(str(source))
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError, Exception) as exc:
        raise ProverError(f"{source}: not a readable ONNX model ({exc})") from None


def _check_opset(model: Any) -> None:
    versions = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    version = versions.get("ai.onnx")
    if version is None or version < MIN_OPSET:
        raise ProverError(f"ONNX opset {version} is not supported (need >= {MIN_OPSET})")


def _single_input(model: Any, constants: dict[str, np.ndarray]) -> Any:
    inputs = [value for value in model.graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise ProverError(f"ONNX graph has {len(inputs)} non-constant inputs, need exactly 1 (the pixels)")
    return inputs[0]


def _input_shape(value: Any) -> tuple[int, ...]:
    """The input's shape without its leading batch dimension."""
    dims = value.type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else 0 for d in dims[1:])
    if not shape or 0 in shape:
        raise ProverError(f"ONNX input {value.name!r} needs fixed dims after the batch dimension")
    return shape


def _per_channel(value: np.ndarray, channels: int) -> np.ndarray | None:
    """`value` as a (channels,) vector if it broadcasts per channel over an (N, C, ...) or (N, C)
    activation, else None."""
    squeezed = np.squeeze(value)
    if value.ndim >= 1 and squeezed.size == channels and (value.ndim < 2 or value.shape[1] == channels):
        return squeezed.reshape(channels).astype(np.float32)
    return None


def _scalar(value: np.ndarray) -> float | None:
    return float(value.reshape(())) if value.size == 1 else None


def _pads(attributes: dict[str, Any], label: str) -> tuple[int, int, int, int]:
    if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ProverError(f"{label}: auto_pad is not supported, give explicit pads")
    top, left, bottom, right = attributes.get("pads", [0, 0, 0, 0])
    return top, left, bottom, right


def _connectivity_mask(weight: np.ndarray) -> np.ndarray | None:
    """(out, in) mask of the kernel slices that are not all zero, when some are (LeNet-5's C3)."""
    connected = np.any(weight != 0, axis=(2, 3))
    return None if connected.all() else connected.astype(np.uint8)


def import_onnx(source: str | Path | bytes | Any) -> ImportedModel:
    """An ONNX model (path, bytes or onnx.ModelProto) as the chain of layers it computes."""
    model = _load(source)
    _check_opset(model)
    from onnx import numpy_helper

    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    graph_input = _single_input(model, constants)
    matcher = _Matcher(graph_input.name)
    for node in model.graph.node:
        attributes = _attributes(node)
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(attributes["value"])
            continue
        if node.op_type not in LAYER_OPS and node.op_type not in FOLDABLE:
            raise ProverError(f"unsupported ONNX op {_node_label(node)}")
        if all(name in constants for name in node.input if name):
            values = [constants[name] if name else None for name in node.input]
            constants[node.output[0]] = fold(node.op_type, values, attributes)
        elif node.op_type in LAYER_OPS:
            matcher.match(node, attributes, constants)
        else:
            raise ProverError(f"{_node_label(node)}: {node.op_type} only folds constants here")
    if [output.name for output in model.graph.output] != [matcher.current]:
        raise ProverError("the ONNX graph output is not the end of its chain of layers")
    return matcher.chain.finish(_input_shape(graph_input))


class _Matcher:
    """Turns the non-constant nodes, one after the other, into layers."""

    def __init__(self, input_name: str) -> None:
        self.current = input_name
        self.chain = LayerChain()
        self.raw_pixels = True  # only no-ops (Round, Clip to 0..255) have touched the input so far
        self.fake_quantized: tuple[np.ndarray, np.ndarray] | None = None

    def match(self, node: Any, attributes: dict[str, Any], constants: dict[str, np.ndarray]) -> None:
        label = _node_label(node)
        activations = [name for name in node.input if name and name not in constants]
        if activations != [self.current]:
            raise ProverError(
                f"{label}: only a chain of layers is supported (it must take the previous output)"
            )
        others = [constants.get(name) if name else None for name in node.input]
        constant_inputs = [value for value in others if value is not None]
        operand = constant_inputs[0] if constant_inputs else None
        if self.fake_quantized is not None and node.op_type != "DequantizeLinear":
            raise ProverError(
                f"{label}: a QuantizeLinear of an activation must be followed by DequantizeLinear"
            )
        getattr(self, f"_{node.op_type.lower()}")(label, attributes, others, operand)
        self.current = node.output[0]
        if node.op_type not in ("Round", "Clip"):
            self.raw_pixels = False

    # Elementwise ops: the input normalization, or a bias / subsampling coefficient of the last layer.

    def _mul(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        last = self.chain.last
        if last is not None and last.kind == "avgpool2d" and operand.size > 1:
            if last.options["padding"] != (0, 0, 0, 0):
                raise ProverError(f"{label}: a padded AveragePool cannot become a subsampling layer")
            coef = np.squeeze(operand).reshape(-1).astype(np.float32)
            self.chain.layers[-1] = ImportedLayer(
                "subsample",
                {"coef": coef, "bias": np.zeros_like(coef)},
                {"kernel": last.options["kernel"], "stride": last.options["stride"]},
            )
            return
        factor = _scalar(operand)
        if factor is None:
            raise ProverError(
                f"{label}: Mul by a tensor is supported only after an AveragePool (subsampling)"
            )
        self.chain.normalize(scale=factor, where=label)

    def _div(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        divisor = _scalar(operand)
        if divisor is None or inputs[0] is not None:
            raise ProverError(f"{label}: only an activation divided by a scalar is supported")
        self.chain.normalize(scale=1 / divisor, where=label)

    def _add(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        last = self.chain.last
        if last is not None and "bias" in last.arrays:
            channels = last.arrays["bias"].size
            bias = _per_channel(operand, channels)
            if bias is None and operand.size == 1:
                bias = np.full(channels, float(operand.reshape(())), np.float32)
            if bias is None:
                raise ProverError(f"{label}: an Add after {last.kind} must add one value per channel")
            last.arrays["bias"] = (last.arrays["bias"] + bias).astype(np.float32)
            return
        offset = _scalar(operand)
        if offset is None:
            raise ProverError(f"{label}: Add of a tensor is supported only as a bias")
        self.chain.normalize(offset=offset, where=label)

    # Layers.

    def _gemm(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        if attributes.get("transA", 0) or inputs[1] is None:
            raise ProverError(f"{label}: only activation x constant weight (transA = 0) is supported")
        weight = inputs[1] if attributes.get("transB", 0) else inputs[1].T
        weight = attributes.get("alpha", 1.0) * weight
        bias = np.zeros(weight.shape[0])
        if len(inputs) > 2 and inputs[2] is not None:
            bias = attributes.get("beta", 1.0) * np.broadcast_to(inputs[2], (weight.shape[0],))
        self.chain.add("linear", {"weight": weight, "bias": bias})

    def _matmul(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        if inputs[1] is None or inputs[1].ndim != 2:
            raise ProverError(f"{label}: only activation x constant 2-D weight is supported")
        self.chain.add("linear", {"weight": inputs[1].T, "bias": np.zeros(inputs[1].shape[1])})

    def _conv(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        weight = inputs[1]
        if weight is None or weight.ndim != 4:
            raise ProverError(f"{label}: only 2-D convolutions with constant weights are supported")
        if any(d != 1 for d in attributes.get("dilations", [1, 1])):
            raise ProverError(f"{label}: dilated convolutions are not supported")
        bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros(weight.shape[0])
        groups = attributes.get("group", 1)
        arrays = {"weight": weight, "bias": bias}
        mask = _connectivity_mask(weight) if groups == 1 else None
        if mask is not None:
            arrays["mask"] = mask
        stride = tuple(attributes.get("strides", [1, 1]))
        self.chain.add("conv2d", arrays, stride=stride, padding=_pads(attributes, label), groups=groups)

    def _pool(self, kind: str, label: str, attributes: dict) -> None:
        if attributes.get("ceil_mode", 0) or any(d != 1 for d in attributes.get("dilations", [1, 1])):
            raise ProverError(f"{label}: ceil_mode and dilations are not supported")
        padding = _pads(attributes, label)
        if kind == "avgpool2d" and attributes.get("count_include_pad", 0) and any(padding):
            raise ProverError(f"{label}: count_include_pad with padding is not supported")
        kernel = tuple(attributes["kernel_shape"])
        stride = tuple(attributes.get("strides", [1, 1]))
        self.chain.add(kind, kernel=kernel, stride=stride, padding=padding)

    def _maxpool(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        self._pool("maxpool2d", label, attributes)

    def _averagepool(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        self._pool("avgpool2d", label, attributes)

    def _relu(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        self.chain.add("relu")

    def _tanh(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        self.chain.add("tanh")

    def _sigmoid(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        self.chain.add("sigmoid")

    def _softmax(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        if attributes.get("axis", -1) not in (-1, 1):
            raise ProverError(f"{label}: Softmax must be over the last axis of (batch, classes)")
        self.chain.add("softmax")

    def _flatten(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        if attributes.get("axis", 1) != 1:
            raise ProverError(f"{label}: only Flatten with axis 1 is supported")
        self.chain.add("flatten")

    def _reshape(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        shape = [int(d) for d in operand] if operand is not None else []
        if len(shape) != 2 or (shape[1] != -1 and shape[0] not in (0, 1, -1)):
            raise ProverError(f"{label}: only a Reshape to (batch, -1) (a flatten) is supported")
        self.chain.add("flatten")

    def _clip(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        low = float(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else -np.inf
        high = float(inputs[2]) if len(inputs) > 2 and inputs[2] is not None else np.inf
        if self.raw_pixels and low <= 0 and high >= 255:
            return  # pixels are already in 0..255
        if low == 0 and high == np.inf:
            self.chain.add("relu")
            return
        raise ProverError(f"{label}: Clip is supported as ReLU (min 0, no max) or on the raw pixels")

    def _round(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        if not self.raw_pixels:
            raise ProverError(f"{label}: Round is supported only on the raw (integer) pixels")

    def _quantizelinear(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        zero_point = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros((), np.uint8)
        self.fake_quantized = (inputs[1], zero_point)

    def _dequantizelinear(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        scale = _scalar(inputs[1])
        zero_point = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros(())
        if self.fake_quantized is not None:
            self.fake_quantized = None  # fake quantization of an activation: the float model stays
            return
        if not self.raw_pixels or scale is None or zero_point.size != 1:
            raise ProverError(f"{label}: DequantizeLinear of an activation must follow its QuantizeLinear")
        self.chain.normalize(scale=scale, offset=-float(zero_point.reshape(())) * scale, where=label)
