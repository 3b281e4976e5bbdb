"""OPML's legacy headerless MNIST model files (docs/model-format.md, last section).

    magic   i32 0x67676d6c (big-endian, as everything here)
    4 x {   i32 n_dims; i32 dims[n_dims] innermost first; f32 data[prod(dims)] }
            in order W1 (784, H), b1 (H, 1), W2 (H, OUT), b2 (OUT, 1)

The model takes 784 raw uint8 pixels (not normalized): LINEAR, RELU, LINEAR, argmax. It converts to
the f32 graph DEQUANTIZE(SCALE 1, OFFSET 0) -> LINEAR -> RELU -> LINEAR through the network
description.
"""

from __future__ import annotations

import math

import numpy as np

from prover.model.graph import Graph
from prover.model.modelfile import MAGIC, ModelFormatError
from prover.model.network import Linear, Network, ReLU

INPUT_PIXELS = 784
TENSOR_NAMES = ("W1", "b1", "W2", "b2")


def _read_tensors(data: bytes) -> list[np.ndarray]:
    """The four tensors as numpy arrays of shape dims[::-1]."""
    if len(data) < 4 or int.from_bytes(data[:4], "big") != MAGIC:
        raise ModelFormatError(0, "not an OPML model file (bad magic)")
    pos, tensors = 4, []
    for name in TENSOR_NAMES:
        start = pos
        if len(data) - pos < 4:
            raise ModelFormatError(pos, f"{name}: truncated before its n_dims")
        n_dims = int.from_bytes(data[pos : pos + 4], "big", signed=True)
        if not 1 <= n_dims <= 4 or len(data) - pos - 4 < 4 * n_dims:
            raise ModelFormatError(pos, f"{name}: n_dims {n_dims} out of 1..4 or truncated dims")
        dims = [
            int.from_bytes(data[pos + 4 + 4 * i : pos + 8 + 4 * i], "big", signed=True) for i in range(n_dims)
        ]
        pos += 4 + 4 * n_dims
        if min(dims) < 1 or math.prod(dims) >= 1 << 29:
            raise ModelFormatError(start, f"{name}: dims {dims} out of range")
        count = math.prod(dims)
        if len(data) - pos < 4 * count:
            raise ModelFormatError(pos, f"{name}: truncated data ({count} f32 values expected)")
        tensors.append(np.frombuffer(data, ">f4", count, pos).astype(np.float32).reshape(dims[::-1]))
        pos += 4 * count
    if pos != len(data):
        raise ModelFormatError(pos, f"{len(data) - pos} bytes after the last tensor")
    return tensors


def read_opml(data: bytes) -> Graph:
    """The f32 graph of an OPML MNIST MLP file; ModelFormatError naming the offset otherwise."""
    w1, b1, w2, b2 = _read_tensors(bytes(data))
    if w1.ndim != 2 or w1.shape[1] != INPUT_PIXELS:
        raise ModelFormatError(4, f"W1 dims {w1.shape[::-1]} should be ({INPUT_PIXELS}, H)")
    hidden, outputs = w1.shape[0], w2.shape[0]
    if b1.size != hidden or w2.ndim != 2 or w2.shape[1] != hidden or b2.size != outputs:
        shapes = ", ".join(str(t.shape[::-1]) for t in (w1, b1, w2, b2))
        raise ModelFormatError(
            4, f"tensor dims {shapes} do not chain as W1 (784, H), b1 (H, 1), W2 (H, OUT), b2"
        )
    network = Network((INPUT_PIXELS,), [Linear(hidden), ReLU(), Linear(outputs)])
    params = {"0.weight": w1, "0.bias": b1.reshape(-1), "2.weight": w2, "2.bias": b2.reshape(-1)}
    return network.to_graph(params, {"arch": "mlp", "source": "opml"})
