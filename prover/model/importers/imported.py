"""What the importers hand over: the input normalization and the chain of layers they matched,
with float32 numpy weights in PyTorch's layouts (Linear (out, in), Conv (out, in, kh, kw)).
Every importer produces this same form, so a network gives the same result through any path.

Layer kinds and their contents:

    linear     arrays weight (out, in), bias (out,)
    conv2d     arrays weight, bias, mask? (out, in) u8; options stride (h, w),
               padding (top, left, bottom, right), groups
    subsample  arrays coef (c,), bias (c,); options kernel (h, w), stride (h, w)
    maxpool2d, avgpool2d   options kernel, stride, padding
    relu, tanh, sigmoid, flatten, softmax   nothing
    tokens     nothing (a feature map as a sequence of its positions)
    class_token    arrays token (dim,)
    embedding      arrays weight (vocabulary, dim)
    positions      arrays weight (tokens, dim)
    layernorm      arrays weight, bias (dim,)
    take_token     options index
    transformer_block  arrays ln1.weight, ln1.bias, qkv.weight (3 dim, dim), qkv.bias, proj.*,
                   ln2.*, fc1.* (mlp, dim), fc2.*; options heads, causal (0 or 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prover.errors import ProverError
from prover.model.graph import Graph
from prover.model.network import network_from_imported


@dataclass
class ImportedLayer:
    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    options: dict[str, tuple[int, ...] | int] = field(default_factory=dict)

    def same_as(self, other: ImportedLayer, tolerance: float = 0.0) -> bool:
        return (
            self.kind == other.kind
            and self.options == other.options
            and self.arrays.keys() == other.arrays.keys()
            and all(
                self.arrays[k].shape == other.arrays[k].shape
                and np.allclose(self.arrays[k], other.arrays[k], rtol=0, atol=tolerance)
                for k in self.arrays
            )
        )


@dataclass
class ImportedModel:
    """Input: raw uint8 pixels of `input_shape` (C, H, W) or (features,), normalized as
    pixel * input_scale + input_offset before the first layer."""

    input_shape: tuple[int, ...]
    input_scale: float
    input_offset: float
    layers: list[ImportedLayer]

    def to_graph(self, metadata: dict[str, str] | None = None) -> Graph:
        """The f32 .ggml graph, through the network description (which checks every shape)."""
        network, params = network_from_imported(self)
        return network.to_graph(params, metadata)


class LayerChain:
    """Collects layers in order; the input normalization stays open until the first layer."""

    def __init__(self) -> None:
        self.scale = 1.0
        self.offset = 0.0
        self.layers: list[ImportedLayer] = []

    def normalize(self, scale: float = 1.0, offset: float = 0.0, where: str = "") -> None:
        """Compose y = y * scale + offset into the input normalization."""
        if self.layers:
            raise ProverError(f"{where}: elementwise scaling is supported only before the first layer")
        self.scale, self.offset = self.scale * scale, self.offset * scale + offset

    def add(
        self, kind: str, arrays: dict[str, np.ndarray] | None = None, **options: tuple[int, ...] | int
    ) -> None:
        arrays = {
            name: np.asarray(value, np.uint8 if name == "mask" else np.float32)
            for name, value in (arrays or {}).items()
        }
        self.layers.append(ImportedLayer(kind, arrays, options))

    @property
    def last(self) -> ImportedLayer | None:
        return self.layers[-1] if self.layers else None

    def finish(self, input_shape: tuple[int, ...]) -> ImportedModel:
        if not self.layers:
            raise ProverError("the model has no layers")
        # The file stores the normalization as f32: round here so that both importers agree.
        scale, offset = float(np.float32(self.scale)), float(np.float32(self.offset))
        return ImportedModel(tuple(input_shape), scale, offset, self.layers)
