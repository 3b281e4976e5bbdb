/* The int8 LINEAR's dot products (docs/arithmetic.md): y[m][o] = sum_k x[m][k] * (w[o][k] - w_zp)
 * for centred activations x (int16) and stored int8 weights w, in int32. The caller checks that
 * every partial sum fits in int32 (|x| |w - w_zp| K < 2^31), so each sum is the exact integer
 * whatever the order in which the compiler's vector code adds the products: the result is the
 * same on every CPU.
 *
 * The weights are streamed once per call: each weight row is read against all M activation rows
 * while it is in cache (a prompt of M positions reads a memory-mapped matrix once). Threads take
 * disjoint ranges of output rows, so threading changes no value. */
#include <pthread.h>
#include <stdint.h>

typedef struct {
    const int16_t *x;
    int64_t m, k;
    const int8_t *w;
    int64_t w_stride;
    int32_t w_zp;
    const int32_t *x_sums; /* sum_k x[r][k] per activation row */
    int32_t *y;
    int64_t out, first, last;
} job_t;

/* sum_i x[i] * w[i]: int16 times int8 in int32, the pattern compilers turn into multiply-add
 * vector instructions (pmaddwd). The zero point is applied once per row, outside this loop. */
static int32_t dot(const int16_t *restrict x, const int8_t *restrict w, int64_t k) {
    int32_t sum = 0;
    for (int64_t i = 0; i < k; i++) sum += (int32_t)x[i] * (int32_t)w[i];
    return sum;
}

/* The same for four activation rows (stride k) at once: each weight vector is widened once for
 * four products. */
static void dot4(const int16_t *restrict x, const int8_t *restrict w, int64_t k, int32_t out[4]) {
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i < k; i++) {
        int32_t v = w[i];
        s0 += (int32_t)x[i] * v;
        s1 += (int32_t)x[k + i] * v;
        s2 += (int32_t)x[2 * k + i] * v;
        s3 += (int32_t)x[3 * k + i] * v;
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static void *rows(void *argument) {
    const job_t *job = argument;
    int64_t k = job->k, out = job->out;
    for (int64_t o = job->first; o < job->last; o++) {
        const int8_t *row = job->w + o * job->w_stride;
        int32_t sums[4];
        int64_t r = 0;
        for (; r + 4 <= job->m; r += 4) {
            dot4(job->x + r * k, row, k, sums);
            for (int j = 0; j < 4; j++) job->y[(r + j) * out + o] = sums[j] - job->w_zp * job->x_sums[r + j];
        }
        /* sum x (w - zp) = sum x w - zp sum x: both terms are within the caller's bound */
        for (; r < job->m; r++) job->y[r * out + o] = dot(job->x + r * k, row, k) - job->w_zp * job->x_sums[r];
    }
    return 0;
}

/* y (m, out) = x (m, k) . (w - w_zp)^T, given x's row sums x_sums (m), for w's rows w + o * w_stride, o < out, over `threads`
 * (1 or 2) threads (one when a second cannot be started); returns 0, or -1 if the second thread
 * could not be joined. */
int int8_linear(const int16_t *x, const int32_t *x_sums, int64_t m, int64_t k, const int8_t *w, int64_t w_stride,
                int64_t out, int32_t w_zp, int32_t *y, int threads) {
    job_t whole = {x, m, k, w, w_stride, w_zp, x_sums, y, out, 0, out};
    if (threads < 2 || out < 2) {
        rows(&whole);
        return 0;
    }
    job_t first = whole, second = whole;
    first.last = second.first = out / 2;
    pthread_t helper;
    if (pthread_create(&helper, 0, rows, &second) != 0) {
        rows(&whole);
        return 0;
    }
    rows(&first);
    return pthread_join(helper, 0) == 0 ? 0 : -1;
}

/* MBQM of docs/arithmetic.md: rounding 0 (SRDHM then RDBPOT) or 1 (one rounding). */
static int32_t mbqm(int32_t x, int32_t m0, int32_t shift, int rounding) {
    if (rounding) {
        int total = 31 - shift;
        return (int32_t)(uint32_t)(uint64_t)((((int64_t)x * m0) + ((int64_t)1 << (total - 1))) >> total);
    }
    int left = shift > 0 ? shift : 0, right = shift < 0 ? -shift : 0;
    int32_t a = (int32_t)((uint32_t)x << left);
    int32_t high;
    if (a == INT32_MIN && m0 == INT32_MIN) {
        high = INT32_MAX;
    } else {
        int64_t ab = (int64_t)a * m0;
        high = (int32_t)((ab + (ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))) / (1LL << 31));
    }
    int32_t mask = (int32_t)((1LL << right) - 1);
    int32_t remainder = high & mask, threshold = (mask >> 1) + (high < 0);
    return (high >> right) + (remainder > threshold);
}

/* LINEAR's output: y[r][c] = clamp(y_zp + MBQM(acc[r][c], m0[c], shift[c]), lo, hi) for int32
 * accumulators (bias added) acc (m, n); m0 and shift have n entries, or one (stride 0). The shifts
 * are checked by the caller (-31..31, -31..30 for rounding 1). */
void int8_requantize(const int32_t *acc, int64_t m, int64_t n, const int32_t *m0, const int32_t *shift,
                     int64_t stride, int32_t y_zp, int32_t lo, int32_t hi, int rounding, int8_t *y) {
    for (int64_t r = 0; r < m; r++) {
        for (int64_t c = 0; c < n; c++) {
            int64_t v = (int64_t)y_zp + mbqm(acc[r * n + c], m0[c * stride], shift[c * stride], rounding);
            int32_t w = (int32_t)(uint32_t)(uint64_t)v; /* wraps like the engine's wrap32 */
            y[r * n + c] = (int8_t)(w < lo ? lo : w > hi ? hi : w);
        }
    }
}
