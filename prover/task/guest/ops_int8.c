/*
 * int8 kernels, bit-exact with the numpy engine (docs/arithmetic.md). int32 arithmetic that may
 * wrap is done in u32 (well defined in C) and converted back; '>>' on a negative i32 is an
 * arithmetic shift with both compilers used here (gcc and clang define it so).
 */
#include "guest.h"

static i32 srdhm(i32 a, i32 b) {
    if (a == b && a == (i32)0x80000000u) return 0x7FFFFFFF;
    i64 ab = (i64)a * (i64)b;
    i64 v = ab + (ab >= 0 ? (1 << 30) : 1 - (1 << 30));
    /* Truncating division by 2^31 as a shift: round a negative value toward zero first. This avoids
     * a call to the 64-bit division routine. */
    if (v < 0) v += ((i64)1 << 31) - 1;
    return (i32)(v >> 31);
}

static i32 rdbpot(i32 x, u32 exponent) {
    i32 mask = (i32)((1u << exponent) - 1);
    i32 remainder = x & mask;
    i32 threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + (remainder > threshold);
}

/* Multiply by the quantized multiplier M0 * 2^(shift - 31); shift in [-31, 31] (checked). */
static i32 mbqm(i32 x, i32 m0, i32 shift) {
    u32 left = shift > 0 ? (u32)shift : 0;
    u32 right = shift < 0 ? (u32)-shift : 0;
    return rdbpot(srdhm((i32)((u32)x << left), m0), right);
}

/* TFLite's single rounding (ROUNDING 1): (x * M0 + 2^(30 - shift)) >> (31 - shift) in 64 bits, the
 * result wrapped to 32; shift in [-31, 30] (checked). Computed as ((p >> (total - 1)) + 1) >> 1, the
 * same value: adding the constant to the product would compile to `madd`, which the VM lacks. */
static i32 mbqm_single(i32 x, i32 m0, i32 shift) {
    u32 total = (u32)(31 - shift);
    i64 halves = ((i64)x * (i64)m0) >> (total - 1);
    return (i32)(u32)(u64)((halves + 1) >> 1);
}

static i32 mbqm_rounded(i32 x, i32 m0, i32 shift, i32 rounding) {
    return rounding ? mbqm_single(x, m0, shift) : mbqm(x, m0, shift);
}

static i32 wrap_sub(i32 a, i32 b) { return (i32)((u32)a - (u32)b); }
static i32 wrap_add(i32 a, i32 b) { return (i32)((u32)a + (u32)b); }

static const i8 *i8_data(const tensor_t *t) { return (const i8 *)t->data; }

/* The per-channel (or per-tensor) requantization of LINEAR and CONV2D. */
typedef struct {
    const tensor_t *mult, *shift;
    i32 y_zp, act_min, act_max, rounding;
} requant_t;

typedef struct {
    i32 m0, shift;
} multiplier_t;

static int requant_init(requant_t *q, const tensor_t *mult, const tensor_t *shift, const node_t *node) {
    for (u32 c = 0; c < shift->count; c++) {
        i32 s = load_i32(shift->data + 4 * c);
        if (s < -31 || s > 31 - node->attrs[A_ROUNDING]) return ERR_QUANT_PARAM;
    }
    q->mult = mult;
    q->shift = shift;
    q->y_zp = node->attrs[A_Y_ZP];
    q->act_min = node->attrs[A_ACT_MIN];
    q->act_max = node->attrs[A_ACT_MAX];
    q->rounding = node->attrs[A_ROUNDING];
    return OK;
}

static multiplier_t channel_multiplier(const requant_t *q, u32 channel) {
    u32 c = q->mult->count == 1 ? 0 : channel;
    multiplier_t m = {load_i32(q->mult->data + 4 * c), load_i32(q->shift->data + 4 * c)};
    return m;
}

static u8 requant(const requant_t *q, multiplier_t m, u32 acc) {
    i32 scaled = mbqm_rounded((i32)acc, m.m0, m.shift, q->rounding);
    return (u8)clamp_i32(wrap_add(q->y_zp, scaled), q->act_min, q->act_max);
}

/* The inner loops of LINEAR and CONV2D, where nearly all VM steps of an int8 inference go:
 * acc[k] += sum_i x[i] * w_k[i] (wrapping) for four weight rows w_k = w + k * stride at once, so
 * each x[i] is loaded once for four products (about 3.6 instructions per term), and the same for
 * one row. */
static void dot4(const i32 *x, const i8 *w, u32 stride, u32 n, u32 acc[4]) {
    const i8 *w0 = w, *w1 = w + stride, *w2 = w + 2 * stride, *w3 = w + 3 * stride;
    u32 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const i32 *end4 = x + (n & ~3u), *end = x + n;
    for (; x != end4; x += 4, w0 += 4, w1 += 4, w2 += 4, w3 += 4)
        for (u32 i = 0; i < 4; i++) { /* unrolled by the compiler */
            u32 v = (u32)x[i];
            a0 += v * (u32)w0[i];
            a1 += v * (u32)w1[i];
            a2 += v * (u32)w2[i];
            a3 += v * (u32)w3[i];
        }
    for (; x != end; x++, w0++, w1++, w2++, w3++) {
        u32 v = (u32)*x;
        a0 += v * (u32)*w0;
        a1 += v * (u32)*w1;
        a2 += v * (u32)*w2;
        a3 += v * (u32)*w3;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static u32 dot(const i32 *x, const i8 *w, u32 n) {
    u32 acc = 0;
    const i32 *end4 = x + (n & ~3u), *end = x + n;
    for (; x != end4; x += 4, w += 4)
        acc += (u32)x[0] * (u32)w[0] + (u32)x[1] * (u32)w[1] + (u32)x[2] * (u32)w[2] + (u32)x[3] * (u32)w[3];
    for (; x != end; x++, w++) acc += (u32)*x * (u32)*w;
    return acc;
}

static u32 sum(const i32 *x, u32 n) {
    u32 total = 0;
    for (u32 i = 0; i < n; i++) total += (u32)x[i];
    return total;
}

static const tensor_t *operand(const model_t *m, const node_t *node, u32 i) {
    return node->inputs[i] == NONE ? 0 : &m->tensors[node->inputs[i]];
}

/* acc[o] = bias[o] + sum_i (x[i] - X_ZP) * (W[o][i] - W_ZP): x is centred once into int32 so that
 * the inner loop is a plain dot product; a weight zero point takes W_ZP * sum_i (x[i] - X_ZP) off
 * each accumulator (the same value modulo 2^32). */
static int linear(const model_t *m, const node_t *node, arena_t *scratch) {
    const tensor_t *x = operand(m, node, 0), *w = operand(m, node, 1), *bias = operand(m, node, 2);
    tensor_t *y = &m->tensors[node->output];
    requant_t q;
    int err = requant_init(&q, operand(m, node, 3), operand(m, node, 4), node);
    if (err) return err;
    u32 in = w->dims[0], out = w->dims[1], n = x->count / in;
    i32 *xc = arena_alloc(scratch, 4 * in);
    if (!xc) return ERR_OUT_OF_MEMORY;
    for (u32 b = 0; b < n; b++) {
        const i8 *xb = i8_data(x) + b * in;
        for (u32 i = 0; i < in; i++) xc[i] = wrap_sub(xb[i], node->attrs[A_X_ZP]);
        u32 start = node->attrs[A_W_ZP] ? 0 - (u32)node->attrs[A_W_ZP] * sum(xc, in) : 0;
        u8 *yb = y->data + b * out;
        u32 o = 0;
        for (; o + 4 <= out; o += 4) {
            u32 acc[4];
            for (u32 k = 0; k < 4; k++) acc[k] = start + (bias ? load_u32(bias->data + 4 * (o + k)) : 0);
            dot4(xc, i8_data(w) + o * in, in, in, acc);
            for (u32 k = 0; k < 4; k++) yb[o + k] = requant(&q, channel_multiplier(&q, o + k), acc[k]);
        }
        for (; o < out; o++) {
            u32 acc = start + (bias ? load_u32(bias->data + 4 * o) : 0) + dot(xc, i8_data(w) + o * in, in);
            yb[o] = requant(&q, channel_multiplier(&q, o), acc);
        }
    }
    return OK;
}

/* CONV2D as a matrix product (im2col): the input is centred once into a zero-padded int32 buffer
 * of (x - X_ZP), so padded positions contribute nothing, as the spec requires; each group's
 * windows are then copied into rows of `patches` and every output is one long dot product with
 * the output channel's weights. A connectivity mask becomes zero weights in a per-channel copy
 * (a zero term adds nothing). A weight zero point takes W_ZP * (the patch's sum) off each
 * accumulator, as in LINEAR. */
static int conv2d(const model_t *m, const node_t *node, arena_t *scratch) {
    const tensor_t *x = operand(m, node, 0), *w = operand(m, node, 1), *bias = operand(m, node, 2);
    const tensor_t *mask = operand(m, node, 5);
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    requant_t q;
    int err = requant_init(&q, operand(m, node, 3), operand(m, node, 4), node);
    if (err) return err;

    u32 width = x->dims[0], height = x->dims[1], cin = x->dims[2], batch = x->dims[3];
    u32 kw = w->dims[0], kh = w->dims[1], cin_group = w->dims[2], cout = w->dims[3];
    u32 ow = y->dims[0], oh = y->dims[1], groups = (u32)a[A_GROUPS], cout_group = cout / groups;
    u32 stride_h = (u32)a[A_STRIDE_H], stride_w = (u32)a[A_STRIDE_W];
    u32 pad_top = (u32)a[A_PAD_TOP], pad_left = (u32)a[A_PAD_LEFT];
    u32 pw = width + pad_left + (u32)a[A_PAD_RIGHT], ph = height + pad_top + (u32)a[A_PAD_BOTTOM];
    u32 row = cin_group * kh * kw, positions = oh * ow; /* patch length, patches per group */
    u64 padded_bytes = (u64)4 * pw * ph * cin, patch_bytes = (u64)4 * positions * row;
    if (padded_bytes > ARENA_SIZE || patch_bytes > ARENA_SIZE) return ERR_OUT_OF_MEMORY;
    i32 *xc = arena_alloc(scratch, (u32)padded_bytes);
    i32 *patches = arena_alloc(scratch, (u32)patch_bytes);
    i8 *masked = arena_alloc(scratch, 4 * row); /* four weight rows with the mask applied */
    u32 *starts = arena_alloc(scratch, 4 * positions); /* -W_ZP * sum of each patch */
    if (!xc || !patches || !masked || !starts) return ERR_OUT_OF_MEMORY;

    for (u32 b = 0; b < batch; b++) {
        const i8 *xb = i8_data(x) + b * width * height * cin;
        i32 *dst = xc;
        for (u32 c = 0; c < cin; c++)
            for (u32 py = 0; py < ph; py++)
                for (u32 px = 0; px < pw; px++) {
                    u32 iy = py - pad_top, ix = px - pad_left; /* wraps to huge when in the padding */
                    *dst++ = iy < height && ix < width ? wrap_sub(xb[(c * height + iy) * width + ix], a[A_X_ZP])
                                                       : 0;
                }
        for (u32 g = 0; g < groups; g++) {
            i32 *patch = patches;
            for (u32 oy = 0; oy < oh; oy++)
                for (u32 ox = 0; ox < ow; ox++)
                    for (u32 ci = 0; ci < cin_group; ci++)
                        for (u32 r = 0; r < kh; r++) {
                            const i32 *src = xc + ((g * cin_group + ci) * ph + oy * stride_h + r) * pw + ox * stride_w;
                            for (u32 s = 0; s < kw; s++) *patch++ = src[s];
                        }
            if (a[A_W_ZP])
                for (u32 p = 0; p < positions; p++) starts[p] = 0 - (u32)a[A_W_ZP] * sum(patches + p * row, row);
            /* Output channels in blocks of four (dot4), the remainder one by one. */
            for (u32 co = g * cout_group, last = co + cout_group, block; co < last; co += block) {
                block = last - co >= 4 ? 4 : 1;
                const i8 *weights = i8_data(w) + co * row;
                if (mask) {
                    for (u32 k = 0; k < block; k++)
                        for (u32 i = 0; i < row; i++) {
                            u32 c = g * cin_group + i / (kh * kw);
                            masked[k * row + i] = mask->data[(co + k) * cin + c] == 1 ? weights[k * row + i] : 0;
                        }
                    weights = masked;
                }
                u32 acc0[4] = {0, 0, 0, 0};
                multiplier_t mul[4];
                for (u32 k = 0; k < block; k++) {
                    acc0[k] = bias ? load_u32(bias->data + 4 * (co + k)) : 0;
                    mul[k] = channel_multiplier(&q, co + k);
                }
                u8 *yco = y->data + (b * cout + co) * positions;
                for (u32 p = 0; p < positions; p++) {
                    u32 acc[4] = {acc0[0], acc0[1], acc0[2], acc0[3]};
                    if (a[A_W_ZP])
                        for (u32 k = 0; k < 4; k++) acc[k] += starts[p];
                    if (block == 4) {
                        dot4(patches + p * row, weights, row, row, acc);
                    } else {
                        acc[0] += dot(patches + p * row, weights, row);
                    }
                    for (u32 k = 0; k < block; k++) yco[k * positions + p] = requant(&q, mul[k], acc[k]);
                }
            }
        }
    }
    return OK;
}

/* MAXPOOL2D and AVGPOOL2D over each window's non-padded positions (at least one: see check.c). */
static void pool(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0);
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    u32 width = x->dims[0], height = x->dims[1], planes = x->dims[2] * x->dims[3];
    u32 ow = y->dims[0], oh = y->dims[1];
    for (u32 p = 0; p < planes; p++) {
        const i8 *xp = i8_data(x) + p * width * height;
        for (u32 oy = 0; oy < oh; oy++) {
            i32 y0 = (i32)(oy * (u32)a[A_STRIDE_H]) - a[A_PAD_TOP];
            i32 y_lo = y0 < 0 ? 0 : y0, y_hi = clamp_i32(y0 + a[A_KERNEL_H], 0, (i32)height);
            for (u32 ox = 0; ox < ow; ox++) {
                i32 x0 = (i32)(ox * (u32)a[A_STRIDE_W]) - a[A_PAD_LEFT];
                i32 x_lo = x0 < 0 ? 0 : x0, x_hi = clamp_i32(x0 + a[A_KERNEL_W], 0, (i32)width);
                i32 best = -128;
                u32 sum = 0;
                for (i32 iy = y_lo; iy < y_hi; iy++)
                    for (i32 ix = x_lo; ix < x_hi; ix++) {
                        i32 v = xp[iy * (i32)width + ix];
                        best = v > best ? v : best;
                        sum += (u32)v;
                    }
                i32 result = best;
                if (node->op == OP_AVGPOOL2D) {
                    i32 n = (y_hi - y_lo) * (x_hi - x_lo), s = (i32)sum;
                    result = s >= 0 ? wrap_add(s, n / 2) / n : wrap_sub(s, n / 2) / n;
                }
                y->data[(p * oh + oy) * ow + ox] = (u8)result;
            }
        }
    }
}

/* Elementwise ops. Each has its own loop over locals: the output is written through a byte
 * pointer, which may alias anything, so values kept in the node or tensor structs would be
 * reloaded on every iteration. */
static void lookup(const i8 *x, const i8 *table, u8 *y, u32 count) {
    const i8 *centre = table + 128;
    for (u32 i = 0; i < count; i++) y[i] = (u8)centre[x[i]];
}

static void relu_clip(const i8 *x, u8 *y, u32 count, i32 lo, i32 hi) {
    for (u32 i = 0; i < count; i++) y[i] = (u8)clamp_i32(x[i], lo, hi);
}

static void requantize(const tensor_t *x, u8 *y, const i32 *a) {
    i32 x_zp = a[A_X_ZP], y_zp = a[A_Y_ZP], m0 = a[A_MULT], shift = a[A_SHIFT], rounding = a[A_ROUNDING];
    i32 lo = a[A_ACT_MIN], hi = a[A_ACT_MAX];
    int is_unsigned = x->dtype == DT_U8;
    for (u32 i = 0, n = x->count; i < n; i++) {
        i32 v = is_unsigned ? (i32)x->data[i] : (i32)(i8)x->data[i];
        y[i] = (u8)clamp_i32(wrap_add(y_zp, mbqm_rounded(wrap_sub(v, x_zp), m0, shift, rounding)), lo, hi);
    }
}

static void add_mul(u32 op, const tensor_t *ta, const tensor_t *tb, u8 *y, const i32 *a) {
    const i8 *pa = i8_data(ta), *pb = i8_data(tb);
    u32 b_step = tb->count == 1 ? 0 : 1; /* a one-element b is broadcast */
    i32 a_zp = a[A_A_ZP], b_zp = a[A_B_ZP], y_zp = a[A_Y_ZP], lo = a[A_ACT_MIN], hi = a[A_ACT_MAX];
    for (u32 i = 0, n = ta->count; i < n; i++) {
        i32 da = wrap_sub(pa[i], a_zp), db = wrap_sub(pb[i * b_step], b_zp), s;
        if (op == OP_ADD) {
            i32 a2 = (i32)((u32)da << a[A_LEFT_SHIFT]), b2 = (i32)((u32)db << a[A_LEFT_SHIFT]);
            s = wrap_add(mbqm(a2, a[A_A_MULT], a[A_A_SHIFT]), mbqm(b2, a[A_B_MULT], a[A_B_SHIFT]));
        } else {
            s = (i32)((u32)da * (u32)db);
        }
        y[i] = (u8)clamp_i32(wrap_add(y_zp, mbqm(s, a[A_Y_MULT], a[A_Y_SHIFT])), lo, hi);
    }
}

/* y = clamp(Y_ZP + MBQM(acc, Y_MULT, Y_SHIFT), ACT_MIN, ACT_MAX): the attribute-multiplier
 * requantization of MATMUL (ROPE uses MULT / SHIFT). */
static u8 requant_attrs(const i32 *a, u32 acc, i32 m0, i32 shift) {
    return (u8)clamp_i32(wrap_add(a[A_Y_ZP], mbqm((i32)acc, m0, shift)), a[A_ACT_MIN], a[A_ACT_MAX]);
}

/* acc = sum_k (a[k] - A_ZP) * (b[k] - B_ZP) = sum_k xc[k] * b[k] - B_ZP * sum_k xc[k] modulo 2^32, so
 * the inner loop is dot4 over b's raw int8 rows. Each head of b is laid out as rows [j][k] once
 * (copied when b is [k][j]) and serves its group of a's heads. */
static int matmul(const model_t *m, const node_t *node, arena_t *scratch) {
    const tensor_t *ta = operand(m, node, 0), *tb = operand(m, node, 1);
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    u32 k_len = ta->dims[0], rows = ta->dims[1], heads = ta->dims[2], batch = ta->dims[3];
    u32 cols = y->dims[0], b_heads = tb->dims[2], group = heads / b_heads, head_size = k_len * cols;
    i32 *xc = arena_alloc(scratch, 4 * k_len);
    i8 *bt = arena_alloc(scratch, head_size);
    if (!xc || !bt) return ERR_OUT_OF_MEMORY;
    for (u32 n = 0; n < batch; n++)
        for (u32 hb = 0; hb < b_heads; hb++) {
            const i8 *bh = i8_data(tb) + (n * b_heads + hb) * head_size;
            if (a[A_TRANSPOSE_B]) {
                for (u32 i = 0; i < head_size; i++) bt[i] = bh[i];
            } else {
                for (u32 k = 0; k < k_len; k++)
                    for (u32 j = 0; j < cols; j++) bt[j * k_len + k] = bh[k * cols + j];
            }
            for (u32 h = hb * group; h < (hb + 1) * group; h++)
                for (u32 r = 0; r < rows; r++) {
                    const i8 *xr = i8_data(ta) + ((n * heads + h) * rows + r) * k_len;
                    u32 sum = 0;
                    for (u32 k = 0; k < k_len; k++) {
                        xc[k] = wrap_sub(xr[k], a[A_A_ZP]);
                        sum += (u32)xc[k];
                    }
                    u32 correction = sum * (u32)a[A_B_ZP];
                    u8 *yr = y->data + ((n * heads + h) * rows + r) * cols;
                    u32 j = 0;
                    for (; j + 4 <= cols; j += 4) {
                        u32 acc[4] = {0, 0, 0, 0};
                        dot4(xc, bt + j * k_len, k_len, k_len, acc);
                        for (u32 i = 0; i < 4; i++)
                            yr[j + i] = requant_attrs(a, acc[i] - correction, a[A_Y_MULT], a[A_Y_SHIFT]);
                    }
                    for (; j < cols; j++)
                        yr[j] = requant_attrs(a, dot(xc, bt + j * k_len, k_len) - correction, a[A_Y_MULT],
                                              a[A_Y_SHIFT]);
                }
        }
    return OK;
}

/* 64-bit arithmetic without the instructions the VM lacks (docs/machine.md). A 32 x 32 -> 64-bit
 * product is kept out of line: inlined, clang fuses it with a following 64-bit add into madd /
 * maddu. 64-bit division is shift-and-subtract: compiler_rt's __udivdi3 traps on zero with teq. */
__attribute__((noinline)) static u64 mul_u64(u32 a, u32 b) { return (u64)a * b; }

/* a * b for a * (b >> 32) < 2^32 (both callers' operands are bounded so). */
static u64 mul_u32_u64(u32 a, u64 b) { return mul_u64(a, (u32)b) + ((u64)(a * (u32)(b >> 32)) << 32); }

static u64 div_u64(u64 num, u64 den) { /* floor(num / den), den > 0 */
    u64 quotient = 0, remainder = 0;
    int bit = 63;
    while (bit >= 0 && !((num >> bit) & 1)) bit--;
    for (; bit >= 0; bit--) {
        remainder = (remainder << 1) | ((num >> bit) & 1);
        if (remainder >= den) {
            remainder -= den;
            quotient |= (u64)1 << bit;
        }
    }
    return quotient;
}

/* Rows along dims[0]; with CAUSAL, row r is query i = r mod dims[1] and sees keys j < i + 1 + dims[0] -
 * dims[1]. e_j = table[max - x_j], q_j = (e_j * floor(2^40 / sum e) + 2^31) >> 32, y_j = min(q_j - 128,
 * 127); unseen keys give -128. e_j <= 2^20 and the reciprocal <= 2^40: mul_u32_u64's bound holds. */
static int softmax(const tensor_t *x, const tensor_t *table, u8 *y, i32 causal) {
    const u8 *t = table->data;
    for (u32 i = 0; i < 256; i++) {
        i32 e = load_i32(t + 4 * i);
        if (e < 0 || e > (i32)SOFTMAX_ONE || (i == 0 && e == 0)) return ERR_QUANT_PARAM;
    }
    const i8 *xv = i8_data(x);
    u32 keys = x->dims[0], queries = x->dims[1], rows = x->count / keys;
    for (u32 r = 0; r < rows; r++) {
        const i8 *xr = xv + r * keys;
        u8 *yr = y + r * keys;
        u32 seen = causal ? r % queries + 1 + keys - queries : keys;
        i32 top = -128;
        for (u32 j = 0; j < seen; j++) top = xr[j] > top ? xr[j] : top;
        u64 sum = 0;
        for (u32 j = 0; j < seen; j++) sum += load_u32(t + 4 * (u32)(top - xr[j]));
        u64 reciprocal = div_u64((u64)1 << 40, sum);
        for (u32 j = 0; j < seen; j++) {
            u64 q = (mul_u32_u64(load_u32(t + 4 * (u32)(top - xr[j])), reciprocal) + ((u64)1 << 31)) >> 32;
            yr[j] = (u8)(q >= 255 ? 127 : (i32)q - 128);
        }
        for (u32 j = seen; j < keys; j++) yr[j] = (u8)-128;
    }
    return OK;
}

static u64 isqrt64(u64 v) { /* floor(sqrt(v)), bit by bit */
    u64 root = 0, bit = (u64)1 << 62;
    while (bit > v) bit >>= 2;
    for (; bit; bit >>= 2) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
    }
    return root;
}

/* LAYERNORM / RMSNORM (docs/arithmetic.md): d = n (x - X_ZP) - sum (sum = 0 for RMSNORM),
 * r = isqrt(floor(sum d^2 / n) + EPS), z = RDBPOT(d * floor(2^40 / r), 28) (z = 0 when r = 0), then
 * y = requant(z * gamma + beta) with LINEAR's per-channel multipliers. RDBPOT rounds half away from
 * zero, so z is computed on |d| (< 2^23, and floor(2^40 / r) < 2^41: mul_u32_u64's bound holds). */
static int norm(const model_t *m, const node_t *node, arena_t *scratch) {
    const tensor_t *x = operand(m, node, 0), *gamma = operand(m, node, 1), *beta = operand(m, node, 2);
    tensor_t *y = &m->tensors[node->output];
    requant_t q;
    int err = requant_init(&q, operand(m, node, 3), operand(m, node, 4), node);
    if (err) return err;
    u32 n = x->dims[0], rows = x->count / n;
    i32 x_zp = node->attrs[A_X_ZP];
    i32 *d = arena_alloc(scratch, 4 * n);
    if (!d) return ERR_OUT_OF_MEMORY;
    for (u32 r = 0; r < rows; r++) {
        const i8 *xr = i8_data(x) + r * n;
        i32 sum = 0;
        for (u32 i = 0; i < n; i++) {
            d[i] = xr[i] - x_zp; /* |x - X_ZP| <= 255 (check.c bounds X_ZP) */
            sum += d[i];
        }
        if (node->op == OP_RMSNORM) sum = 0;
        u64 squares = 0;
        for (u32 i = 0; i < n; i++) {
            d[i] = (i32)n * d[i] - sum;
            u32 magnitude = d[i] < 0 ? (u32)-d[i] : (u32)d[i];
            squares += mul_u64(magnitude, magnitude);
        }
        u64 root = isqrt64(div_u64(squares, n) + (u64)node->attrs[A_EPS]);
        u64 inverse = root ? div_u64((u64)1 << 40, root) : 0;
        u8 *yr = y->data + r * n;
        for (u32 i = 0; i < n; i++) {
            u32 magnitude = d[i] < 0 ? (u32)-d[i] : (u32)d[i];
            u32 z = (u32)((mul_u32_u64(magnitude, inverse) + ((u64)1 << 27)) >> 28);
            if (d[i] < 0) z = -z;
            u32 acc = z * (u32)(i32)i8_data(gamma)[i] + (beta ? load_u32(beta->data + 4 * i) : 0);
            yr[i] = requant(&q, channel_multiplier(&q, i), acc);
        }
    }
    return OK;
}

/* ROPE: (x[2i], x[2i+1]) of position t rotated by cos[t][i], sin[t][i] (integers, e.g. 2^14 scale). */
static void rope(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0), *cos = operand(m, node, 1), *sin = operand(m, node, 2);
    u8 *y = m->tensors[node->output].data;
    const i32 *a = node->attrs;
    u32 dh = x->dims[0], half = dh / 2, positions = x->dims[1], planes = x->dims[2] * x->dims[3];
    for (u32 p = 0; p < planes; p++)
        for (u32 t = 0; t < positions; t++) {
            u32 base = (p * positions + t) * dh;
            for (u32 i = 0; i < half; i++) {
                u32 xa = (u32)wrap_sub(i8_data(x)[base + 2 * i], a[A_X_ZP]);
                u32 xb = (u32)wrap_sub(i8_data(x)[base + 2 * i + 1], a[A_X_ZP]);
                u32 c = load_u32(cos->data + 4 * (t * half + i)), s = load_u32(sin->data + 4 * (t * half + i));
                y[base + 2 * i] = requant_attrs(a, xa * c - xb * s, a[A_MULT], a[A_SHIFT]);
                y[base + 2 * i + 1] = requant_attrs(a, xa * s + xb * c, a[A_MULT], a[A_SHIFT]);
            }
        }
}

int run_int8(const model_t *m, const node_t *node, arena_t *scratch) {
    switch (node->op) {
    case OP_LINEAR:
        return linear(m, node, scratch);
    case OP_CONV2D:
        return conv2d(m, node, scratch);
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
        pool(m, node);
        return OK;
    case OP_MATMUL:
        return matmul(m, node, scratch);
    case OP_LAYERNORM:
    case OP_RMSNORM:
        return norm(m, node, scratch);
    case OP_ROPE:
        rope(m, node);
        return OK;
    default:
        break;
    }
    const tensor_t *x = operand(m, node, 0);
    u8 *y = m->tensors[node->output].data;
    const i32 *a = node->attrs;
    switch (node->op) {
    case OP_LOOKUP:
        lookup(i8_data(x), i8_data(operand(m, node, 1)), y, x->count);
        return OK;
    case OP_RELU: /* max(x, X_ZP) */
        relu_clip(i8_data(x), y, x->count, a[A_X_ZP], 127);
        return OK;
    case OP_CLIP:
        relu_clip(i8_data(x), y, x->count, a[A_ACT_MIN], a[A_ACT_MAX]);
        return OK;
    case OP_REQUANTIZE:
        requantize(x, y, a);
        return OK;
    case OP_ADD:
    case OP_MUL:
        add_mul(node->op, x, operand(m, node, 1), y, a);
        return OK;
    case OP_SOFTMAX:
        return softmax(x, operand(m, node, 1), y, a[A_CAUSAL]);
    case OP_ANSWER: /* [u32 class][x's bytes]: what the whole-graph program's output region holds */
        store_u32(y, argmax(x));
        for (u32 i = 0; i < x->nbytes; i++) y[4 + i] = x->data[i];
        return OK;
    case OP_GREEDY: { /* per position t: [u32 ids[t]][u32 first index of row t's maximum] */
        const tensor_t *ids = operand(m, node, 1);
        u32 vocab = x->dims[0];
        for (u32 t = 0; t < x->dims[1]; t++) {
            tensor_t row = *x;
            row.data = x->data + t * vocab;
            row.count = vocab;
            store_u32(y + 8 * t, load_u32(ids->data + 4 * t));
            store_u32(y + 8 * t + 4, argmax(&row));
        }
        return OK;
    }
    default:
        return ERR_NODE; /* check.c sends no other op here */
    }
}
