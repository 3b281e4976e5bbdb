"""A network description with shape inference, as Keras' Sequential: each layer gives only its
output size; input sizes follow from the input shape and the layers before.

    net = Network((1, 28, 28), [Conv2D(6, 5, padding=2), Tanh(), Subsample(2), Flatten(), Linear(10)],
                  input_scale=1 / 255, input_offset=-1.0)
    net.shapes()                 # [(6, 28, 28), (6, 28, 28), (6, 14, 14), (1176,), (10,)]
    params = net.init_parameters(seed=0)   # or a state_dict: {"0.weight": array, "0.bias": ...}
    graph = net.to_graph(params)           # the f32 .ggml graph (prover.model.graph.Graph)
    net, params = Network.from_graph(graph)

Shapes are PyTorch's, without the batch dimension: (channels, height, width) for feature maps,
(features,) after Flatten. Parameters are named "{layer index}.{weight|bias|coef}" with PyTorch's
layouts: Linear weight (out, in), Conv2D weight (out, in / groups, kh, kw), bias and coef (channels,).
A Conv2D connectivity mask (LeNet-5's C3) is part of the layer: a u8 array (out, in), 1 = connected.

The graph input is the raw uint8 pixels (dims innermost first: (W, H, C) or (F,)); a DEQUANTIZE
node maps them to `pixel * input_scale + input_offset` (f32) before the first layer. Shapes that do
not fit raise a ProverError naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prover.errors import ProverError
from prover.model import sequence_layers
from prover.model.graph import Attr, DType, Graph, Op, bits_f32, f32_bits
from prover.model.sequence_layers import (
    SEQUENCE_LAYERS,
    ClassToken,
    Embedding,
    LayerNorm,
    PositionalEmbedding,
    SequenceLayer,
    TakeToken,
    Tokens,
    TransformerBlock,
)

__all__ = [
    "ClassToken",
    "Embedding",
    "LayerNorm",
    "PositionalEmbedding",
    "TakeToken",
    "Tokens",
    "TransformerBlock",
]

Pair = tuple[int, int]
Shape = tuple[int, ...]


def _pair(value: int | tuple[int, ...]) -> Pair:
    return (int(value), int(value)) if isinstance(value, int | np.integer) else (int(value[0]), int(value[1]))


def _pads(value: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from one pad, (h, w) or the four."""
    if isinstance(value, int | np.integer) or len(value) == 2:
        h, w = _pair(value)
        return (h, w, h, w)
    top, left, bottom, right = (int(v) for v in value)
    return (top, left, bottom, right)


class _Normalized:
    """Kernel and stride become (h, w) pairs (a pool's stride defaults to the kernel) and padding
    (top, left, bottom, right), whichever form was given, so that equal layers compare equal."""

    def __post_init__(self) -> None:
        if getattr(self, "stride", 1) is None:
            object.__setattr__(self, "stride", self.kernel)
        for name in ("kernel", "stride"):
            if getattr(self, name, None) is not None:
                object.__setattr__(self, name, _pair(getattr(self, name)))
        if hasattr(self, "padding"):
            object.__setattr__(self, "padding", _pads(self.padding))


@dataclass(frozen=True)
class Conv2D(_Normalized):
    out_channels: int
    kernel: int | Pair
    stride: int | Pair = 1
    padding: int | tuple[int, ...] = 0
    groups: int = 1
    mask: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class MaxPool2D(_Normalized):
    kernel: int | Pair
    stride: int | Pair | None = None  # default: the kernel
    padding: int | tuple[int, ...] = 0


@dataclass(frozen=True)
class AvgPool2D(_Normalized):
    """Averages over the window's non-padded positions only (count_include_pad=False)."""

    kernel: int | Pair
    stride: int | Pair | None = None
    padding: int | tuple[int, ...] = 0


@dataclass(frozen=True)
class Subsample(_Normalized):
    """LeNet's trainable subsampling: average pool times coef[c] plus bias[c]."""

    kernel: int | Pair = 2
    stride: int | Pair | None = None


@dataclass(frozen=True)
class Linear:
    out_features: int


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class Tanh:
    pass


@dataclass(frozen=True)
class Sigmoid:
    pass


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Softmax:
    pass


Layer = (
    Conv2D
    | MaxPool2D
    | AvgPool2D
    | Subsample
    | Linear
    | ReLU
    | Tanh
    | Sigmoid
    | Flatten
    | Softmax
    | SequenceLayer
)
_ELEMENTWISE = {ReLU: Op.RELU, Tanh: Op.TANH, Sigmoid: Op.SIGMOID}


def _window(size: int, kernel: int, stride: int, pad_a: int, pad_b: int) -> int:
    return (size + pad_a + pad_b - kernel) // stride + 1 if size + pad_a + pad_b >= kernel else 0


@dataclass
class Network:
    input_shape: Shape
    layers: list[Layer]
    input_scale: float = 1.0
    input_offset: float = 0.0

    def __post_init__(self) -> None:
        # The file stores the normalization as f32: hold exactly what it will read back.
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.input_scale = float(np.float32(self.input_scale))
        self.input_offset = float(np.float32(self.input_offset))

    def _where(self, index: int) -> str:
        return f"layer {index} ({type(self.layers[index]).__name__})"

    def shapes(self) -> list[Shape]:
        """Each layer's output shape; a ProverError naming the first layer that does not fit."""
        shape = tuple(int(d) for d in self.input_shape)
        if len(shape) not in (1, 3) or min(shape, default=0) < 1:
            raise ProverError(f"input shape {shape}: expected (features,) or (channels, height, width)")
        shapes = []
        for index, layer in enumerate(self.layers):
            shape = self._infer(index, layer, shape)
            shapes.append(shape)
        return shapes

    def _infer(self, index: int, layer: Layer, shape: Shape) -> Shape:
        where = self._where(index)

        def need_map() -> tuple[int, int, int]:
            if len(shape) != 3:
                raise ProverError(f"{where}: needs a (channels, height, width) input, got {shape}")
            return shape  # type: ignore[return-value]

        if isinstance(layer, Conv2D):
            channels, height, width = need_map()
            kh, kw = _pair(layer.kernel)
            sh, sw = _pair(layer.stride)
            top, left, bottom, right = _pads(layer.padding)
            if layer.out_channels < 1 or layer.groups < 1 or min(kh, kw, sh, sw) < 1 or min(top, left) < 0:
                raise ProverError(f"{where}: channels, groups, kernel and stride must be >= 1, pads >= 0")
            if channels % layer.groups or layer.out_channels % layer.groups:
                raise ProverError(
                    f"{where}: groups {layer.groups} must divide the {channels} input and "
                    f"{layer.out_channels} output channels"
                )
            if layer.mask is not None and np.shape(layer.mask) != (layer.out_channels, channels):
                raise ProverError(
                    f"{where}: mask shape {np.shape(layer.mask)} should be ({layer.out_channels}, {channels})"
                )
            oh, ow = _window(height, kh, sh, top, bottom), _window(width, kw, sw, left, right)
            if not oh or not ow:
                raise ProverError(f"{where}: kernel {kh}x{kw} does not fit the padded input {height}x{width}")
            return (layer.out_channels, oh, ow)
        if isinstance(layer, MaxPool2D | AvgPool2D | Subsample):
            channels, height, width = need_map()
            kh, kw = _pair(layer.kernel)
            sh, sw = _pair(layer.stride if layer.stride is not None else layer.kernel)
            top, left, bottom, right = _pads(getattr(layer, "padding", 0))
            pads_fit = min(top, bottom, left, right) >= 0 and max(top, bottom) < kh and max(left, right) < kw
            if min(kh, kw, sh, sw) < 1 or not pads_fit:
                raise ProverError(f"{where}: kernel and stride must be >= 1, each pad below the kernel size")
            oh, ow = _window(height, kh, sh, top, bottom), _window(width, kw, sw, left, right)
            if not oh or not ow:
                raise ProverError(f"{where}: window {kh}x{kw} does not fit the input {height}x{width}")
            return (channels, oh, ow)
        if isinstance(layer, SEQUENCE_LAYERS):
            return sequence_layers.infer(layer, shape, where, first=index == 0)
        if isinstance(layer, Linear):
            if len(shape) not in (1, 2):
                raise ProverError(
                    f"{where}: needs a flat input or a (tokens, features) sequence, got {shape} "
                    "(add a Flatten before it)"
                )
            if layer.out_features < 1:
                raise ProverError(f"{where}: out_features must be >= 1")
            return (*shape[:-1], layer.out_features)
        if isinstance(layer, Flatten):
            return (int(np.prod(shape)),)
        if isinstance(layer, Softmax) and len(shape) != 1:
            raise ProverError(f"{where}: softmax needs a flat input, got {shape}")
        if isinstance(layer, ReLU | Tanh | Sigmoid | Softmax):
            return shape
        raise ProverError(f"{where}: not a layer")

    def parameter_shapes(self) -> dict[str, Shape]:
        """Name -> shape of every parameter, in layer order."""
        result: dict[str, Shape] = {}
        shape = tuple(self.input_shape)
        for index, (layer, out) in enumerate(zip(self.layers, self.shapes(), strict=True)):
            if isinstance(layer, Conv2D):
                kh, kw = _pair(layer.kernel)
                result[f"{index}.weight"] = (layer.out_channels, shape[0] // layer.groups, kh, kw)
                result[f"{index}.bias"] = (layer.out_channels,)
            elif isinstance(layer, Linear):
                result[f"{index}.weight"] = (layer.out_features, shape[-1])
                result[f"{index}.bias"] = (layer.out_features,)
            elif isinstance(layer, SEQUENCE_LAYERS):
                result |= sequence_layers.parameter_shapes(layer, index, shape, out)
            elif isinstance(layer, Subsample):
                result[f"{index}.coef"] = (shape[0],)
                result[f"{index}.bias"] = (shape[0],)
            shape = out
        return result

    def init_parameters(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Random parameters (uniform, scaled by fan-in as PyTorch does), for tests and examples."""
        rng = np.random.default_rng(seed)
        params = {}
        norms = {f"{i}." for i, layer in enumerate(self.layers) if isinstance(layer, LayerNorm)}
        for name, shape in self.parameter_shapes().items():
            if ".ln" in name or name.rpartition(".")[0] + "." in norms:
                params[name] = (np.ones if name.endswith("weight") else np.zeros)(shape, np.float32)
                continue
            fan_in = int(np.prod(shape[1:])) if name.endswith("weight") else 1
            bound = 1 / np.sqrt(fan_in) if len(shape) > 1 else 0.1
            if name.endswith("coef"):
                params[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            else:
                params[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        return params

    def to_graph(self, params: dict[str, Any], metadata: dict[str, Any] | None = None) -> Graph:
        """The f32 graph, with `params` (numpy arrays or anything np.asarray takes) as its data."""
        shapes = self.shapes()
        expected = self.parameter_shapes()
        for name, shape in expected.items():
            if name not in params:
                raise ProverError(f"parameter {name} is missing")
            if tuple(np.shape(params[name])) != shape:
                raise ProverError(
                    f"parameter {name}: shape {tuple(np.shape(params[name]))}, expected {shape}"
                )
        if unknown := sorted(set(params) - set(expected)):
            raise ProverError(f"parameters {', '.join(unknown)} belong to no layer")

        graph = Graph(metadata={"mode": "f32", **(metadata or {})})
        dims = tuple(reversed(self.input_shape))
        if self.layers and isinstance(self.layers[0], Embedding):
            graph.input = x = graph.add_tensor("ids", DType.I32, dims)
        else:
            graph.input = graph.add_tensor("pixels", DType.U8, dims)
            x = graph.add_node(
                Op.DEQUANTIZE,
                [graph.input],
                "input",
                DType.F32,
                dims,
                SCALE=f32_bits(self.input_scale),
                OFFSET=f32_bits(self.input_offset),
            )
        for index, (layer, shape) in enumerate(zip(self.layers, shapes, strict=True)):
            out_dims = tuple(reversed(shape))
            x = self._emit(graph, index, layer, x, (dims, out_dims), params)
            dims = out_dims
        graph.output = x
        return graph

    def _emit(
        self,
        graph: Graph,
        index: int,
        layer: Layer,
        x: int,
        in_out_dims: tuple[Shape, Shape],
        params: dict[str, Any],
    ) -> int:
        name = f"{index}.{type(layer).__name__.lower()}"
        in_dims, dims = in_out_dims

        def param(key: str) -> int:
            value = np.asarray(params[f"{index}.{key}"], np.float32)
            if isinstance(layer, ClassToken):
                value = value.reshape(1, -1)  # a (dim, 1) sequence of one token
            return graph.add_tensor(f"{index}.{key}", DType.F32, value.shape[::-1], value)

        if isinstance(layer, SEQUENCE_LAYERS):
            return sequence_layers.Emitter(graph, index, param).emit(layer, x, in_dims, dims)
        if isinstance(layer, Linear):
            return graph.add_node(Op.LINEAR, [x, param("weight"), param("bias")], name, DType.F32, dims)
        if isinstance(layer, Conv2D):
            inputs = [x, param("weight"), param("bias"), None, None]
            if layer.mask is not None:
                mask = np.asarray(layer.mask, np.uint8)
                inputs.append(graph.add_tensor(f"{index}.mask", DType.U8, mask.shape[::-1], mask))
            sh, sw = _pair(layer.stride)
            top, left, bottom, right = _pads(layer.padding)
            attrs = dict(
                STRIDE_H=sh, STRIDE_W=sw, PAD_TOP=top, PAD_LEFT=left, PAD_BOTTOM=bottom, PAD_RIGHT=right
            )
            attrs["GROUPS"] = layer.groups
            return graph.add_node(Op.CONV2D, inputs, name, DType.F32, dims, **_non_default(attrs))
        if isinstance(layer, MaxPool2D | AvgPool2D | Subsample):
            kh, kw = _pair(layer.kernel)
            sh, sw = _pair(layer.stride if layer.stride is not None else layer.kernel)
            top, left, bottom, right = _pads(getattr(layer, "padding", 0))
            attrs = dict(KERNEL_H=kh, KERNEL_W=kw, STRIDE_H=sh, STRIDE_W=sw)
            attrs |= dict(PAD_TOP=top, PAD_LEFT=left, PAD_BOTTOM=bottom, PAD_RIGHT=right)
            if isinstance(layer, Subsample):
                inputs = [x, param("coef"), param("bias")]
                return graph.add_node(Op.SUBSAMPLE, inputs, name, DType.F32, dims, **_non_default(attrs))
            op = Op.MAXPOOL2D if isinstance(layer, MaxPool2D) else Op.AVGPOOL2D
            return graph.add_node(op, [x], name, DType.F32, dims, **_non_default(attrs))
        if isinstance(layer, Flatten):
            return graph.add_node(Op.RESHAPE, [x], name, DType.F32, dims)
        if isinstance(layer, Softmax):
            return graph.add_node(Op.SOFTMAX, [x], name, DType.F32, dims)
        return graph.add_node(_ELEMENTWISE[type(layer)], [x], name, DType.F32, dims)

    @classmethod
    def from_graph(cls, graph: Graph) -> tuple[Network, dict[str, np.ndarray]]:
        """The network and parameters of an f32 layer chain (as `to_graph` writes it, or an OPML
        conversion): DEQUANTIZE of the u8 input, then one node per layer, each taking the previous
        output. A ProverError names the first node that is not such a layer."""
        nodes = graph.nodes
        pixels = graph.tensors[graph.input]
        first = nodes[0] if nodes else None
        if pixels.dtype != DType.U8 or first is None or first.op != Op.DEQUANTIZE or first.attr(Attr.ZP):
            raise ProverError("node 0: a network graph starts with a DEQUANTIZE (ZP 0) of u8 pixels")
        scale, offset = bits_f32(first.attr(Attr.SCALE)), bits_f32(first.attr(Attr.OFFSET))
        layers: list[Layer] = []
        params: dict[str, np.ndarray] = {}
        x = first.output
        for node_index, node in enumerate(nodes[1:], start=1):
            if node.inputs[0] != x or graph.tensors[x].dtype != DType.F32:
                raise ProverError(f"node {node_index} ({node.op.name}): not an f32 layer chain")
            index = len(layers)
            layer = _layer_of(graph, node, index, params)
            if layer is None:
                raise ProverError(f"node {node_index} ({node.op.name}): not a network layer")
            layers.append(layer)
            x = node.output
        if x != graph.output:
            raise ProverError("the graph output is not the last layer's output")
        network = cls(tuple(reversed(pixels.dims)), layers, scale, offset)
        network.shapes()
        return network, params


def _non_default(attrs: dict[str, int]) -> dict[str, int]:
    defaults = {"STRIDE_H": 1, "STRIDE_W": 1, "GROUPS": 1}
    return {key: value for key, value in attrs.items() if value != defaults.get(key, 0)}


def _layer_of(graph: Graph, node: Any, index: int, params: dict[str, np.ndarray]) -> Layer | None:
    """One node as a layer, its stored operands put into `params`; None if it is not one."""

    def stored(i: int) -> np.ndarray | None:
        t = node.input(i)
        return None if t is None else graph.tensors[t].data

    a = node.attr
    out_dims = graph.tensors[node.output].dims
    if node.op in (Op.LINEAR, Op.CONV2D):
        weight, bias = stored(1), stored(2)
        if weight is None or (node.input(2) is not None and bias is None):
            return None
        channels = weight.shape[0]
        params[f"{index}.weight"] = weight
        params[f"{index}.bias"] = bias if bias is not None else np.zeros(channels, np.float32)
        if node.op == Op.LINEAR:
            return Linear(channels)
        pads = (a(Attr.PAD_TOP), a(Attr.PAD_LEFT), a(Attr.PAD_BOTTOM), a(Attr.PAD_RIGHT))
        stride = (a(Attr.STRIDE_H), a(Attr.STRIDE_W))
        mask = stored(5)
        if node.input(5) is not None and mask is None:
            return None
        return Conv2D(channels, weight.shape[2:], stride, pads, a(Attr.GROUPS), mask)
    if node.op in (Op.MAXPOOL2D, Op.AVGPOOL2D, Op.SUBSAMPLE):
        kernel, stride = (a(Attr.KERNEL_H), a(Attr.KERNEL_W)), (a(Attr.STRIDE_H), a(Attr.STRIDE_W))
        pads = (a(Attr.PAD_TOP), a(Attr.PAD_LEFT), a(Attr.PAD_BOTTOM), a(Attr.PAD_RIGHT))
        if node.op == Op.MAXPOOL2D:
            return MaxPool2D(kernel, stride, pads)
        if node.op == Op.AVGPOOL2D:
            return AvgPool2D(kernel, stride, pads)
        coef, bias = stored(1), stored(2)
        if coef is None or bias is None:
            return None
        params[f"{index}.coef"], params[f"{index}.bias"] = coef.reshape(-1), bias.reshape(-1)
        return Subsample(kernel, stride)
    if node.op == Op.RESHAPE:
        return Flatten() if len(out_dims) == 1 else None
    simple = {Op.RELU: ReLU, Op.TANH: Tanh, Op.SIGMOID: Sigmoid, Op.SOFTMAX: Softmax}
    return simple[node.op]() if node.op in simple else None


_SEQUENCE_KINDS = {
    "tokens": Tokens,
    "class_token": ClassToken,
    "positions": PositionalEmbedding,
    "layernorm": LayerNorm,
}
_SIMPLE_KINDS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "flatten": Flatten, "softmax": Softmax}


def network_from_imported(model: Any) -> tuple[Network, dict[str, np.ndarray]]:
    """The network of an importer's result (prover.model.importers.imported.ImportedModel: input_shape,
    input_scale, input_offset and layers of kind / arrays / options), and its parameters."""
    layers: list[Layer] = []
    params: dict[str, np.ndarray] = {}
    for index, imported in enumerate(model.layers):
        options, arrays = dict(imported.options), imported.arrays
        kind = imported.kind
        if kind == "linear":
            layers.append(Linear(arrays["weight"].shape[0]))
        elif kind == "conv2d":
            weight = arrays["weight"]
            layers.append(
                Conv2D(
                    weight.shape[0],
                    weight.shape[2:],
                    options.get("stride", 1),
                    options.get("padding", 0),
                    options.get("groups", 1),
                    arrays.get("mask"),
                )
            )
        elif kind == "subsample":
            layers.append(Subsample(options["kernel"], options.get("stride")))
        elif kind in ("maxpool2d", "avgpool2d"):
            pool = MaxPool2D if kind == "maxpool2d" else AvgPool2D
            layers.append(pool(options["kernel"], options.get("stride"), options.get("padding", 0)))
        elif kind in _SIMPLE_KINDS:
            layers.append(_SIMPLE_KINDS[kind]())
        elif kind == "embedding":
            layers.append(Embedding(*arrays["weight"].shape))
        elif kind == "transformer_block":
            dim, hidden = arrays["qkv.weight"].shape[1], arrays["fc1.weight"].shape[0]
            layers.append(
                TransformerBlock(int(options["heads"]), dim, hidden, bool(options.get("causal", 0)))
            )
        elif kind == "take_token":
            layers.append(TakeToken(int(options.get("index", 0))))
        elif kind in _SEQUENCE_KINDS:
            layers.append(_SEQUENCE_KINDS[kind]())
        else:
            raise ProverError(f"layer {index}: unknown kind {kind!r}")
        params |= {f"{index}.{key}": value for key, value in arrays.items() if key != "mask"}
    network = Network(tuple(model.input_shape), layers, float(model.input_scale), float(model.input_offset))
    network.shapes()
    return network, params
