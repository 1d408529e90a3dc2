/* kernels_attention.c: causal multi-head self-attention, forward and backward
 * over whole sequences, and one decoding step against a KV cache.
 *
 * Work is split over (batch row, head) pairs, each owned by one thread, so no
 * sum depends on scheduling. The portable bodies here need no scratch memory;
 * the AVX-512 bodies (kernels_avx512_attention.c) use per-thread scratch and
 * fall back to the portable ones when it cannot be allocated.
 *
 * Layout: q, k, v, out are [B, T, H*D] (row stride H*D); probs is [B, H, T, T].
 * Scores are scaled by 1/sqrt(D). Not here: RoPE (kernels.c). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/kernels_internal.h"

static float dot(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* Portable forward for one (row, head): rows of q/k/v/out are ld floats apart,
 * P is this head's [T, T] weights. */
static void head_forward(float *out, float *P, const float *q, const float *k, const float *v,
                         size_t T, size_t D, size_t ld) {
    float scale = 1.0f / sqrtf((float)D);
    for (size_t t = 0; t < T; t++) {
        const float *qt = q + t * ld;
        float *p = P + t * T, *o = out + t * ld, mx = -INFINITY, sum = 0.0f;
        for (size_t s = 0; s <= t; s++) {
            p[s] = dot(qt, k + s * ld, D) * scale;
            mx = p[s] > mx ? p[s] : mx;
        }
        for (size_t s = 0; s <= t; s++) {
            p[s] = expf(p[s] - mx);
            sum += p[s];
        }
        float inv = 1.0f / sum;
        for (size_t s = 0; s <= t; s++)
            p[s] *= inv;
        for (size_t s = t + 1; s < T; s++)
            p[s] = 0.0f;
        memset(o, 0, D * sizeof(float));
        for (size_t s = 0; s <= t; s++)
            axpy(o, p[s], v + s * ld, D);
    }
}

/* Portable backward for one (row, head), accumulating into dq, dk, dv.
 *   dP[t,s] = dout_t . v_s,  dS = P (dP - sum_s P dP),  dq_t = scale sum_s dS k_s,
 *   dk_s = scale sum_t dS q_t,  dv_s = sum_t P dout_t.
 * dP is recomputed in a second pass instead of being stored. */
static void head_backward(float *dq, float *dk, float *dv, const float *dout, const float *P,
                          const float *q, const float *k, const float *v, size_t T, size_t D,
                          size_t ld) {
    float scale = 1.0f / sqrtf((float)D);
    for (size_t t = 0; t < T; t++) {
        const float *p = P + t * T, *dot_ = dout + t * ld, *qt = q + t * ld;
        float rowdot = 0.0f;
        for (size_t s = 0; s <= t; s++)
            rowdot += p[s] * dot(dot_, v + s * ld, D);
        for (size_t s = 0; s <= t; s++) {
            float ds = p[s] * (dot(dot_, v + s * ld, D) - rowdot) * scale;
            axpy(dq + t * ld, ds, k + s * ld, D);
            axpy(dk + s * ld, ds, qt, D);
            axpy(dv + s * ld, p[s], dot_, D);
        }
    }
}

/* Per-thread scratch for the AVX-512 bodies (see ad_attention_scratch). NULL
 * when the portable path is in use or memory is short. */
static float *scratch_alloc(size_t T, size_t D, size_t nt, size_t *per_thread) {
    if (!ad_kernels_use_avx512()) return NULL;
    *per_thread = (ad_attention_scratch(T, D) + 15) & ~(size_t)15;
    return ad_scratch_get(AD_SCRATCH_ATTENTION, nt * *per_thread);
}

size_t ad_attention_work_floats(size_t T, size_t C) {
    /* a head's [T, T] weights, then (backward) the recomputed output's T rows
     * of C floats (rows are C apart, as in q), each rounded up to 16 floats */
    return ((T * T + 15) & ~(size_t)15) + ((T * C + 15) & ~(size_t)15);
}

/* The (row, head) pairs over the threads: with probs, P is that head's block;
 * without, the thread's buffer in work. `per` floats of AVX-512 scratch each. */
static size_t team_size(const float *probs, const ad_attention_work *work) {
    return probs ? (size_t)omp_get_max_threads() : work->threads;
}

static float *head_probs(float *probs, const ad_attention_work *work, size_t bh, size_t T,
                         size_t C) {
    if (probs) return probs + bh * T * T;
    return work->buf + (size_t)omp_get_thread_num() * ad_attention_work_floats(T, C);
}

/* One sequence of one head, forward: out and P ([T, T]). A sequence of one
 * token (as every padding token of a packed row is) attends to itself with
 * weight 1: its output is its value, as the kernels would make it. */
static void head_forward_any(float *out, float *P, const float *q, const float *k, const float *v,
                             size_t T, size_t D, size_t C, float *scratch) {
    if (T == 1) {
        P[0] = 1.0f;
        memcpy(out, v, D * sizeof(float));
    } else if (scratch)
        ad_attention_head_forward_avx512(out, P, q, k, v, T, D, C, scratch);
    else
        head_forward(out, P, q, k, v, T, D, C);
}

/* One sequence of one head, backward, adding into dq, dk, dv. For one token
 * dS = P (dP - P dP) = 0: only dv gets dout. */
static void head_backward_any(float *dq, float *dk, float *dv, const float *dout, const float *P,
                              const float *q, const float *k, const float *v, size_t T, size_t D,
                              size_t C, float *scratch) {
    if (T == 1)
        axpy(dv, 1.0f, dout, D);
    else if (scratch)
        ad_attention_head_backward_avx512(dq, dk, dv, dout, P, q, k, v, T, D, C, scratch);
    else
        head_backward(dq, dk, dv, dout, P, q, k, v, T, D, C);
}

/* The end of the sequence that starts at t0 in a row (seg: the row's starts;
 * NULL: the row is one sequence of T). Packed rows are cut into their
 * sequences, so no score is computed between two of them: a row of width T
 * holding sequences of lengths L_i costs sum L_i^2 instead of T^2. */
static size_t seq_end(const int32_t *seg, size_t t0, size_t T) {
    size_t e = t0 + 1;
    if (!seg) return T;
    while (e < T && (size_t)seg[e] == t0)
        e++;
    return e;
}

void ad_attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                          const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                          const ad_attention_work *work) {
    size_t C = H * D, per = 0, nt = team_size(probs, work);
    float *scratch = scratch_alloc(T, D, nt, &per);
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (size_t bh = 0; bh < B * H; bh++) {
        size_t b = bh / H, h = bh % H, off = b * T * C + h * D;
        float *sc = scratch ? scratch + (size_t)omp_get_thread_num() * per : NULL;
        float *P = head_probs(probs, work, bh, T, C);
        const int32_t *seg = seg_start ? seg_start + b * T : NULL;
        for (size_t a = 0, e; a < T; a = e) {
            e = seq_end(seg, a, T);
            size_t o = off + a * C;
            head_forward_any(out + o, P + a * T, q + o, k + o, v + o, e - a, D, C, sc);
        }
    }
    ad_scratch_put(AD_SCRATCH_ATTENTION, scratch);
}

void ad_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                           const float *q, const float *k, const float *v, const int32_t *seg_start,
                           size_t B, size_t T, size_t H, size_t D, const ad_attention_work *work) {
    size_t C = H * D, per = 0, nt = team_size(probs, work);
    float *scratch = scratch_alloc(T, D, nt, &per);
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (size_t bh = 0; bh < B * H; bh++) {
        size_t b = bh / H, h = bh % H, off = b * T * C + h * D;
        float *sc = scratch ? scratch + (size_t)omp_get_thread_num() * per : NULL;
        const int32_t *seg = seg_start ? seg_start + b * T : NULL;
        float *mine = probs ? NULL : head_probs(NULL, work, bh, T, C);
        for (size_t a = 0, e; a < T; a = e) {
            e = seq_end(seg, a, T);
            size_t o = off + a * C, n = e - a;
            const float *P = probs ? probs + bh * T * T + a * T : mine;
            if (!probs) /* recompute this sequence's weights, as the forward made them */
                head_forward_any(mine + ((T * T + 15) & ~(size_t)15), mine, q + o, k + o, v + o, n,
                                 D, C, sc);
            head_backward_any(dq + o, dk + o, dv + o, dout + o, P, q + o, k + o, v + o, n, D, C,
                              sc);
        }
    }
    ad_scratch_put(AD_SCRATCH_ATTENTION, scratch);
}

/* One query against n cached keys with a running (online) softmax, so no
 * buffer of n scores is needed: out accumulates exp(score - max) v_s and is
 * rescaled whenever the max grows. */
static void head_decode(float *out, const float *q, const float *kc, const float *vc, size_t n,
                        size_t D, size_t ld) {
    float scale = 1.0f / sqrtf((float)D), mx = -INFINITY, sum = 0.0f;
    memset(out, 0, D * sizeof(float));
    for (size_t s = 0; s < n; s++) {
        float sc = dot(q, kc + s * ld, D) * scale;
        if (sc > mx) {
            float r = expf(mx - sc);
            for (size_t i = 0; i < D; i++)
                out[i] *= r;
            sum *= r;
            mx = sc;
        }
        float e = expf(sc - mx);
        sum += e;
        axpy(out, e, vc + s * ld, D);
    }
    float inv = n ? 1.0f / sum : 0.0f;
    for (size_t i = 0; i < D; i++)
        out[i] *= inv;
}

void ad_attention_decode(float *out, const float *q, const float *k_cache, const float *v_cache,
                         const size_t *len, size_t nb, size_t row_stride, size_t H, size_t D) {
    ad_attention_decode_slots(out, q, k_cache, v_cache, NULL, len, nb, row_stride, H, D);
}

void ad_attention_decode_slots(float *out, const float *q, const float *k_cache,
                               const float *v_cache, const size_t *slot, const size_t *len,
                               size_t nb, size_t row_stride, size_t H, size_t D) {
    size_t C = H * D;
    int avx = ad_kernels_use_avx512();
    if (avx && H <= 16 && D >= 16) { /* all heads of a row in one pass (same bits) */
#pragma omp parallel for schedule(dynamic)
        for (size_t i = 0; i < nb; i++) {
            size_t s = slot ? slot[i] : i;
            ad_attention_row_decode_avx512(out + i * C, q + i * C, k_cache + s * row_stride,
                                           v_cache + s * row_stride, len[i], H, D, C);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (size_t ih = 0; ih < nb * H; ih++) {
        size_t i = ih / H, h = ih % H, s = slot ? slot[i] : i;
        float *o = out + i * C + h * D;
        const float *qi = q + i * C + h * D, *kc = k_cache + s * row_stride + h * D,
                    *vc = v_cache + s * row_stride + h * D;
        if (avx)
            ad_attention_head_decode_avx512(o, qi, kc, vc, len[i], D, C);
        else
            head_decode(o, qi, kc, vc, len[i], D, C);
    }
}

/* n rows of D bf16 values, ld apart, widened into dst [n][D]. */
static void widen_rows(float *dst, const uint16_t *src, size_t n, size_t D, size_t ld) {
    for (size_t s = 0; s < n; s++)
        ad_bf16_widen(dst + s * D, src + s * ld, D);
}

void ad_attention_decode_slots_bf16(float *out, const float *q, const uint16_t *k_cache,
                                    const uint16_t *v_cache, const size_t *slot, const size_t *len,
                                    size_t nb, size_t row_stride, size_t H, size_t D) {
    size_t C = H * D;
    int avx = ad_kernels_use_avx512();
    if (avx && H <= 16 && D >= 16) { /* the row body reads bf16 as it goes */
#pragma omp parallel for schedule(dynamic)
        for (size_t i = 0; i < nb; i++) {
            /* the next row's cache is fetched while this one computes: on one
             * thread (rows apart per thread) it is that thread's next row */
            size_t s = slot ? slot[i] : i, next = i + 1 < nb ? (slot ? slot[i + 1] : i + 1) : s;
            ad_attention_row_decode_bf16_avx512(
                out + i * C, q + i * C, k_cache + s * row_stride, v_cache + s * row_stride, len[i],
                H, D, C, k_cache + next * row_stride, v_cache + next * row_stride,
                i + 1 < nb ? len[i + 1] : 0);
        }
        return;
    }
    /* other shapes: each head's keys and values widened first, then the fp32
     * body of ad_attention_decode_slots (its bits; rows D apart instead of C
     * change no sum) */
#pragma omp parallel for schedule(dynamic)
    for (size_t ih = 0; ih < nb * H; ih++) {
        size_t i = ih / H, h = ih % H, s = slot ? slot[i] : i, n = len[i];
        float *o = out + i * C + h * D, *kv = malloc((2 * n * D + 1) * sizeof(float));
        if (!kv) { /* no memory for a head's cache: its output cannot be computed */
            for (size_t d = 0; d < D; d++)
                o[d] = NAN;
            continue;
        }
        widen_rows(kv, k_cache + s * row_stride + h * D, n, D, C);
        widen_rows(kv + n * D, v_cache + s * row_stride + h * D, n, D, C);
        if (avx)
            ad_attention_head_decode_avx512(o, q + i * C + h * D, kv, kv + n * D, n, D, D);
        else
            head_decode(o, q + i * C + h * D, kv, kv + n * D, n, D, D);
        free(kv);
    }
}
