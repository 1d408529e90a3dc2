/* kernels_avx512.c: AVX-512 bodies of the element-wise kernels (RMSNorm,
 * SwiGLU, cross-entropy rows, sum of squares, AdamW), chosen at run time by
 * kernels.c. Every function here is compiled for AVX-512 through a target
 * attribute and must only be called when ad_kernels_use_avx512() is true.
 *
 * Contracts are those of the portable bodies in kernels.c; results agree with
 * them to rounding (exp is a polynomial here, libm's expf there), and bit for
 * bit for ad_sum_squares and the AdamW update, which perform the same IEEE
 * operations in the same order. Not here: threading (the callers split work). */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

/* ---- RMSNorm ----------------------------------------------------------------------------- */

AD_AVX512 static float row_sum_squares(const float *x, size_t C) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
        a0 = _mm512_fmadd_ps(x0, x0, a0);
        a1 = _mm512_fmadd_ps(x1, x1, a1);
    }
    for (; c < C; c += 16) {
        __mmask16 m = ad_tail_mask(C - c);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + c);
        a0 = _mm512_fmadd_ps(x0, x0, a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* y = x * r * w for 16 floats (m, full: see ad_ld). */
AD_AVX512 static inline __attribute__((always_inline)) void
scale_row16(float *y, const float *x, const float *w, __m512 r, __mmask16 m, const int full) {
    ad_st(y, _mm512_mul_ps(_mm512_mul_ps(ad_ld(x, m, full), r), ad_ld(w, m, full)), m, full);
}

AD_AVX512 void ad_rmsnorm_forward_avx512(float *out, float *rstd, const float *in, const float *w,
                                         size_t N, size_t C, float eps) {
#pragma omp parallel for schedule(dynamic, 16) if (N * C > AD_SERIAL_MAX)
    for (size_t n = 0; n < N; n++) {
        const float *x = in + n * C;
        float *y = out + n * C;
        float r = 1.0f / sqrtf(row_sum_squares(x, C) / (float)C + eps);
        if (rstd) rstd[n] = r;
        __m512 rv = _mm512_set1_ps(r);
        size_t c = 0;
        for (; c + 16 <= C; c += 16)
            scale_row16(y + c, x + c, w + c, rv, 0xFFFF, 1);
        if (c < C) scale_row16(y + c, x + c, w + c, rv, ad_tail_mask(C - c), 0);
    }
}

/* acc + w * dy * x for 16 floats. */
AD_AVX512 static inline __attribute__((always_inline)) __m512
norm_dot16(__m512 acc, const float *w, const float *dy, const float *x, __mmask16 m,
           const int full) {
    __m512 wdy = _mm512_mul_ps(ad_ld(w, m, full), ad_ld(dy, m, full));
    return _mm512_fmadd_ps(wdy, ad_ld(x, m, full), acc);
}

/* dx += rs (w dy - x k); dw_part += dy x rs, for 16 floats. */
AD_AVX512 static inline __attribute__((always_inline)) void
norm_grad16(float *dx, float *dw_part, const float *w, const float *dy, const float *x, __m512 rsv,
            __m512 kv, __mmask16 m, const int full) {
    __m512 xv = ad_ld(x, m, full), dyv = ad_ld(dy, m, full);
    __m512 wdy = _mm512_mul_ps(ad_ld(w, m, full), dyv);
    __m512 g = _mm512_mul_ps(rsv, _mm512_fnmadd_ps(xv, kv, wdy));
    ad_st(dx, _mm512_add_ps(ad_ld(dx, m, full), g), m, full);
    ad_st(dw_part, _mm512_fmadd_ps(_mm512_mul_ps(dyv, xv), rsv, ad_ld(dw_part, m, full)), m, full);
}

AD_AVX512 void ad_rmsnorm_backward_rows_avx512(float *din, float *dw_part, const float *dout,
                                               const float *in, const float *w, const float *rstd,
                                               size_t n, size_t C) {
    memset(dw_part, 0, C * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        const float *x = in + r * C, *dy = dout + r * C;
        float *dx = din + r * C;
        __m512 acc = _mm512_setzero_ps();
        size_t c = 0;
        for (; c + 16 <= C; c += 16)
            acc = norm_dot16(acc, w + c, dy + c, x + c, 0xFFFF, 1);
        if (c < C) acc = norm_dot16(acc, w + c, dy + c, x + c, ad_tail_mask(C - c), 0);
        float rs = rstd[r], k = rs * rs * _mm512_reduce_add_ps(acc) / (float)C;
        __m512 rsv = _mm512_set1_ps(rs), kv = _mm512_set1_ps(k);
        for (c = 0; c + 16 <= C; c += 16)
            norm_grad16(dx + c, dw_part + c, w + c, dy + c, x + c, rsv, kv, 0xFFFF, 1);
        if (c < C)
            norm_grad16(dx + c, dw_part + c, w + c, dy + c, x + c, rsv, kv, ad_tail_mask(C - c), 0);
    }
}

/* ---- SwiGLU ------------------------------------------------------------------------------ */

AD_AVX512 static inline __attribute__((always_inline)) void
swiglu_fwd16(float *h, const float *gate, const float *up, __mmask16 m, const int full) {
    ad_st(h, ad_swiglu512(ad_ld(gate, m, full), ad_ld(up, m, full)), m, full);
}

AD_AVX512 void ad_swiglu_forward_avx512(float *h, const float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        swiglu_fwd16(h + i, gate + i, up + i, 0xFFFF, 1);
    if (i < n) swiglu_fwd16(h + i, gate + i, up + i, ad_tail_mask(n - i), 0);
}

AD_AVX512 static inline __attribute__((always_inline)) void
swiglu_bwd16(float *dgate, float *dup, const float *dh, const float *gate, const float *up,
             __mmask16 m, const int full) {
    __m512 dg, du;
    ad_swiglu_grad512(ad_ld(dh, m, full), ad_ld(gate, m, full), ad_ld(up, m, full), &dg, &du);
    ad_st(dgate, dg, m, full);
    ad_st(dup, du, m, full);
}

AD_AVX512 void ad_swiglu_backward_avx512(float *dgate, float *dup, const float *dh,
                                         const float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        swiglu_bwd16(dgate + i, dup + i, dh + i, gate + i, up + i, 0xFFFF, 1);
    if (i < n) swiglu_bwd16(dgate + i, dup + i, dh + i, gate + i, up + i, ad_tail_mask(n - i), 0);
}

/* ---- cross-entropy row ------------------------------------------------------------------- */

AD_AVX512 void ad_xent_row_avx512(float *logp_target, float *dlogits, const float *x,
                                  int32_t target, float weight, size_t V) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < V; i += 16) {
        __mmask16 m = ad_tail_mask(V - i);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
    }
    float mxs = _mm512_reduce_max_ps(mx);
    __m512 mxv = _mm512_set1_ps(mxs), sum = _mm512_setzero_ps();
    for (size_t i = 0; i < V; i += 16) {
        __mmask16 m = ad_tail_mask(V - i);
        __m512 e = ad_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mxv));
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
    }
    float lse = mxs + logf(_mm512_reduce_add_ps(sum));
    *logp_target = x[target] - lse;
    if (!dlogits) return;
    __m512 lsev = _mm512_set1_ps(lse), wv = _mm512_set1_ps(weight);
    for (size_t i = 0; i < V; i += 16) {
        __mmask16 m = ad_tail_mask(V - i);
        __m512 e = ad_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), lsev));
        _mm512_mask_storeu_ps(dlogits + i, m, _mm512_mul_ps(wv, e));
    }
    dlogits[target] -= weight;
}

/* ---- optimizer pieces -------------------------------------------------------------------- */

/* Same lanes and order as sum_squares_block in kernels.c: element i of the
 * block goes to lane i % 8; float squares are exact in double, so the fused
 * multiply-add rounds exactly like the portable multiply then add. */
AD_AVX512 double ad_sum_squares_avx512(const float *x, size_t n) {
    __m512d acc = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        acc = _mm512_fmadd_pd(d, d, acc);
    }
    if (i < n) {
        __m512d d = _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)((1u << (n - i)) - 1), x + i));
        acc = _mm512_fmadd_pd(d, d, acc);
    }
    double lane[8], s = 0.0;
    _mm512_storeu_pd(lane, acc);
    for (int j = 0; j < 8; j++)
        s += lane[j];
    return s;
}

/* The AdamW constants, broadcast once per call. */
typedef struct adamw_consts {
    __m512 b1, b2, one_b1, one_b2, eps, bc2_sqrt, decay, step;
} adamw_consts;

AD_AVX512 static inline __attribute__((always_inline)) void adamw16(float *p, const float *g,
                                                                    float *m, float *v,
                                                                    const adamw_consts *k,
                                                                    __mmask16 mk, const int full) {
    __m512 gi = ad_ld(g, mk, full);
    __m512 mi =
        _mm512_add_ps(_mm512_mul_ps(k->b1, ad_ld(m, mk, full)), _mm512_mul_ps(k->one_b1, gi));
    __m512 vi = _mm512_add_ps(_mm512_mul_ps(k->b2, ad_ld(v, mk, full)),
                              _mm512_mul_ps(_mm512_mul_ps(k->one_b2, gi), gi));
    __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), k->bc2_sqrt), k->eps);
    __m512 pi = _mm512_sub_ps(_mm512_mul_ps(ad_ld(p, mk, full), k->decay),
                              _mm512_mul_ps(k->step, _mm512_div_ps(mi, denom)));
    ad_st(m, mi, mk, full);
    ad_st(v, vi, mk, full);
    ad_st(p, pi, mk, full);
}

/* The same IEEE operations, in the same order, as the portable loop in
 * kernels.c (no fused multiply-adds), so both give identical bits. */
AD_AVX512 void ad_adamw_update_avx512(float *p, const float *g, float *m, float *v, size_t n,
                                      float step, float b1, float b2, float eps, float decay,
                                      float one_b1, float one_b2, float bc2_sqrt) {
    adamw_consts k = {_mm512_set1_ps(b1),     _mm512_set1_ps(b2),  _mm512_set1_ps(one_b1),
                      _mm512_set1_ps(one_b2), _mm512_set1_ps(eps), _mm512_set1_ps(bc2_sqrt),
                      _mm512_set1_ps(decay),  _mm512_set1_ps(step)};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        adamw16(p + i, g + i, m + i, v + i, &k, 0xFFFF, 1);
    if (i < n) adamw16(p + i, g + i, m + i, v + i, &k, ad_tail_mask(n - i), 0);
}
