/* kernels_avx512_attention.c: AVX-512 bodies of causal attention for one
 * (batch row, head), called by kernels_attention.c when the CPU has AVX-512.
 *
 * Scores for one query row are computed 16 keys at a time against a
 * transposed copy of the head's keys ([D, Tp] in scratch), so no horizontal
 * sums are needed; the weighted sums of values and the gradient updates run
 * along the head dimension, 64 floats per register group.
 * Not here: the split over (row, head) and the scratch allocation. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

/* dst[d, s] = src[s, d] for s < T (rows ld apart), zero for T <= s < Tp. */
static void transpose_head(float *dst, const float *src, size_t T, size_t D, size_t ld, size_t Tp) {
    for (size_t d = 0; d < D; d++) {
        float *o = dst + d * Tp;
        for (size_t s = 0; s < T; s++)
            o[s] = src[s * ld + d];
        for (size_t s = T; s < Tp; s++)
            o[s] = 0.0f;
    }
}

/* row[16j .. 16(j+NB)) = sum_d x[d] * panel[d, same keys], for NB <= 4
 * blocks of 16 keys; even and odd d go to separate accumulators for
 * instruction-level parallelism. */
AD_AVX512 static inline __attribute__((always_inline)) void dots_blocks(float *row, const float *x,
                                                                        const float *panel,
                                                                        size_t Tp, size_t D,
                                                                        size_t j, const int NB) {
    __m512 a[4], b[4];
    for (int i = 0; i < NB; i++)
        a[i] = b[i] = _mm512_setzero_ps();
    const float *base = panel + j * 16;
    size_t d = 0;
    for (; d + 2 <= D; d += 2) {
        __m512 x0 = _mm512_set1_ps(x[d]), x1 = _mm512_set1_ps(x[d + 1]);
        const float *p0 = base + d * Tp, *p1 = p0 + Tp;
        for (int i = 0; i < NB; i++) {
            a[i] = _mm512_fmadd_ps(x0, _mm512_load_ps(p0 + 16 * i), a[i]);
            b[i] = _mm512_fmadd_ps(x1, _mm512_load_ps(p1 + 16 * i), b[i]);
        }
    }
    if (d < D) {
        __m512 x0 = _mm512_set1_ps(x[d]);
        for (int i = 0; i < NB; i++)
            a[i] = _mm512_fmadd_ps(x0, _mm512_load_ps(base + d * Tp + 16 * i), a[i]);
    }
    for (int i = 0; i < NB; i++)
        _mm512_store_ps(row + (j + i) * 16, _mm512_add_ps(a[i], b[i]));
}

/* row[s] = x . panel[:, s] for the first nb blocks of 16 keys. */
AD_AVX512 static void row_dots(float *row, const float *x, const float *panel, size_t Tp, size_t D,
                               size_t nb) {
    size_t j = 0;
    for (; j + 4 <= nb; j += 4)
        dots_blocks(row, x, panel, Tp, D, j, 4);
    if (j + 2 <= nb) {
        dots_blocks(row, x, panel, Tp, D, j, 2);
        j += 2;
    }
    if (j < nb) dots_blocks(row, x, panel, Tp, D, j, 1);
}

/* Mask of the keys s <= t inside block j. */
AD_AVX512 static inline __mmask16 causal_mask(size_t j, size_t t) {
    return ad_tail_mask(t + 1 - 16 * j);
}

/* Masks of the four 16-float groups of columns [d0, d0 + 64) inside D. */
AD_AVX512 static inline void group_masks(__mmask16 m[4], size_t d0, size_t D) {
    for (int i = 0; i < 4; i++) {
        size_t d = d0 + 16 * (size_t)i;
        m[i] = d < D ? ad_tail_mask(D - d) : 0;
    }
}

/* out[0..D) = sum_{s <= t} w[s] * src[s*ld ..] (overwrites out when add = 0). */
AD_AVX512 static void weighted_rows(float *out, const float *w, const float *src, size_t t,
                                    size_t D, size_t ld, int add) {
    for (size_t d0 = 0; d0 < D; d0 += 64) {
        __mmask16 m[4];
        __m512 a[4];
        group_masks(m, d0, D);
        for (int i = 0; i < 4; i++)
            a[i] = add ? _mm512_maskz_loadu_ps(m[i], out + d0 + 16 * i) : _mm512_setzero_ps();
        for (size_t s = 0; s <= t; s++) {
            __m512 ws = _mm512_set1_ps(w[s]);
            const float *r = src + s * ld + d0;
            for (int i = 0; i < 4; i++)
                a[i] = _mm512_fmadd_ps(ws, _mm512_maskz_loadu_ps(m[i], r + 16 * i), a[i]);
        }
        for (int i = 0; i < 4; i++)
            _mm512_mask_storeu_ps(out + d0 + 16 * i, m[i], a[i]);
    }
}

/* dst[s*ld ..] += w[s] * x for every s <= t. */
AD_AVX512 static void scatter_rows(float *dst, const float *w, const float *x, size_t t, size_t D,
                                   size_t ld) {
    for (size_t d0 = 0; d0 < D; d0 += 64) {
        __mmask16 m[4];
        __m512 xv[4];
        group_masks(m, d0, D);
        for (int i = 0; i < 4; i++)
            xv[i] = _mm512_maskz_loadu_ps(m[i], x + d0 + 16 * i);
        for (size_t s = 0; s <= t; s++) {
            __m512 ws = _mm512_set1_ps(w[s]);
            float *r = dst + s * ld + d0;
            for (int i = 0; i < 4; i++) {
                __m512 y = _mm512_maskz_loadu_ps(m[i], r + 16 * i);
                _mm512_mask_storeu_ps(r + 16 * i, m[i], _mm512_fmadd_ps(ws, xv[i], y));
            }
        }
    }
}

AD_AVX512 void ad_attention_head_forward_avx512(float *out, float *P, const float *q,
                                                const float *k, const float *v, size_t T, size_t D,
                                                size_t ld, float *scratch) {
    size_t Tp = (T + 15) & ~(size_t)15;
    float *kt = scratch, *row = scratch + 2 * D * Tp;
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)D));
    transpose_head(kt, k, T, D, ld, Tp);
    for (size_t t = 0; t < T; t++) {
        size_t nb = t / 16 + 1;
        row_dots(row, q + t * ld, kt, Tp, D, nb);
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (size_t j = 0; j < nb; j++) {
            __m512 x = _mm512_mul_ps(_mm512_load_ps(row + 16 * j), scale);
            _mm512_store_ps(row + 16 * j, x);
            mx = _mm512_mask_max_ps(mx, causal_mask(j, t), mx, x);
        }
        __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
        for (size_t j = 0; j < nb; j++) {
            __m512 e = _mm512_maskz_mov_ps(
                causal_mask(j, t), ad_exp512(_mm512_sub_ps(_mm512_load_ps(row + 16 * j), mxv)));
            _mm512_store_ps(row + 16 * j, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        float *p = P + t * T;
        for (size_t j = 0; j < nb; j++) {
            __m512 x = _mm512_mul_ps(_mm512_load_ps(row + 16 * j), inv);
            _mm512_store_ps(row + 16 * j, x);
            _mm512_mask_storeu_ps(p + 16 * j, ad_tail_mask(T - 16 * j), x);
        }
        if (16 * nb < T) memset(p + 16 * nb, 0, (T - 16 * nb) * sizeof(float));
        weighted_rows(out + t * ld, row, v, t, D, ld, 0);
    }
}

AD_AVX512 void ad_attention_head_backward_avx512(float *dq, float *dk, float *dv, const float *dout,
                                                 const float *P, const float *q, const float *k,
                                                 const float *v, size_t T, size_t D, size_t ld,
                                                 float *scratch) {
    size_t Tp = (T + 15) & ~(size_t)15;
    float *vt = scratch + D * Tp, *ds = scratch + 2 * D * Tp, *dp = ds + Tp;
    const float scale_f = 1.0f / sqrtf((float)D);
    const __m512 scale = _mm512_set1_ps(scale_f);
    transpose_head(vt, v, T, D, ld, Tp);
    for (size_t t = 0; t < T; t++) {
        size_t nb = t / 16 + 1;
        const float *p = P + t * T, *dot = dout + t * ld;
        row_dots(dp, dot, vt, Tp, D, nb);
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < nb; j++) {
            __mmask16 m = causal_mask(j, t);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + 16 * j),
                                  _mm512_maskz_load_ps(m, dp + 16 * j), acc);
        }
        __m512 rowdot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
        for (size_t j = 0; j < nb; j++) {
            __mmask16 m = causal_mask(j, t);
            __m512 d = _mm512_sub_ps(_mm512_maskz_load_ps(m, dp + 16 * j), rowdot);
            __m512 g = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + 16 * j), d), scale);
            _mm512_store_ps(ds + 16 * j, g);
        }
        weighted_rows(dq + t * ld, ds, k, t, D, ld, 1);
        scatter_rows(dk, ds, q + t * ld, t, D, ld);
        scatter_rows(dv, p, dot, t, D, ld);
    }
}
