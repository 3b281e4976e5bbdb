"""ONNX (opset >= 13) to the network description.

The graph is a chain of layers from the input (raw pixels or token ids), an optional elementwise
normalization first, with one kind of branch: the pre-norm transformer blocks of
prover.model.importers.torch_transformer, whose attention and MLP are matched as a whole by
following the data flow from the residual stream (prover.model.importers.onnx_transformer lists
the pattern). Nodes whose inputs are all constants are evaluated with numpy first (constant
folding: quantized weights through QuantizeLinear -> DequantizeLinear, reshaped or masked
initializers, the exporter's shape arithmetic; a Shape of an activation takes its inferred static
shape, a symbolic batch dimension counting as 1). The remaining nodes are matched to layers:

    Gemm, MatMul (+ Add of a bias)           Linear
    Conv (+ Add of a bias)                   Conv2D; (out, in) kernel slices that are all zero
                                             become the connectivity mask (LeNet-5's C3)
    AveragePool, Mul and Add per channel     Subsample (LeNet's trainable subsampling)
    MaxPool, AveragePool                     MaxPool2D, AvgPool2D
    Relu, Clip(min 0, no max)                ReLU
    Tanh, Sigmoid, Softmax                   Tanh, Sigmoid, Softmax
    Flatten, Reshape to (batch, -1)          Flatten
    Reshape (batch, channels, -1) of a       Tokens (a feature map as a sequence of its
    feature map, Transpose (0, 2, 1)         positions: the ViT's patch embedding)
    Concat of a (1, 1, dim) constant and     ClassToken
    the tokens on axis 1
    Gather of a constant table by the        Embedding
    input's token ids
    Add of a (tokens, dim) constant to the   PositionalEmbedding
    first sequence
    LayerNormalization (last axis)           LayerNorm
    Gather of a scalar index on axis 1       TakeToken (the ViT's head on the class token)
    the transformer block's DAG              TransformerBlock(heads, dim, causal)
    Mul, Div, Add by a scalar before the     the input normalization (pixel * scale + offset)
    first layer; DequantizeLinear of a u8
    input; Round or Clip(0, 255) of the raw
    pixels (no-ops on integer pixels)
    QuantizeLinear -> DequantizeLinear       removed (fake quantization: `--int8` calibrates
    of an activation                         its own scales)

Anything else raises ProverError naming the node: an unsupported op, or a node whose input comes
from a branch that is not a transformer block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import ProverError
from prover.model.importers.imported import ImportedLayer, ImportedModel, LayerChain
from prover.model.importers.onnx_fold import FOLDABLE, fold
from prover.model.importers.onnx_transformer import (
    BlockWalk,
    DataFlow,
    attributes_of,
    layernorm_arrays,
    node_label,
)

MIN_OPSET = 13
# Ops matched only as part of a transformer block (prover.model.importers.onnx_transformer).
BLOCK_OPS = {"Split", "Slice", "Squeeze", "Where", "Erf", "Gelu"}
# Ops that may act on the activation chain (the others of FOLDABLE only fold constants).
LAYER_OPS = {
    "Gemm", "MatMul", "Add", "Mul", "Div", "Relu", "Tanh", "Sigmoid", "Conv", "MaxPool", "AveragePool",
    "Flatten", "Reshape", "Clip", "Round", "QuantizeLinear", "DequantizeLinear", "Softmax",
    "Transpose", "Concat", "Gather", "LayerNormalization", *BLOCK_OPS,
}  # fmt: skip


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


class _StaticShapes:
    """The shapes ONNX shape inference gives the tensors (an unknown dim is 0), inferred once when
    first asked for: only the transformers' exports need them."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.shapes: dict[str, tuple[int, ...]] | None = None

    def get(self, name: str) -> tuple[int, ...] | None:
        if self.shapes is None:
            import onnx

            try:
                inferred = onnx.shape_inference.infer_shapes(self.model)
            except Exception as exc:  # onnx raises its own kinds of inference errors
                raise ProverError(f"ONNX shape inference failed: {str(exc).splitlines()[0]}") from None
            graph = inferred.graph
            self.shapes = {
                value.name: tuple(
                    d.dim_value if d.HasField("dim_value") else 0 for d in value.type.tensor_type.shape.dim
                )
                for value in [*graph.input, *graph.value_info, *graph.output]
                if value.type.tensor_type.HasField("shape")
            }
        return self.shapes.get(name)


def _shape_of_activation(node: Any, attributes: dict[str, Any], shapes: _StaticShapes) -> np.ndarray:
    """A Shape node's value from the inferred static shape (a symbolic batch dimension is 1)."""
    shape = shapes.get(node.input[0])
    if shape is None or 0 in shape[1:]:
        raise ProverError(f"{node_label(node)}: the shape of {node.input[0]!r} is not static")
    dims = np.array([shape[0] or 1, *shape[1:]], np.int64)
    return dims[attributes.get("start", 0) : attributes.get("end", len(dims))]


def import_onnx(source: str | Path | bytes | Any) -> ImportedModel:
    """An ONNX model (path, bytes or onnx.ModelProto) as the chain of layers it computes."""
    model = _load(source)
    _check_opset(model)
    from onnx import numpy_helper

    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    graph_input = _single_input(model, constants)
    shapes = _StaticShapes(model)
    activation_nodes = []
    for node in model.graph.node:
        attributes = attributes_of(node)
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(attributes["value"])
            continue
        if node.op_type not in LAYER_OPS and node.op_type not in FOLDABLE:
            raise ProverError(f"unsupported ONNX op {node_label(node)}")
        if all(name in constants for name in node.input if name):
            values = [constants[name] if name else None for name in node.input]
            constants[node.output[0]] = fold(node.op_type, values, attributes)
        elif node.op_type == "Shape":
            constants[node.output[0]] = _shape_of_activation(node, attributes, shapes)
        elif node.op_type in LAYER_OPS:
            activation_nodes.append(node)
        else:
            raise ProverError(f"{node_label(node)}: {node.op_type} only folds constants here")
    flow = DataFlow(activation_nodes, constants)
    matcher = _Matcher(graph_input.name, shapes)
    matched = _match_all(flow, matcher)
    unmatched = [node for node in activation_nodes if id(node) not in matched]
    if unmatched:
        raise ProverError(
            f"{node_label(unmatched[0])}: only a chain of layers and pre-norm transformer blocks are"
            " supported (this node is off the path of layers from the input)"
        )
    if [output.name for output in model.graph.output] != [matcher.current]:
        raise ProverError("the ONNX graph output is not the end of its chain of layers")
    return matcher.chain.finish(_input_shape(graph_input))


def _match_all(flow: DataFlow, matcher: _Matcher) -> set[int]:
    """Walks the data flow from the input, layer by layer and block by block; the ids of the nodes
    matched."""
    matched: set[int] = set()
    while users := flow.consumers(matcher.current):
        if flow.starts_block(matcher.current) and matcher.fake_quantized is None:
            walk = BlockWalk(flow)
            arrays, heads, causal, output = walk.match(matcher.current)
            matcher.chain.add("transformer_block", arrays, heads=heads, causal=causal)
            matcher.current = output
            matched.update(id(node) for node in walk.claimed)
            continue
        if len(users) > 1:
            raise ProverError(
                f"{node_label(users[1])}: only a chain of layers and pre-norm transformer blocks are"
                " supported (a branch that is not a transformer block)"
            )
        matcher.match(users[0], attributes_of(users[0]), flow.constants)
        matched.add(id(users[0]))
    return matched


class _Matcher:
    """Turns the non-constant nodes, one after the other, into layers."""

    def __init__(self, input_name: str, shapes: _StaticShapes) -> None:
        self.current = input_name
        self.shapes = shapes  # inferred static shapes, for the feature map that becomes tokens
        self.chain = LayerChain()
        self.raw_pixels = True  # only no-ops (Round, Clip to 0..255) have touched the input so far
        self.fake_quantized: tuple[np.ndarray, np.ndarray] | None = None
        self.flattened_map: str | None = None  # a Reshape (batch, channels, -1) awaiting its Transpose

    def match(self, node: Any, attributes: dict[str, Any], constants: dict[str, np.ndarray]) -> None:
        label = node_label(node)
        activations = [name for name in node.input if name and name not in constants]
        if activations != [self.current]:
            raise ProverError(
                f"{label}: only a chain of layers and pre-norm transformer blocks are supported"
                " (it must take the previous output only)"
            )
        if node.op_type in BLOCK_OPS:
            raise ProverError(f"{label}: {node.op_type} is supported only inside a transformer block")
        others = [constants.get(name) if name else None for name in node.input]
        constant_inputs = [value for value in others if value is not None]
        operand = constant_inputs[0] if constant_inputs else None
        if self.fake_quantized is not None and node.op_type != "DequantizeLinear":
            raise ProverError(
                f"{label}: a QuantizeLinear of an activation must be followed by DequantizeLinear"
            )
        if self.flattened_map is not None and node.op_type != "Transpose":
            raise ProverError(
                f"{self.flattened_map}: a Reshape to (batch, channels, -1) needs Transpose (0, 2, 1)"
            )
        # What a few handlers need beyond the inputs' values.
        self.node, self.constants = node, constants
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
        if last is not None and last.kind in ("tokens", "class_token", "embedding"):
            if operand.ndim < 2 or operand.size != np.prod(operand.shape[-2:]):
                raise ProverError(f"{label}: the Add to the first sequence must add one (tokens, dim) table")
            self.chain.add("positions", {"weight": operand.reshape(operand.shape[-2:])})
            return
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
        if len(shape) == 3:
            self._flatten_map(label, shape)
            return
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

    # The sequence layers of a transformer.

    def _flatten_map(self, label: str, shape: list[int]) -> None:
        """Reshape of a (batch, channels, height, width) feature map to (batch, channels, -1)."""
        source = self.shapes.get(self.current) or ()
        if len(source) != 4 or shape[1] not in (0, source[1]) or shape[2] not in (-1, source[2] * source[3]):
            raise ProverError(f"{label}: only a Reshape of a feature map to (batch, channels, -1)")
        self.flattened_map = label

    def _transpose(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        if self.flattened_map is None or list(attributes.get("perm", [])) != [0, 2, 1]:
            raise ProverError(f"{label}: Transpose is supported as (0, 2, 1) of a flattened feature map")
        self.flattened_map = None
        self.chain.add("tokens")

    def _concat(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        last = self.chain.last
        token = inputs[0]
        if (
            last is None or last.kind != "tokens" or len(inputs) != 2 or token is None
            or token.size != token.shape[-1] or attributes.get("axis") not in (1, -2)
        ):  # fmt: skip
            raise ProverError(f"{label}: Concat is supported as a (1, 1, dim) class token, then the tokens")
        self.chain.add("class_token", {"token": token.reshape(-1)})

    def _gather(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        table, index = inputs[0], inputs[1]
        axis = attributes.get("axis", 0)
        if table is not None and axis == 0 and table.ndim == 2 and not self.chain.layers and self.raw_pixels:
            self.chain.add("embedding", {"weight": table})
        elif table is None and index is not None and index.ndim == 0 and axis in (1, -2):
            self.chain.add("take_token", index=int(index))
        else:
            raise ProverError(
                f"{label}: Gather is supported as the embedding of the input's token ids or as one"
                " token (a scalar index on axis 1)"
            )

    def _layernormalization(self, label: str, attributes: dict, inputs: list, operand: np.ndarray) -> None:
        self.chain.add("layernorm", layernorm_arrays(self.node, self.constants))
        if len(self.chain.layers) > 1 and self.chain.layers[-2].kind == "take_token":
            # norm(x[:, 0]) as the torch importer writes it, norm(x)[:, 0]: the same, per token.
            layers = self.chain.layers
            layers[-2], layers[-1] = layers[-1], layers[-2]
