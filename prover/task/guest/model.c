/*
 * Reading and validating a .ggml file (docs/model-format.md). Every read goes through a cursor
 * that checks the remaining length first, every count is bounded before it drives a loop, and
 * every size is computed with an overflow check, so a hostile file can only produce an error code.
 */
#include "guest.h"

typedef struct {
    const u8 *file;
    u32 len;
    u32 pos;
    int err; /* first error, sticky: later reads return 0 */
} cursor_t;

static u32 read_u32(cursor_t *c) {
    if (c->err) return 0;
    if (c->len - c->pos < 4) {
        c->err = ERR_TRUNCATED;
        return 0;
    }
    u32 v = load_u32(c->file + c->pos);
    c->pos += 4;
    return v;
}

static void skip_str(cursor_t *c) {
    u32 n = read_u32(c);
    if (c->err) return;
    if (n > MAX_STR) {
        c->err = ERR_LIMITS;
    } else if (c->len - c->pos < n) {
        c->err = ERR_TRUNCATED;
    } else {
        c->pos += n;
    }
}

static int parse_metadata(cursor_t *c, u32 n_meta) {
    for (u32 i = 0; i < n_meta && !c->err; i++) {
        skip_str(c);
        u32 type = read_u32(c);
        if (c->err) break;
        if (type <= 2) {
            read_u32(c);
        } else if (type == 3) {
            skip_str(c);
        } else {
            return ERR_METADATA;
        }
    }
    return c->err;
}

static u32 dtype_size(u32 dtype) { return dtype == DT_F32 || dtype == DT_I32 ? 4 : 1; }

static int parse_tensor(cursor_t *c, tensor_t *t, u32 version) {
    skip_str(c);
    t->dtype = read_u32(c);
    u32 n_dims = read_u32(c);
    if (c->err) return c->err;
    if (t->dtype > DT_I32 || n_dims < 1 || n_dims > 4) return ERR_TENSOR;
    u64 count = 1;
    for (u32 d = 0; d < 4; d++) {
        t->dims[d] = d < n_dims ? read_u32(c) : 1;
        if (t->dims[d] == 0) return c->err ? c->err : ERR_TENSOR;
        count *= t->dims[d];
        if (count >= 0x80000000u) return ERR_TENSOR; /* checked per factor: each is < 2^32 */
    }
    u64 nbytes = count * dtype_size(t->dtype);
    if (nbytes >= 0x80000000u) return ERR_TENSOR;
    t->count = (u32)count;
    t->nbytes = (u32)nbytes;
    t->data_offset = read_u32(c);
    if (version == GGML_VERSION_64) { /* high word, then low word; all ones is the no-data mark */
        u32 high = t->data_offset;
        t->data_offset = read_u32(c);
        if (high != 0 && !(high == NONE && t->data_offset == NONE)) return c->err ? c->err : ERR_DATA_OFFSET;
    }
    u32 n_scales = read_u32(c);
    if (c->err) return c->err;
    if (n_scales != 0 && n_scales != 1 && n_scales != t->dims[n_dims - 1]) return ERR_TENSOR;
    for (u32 s = 0; s < n_scales && !c->err; s++) read_u32(c); /* scales: the guest uses attributes */
    read_u32(c);                                               /* zero_point: likewise */
    return c->err;
}

static int parse_node(cursor_t *c, node_t *node) {
    node->op = read_u32(c);
    u32 n_inputs = read_u32(c);
    if (c->err) return c->err;
    if (node->op < OP_LINEAR || node->op > OP_LAST || n_inputs > MAX_INPUTS) return ERR_NODE;
    for (u32 i = 0; i < MAX_INPUTS; i++) node->inputs[i] = i < n_inputs ? read_u32(c) : NONE;
    u32 n_outputs = read_u32(c);
    if (c->err) return c->err;
    if (n_outputs != 1) return ERR_NODE;
    node->output = read_u32(c);

    for (u32 k = 0; k < A_COUNT; k++) node->attrs[k] = 0;
    node->attrs[A_STRIDE_H] = 1;
    node->attrs[A_STRIDE_W] = 1;
    node->attrs[A_GROUPS] = 1;
    node->attrs[A_ACT_MIN] = -128;
    node->attrs[A_ACT_MAX] = 127;
    node->attrs[A_PERM] = PERM_IDENTITY;
    node->attrs[A_ALPHA] = (i32)F32_ONE;
    u64 seen = 0; /* bit k: key k already given (A_COUNT <= 64) */
    u32 n_attrs = read_u32(c);
    if (c->err) return c->err;
    if (n_attrs >= A_COUNT) return ERR_NODE; /* more than the distinct keys: a repeat */
    for (u32 a = 0; a < n_attrs; a++) {
        u32 key = read_u32(c);
        i32 value = (i32)read_u32(c);
        if (c->err) return c->err;
        if (key == 0 || key >= A_COUNT || (seen >> key) & 1) return ERR_NODE;
        seen |= (u64)1 << key;
        node->attrs[key] = value;
    }
    return OK;
}

/* Sorts stored tensor indices by data offset (heapsort: O(n log n) steps for any file). */
static void sift_down(u32 *idx, const tensor_t *t, u32 root, u32 n) {
    for (;;) {
        u32 child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && t[idx[child + 1]].data_offset > t[idx[child]].data_offset) child++;
        if (t[idx[root]].data_offset >= t[idx[child]].data_offset) return;
        u32 tmp = idx[root];
        idx[root] = idx[child];
        idx[child] = tmp;
        root = child;
    }
}

static int check_stored_data(const tensor_t *tensors, u32 n_tensors, u32 data_start, u32 file_len,
                             arena_t *arena) {
    u32 *idx = arena_alloc(arena, 4 * n_tensors);
    if (!idx) return ERR_OUT_OF_MEMORY;
    u32 n = 0;
    for (u32 i = 0; i < n_tensors; i++) {
        const tensor_t *t = &tensors[i];
        if (t->data_offset == NONE) continue;
        if (t->data_offset % 32 != 0 || t->data_offset < data_start) return ERR_DATA_OFFSET;
        if (t->data_offset > file_len || file_len - t->data_offset < t->nbytes) return ERR_DATA_OFFSET;
        idx[n++] = i;
    }
    for (u32 i = n / 2; i-- > 0;) sift_down(idx, tensors, i, n);
    for (u32 end = n; end > 1; end--) {
        u32 tmp = idx[0];
        idx[0] = idx[end - 1];
        idx[end - 1] = tmp;
        sift_down(idx, tensors, 0, end - 1);
    }
    for (u32 i = 1; i < n; i++) {
        const tensor_t *prev = &tensors[idx[i - 1]];
        if (prev->data_offset + prev->nbytes > tensors[idx[i]].data_offset) return ERR_DATA_OFFSET;
    }
    return OK;
}

/* Node inputs must be ready when the node runs; outputs are produced exactly once. */
static int check_graph(model_t *m, arena_t *arena, int single_node) {
    u8 *ready = arena_alloc(arena, m->n_tensors);
    if (!ready) return ERR_OUT_OF_MEMORY;
    for (u32 i = 0; i < m->n_tensors; i++) ready[i] = m->tensors[i].data_offset != NONE;
    ready[m->input_tensor] = 1;
    if (single_node) {
        if (m->n_nodes != 1 || m->output_tensor != m->nodes[0].output) return ERR_GRAPH_IO;
        for (u32 i = 0; i < MAX_INPUTS; i++) {
            u32 t = m->nodes[0].inputs[i];
            if (t < m->n_tensors) ready[t] = 1; /* an activation input; NONE and dangling fail below */
        }
    }
    for (u32 n = 0; n < m->n_nodes; n++) {
        const node_t *node = &m->nodes[n];
        for (u32 i = 0; i < MAX_INPUTS; i++) {
            u32 t = node->inputs[i];
            if (t == NONE) continue;
            if (t >= m->n_tensors) return ERR_DANGLING;
            if (!ready[t]) return ERR_NOT_READY;
        }
        if (node->output >= m->n_tensors) return ERR_DANGLING;
        if (ready[node->output]) return ERR_OUTPUT_TENSOR;
        ready[node->output] = 1;
        int err = node_check(m, node);
        if (err) return err;
    }
    if (m->output_tensor == m->input_tensor || m->tensors[m->output_tensor].data_offset != NONE ||
        !ready[m->output_tensor])
        return ERR_GRAPH_IO;
    return OK;
}

int model_parse(model_t *m, const u8 *file, u32 file_len, arena_t *arena, int single_node) {
    cursor_t c = {file, file_len, 0, OK};
    u32 magic = read_u32(&c);
    u32 version = read_u32(&c);
    u32 n_meta = read_u32(&c);
    m->n_tensors = read_u32(&c);
    m->n_nodes = read_u32(&c);
    m->input_tensor = read_u32(&c);
    m->output_tensor = read_u32(&c);
    u32 data_start = read_u32(&c);
    if (c.err) return c.err;
    if (magic != GGML_MAGIC) return ERR_MAGIC;
    if (version != GGML_VERSION && version != GGML_VERSION_64) return ERR_VERSION;
    if (n_meta > MAX_META || m->n_tensors > MAX_TENSORS || m->n_nodes > MAX_NODES) return ERR_LIMITS;
    if (data_start % 32 != 0 || data_start > file_len) return ERR_HEADER;
    if (m->input_tensor >= m->n_tensors || m->output_tensor >= m->n_tensors) return ERR_GRAPH_IO;

    int err = parse_metadata(&c, n_meta);
    if (err) return err;
    m->tensors = arena_alloc(arena, m->n_tensors * sizeof(tensor_t));
    m->nodes = arena_alloc(arena, m->n_nodes * sizeof(node_t));
    if ((!m->tensors && m->n_tensors) || (!m->nodes && m->n_nodes)) return ERR_OUT_OF_MEMORY;
    for (u32 i = 0; i < m->n_tensors; i++) {
        err = parse_tensor(&c, &m->tensors[i], version);
        if (err) return err;
        tensor_t *t = &m->tensors[i];
        t->data = t->data_offset == NONE ? 0 : (u8 *)file + t->data_offset; /* bounds checked below */
    }
    for (u32 i = 0; i < m->n_nodes; i++) {
        err = parse_node(&c, &m->nodes[i]);
        if (err) return err;
    }
    if (c.pos > data_start) return ERR_HEADER; /* the tables overlap the data section */
    if (m->tensors[m->input_tensor].data_offset != NONE) return ERR_GRAPH_IO;
    err = check_stored_data(m->tensors, m->n_tensors, data_start, file_len, arena);
    if (err) return err;
    return check_graph(m, arena, single_node);
}
