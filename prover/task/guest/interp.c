/*
 * The program proper: check the regions, parse and validate the model, allocate every activation,
 * run the nodes in file order, then write the output region
 *   [u32 length][28 zero bytes][u32 class][output tensor bytes, big-endian]
 * where class is the first index of the output's maximum. The single-node program (node tasks of
 * multi-phase games) runs the same code on a one-node file and writes the output tensor alone.
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

u32 argmax(const tensor_t *t) {
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

/* Points an activation tensor at a region's payload, which must be exactly its bytes. */
static int bind_input(tensor_t *t, const u8 *region) {
    u32 len;
    if (!payload_length(region, &len) || len != t->nbytes) return ERR_INPUT_REGION;
    t->data = (u8 *)region + REGION_HEADER;
    return OK;
}

/* Parses the model region's file and runs it from its bound inputs (`bind`, given the parsed
 * model); the output tensor is then computed. */
static int parse_and_execute(model_t *m, const u8 *model_region, arena_t *arena, int single_node,
                             int (*bind)(model_t *, const u8 *const *, u32), const u8 *const *regions,
                             u32 n_regions) {
    u32 model_len;
    if (!payload_length(model_region, &model_len)) return ERR_MODEL_REGION;
    int err = model_parse(m, model_region + REGION_HEADER, model_len, arena, single_node);
    if (!err) err = bind(m, regions, n_regions);
    return err ? err : execute(m, arena);
}

/* Writes [u32 length][28 zero bytes][head: n_head u32 values][the output tensor's bytes]. */
static int write_output(u8 *region, const u32 *head, u32 n_head, const tensor_t *out) {
    if (out->nbytes > REGION_SIZE - REGION_HEADER - 4 * n_head) return ERR_OUT_OF_MEMORY;
    store_u32(region, 4 * n_head + out->nbytes);
    u8 *dst = region + REGION_HEADER;
    for (u32 i = 0; i < n_head; i++, dst += 4) store_u32(dst, head[i]);
    for (u32 i = 0; i < out->nbytes; i++) dst[i] = out->data[i];
    return OK;
}

static int bind_graph_input(model_t *m, const u8 *const *regions, u32 n_regions) {
    (void)n_regions;
    return bind_input(&m->tensors[m->input_tensor], regions[0]);
}

/* A node file's activation inputs: the input tensor, then each other operand without stored data
 * in operand order (a repeated operand is bound once). */
static int bind_node_inputs(model_t *m, const u8 *const *regions, u32 n_regions) {
    int err = bind_input(&m->tensors[m->input_tensor], regions[0]);
    u32 bound = 1;
    const node_t *node = &m->nodes[0];
    for (u32 i = 0; i < MAX_INPUTS && !err; i++) {
        if (node->inputs[i] == NONE) continue;
        tensor_t *t = &m->tensors[node->inputs[i]];
        if (t->data) continue; /* stored, or bound already */
        if (bound == n_regions) return ERR_GRAPH_IO;
        err = bind_input(t, regions[bound++]);
    }
    return err;
}

int guest_run(const u8 *input_region, const u8 *model_region, u8 *output_region, u8 *arena_base,
              u32 arena_size) {
    u32 input_len;
    if (!payload_length(input_region, &input_len)) return ERR_INPUT_REGION;
    arena_t arena = {arena_base, arena_size, 0};
    model_t m;
    int err = parse_and_execute(&m, model_region, &arena, 0, bind_graph_input, &input_region, 1);
    if (err) return err;
    const tensor_t *out = &m.tensors[m.output_tensor];
    u32 class = argmax(out);
    return write_output(output_region, &class, 1, out);
}

int guest_run_node(const u8 *const *input_regions, u32 n_regions, const u8 *model_region,
                   u8 *output_region, u8 *arena_base, u32 arena_size) {
    arena_t arena = {arena_base, arena_size, 0};
    model_t m;
    int err = parse_and_execute(&m, model_region, &arena, 1, bind_node_inputs, input_regions, n_regions);
    return err ? err : write_output(output_region, 0, 0, &m.tensors[m.output_tensor]);
}
