"""numpy evaluation of the ONNX ops whose inputs are all constants (constant folding), so that an
exported graph's weight arithmetic (QuantizeLinear -> DequantizeLinear of weights, a transposed or
reshaped initializer, a masked weight) becomes plain constant tensors before layers are matched."""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Attributes = dict[str, Any]


def _broadcast_parameter(parameter: np.ndarray, rank: int, axis: int) -> np.ndarray:
    """A per-axis quantization parameter (1-D) shaped to broadcast along `axis` of a rank-`rank`
    tensor; a scalar stays a scalar."""
    if parameter.ndim == 0 or parameter.size == 1:
        return parameter.reshape(())
    shape = [1] * rank
    shape[axis % rank] = parameter.size
    return parameter.reshape(shape)


def _quantize_linear(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    x, scale = inputs[0], inputs[1]
    zero_point = inputs[2] if len(inputs) > 2 else np.zeros((), np.uint8)
    axis = attributes.get("axis", 1)
    scale = _broadcast_parameter(scale, x.ndim, axis)
    zero_point = _broadcast_parameter(zero_point, x.ndim, axis)
    info = np.iinfo(zero_point.dtype)
    quantized = np.round(x / scale) + zero_point.astype(np.float64)
    return np.clip(quantized, info.min, info.max).astype(zero_point.dtype)


def _dequantize_linear(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    x, scale = inputs[0], inputs[1]
    zero_point = inputs[2] if len(inputs) > 2 else np.zeros((), x.dtype)
    axis = attributes.get("axis", 1)
    scale = _broadcast_parameter(scale, x.ndim, axis)
    zero_point = _broadcast_parameter(zero_point, x.ndim, axis)
    return ((x.astype(np.int64) - zero_point.astype(np.int64)) * scale).astype(np.float32)


def _gemm(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    a = inputs[0].T if attributes.get("transA", 0) else inputs[0]
    b = inputs[1].T if attributes.get("transB", 0) else inputs[1]
    result = attributes.get("alpha", 1.0) * (a @ b)
    if len(inputs) > 2:
        result = result + attributes.get("beta", 1.0) * inputs[2]
    return result.astype(np.float32)


def _reshape(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    x, shape = inputs[0], [int(d) for d in inputs[1]]
    if not attributes.get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _flatten(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    x = inputs[0]
    axis = attributes.get("axis", 1) % (x.ndim + 1) if x.ndim else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _clip(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    low = inputs[1] if len(inputs) > 1 and inputs[1] is not None else None
    high = inputs[2] if len(inputs) > 2 else None
    return np.clip(inputs[0], low, high)


def _softmax(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    x = inputs[0]
    shifted = np.exp(x - x.max(axis=attributes.get("axis", -1), keepdims=True))
    return shifted / shifted.sum(axis=attributes.get("axis", -1), keepdims=True)


def _slice(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    data, starts, ends = inputs[0], inputs[1], inputs[2]
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return data[tuple(index)]


def _axes(inputs: Sequence[np.ndarray], attributes: Attributes) -> tuple[int, ...] | None:
    """Squeeze's and Unsqueeze's axes: the second input since opset 13, an attribute before."""
    axes = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attributes.get("axes")
    return None if axes is None else tuple(int(a) for a in np.ravel(axes))


def _unsqueezed_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[int]:
    rank = len(shape) + len(axes)
    inserted = {a % rank for a in axes}
    dims = iter(shape)
    return [1 if i in inserted else next(dims) for i in range(rank)]


def _constant_of_shape(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    from onnx import numpy_helper

    value = attributes.get("value")
    fill = numpy_helper.to_array(value).reshape(()) if value is not None else np.float32(0)
    return np.full([int(d) for d in inputs[0]], fill, fill.dtype)


def _cast(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    from onnx import helper

    return inputs[0].astype(helper.tensor_dtype_to_np_dtype(attributes["to"]))


def _trilu(inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    k = int(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else 0
    return np.triu(inputs[0], k) if attributes.get("upper", 1) else np.tril(inputs[0], k)


FOLDABLE: dict[str, Callable[[Sequence[np.ndarray], Attributes], np.ndarray]] = {
    "Identity": lambda inputs, _: inputs[0],
    "Add": lambda inputs, _: inputs[0] + inputs[1],
    "Sub": lambda inputs, _: inputs[0] - inputs[1],
    "Mul": lambda inputs, _: inputs[0] * inputs[1],
    "Div": lambda inputs, _: inputs[0] / inputs[1],
    "MatMul": lambda inputs, _: inputs[0] @ inputs[1],
    "Gemm": _gemm,
    "Relu": lambda inputs, _: np.maximum(inputs[0], 0).astype(inputs[0].dtype),
    "Tanh": lambda inputs, _: np.tanh(inputs[0]),
    "Sigmoid": lambda inputs, _: (1 / (1 + np.exp(-inputs[0]))).astype(inputs[0].dtype),
    "Softmax": _softmax,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": lambda inputs, attributes: np.transpose(inputs[0], attributes.get("perm")),
    "Clip": _clip,
    "Round": lambda inputs, _: np.round(inputs[0]),  # half to even, as ONNX
    "Shape": lambda inputs, attributes: np.array(inputs[0].shape, np.int64)[
        attributes.get("start", 0) : attributes.get("end", inputs[0].ndim)
    ],
    "ConstantOfShape": _constant_of_shape,
    "Slice": _slice,
    "Concat": lambda inputs, attributes: np.concatenate(inputs, axis=attributes["axis"]),
    "Squeeze": lambda inputs, attributes: np.squeeze(inputs[0], _axes(inputs, attributes)),
    "Unsqueeze": lambda inputs, attributes: inputs[0].reshape(
        _unsqueezed_shape(inputs[0].shape, _axes(inputs, attributes))
    ),
    "Gather": lambda inputs, attributes: np.take(inputs[0], inputs[1], axis=attributes.get("axis", 0)),
    "Expand": lambda inputs, _: np.broadcast_to(
        inputs[0], np.broadcast_shapes(inputs[0].shape, tuple(int(d) for d in inputs[1]))
    ).copy(),
    "Equal": lambda inputs, _: np.equal(inputs[0], inputs[1]),
    "Where": lambda inputs, _: np.where(inputs[0], inputs[1], inputs[2]),
    "Cast": _cast,
    "Trilu": _trilu,
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
}


def fold(op_type: str, inputs: Sequence[np.ndarray], attributes: Attributes) -> np.ndarray:
    """The value of a node whose inputs are all constants (op_type must be in FOLDABLE)."""
    return np.asarray(FOLDABLE[op_type](inputs, attributes))
