/*
 * TRANSPOSE, SLICE, CONCAT and GATHER: elements are moved, never changed, so one kernel serves
 * every dtype (f32 and i32 elements are 4 big-endian bytes copied as they are).
 */
#include "guest.h"

static u32 element_size(const tensor_t *t) { return t->dtype == DT_F32 || t->dtype == DT_I32 ? 4 : 1; }

static void copy_bytes(u8 *dst, const u8 *src, u32 n) {
    for (u32 i = 0; i < n; i++) dst[i] = src[i];
}

/* Output dim i is input dim (PERM >> 2i) & 3 (check.c: a permutation). */
static void transpose(const tensor_t *x, tensor_t *y, u32 perm) {
    u32 size = element_size(x), stride[4], step[4];
    stride[0] = 1;
    for (u32 d = 1; d < 4; d++) stride[d] = stride[d - 1] * x->dims[d - 1];
    for (u32 d = 0; d < 4; d++) step[d] = stride[(perm >> (2 * d)) & 3] * size;
    u8 *dst = y->data;
    for (u32 o3 = 0; o3 < y->dims[3]; o3++)
        for (u32 o2 = 0; o2 < y->dims[2]; o2++)
            for (u32 o1 = 0; o1 < y->dims[1]; o1++) {
                const u8 *src = x->data + o3 * step[3] + o2 * step[2] + o1 * step[1];
                for (u32 o0 = 0; o0 < y->dims[0]; o0++, src += step[0], dst += size) copy_bytes(dst, src, size);
            }
}

/* The elements below `axis` form one block; the dims above it repeat the pattern `outer` times. */
static u32 inner_elements(const tensor_t *t, u32 axis) {
    u32 n = 1;
    for (u32 d = 0; d < axis; d++) n *= t->dims[d];
    return n;
}

static u32 outer_count(const tensor_t *t, u32 axis) {
    u32 n = 1;
    for (u32 d = axis + 1; d < 4; d++) n *= t->dims[d];
    return n;
}

static void slice(const tensor_t *x, tensor_t *y, u32 axis, u32 start) {
    u32 size = element_size(x), inner = inner_elements(x, axis) * size;
    u32 in_run = x->dims[axis] * inner, out_run = y->dims[axis] * inner;
    for (u32 o = 0, outer = outer_count(x, axis); o < outer; o++)
        copy_bytes(y->data + o * out_run, x->data + o * in_run + start * inner, out_run);
}

static void concat(const model_t *m, const node_t *node, tensor_t *y, u32 axis) {
    u32 size = element_size(y), inner = inner_elements(y, axis) * size, out_run = y->dims[axis] * inner;
    u32 at = 0; /* bytes of each output run filled by the inputs so far */
    for (u32 i = 0; i < MAX_INPUTS; i++) {
        if (node->inputs[i] == NONE) continue;
        const tensor_t *part = &m->tensors[node->inputs[i]];
        u32 run = part->dims[axis] * inner;
        for (u32 o = 0, outer = outer_count(y, axis); o < outer; o++)
            copy_bytes(y->data + o * out_run + at, part->data + o * run, run);
        at += run;
    }
}

/* y[t] = table[ids[t]]: rows of E elements of the (E, V) table. */
static int gather(const tensor_t *ids, const tensor_t *table, tensor_t *y) {
    u32 row = table->dims[0] * element_size(table), vocabulary = table->dims[1];
    for (u32 t = 0; t < ids->count; t++) {
        u32 id = load_u32(ids->data + 4 * t); /* a negative id is a huge u32: out of range too */
        if (id >= vocabulary) return ERR_INDEX;
        copy_bytes(y->data + t * row, table->data + id * row, row);
    }
    return OK;
}

int run_move(const model_t *m, const node_t *node) {
    const tensor_t *x = &m->tensors[node->inputs[0]];
    tensor_t *y = &m->tensors[node->output];
    const i32 *a = node->attrs;
    switch (node->op) {
    case OP_TRANSPOSE:
        transpose(x, y, (u32)a[A_PERM]);
        return OK;
    case OP_SLICE:
        slice(x, y, (u32)a[A_AXIS], (u32)a[A_START]);
        return OK;
    case OP_CONCAT:
        concat(m, node, y, (u32)a[A_AXIS]);
        return OK;
    default: /* OP_GATHER: the caller sends no other op here */
        return gather(x, &m->tensors[node->inputs[1]], y);
    }
}
