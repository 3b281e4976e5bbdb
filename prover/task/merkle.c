/*
 * Native Merkle roots of memory regions (docs/memory-map.md): Keccak-256 (the original Keccak
 * padding, as Ethereum's keccak256) written from the Keccak reference (FIPS 202's permutation),
 * and the binary tree of 32-byte leaves with node = keccak256(left || right) and all-zero subtrees
 * replaced by their precomputed hashes. Built for the host by prover/task/merkle.py.
 *
 * Speed: nearly every hash of a region's tree is one permutation over 32 bytes of payload, so the
 * permutation is the cost. It runs on LANES independent states at once (a lane of each 512-bit
 * vector per state, clang's vector extensions: AVX-512's rotates where the host has them, two AVX2
 * registers per vector on an AVX2 host, plain 64-bit code on another), and the tree is hashed
 * level by level in chunks of 2^CHUNK_LEVEL leaves so that a level's pairs fill the lanes; above
 * the chunks, and for small regions, it is hashed pair by pair. Position trees (the tensor and
 * nodes trees of graph tasks) are hashed level by level too, and their prefix roots LANES paths
 * at a time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
typedef uint64_t lanes_t __attribute__((vector_size(8 * LANES)));

static const uint64_t ROUND_CONSTANTS[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

static inline lanes_t rotl(lanes_t v, unsigned n) { return (v << n) | (v >> ((64 - n) & 63)); }

/* The permutation of LANES states, with its 25 lanes in variables (aXY: lane x + 5y). Each round is theta (the
 * column parities c, d), rho and pi together (lane (x, y) rotated by its rho offset lands at
 * (y, 2x + 3y)), chi along rows, iota: written out from FIPS 202's
 * definitions; about three times faster than the loops over lane indices. */
static void keccak_f1600(lanes_t a[25]) {
    lanes_t a00 = a[0], a01 = a[1], a02 = a[2], a03 = a[3], a04 = a[4];
    lanes_t a05 = a[5], a06 = a[6], a07 = a[7], a08 = a[8], a09 = a[9];
    lanes_t a10 = a[10], a11 = a[11], a12 = a[12], a13 = a[13], a14 = a[14];
    lanes_t a15 = a[15], a16 = a[16], a17 = a[17], a18 = a[18], a19 = a[19];
    lanes_t a20 = a[20], a21 = a[21], a22 = a[22], a23 = a[23], a24 = a[24];
    for (int round = 0; round < 24; round++) {
        lanes_t c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20, c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21;
        lanes_t c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22, c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23;
        lanes_t c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24;
        lanes_t d0 = c4 ^ rotl(c1, 1);
        lanes_t d1 = c0 ^ rotl(c2, 1);
        lanes_t d2 = c1 ^ rotl(c3, 1);
        lanes_t d3 = c2 ^ rotl(c4, 1);
        lanes_t d4 = c3 ^ rotl(c0, 1);
        lanes_t b00 = (a00 ^ d0); lanes_t b01 = rotl(a06 ^ d1, 44); lanes_t b02 = rotl(a12 ^ d2, 43); lanes_t b03 = rotl(a18 ^ d3, 21); lanes_t b04 = rotl(a24 ^ d4, 14);
        lanes_t b05 = rotl(a03 ^ d3, 28); lanes_t b06 = rotl(a09 ^ d4, 20); lanes_t b07 = rotl(a10 ^ d0, 3); lanes_t b08 = rotl(a16 ^ d1, 45); lanes_t b09 = rotl(a22 ^ d2, 61);
        lanes_t b10 = rotl(a01 ^ d1, 1); lanes_t b11 = rotl(a07 ^ d2, 6); lanes_t b12 = rotl(a13 ^ d3, 25); lanes_t b13 = rotl(a19 ^ d4, 8); lanes_t b14 = rotl(a20 ^ d0, 18);
        lanes_t b15 = rotl(a04 ^ d4, 27); lanes_t b16 = rotl(a05 ^ d0, 36); lanes_t b17 = rotl(a11 ^ d1, 10); lanes_t b18 = rotl(a17 ^ d2, 15); lanes_t b19 = rotl(a23 ^ d3, 56);
        lanes_t b20 = rotl(a02 ^ d2, 62); lanes_t b21 = rotl(a08 ^ d3, 55); lanes_t b22 = rotl(a14 ^ d4, 39); lanes_t b23 = rotl(a15 ^ d0, 41); lanes_t b24 = rotl(a21 ^ d1, 2);
        a00 = b00 ^ (~b01 & b02);
        a01 = b01 ^ (~b02 & b03);
        a02 = b02 ^ (~b03 & b04);
        a03 = b03 ^ (~b04 & b00);
        a04 = b04 ^ (~b00 & b01);
        a05 = b05 ^ (~b06 & b07);
        a06 = b06 ^ (~b07 & b08);
        a07 = b07 ^ (~b08 & b09);
        a08 = b08 ^ (~b09 & b05);
        a09 = b09 ^ (~b05 & b06);
        a10 = b10 ^ (~b11 & b12);
        a11 = b11 ^ (~b12 & b13);
        a12 = b12 ^ (~b13 & b14);
        a13 = b13 ^ (~b14 & b10);
        a14 = b14 ^ (~b10 & b11);
        a15 = b15 ^ (~b16 & b17);
        a16 = b16 ^ (~b17 & b18);
        a17 = b17 ^ (~b18 & b19);
        a18 = b18 ^ (~b19 & b15);
        a19 = b19 ^ (~b15 & b16);
        a20 = b20 ^ (~b21 & b22);
        a21 = b21 ^ (~b22 & b23);
        a22 = b22 ^ (~b23 & b24);
        a23 = b23 ^ (~b24 & b20);
        a24 = b24 ^ (~b20 & b21);
        a00 ^= ROUND_CONSTANTS[round];
    }
    a[0] = a00, a[1] = a01, a[2] = a02, a[3] = a03, a[4] = a04;
    a[5] = a05, a[6] = a06, a[7] = a07, a[8] = a08, a[9] = a09;
    a[10] = a10, a[11] = a11, a[12] = a12, a[13] = a13, a[14] = a14;
    a[15] = a15, a[16] = a16, a[17] = a17, a[18] = a18, a[19] = a19;
    a[20] = a20, a[21] = a21, a[22] = a22, a[23] = a23, a[24] = a24;
}

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* keccak256 of `count` (1..LANES) 64-byte messages in[j] into out[j], their permutations side by
 * side (64 bytes fit the 136-byte rate: one permutation each). Every input is read before any
 * output is written, so an output may be an input. */
static void hash_gathered(const uint8_t *const in[], uint8_t *const out[], unsigned count) {
    lanes_t a[25] = {0};
    for (unsigned j = 0; j < count; j++)
        for (int i = 0; i < 8; i++) a[i][j] = load_le64(in[j] + 8 * i);
    a[8] ^= 0x01;                   /* padding: 0x01 after the message ... */
    a[16] ^= 0x8000000000000000ULL; /* ... and 0x80 in the last byte of the rate */
    keccak_f1600(a);
    for (unsigned j = 0; j < count; j++)
        for (int i = 0; i < 4; i++) store_le64(out[j] + 8 * i, a[i][j]);
}

/* keccak256 of `count` (1..LANES) 64-byte messages at in + 64 j into out + 32 j. */
static void hash_pairs(const uint8_t *in, uint8_t *out, unsigned count) {
    const uint8_t *ins[LANES];
    uint8_t *outs[LANES];
    for (unsigned j = 0; j < count; j++) ins[j] = in + 64 * j, outs[j] = out + 32 * j;
    hash_gathered(ins, outs, count);
}

/* Messages queued until LANES of them fill a permutation. */
typedef struct {
    const uint8_t *in[LANES];
    uint8_t *out[LANES];
    unsigned count;
} queue_t;

static void queue_flush(queue_t *q) {
    if (q->count) hash_gathered(q->in, q->out, q->count);
    q->count = 0;
}

static void queue_push(queue_t *q, const uint8_t *in, uint8_t *out) {
    q->in[q->count] = in, q->out[q->count] = out;
    if (++q->count == LANES) queue_flush(q);
}

/* keccak256(left || right). */
static void hash_pair(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]) {
    uint8_t in[64];
    memcpy(in, left, 32);
    memcpy(in + 32, right, 32);
    hash_pairs(in, out, 1);
}

#define MAX_LEVEL 40

typedef struct {
    const uint8_t *header; /* leaf 0 */
    const uint8_t *payload; /* leaves 1.. */
    uint64_t payload_len;
    uint64_t n_leaves;
} region_t;

/* ZERO[l]: the root of 2^l zero leaves, filled once by merkle_init (merkle.py calls it on load). */
static uint8_t ZERO[MAX_LEVEL + 1][32];

void merkle_init(void) {
    for (unsigned l = 1; l <= MAX_LEVEL; l++) hash_pair(ZERO[l - 1], ZERO[l - 1], ZERO[l]);
}

static void leaf(const region_t *r, uint64_t index, uint8_t out[32]) {
    memset(out, 0, 32);
    if (index == 0) {
        memcpy(out, r->header, 32);
    } else if (index < r->n_leaves) {
        uint64_t start = (index - 1) * 32, n = r->payload_len - start < 32 ? r->payload_len - start : 32;
        memcpy(out, r->payload + start, n);
    }
}

#define CHUNK_LEVEL 10 /* 1024 leaves: 32 KiB, a level's pairs in batches of LANES */

/* The root of the 2^CHUNK_LEVEL leaves from `first`, level by level in place (a level's nodes
 * into the first half of the room of the one below): only the nodes over some payload are hashed,
 * the last one's sibling, when it has no payload, being that level's zero root. */
static void chunk_root(const region_t *r, uint64_t first, uint8_t out[32]) {
    static _Thread_local uint8_t nodes[32 << CHUNK_LEVEL];
    uint64_t live = r->n_leaves - first < ((uint64_t)1 << CHUNK_LEVEL) ? r->n_leaves - first
                                                                       : (uint64_t)1 << CHUNK_LEVEL;
    for (uint64_t i = 0; i < live; i++) leaf(r, first + i, nodes + 32 * i);
    for (unsigned level = 0; level < CHUNK_LEVEL; level++) {
        if (live % 2) memcpy(nodes + 32 * live, ZERO[level], 32);
        uint64_t pairs = (live + 1) / 2;
        for (uint64_t j = 0; j < pairs; j += LANES)
            hash_pairs(nodes + 64 * j, nodes + 32 * j, pairs - j < LANES ? (unsigned)(pairs - j) : LANES);
        live = pairs;
    }
    memcpy(out, nodes, 32);
}

static void subtree(const region_t *r, uint64_t first, unsigned level, uint8_t out[32]) {
    if (first >= r->n_leaves) {
        memcpy(out, ZERO[level], 32);
        return;
    }
    if (level == CHUNK_LEVEL) {
        chunk_root(r, first, out);
        return;
    }
    if (level == 0) {
        leaf(r, first, out);
        return;
    }
    uint8_t left[32], right[32];
    subtree(r, first, level - 1, left);
    subtree(r, first + ((uint64_t)1 << (level - 1)), level - 1, right);
    hash_pair(left, right, out);
}

/* The root of the subtree of 2^level leaves whose leaf 0 is `header` (32 bytes) and whose next
 * leaves are `payload` (zero-padded to whole leaves), zeros after. Returns 0, or -1 when the
 * content does not fit. */
int region_root(const uint8_t *header, const uint8_t *payload, uint64_t payload_len, unsigned level,
                uint8_t out[32]) {
    if (level > MAX_LEVEL) return -1;
    region_t r = {header, payload, payload_len, 1 + (payload_len + 31) / 32};
    if (level < 63 && r.n_leaves > ((uint64_t)1 << level)) return -1;
    subtree(&r, 0, level, out);
    return 0;
}

/* The region roots (`region_root`, at `level`) of `count` payloads, payloads[i] of lengths[i]
 * bytes behind the header leaf of a data region (u32 big-endian length, 28 zero bytes), into
 * out + 32 i: a graph trace's thousands of tensors in one call, hashed by one thread without
 * returning to Python between them. Most are small (a tile's output: a few KiB), and a small
 * region's own levels leave most of a permutation's lanes empty (its top levels, up to `level`,
 * are one hash each): so regions of up to a chunk are hashed together, level by level, the
 * pairs of all of them queued into full permutations; a larger one by `region_root`, its chunks
 * full already. Returns 0, or -1 when a payload does not fit or memory runs out. */
int region_roots(uint64_t count, const uint8_t *const *payloads, const uint64_t *lengths, unsigned level,
                 uint8_t *out) {
    if (level > MAX_LEVEL) return -1;
    region_t *regions = malloc((count + 1) * sizeof(region_t));
    uint8_t *headers = calloc(count + 1, 32), *edges = malloc(128 * (count + 1));
    uint64_t *offsets = malloc((count + 1) * sizeof(uint64_t)), *live = malloc((count + 1) * sizeof(uint64_t));
    uint64_t room = 32;
    int status = regions && headers && edges && offsets && live ? 0 : -1;
    for (uint64_t i = 0; status == 0 && i < count; i++) {
        for (int b = 0; b < 4; b++) headers[32 * i + b] = (uint8_t)(lengths[i] >> (24 - 8 * b));
        regions[i] = (region_t){headers + 32 * i, payloads[i], lengths[i], 1 + (lengths[i] + 31) / 32};
        if (lengths[i] > 0xffffffffULL || (level < 63 && regions[i].n_leaves > ((uint64_t)1 << level))) {
            status = -1;
        } else if (regions[i].n_leaves > ((uint64_t)1 << CHUNK_LEVEL)) {
            subtree(&regions[i], 0, level, out + 32 * i);
            live[i] = 0; /* its root is out already */
        } else {
            offsets[i] = room;
            room += 32 * ((regions[i].n_leaves + 1) / 2 + 1); /* a level's nodes and a zero sibling */
            live[i] = regions[i].n_leaves;
        }
    }
    uint8_t *below = status == 0 ? malloc(room) : NULL, *above = status == 0 ? malloc(room) : NULL;
    if (!below || !above) status = -1;
    queue_t queue = {.count = 0};
    /* Level 0, the leaves' pairs: one within the payload is hashed where it lies; the first (the
     * header and the first leaf) and a last one past the payload's end are copied to `edges`. */
    for (uint64_t i = 0; status == 0 && level > 0 && i < count; i++) {
        if (!live[i]) continue;
        const region_t *r = &regions[i];
        uint64_t pairs = (r->n_leaves + 1) / 2;
        for (uint64_t k = 0; k < pairs; k++) {
            const uint8_t *in;
            if (k > 0 && (2 * k + 1) * 32 <= r->payload_len) {
                in = r->payload + (2 * k - 1) * 32;
            } else {
                uint8_t *edge = edges + 128 * i + (k ? 64 : 0);
                leaf(r, 2 * k, edge);
                leaf(r, 2 * k + 1, edge + 32);
                in = edge;
            }
            queue_push(&queue, in, above + offsets[i] + 32 * k);
        }
        live[i] = pairs;
    }
    queue_flush(&queue);
    /* Levels 1 ..: `below` holds level l's nodes of every region, `above` gets level l + 1's. */
    for (unsigned l = 1; status == 0 && l < level; l++) {
        uint8_t *swap = below;
        below = above, above = swap;
        for (uint64_t i = 0; i < count; i++) {
            if (!live[i]) continue;
            uint8_t *nodes = below + offsets[i];
            if (live[i] % 2) memcpy(nodes + 32 * live[i], ZERO[l], 32);
            uint64_t pairs = (live[i] + 1) / 2;
            for (uint64_t k = 0; k < pairs; k++) queue_push(&queue, nodes + 64 * k, above + offsets[i] + 32 * k);
            live[i] = pairs;
        }
        queue_flush(&queue);
    }
    for (uint64_t i = 0; status == 0 && i < count; i++)
        if (live[i]) memcpy(out + 32 * i, level ? above + offsets[i] : headers + 32 * i, 32);
    free(regions), free(headers), free(edges), free(offsets), free(live), free(below), free(above);
    return status;
}

/* keccak256 of 64 bytes, for tests of the permutation against the Python keccak. */
void keccak_pair(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]) {
    hash_pair(left, right, out);
}

/* A position tree (prover/task/commitments.py): `depth` levels over 2^depth leaves, of which the
 * first `count` are `leaves` (32 bytes each) and the rest zero. Writes its nodes level by level
 * into `levels`, level l holding ceil(count / 2^l) nodes (the last one's missing sibling is
 * ZERO[l]), up to the root; and, when `states` is not NULL, states + 32 i: the root of the tree
 * holding only leaves 0..i (a graph trace's G_i). G_i's path takes, where i's bit l is set, the
 * left sibling from the whole tree (a subtree of leaves before i only), and a zero subtree on the
 * right elsewhere; so every position's path is hashed independently, LANES positions at a time.
 * Returns 0, or -1 when the leaves do not fit. */
int position_tree(const uint8_t *leaves, uint64_t count, unsigned depth, uint8_t *levels, uint8_t *states) {
    if (depth > MAX_LEVEL || count == 0 || count > ((uint64_t)1 << depth)) return -1;
    const uint8_t *below = levels;
    uint64_t live = count;
    memcpy(levels, leaves, 32 * count);
    for (unsigned level = 0; level < depth; level++) {
        uint8_t *above = (uint8_t *)below + 32 * live;
        uint64_t pairs = (live + 1) / 2;
        for (uint64_t j = 0; j < pairs; j += LANES) {
            uint8_t in[64 * LANES];
            unsigned batch = pairs - j < LANES ? (unsigned)(pairs - j) : LANES;
            for (unsigned b = 0; b < batch; b++) {
                uint64_t left = 2 * (j + b);
                memcpy(in + 64 * b, below + 32 * left, 32);
                memcpy(in + 64 * b + 32, left + 1 < live ? below + 32 * (left + 1) : ZERO[level], 32);
            }
            hash_pairs(in, above + 32 * j, batch);
        }
        below = above;
        live = pairs;
    }
    if (states == NULL) return 0;
    for (uint64_t first = 0; first < count; first += LANES) {
        unsigned batch = count - first < LANES ? (unsigned)(count - first) : LANES;
        uint8_t nodes[32 * LANES], in[64 * LANES];
        memcpy(nodes, leaves + 32 * first, 32 * batch);
        const uint8_t *level_nodes = levels;
        uint64_t level_count = count;
        for (unsigned level = 0; level < depth; level++) {
            for (unsigned b = 0; b < batch; b++) {
                uint64_t index = (first + b) >> level;
                int right = index & 1;
                memcpy(in + 64 * b + 32 * right, nodes + 32 * b, 32);
                memcpy(in + 64 * b + 32 * !right, right ? level_nodes + 32 * (index - 1) : ZERO[level], 32);
            }
            hash_pairs(in, nodes, batch);
            level_nodes += 32 * level_count;
            level_count = (level_count + 1) / 2;
        }
        memcpy(states + 32 * first, nodes, 32 * batch);
    }
    return 0;
}
