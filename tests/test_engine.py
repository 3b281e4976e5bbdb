"""The reference engine: the int8 primitives against a slow pure-Python reference of
docs/arithmetic.md, whole graphs against the guest's C interpreter (bit for bit in int8), and the
f32 ops against direct loops."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_modelfile import elementwise_graph, sample_f32_graph, sample_int8_graph

from prover.errors import ProverError
from prover.model.engine import LINEAR_CHUNK, blas_linear, mbqm, rdbpot, run, srdhm, wrap32
from prover.model.graph import DType, Graph, Op, f32_bits
from prover.model.modelfile import write_model
from prover.task.guest.native import NativeGuest, build_library

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
int32s = st.integers(INT32_MIN, INT32_MAX)


def c_div(a: int, b: int) -> int:
    """C's truncating integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def to_int32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def ref_srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    return to_int32(c_div(ab + nudge, 2**31))


def ref_rdbpot(x: int, e: int) -> int:
    mask = 2**e - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def ref_mbqm(x: int, m0: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbpot(ref_srdhm(to_int32(x * 2**left), m0), right)


EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, INT32_MAX - 1, INT32_MAX]


def test_primitives_on_edge_cases():
    pairs = [(a, b) for a in EDGES for b in EDGES]
    a, b = np.array(pairs).T
    assert srdhm(a, b).tolist() == [ref_srdhm(x, y) for x, y in pairs]
    assert srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    for e in range(32):
        assert rdbpot(np.array(EDGES), e).tolist() == [ref_rdbpot(x, e) for x in EDGES]
    # ties: -3 / 2 = -1.5 rounds away from zero to -2; 5 / 2 = 2.5 to 3; -5 / 4 = -1.25 to -1
    assert rdbpot(np.array([-3, 3, 5, -5, -6]), np.array([1, 1, 1, 2, 2])).tolist() == [-2, 2, 3, -1, -2]
    for shift in (-31, -5, 0, 1, 30, 31):
        for m0 in (0, 2**30, INT32_MAX):
            assert mbqm(np.array(EDGES), m0, shift).tolist() == [ref_mbqm(x, m0, shift) for x in EDGES]
    assert wrap32(np.array([2**31, -(2**31) - 1, 2**32 + 5])).tolist() == [INT32_MIN, INT32_MAX, 5]


@settings(max_examples=300, deadline=None)
@given(int32s, int32s, st.integers(-31, 31))
def test_primitives_match_the_reference(x, m0, shift):
    assert srdhm(np.array([x]), m0)[0] == ref_srdhm(x, m0)
    assert rdbpot(np.array([x]), abs(shift))[0] == ref_rdbpot(x, abs(shift))
    assert mbqm(np.array([x]), m0, shift)[0] == ref_mbqm(x, m0, shift)


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> NativeGuest:
    return NativeGuest(build_library(tmp_path_factory.mktemp("guest")))


def guest_outputs(guest: NativeGuest, graph: Graph, batch: np.ndarray) -> list[np.ndarray]:
    model = write_model(graph)
    out = graph.tensors[graph.output]
    results = []
    for one in batch:
        result = guest.run(
            model, one.astype(graph.tensors[graph.input].dtype.numpy.newbyteorder(">")).tobytes()
        )
        assert result.exit_code == 0
        values = np.frombuffer(result.output[4:], out.dtype.numpy.newbyteorder(">"))
        assert result.predicted_class == int(np.argmax(values))
        results.append(values)
    return results


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_graphs_equal_the_guest_bit_for_bit(guest, seed):
    graph = sample_int8_graph(seed)
    batch = np.random.default_rng(seed).integers(0, 256, (40, 144), dtype=np.uint8)
    ours = run(graph, batch)
    assert ours.dtype == np.int8
    for mine, theirs in zip(ours, guest_outputs(guest, graph, batch), strict=True):
        assert np.array_equal(mine, theirs)


def test_elementwise_ops_equal_the_guest(guest):
    graph = elementwise_graph()
    batch = np.random.default_rng(0).integers(0, 256, (30, 12), dtype=np.uint8)
    for mine, theirs in zip(run(graph, batch), guest_outputs(guest, graph, batch), strict=True):
        assert np.array_equal(mine, theirs)


def test_f32_graph_agrees_with_the_guest(guest):
    graph = sample_f32_graph(4)
    batch = np.random.default_rng(4).integers(0, 256, (20, 144), dtype=np.uint8)
    for mine, theirs in zip(run(graph, batch), guest_outputs(guest, graph, batch), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def naive_conv(x, w, bias, stride, pads, groups, mask):
    """Direct loops over (C, H, W) in float64."""
    cin, height, width = x.shape
    cout, cin_group, kh, kw = w.shape
    top, left, bottom, right = pads
    padded = np.zeros((cin, height + top + bottom, width + left + right))
    padded[:, top : top + height, left : left + width] = x
    oh = (padded.shape[1] - kh) // stride[0] + 1
    ow = (padded.shape[2] - kw) // stride[1] + 1
    out = np.zeros((cout, oh, ow))
    for co in range(cout):
        group = co // (cout // groups)
        for ci in range(cin_group):
            c = group * cin_group + ci
            if mask is not None and mask[co, c] != 1:
                continue
            for i in range(oh):
                for j in range(ow):
                    window = padded[c, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw]
                    out[co, i, j] += (window * w[co, ci]).sum()
        out[co] += bias[co]
    return out


def test_f32_conv_matches_direct_loops():
    rng = np.random.default_rng(0)
    g = Graph()
    g.input = g.add_tensor("x", DType.U8, (7, 6, 4))
    x = g.add_node(Op.DEQUANTIZE, [g.input], "xf", DType.F32, (7, 6, 4), SCALE=f32_bits(0.01))
    w = rng.normal(size=(6, 2, 3, 2)).astype(np.float32)
    w[0, 0, 0, 0] = np.nan  # masked out below: takes no part, as in the guest
    bias = rng.normal(size=6).astype(np.float32)
    mask = rng.integers(0, 2, (6, 4)).astype(np.uint8)
    mask[0, 0] = 0
    inputs = [x, g.add_tensor("w", DType.F32, (2, 3, 2, 6), w), g.add_tensor("b", DType.F32, (6,), bias)]
    inputs += [None, None, g.add_tensor("mask", DType.U8, (4, 6), mask)]
    attrs = dict(STRIDE_H=2, STRIDE_W=1, PAD_TOP=1, PAD_LEFT=0, PAD_BOTTOM=2, PAD_RIGHT=1, GROUPS=2)
    g.output = g.add_node(Op.CONV2D, inputs, "y", DType.F32, (7, 4, 6), **attrs)
    pixels = rng.integers(0, 256, (3, 4 * 6 * 7), dtype=np.uint8)
    ours = run(g, pixels).reshape(3, 6, 4, 7)
    for b in range(3):
        xf = pixels[b].reshape(4, 6, 7).astype(np.float32) * np.float32(0.01)
        expected = naive_conv(xf, w, bias, (2, 1), (1, 0, 2, 1), 2, mask)
        np.testing.assert_allclose(ours[b], expected, rtol=1e-5, atol=1e-5)


def test_int8_pools_round_half_away_from_zero():
    g = Graph()
    g.input = g.add_tensor("x", DType.I8, (3, 1, 1))
    g.output = g.add_node(Op.AVGPOOL2D, [g.input], "y", DType.I8, (2, 1, 1), KERNEL_H=1, KERNEL_W=2)
    # windows: (1, 2) -> 1.5 -> 2; (2, -5) -> -1.5 -> -2
    assert run(g, np.array([[1, 2, -5]])).tolist() == [[2, -2]]


def test_batches_equal_single_runs():
    graph = sample_int8_graph(5)
    batch = np.random.default_rng(5).integers(0, 256, (9, 144), dtype=np.uint8)
    together = run(graph, batch)
    assert all(np.array_equal(together[i], run(graph, batch[i])[0]) for i in range(9))


def test_bad_inputs_and_parameters():
    graph = sample_int8_graph()
    with pytest.raises(ProverError, match="not a batch of 144-value inputs"):
        run(graph, np.zeros(100, np.uint8))
    linear = next(n for n in graph.nodes if n.op == Op.LINEAR)
    graph.tensors[linear.inputs[4]].data[:] = 40
    with pytest.raises(ProverError, match=r"shift outside -31\.\.31"):
        run(graph, np.zeros(144, np.uint8))


@pytest.mark.parametrize(
    ("x_max", "w_zp", "inputs"),
    [(255, 0, 1000), (255, -128, 300), (2**20, 0, 50), (2**31 - 1, 127, 3000)],
    ids=["f32-blocks", "f32-narrow", "f64", "int64"],
)
def test_blas_linear_is_exact_in_every_regime(x_max: int, w_zp: int, inputs: int) -> None:
    """Extreme operands (every term at the bound, alternating signs and all one sign): the chunked
    float32 / float64 / int64 paths give the int64 product exactly."""
    rng = np.random.default_rng(inputs)
    rows = LINEAR_CHUNK // inputs + 3  # more than one chunk of rows
    w = rng.integers(-128, 128, (rows, inputs), dtype=np.int8)
    w[0], w[1] = -128, 127
    x = rng.integers(-x_max, x_max + 1, (2, 3, inputs)).astype(np.int64)
    x[0, 0] = -x_max
    want = x @ (w.astype(np.int64) - w_zp).T
    assert np.array_equal(blas_linear(x, w, w_zp), want)
