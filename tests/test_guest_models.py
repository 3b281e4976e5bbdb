"""Small .ggml models with random weights for the guest tests, written straight from
docs/model-format.md (an independent writer: the guest's C reader is checked against the spec, not
against one Python implementation), and the native guest's behaviour on them."""

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from prover.task.guest.native import GuestResult, NativeGuest, build_library

F32, I8, U8, I32 = 0, 1, 2, 3
LINEAR, CONV2D, MAXPOOL2D, AVGPOOL2D, SUBSAMPLE, RELU, TANH, SIGMOID = 1, 2, 3, 4, 5, 6, 7, 8
LOOKUP, RESHAPE, ADD, MUL, CLIP, SOFTMAX, QUANTIZE, DEQUANTIZE, REQUANTIZE = 9, 10, 11, 12, 13, 14, 15, 16, 17
STRIDE_H, STRIDE_W, PAD_TOP, PAD_LEFT, PAD_BOTTOM, PAD_RIGHT, GROUPS, KERNEL_H, KERNEL_W = range(1, 10)
X_ZP, Y_ZP, ACT_MIN, ACT_MAX, A_ZP, B_ZP, LEFT_SHIFT, A_MULT, A_SHIFT = range(10, 19)
B_MULT, B_SHIFT, Y_MULT, Y_SHIFT, MULT, SHIFT, SCALE, ZP, MIN_F, MAX_F, OFFSET = range(19, 30)
ROUNDING, W_ZP = 38, 39
NO_DATA = 0xFFFFFFFF
DTYPES = {F32: ">f4", I8: "i1", U8: "u1", I32: ">i4"}


def f32_bits(value: float) -> int:
    return struct.unpack(">i", struct.pack(">f", value))[0]


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">I", len(data)) + data


@dataclass
class Graph:
    """Tensors and nodes in file order; `tensor` returns the new tensor's index."""

    tensors: list[tuple[str, int, list[int], bytes | None]] = field(default_factory=list)
    nodes: list[tuple[int, list[int], int, dict[int, int]]] = field(default_factory=list)

    def tensor(self, name: str, dtype: int, dims: list[int], data: np.ndarray | None = None) -> int:
        stored = None if data is None else np.ascontiguousarray(data, DTYPES[dtype]).tobytes()
        self.tensors.append((name, dtype, dims, stored))
        return len(self.tensors) - 1

    def node(self, op: int, inputs: list[int], dtype: int, dims: list[int], **attrs: int) -> int:
        output = self.tensor(f"t{len(self.tensors)}", dtype, dims)
        keys = {name: value for name, value in globals().items() if name.isupper()}
        self.nodes.append((op, inputs, output, {keys[name]: value for name, value in attrs.items()}))
        return output

    def write(self, input_tensor: int, output_tensor: int, name: str = "test") -> bytes:
        meta = _str("name") + struct.pack(">I", 3) + _str(name)

        def tables(offsets: list[int]) -> bytes:
            out = b""
            for (tname, dtype, dims, _), offset in zip(self.tensors, offsets, strict=True):
                out += _str(tname) + struct.pack(f">II{len(dims)}IIIi", dtype, len(dims), *dims, offset, 0, 0)
            for op, inputs, output, attrs in self.nodes:
                out += struct.pack(f">II{len(inputs)}I", op, len(inputs), *inputs)
                out += struct.pack(">III", 1, output, len(attrs))
                out += b"".join(struct.pack(">Ii", key, value) for key, value in sorted(attrs.items()))
            return out

        head = 32 + len(meta) + len(tables([0] * len(self.tensors)))
        data_start = -(-head // 32) * 32
        offsets, data = [], b""
        for _, _, _, stored in self.tensors:
            if stored is None:
                offsets.append(NO_DATA)
                continue
            offsets.append(data_start + len(data) + -len(data) % 32)
            data += bytes(-len(data) % 32) + stored  # padding between tensors, none after the last
        header = struct.pack(
            ">8I",
            0x67676D6C,
            1,
            1,
            len(self.tensors),
            len(self.nodes),
            input_tensor,
            output_tensor,
            data_start,
        )
        body = header + meta + tables(offsets)
        return body + bytes(data_start - len(body)) + data


def _requant_vectors(rng: np.random.Generator, g: Graph, channels: int) -> tuple[int, int]:
    mult = g.tensor("mult", I32, [channels], rng.integers(1 << 30, 1 << 31, channels))
    shift = g.tensor("shift", I32, [channels], rng.integers(-12, -6, channels))
    return mult, shift


def int8_linear(rng: np.random.Generator, g: Graph, x: int, n_in: int, n_out: int, **attrs: int) -> int:
    w = g.tensor("w", I8, [n_in, n_out], rng.integers(-127, 128, (n_out, n_in)))
    bias = g.tensor("bias", I32, [n_out], rng.integers(-3000, 3000, n_out))
    mult, shift = _requant_vectors(rng, g, n_out)
    return g.node(LINEAR, [x, w, bias, mult, shift], I8, [n_out], X_ZP=-3, Y_ZP=5, **attrs)


def int8_mlp(seed: int = 0, hidden: int = 48) -> bytes:
    """784 u8 -> REQUANTIZE -> LINEAR (ReLU fused by ACT_MIN) -> LINEAR -> 10 int8 logits."""
    rng = np.random.default_rng(seed)
    g = Graph()
    pixels = g.tensor("pixels", U8, [784])
    x = g.node(REQUANTIZE, [pixels], I8, [784], X_ZP=0, Y_ZP=-128, MULT=1 << 30, SHIFT=0)
    h = int8_linear(rng, g, x, 784, hidden, ACT_MIN=5)
    return g.write(pixels, int8_linear(rng, g, h, hidden, 10))


def int8_convnet(seed: int = 0) -> bytes:
    """A small LeNet-like int8 graph touching every int8 op: padded and grouped convolutions, a
    connectivity mask, lookups, pools, ADD, MUL, CLIP, RELU and RESHAPE."""
    rng = np.random.default_rng(seed)
    g = Graph()
    pixels = g.tensor("pixels", U8, [28, 28, 1])
    x = g.node(REQUANTIZE, [pixels], I8, [28, 28, 1], X_ZP=0, Y_ZP=-128, MULT=1 << 30, SHIFT=0)

    def conv(x: int, cin: int, cout: int, k: int, out: int, groups: int = 1, **attrs: int) -> int:
        w = g.tensor(
            "w", I8, [k, k, cin // groups, cout], rng.integers(-127, 128, (cout, cin // groups, k, k))
        )
        bias = g.tensor("bias", I32, [cout], rng.integers(-2000, 2000, cout))
        mult, shift = _requant_vectors(rng, g, cout)
        inputs = [x, w, bias, mult, shift]
        if "mask" in attrs:
            inputs.append(attrs.pop("mask"))
        return g.node(CONV2D, inputs, I8, [out, out, cout], X_ZP=2, Y_ZP=-1, GROUPS=groups, **attrs)

    table = g.tensor("tanh", I8, [256], np.round(127 * np.tanh(np.arange(-128, 128) / 40)))
    c1 = conv(x, 1, 6, 5, 28, PAD_TOP=2, PAD_LEFT=2, PAD_BOTTOM=2, PAD_RIGHT=2)
    a1 = g.node(LOOKUP, [c1, table], I8, [28, 28, 6])
    s2 = conv(a1, 6, 6, 2, 14, groups=6, STRIDE_H=2, STRIDE_W=2)
    mask = g.tensor("mask", U8, [6, 16], rng.integers(0, 2, (16, 6)))
    c3 = conv(s2, 6, 16, 5, 10, mask=mask)
    p3 = g.node(
        MAXPOOL2D, [c3], I8, [5, 5, 16], KERNEL_H=3, KERNEL_W=3, STRIDE_H=2, STRIDE_W=2, PAD_TOP=1, PAD_LEFT=1
    )
    q3 = g.node(AVGPOOL2D, [c3], I8, [5, 5, 16], KERNEL_H=2, KERNEL_W=2, STRIDE_H=2, STRIDE_W=2)
    added = g.node(ADD, [p3, q3], I8, [5, 5, 16], A_ZP=-1, B_ZP=-1, Y_ZP=3, LEFT_SHIFT=20, A_MULT=1 << 30,
                   A_SHIFT=0, B_MULT=3 << 29, B_SHIFT=-1, Y_MULT=(1 << 30) + 12345, Y_SHIFT=-19)  # fmt: skip
    scale = g.tensor("scale", I8, [1], np.array([37]))
    product = g.node(MUL, [added, scale], I8, [5, 5, 16], A_ZP=3, B_ZP=0, Y_ZP=0, Y_MULT=1 << 30, Y_SHIFT=-4)
    clipped = g.node(CLIP, [product], I8, [5, 5, 16], ACT_MIN=-100, ACT_MAX=90)
    flat = g.node(RESHAPE, [g.node(RELU, [clipped], I8, [5, 5, 16], X_ZP=-7)], I8, [400])
    return g.write(pixels, int8_linear(rng, g, flat, 400, 10))


def int8_convnet_lenet5(seed: int = 0) -> bytes:
    """LeNet-5's int8 graph shape (as the quantizer lowers it): C1 5x5 padded, S2 as a depthwise 2x2
    stride-2 convolution, C3 with a 6x16 connectivity mask, S4, C5, F6, output; tanh by lookup."""
    rng = np.random.default_rng(seed)
    g = Graph()
    pixels = g.tensor("pixels", U8, [28, 28, 1])
    x = g.node(REQUANTIZE, [pixels], I8, [28, 28, 1], X_ZP=0, Y_ZP=-128, MULT=1 << 30, SHIFT=0)
    table = g.tensor("tanh", I8, [256], np.round(127 * np.tanh(np.arange(-128, 128) / 40)))

    def conv_tanh(x: int, cin: int, cout: int, k: int, out: int, groups: int = 1, **attrs: int) -> int:
        shape = (cout, cin // groups, k, k)
        w = g.tensor("w", I8, [k, k, cin // groups, cout], rng.integers(-127, 128, shape))
        bias = g.tensor("bias", I32, [cout], rng.integers(-2000, 2000, cout))
        inputs = [x, w, bias, *_requant_vectors(rng, g, cout)]
        if "mask" in attrs:
            inputs.append(attrs.pop("mask"))
        y = g.node(CONV2D, inputs, I8, [out, out, cout], X_ZP=2, Y_ZP=-1, GROUPS=groups, **attrs)
        return g.node(LOOKUP, [y, table], I8, [out, out, cout])

    pad = {"PAD_TOP": 2, "PAD_LEFT": 2, "PAD_BOTTOM": 2, "PAD_RIGHT": 2}
    c1 = conv_tanh(x, 1, 6, 5, 28, **pad)
    s2 = conv_tanh(c1, 6, 6, 2, 14, groups=6, STRIDE_H=2, STRIDE_W=2)
    c3 = conv_tanh(s2, 6, 16, 5, 10, mask=g.tensor("c3", U8, [6, 16], rng.random((16, 6)) < 0.6))
    s4 = conv_tanh(c3, 16, 16, 2, 5, groups=16, STRIDE_H=2, STRIDE_W=2)
    c5 = g.node(RESHAPE, [conv_tanh(s4, 16, 120, 5, 1)], I8, [120])
    f6 = g.node(LOOKUP, [int8_linear(rng, g, c5, 120, 84), table], I8, [84])
    return g.write(pixels, int8_linear(rng, g, f6, 84, 10))


def f32_mlp(seed: int = 0, hidden: int = 24, activation: int = RELU) -> bytes:
    """784 u8 -> DEQUANTIZE -> LINEAR -> activation -> LINEAR -> SOFTMAX, all f32."""
    rng = np.random.default_rng(seed)
    g = Graph()
    pixels = g.tensor("pixels", U8, [784])
    x = g.node(DEQUANTIZE, [pixels], F32, [784], SCALE=f32_bits(1 / 255), OFFSET=f32_bits(-0.5))
    w1 = g.tensor("w1", F32, [784, hidden], rng.normal(0, 0.05, (hidden, 784)))
    b1 = g.tensor("b1", F32, [hidden], rng.normal(0, 0.1, hidden))
    h = g.node(activation, [g.node(LINEAR, [x, w1, b1], F32, [hidden])], F32, [hidden])
    w2 = g.tensor("w2", F32, [hidden, 10], rng.normal(0, 0.3, (10, hidden)))
    b2 = g.tensor("b2", F32, [10], rng.normal(0, 0.1, 10))
    return g.write(pixels, g.node(SOFTMAX, [g.node(LINEAR, [h, w2, b2], F32, [10])], F32, [10]))


def f32_convnet(seed: int = 0) -> bytes:
    """f32 convolution (padded, masked), subsampling, pools, tanh, sigmoid, clip, add, mul and a
    QUANTIZE / DEQUANTIZE round trip."""
    rng = np.random.default_rng(seed)
    g = Graph()
    pixels = g.tensor("pixels", U8, [12, 12, 1])
    x = g.node(DEQUANTIZE, [pixels], F32, [12, 12, 1], SCALE=f32_bits(1 / 255), OFFSET=0)
    w = g.tensor("w", F32, [3, 3, 1, 4], rng.normal(0, 0.5, (4, 1, 3, 3)))
    c1 = g.node(CONV2D, [x, w, g.tensor("b", F32, [4], rng.normal(0, 0.1, 4))], F32, [12, 12, 4],
                PAD_TOP=1, PAD_LEFT=1, PAD_BOTTOM=1, PAD_RIGHT=1)  # fmt: skip
    t1 = g.node(TANH, [c1], F32, [12, 12, 4])
    coef, bias = (
        g.tensor("coef", F32, [4], rng.normal(1, 0.2, 4)),
        g.tensor("sb", F32, [4], rng.normal(0, 0.1, 4)),
    )
    s2 = g.node(SUBSAMPLE, [t1, coef, bias], F32, [6, 6, 4], KERNEL_H=2, KERNEL_W=2, STRIDE_H=2, STRIDE_W=2)
    mask = g.tensor("mask", U8, [4, 6], rng.integers(0, 2, (6, 4)))
    w3 = g.tensor("w3", F32, [3, 3, 4, 6], rng.normal(0, 0.3, (6, 4, 3, 3)))
    c3 = g.node(CONV2D, [s2, w3, NO_DATA, NO_DATA, NO_DATA, mask], F32, [4, 4, 6])
    sig = g.node(SIGMOID, [c3], F32, [4, 4, 6])
    mx = g.node(MAXPOOL2D, [sig], F32, [2, 2, 6], KERNEL_H=2, KERNEL_W=2, STRIDE_H=2, STRIDE_W=2)
    av = g.node(AVGPOOL2D, [sig], F32, [2, 2, 6], KERNEL_H=2, KERNEL_W=2, STRIDE_H=2, STRIDE_W=2)
    total = g.node(ADD, [mx, av], F32, [2, 2, 6])
    scaled = g.node(MUL, [total, g.tensor("k", F32, [1], np.array([1.5]))], F32, [2, 2, 6])
    clipped = g.node(CLIP, [scaled], F32, [2, 2, 6], MIN_F=f32_bits(0.2), MAX_F=f32_bits(2.5))
    q = g.node(QUANTIZE, [clipped], I8, [2, 2, 6], SCALE=f32_bits(0.02), ZP=-100)
    dq = g.node(DEQUANTIZE, [q], F32, [2, 2, 6], SCALE=f32_bits(0.02), ZP=-100)
    flat = g.node(RESHAPE, [dq], F32, [24])
    w4 = g.tensor("w4", F32, [24, 10], rng.normal(0, 0.5, (10, 24)))
    return g.write(pixels, g.node(LINEAR, [flat, w4], F32, [10]))


@pytest.fixture(scope="session")
def native_guest(tmp_path_factory: pytest.TempPathFactory) -> NativeGuest:
    return NativeGuest(build_library(tmp_path_factory.mktemp("native"), sanitize=True))


def images(count: int, size: int = 784, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for _ in range(count)]


def output_values(result: GuestResult, dtype: str) -> np.ndarray:
    return np.frombuffer(result.output[4:], dtype)


@pytest.mark.parametrize(
    "model", [int8_mlp(), int8_convnet(), int8_convnet_lenet5()], ids=["mlp", "convnet", "lenet5"]
)
def test_int8_models_run_and_report_the_argmax(native_guest: NativeGuest, model: bytes) -> None:
    size = 784
    for image in images(5, size):
        result = native_guest.run(model, image)
        assert result.exit_code == 0
        logits = output_values(result, "i1")
        assert logits.shape == (10,)
        assert result.predicted_class == int(np.argmax(logits))  # first index of the maximum


def test_f32_mlp_matches_numpy(native_guest: NativeGuest) -> None:
    for activation, function in [
        (RELU, lambda v: np.maximum(v, 0)),
        (TANH, np.tanh),
        (SIGMOID, lambda v: 1 / (1 + np.exp(-v))),
    ]:
        model = f32_mlp(activation=activation)
        rng = np.random.default_rng(0)  # the same draws as f32_mlp
        w1, b1 = rng.normal(0, 0.05, (24, 784)), rng.normal(0, 0.1, 24)
        w2, b2 = rng.normal(0, 0.3, (10, 24)), rng.normal(0, 0.1, 10)
        for image in images(5):
            x = np.frombuffer(image, np.uint8) / 255 - 0.5
            logits = w2 @ function(w1 @ x + b1) + b2
            expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            result = native_guest.run(model, image)
            assert result.exit_code == 0
            np.testing.assert_allclose(output_values(result, ">f4"), expected, atol=2e-6)
            assert result.predicted_class == int(np.argmax(expected))


def test_f32_convnet_runs(native_guest: NativeGuest) -> None:
    for image in images(3, 144):
        result = native_guest.run(f32_convnet(), image)
        assert result.exit_code == 0
        assert np.isfinite(output_values(result, ">f4")).all()


def test_input_of_the_wrong_size_is_refused(native_guest: NativeGuest) -> None:
    assert native_guest.run(int8_mlp(), bytes(783)).exit_code == 1  # ERR_INPUT_REGION


def test_exit_codes_match_the_documentation() -> None:
    """guest.h's enum, docs/guest.md's table and the CLI's names agree."""
    from prover.task.run import EXIT_CODES

    header = (Path(__file__).parent.parent / "prover/task/guest/guest.h").read_text()
    doc = (Path(__file__).parent.parent / "docs/guest.md").read_text()
    block = header.split("enum guest_status {")[1].split("};")[0]
    enum = {int(code): name for name, code in re.findall(r"^\s*(\w+) = (\d+),", block, re.MULTILINE)}
    assert enum[0] == "OK" and len(enum) >= 19
    for code, name in enum.items():
        assert EXIT_CODES[code] == name
        assert f"| {code} | {name} |" in doc
