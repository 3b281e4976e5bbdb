"""Post-training int8 quantization: the multiplier and range conventions, the graph it builds, and
agreement of the int8 graph with the f32 one."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_modelfile import sample_f32_graph, small_convnet

from prover.errors import ProverError
from prover.model.engine import run
from prover.model.graph import Attr, DType, Graph, Op, f32_bits
from prover.model.network import Conv2D, Flatten, Linear, Network, ReLU, Sigmoid, Softmax, Subsample, Tanh
from prover.model.quantize import (
    CALIBRATION_METHODS,
    calibrate,
    calibrated_range,
    qparams,
    quantize,
    quantize_multiplier,
)


@given(st.floats(2.0**-31, 2.0**30 * 0.99))
def test_quantize_multiplier(real):
    m0, shift = quantize_multiplier(real)
    assert 2**30 <= m0 < 2**31
    assert -31 <= shift <= 30
    assert math.isclose(m0 * 2.0 ** (shift - 31), real, rel_tol=2**-30)


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1 - 2**-40) == (2**30, 1)  # M0 rounds up to 2^31: renormalized
    with pytest.raises(ProverError):
        quantize_multiplier(2.0**31)


@given(st.floats(-100, 100), st.floats(-100, 100))
def test_qparams_hold_zero_exactly(a, b):
    low, high = min(a, b), max(a, b)
    scale, zp = qparams(low, high)
    assert -128 <= zp <= 127
    assert scale > 0
    # the range fits in int8 (up to rounding) and real 0 is the integer zp
    assert round(min(low, 0) / scale) + zp >= -129
    assert round(max(high, 0) / scale) + zp <= 128


def pattern_inputs(count: int, size: int, seed: int, channels: int = 1) -> np.ndarray:
    """Inputs with structure (blobs of bright pixels on a dark ground), not uniform noise, so that
    a network's classes are not decided by noise-level differences."""
    rng = np.random.default_rng(seed)
    side = math.isqrt(size // channels)
    images = np.zeros((count * channels, side, side))
    yy, xx = np.mgrid[:side, :side]
    for image in images:
        for _ in range(3):
            cy, cx, r = rng.uniform(0, side), rng.uniform(0, side), rng.uniform(1, side / 3)
            image += 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.clip(images, 0, 255).astype(np.uint8).reshape(count, channels * side * side)


def test_int8_graph_structure():
    graph = quantize(sample_f32_graph(), pattern_inputs(50, 144, 0))
    ops = [node.op for node in graph.nodes]
    # REQUANTIZE input, conv, tanh lookup, subsample as conv, conv (masked) + fused relu, pools,
    # sigmoid lookup, flatten, linear + fused relu, linear; the final softmax dropped
    assert ops == [
        Op.REQUANTIZE, Op.CONV2D, Op.LOOKUP, Op.CONV2D, Op.CONV2D, Op.MAXPOOL2D, Op.AVGPOOL2D,
        Op.LOOKUP, Op.RESHAPE, Op.LINEAR, Op.LINEAR,
    ]  # fmt: skip
    assert graph.metadata["mode"] == "int8"
    assert graph.tensors[graph.input].dtype == DType.U8
    subsample = graph.nodes[3]
    assert subsample.attr(Attr.GROUPS) == 3
    assert graph.tensors[subsample.inputs[1]].dims == (2, 2, 1, 3)
    masked = graph.nodes[4]
    assert masked.input(5) is not None and masked.attr(Attr.ACT_MIN) == masked.attr(Attr.Y_ZP)
    for node in graph.nodes:
        if node.op in (Op.LINEAR, Op.CONV2D):
            w = graph.tensors[node.inputs[1]]
            assert w.dtype == DType.I8 and np.abs(w.data.astype(int)).max() <= 127
            assert len(w.scales) == w.dims[-1]
    out = graph.tensors[graph.output]
    assert out.dtype == DType.I8 and len(out.scales) == 1


def test_input_normalization_is_folded_exactly():
    """pixel / 255 - 1 lands on int8 exactly: pixel 0 -> -128, 255 -> 127 with scale 1/255."""
    net = Network((4,), [Linear(2)], 1 / 255, -1.0)
    graph = quantize(net.to_graph(net.init_parameters()), np.arange(256).reshape(64, 4))
    first = graph.nodes[0]
    assert first.op == Op.REQUANTIZE
    values = run(Graph(graph.tensors[:2], graph.nodes[:1], 0, 1), np.array([[0, 1, 254, 255]]))
    assert values.tolist() == [[-128, -127, 126, 127]]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_int8_agrees_with_f32(seed):
    """A small random LeNet-like network: the int8 classes equal the f32 ones on nearly all inputs
    and the dequantized logits stay close."""
    net = Network(
        (1, 12, 12),
        [Conv2D(4, 3, padding=1), Tanh(), Subsample(2), Conv2D(6, 3), ReLU(), Flatten(), Linear(16),
         Sigmoid(), Linear(5), Softmax()],
        1 / 255,
        -0.5,
    )  # fmt: skip
    f32 = net.to_graph(net.init_parameters(seed))
    without_softmax = Graph(f32.tensors, f32.nodes[:-1], f32.input, f32.nodes[-2].output)
    int8 = quantize(f32, pattern_inputs(300, 144, seed))
    test = pattern_inputs(300, 144, seed + 100)
    f32_logits = run(without_softmax, test)
    int8_out = run(int8, test)
    out = int8.tensors[int8.output]
    int8_logits = (int8_out.astype(float) - out.zero_point) * out.scales[0]
    assert np.mean(f32_logits.argmax(1) == int8_out.argmax(1)) >= 0.9
    spread = f32_logits.max() - f32_logits.min()
    assert np.abs(int8_logits - f32_logits).max() <= 0.1 * spread


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_every_calibration_method_agrees_with_f32(method):
    f32 = small_convnet().to_graph(small_convnet().init_parameters(7))
    int8 = quantize(f32, pattern_inputs(300, 144, 7), method)
    test = pattern_inputs(200, 144, 8)
    assert np.mean(run(f32, test).argmax(1) == run(int8, test).argmax(1)) >= 0.85


def test_calibration_methods():
    """Min / max keeps the extremes; the percentiles drop the 0.01 % at each end; the least-MSE
    range clips a Gaussian's tails (to about 4 sigma at 8 bits) but not a range with nothing to
    clip, and it never widens the min / max range."""
    rng = np.random.default_rng(0)
    outlier = np.concatenate([rng.uniform(0, 1, 100_000), [50.0]]).astype(np.float32)
    assert calibrated_range(outlier, "minmax") == (0.0, 50.0)
    low, high = calibrated_range(outlier, "percentile")
    assert 0 <= low < 0.01 and 0.99 < high < 1.0
    gaussian = rng.normal(0, 1, 100_000).astype(np.float32)
    low, high = calibrated_range(gaussian, "mse")
    assert -4.2 < low < -3.4 and 3.4 < high < 4.2 and high < gaussian.max()
    uniform = np.linspace(-1, 3, 10_000, dtype=np.float32)
    assert calibrated_range(uniform, "mse") == pytest.approx((-1.0, 3.0))
    with pytest.raises(ProverError, match="calibration method 'max'"):
        calibrate(
            small_convnet().to_graph(small_convnet().init_parameters(7)), pattern_inputs(2, 144, 1), "max"
        )


def test_small_convnet_agrees_with_f32():
    f32 = small_convnet().to_graph(small_convnet().init_parameters(7))
    int8 = quantize(f32, pattern_inputs(300, 144, 7))
    test = pattern_inputs(200, 144, 8)
    assert np.mean(run(f32, test).argmax(1) == run(int8, test).argmax(1)) >= 0.85


def test_unsupported_nodes_are_named():
    g = Graph()
    g.input = g.add_tensor("x", DType.U8, (4,))
    x = g.add_node(Op.DEQUANTIZE, [g.input], "xf", DType.F32, (4,), SCALE=f32_bits(1.0))
    g.output = g.add_node(Op.CLIP, [x], "clip", DType.F32, (4,), MIN_F=f32_bits(-1.0), MAX_F=f32_bits(1.0))
    with pytest.raises(ProverError, match="node 1 \\(CLIP\\): no int8 form"):
        quantize(g, np.zeros((1, 4), np.uint8))
    net = Network((4,), [Linear(3), Softmax(), Linear(2)])
    with pytest.raises(ProverError, match="no calibration inputs"):
        quantize(net.to_graph(net.init_parameters()), np.zeros((0, 4), np.uint8))


def test_subsample_lowering_matches_f32():
    """SUBSAMPLE as a depthwise conv: int8 output within a couple of quantization steps."""
    net = Network((2, 6, 6), [Subsample(2)], 1 / 255)
    params = {"0.coef": np.array([0.5, -2.0], np.float32), "0.bias": np.array([0.1, 0.3], np.float32)}
    f32 = net.to_graph(params)
    inputs = pattern_inputs(40, 72, 3, channels=2)
    int8 = quantize(f32, inputs)
    out = int8.tensors[int8.output]
    dequantized = (run(int8, inputs).astype(float) - out.zero_point) * out.scales[0]
    assert np.abs(dequantized - run(f32, inputs)).max() <= 2 * out.scales[0]
