/*
 * f32 kernels. Built with -msoft-float, so every float operation here is a call into compiler_rt's
 * IEEE single-precision routines (round to nearest even) and the guest has no FPU instruction.
 * Sums run over the innermost index first and add the bias last (docs/arithmetic.md); the
 * transcendental functions are the guest's own, so results are compared by class, not bit for bit.
 */
#include "guest.h"

static const tensor_t *operand(const model_t *m, const node_t *node, u32 i) {
    return node->inputs[i] == NONE ? 0 : &m->tensors[node->inputs[i]];
}

static float at(const tensor_t *t, u32 i) { return load_f32(t->data + 4 * i); }

static void linear(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0), *w = operand(m, node, 1), *bias = operand(m, node, 2);
    tensor_t *y = &m->tensors[node->output];
    u32 in = w->dims[0], out = w->dims[1], n = x->count / in;
    for (u32 b = 0; b < n; b++)
        for (u32 o = 0; o < out; o++) {
            const u8 *xb = x->data + 4 * b * in, *wo = w->data + 4 * o * in;
            float acc = 0.0f;
            for (u32 i = 0; i < in; i++) acc += load_f32(xb + 4 * i) * load_f32(wo + 4 * i);
            if (bias) acc += at(bias, o);
            store_f32(y->data + 4 * (b * out + o), acc);
        }
}

/* Padded positions are skipped rather than materialised: each skipped term saves two soft-float
 * calls. */
static void conv2d(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0), *w = operand(m, node, 1), *bias = operand(m, node, 2);
    const tensor_t *mask = operand(m, node, 5);
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    u32 width = x->dims[0], height = x->dims[1], cin = x->dims[2], batch = x->dims[3];
    u32 kw = w->dims[0], kh = w->dims[1], cin_group = w->dims[2], cout = w->dims[3];
    u32 ow = y->dims[0], oh = y->dims[1], cout_group = cout / (u32)a[A_GROUPS];
    for (u32 b = 0; b < batch; b++)
        for (u32 co = 0; co < cout; co++) {
            u32 group = co / cout_group;
            for (u32 oy = 0; oy < oh; oy++)
                for (u32 ox = 0; ox < ow; ox++) {
                    float acc = 0.0f;
                    for (u32 ci = 0; ci < cin_group; ci++) {
                        u32 c = group * cin_group + ci;
                        if (mask && mask->data[co * cin + c] != 1) continue;
                        const u8 *xc = x->data + 4 * (b * cin + c) * height * width;
                        const u8 *wc = w->data + 4 * (co * cin_group + ci) * kh * kw;
                        for (u32 r = 0; r < kh; r++) {
                            u32 iy = oy * (u32)a[A_STRIDE_H] + r - (u32)a[A_PAD_TOP]; /* wraps in padding */
                            if (iy >= height) continue;
                            for (u32 s = 0; s < kw; s++) {
                                u32 ix = ox * (u32)a[A_STRIDE_W] + s - (u32)a[A_PAD_LEFT];
                                if (ix >= width) continue;
                                acc += load_f32(xc + 4 * (iy * width + ix)) * load_f32(wc + 4 * (r * kw + s));
                            }
                        }
                    }
                    if (bias) acc += at(bias, co);
                    store_f32(y->data + 4 * (((b * cout + co) * oh + oy) * ow + ox), acc);
                }
        }
}

/* MAXPOOL2D, AVGPOOL2D and SUBSAMPLE (an unpadded average times coef[c] plus bias[c]). */
static void pool(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0);
    const tensor_t *coef = operand(m, node, 1), *bias = operand(m, node, 2);
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    int padded = node->op != OP_SUBSAMPLE;
    i32 pad_top = padded ? a[A_PAD_TOP] : 0, pad_left = padded ? a[A_PAD_LEFT] : 0;
    u32 width = x->dims[0], height = x->dims[1], channels = x->dims[2], planes = channels * x->dims[3];
    u32 ow = y->dims[0], oh = y->dims[1];
    for (u32 p = 0; p < planes; p++) {
        const u8 *xp = x->data + 4 * p * width * height;
        for (u32 oy = 0; oy < oh; oy++) {
            i32 y0 = (i32)(oy * (u32)a[A_STRIDE_H]) - pad_top;
            i32 y_lo = y0 < 0 ? 0 : y0, y_hi = clamp_i32(y0 + a[A_KERNEL_H], 0, (i32)height);
            for (u32 ox = 0; ox < ow; ox++) {
                i32 x0 = (i32)(ox * (u32)a[A_STRIDE_W]) - pad_left;
                i32 x_lo = x0 < 0 ? 0 : x0, x_hi = clamp_i32(x0 + a[A_KERNEL_W], 0, (i32)width);
                float best = load_f32(xp + 4 * ((u32)y_lo * width + (u32)x_lo)), sum = 0.0f;
                for (i32 iy = y_lo; iy < y_hi; iy++)
                    for (i32 ix = x_lo; ix < x_hi; ix++) {
                        float v = load_f32(xp + 4 * ((u32)iy * width + (u32)ix));
                        if (node->op == OP_MAXPOOL2D) {
                            best = v > best ? v : best;
                        } else {
                            sum += v;
                        }
                    }
                float result = best;
                if (node->op != OP_MAXPOOL2D) result = sum / (float)((y_hi - y_lo) * (x_hi - x_lo));
                if (node->op == OP_SUBSAMPLE) result = result * at(coef, p % channels) + at(bias, p % channels);
                store_f32(y->data + 4 * ((p * oh + oy) * ow + ox), result);
            }
        }
    }
}

/* Softmax along dims[0] (one row per index of the outer dims), shifted by the row maximum; with
 * CAUSAL, row r is query i = r mod dims[1] and sees keys j < i + 1 + dims[0] - dims[1], the others
 * give 0. */
static void softmax(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0);
    tensor_t *y = &m->tensors[node->output];
    u32 row = x->dims[0], queries = x->dims[1], rows = x->count / row;
    for (u32 r = 0; r < rows; r++) {
        u32 base = r * row, seen = node->attrs[A_CAUSAL] ? r % queries + 1 + row - queries : row;
        float max = at(x, base), sum = 0.0f;
        for (u32 i = 1; i < seen; i++) max = at(x, base + i) > max ? at(x, base + i) : max;
        for (u32 i = 0; i < seen; i++) {
            float e = guest_expf(at(x, base + i) - max);
            store_f32(y->data + 4 * (base + i), e);
            sum += e;
        }
        for (u32 i = 0; i < seen; i++) store_f32(y->data + 4 * (base + i), at(y, base + i) / sum);
        for (u32 i = seen; i < row; i++) store_f32(y->data + 4 * (base + i), 0.0f);
    }
}

/* y[n][h][m][j] = ALPHA * sum_k a[n][h][m][k] * b[n][h / (H / HB)][j][k] (or [k][j]), k in order. */
static void matmul(const model_t *m, const node_t *node) {
    const tensor_t *ta = operand(m, node, 0), *tb = operand(m, node, 1);
    tensor_t *y = &m->tensors[node->output];
    u32 k_len = ta->dims[0], rows = ta->dims[1], heads = ta->dims[2], batch = ta->dims[3];
    u32 cols = y->dims[0], b_heads = tb->dims[2], group = heads / b_heads;
    u32 k_step = node->attrs[A_TRANSPOSE_B] ? 1 : cols, j_step = node->attrs[A_TRANSPOSE_B] ? k_len : 1;
    float alpha = bits_to_f32((u32)node->attrs[A_ALPHA]);
    for (u32 n = 0; n < batch; n++)
        for (u32 h = 0; h < heads; h++) {
            u32 a_head = (n * heads + h) * rows * k_len, b_head = (n * b_heads + h / group) * k_len * cols;
            for (u32 r = 0; r < rows; r++)
                for (u32 j = 0; j < cols; j++) {
                    float acc = 0.0f;
                    for (u32 k = 0; k < k_len; k++)
                        acc += at(ta, a_head + r * k_len + k) * at(tb, b_head + j * j_step + k * k_step);
                    store_f32(y->data + 4 * (((n * heads + h) * rows + r) * cols + j), acc * alpha);
                }
        }
}

/* LAYERNORM: (x - mean) / sqrt(var + EPS_F) * gamma + beta over rows of dims[0]; RMSNORM: mean 0. */
static void norm(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0), *gamma = operand(m, node, 1), *beta = operand(m, node, 2);
    tensor_t *y = &m->tensors[node->output];
    u32 n = x->dims[0], rows = x->count / n;
    float eps = bits_to_f32((u32)node->attrs[A_EPS_F]);
    for (u32 r = 0; r < rows; r++) {
        u32 base = r * n;
        float mean = 0.0f, var = 0.0f;
        if (node->op == OP_LAYERNORM) {
            for (u32 i = 0; i < n; i++) mean += at(x, base + i);
            mean = mean / (float)n;
        }
        for (u32 i = 0; i < n; i++) {
            float d = at(x, base + i) - mean;
            var += d * d;
        }
        float root = guest_sqrtf(var / (float)n + eps);
        for (u32 i = 0; i < n; i++) {
            float v = (at(x, base + i) - mean) / root * at(gamma, i);
            store_f32(y->data + 4 * (base + i), beta ? v + at(beta, i) : v);
        }
    }
}

/* ROPE: (x[2i], x[2i+1]) of position t -> (xa cos - xb sin, xa sin + xb cos), cos = cos[t][i]. */
static void rope(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0), *cos = operand(m, node, 1), *sin = operand(m, node, 2);
    tensor_t *y = &m->tensors[node->output];
    u32 dh = x->dims[0], half = dh / 2, positions = x->dims[1], planes = x->dims[2] * x->dims[3];
    for (u32 p = 0; p < planes; p++)
        for (u32 t = 0; t < positions; t++) {
            u32 base = (p * positions + t) * dh;
            for (u32 i = 0; i < half; i++) {
                float xa = at(x, base + 2 * i), xb = at(x, base + 2 * i + 1);
                float c = at(cos, t * half + i), s = at(sin, t * half + i);
                store_f32(y->data + 4 * (base + 2 * i), xa * c - xb * s);
                store_f32(y->data + 4 * (base + 2 * i + 1), xa * s + xb * c);
            }
        }
}

static i32 integer_at(const tensor_t *t, u32 i) {
    switch (t->dtype) {
    case DT_U8:
        return t->data[i];
    case DT_I8:
        return (i8)t->data[i];
    default:
        return load_i32(t->data + 4 * i);
    }
}

static void elementwise(const model_t *m, const node_t *node) {
    const tensor_t *x = operand(m, node, 0), *b = operand(m, node, 1);
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    float scale = bits_to_f32((u32)a[A_SCALE]);
    for (u32 i = 0; i < y->count; i++) {
        if (node->op == OP_QUANTIZE) {
            i64 q = (i64)round_half_even_clamped(at(x, i) / scale) + a[A_ZP];
            y->data[i] = (u8)(q < -128 ? -128 : (q > 127 ? 127 : q));
            continue;
        }
        if (node->op == OP_DEQUANTIZE) {
            float v = (float)(i32)((u32)integer_at(x, i) - (u32)a[A_ZP]);
            store_f32(y->data + 4 * i, v * scale + bits_to_f32((u32)a[A_OFFSET]));
            continue;
        }
        float v = at(x, i), r;
        switch (node->op) {
        case OP_RELU:
            r = v > 0.0f ? v : 0.0f;
            break;
        case OP_TANH:
            r = guest_tanhf(v);
            break;
        case OP_SIGMOID:
            r = guest_sigmoidf(v);
            break;
        case OP_GELU:
            r = 0.5f * v * (1.0f + guest_erff(v * 0.70710678f));
            break;
        case OP_SILU:
            r = v * guest_sigmoidf(v);
            break;
        case OP_CLIP: {
            float lo = bits_to_f32((u32)a[A_MIN_F]), hi = bits_to_f32((u32)a[A_MAX_F]);
            r = v < lo ? lo : (v > hi ? hi : v);
            break;
        }
        case OP_ADD:
            r = v + at(b, b->count == 1 ? 0 : i);
            break;
        default: /* OP_MUL: check.c admits no other op here */
            r = v * at(b, b->count == 1 ? 0 : i);
            break;
        }
        store_f32(y->data + 4 * i, r);
    }
}

void run_f32(const model_t *m, const node_t *node) {
    switch (node->op) {
    case OP_LINEAR:
        linear(m, node);
        break;
    case OP_CONV2D:
        conv2d(m, node);
        break;
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
    case OP_SUBSAMPLE:
        pool(m, node);
        break;
    case OP_SOFTMAX:
        softmax(m, node);
        break;
    case OP_MATMUL:
        matmul(m, node);
        break;
    case OP_LAYERNORM:
    case OP_RMSNORM:
        norm(m, node);
        break;
    case OP_ROPE:
        rope(m, node);
        break;
    default:
        elementwise(m, node);
        break;
    }
}
