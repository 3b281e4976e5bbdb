"""The native int8 LINEAR (prover/model/linear.c) against the exact numpy product: random shapes,
weight zero points, every operand at its extreme, IN at the int32 bound, and weights that are
memory-mapped or viewed with strides; and its requantization against the numpy MBQM."""

from pathlib import Path

import numpy as np
import pytest

from prover.errors import ProverError
from prover.model.engine import blas_linear, integer_linear, mbqm, wrap32
from prover.model.linear import INT32_LIMIT, native_linear, native_requantize


def exact(x: np.ndarray, w: np.ndarray, w_zp: int) -> np.ndarray:
    return x.astype(np.int64) @ (w.astype(np.int64) - w_zp).T


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_and_zero_points_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, inputs, out = (int(v) for v in rng.integers(1, 300, 3))
    w_zp = int(rng.integers(-128, 128)) if seed % 2 else 0
    w = rng.integers(-128, 128, (out, inputs), dtype=np.int8)
    x = rng.integers(-255, 256, (m, inputs)).astype(np.int64)
    got = native_linear(x, w, w_zp)
    assert got is not None and got.dtype == np.int64
    assert np.array_equal(got, exact(x, w, w_zp))
    assert np.array_equal(got, blas_linear(x, w, w_zp))


@pytest.mark.parametrize(
    ("x_value", "w_value", "w_zp"), [(255, -128, 0), (-255, -128, 127), (-255, 127, -128)]
)
def test_extremes_at_the_int32_bound(x_value: int, w_value: int, w_zp: int) -> None:
    """Every product at its largest, IN as large as the bound allows: the sum is within one term
    of 2^31 and still exact; one more input and the native path declines (None), and
    `integer_linear` gives the exact product through numpy."""
    inputs = INT32_LIMIT // (abs(x_value) * (128 + abs(w_zp)))
    w = np.full((3, inputs), w_value, np.int8)
    x = np.full((2, inputs), x_value, np.int64)
    got = native_linear(x, w, w_zp)
    assert got is not None
    assert np.array_equal(got, exact(x, w, w_zp))
    wider_w, wider_x = np.full((3, inputs + 1), w_value, np.int8), np.full((2, inputs + 1), x_value, np.int64)
    assert native_linear(wider_x, wider_w, w_zp) is None
    assert np.array_equal(integer_linear(wider_x, wider_w, w_zp), exact(wider_x, wider_w, w_zp))


def test_activations_outside_int16_take_the_numpy_path() -> None:
    w = np.ones((4, 8), np.int8)
    x = np.full((1, 8), 1 << 15, np.int64)
    assert native_linear(x, w, 0) is None
    assert np.array_equal(integer_linear(x, w, 0), exact(x, w, 0))


def test_memory_mapped_and_strided_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    path = tmp_path / "w.bin"
    rng.integers(-128, 128, (64, 130), dtype=np.int8).tofile(path)
    mapped = np.memmap(path, np.int8, "r", shape=(64, 130))
    x = rng.integers(-128, 128, (5, 3, 128)).astype(np.int64)
    for w in (mapped[:, :128], mapped[::3, 1:129], mapped[10:20, 2:], np.asfortranarray(mapped[:, :128])):
        xs = x if w.shape[1] == 128 else rng.integers(-128, 128, (5, 3, w.shape[1])).astype(np.int64)
        assert np.array_equal(native_linear(xs, w, 3), exact(xs, w, 3))
    transposed = np.ascontiguousarray(x[:, :, ::-1])[..., ::2]  # a strided activation view
    assert np.array_equal(
        native_linear(transposed, mapped[:7, :64], 0), exact(transposed, mapped[:7, :64], 0)
    )


def test_empty_shapes() -> None:
    w = np.zeros((0, 5), np.int8)
    assert native_linear(np.zeros((3, 5), np.int64), w, 0).shape == (3, 0)
    assert np.array_equal(
        native_linear(np.ones((2, 0), np.int64), np.zeros((4, 0), np.int8), 0), np.zeros((2, 4))
    )


def test_weights_other_than_int8_are_refused() -> None:
    with pytest.raises(ProverError, match="int8"):
        native_linear(np.zeros((1, 4), np.int64), np.zeros((2, 4), np.int16), 0)


@pytest.mark.parametrize("rounding", [0, 1])
@pytest.mark.parametrize("per_channel", [True, False])
def test_requantize_matches_the_numpy_mbqm(rounding: int, per_channel: bool) -> None:
    """Every int32 accumulator and multiplier, INT32_MIN with itself (SRDHM's saturation), every
    shift of the rounding's range, zero points that wrap, bounds inside int8."""
    rng = np.random.default_rng(rounding + 2 * per_channel)
    channels = 64
    acc = rng.integers(-(2**31), 2**31, (5, 3, channels), dtype=np.int64)
    acc[0, 0, :8] = [-(2**31), 2**31 - 1, 0, -1, 1, -(2**30), 2**30, -(2**31)]
    count = channels if per_channel else 1
    mult = rng.integers(-(2**31), 2**31, count, dtype=np.int64).astype(np.int32)
    shift = rng.integers(-31, 32 - rounding, count).astype(np.int32)
    if per_channel:
        mult[:4] = [-(2**31), 0, 2**31 - 1, 1 << 30]
        shift[:4] = [0, 5, -31, 31 - rounding]
    for y_zp, bounds in ((0, (-128, 127)), (-(2**31) + 5, (-100, 20)), (2**31 - 3, (3, 3))):
        got = native_requantize(acc, mult, shift, y_zp, bounds, rounding)
        m, s = mult.astype(np.int64).reshape(1, 1, -1), shift.astype(np.int64).reshape(1, 1, -1)
        want = np.clip(wrap32(y_zp + mbqm(acc, m, s, rounding)), *bounds)
        assert got is not None and got.dtype == np.int8
        assert np.array_equal(got, want), (y_zp, bounds)


def test_requantize_declines_what_it_does_not_compute() -> None:
    acc = np.zeros((2, 4), np.int64)
    one = np.ones(1, np.int32)
    assert native_requantize(acc, np.ones(3, np.int32), np.ones(3, np.int32), 0, (-128, 127), 0) is None
    assert native_requantize(acc, one, one, 0, (-129, 127), 0) is None
