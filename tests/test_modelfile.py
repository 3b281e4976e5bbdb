"""The .ggml reader and writer: round trips, and every kind of malformed file rejected with a
ModelFormatError naming the byte offset. Also the sample graphs other model tests use."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.errors import ProverError
from prover.model.graph import DType, Graph, Op, check_graph, f32_bits
from prover.model.modelfile import (
    HEADER_SIZE,
    ModelFormatError,
    load_model,
    read_model,
    save_model,
    write_model,
)
from prover.model.network import (
    AvgPool2D,
    Conv2D,
    Flatten,
    Linear,
    MaxPool2D,
    Network,
    ReLU,
    Sigmoid,
    Softmax,
    Subsample,
    Tanh,
)
from prover.model.quantize import quantize

C3_LIKE_MASK = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1], [1, 1, 1]], np.uint8)


def small_convnet() -> Network:
    """Every network layer kind on a 12x12 input."""
    return Network(
        (1, 12, 12),
        [
            Conv2D(3, 3, padding=1),
            Tanh(),
            Subsample(2),
            Conv2D(4, 3, mask=C3_LIKE_MASK),
            ReLU(),
            MaxPool2D(2, stride=1),
            AvgPool2D(2, padding=1),
            Sigmoid(),
            Flatten(),
            Linear(6),
            ReLU(),
            Linear(5),
            Softmax(),
        ],
        input_scale=1 / 255,
        input_offset=-0.5,
    )


def sample_f32_graph(seed: int = 0) -> Graph:
    net = small_convnet()
    return net.to_graph(net.init_parameters(seed), {"name": "sample", "answer": 42, "minus": -7, "pi": 3.5})


def sample_int8_graph(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    return quantize(sample_f32_graph(seed), rng.integers(0, 256, (64, 144), dtype=np.uint8))


def elementwise_graph() -> Graph:
    """The ops the network layers do not use: QUANTIZE, ADD, MUL, CLIP (f32 and int8), LOOKUP,
    REQUANTIZE of i8, DEQUANTIZE of i8 and a 2-D RESHAPE."""
    g = Graph(metadata={"name": "elementwise"})
    g.input = g.add_tensor("x", DType.U8, (4, 3))
    x = g.add_node(
        Op.DEQUANTIZE, [g.input], "xf", DType.F32, (4, 3), SCALE=f32_bits(0.1), OFFSET=f32_bits(-5.0)
    )
    half = g.add_tensor("half", DType.F32, (1,), [0.5])
    y = g.add_node(Op.MUL, [x, half], "mul", DType.F32, (4, 3))
    y = g.add_node(Op.ADD, [y, x], "add", DType.F32, (4, 3))
    y = g.add_node(Op.CLIP, [y], "clip", DType.F32, (4, 3), MIN_F=f32_bits(-3.0), MAX_F=f32_bits(3.0))
    q = g.add_node(Op.QUANTIZE, [y], "q", DType.I8, (4, 3), SCALE=f32_bits(0.05), ZP=3)
    table = g.add_tensor("table", DType.I8, (256,), np.arange(-128, 128)[::-1])
    q2 = g.add_node(Op.LOOKUP, [q, table], "lookup", DType.I8, (4, 3))
    q3 = g.add_node(Op.REQUANTIZE, [q2], "requant", DType.I8, (4, 3), X_ZP=1, Y_ZP=-2, MULT=1 << 30, SHIFT=1)
    attrs = dict(A_ZP=1, B_ZP=-2, Y_ZP=3, LEFT_SHIFT=20, A_MULT=1 << 30, A_SHIFT=0, B_MULT=1 << 30, B_SHIFT=0)
    q4 = g.add_node(Op.ADD, [q3, q2], "add8", DType.I8, (4, 3), Y_MULT=1 << 30, Y_SHIFT=-19, **attrs)
    q5 = g.add_node(Op.MUL, [q4, q3], "mul8", DType.I8, (4, 3), Y_MULT=1 << 30, Y_SHIFT=-6, ACT_MIN=-100)
    q6 = g.add_node(Op.CLIP, [q5], "clip8", DType.I8, (4, 3), ACT_MIN=-50, ACT_MAX=50)
    q7 = g.add_node(Op.RESHAPE, [q6], "flat", DType.I8, (12,))
    g.output = g.add_node(Op.DEQUANTIZE, [q7], "out", DType.F32, (12,), SCALE=f32_bits(0.25), ZP=-1)
    return g


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert (a.input, a.output, a.metadata) == (b.input, b.output, b.metadata)
    assert a.nodes == b.nodes
    assert len(a.tensors) == len(b.tensors)
    for ta, tb in zip(a.tensors, b.tensors, strict=True):
        assert (ta.name, ta.dtype, ta.dims, ta.zero_point) == (tb.name, tb.dtype, tb.dims, tb.zero_point)
        assert np.array_equal(np.float32(ta.scales), np.float32(tb.scales))
        assert (ta.data is None) == (tb.data is None)
        if ta.data is not None:
            assert ta.data.tobytes() == tb.data.tobytes()


@pytest.mark.parametrize("build", [sample_f32_graph, sample_int8_graph, elementwise_graph])
def test_round_trip(build):
    graph = build()
    data = write_model(graph)
    again = read_model(data)
    assert_same_graph(graph, again)
    assert write_model(again) == data


def test_layout_is_aligned_and_big_endian():
    graph = sample_f32_graph()
    data = write_model(graph)
    assert data[:8] == bytes.fromhex("67676d6c00000001")
    data_start = int.from_bytes(data[28:32], "big")
    assert data_start % 32 == 0
    weight = graph.tensors[2]  # 0.weight after pixels and input
    assert weight.name == "0.weight"
    raw = weight.data.astype(">f4").tobytes()
    at = data.index(raw)
    assert at % 32 == 0 and at >= data_start


def test_save_is_atomic_and_load_names_the_path(tmp_path):
    path = tmp_path / "m.ggml"
    save_model(sample_f32_graph(), path)
    assert_same_graph(load_model(path), sample_f32_graph())
    bad = Graph()
    with pytest.raises(ProverError):
        save_model(bad, tmp_path / "bad.ggml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ggml"]
    path.write_bytes(b"nope")
    with pytest.raises(ModelFormatError, match=r"m\.ggml: byte 0: bad magic"):
        load_model(path)
    with pytest.raises(ProverError, match="cannot read"):
        load_model(tmp_path / "missing.ggml")


@st.composite
def random_networks(draw):
    """Random small networks of every layer kind, with their parameters."""
    channels, size = draw(st.integers(1, 3)), draw(st.integers(6, 12))
    layers = []
    shape = (channels, size, size)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["conv", "pool", "subsample", "act"]))
        if kind == "conv":
            out = draw(st.integers(1, 4))
            mask = draw(st.one_of(st.none(), st.just(np.ones((out, shape[0]), np.uint8))))
            layers.append(
                Conv2D(
                    out, draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1)), 1, mask
                )
            )
        elif kind == "pool":
            layers.append(draw(st.sampled_from([MaxPool2D, AvgPool2D]))(2, draw(st.integers(1, 2))))
        elif kind == "subsample":
            layers.append(Subsample(2))
        else:
            layers.append(draw(st.sampled_from([ReLU, Tanh, Sigmoid]))())
        try:
            shape = Network(shape, [layers[-1]]).shapes()[-1]
        except ProverError:
            layers.pop()
    layers += [Flatten(), Linear(draw(st.integers(1, 8)))]
    layers += draw(st.sampled_from([[], [ReLU()], [Softmax()], [ReLU(), Linear(3)]]))
    net = Network((channels, size, size), layers, draw(st.floats(1e-3, 1.0)), draw(st.floats(-2, 2)))
    return net, net.init_parameters(draw(st.integers(0, 2**32 - 1)))


metadata_values = st.one_of(
    st.integers(-(2**31), 2**32 - 1), st.floats(width=32, allow_nan=False), st.text(max_size=20)
)


@settings(max_examples=60, deadline=None)
@given(random_networks(), st.dictionaries(st.text(max_size=12), metadata_values, max_size=4), st.booleans())
def test_round_trip_property(network_and_params, metadata, int8):
    net, params = network_and_params
    graph = net.to_graph(params, metadata)
    if int8:
        graph = quantize(graph, np.random.default_rng(0).integers(0, 256, (8, graph.tensors[0].count)))
    data = write_model(graph)
    again = read_model(data)
    assert_same_graph(graph, again)
    assert write_model(again) == data


# ---- malformed files: one ModelFormatError naming the offset and the problem ----


def tiny_graph() -> Graph:
    """pixels (4,) u8 -> DEQUANTIZE -> LINEAR (4 -> 2) with bias."""
    g = Graph(metadata={"name": "tiny"})
    g.input = g.add_tensor("pixels", DType.U8, (4,))
    x = g.add_node(Op.DEQUANTIZE, [g.input], "x", DType.F32, (4,), SCALE=f32_bits(1.0))
    w = g.add_tensor("w", DType.F32, (4, 2), np.arange(8))
    b = g.add_tensor("b", DType.F32, (2,), [1, 2])
    g.output = g.add_node(Op.LINEAR, [x, w, b], "y", DType.F32, (2,))
    return g


def u32_at(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack(">I", value & 0xFFFFFFFF) + data[offset + 4 :]


def tensor_table_offset(data: bytes, index: int) -> int:
    """Where tensor `index`'s entry starts (after the header and tiny_graph's one str metadata)."""
    pos = HEADER_SIZE
    key_len = int.from_bytes(data[pos : pos + 4], "big")
    pos += 4 + key_len + 4
    pos += 4 + int.from_bytes(data[pos : pos + 4], "big")
    for _ in range(index):
        pos += 4 + int.from_bytes(data[pos : pos + 4], "big")
        n_dims = int.from_bytes(data[pos + 4 : pos + 8], "big")
        pos += 8 + 4 * n_dims + 4
        n_scales = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4 + 4 * n_scales + 4
    return pos


def rejected(data: bytes, pattern: str, offset: int | None = None) -> None:
    with pytest.raises(ModelFormatError, match=pattern) as info:
        read_model(data)
    assert str(info.value).startswith(f"byte {info.value.offset}: ")
    if offset is not None:
        assert info.value.offset == offset


def unchecked(mutate) -> bytes:
    g = tiny_graph()
    mutate(g)
    return write_model(g, check=False)


GOOD = write_model(tiny_graph())


def test_header_errors():
    rejected(b"", "truncated", 0)
    rejected(GOOD[:20], "truncated")
    rejected(u32_at(GOOD, 0, 0x6C6D6767), "bad magic", 0)
    rejected(u32_at(GOOD, 4, 3), "unknown version 3", 4)
    rejected(u32_at(GOOD, 8, 5000), "over the limits", 8)
    rejected(u32_at(GOOD, 12, 4097), "over the limits", 8)
    rejected(u32_at(GOOD, 28, 33), "data_start 33 misaligned", 28)
    rejected(u32_at(GOOD, 28, len(GOOD) + 32), "past the end", 28)
    rejected(u32_at(GOOD, 28, 0), "inside the tables", 28)
    rejected(u32_at(GOOD, 20, 9), "graph input 9", 20)
    rejected(u32_at(GOOD, 24, 0), "never computed", 24)


def test_metadata_errors():
    rejected(u32_at(GOOD, HEADER_SIZE + 8, 7), "unknown value type 7")
    rejected(u32_at(GOOD, HEADER_SIZE, 300), "string of 300 bytes", HEADER_SIZE)
    bad_utf8 = GOOD[: HEADER_SIZE + 4] + b"\xff\xfe\xfd\xfc" + GOOD[HEADER_SIZE + 8 :]
    rejected(bad_utf8, "not UTF-8", HEADER_SIZE)
    twice = write_model(tiny_graph(), check=False)
    header = twice[:HEADER_SIZE]
    entry = twice[HEADER_SIZE : HEADER_SIZE + 4 + 4 + 4 + 4 + 4]  # "name", type 3, "tiny"
    body = u32_at(header, 8, 2) + entry + twice[HEADER_SIZE:]
    rejected(body, "repeated")


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        (1, 9, "unknown dtype 9"),
        (2, 0, "n_dims 0"),
        (2, 5, "n_dims 5"),
        (3, 0, "a zero dim"),
        (3, 0x80000000, ">= 2\\^31"),
    ],
)
def test_tensor_field_errors(field, value, pattern):
    start = tensor_table_offset(GOOD, 2)  # "w": name "w" (5 bytes), dtype, n_dims, dims...
    rejected(u32_at(GOOD, start + 5 + 4 * (field - 1), value), pattern)


def test_overflowing_dims():
    def huge(g: Graph) -> None:
        g.tensors[2].dims = (65536, 65536, 2)
        g.tensors[2].data = None

    rejected(unchecked(huge), ">= 2\\^31")


def test_data_errors():
    w_entry = tensor_table_offset(GOOD, 2)
    offset_field = w_entry + 5 + 4 + 4 + 8  # name, dtype, n_dims, dims (4, 2)
    data_offset = int.from_bytes(GOOD[offset_field : offset_field + 4], "big")
    rejected(u32_at(GOOD, offset_field, data_offset + 4), "misaligned", w_entry)
    rejected(u32_at(GOOD, offset_field, 0), "misaligned or before data_start", w_entry)
    rejected(GOOD[:-1], "truncated")
    b_entry = tensor_table_offset(GOOD, 3)
    rejected(u32_at(GOOD, b_entry + 5 + 4 + 4 + 4, data_offset), "overlaps", b_entry)
    stored_input = unchecked(lambda g: setattr(g.tensors[0], "data", np.zeros(4, np.uint8)))
    rejected(stored_input, "graph input tensor 0 has stored data", tensor_table_offset(stored_input, 0))


def test_node_errors():
    rejected(unchecked(lambda g: setattr(g.nodes[1], "op", 99)), "unknown op 99")
    rejected(unchecked(lambda g: g.nodes[1].inputs.append(7)), "input tensor 7 does not exist")
    rejected(unchecked(lambda g: g.nodes[1].inputs.extend([None] * 4)), "7 inputs \\(at most 6\\)")
    rejected(unchecked(lambda g: g.nodes[1].inputs.extend([None, None, 2])), "more than 5 inputs")
    rejected(unchecked(lambda g: setattr(g.nodes[1], "output", 9)), "output tensor 9 does not exist")
    rejected(unchecked(lambda g: g.nodes[1].inputs.__setitem__(1, None)), "required input is absent")
    rejected(unchecked(lambda g: g.nodes[1].attrs.__setitem__(99, 1)), "unknown or repeated attribute key 99")
    # cycle / order: the LINEAR before the DEQUANTIZE it reads
    rejected(unchecked(lambda g: g.nodes.reverse()), "input tensor 1 is neither .* topological order")
    rejected(unchecked(lambda g: setattr(g.nodes[1], "output", 1)), "output tensor 1 .* produced twice")
    rejected(unchecked(lambda g: setattr(g.nodes[1], "output", 2)), "output tensor 2 is stored")


def test_shape_and_dtype_errors():
    def w_dims(g: Graph) -> None:
        g.tensors[2].dims, g.tensors[2].data = (2, 4), g.tensors[2].data.reshape(4, 2)

    rejected(unchecked(w_dims), "W dims \\(2, 4\\) do not fit")
    rejected(unchecked(lambda g: setattr(g.tensors[4], "dims", (3,))), "output dims \\(3,\\)")
    rejected(unchecked(lambda g: setattr(g.tensors[4], "dtype", DType.I8)), "do not fit")
    rejected(unchecked(lambda g: setattr(g.tensors[1], "dtype", DType.I32)), "output dtype I32")


def test_error_offsets_point_at_the_bad_node():
    data = unchecked(lambda g: setattr(g.tensors[4], "dims", (3,)))
    with pytest.raises(ModelFormatError) as info:
        read_model(data)
    node_1 = data.index(struct.pack(">8I", Op.LINEAR, 3, 1, 2, 3, 1, 4, 0))  # op, inputs, output, attrs
    assert info.value.offset == node_1


def test_the_writer_refuses_invalid_graphs():
    g = tiny_graph()
    g.tensors[4].dims = (3,)
    with pytest.raises(ProverError, match="node 1 \\(LINEAR\\)"):
        write_model(g)
    g = tiny_graph()
    g.metadata["big"] = 2**40
    with pytest.raises(ProverError, match="not a u32"):
        check_graph(g)
