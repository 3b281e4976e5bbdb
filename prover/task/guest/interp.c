/*
 * The program proper: check the regions, parse and validate the model, allocate every activation,
 * run the nodes in file order, then write the output region
 *   [u32 length][28 zero bytes][u32 class][output tensor bytes, big-endian]
 * where class is the first index of the output's maximum.
 */
#include "guest.h"

void *arena_alloc(arena_t *arena, u32 nbytes) {
    u32 start = (arena->used + 31) & ~31u;
    if (start < arena->used || start > arena->size || arena->size - start < nbytes) return 0;
    arena->used = start + nbytes;
    return arena->base + start;
}

static int greater(const tensor_t *t, u32 i, u32 j) {
    switch (t->dtype) {
    case DT_F32:
        return load_f32(t->data + 4 * i) > load_f32(t->data + 4 * j);
    case DT_I32:
        return load_i32(t->data + 4 * i) > load_i32(t->data + 4 * j);
    case DT_I8:
        return (i8)t->data[i] > (i8)t->data[j];
    default:
        return t->data[i] > t->data[j];
    }
}

static u32 argmax(const tensor_t *t) {
    u32 best = 0;
    for (u32 i = 1; i < t->count; i++)
        if (greater(t, i, best)) best = i;
    return best;
}

/* A region's payload length, from its header leaf. */
static int payload_length(const u8 *region, u32 *len) {
    *len = load_u32(region);
    return *len <= REGION_SIZE - REGION_HEADER;
}

static int execute(model_t *m, arena_t *arena) {
    for (u32 n = 0; n < m->n_nodes; n++) {
        const node_t *node = &m->nodes[n];
        tensor_t *x = &m->tensors[node->inputs[0]], *y = &m->tensors[node->output];
        if (node->op == OP_RESHAPE) {
            y->data = x->data; /* tensors are never written after they are computed: share the bytes */
            continue;
        }
        y->data = arena_alloc(arena, y->nbytes);
        if (!y->data) return ERR_OUT_OF_MEMORY;
        if (node->op == OP_TRANSPOSE || node->op == OP_SLICE || node->op == OP_CONCAT || node->op == OP_GATHER) {
            int err = run_move(m, node);
            if (err) return err;
            continue;
        }
        if (x->dtype == DT_F32 || node->op == OP_DEQUANTIZE) {
            run_f32(m, node);
            continue;
        }
        u32 mark = arena->used; /* scratch space is released once the node is done */
        int err = run_int8(m, node, arena);
        arena->used = mark;
        if (err) return err;
    }
    return OK;
}

int guest_run(const u8 *input_region, const u8 *model_region, u8 *output_region, u8 *arena_base,
              u32 arena_size) {
    u32 input_len, model_len;
    if (!payload_length(input_region, &input_len)) return ERR_INPUT_REGION;
    if (!payload_length(model_region, &model_len)) return ERR_MODEL_REGION;
    arena_t arena = {arena_base, arena_size, 0};
    model_t m;
    int err = model_parse(&m, model_region + REGION_HEADER, model_len, &arena);
    if (err) return err;

    tensor_t *input = &m.tensors[m.input_tensor];
    if (input->nbytes != input_len) return ERR_INPUT_REGION;
    input->data = (u8 *)input_region + REGION_HEADER;
    err = execute(&m, &arena);
    if (err) return err;

    const tensor_t *out = &m.tensors[m.output_tensor];
    if (out->nbytes > REGION_SIZE - REGION_HEADER - 4) return ERR_OUT_OF_MEMORY;
    store_u32(output_region, 4 + out->nbytes);
    store_u32(output_region + REGION_HEADER, argmax(out));
    u8 *dst = output_region + REGION_HEADER + 4;
    for (u32 i = 0; i < out->nbytes; i++) dst[i] = out->data[i];
    return OK;
}
