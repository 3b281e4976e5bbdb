/*
 * Per-op validation, done for every node before anything runs: operand dtypes and shapes,
 * attribute ranges and the declared output shape. The kernels in ops_int8.c and ops_f32.c rely on
 * these checks and do no further bounds checking of their own.
 */
#include "guest.h"

/* Geometry attributes are bounded so that sums like in + pad + pad never overflow. */
#define MAX_GEOMETRY 0xFFFF

typedef struct {
    u8 min_inputs, max_inputs;
} arity_t;

static const arity_t ARITY[OP_LAST + 1] = {
    [OP_LINEAR] = {2, 5},    [OP_CONV2D] = {2, 6},  [OP_MAXPOOL2D] = {1, 1}, [OP_AVGPOOL2D] = {1, 1},
    [OP_SUBSAMPLE] = {3, 3}, [OP_RELU] = {1, 1},    [OP_TANH] = {1, 1},      [OP_SIGMOID] = {1, 1},
    [OP_LOOKUP] = {2, 2},    [OP_RESHAPE] = {1, 1}, [OP_ADD] = {2, 2},       [OP_MUL] = {2, 2},
    [OP_CLIP] = {1, 1},      [OP_SOFTMAX] = {1, 2}, [OP_QUANTIZE] = {1, 1},  [OP_DEQUANTIZE] = {1, 1},
    [OP_REQUANTIZE] = {1, 1}, [OP_MATMUL] = {2, 2}, [OP_TRANSPOSE] = {1, 1}, [OP_SLICE] = {1, 1},
    [OP_CONCAT] = {2, 6},    [OP_GATHER] = {2, 2},  [OP_LAYERNORM] = {2, 5}, [OP_RMSNORM] = {2, 5},
    [OP_GELU] = {1, 1},      [OP_SILU] = {1, 1},    [OP_ROPE] = {3, 3},
    [OP_ANSWER] = {1, 1},    [OP_GREEDY] = {2, 2},
};

static const tensor_t *operand(const model_t *m, const node_t *node, u32 i) {
    return node->inputs[i] == NONE ? 0 : &m->tensors[node->inputs[i]];
}

static int same_dims(const tensor_t *a, const tensor_t *b) {
    for (u32 d = 0; d < 4; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

static int has_dims(const tensor_t *t, u32 d0, u32 d1, u32 d2, u32 d3) {
    return t->dims[0] == d0 && t->dims[1] == d1 && t->dims[2] == d2 && t->dims[3] == d3;
}

/* An optional per-channel vector: absent, or `count` elements of `dtype`. */
static int vector_ok(const tensor_t *t, u32 dtype, u32 count) {
    return !t || (t->dtype == dtype && t->count == count);
}

/* A requantization multiplier / shift pair: both present, i32, per channel or per tensor. */
static int requant_ok(const tensor_t *mult, const tensor_t *shift, u32 channels) {
    return mult && shift && mult->dtype == DT_I32 && shift->dtype == DT_I32 &&
           (mult->count == channels || mult->count == 1) && shift->count == mult->count;
}

static int in_range(i32 v, i32 lo, i32 hi) { return v >= lo && v <= hi; }

static int activation_range_ok(const node_t *node) {
    i32 lo = node->attrs[A_ACT_MIN], hi = node->attrs[A_ACT_MAX];
    return in_range(lo, -128, 127) && in_range(hi, lo, 127);
}

static int shift_ok(i32 shift) { return in_range(shift, -31, 31); }
/* LINEAR / CONV2D in int8: the activation range and a weight zero point that fits int8. */
static int weighted_attrs_ok(const node_t *node) {
    return activation_range_ok(node) && in_range(node->attrs[A_W_ZP], -128, 127);
}

/* ROUNDING 0 (double, gemmlowp) or 1 (single, TFLite: shifts up to 30 only). */
static int rounding_ok(const node_t *node) { return in_range(node->attrs[A_ROUNDING], 0, 1); }
static int requant_shift_ok(const node_t *node, i32 shift) {
    return in_range(shift, -31, 31 - node->attrs[A_ROUNDING]);
}

/* Output extent of a window sliding over `in` positions; 0 when the window does not fit. */
static u32 window_out(u32 in, i32 k, i32 stride, i32 pad_a, i32 pad_b) {
    if (!in_range(k, 1, MAX_GEOMETRY) || !in_range(stride, 1, MAX_GEOMETRY) ||
        !in_range(pad_a, 0, MAX_GEOMETRY) || !in_range(pad_b, 0, MAX_GEOMETRY))
        return 0;
    u32 padded = in + (u32)pad_a + (u32)pad_b; /* < 2^31 + 2^17: no overflow */
    if (padded < (u32)k) return 0;
    return (padded - (u32)k) / (u32)stride + 1;
}

static int check_linear(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *x = operand(m, node, 0), *w = operand(m, node, 1);
    const tensor_t *bias = operand(m, node, 2), *mult = operand(m, node, 3), *shift = operand(m, node, 4);
    u32 in = w->dims[0], out = w->dims[1];
    if (w->dims[2] != 1 || w->dims[3] != 1 || x->dims[0] != in) return ERR_SHAPE;
    u32 n = x->count / in;
    if (y->dims[0] != out || y->count != (u64)out * n) return ERR_SHAPE;
    if (x->dtype == DT_I8) {
        if (w->dtype != DT_I8 || y->dtype != DT_I8 || !vector_ok(bias, DT_I32, out)) return ERR_SHAPE;
        if (!requant_ok(mult, shift, out)) return ERR_SHAPE;
        return weighted_attrs_ok(node) ? OK : ERR_ATTRIBUTE;
    }
    if (x->dtype == DT_F32 && w->dtype == DT_F32 && y->dtype == DT_F32 && vector_ok(bias, DT_F32, out) &&
        !mult && !shift)
        return OK;
    return ERR_SHAPE;
}

static int check_conv2d(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *x = operand(m, node, 0), *w = operand(m, node, 1), *bias = operand(m, node, 2);
    const tensor_t *mult = operand(m, node, 3), *shift = operand(m, node, 4), *mask = operand(m, node, 5);
    const i32 *a = node->attrs;
    u32 cin = x->dims[2], cout = w->dims[3];
    i32 groups = a[A_GROUPS];
    if (!in_range(groups, 1, MAX_GEOMETRY) || cout % (u32)groups != 0 || w->dims[2] * (u64)groups != cin)
        return ERR_SHAPE;
    u32 oh = window_out(x->dims[1], (i32)w->dims[1], a[A_STRIDE_H], a[A_PAD_TOP], a[A_PAD_BOTTOM]);
    u32 ow = window_out(x->dims[0], (i32)w->dims[0], a[A_STRIDE_W], a[A_PAD_LEFT], a[A_PAD_RIGHT]);
    if (!oh || !ow) return ERR_ATTRIBUTE;
    if (!has_dims(y, ow, oh, cout, x->dims[3])) return ERR_SHAPE;
    if (mask && (mask->dtype != DT_U8 || mask->dims[0] != cin || mask->count != (u64)cin * cout))
        return ERR_SHAPE;
    if (x->dtype == DT_I8) {
        if (w->dtype != DT_I8 || y->dtype != DT_I8 || !vector_ok(bias, DT_I32, cout)) return ERR_SHAPE;
        if (!requant_ok(mult, shift, cout)) return ERR_SHAPE;
        if (mask && node->attrs[A_W_ZP] != 0) return ERR_ATTRIBUTE;
        return weighted_attrs_ok(node) ? OK : ERR_ATTRIBUTE;
    }
    if (x->dtype == DT_F32 && w->dtype == DT_F32 && y->dtype == DT_F32 && vector_ok(bias, DT_F32, cout) &&
        !mult && !shift)
        return OK;
    return ERR_SHAPE;
}

/* Pools and SUBSAMPLE: a window per channel. A pooling pad must be smaller than the window so that
 * every window holds at least one real input position (AVGPOOL divides by their count). */
static int check_window(const node_t *node, const tensor_t *x, const tensor_t *y, int padded) {
    const i32 *a = node->attrs;
    i32 kh = a[A_KERNEL_H], kw = a[A_KERNEL_W];
    i32 pt = padded ? a[A_PAD_TOP] : 0, pl = padded ? a[A_PAD_LEFT] : 0;
    i32 pb = padded ? a[A_PAD_BOTTOM] : 0, pr = padded ? a[A_PAD_RIGHT] : 0;
    if (pt >= kh || pb >= kh || pl >= kw || pr >= kw) return ERR_ATTRIBUTE;
    u32 oh = window_out(x->dims[1], kh, a[A_STRIDE_H], pt, pb);
    u32 ow = window_out(x->dims[0], kw, a[A_STRIDE_W], pl, pr);
    if (!oh || !ow) return ERR_ATTRIBUTE;
    return has_dims(y, ow, oh, x->dims[2], x->dims[3]) ? OK : ERR_SHAPE;
}

/* ADD and MUL: b has a's shape, or one element (broadcast). */
static int check_binary(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *a = operand(m, node, 0), *b = operand(m, node, 1);
    if (a->dtype != b->dtype || y->dtype != a->dtype || !same_dims(a, y)) return ERR_SHAPE;
    if (!same_dims(a, b) && b->count != 1) return ERR_SHAPE;
    if (a->dtype == DT_F32) return OK;
    if (a->dtype != DT_I8) return ERR_SHAPE;
    const i32 *at = node->attrs;
    if (!activation_range_ok(node) || !shift_ok(at[A_Y_SHIFT])) return ERR_ATTRIBUTE;
    if (node->op == OP_ADD && (!in_range(at[A_LEFT_SHIFT], 0, 31) || !shift_ok(at[A_A_SHIFT]) ||
                               !shift_ok(at[A_B_SHIFT])))
        return ERR_ATTRIBUTE;
    return OK;
}

/* An elementwise op from `from` to `to` dtype; `from_any` lists the accepted input dtypes as bits. */
static int check_unary(const tensor_t *x, const tensor_t *y, u32 from_any, u32 to) {
    if (!((from_any >> x->dtype) & 1) || !same_dims(x, y)) return ERR_SHAPE;
    return y->dtype == (to == NONE ? x->dtype : to) ? OK : ERR_SHAPE;
}

/* MATMUL: y (J, M, H, N) from a (K, M, H, N) and b (K, J, HB, N) with TRANSPOSE_B, else (J, K, HB, N);
 * HB divides H (groups of a's heads share one head of b). */
static int check_matmul(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *a = operand(m, node, 0), *b = operand(m, node, 1);
    const i32 *at = node->attrs;
    if ((a->dtype != DT_I8 && a->dtype != DT_F32) || b->dtype != a->dtype || y->dtype != a->dtype) return ERR_SHAPE;
    if (at[A_TRANSPOSE_B] != 0 && at[A_TRANSPOSE_B] != 1) return ERR_ATTRIBUTE;
    u32 b_k = at[A_TRANSPOSE_B] ? b->dims[0] : b->dims[1], b_cols = at[A_TRANSPOSE_B] ? b->dims[1] : b->dims[0];
    if (b_k != a->dims[0] || b->dims[3] != a->dims[3] || a->dims[2] % b->dims[2] != 0) return ERR_SHAPE;
    if (!has_dims(y, b_cols, a->dims[1], a->dims[2], a->dims[3])) return ERR_SHAPE;
    if (a->dtype == DT_I8 && (!activation_range_ok(node) || !shift_ok(at[A_Y_SHIFT]))) return ERR_ATTRIBUTE;
    return OK;
}

/* TRANSPOSE, SLICE, CONCAT: one dtype; output dims as moved by PERM, or by AXIS (and START). */
static int check_move(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *x = operand(m, node, 0);
    const i32 *at = node->attrs;
    if (node->op == OP_TRANSPOSE) {
        u32 perm = (u32)at[A_PERM], used = 0;
        if (perm > 255) return ERR_ATTRIBUTE;
        for (u32 d = 0; d < 4; d++) used |= 1u << ((perm >> (2 * d)) & 3);
        if (used != 15) return ERR_ATTRIBUTE;
        if (y->dtype != x->dtype) return ERR_SHAPE;
        for (u32 d = 0; d < 4; d++)
            if (y->dims[d] != x->dims[(perm >> (2 * d)) & 3]) return ERR_SHAPE;
        return OK;
    }
    i32 axis = at[A_AXIS];
    if (!in_range(axis, 0, 3)) return ERR_ATTRIBUTE;
    u32 total = 0;
    for (u32 i = 0; i < MAX_INPUTS; i++) {
        const tensor_t *part = operand(m, node, i);
        if (!part) continue;
        if (part->dtype != y->dtype) return ERR_SHAPE;
        for (u32 d = 0; d < 4; d++)
            if (d != (u32)axis && part->dims[d] != y->dims[d]) return ERR_SHAPE;
        total += part->dims[axis]; /* at most 6 dims < 2^31 each: no overflow in u32 */
    }
    if (node->op == OP_CONCAT) return total == y->dims[axis] ? OK : ERR_SHAPE;
    i32 start = at[A_START];
    if (start < 0 || (u32)start > x->dims[axis] || y->dims[axis] > x->dims[axis] - (u32)start) return ERR_ATTRIBUTE;
    return OK;
}

/* GATHER: i32 ids (up to 3 dims), a 2-D table (E, V); y (E, ids...) in the table's dtype. */
static int check_gather(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *ids = operand(m, node, 0), *table = operand(m, node, 1);
    if (ids->dtype != DT_I32 || table->dims[2] != 1 || table->dims[3] != 1 || ids->dims[3] != 1 ||
        y->dtype != table->dtype)
        return ERR_SHAPE;
    return has_dims(y, table->dims[0], ids->dims[0], ids->dims[1], ids->dims[2]) ? OK : ERR_SHAPE;
}

/* LAYERNORM / RMSNORM: rows of dims[0] <= MAX_NORM; gamma, beta and (int8) mult / shift like LINEAR's. */
static int check_norm(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *x = operand(m, node, 0), *gamma = operand(m, node, 1), *beta = operand(m, node, 2);
    const tensor_t *mult = operand(m, node, 3), *shift = operand(m, node, 4);
    u32 row = x->dims[0];
    if (row > MAX_NORM || !same_dims(x, y) || y->dtype != x->dtype) return ERR_SHAPE;
    if (x->dtype == DT_I8) {
        if (!vector_ok(gamma, DT_I8, row) || !vector_ok(beta, DT_I32, row) || !requant_ok(mult, shift, row))
            return ERR_SHAPE;
        return activation_range_ok(node) && in_range(node->attrs[A_X_ZP], -128, 127) && node->attrs[A_EPS] >= 0
                   ? OK
                   : ERR_ATTRIBUTE;
    }
    if (x->dtype == DT_F32 && vector_ok(gamma, DT_F32, row) && vector_ok(beta, DT_F32, row) && !mult && !shift)
        return OK;
    return ERR_SHAPE;
}

/* ROPE: x (DH, T, ...) with DH even; cos and sin (DH / 2, T), i32 for int8 x, f32 for f32. */
static int check_rope(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *x = operand(m, node, 0);
    u32 table = x->dtype == DT_I8 ? DT_I32 : DT_F32;
    if ((x->dtype != DT_I8 && x->dtype != DT_F32) || x->dims[0] % 2 || !same_dims(x, y) || y->dtype != x->dtype)
        return ERR_SHAPE;
    for (u32 i = 1; i <= 2; i++) {
        const tensor_t *t = operand(m, node, i);
        if (t->dtype != table || !has_dims(t, x->dims[0] / 2, x->dims[1], 1, 1)) return ERR_SHAPE;
    }
    if (x->dtype == DT_I8 && (!activation_range_ok(node) || !shift_ok(node->attrs[A_SHIFT]))) return ERR_ATTRIBUTE;
    return OK;
}

/* SOFTMAX: f32, or int8 with its i32 exp table of 256 entries; CAUSAL 0 or 1, and a causal row has
 * at least as many keys (dims[0]) as there are queries (dims[1]). */
static int check_softmax(const model_t *m, const node_t *node, const tensor_t *y) {
    const tensor_t *x = operand(m, node, 0), *table = operand(m, node, 1);
    if (!same_dims(x, y) || y->dtype != x->dtype) return ERR_SHAPE;
    if (x->dtype == DT_I8) {
        if (!table || !vector_ok(table, DT_I32, 256)) return ERR_SHAPE;
    } else if (x->dtype != DT_F32 || table) {
        return ERR_SHAPE;
    }
    i32 causal = node->attrs[A_CAUSAL];
    return (causal == 0 || causal == 1) && (!causal || x->dims[0] >= x->dims[1]) ? OK : ERR_ATTRIBUTE;
}

#define BIT(dt) (1u << (dt))
#define INT8_OR_F32 (BIT(DT_I8) | BIT(DT_F32))

int node_check(const model_t *m, const node_t *node) {
    const arity_t arity = ARITY[node->op];
    for (u32 i = 0; i < MAX_INPUTS; i++) {
        int present = node->inputs[i] != NONE;
        if (i < arity.min_inputs && !present) return ERR_DANGLING;
        if (i >= arity.max_inputs && present) return ERR_NODE;
    }
    const tensor_t *x = operand(m, node, 0), *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    int err;
    if (!rounding_ok(node)) return ERR_ATTRIBUTE;
    switch (node->op) {
    case OP_LINEAR:
        return check_linear(m, node, y);
    case OP_CONV2D:
        return check_conv2d(m, node, y);
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
        if (!((INT8_OR_F32 >> x->dtype) & 1) || y->dtype != x->dtype) return ERR_SHAPE;
        return check_window(node, x, y, 1);
    case OP_SUBSAMPLE: {
        u32 c = x->dims[2];
        if (x->dtype != DT_F32 || y->dtype != DT_F32 || !vector_ok(operand(m, node, 1), DT_F32, c) ||
            !vector_ok(operand(m, node, 2), DT_F32, c))
            return ERR_SHAPE;
        return check_window(node, x, y, 0);
    }
    case OP_RELU:
        err = check_unary(x, y, INT8_OR_F32, NONE);
        return err ? err : (x->dtype == DT_I8 && !in_range(a[A_X_ZP], -128, 127) ? ERR_ATTRIBUTE : OK);
    case OP_TANH:
    case OP_SIGMOID:
    case OP_GELU:
    case OP_SILU:
        return check_unary(x, y, BIT(DT_F32), DT_F32);
    case OP_SOFTMAX:
        return check_softmax(m, node, y);
    case OP_MATMUL:
        return check_matmul(m, node, y);
    case OP_TRANSPOSE:
    case OP_SLICE:
    case OP_CONCAT:
        return check_move(m, node, y);
    case OP_GATHER:
        return check_gather(m, node, y);
    case OP_LAYERNORM:
    case OP_RMSNORM:
        return check_norm(m, node, y);
    case OP_ROPE:
        return check_rope(m, node, y);
    case OP_LOOKUP:
        err = check_unary(x, y, BIT(DT_I8), DT_I8);
        return err ? err : (vector_ok(operand(m, node, 1), DT_I8, 256) ? OK : ERR_SHAPE);
    case OP_RESHAPE:
        return y->dtype == x->dtype && y->count == x->count ? OK : ERR_SHAPE;
    case OP_ADD:
    case OP_MUL:
        return check_binary(m, node, y);
    case OP_CLIP:
        err = check_unary(x, y, INT8_OR_F32, NONE);
        return err ? err : (x->dtype == DT_I8 && !activation_range_ok(node) ? ERR_ATTRIBUTE : OK);
    case OP_QUANTIZE:
        return check_unary(x, y, BIT(DT_F32), DT_I8);
    case OP_DEQUANTIZE:
        return check_unary(x, y, BIT(DT_U8) | BIT(DT_I8) | BIT(DT_I32), DT_F32);
    case OP_REQUANTIZE:
        err = check_unary(x, y, BIT(DT_U8) | BIT(DT_I8), DT_I8);
        if (err) return err;
        return activation_range_ok(node) && requant_shift_ok(node, a[A_SHIFT]) ? OK : ERR_ATTRIBUTE;
    case OP_ANSWER: /* int8 in, u8 [4 + x's bytes] out, one dim */
        if (x->dtype != DT_I8 || y->dtype != DT_U8 || y->count != 4 + x->nbytes || y->dims[0] != y->count)
            return ERR_SHAPE;
        return OK;
    case OP_GREEDY: { /* int8 logits (V, T), i32 ids (T,): u8 [8 T] out, one dim */
        const tensor_t *ids = operand(m, node, 1);
        if (x->dtype != DT_I8 || x->dims[2] != 1 || x->dims[3] != 1 || ids->dtype != DT_I32 ||
            ids->count != x->dims[1] || y->dtype != DT_U8 || y->count != 8 * x->dims[1] ||
            y->dims[0] != y->count)
            return ERR_SHAPE;
        return OK;
    }
    }
    return ERR_NODE;
}
