/* kernels_avx512_math.h: small AVX-512 helpers shared by the AVX-512 kernel
 * files: the target attribute, tail masks, a vector exp, a 16x16 transpose and
 * the store of a matrix product's register tile. Private to
 * src/model; include only from files whose functions carry AD_AVX512. */
#ifndef AD_MODEL_KERNELS_AVX512_MATH_H
#define AD_MODEL_KERNELS_AVX512_MATH_H

#include <immintrin.h>
#include <stddef.h>

#define AD_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

/* Mask of the first min(rem, 16) lanes. */
AD_AVX512 static inline __mmask16 ad_tail_mask(size_t rem) {
    return rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
}

/* 16-float load and store: plain when `full` (a compile-time constant in the
 * callers' loop bodies), under mask m otherwise. Masked loads run at about 60%
 * of the plain rate on the CPUs this was tuned on, so loops use them for their
 * tails only. */
AD_AVX512 static inline __attribute__((always_inline)) __m512 ad_ld(const float *p, __mmask16 m,
                                                                    const int full) {
    return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

AD_AVX512 static inline __attribute__((always_inline)) void ad_st(float *p, __m512 x, __mmask16 m,
                                                                  const int full) {
    if (full)
        _mm512_storeu_ps(p, x);
    else
        _mm512_mask_storeu_ps(p, m, x);
}

/* exp(x) for 16 floats, within 2 ulp of expf over the normal range (Cephes
 * polynomial after reduction by ln 2, scaled with vscalefps). Inputs are
 * clamped to [-104, 88.72]: very negative values give 0 (or a denormal), large
 * ones FLT_MAX-ish rather than inf. */
AD_AVX512 static inline __m512 ad_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.72283f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* SwiGLU on 16 lanes, h = g s(g) u with s(g) = 1 / (1 + exp(-g)), and its
 * gradients dgate = dh u s (1 + g (1 - s)), dup = dh g s: one definition for
 * the fp32 kernels and the bf16 ones that feed the products. */
AD_AVX512 static inline __attribute__((always_inline)) __m512 ad_sigmoid512(__m512 g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, ad_exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

AD_AVX512 static inline __attribute__((always_inline)) __m512 ad_swiglu512(__m512 g, __m512 u) {
    return _mm512_mul_ps(_mm512_mul_ps(g, ad_sigmoid512(g)), u);
}

AD_AVX512 static inline __attribute__((always_inline)) void
ad_swiglu_grad512(__m512 d, __m512 g, __m512 u, __m512 *dgate, __m512 *dup) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 sig = ad_sigmoid512(g);
    __m512 t = _mm512_fmadd_ps(g, _mm512_sub_ps(one, sig), one);
    *dgate = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, u), sig), t);
    *dup = _mm512_mul_ps(_mm512_mul_ps(d, g), sig);
}

/* Writes (or adds) the first mr (<= nrow <= 12) rows and nr (<= 32) columns of
 * a register tile of 2 x 16 columns, c0[i] and c1[i] for row i, to C. */
AD_AVX512 static inline __attribute__((always_inline)) void
ad_store_tile(float *c, size_t ldc, __m512 *c0, __m512 *c1, size_t mr, size_t nr, int accumulate,
              const int nrow) {
    __mmask16 m0 = ad_tail_mask(nr), m1 = nr > 16 ? ad_tail_mask(nr - 16) : 0;
#pragma GCC unroll 12
    for (int i = 0; i < nrow; i++) {
        if ((size_t)i >= mr) break;
        float *row = c + (size_t)i * ldc;
        if (nr == 32) { /* plain loads and stores: masked ones cost more on AMD's cores */
            if (accumulate) {
                c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(row));
                c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(row + 16));
            }
            _mm512_storeu_ps(row, c0[i]);
            _mm512_storeu_ps(row + 16, c1[i]);
            continue;
        }
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, row));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, row + 16));
        }
        _mm512_mask_storeu_ps(row, m0, c0[i]);
        _mm512_mask_storeu_ps(row + 16, m1, c1[i]);
    }
}

/* Transposes the 16x16 block held in r[0..16) in place (r[i][j] -> r[j][i]):
 * pairs, then quads within 128-bit lanes, then the lanes themselves. */
AD_AVX512 static inline __attribute__((always_inline)) void ad_transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    for (int q = 0; q < 4; q++) {
        u[4 * q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
    /* u[4q + c] holds, in 128-bit lane L, rows 4q..4q+3 of column 4L + c */
    for (int c = 0; c < 4; c++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 y0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

/* The k loop of a register tile: STEP (a statement that uses k) for k in
 * [0, n). With PF (a constant) the first pf_lines steps also prefetch one
 * 64-byte line each from pf on into L1, and lines past the n steps follow the
 * loop: the next weight panel, fetched while this one computes (decoding on
 * packed weights). Without PF it is the plain loop. */
#define AD_TILE_STEPS(STEP, k, n, PF, pf, pf_lines)                                                \
    do {                                                                                           \
        size_t k = 0, np_ = !(PF) ? 0 : (pf_lines) < (n) ? (pf_lines) : (n);                       \
        for (; k < np_; k++) {                                                                     \
            STEP;                                                                                  \
            _mm_prefetch((pf) + 64 * k, _MM_HINT_T0);                                              \
        }                                                                                          \
        _Pragma("GCC unroll 2") for (; k < (n); k++) STEP;                                         \
        for (size_t l_ = np_; (PF) && l_ < (pf_lines); l_++)                                       \
            _mm_prefetch((pf) + 64 * l_, _MM_HINT_T0);                                             \
    } while (0)

#endif
