"""The guest's int8 arithmetic against docs/arithmetic.md written out in Python integers (an
independent reading of the spec; the numpy engine is the other one), on random operands including
the edge cases of SRDHM, RDBPOT and MBQM."""

import numpy as np
from test_guest_models import (
    ADD,
    AVGPOOL2D,
    CONV2D,
    I8,
    I32,
    LINEAR,
    MUL,
    REQUANTIZE,
    RESHAPE,
    U8,
    Graph,
    images,
    native_guest,
)

from prover.model import engine
from prover.model.modelfile import read_model
from prover.task.guest.native import NativeGuest

__all__ = ["native_guest"]  # the fixture, imported for this module

INT32_MIN = -(1 << 31)


def wrap32(v: int) -> int:
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    quotient = abs(total) >> 31  # '/' truncates toward zero
    return quotient if total >= 0 else -quotient


def rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, m0: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(wrap32(x << left), m0), right)


def mbqm1(x: int, m0: int, shift: int) -> int:
    """TFLite's single rounding (ROUNDING 1)."""
    total = 31 - shift
    return wrap32((x * m0 + (1 << (total - 1))) >> total)


def clamp(v: int, lo: int = -128, hi: int = 127) -> int:
    return min(max(v, lo), hi)


def test_linear_and_requantize(native_guest: NativeGuest) -> None:
    rng = np.random.default_rng(3)
    g = Graph()
    pixels = g.tensor("pixels", U8, [64])
    x_mult, x_shift = int(rng.integers(1 << 30, 1 << 31)), -3
    x = g.node(REQUANTIZE, [pixels], I8, [64], X_ZP=17, Y_ZP=-9, MULT=x_mult, SHIFT=x_shift)
    weights = rng.integers(-127, 128, (12, 64))
    bias = rng.integers(-(1 << 20), 1 << 20, 12)
    mult = rng.integers(1 << 30, 1 << 31, 12)
    shift = np.array([-31, -20, -9, -1, 0, 1, 5, -12, -7, -8, -3, 2])
    inputs = [x, g.tensor("w", I8, [64, 12], weights), g.tensor("b", I32, [12], bias)]
    inputs += [g.tensor("m", I32, [12], mult), g.tensor("s", I32, [12], shift)]
    y = g.node(LINEAR, inputs, I8, [12], X_ZP=-5, Y_ZP=11, ACT_MIN=-100, ACT_MAX=120)
    model = g.write(pixels, y)
    for image in images(20, 64, seed=4):
        xs = [clamp(-9 + mbqm(p - 17, x_mult, x_shift)) for p in image]
        expected = []
        for o in range(12):
            acc = wrap32(int(bias[o]) + sum((xi + 5) * int(w) for xi, w in zip(xs, weights[o], strict=True)))
            expected.append(clamp(wrap32(11 + mbqm(acc, int(mult[o]), int(shift[o]))), -100, 120))
        result = native_guest.run(model, image)
        assert result.exit_code == 0
        assert np.frombuffer(result.output[4:], "i1").tolist() == expected


def test_conv_avgpool_add_mul(native_guest: NativeGuest) -> None:
    rng = np.random.default_rng(5)
    g = Graph()
    pixels = g.tensor("pixels", U8, [6, 6, 2])
    x = g.node(REQUANTIZE, [pixels], I8, [6, 6, 2], X_ZP=128, Y_ZP=0, MULT=1 << 30, SHIFT=1)
    w = rng.integers(-127, 128, (4, 1, 3, 3))  # groups = 2: cin 2, cout 4, one input channel each
    bias = rng.integers(-500, 500, 4)
    mult, shift = rng.integers(1 << 30, 1 << 31, 4), np.array([-6, -7, -5, -8])
    inputs = [x, g.tensor("w", I8, [3, 3, 1, 4], w), g.tensor("b", I32, [4], bias)]
    inputs += [g.tensor("m", I32, [4], mult), g.tensor("s", I32, [4], shift)]
    conv = g.node(CONV2D, inputs, I8, [3, 3, 4], X_ZP=3, Y_ZP=-2, GROUPS=2, STRIDE_H=2, STRIDE_W=2,
                  PAD_TOP=1, PAD_LEFT=0, PAD_BOTTOM=0, PAD_RIGHT=1)  # fmt: skip
    pooled = g.node(AVGPOOL2D, [conv], I8, [2, 2, 4], KERNEL_H=2, KERNEL_W=2, STRIDE_H=2, STRIDE_W=2,
                    PAD_TOP=1, PAD_LEFT=1)  # fmt: skip
    add = dict(A_ZP=-2, B_ZP=4, Y_ZP=1, LEFT_SHIFT=20, A_MULT=1518500250, A_SHIFT=-1, B_MULT=1 << 30,
               B_SHIFT=0, Y_MULT=1717986918, Y_SHIFT=-20)  # fmt: skip
    summed = g.node(ADD, [pooled, pooled], I8, [2, 2, 4], **add)
    product = g.node(
        MUL, [summed, pooled], I8, [2, 2, 4], A_ZP=1, B_ZP=-3, Y_ZP=-1, Y_MULT=1 << 30, Y_SHIFT=-6
    )
    model = g.write(pixels, product)

    for image in images(20, 72, seed=6):
        px = np.frombuffer(image, np.uint8).reshape(2, 6, 6)  # [c][h][w]
        xq = [[[clamp(mbqm(int(v) - 128, 1 << 30, 1)) for v in row] for row in ch] for ch in px]
        conv_out = np.zeros((4, 3, 3), int)
        for co in range(4):
            ci = co // 2
            for oy in range(3):
                for ox in range(3):
                    acc = int(bias[co])
                    for r in range(3):
                        for s in range(3):
                            iy, ix = oy * 2 + r - 1, ox * 2 + s
                            if 0 <= iy < 6 and 0 <= ix < 6:
                                acc += (xq[ci][iy][ix] - 3) * int(w[co][0][r][s])
                    conv_out[co, oy, ox] = clamp(
                        wrap32(-2 + mbqm(wrap32(acc), int(mult[co]), int(shift[co])))
                    )
        pool = np.zeros((4, 2, 2), int)
        for c in range(4):
            for oy in range(2):
                for ox in range(2):
                    cells = [conv_out[c, iy, ix] for iy in (2 * oy - 1, 2 * oy) for ix in (2 * ox - 1, 2 * ox)
                             if 0 <= iy < 3 and 0 <= ix < 3]  # fmt: skip
                    s, n = int(sum(cells)), len(cells)
                    pool[c, oy, ox] = int((s + n // 2) / n) if s >= 0 else -int((-s + n // 2) / n)
        expected = []
        for v in pool.flatten():
            a2, b2 = (int(v) + 2) << 20, (int(v) - 4) << 20
            total = mbqm(a2, add["A_MULT"], add["A_SHIFT"]) + mbqm(b2, add["B_MULT"], add["B_SHIFT"])
            sum_q = clamp(1 + mbqm(total, add["Y_MULT"], add["Y_SHIFT"]))
            expected.append(clamp(-1 + mbqm((sum_q - 1) * (int(v) + 3), 1 << 30, -6)))
        result = native_guest.run(model, image)
        assert result.exit_code == 0
        assert np.frombuffer(result.output[4:], "i1").tolist() == expected


def test_srdhm_and_rdbpot_edge_cases() -> None:
    """The reference above, on the cases the spec singles out, so a wrong reference fails too."""
    assert srdhm(INT32_MIN, INT32_MIN) == (1 << 31) - 1
    assert srdhm(1 << 30, 1 << 30) == 1 << 29
    assert srdhm(-3, 1 << 30) == -1  # (-3 * 2^30 + 1 - 2^30) / 2^31 = -1.99.. truncates to -1
    assert rdbpot(5, 1) == 3 and rdbpot(-5, 1) == -3 and rdbpot(-4, 1) == -2 and rdbpot(7, 0) == 7
    assert mbqm(100, 1 << 30, -1) == 25


def test_single_rounding_and_weight_zero_point(native_guest: NativeGuest) -> None:
    """ROUNDING 1 (MBQM1) in REQUANTIZE, LINEAR and CONV2D, and a weight zero point W_ZP in LINEAR
    and CONV2D (padded, grouped), in the guest and the numpy engine, against this page's Python."""
    rng = np.random.default_rng(8)
    g = Graph()
    pixels = g.tensor("pixels", U8, [5, 5, 2])
    x_mult = int(rng.integers(1 << 30, 1 << 31))
    x = g.node(REQUANTIZE, [pixels], I8, [5, 5, 2], X_ZP=120, Y_ZP=-3, MULT=x_mult, SHIFT=0, ROUNDING=1)
    w = rng.integers(-128, 128, (4, 1, 3, 3))  # groups = 2: two output channels per input channel
    bias = rng.integers(-3000, 3000, 4)
    mult, shift = rng.integers(1 << 30, 1 << 31, 4), np.array([-31, -9, 0, 30])
    inputs = [x, g.tensor("w", I8, [3, 3, 1, 4], w), g.tensor("b", I32, [4], bias)]
    inputs += [g.tensor("m", I32, [4], mult), g.tensor("s", I32, [4], shift)]
    conv = g.node(CONV2D, inputs, I8, [5, 5, 4], X_ZP=-6, Y_ZP=4, W_ZP=-37, ROUNDING=1, GROUPS=2,
                  PAD_TOP=1, PAD_LEFT=1, PAD_BOTTOM=1, PAD_RIGHT=1, ACT_MIN=-90)  # fmt: skip
    fc_w = rng.integers(-128, 128, (3, 100))
    fc_b = rng.integers(-(1 << 16), 1 << 16, 3)
    fc_m, fc_s = rng.integers(1 << 30, 1 << 31, 3), np.array([-12, -15, 2])
    flat = g.node(RESHAPE, [conv], I8, [100])
    fc = [flat, g.tensor("fw", I8, [100, 3], fc_w), g.tensor("fb", I32, [3], fc_b)]
    fc += [g.tensor("fm", I32, [3], fc_m), g.tensor("fs", I32, [3], fc_s)]
    y = g.node(LINEAR, fc, I8, [3], X_ZP=7, Y_ZP=-2, W_ZP=100, ROUNDING=1)
    model = g.write(pixels, y)
    graph = read_model(model)

    for image in images(20, 50, seed=9):
        px = np.frombuffer(image, np.uint8).reshape(2, 5, 5)
        xq = [[[clamp(-3 + mbqm1(int(v) - 120, x_mult, 0)) for v in row] for row in ch] for ch in px]
        conv_out = []
        for co in range(4):
            for oy in range(5):
                for ox in range(5):
                    acc = int(bias[co])
                    for r in range(3):
                        for s in range(3):
                            iy, ix = oy + r - 1, ox + s - 1
                            if 0 <= iy < 5 and 0 <= ix < 5:
                                acc += (xq[co // 2][iy][ix] + 6) * (int(w[co][0][r][s]) + 37)
                    conv_out.append(clamp(wrap32(4 + mbqm1(wrap32(acc), int(mult[co]), int(shift[co]))), -90))
        expected = []
        for o in range(3):
            acc = wrap32(
                int(fc_b[o]) + sum((v - 7) * (int(k) - 100) for v, k in zip(conv_out, fc_w[o], strict=True))
            )
            expected.append(clamp(wrap32(-2 + mbqm1(acc, int(fc_m[o]), int(fc_s[o])))))
        result = native_guest.run(model, image)
        assert result.exit_code == 0
        assert np.frombuffer(result.output[4:], "i1").tolist() == expected
        assert engine.run(graph, np.frombuffer(image, np.uint8)[None])[0].tolist() == expected


def test_single_rounding_edge_cases() -> None:
    """MBQM1 rounds the exact product once, half up; MBQM can differ just below a half."""
    m0, shift = 1 << 30, -1  # x / 4
    assert [mbqm1(x, m0, shift) for x in (2, 6, -2, -6, 5, -5)] == [1, 2, 0, -1, 1, -1]
    # 5948.4922 (x * M0 * 2^(shift - 31)): rounded twice (to 31 fraction bits, then half away from
    # zero) 5949, rounded once 5948 (LiteRT's FULLY_CONNECTED gives the latter)
    assert (mbqm(260948, 1566508543, -5), mbqm1(260948, 1566508543, -5)) == (5949, 5948)
    assert mbqm1(-478156, 1594475899, -5) == -11094  # -11094.4998
    assert mbqm1((1 << 31) - 1, (1 << 31) - 1, 30) == wrap32((((1 << 31) - 1) ** 2 + 1) >> 1)  # wraps
    for x, m, s in [(123456, 1 << 30, 30), (-(1 << 31), (1 << 31) - 1, -31), (-7, 1 << 30, -2)]:
        assert int(engine.mbqm(x, m, s, 1)) == mbqm1(x, m, s)
