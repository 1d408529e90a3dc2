/* kernels_avx512_attention.c: AVX-512 bodies of causal attention for one
 * (batch row, head), called by kernels_attention.c when the CPU has AVX-512.
 *
 * The five products of attention (S = QK^T, O = PV; dP = dO V^T, dQ = dS K,
 * dK = dS^T Q, dV = P^T dO) run as small register-blocked products over blocks
 * of 4 rows: scores 16 keys at a time against a transposed copy of K (or V),
 * weighted sums along the head dimension, 16 floats per vector. Causality
 * needs no masks inside those loops because P and dS rows hold zeros beyond
 * the diagonal (up to the end of the 16-key block, which is as far as any
 * 4-row block reads). Not here: the split over (row, head), the scratch.
 *
 * Shapes: T queries/keys, D head size; q, k, v, dout and the gradients have
 * rows `ld` floats apart; P is [T, T]; Tp = T rounded up to 16. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

#define RB 4 /* rows per register block */

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

/* out[r*Tp + 16j ..] = sum_d x[r*ld + d] * panel[d*Tp + 16j ..] for r < R rows
 * and NB (1 or 2) key blocks starting at block j. */
AD_AVX512 static inline __attribute__((always_inline)) void dots_tile(float *out, const float *x,
                                                                      size_t ld, const float *panel,
                                                                      size_t Tp, size_t D, size_t j,
                                                                      const int R, const int NB) {
    __m512 a[RB][2];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < NB; b++)
            a[r][b] = _mm512_setzero_ps();
    const float *p = panel + 16 * j;
    for (size_t d = 0; d < D; d++, p += Tp) {
        __m512 kv[2];
        for (int b = 0; b < NB; b++)
            kv[b] = _mm512_load_ps(p + 16 * b);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)r * ld + d]);
            for (int b = 0; b < NB; b++)
                a[r][b] = _mm512_fmadd_ps(xv, kv[b], a[r][b]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int b = 0; b < NB; b++)
            _mm512_store_ps(out + r * Tp + 16 * (j + b), a[r][b]);
}

/* Dot products of R rows of x with the first nb key blocks of the panel. */
AD_AVX512 static inline __attribute__((always_inline)) void
dots_rows_r(float *out, const float *x, size_t ld, const float *panel, size_t Tp, size_t D,
            size_t nb, const int R) {
    size_t j = 0;
    for (; j + 2 <= nb; j += 2)
        dots_tile(out, x, ld, panel, Tp, D, j, R, 2);
    if (j < nb) dots_tile(out, x, ld, panel, Tp, D, j, R, 1);
}

AD_AVX512 static void dots_rows(float *out, const float *x, size_t ld, const float *panel,
                                size_t Tp, size_t D, size_t nb, size_t R) {
    switch (R) {
    case 4:
        dots_rows_r(out, x, ld, panel, Tp, D, nb, 4);
        break;
    case 3:
        dots_rows_r(out, x, ld, panel, Tp, D, nb, 3);
        break;
    case 2:
        dots_rows_r(out, x, ld, panel, Tp, D, nb, 2);
        break;
    default:
        dots_rows_r(out, x, ld, panel, Tp, D, nb, 1);
        break;
    }
}

/* Masks of the four 16-float groups of columns [d0, d0 + 64) inside D. */
AD_AVX512 static inline void group_masks(__mmask16 m[4], size_t d0, size_t D) {
    for (int i = 0; i < 4; i++) {
        size_t d = d0 + 16 * (size_t)i;
        m[i] = d < D ? ad_tail_mask(D - d) : 0;
    }
}

/* For r < R output rows (ldo apart), columns [0, 16 NG):
 *   out[r] (+)= sum_{x < n} w[r*wr + x*wx] * src[x*ld ..]. */
AD_AVX512 static inline __attribute__((always_inline)) void
weighted_tile(float *out, size_t ldo, const float *w, size_t wr, size_t wx, const float *src,
              size_t ld, size_t n, const __mmask16 *m, int add, const int R, const int NG,
              const int LAST_FULL) {
    __m512 a[RB][4];
    for (int r = 0; r < R; r++)
        for (int g = 0; g < NG; g++)
            a[r][g] =
                add ? _mm512_maskz_loadu_ps(m[g], out + r * ldo + 16 * g) : _mm512_setzero_ps();
    for (size_t x = 0; x < n; x++) {
        __m512 sv[4];
        const float *row = src + x * ld;
        for (int g = 0; g < NG; g++)
            sv[g] = ad_ld(row + 16 * g, m[g], g < NG - 1 || LAST_FULL);
        for (int r = 0; r < R; r++) {
            __m512 wv = _mm512_set1_ps(w[r * wr + x * wx]);
            for (int g = 0; g < NG; g++)
                a[r][g] = _mm512_fmadd_ps(wv, sv[g], a[r][g]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int g = 0; g < NG; g++)
            _mm512_mask_storeu_ps(out + r * ldo + 16 * g, m[g], a[r][g]);
}

AD_AVX512 static inline __attribute__((always_inline)) void
weighted_rows_r(float *out, size_t ldo, const float *w, size_t wr, size_t wx, const float *src,
                size_t ld, size_t n, size_t D, int add, const int R) {
    for (size_t d0 = 0; d0 < D; d0 += 64) {
        __mmask16 m[4];
        group_masks(m, d0, D);
        size_t ng = (D - d0 + 15) / 16;
        int full = D - d0 >= 16 * ng; /* the last group has 16 columns too */
        float *o = out + d0;
        const float *s = src + d0;
        if (ng == 1)
            full ? weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 1, 1)
                 : weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 1, 0);
        else if (ng == 2)
            full ? weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 2, 1)
                 : weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 2, 0);
        else if (ng == 3)
            full ? weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 3, 1)
                 : weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 3, 0);
        else
            full ? weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 4, 1)
                 : weighted_tile(o, ldo, w, wr, wx, s, ld, n, m, add, R, 4, 0);
    }
}

/* R <= 4 rows of out[r*ldo ..] (+)= sum_{x < n} w[r*wr + x*wx] src[x*ld ..]
 * over the D columns; overwrites when add = 0. */
AD_AVX512 static void weighted_rows(float *out, size_t ldo, const float *w, size_t wr, size_t wx,
                                    const float *src, size_t ld, size_t n, size_t D, int add,
                                    size_t R) {
    if (R == 4)
        weighted_rows_r(out, ldo, w, wr, wx, src, ld, n, D, add, 4);
    else
        for (size_t r = 0; r < R; r++)
            weighted_rows_r(out + r * ldo, ldo, w + r * wr, wr, wx, src, ld, n, D, add, 1);
}

/* Mask of the keys s <= t inside block j. */
AD_AVX512 static inline __mmask16 causal_mask(size_t j, size_t t) {
    return ad_tail_mask(t + 1 - 16 * j);
}

/* Scaled softmax of row t of scores (nb blocks) in place over keys 0..t,
 * zero elsewhere; the row is also written to p[0, T) with zeros to its end. */
AD_AVX512 static void softmax_row(float *row, float *p, size_t t, size_t nb, size_t T,
                                  __m512 scale) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t j = 0; j < nb; j++) {
        __m512 x = _mm512_mul_ps(_mm512_load_ps(row + 16 * j), scale);
        _mm512_store_ps(row + 16 * j, x);
        mx = _mm512_mask_max_ps(mx, causal_mask(j, t), mx, x);
    }
    __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (size_t j = 0; j < nb; j++) {
        __m512 e = _mm512_maskz_mov_ps(causal_mask(j, t),
                                       ad_exp512(_mm512_sub_ps(_mm512_load_ps(row + 16 * j), mxv)));
        _mm512_store_ps(row + 16 * j, e);
        sum = _mm512_add_ps(sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (size_t j = 0; j < nb; j++) {
        __m512 x = _mm512_mul_ps(_mm512_load_ps(row + 16 * j), inv);
        _mm512_store_ps(row + 16 * j, x);
        _mm512_mask_storeu_ps(p + 16 * j, ad_tail_mask(T - 16 * j), x);
    }
    if (16 * nb < T) memset(p + 16 * nb, 0, (T - 16 * nb) * sizeof(float));
}

AD_AVX512 void ad_attention_head_forward_avx512(float *out, float *P, const float *q,
                                                const float *k, const float *v, size_t T,
                                                size_t D, size_t ld, float *scratch) {
    size_t Tp = (T + 15) & ~(size_t)15;
    float *kt = scratch, *rows = scratch + D * Tp; /* rows: RB x Tp scores */
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)D));
    transpose_head(kt, k, T, D, ld, Tp);
    for (size_t t0 = 0; t0 < T; t0 += RB) {
        size_t R = T - t0 < RB ? T - t0 : RB, nb = t0 / 16 + 1; /* one 16-block for all R */
        dots_rows(rows, q + t0 * ld, ld, kt, Tp, D, nb, R);
        for (size_t r = 0; r < R; r++)
            softmax_row(rows + r * Tp, P + (t0 + r) * T, t0 + r, nb, T, scale);
        /* P rows are zero beyond their diagonal, so all R rows sum over t0 + R keys */
        weighted_rows(out + t0 * ld, ld, P + t0 * T, T, 1, v, ld, t0 + R, D, 0, R);
    }
}

/* The backward runs over chunks of AD_ATT_CHUNK query rows: first each row's
 * dS (kept for the chunk, zero beyond the diagonal) and dq, then dk and dv of
 * every key from the chunk's rows, so each dk/dv row is loaded and stored once
 * per chunk. */
AD_AVX512 void ad_attention_head_backward_avx512(float *dq, float *dk, float *dv, const float *dout,
                                                 const float *P, const float *q, const float *k,
                                                 const float *v, size_t T, size_t D, size_t ld,
                                                 float *scratch) {
    size_t Tp = (T + 15) & ~(size_t)15;
    float *vt = scratch, *dp = vt + D * Tp, *dsc = dp + RB * Tp;
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)D));
    transpose_head(vt, v, T, D, ld, Tp);
    for (size_t c0 = 0; c0 < T; c0 += AD_ATT_CHUNK) {
        size_t c1 = T - c0 < AD_ATT_CHUNK ? T : c0 + AD_ATT_CHUNK;
        for (size_t t0 = c0; t0 < c1; t0 += RB) {
            size_t R = c1 - t0 < RB ? c1 - t0 : RB, nb = t0 / 16 + 1;
            dots_rows(dp, dout + t0 * ld, ld, vt, Tp, D, nb, R);
            for (size_t r = 0; r < R; r++) {
                size_t t = t0 + r;
                const float *p = P + t * T, *dpr = dp + r * Tp;
                float *ds = dsc + (t - c0) * Tp;
                __m512 acc = _mm512_setzero_ps();
                for (size_t j = 0; j < nb; j++) {
                    __mmask16 m = causal_mask(j, t);
                    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + 16 * j),
                                          _mm512_maskz_load_ps(m, dpr + 16 * j), acc);
                }
                __m512 rowdot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
                for (size_t j = 0; j < nb; j++) {
                    __mmask16 m = causal_mask(j, t);
                    __m512 d = _mm512_sub_ps(_mm512_maskz_load_ps(m, dpr + 16 * j), rowdot);
                    __m512 g = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + 16 * j), d),
                                             scale);
                    _mm512_store_ps(ds + 16 * j, g);
                }
            }
            weighted_rows(dq + t0 * ld, ld, dsc + (t0 - c0) * Tp, Tp, 1, k, ld, t0 + R, D, 1, R);
        }
        /* keys s0..s0+R-1 get contributions from the chunk's queries t >= s0 */
        for (size_t s0 = 0; s0 < c1; s0 += RB) {
            size_t R = c1 - s0 < RB ? c1 - s0 : RB, x0 = s0 > c0 ? s0 : c0;
            weighted_rows(dk + s0 * ld, ld, dsc + (x0 - c0) * Tp + s0, 1, Tp, q + x0 * ld, ld,
                          c1 - x0, D, 1, R);
            weighted_rows(dv + s0 * ld, ld, P + x0 * T + s0, 1, T, dout + x0 * ld, ld, c1 - x0, D,
                          1, R);
        }
    }
}

/* q . k over D floats. */
AD_AVX512 static float dot_d(const float *q, const float *k, size_t D) {
    __m512 a = _mm512_setzero_ps();
    for (size_t d = 0; d < D; d += 16) {
        __mmask16 m = ad_tail_mask(D - d);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), _mm512_maskz_loadu_ps(m, k + d), a);
    }
    return _mm512_reduce_add_ps(a);
}

/* One query against n cached keys, 64 keys at a time with a running max: the
 * output is rescaled only when a chunk raises the max. */
AD_AVX512 void ad_attention_head_decode_avx512(float *out, const float *q, const float *kc,
                                               const float *vc, size_t n, size_t D, size_t ld) {
    float sc[64] __attribute__((aligned(64))), mx = -INFINITY, sum = 0.0f;
    const float scale = 1.0f / sqrtf((float)D);
    memset(out, 0, D * sizeof(float));
    for (size_t c0 = 0; c0 < n; c0 += 64) {
        size_t cn = n - c0 < 64 ? n - c0 : 64;
        float cmax = -INFINITY;
        for (size_t s = 0; s < cn; s++) {
            sc[s] = dot_d(q, kc + (c0 + s) * ld, D) * scale;
            cmax = sc[s] > cmax ? sc[s] : cmax;
        }
        if (cmax > mx) {
            float r = expf(mx - cmax);
            for (size_t d = 0; d < D; d++)
                out[d] *= r;
            sum *= r;
            mx = cmax;
        }
        __m512 mxv = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
        for (size_t s = 0; s < cn; s += 16) {
            __mmask16 m = ad_tail_mask(cn - s);
            __m512 e =
                _mm512_maskz_mov_ps(m, ad_exp512(_mm512_sub_ps(_mm512_load_ps(sc + s), mxv)));
            _mm512_store_ps(sc + s, e);
            acc = _mm512_add_ps(acc, e);
        }
        sum += _mm512_reduce_add_ps(acc);
        weighted_rows(out, 0, sc, 0, 1, vc + c0 * ld, ld, cn, D, 1, 1);
    }
    float inv = n ? 1.0f / sum : 0.0f;
    for (size_t d = 0; d < D; d++)
        out[d] *= inv;
}
