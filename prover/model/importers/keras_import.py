"""Keras 3 `.keras` files to the importers' layer chain, read directly (a zip of config.json and
model.weights.h5, through h5py): Keras and its backends are not needed to convert.

The model must be a Sequential, or a Functional model whose layers form a chain, over one input
of raw pixels: (features,), or an image of one channel (height, width, 1) in channels_last (the
default) or (1, height, width) in channels_first. Layers:

    InputLayer, Dropout                      skipped
    Rescaling before the first layer         the input normalization (pixel * scale + offset)
    Dense                                    linear (after a channels_last Flatten, its rows are
                                             reordered from (h, w, c) to our (c, h, w) order)
    Conv2D (padding valid or same, groups)   conv2d
    MaxPooling2D, AveragePooling2D (valid)   maxpool2d, avgpool2d
    Flatten                                  flatten
    Activation, ReLU, Softmax, and the `activation` of Dense and Conv2D:
        relu, tanh, sigmoid, softmax, linear

Anything else raises ProverError naming the layer.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import ProverError
from prover.model.importers.imported import ImportedModel, LayerChain
from prover.model.network import network_from_imported

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "softmax": "softmax", "linear": None}
SKIPPED = {"InputLayer", "Dropout", "SpatialDropout2D", "GaussianNoise"}


def _read(path: str | Path) -> tuple[dict[str, Any], Any]:
    """(config.json as a dict, the open h5py weights file)."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ProverError(f"not a Keras 3 .keras file: {exc}") from None
    return config, h5py.File(io.BytesIO(weights), "r")


def _chain_layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's layer configs in execution order; a ProverError unless they form a chain."""
    kind, body = config.get("class_name"), config.get("config", {})
    layers = body.get("layers")
    if kind not in ("Sequential", "Functional") or not isinstance(layers, list):
        raise ProverError(f"a {kind} model: only Sequential and Functional models are supported")
    if kind == "Functional":
        previous = None
        for layer in layers:
            sources = [
                argument["config"]["keras_history"][0]
                for node in layer.get("inbound_nodes", [])
                for argument in node.get("args", [])
                if isinstance(argument, dict) and argument.get("class_name") == "__keras_tensor__"
            ]
            if sources != ([previous] if previous else []):
                raise ProverError(f"layer {layer.get('name')!r}: the model is not a chain of layers")
            previous = layer["name"]
    return layers


def _input_shape(layers: list[dict[str, Any]]) -> tuple[tuple[int, ...], bool]:
    """(our input shape, channels_last) from the InputLayer or the first layer's build config."""
    first = layers[0]
    shape = first["config"].get("batch_shape") or first.get("build_config", {}).get("input_shape")
    if not shape or None in shape[1:]:
        raise ProverError("the model has no fixed input shape (give keras.Input a shape)")
    shape = tuple(int(d) for d in shape[1:])
    formats = {layer["config"].get("data_format") for layer in layers} - {None}
    if len(formats) > 1:
        raise ProverError("layers mix channels_first and channels_last")
    channels_last = formats != {"channels_first"}
    if len(shape) == 1:
        return shape, channels_last
    if len(shape) == 3:
        channels = shape[2] if channels_last else shape[0]
        height, width = shape[:2] if channels_last else shape[1:]
        if channels == 1:
            return (1, height, width), channels_last
    raise ProverError(f"input shape {shape}: only (features,) or a one-channel image is supported")


def _current_shape(chain: LayerChain, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Our (c, h, w) or (features,) shape after the layers so far, by the network's inference."""
    if not chain.layers:
        return input_shape
    network, _ = network_from_imported(ImportedModel(input_shape, 1.0, 0.0, list(chain.layers)))
    return network.shapes()[-1]


def _weight_keys(layers: list[dict[str, Any]]) -> dict[str, str]:
    """Layer name -> its group in model.weights.h5. Keras names the groups not by the layers' names
    but by their class in snake case, numbered per class in model order (dense, dense_1, ...),
    input layers left out."""
    keys, seen = {}, {}
    for layer in layers:
        if layer["class_name"] == "InputLayer":
            continue
        words = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", layer["class_name"]))
        base = words.lower()
        count = seen.get(base, 0)
        seen[base] = count + 1
        keys[layer["config"]["name"]] = base if count == 0 else f"{base}_{count}"
    return keys


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same": the output is ceil(size / stride), the odd pixel of padding at the end."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Converter:
    def __init__(
        self, weights: Any, weight_keys: dict[str, str], input_shape: tuple[int, ...], channels_last: bool
    ) -> None:
        self.weights = weights
        self.weight_keys = weight_keys
        self.input_shape = input_shape
        self.channels_last = channels_last
        self.chain = LayerChain()
        self.flattened_from: tuple[int, ...] | None = None  # the (c, h, w) map a Flatten consumed

    def variables(self, name: str, count: int) -> list[np.ndarray]:
        group = self.weights.get(f"layers/{self.weight_keys[name]}/vars")
        if group is None or len(group) < count:
            raise ProverError(f"layer {name!r}: its weights are missing from model.weights.h5")
        return [np.asarray(group[str(i)], np.float32) for i in range(count)]

    def activation(self, name: str, function: str) -> None:
        if function not in ACTIVATIONS:
            raise ProverError(f"layer {name!r}: activation {function!r} is not supported")
        if kind := ACTIVATIONS[function]:
            self.chain.add(kind)

    def add(self, layer: dict[str, Any]) -> None:
        kind, config = layer["class_name"], layer["config"]
        name = config.get("name", kind)
        if kind in SKIPPED:
            return
        if kind == "Rescaling":
            if np.ndim(config["scale"]) or np.ndim(config["offset"]):
                raise ProverError(f"layer {name!r}: only a scalar scale and offset are supported")
            self.chain.normalize(float(config["scale"]), float(config["offset"]), where=f"layer {name!r}")
        elif kind == "Dense":
            self.dense(name, config)
        elif kind == "Conv2D":
            self.conv2d(name, config)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            if config.get("padding", "valid") != "valid":
                raise ProverError(f"layer {name!r}: only padding 'valid' is supported for pooling")
            pool = tuple(config["pool_size"])
            stride = tuple(config.get("strides") or pool)
            self.chain.add("maxpool2d" if kind == "MaxPooling2D" else "avgpool2d", kernel=pool, stride=stride)
        elif kind == "Flatten":
            shape = _current_shape(self.chain, self.input_shape)
            self.flattened_from = shape if len(shape) == 3 else None
            self.chain.add("flatten")
        elif kind == "Activation":
            self.activation(name, config["activation"])
        elif kind == "ReLU":
            if config.get("max_value") is not None or config.get("negative_slope") or config.get("threshold"):
                raise ProverError(f"layer {name!r}: only the plain ReLU is supported")
            self.chain.add("relu")
        elif kind == "Softmax":
            if config.get("axis", -1) not in (-1, [-1]):
                raise ProverError(f"layer {name!r}: Softmax must be over the last axis")
            self.chain.add("softmax")
        else:
            raise ProverError(f"layer {name!r}: {kind} is not supported")

    def dense(self, name: str, config: dict[str, Any]) -> None:
        use_bias = config.get("use_bias", True)
        arrays = self.variables(name, 2 if use_bias else 1)
        kernel = arrays[0]  # (in, out)
        if self.flattened_from is not None and self.channels_last:
            # Keras flattened the map in (h, w, c) order; our Flatten gives (c, h, w).
            channels, height, width = self.flattened_from
            kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
        self.flattened_from = None
        bias = arrays[1] if use_bias else np.zeros(kernel.shape[1], np.float32)
        self.chain.add("linear", {"weight": kernel.T, "bias": bias})
        self.activation(name, config.get("activation", "linear"))

    def conv2d(self, name: str, config: dict[str, Any]) -> None:
        if tuple(config.get("dilation_rate", (1, 1))) != (1, 1):
            raise ProverError(f"layer {name!r}: dilated convolutions are not supported")
        use_bias = config.get("use_bias", True)
        arrays = self.variables(name, 2 if use_bias else 1)
        kernel = arrays[0]  # (kh, kw, in / groups, out)
        kernel_h, kernel_w = kernel.shape[:2]
        stride_h, stride_w = config.get("strides", (1, 1))
        if config.get("padding", "valid") == "same":
            _, height, width = _current_shape(self.chain, self.input_shape)
            top, bottom = _same_padding(height, kernel_h, stride_h)
            left, right = _same_padding(width, kernel_w, stride_w)
        elif config.get("padding", "valid") == "valid":
            top = left = bottom = right = 0
        else:
            raise ProverError(f"layer {name!r}: padding {config['padding']!r} is not supported")
        bias = arrays[1] if use_bias else np.zeros(kernel.shape[3], np.float32)
        self.chain.add(
            "conv2d",
            {"weight": kernel.transpose(3, 2, 0, 1), "bias": bias},
            stride=(stride_h, stride_w),
            padding=(top, left, bottom, right),
            groups=int(config.get("groups", 1)),
        )
        self.activation(name, config.get("activation", "linear"))


def import_keras(path: str | Path) -> ImportedModel:
    """A Keras 3 `.keras` file as the chain of layers it computes."""
    config, weights = _read(path)
    with weights:
        layers = _chain_layers(config)
        if not layers:
            raise ProverError("the model has no layers")
        input_shape, channels_last = _input_shape(layers)
        converter = _Converter(weights, _weight_keys(layers), input_shape, channels_last)
        for layer in layers:
            converter.add(layer)
        return converter.chain.finish(input_shape)
