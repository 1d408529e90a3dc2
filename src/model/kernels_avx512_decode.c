/* kernels_avx512_decode.c: the AVX-512 body of one decoding query against its
 * KV cache, all heads of the row at once (kernels_attention.c calls it when
 * the CPU has AVX-512, the head size is at least 16 and there are at most 16
 * heads; otherwise it runs ad_attention_head_decode_avx512 head by head).
 *
 * It computes the same floats as the head-by-head body, operation for
 * operation, so a row's output does not depend on which body ran:
 *   - a score is that body's dot product: 16 lanes of fused multiply-adds
 *     along the head dimension, then the lanes summed in the tree of
 *     _mm512_reduce_add_ps (halves, quarters, pairs, last pair); here 16 keys
 *     go through the tree together, transposed step by step, instead of
 *     one horizontal sum per key;
 *   - the running max, rescaling and exp run per head over the same 64-key
 *     chunks;
 *   - the weighted sum of values adds each key's contribution to each output
 *     column in key order, as before, but for all heads in one pass over a
 *     key's value row: up to 8 independent accumulator chains instead of the
 *     1 or 2 of a single head of 16 or 32 floats, whose fused multiply-add
 *     latency bounded the old loop.
 * The cache holds floats, or bf16 values (decoding in bf16), widened exactly
 * as they are loaded: the same floats as the fp32 body on the widened cache.
 * Not here: the split over rows (kernels_attention.c). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

#define CHUNK 64 /* keys per running-max step (the head-by-head body's) */
#define GROUPS 8 /* 16-column groups of out per pass over the keys */

/* 16 cached values from element i on, fp32 (BF = 0) or bf16 (BF = 1, widened
 * exactly: a bf16 value is the high half of its float), lanes outside m zero. */
AD_AVX512 static inline __attribute__((always_inline)) __m512 kv_load(const void *base, size_t i,
                                                                      __mmask16 m, const int BF) {
    if (!BF) return _mm512_maskz_loadu_ps(m, (const float *)base + i);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* kv_load of all 16 lanes, by plain loads. */
AD_AVX512 static inline __attribute__((always_inline)) __m512 kv_load_all(const void *base,
                                                                          size_t i, const int BF) {
    if (!BF) return _mm512_loadu_ps((const float *)base + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Lane sums of 16 vectors: result lane s = sum of a[s]'s lanes, added in
 * _mm512_reduce_add_ps's order: x_l = a_l + a_{l+8}, y_l = x_l + x_{l+4},
 * z_l = y_l + y_{l+2} (l < 2), z_0 + z_1. Each level pairs vectors so that
 * every lane does useful work. a is clobbered. */
AD_AVX512 static inline __attribute__((always_inline)) __m512 reduce16(__m512 a[16]) {
    __m512 x[8], y[4], z[2];
    for (int p = 0; p < 8; p++) /* 256-bit halves of keys 2p and 2p+1 */
        x[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], 0xEE));
    for (int p = 0; p < 4; p++) /* 128-bit lane j: key 4p+j's y_0..y_3 */
        y[p] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * p], x[2 * p + 1], 0x88),
                             _mm512_shuffle_f32x4(x[2 * p], x[2 * p + 1], 0xDD));
    for (int p = 0; p < 2; p++) /* lane j: z_0, z_1 of keys 8p+j and 8p+4+j */
        z[p] = _mm512_add_ps(_mm512_shuffle_ps(y[2 * p], y[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(y[2 * p], y[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* element 4j + i now holds key 4i + j: put key s at element s */
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, r);
}

/* sc[s] = (q . k_s) * scale for nk <= 16 keys k_s at element s*ld of kc, D
 * values each (fp32, or bf16 when BF); sc has room for 16 (entries past nk are 0). */
AD_AVX512 static inline __attribute__((always_inline)) void scores16(float *sc, const float *q,
                                                                     const void *kc, size_t ld,
                                                                     size_t nk, size_t D,
                                                                     __m512 scale, const int BF) {
    __m512 a[16];
#pragma GCC unroll 16
    for (int s = 0; s < 16; s++)
        a[s] = _mm512_setzero_ps();
    for (size_t d = 0; d < D; d += 16) {
        __mmask16 m = ad_tail_mask(D - d);
        __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
        /* a fixed count keeps a[] in registers; keys past nk load nothing */
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++)
            a[s] = _mm512_fmadd_ps(qv, kv_load(kc, (size_t)s * ld + d, (size_t)s < nk ? m : 0, BF),
                                   a[s]);
    }
    _mm512_store_ps(sc, _mm512_mul_ps(reduce16(a), scale));
}

/* One head over one chunk of cn keys: scores into sc[0, cn) (then their
 * exp(score - max), zero up to the next 16), the running max and sum updated
 * and out (this head's D floats) rescaled when the max grows. */
AD_AVX512 static inline __attribute__((always_inline)) void
head_chunk(float *sc, float *out, float *mx, float *sum, const float *q, const void *kc, size_t k0,
           size_t ld, size_t cn, size_t D, __m512 scale, const int BF) {
    const char *kb = (const char *)kc + k0 * (BF ? 2 : 4); /* this chunk's first key */
    for (size_t s = 0; s < cn; s += 16)
        scores16(sc + s, q, kb + s * ld * (BF ? 2 : 4), ld, cn - s < 16 ? cn - s : 16, D, scale,
                 BF);
    float cmax = -INFINITY;
    for (size_t s = 0; s < cn; s++)
        cmax = sc[s] > cmax ? sc[s] : cmax;
    if (cmax > *mx) {
        /* not on the first chunk: out and sum are zeros, which times exp(-inf) stay */
        if (*mx != -INFINITY) {
            float r = expf(*mx - cmax);
            __m512 rv = _mm512_set1_ps(r);
            for (size_t d = 0; d < D; d += 16) {
                __mmask16 m = ad_tail_mask(D - d);
                _mm512_mask_storeu_ps(out + d, m,
                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(m, out + d), rv));
            }
            *sum *= r;
        }
        *mx = cmax;
    }
    __m512 mxv = _mm512_set1_ps(*mx), acc = _mm512_setzero_ps();
    for (size_t s = 0; s < cn; s += 16) {
        __mmask16 m = ad_tail_mask(cn - s);
        __m512 e = _mm512_maskz_mov_ps(m, ad_exp512(_mm512_sub_ps(_mm512_load_ps(sc + s), mxv)));
        _mm512_store_ps(sc + s, e);
        acc = _mm512_add_ps(acc, e);
    }
    *sum += _mm512_reduce_add_ps(acc);
}

/* out[c] += sum_{x < n} w(c, x) v_x[c] for the NG groups of 16 columns at
 * out[0..) (the last one masked by `last`), adding keys in order; the weight
 * of column c is sc[head(c) * CHUNK + x]. A group lies in one head (lo)
 * or, for head sizes that are not multiples of 16, straddles two: lanes set
 * in straddle[g] take head lo[g] + 1. */
AD_AVX512 static inline __attribute__((always_inline)) void
weighted_groups(float *out, const float *sc, const void *vc, size_t ld, size_t n, const size_t *lo,
                const __mmask16 *straddle, __mmask16 last, const int NG, const int BLEND,
                const int BF) {
    __m512 a[GROUPS];
    for (int g = 0; g < NG; g++)
        a[g] = _mm512_maskz_loadu_ps(g == NG - 1 ? last : 0xFFFF, out + 16 * g);
    for (size_t x = 0; x < n; x++) {
        size_t row = x * ld;
        for (int g = 0; g < NG; g++) {
            __m512 w = _mm512_set1_ps(sc[lo[g] * CHUNK + x]);
            if (BLEND)
                w = _mm512_mask_blend_ps(straddle[g], w,
                                         _mm512_set1_ps(sc[(lo[g] + 1) * CHUNK + x]));
            __m512 v = g == NG - 1 ? kv_load(vc, row + 16 * g, last, BF)
                                   : kv_load_all(vc, row + 16 * g, BF);
            a[g] = _mm512_fmadd_ps(w, v, a[g]);
        }
    }
    for (int g = 0; g < NG; g++)
        _mm512_mask_storeu_ps(out + 16 * g, g == NG - 1 ? last : 0xFFFF, a[g]);
}

/* Dispatches ng (1..GROUPS) groups to an unrolled weighted_groups; vc at
 * element v0 of the cache. */
AD_AVX512 static inline __attribute__((always_inline)) void
weighted_block(float *out, const float *sc, const void *vc, size_t v0, size_t ld, size_t n,
               const size_t *lo, const __mmask16 *straddle, __mmask16 last, size_t ng, int blend,
               const int BF) {
    vc = (const char *)vc + v0 * (BF ? 2 : 4);
#define WG(k)                                                                                      \
    case k:                                                                                        \
        if (blend)                                                                                 \
            weighted_groups(out, sc, vc, ld, n, lo, straddle, last, k, 1, BF);                     \
        else                                                                                       \
            weighted_groups(out, sc, vc, ld, n, lo, straddle, last, k, 0, BF);                     \
        break;
    switch (ng) { WG(1) WG(2) WG(3) WG(4) WG(5) WG(6) WG(7) WG(8) default : break; }
#undef WG
}

/* The row's decode over a cache of floats (BF = 0) or bf16 values (BF = 1). */
AD_AVX512 static inline __attribute__((always_inline)) void
row_decode(float *out, const float *q, const void *kc, const void *vc, size_t n, size_t H, size_t D,
           size_t ld, const void *nk, const void *nv, size_t n_bytes, const int BF) {
    float sc[16 * CHUNK] __attribute__((aligned(64))), mx[16], sum[16];
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)D));
    size_t C = H * D, ngroups = (C + 15) / 16;
    memset(out, 0, C * sizeof(float));
    for (size_t h = 0; h < H; h++)
        mx[h] = -INFINITY, sum[h] = 0.0f;
    for (size_t c0 = 0; c0 < n; c0 += CHUNK) {
        size_t cn = n - c0 < CHUNK ? n - c0 : CHUNK;
        /* The heads read the chunk's keys head by head, 16 keys at a time, in
         * slices one head wide: strides the hardware does not prefetch. Asking
         * for the whole chunk's keys (bf16: at most 64 x C x 2 bytes) in L2
         * first took 7.5-8.5% off a 14M bf16 decoding step; with fp32 keys
         * (twice the bytes) it measured nothing, so it is not done there. */
        if (BF) {
            const char *kb = (const char *)kc + c0 * ld * 2;
            for (size_t o = 0; o < cn * ld * 2; o += 64)
                _mm_prefetch(kb + o, _MM_HINT_T1);
        }
        for (size_t h = 0; h < H; h++) {
            head_chunk(sc + h * CHUNK, out + h * D, &mx[h], &sum[h], q + h * D, kc, c0 * ld + h * D,
                       ld, cn, D, scale, BF);
            if (c0 == 0) { /* a share of the next row's keys and values per head */
                size_t L = n_bytes / 64, l0 = h * L / H, l1 = (h + 1) * L / H;
                for (size_t l = l0; l < l1; l++) {
                    _mm_prefetch((const char *)nk + 64 * l, _MM_HINT_T1);
                    _mm_prefetch((const char *)nv + 64 * l, _MM_HINT_T1);
                }
            }
        }
        for (size_t g0 = 0; g0 < ngroups; g0 += GROUPS) {
            size_t ng = ngroups - g0 < GROUPS ? ngroups - g0 : GROUPS, lo[GROUPS];
            __mmask16 straddle[GROUPS];
            int blend = 0;
            for (size_t g = 0; g < ng; g++) {
                size_t c = 16 * (g0 + g), end = c + 16 < C ? c + 16 : C;
                lo[g] = c / D;
                size_t split = (lo[g] + 1) * D; /* first column of the next head */
                straddle[g] = split < end ? (__mmask16)(0xFFFFu << (split - c)) : 0;
                blend |= straddle[g] != 0;
            }
            __mmask16 last = ad_tail_mask(C - 16 * (g0 + ng - 1));
            weighted_block(out + 16 * g0, sc, vc, c0 * ld + 16 * g0, ld, cn, lo, straddle, last, ng,
                           blend, BF);
        }
    }
    for (size_t h = 0; h < H; h++) {
        __m512 inv = _mm512_set1_ps(n ? 1.0f / sum[h] : 0.0f);
        for (size_t d = 0; d < D; d += 16) {
            __mmask16 m = ad_tail_mask(D - d);
            float *o = out + h * D + d;
            _mm512_mask_storeu_ps(o, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o), inv));
        }
    }
}

AD_AVX512 void ad_attention_row_decode_avx512(float *out, const float *q, const float *kc,
                                              const float *vc, size_t n, size_t H, size_t D,
                                              size_t ld) {
    row_decode(out, q, kc, vc, n, H, D, ld, kc, vc, 0, 0);
}

AD_AVX512 void ad_attention_row_decode_bf16_avx512(float *out, const float *q, const uint16_t *kc,
                                                   const uint16_t *vc, size_t n, size_t H, size_t D,
                                                   size_t ld, const uint16_t *nk,
                                                   const uint16_t *nv, size_t nn) {
    row_decode(out, q, kc, vc, n, H, D, ld, nk, nv, nn * ld * 2, 1);
}
