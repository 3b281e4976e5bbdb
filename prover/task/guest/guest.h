/*
 * The guest inference program: reads a .ggml model (docs/model-format.md) and an input from their
 * memory regions (docs/memory-map.md), runs the graph (docs/arithmetic.md) and writes the output
 * region. Freestanding C: no libc, no floating-point unit (float is software, -msoft-float).
 *
 * The same sources build for the MIPS VM (start.c supplies _start and the syscalls) and for the
 * host (tests load them as a shared library and call guest_run on plain buffers), so every
 * multi-byte value is read and written through the big-endian helpers below rather than through
 * native loads: on big-endian MIPS they compile to plain loads, on a little-endian host they swap.
 */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;

#define NONE 0xFFFFFFFFu

/* Exit codes (all < 0xF0, which the VM reserves for traps). Listed in docs/guest.md. */
enum guest_status {
    OK = 0,
    ERR_INPUT_REGION = 1,   /* input length does not fit its region or differs from the input tensor */
    ERR_MODEL_REGION = 2,   /* model length does not fit its region */
    ERR_TRUNCATED = 3,      /* a header, table or string runs past the end of the model file */
    ERR_MAGIC = 4,          /* not a .ggml file */
    ERR_VERSION = 5,        /* unknown version */
    ERR_LIMITS = 6,         /* too many entries, or a string longer than 255 bytes */
    ERR_METADATA = 7,       /* unknown metadata value type */
    ERR_TENSOR = 8,         /* bad dtype, n_dims, zero dim, overflowing size, bad n_scales */
    ERR_DATA_OFFSET = 9,    /* misaligned, before data_start, past the end, or overlapping data */
    ERR_NODE = 10,          /* unknown op, wrong input/output count, unknown or repeated attribute */
    ERR_DANGLING = 11,      /* a tensor index >= n_tensors, or an absent required input */
    ERR_NOT_READY = 12,     /* a node input that is not stored, the graph input or computed earlier */
    ERR_OUTPUT_TENSOR = 13, /* a node output that has stored data, is the graph input or is produced twice */
    ERR_SHAPE = 14,         /* shapes or dtypes that do not fit the op */
    ERR_ATTRIBUTE = 15,     /* an attribute value out of range (stride 0, window larger than input...) */
    ERR_QUANT_PARAM = 16,   /* a requantization shift outside [-31, 31] ([-31, 30] with ROUNDING 1) */
    ERR_OUT_OF_MEMORY = 17, /* the activation arena is exhausted */
    ERR_GRAPH_IO = 18,      /* graph input/output index invalid, or the output is never computed */
    ERR_HEADER = 19,        /* data_start not a multiple of 32 or past the end of the file */
    ERR_INDEX = 20,         /* a GATHER token id outside the table */
};

/* Memory map (docs/memory-map.md). */
#define INPUT_REGION 0x10000000u
#define MODEL_REGION 0x20000000u
#define OUTPUT_REGION 0x30000000u
#define REGION_SIZE 0x10000000u
#define REGION_HEADER 32u                      /* the u32 length, then 28 zero bytes */
#define ARENA_SIZE 0x10000000u                 /* activations and scratch, taken with one mmap */
/* Node tasks (docs/memory-map.md): activation inputs in slot 1, then slots 8..15. */
#define NODE_INPUT_REGIONS 9u
#define NODE_EXTRA_INPUT_REGION 0x80000000u

/* .ggml constants (docs/model-format.md). */
#define GGML_MAGIC 0x67676d6cu
#define GGML_VERSION 1u
#define GGML_VERSION_64 2u /* 64-bit data offsets; data past 4 GiB cannot be in the guest's memory */
#define MAX_META 1024u
#define MAX_TENSORS 4096u
#define MAX_NODES 4096u
#define MAX_STR 255u
#define MAX_INPUTS 6u
#define MAX_NORM 16384u        /* LAYERNORM / RMSNORM row length: the int8 sum of squares stays < 2^61 */
#define SOFTMAX_ONE 0x100000u  /* int8 SOFTMAX: exp table entries lie in 0..2^20 */
#define PERM_IDENTITY 0xE4u    /* TRANSPOSE's default: output dim i is input dim i */
#define F32_ONE 0x3F800000u    /* MATMUL's default ALPHA */

enum dtype { DT_F32 = 0, DT_I8 = 1, DT_U8 = 2, DT_I32 = 3 };

enum op {
    OP_LINEAR = 1, OP_CONV2D, OP_MAXPOOL2D, OP_AVGPOOL2D, OP_SUBSAMPLE, OP_RELU, OP_TANH, OP_SIGMOID,
    OP_LOOKUP, OP_RESHAPE, OP_ADD, OP_MUL, OP_CLIP, OP_SOFTMAX, OP_QUANTIZE, OP_DEQUANTIZE,
    OP_REQUANTIZE, OP_MATMUL, OP_TRANSPOSE, OP_SLICE, OP_CONCAT, OP_GATHER, OP_LAYERNORM, OP_RMSNORM,
    OP_GELU, OP_SILU, OP_ROPE, OP_ANSWER, OP_GREEDY,
    OP_LAST = OP_GREEDY
};

enum attr {
    A_STRIDE_H = 1, A_STRIDE_W, A_PAD_TOP, A_PAD_LEFT, A_PAD_BOTTOM, A_PAD_RIGHT, A_GROUPS,
    A_KERNEL_H, A_KERNEL_W, A_X_ZP, A_Y_ZP, A_ACT_MIN, A_ACT_MAX, A_A_ZP, A_B_ZP, A_LEFT_SHIFT,
    A_A_MULT, A_A_SHIFT, A_B_MULT, A_B_SHIFT, A_Y_MULT, A_Y_SHIFT, A_MULT, A_SHIFT, A_SCALE, A_ZP,
    A_MIN_F, A_MAX_F, A_OFFSET, A_PERM, A_AXIS, A_START, A_CAUSAL, A_TRANSPOSE_B, A_EPS, A_EPS_F,
    A_ALPHA, A_ROUNDING, A_W_ZP,
    A_COUNT /* one past the last key */
};

typedef struct {
    u32 dtype;
    u32 dims[4];    /* innermost first; dims past n_dims are 1, so every tensor reads as 4-D */
    u32 count;      /* number of elements */
    u32 nbytes;
    u32 data_offset; /* file offset of stored data, NONE for an activation */
    u8 *data;        /* stored data, the input payload, or the activation once computed */
} tensor_t;

typedef struct {
    u32 op;
    u32 inputs[MAX_INPUTS]; /* NONE for an absent (optional) input */
    u32 output;
    i32 attrs[A_COUNT];     /* every key holds its value or its documented default */
} node_t;

typedef struct {
    u32 n_tensors, n_nodes, input_tensor, output_tensor;
    tensor_t *tensors;
    node_t *nodes;
} model_t;

/* A bump allocator over the activation arena; scratch space is released after each node. */
typedef struct {
    u8 *base;
    u32 size;
    u32 used;
} arena_t;

void *arena_alloc(arena_t *arena, u32 nbytes); /* 32-byte aligned, not zeroed; 0 when exhausted */

/* Runs the whole program on a memory layout like the VM's: each region pointer points at its
 * 32-byte header leaf. Returns the exit code. */
int guest_run(const u8 *input_region, const u8 *model_region, u8 *output_region, u8 *arena_base,
              u32 arena_size);

/* The single-node program: the model region holds a node file (a one-node model whose operands
 * without stored data are its activation inputs: the input tensor first, then the others in
 * operand order), bound to `input_regions` in that order. The output region receives the node's
 * output tensor alone: [u32 length][28 zero bytes][tensor bytes]. */
int guest_run_node(const u8 *const *input_regions, u32 n_regions, const u8 *model_region,
                   u8 *output_region, u8 *arena_base, u32 arena_size);

/* interp.c: the first index of a tensor's maximum (the class of the output region's payload). */
u32 argmax(const tensor_t *t);

/* model.c: parse and validate the file; the tensors and nodes live in the arena. With
 * `single_node`, the file must hold exactly one node, producing the output tensor, and the node's
 * operands without stored data count as given (the node's activation inputs). */
int model_parse(model_t *model, const u8 *file, u32 file_len, arena_t *arena, int single_node);

/* check.c: validate one node's operands, attributes and declared output shape. */
int node_check(const model_t *model, const node_t *node);

/* ops_int8.c / ops_f32.c: execute one validated node into its (allocated) output tensor. */
int run_int8(const model_t *model, const node_t *node, arena_t *scratch);
void run_f32(const model_t *model, const node_t *node);
/* ops_move.c: TRANSPOSE, SLICE, CONCAT and GATHER, for any dtype (elements are moved, not changed). */
int run_move(const model_t *model, const node_t *node);

/* softmath.c: the f32 functions the guest needs, in software-float-friendly C. */
float guest_expf(float x);
float guest_tanhf(float x);
float guest_sigmoidf(float x);
float guest_sqrtf(float x);
float guest_erff(float x);
i32 round_half_even_clamped(float x); /* to the nearest integer, ties to even, clamped to +-2^30 */

/* Big-endian access. __builtin_memcpy with a constant size compiles to a (possibly unaligned)
 * load or store without libc. */
static inline u32 load_u32(const u8 *p) {
    u32 v;
    __builtin_memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline void store_u32(u8 *p, u32 v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    __builtin_memcpy(p, &v, 4);
}

static inline i32 load_i32(const u8 *p) { return (i32)load_u32(p); }

static inline float bits_to_f32(u32 bits) {
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

static inline u32 f32_to_bits(float f) {
    u32 bits;
    __builtin_memcpy(&bits, &f, 4);
    return bits;
}

static inline float load_f32(const u8 *p) { return bits_to_f32(load_u32(p)); }
static inline void store_f32(u8 *p, float f) { store_u32(p, f32_to_bits(f)); }

static inline i32 clamp_i32(i32 v, i32 lo, i32 hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif
