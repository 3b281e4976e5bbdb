/*
 * The few transcendental functions the f32 ops need, written for software floating point: only
 * + - * / and comparisons, each of which compiler_rt rounds to nearest even, so the results are
 * the same on every host. Accuracy is a few ulp, ample for comparing predicted classes.
 */
#include "guest.h"

#define TWO_POW_23 8388608.0f
#define TWO_POW_30 1073741824.0f

i32 round_half_even_clamped(float x) {
    if (x != x) return 0; /* NaN */
    if (x >= TWO_POW_30) return 1 << 30;
    if (x <= -TWO_POW_30) return -(1 << 30);
    float ax = x < 0.0f ? -x : x;
    /* Adding and removing 2^23 leaves no fraction bits; the addition rounds half to even. Values
     * at or above 2^23 are integers already. */
    if (ax < TWO_POW_23) ax = (ax + TWO_POW_23) - TWO_POW_23;
    i32 r = (i32)ax;
    return x < 0.0f ? -r : r;
}

/* 2^k for k in [-126, 127], built from the exponent bits. */
static float pow2(i32 k) { return bits_to_f32((u32)(k + 127) << 23); }

/* exp(x) = 2^k * exp(r), x = k ln2 + r, |r| <= ln2 / 2 (Cody-Waite reduction with a two-part ln2:
 * k * LN2_HI is exact), exp(r) by its degree-7 Taylor polynomial (error < 2^-26). */
float guest_expf(float x) {
    if (x != x) return x;
    if (x > 88.72283f) return bits_to_f32(0x7F800000u); /* overflows to +inf */
    if (x < -103.97208f) return 0.0f;                    /* underflows to zero */
    const float LOG2E = 1.44269504f, LN2_HI = 0.693145751953125f, LN2_LO = 1.42860677e-6f;
    i32 k = round_half_even_clamped(x * LOG2E);
    float kf = (float)k;
    float r = (x - kf * LN2_HI) - kf * LN2_LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    if (k > 127) return p * pow2(127) * pow2(k - 127);
    if (k < -126) return p * pow2(-126) * pow2(k + 126);
    return p * pow2(k);
}

/* tanh(x) = 1 - 2 / (exp(2x) + 1) for x > 0, odd; tanh(x) = x to float precision for tiny x. */
float guest_tanhf(float x) {
    if (x != x) return x;
    float ax = x < 0.0f ? -x : x, t;
    if (ax > 9.0f) {
        t = 1.0f;
    } else if (ax < 0.0004f) {
        t = ax;
    } else {
        t = 1.0f - 2.0f / (guest_expf(2.0f * ax) + 1.0f);
    }
    return x < 0.0f ? -t : t;
}

float guest_sigmoidf(float x) { return 1.0f / (1.0f + guest_expf(-x)); }

/* sqrt(x) by Newton's iteration from an exponent-halving first guess (a few ulp). */
float guest_sqrtf(float x) {
    if (x != x || x < 0.0f) return bits_to_f32(0x7FC00000u);
    if (x == 0.0f || x > 3.4e38f) return x;
    float r = bits_to_f32(0x1FBD1DF5u + (f32_to_bits(x) >> 1));
    for (int i = 0; i < 4; i++) r = 0.5f * (r + x / r);
    return r;
}

/* erf(x) by Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7), odd. */
float guest_erff(float x) {
    if (x != x) return x;
    float ax = x < 0.0f ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float e = 1.0f - p * t * guest_expf(-ax * ax);
    return x < 0.0f ? -e : e;
}
