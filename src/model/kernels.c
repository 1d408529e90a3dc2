/* kernels.c: the CPU implementation of kernels.h (except attention, in
 * kernels_attention.c): thread control, instruction-set dispatch, matrix
 * products, RMSNorm, SwiGLU, RoPE, cross-entropy and the optimizer's
 * element-wise pieces.
 *
 * Each kernel here is a portable C body (compiled for AVX2/FMA by the build
 * flags, no fast-math) plus, where it pays, an AVX-512 body from
 * kernels_avx512.c chosen at run time. Parallel loops give each output element
 * to one thread (work is handed out dynamically, which is safe because no
 * element depends on which thread computes it); reductions across rows go
 * through fixed-size row blocks combined in order, so results do not depend on
 * the thread count or on scheduling.
 *
 * Not here: the model's data flow (model_forward.c / model_backward.c). */
#include <cblas.h>
/* cblas.h pulls in complex.h, whose macro I would shadow our "in" sizes. */
#undef I
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/kernels_internal.h"

/* ---- threads and instruction set ------------------------------------------------------- */

void ad_kernels_set_threads(int n_threads) {
    if (n_threads <= 0) return;
    omp_set_num_threads(n_threads);
    openblas_set_num_threads(n_threads);
}

int ad_kernels_get_threads(void) {
    return omp_get_max_threads();
}

/* The most fp32 weight bytes a row-split forward reads on every thread: 8 MB,
 * a quarter of the L3 of the machines measured. Decoding the 14M model (57 MB
 * of fp32 weights) row-split ran no faster than sharing each product out by
 * columns (bench/RESULTS.md, 2026-12-06; 5% slower on 2026-12-08); the 0.5M
 * model (2 MB) ran 24% faster. Weights packed in bf16 have no bound: their
 * products, run on one thread, fetch each next panel while computing the
 * current one, and row-split bf16 decoding steps ran 7-10% faster than shared
 * ones for 9.4 to 67 MB of weights (2026-12-08, one process alternating). */
#define ROWS_APART_MAX_WEIGHT_BYTES ((size_t)8 << 20)

void ad_kernels_for_rows(size_t n, size_t weight_bytes, int bf16_weights,
                         void (*fn)(void *ctx, size_t r0, size_t r1), void *ctx) {
    size_t nt = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    if (nt > n) nt = n;
    if (nt <= 1 || (weight_bytes > ROWS_APART_MAX_WEIGHT_BYTES && !bf16_weights) ||
        !ad_kernels_use_avx512()) {
        if (n) fn(ctx, 0, n);
        return;
    }
#pragma omp parallel num_threads((int)nt)
    {
        size_t t = (size_t)omp_get_thread_num(), k = (size_t)omp_get_num_threads();
        if (n * t / k < n * (t + 1) / k) fn(ctx, n * t / k, n * (t + 1) / k);
    }
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

/* -1: not decided yet; 0 / 1 afterwards. A benign race: every thread computes
 * the same value. */
static int g_avx512 = -1;

int ad_kernels_use_avx512(void) {
    if (g_avx512 < 0) g_avx512 = cpu_has_avx512();
    return g_avx512;
}

int ad_kernels_force_avx512(int on) {
    int prev = ad_kernels_use_avx512();
    g_avx512 = on < 0 ? cpu_has_avx512() : (on && cpu_has_avx512());
    return prev;
}

const char *ad_kernels_isa(void) {
    if (ad_kernels_use_avx512()) return "avx512";
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? "avx2" : "scalar";
}

/* ---- matrix products --------------------------------------------------------------------- */

/* On AVX-512 CPUs every product goes to our own kernel: OpenBLAS may be pinned
 * to AVX2, and its worker threads spin-wait beside our OpenMP threads. */
static int use_own_gemm(void) {
    return ad_kernels_use_avx512();
}

/* Mixed precision for training's products (ad_kernels_set_bf16); -1: the
 * CPU's AVX512-BF16 not checked yet (a benign race, as g_avx512). */
static int g_bf16 = 0, g_cpu_bf16 = -1;

int ad_kernels_have_bf16(void) {
    if (g_cpu_bf16 < 0) {
        __builtin_cpu_init();
        g_cpu_bf16 = __builtin_cpu_supports("avx512bf16");
    }
    return g_cpu_bf16 && ad_kernels_use_avx512();
}

void ad_bf16_from_floats(uint16_t *dst, const float *src, size_t n) {
    if (ad_kernels_have_bf16()) {
        ad_bf16_from_floats_avx512(dst, src, n);
        return;
    }
    for (size_t i = 0; i < n; i++) { /* nearest even, as the instruction rounds */
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            u |= 0x00400000u; /* a NaN stays a (quiet) NaN */
        else
            u += 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

int ad_kernels_set_bf16(int on) {
    int prev = g_bf16;
    g_bf16 = on && ad_kernels_have_bf16();
    return prev;
}

/* C (+)= A B with the engine's own kernels: in bf16 when that is on, else the
 * AVX-512 fp32 product. 0 when done; -1 leaves it to OpenBLAS (portable path,
 * or scratch memory could not be had). */
static int own_gemm(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                    const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate) {
    if (g_bf16 && ad_gemm_bf16(M, N, K, A, ars, acs, B, brs, bcs, C, ldc, accumulate) == 0)
        return 0;
    if (use_own_gemm() &&
        ad_gemm_avx512(M, N, K, A, ars, acs, B, brs, bcs, C, ldc, accumulate) == 0)
        return 0;
    return -1;
}

/* cblas takes int sizes: products with more than INT_MAX rows are done in
 * slices (never in practice, but sizes are size_t throughout). */
#define BLAS_ROWS ((size_t)INT_MAX)

void ad_matmul_forward(float *out, const float *in, const float *W, size_t N, size_t I, size_t O,
                       int accumulate) {
    if (N == 0 || O == 0) return;
    if (I == 0) {
        if (!accumulate) memset(out, 0, N * O * sizeof(float));
        return;
    }
    if (own_gemm(N, O, I, in, I, 1, W, 1, I, out, O, accumulate) == 0) return;
    for (size_t r = 0; r < N; r += BLAS_ROWS) {
        size_t n = N - r < BLAS_ROWS ? N - r : BLAS_ROWS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)O, (int)I, 1.0f,
                    in + r * I, (int)I, W, (int)I, accumulate ? 1.0f : 0.0f, out + r * O, (int)O);
    }
}

/* On the portable path (or for shapes the own kernel does not take) the
 * packed form is W itself. */
struct ad_packed_matrix {
    const float *W;
    size_t I, O;
    float *panels;         /* ad_gemm_avx512_pack_b's layout of W^T, or NULL */
    uint32_t *bf16_panels; /* ad_gemm_bf16_pack_b's layout of W^T (bf16 products), or NULL */
};

/* n words (floats or bf16 pairs) of 64-byte aligned memory; NULL past SIZE_MAX. */
static void *alloc_panels(size_t n) {
    if (n > SIZE_MAX / 4 / 2) return NULL;
    return aligned_alloc(64, (n * 4 + 63) & ~(size_t)63);
}

int ad_matmul_pack(ad_packed_matrix **out, const float *W, size_t I, size_t O, ad_error *err) {
    *out = NULL;
    ad_packed_matrix *p = calloc(1, sizeof *p);
    if (!p) return ad_error_set(err, "matmul pack: out of memory");
    *p = (ad_packed_matrix){W, I, O, NULL, NULL};
    if (use_own_gemm() && I > 0 && O > 0) {
        p->panels = alloc_panels(ad_gemm_avx512_packed_size(O, I));
        if (!p->panels) {
            free(p);
            return ad_error_set(err, "matmul pack: out of memory for a %zu x %zu matrix", O, I);
        }
        ad_gemm_avx512_pack_b(p->panels, O, I, W, 1, I);
    }
    *out = p;
    return AD_OK;
}

int ad_matmul_pack_bf16(ad_packed_matrix **out, const float *W, size_t I, size_t O, ad_error *err) {
    if (!ad_kernels_have_bf16() || I == 0 || O == 0) return ad_matmul_pack(out, W, I, O, err);
    *out = NULL;
    ad_packed_matrix *p = calloc(1, sizeof *p);
    if (!p) return ad_error_set(err, "matmul pack: out of memory");
    *p = (ad_packed_matrix){W, I, O, NULL, alloc_panels(ad_gemm_bf16_packed_words(O, I))};
    if (!p->bf16_panels) {
        free(p);
        return ad_error_set(err, "matmul pack: out of memory for a %zu x %zu matrix", O, I);
    }
    ad_gemm_bf16_pack_b(p->bf16_panels, O, I, W, 1, I);
    *out = p;
    return AD_OK;
}

int ad_packed_matrix_is_bf16(const ad_packed_matrix *p) {
    return p->bf16_panels != NULL;
}

void ad_packed_matrix_free(ad_packed_matrix *p) {
    if (!p) return;
    free(p->panels);
    free(p->bf16_panels);
    free(p);
}

void ad_matmul_forward_packed(float *out, const float *in, const ad_packed_matrix *W, size_t N,
                              int accumulate) {
    /* bf16 products fail only for want of scratch memory: then fp32 (other bits) */
    if (W->bf16_panels && ad_gemm_bf16_packed(N, W->O, W->I, in, W->I, W->bf16_panels, &out,
                                              SIZE_MAX, W->O, accumulate, NULL) == 0)
        return;
    if (W->panels && use_own_gemm() &&
        ad_gemm_avx512_packed(N, W->O, W->I, in, W->I, W->panels, out, W->O, accumulate) == 0)
        return;
    ad_matmul_forward(out, in, W->W, N, W->I, W->O, accumulate);
}

void ad_matmul_forward_packed_parts(float *const *out, const float *in, const ad_packed_matrix *W,
                                    size_t N, size_t parts) {
    size_t O = W->O / parts;
    if (W->bf16_panels && O % 32 == 0 &&
        ad_gemm_bf16_packed(N, W->O, W->I, in, W->I, W->bf16_panels, out, O, O, 0, NULL) == 0)
        return;
    /* fp32 panels, or parts that would split a panel: the parts one by one
     * from W itself, in W's precision (fp32 too when scratch memory is short) */
    for (size_t p = 0; p < parts; p++) {
        const float *Wp = W->W + p * O * W->I;
        if (!W->bf16_panels || ad_gemm_bf16(N, O, W->I, in, W->I, 1, Wp, 1, W->I, out[p], O, 0))
            ad_matmul_forward(out[p], in, Wp, N, W->I, O, 0);
    }
}

/* din[N,I] (+)= dout[N,O] @ W[O,I] and dW[O,I] += dout^T @ in; din is
 * overwritten when din_accumulate is 0, which spares the caller a memset of
 * N x I floats (the same bits, but for the sign of an exact zero). */
static void matmul_backward(float *din, int din_accumulate, float *dW, const float *dout,
                            const float *in, const float *W, size_t N, size_t I, size_t O) {
    if (N == 0 || I == 0 || O == 0) return;
    if (din) {
        /* din[N,I] (+)= dout[N,O] @ W[O,I] */
        if (own_gemm(N, I, O, dout, O, 1, W, I, 1, din, I, din_accumulate) != 0)
            for (size_t r = 0; r < N; r += BLAS_ROWS) {
                size_t n = N - r < BLAS_ROWS ? N - r : BLAS_ROWS;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)I, (int)O, 1.0f,
                            dout + r * O, (int)O, W, (int)I, din_accumulate ? 1.0f : 0.0f,
                            din + r * I, (int)I);
            }
    }
    if (dW) {
        /* dW[O,I] += dout^T @ in, summed over the N rows */
        if (own_gemm(O, I, N, dout, 1, O, in, I, 1, dW, I, 1) != 0)
            for (size_t r = 0; r < N; r += BLAS_ROWS) {
                size_t n = N - r < BLAS_ROWS ? N - r : BLAS_ROWS;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)O, (int)I, (int)n, 1.0f,
                            dout + r * O, (int)O, in + r * I, (int)I, 1.0f, dW, (int)I);
            }
    }
}

void ad_matmul_backward(float *din, float *dW, const float *dout, const float *in, const float *W,
                        size_t N, size_t I, size_t O) {
    matmul_backward(din, 1, dW, dout, in, W, N, I, O);
}

void ad_matmul_backward_into(float *din, float *dW, const float *dout, const float *in,
                             const float *W, size_t N, size_t I, size_t O) {
    matmul_backward(din, 0, dW, dout, in, W, N, I, O);
}

void ad_matmul_forward_parts(float *const *out, const float *in, const float *W, size_t N, size_t I,
                             size_t O, size_t parts) {
    if (g_bf16 && N && O && I &&
        ad_gemm_bf16_parts(N, parts * O, I, &in, I, I, 1, W, 1, I, out, O, O, 0, NULL) == 0)
        return;
    for (size_t p = 0; p < parts; p++)
        ad_matmul_forward(out[p], in, W + p * O * I, N, I, O, 0);
}

void ad_matmul_backward_parts_into(float *din, float *dW, const float *const *dout, const float *in,
                                   const float *W, size_t N, size_t I, size_t O, size_t parts) {
    if (g_bf16 && N && I && O && parts) {
        /* din[N,I] = [dout_0 .. dout_p] @ [W_0; ..; W_p], K = parts*O */
        if (din &&
            ad_gemm_bf16_parts(N, I, parts * O, dout, O, O, 1, W, I, 1, &din, I, I, 0, NULL) == 0)
            din = NULL;
        /* dW[parts*O, I] += [dout_0 .. dout_p]^T @ in */
        if (dW &&
            ad_gemm_bf16_parts(parts * O, I, N, dout, O, 1, O, in, I, 1, &dW, I, I, 1, NULL) == 0)
            dW = NULL;
        if (!din && !dW) return;
    }
    for (size_t p = 0; p < parts; p++)
        matmul_backward(din, p > 0, dW ? dW + p * O * I : NULL, dout[p], in, W + p * O * I, N, I,
                        O);
}

/* A float buffer that holds bf16 values in its first half (ad_mlp_forward's
 * hid), seen as those values. */
static uint16_t *bf16_half(float *p) {
    void *v = p;
    return v;
}

static const uint16_t *bf16_half_const(const float *p) {
    const void *v = p;
    return v;
}

/* Rows of SwiGLU or its backward rounded to bf16, for the products that take them. */
typedef struct swiglu_rows_bf16 {
    uint16_t *out; /* [N][2F] */
    const float *dh, *gate, *up;
    size_t F;
} swiglu_rows_bf16;

/* SwiGLU's rows rounded to bf16 (the down projection's operand, in its
 * forward and weight gradient): no fp32 hid goes out to memory. */
static void swiglu_forward_rows_bf16(void *ctx, size_t m0, size_t m1) {
    const swiglu_rows_bf16 *s = ctx;
    size_t o = m0 * s->F;
    ad_swiglu_forward_bf16(s->out + o, s->gate + o, s->up + o, (m1 - m0) * s->F);
}

int ad_mlp_forward(float *out, float *hid, float *gate, float *up, const float *xn,
                   const float *W_gate, const float *W_down, size_t N, size_t C, size_t F) {
    float *gate_up[2] = {gate, up};
    int have_gate_up = 0;
    if (g_bf16 && N && C && F && F % 32 == 0) {
        uint16_t *h16 = bf16_half(hid);
        swiglu_rows_bf16 s = {h16, NULL, gate, up, F};
        ad_gemm_rows_done done = {swiglu_forward_rows_bf16, &s};
        if (ad_gemm_bf16_parts(N, 2 * F, C, &xn, C, C, 1, W_gate, 1, C, gate_up, F, F, 0, &done) ==
            0) {
            if (ad_gemm_bf16_a16(N, C, F, h16, F, 1, W_down, 1, F, out, C, 1) == 0) return 1;
            have_gate_up = 1; /* no scratch memory for the down projection: floats from here */
        }
    }
    if (!have_gate_up) ad_matmul_forward_parts(gate_up, xn, W_gate, N, C, F, 2);
    ad_swiglu_forward(hid, gate, up, N, F);
    ad_matmul_forward(out, hid, W_down, N, F, C, 1);
    return 0;
}

void ad_mlp_forward_packed(float *out, float *hid, float *gate, float *up, const float *xn,
                           const ad_packed_matrix *W_gate_up, const ad_packed_matrix *W_down,
                           size_t N) {
    size_t C = W_down->O, F = W_down->I;
    float *const gate_up[2] = {gate, up};
    if (N && W_gate_up->bf16_panels && W_down->bf16_panels && F % 32 == 0) {
        uint16_t *h16 = bf16_half(hid);
        swiglu_rows_bf16 s = {h16, NULL, gate, up, F};
        ad_gemm_rows_done done = {swiglu_forward_rows_bf16, &s};
        /* the down projection takes h16's rows in place and its weights packed:
         * it needs no scratch, so once the first product ran, so does it */
        if (ad_gemm_bf16_packed(N, 2 * F, C, xn, C, W_gate_up->bf16_panels, gate_up, F, F, 0,
                                &done) == 0 &&
            ad_gemm_bf16_packed_a16(N, C, F, h16, F, W_down->bf16_panels, out, C, 1) == 0)
            return;
    }
    ad_matmul_forward_packed_parts(gate_up, xn, W_gate_up, N, 2);
    ad_swiglu_forward(hid, gate, up, N, F);
    ad_matmul_forward_packed(out, hid, W_down, N, 1);
}

/* The SwiGLU backward's rows rounded to bf16 into rows of [dgate | dup], the
 * next products' operand: no fp32 dgate and dup go out to memory. */
static void swiglu_backward_rows_bf16(void *ctx, size_t m0, size_t m1) {
    const swiglu_rows_bf16 *s = ctx;
    for (size_t m = m0; m < m1; m++) {
        size_t o = m * s->F;
        ad_swiglu_backward_bf16(s->out + 2 * o, s->out + 2 * o + s->F, s->dh + o, s->gate + o,
                                s->up + o, s->F);
    }
}

/* dW_down[C,F] += dout^T @ hid, hid in the form ad_mlp_forward left it;
 * spare: [N,F] floats of working space. */
static void down_weight_gradient(float *dW_down, const float *dout, const float *hid, int hid_bf16,
                                 const float *W_down, size_t N, size_t C, size_t F, float *spare) {
    if (hid_bf16 && g_bf16 &&
        ad_gemm_bf16_b16(C, F, N, dout, 1, C, bf16_half_const(hid), F, 1, dW_down, F, 1) == 0)
        return;
    if (hid_bf16) { /* bf16 off since the forward, or no scratch memory: the floats it rounds to */
        ad_bf16_widen(spare, bf16_half_const(hid), N * F);
        hid = spare;
    }
    ad_matmul_backward(NULL, dW_down, dout, hid, W_down, N, F, C);
}

/* The bf16 MLP backward with [dgate | dup] in bf16 only; 0 when done, -1
 * when scratch memory could not be had before anything was written. */
static int mlp_backward_bf16(float *dxn, float *dW_gate, float *dW_down, float *dhid, float *dgate,
                             float *dup, const float *dout, const float *xn, const float *hid,
                             int hid_bf16, const float *gate, const float *up, const float *W_gate,
                             const float *W_down, size_t N, size_t C, size_t F) {
    uint16_t *g16 = ad_scratch_get(AD_SCRATCH_MLP, N * F);
    if (!g16) return -1;
    swiglu_rows_bf16 s = {g16, dhid, gate, up, F};
    ad_gemm_rows_done done = {swiglu_backward_rows_bf16, &s};
    if (ad_gemm_bf16_parts(N, F, C, &dout, SIZE_MAX, C, 1, W_down, F, 1, &dhid, SIZE_MAX, F, 0,
                           &done) != 0) {
        ad_scratch_put(AD_SCRATCH_MLP, g16);
        return -1;
    }
    down_weight_gradient(dW_down, dout, hid, hid_bf16, W_down, N, C, F, dgate);
    /* dxn = [dgate | dup] @ [W_gate; W_up]; dW_gate/up += [dgate | dup]^T @ xn */
    int rc_din = ad_gemm_bf16_a16(N, C, 2 * F, g16, 2 * F, 1, W_gate, C, 1, dxn, C, 0);
    int rc_dw = ad_gemm_bf16_a16(2 * F, C, N, g16, 1, 2 * F, xn, C, 1, dW_gate, C, 1);
    ad_scratch_put(AD_SCRATCH_MLP, g16);
    if (rc_din == 0 && rc_dw == 0) return 0;
    /* out of scratch memory half way: the fp32 gradients from dhid, then the rest */
    ad_swiglu_backward(dgate, dup, dhid, gate, up, N, F);
    const float *dgate_up[2] = {dgate, dup};
    ad_matmul_backward_parts_into(rc_din ? dxn : NULL, rc_dw ? dW_gate : NULL, dgate_up, xn, W_gate,
                                  N, C, F, 2);
    return 0;
}

void ad_mlp_backward_into(float *dxn, float *dW_gate, float *dW_down, float *dhid, float *dgate,
                          float *dup, const float *dout, const float *xn, const float *hid,
                          int hid_bf16, const float *gate, const float *up, const float *W_gate,
                          const float *W_down, size_t N, size_t C, size_t F) {
    if (g_bf16 && N && C && F && F % 32 == 0 && /* dgate | dup: one operand, as in parts */
        mlp_backward_bf16(dxn, dW_gate, dW_down, dhid, dgate, dup, dout, xn, hid, hid_bf16, gate,
                          up, W_gate, W_down, N, C, F) == 0)
        return;
    down_weight_gradient(dW_down, dout, hid, hid_bf16, W_down, N, C, F, dgate);
    ad_matmul_backward_into(dhid, NULL, dout, hid, W_down, N, F, C);
    ad_swiglu_backward(dgate, dup, dhid, gate, up, N, F);
    const float *dgate_up[2] = {dgate, dup};
    ad_matmul_backward_parts_into(dxn, dW_gate, dgate_up, xn, W_gate, N, C, F, 2);
}

/* ---- RMSNorm ----------------------------------------------------------------------------- */

void ad_rmsnorm_forward(float *out, float *rstd, const float *in, const float *w, size_t N,
                        size_t C, float eps) {
    if (ad_kernels_use_avx512()) {
        ad_rmsnorm_forward_avx512(out, rstd, in, w, N, C, eps);
        return;
    }
#pragma omp parallel for schedule(dynamic, 16) if (N * C > AD_SERIAL_MAX)
    for (size_t n = 0; n < N; n++) {
        const float *x = in + n * C;
        float *y = out + n * C;
        float ss = 0.0f;
        for (size_t c = 0; c < C; c++)
            ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        if (rstd) rstd[n] = r;
        for (size_t c = 0; c < C; c++)
            y[c] = x[c] * r * w[c];
    }
}

/* Backward for rows [0, n) of one block: din += ..., dw_part = this block's
 * column sums of dout * x * rstd (overwritten).
 *   y = x r w, r = (mean(x^2) + eps)^-1/2
 *   dx_j = r (w_j dy_j - x_j r^2 mean_i(w_i dy_i x_i)),  dw_j = sum_rows dy_j x_j r */
static void rmsnorm_backward_rows(float *din, float *dw_part, const float *dout, const float *in,
                                  const float *w, const float *rstd, size_t n, size_t C) {
    memset(dw_part, 0, C * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        const float *x = in + r * C, *dy = dout + r * C;
        float *dx = din + r * C, rs = rstd[r];
        float dot = 0.0f;
        for (size_t c = 0; c < C; c++)
            dot += w[c] * dy[c] * x[c];
        float k = rs * rs * dot / (float)C;
        for (size_t c = 0; c < C; c++) {
            dx[c] += rs * (w[c] * dy[c] - x[c] * k);
            dw_part[c] += dy[c] * x[c] * rs;
        }
    }
}

void ad_rmsnorm_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                         const float *rstd, size_t N, size_t C) {
    if (N == 0 || C == 0) return;
    size_t nblk = (N + AD_ROW_BLOCK - 1) / AD_ROW_BLOCK;
    float *part = ad_scratch_get(AD_SCRATCH_ROWSUM, nblk * C);
    int avx = ad_kernels_use_avx512();
    if (!part) {
        /* Out of memory for the block sums: one row at a time, straight into dw. */
        for (size_t r = 0; r < N; r++) {
            const float *x = in + r * C, *dy = dout + r * C;
            float rs = rstd[r], dot = 0.0f;
            for (size_t c = 0; c < C; c++)
                dot += w[c] * dy[c] * x[c];
            float k = rs * rs * dot / (float)C;
            for (size_t c = 0; c < C; c++) {
                din[r * C + c] += rs * (w[c] * dy[c] - x[c] * k);
                dw[c] += dy[c] * x[c] * rs;
            }
        }
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (size_t b = 0; b < nblk; b++) {
        size_t r0 = b * AD_ROW_BLOCK, n = N - r0 < AD_ROW_BLOCK ? N - r0 : AD_ROW_BLOCK;
        if (avx)
            ad_rmsnorm_backward_rows_avx512(din + r0 * C, part + b * C, dout + r0 * C, in + r0 * C,
                                            w, rstd + r0, n, C);
        else
            rmsnorm_backward_rows(din + r0 * C, part + b * C, dout + r0 * C, in + r0 * C, w,
                                  rstd + r0, n, C);
    }
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < C; c++) {
        float s = 0.0f;
        for (size_t b = 0; b < nblk; b++)
            s += part[b * C + c];
        dw[c] += s;
    }
    ad_scratch_put(AD_SCRATCH_ROWSUM, part);
}

/* ---- element-wise work split ------------------------------------------------------------- */

/* Element-wise kernels hand out chunks of EW_CHUNK floats dynamically: no
 * element depends on which thread computes it, and a thread that the OS (or the
 * host of a virtual machine) preempts does not hold the others up. */
#define EW_CHUNK ((size_t)16384)

static size_t ew_chunks(size_t n) {
    return (n + EW_CHUNK - 1) / EW_CHUNK;
}

/* ---- SwiGLU ------------------------------------------------------------------------------ */

void ad_swiglu_forward(float *h, const float *gate, const float *up, size_t N, size_t F) {
    size_t n = N * F;
    int avx = ad_kernels_use_avx512();
#pragma omp parallel for schedule(dynamic) if (n > AD_SERIAL_MAX)
    for (size_t c = 0; c < ew_chunks(n); c++) {
        size_t lo = c * EW_CHUNK, hi = n - lo < EW_CHUNK ? n : lo + EW_CHUNK;
        if (avx) {
            ad_swiglu_forward_avx512(h + lo, gate + lo, up + lo, hi - lo);
        } else {
            for (size_t i = lo; i < hi; i++) {
                float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
                h[i] = g * sig * up[i];
            }
        }
    }
}

/* h = g s(g) u with s the logistic function:
 *   dh/dg = u s (1 + g (1 - s)),  dh/du = g s */
void ad_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate,
                        const float *up, size_t N, size_t F) {
    size_t n = N * F;
    int avx = ad_kernels_use_avx512();
#pragma omp parallel for schedule(dynamic) if (n > AD_SERIAL_MAX)
    for (size_t c = 0; c < ew_chunks(n); c++) {
        size_t lo = c * EW_CHUNK, hi = n - lo < EW_CHUNK ? n : lo + EW_CHUNK;
        if (avx) {
            ad_swiglu_backward_avx512(dgate + lo, dup + lo, dh + lo, gate + lo, up + lo, hi - lo);
        } else {
            for (size_t i = lo; i < hi; i++) {
                float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
                dgate[i] = dh[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
                dup[i] = dh[i] * g * sig;
            }
        }
    }
}

/* ---- RoPE -------------------------------------------------------------------------------- */

/* cos/sin of pos * freq_i as the Hugging Face code computes them in float32:
 * inv_freq_i = 1 / theta^(2i/D), angle = (float)pos * inv_freq_i. */
static void rope_angle(size_t pos, size_t i, size_t D, float theta, float *c, float *s) {
    float inv_freq = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)D));
    float angle = (float)pos * inv_freq;
    *c = cosf(angle);
    *s = sinf(angle);
}

/* Rotates the H heads of one row by the angles of one position; sign = +1 for
 * the forward rotation, -1 for its inverse (the gradient). */
static void rope_row(float *x, size_t H, size_t D, const float *cs, const float *sn, float sign) {
    size_t half = D / 2;
    for (size_t h = 0; h < H; h++) {
        float *x1 = x + h * D, *x2 = x1 + half;
        for (size_t i = 0; i < half; i++) {
            float a = x1[i], b = x2[i], s = sign * sn[i];
            x1[i] = a * cs[i] - b * s;
            x2[i] = b * cs[i] + a * s;
        }
    }
}

/* The position of token bt of a [B, T] batch: its offset in its own sequence. */
static size_t rope_pos(const int32_t *seg_start, size_t bt, size_t T) {
    return bt % T - (seg_start ? (size_t)seg_start[bt] : 0);
}

static void rope_apply(float *x, const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                       float theta, float sign) {
    size_t half = D / 2;
    if (half == 0 || B == 0 || T == 0) return;
    float *tab = malloc(2 * T * half * sizeof(float));
    if (!tab) {
        /* No memory for the table: angles computed per row (same values). */
        float cs[64], sn[64];
        for (size_t bt = 0; bt < B * T; bt++)
            for (size_t i0 = 0; i0 < half; i0 += 64) {
                size_t m = half - i0 < 64 ? half - i0 : 64;
                for (size_t i = 0; i < m; i++)
                    rope_angle(rope_pos(seg_start, bt, T), i0 + i, D, theta, cs + i, sn + i);
                for (size_t h = 0; h < H; h++) {
                    float *x1 = x + bt * H * D + h * D + i0, *x2 = x1 + half;
                    for (size_t i = 0; i < m; i++) {
                        float a = x1[i], b = x2[i], s = sign * sn[i];
                        x1[i] = a * cs[i] - b * s;
                        x2[i] = b * cs[i] + a * s;
                    }
                }
            }
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < half; i++)
            rope_angle(t, i, D, theta, tab + t * 2 * half + i, tab + t * 2 * half + half + i);
#pragma omp parallel for schedule(dynamic)
    for (size_t bt = 0; bt < B * T; bt++) {
        const float *row = tab + rope_pos(seg_start, bt, T) * 2 * half;
        rope_row(x + bt * H * D, H, D, row, row + half, sign);
    }
    free(tab);
}

void ad_rope_forward(float *x, const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                     float theta) {
    rope_apply(x, seg_start, B, T, H, D, theta, 1.0f);
}

void ad_rope_backward(float *dx, const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                      float theta) {
    rope_apply(dx, seg_start, B, T, H, D, theta, -1.0f);
}

void ad_rope_one(float *x, size_t H, size_t D, size_t pos, float theta) {
    size_t half = D / 2;
    float cs[64], sn[64];
    for (size_t i0 = 0; i0 < half; i0 += 64) {
        size_t m = half - i0 < 64 ? half - i0 : 64;
        for (size_t i = 0; i < m; i++)
            rope_angle(pos, i0 + i, D, theta, cs + i, sn + i);
        for (size_t h = 0; h < H; h++) {
            float *x1 = x + h * D + i0, *x2 = x1 + half;
            for (size_t i = 0; i < m; i++) {
                float a = x1[i], b = x2[i];
                x1[i] = a * cs[i] - b * sn[i];
                x2[i] = b * cs[i] + a * sn[i];
            }
        }
    }
}

/* ---- softmax cross-entropy --------------------------------------------------------------- */

/* One row: logp_target = logits[target] - logsumexp(logits); when dlogits is
 * not NULL it gets weight * (softmax - onehot(target)). */
static void xent_row(float *logp_target, float *dlogits, const float *x, int32_t target,
                     float weight, size_t V) {
    float mx = x[0];
    for (size_t i = 1; i < V; i++)
        mx = x[i] > mx ? x[i] : mx;
    float sum = expf(x[0] - mx); /* V >= 1: the row has a target */
    for (size_t i = 1; i < V; i++)
        sum += expf(x[i] - mx);
    float lse = mx + logf(sum);
    *logp_target = x[target] - lse;
    if (!dlogits) return;
    for (size_t i = 0; i < V; i++)
        dlogits[i] = weight * expf(x[i] - lse);
    dlogits[target] -= weight;
}

void ad_xent_forward(float *logp_target, const float *logits, const int32_t *targets, size_t N,
                     size_t V) {
    int avx = ad_kernels_use_avx512();
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t n = 0; n < N; n++) {
        logp_target[n] = 0.0f;
        if (targets[n] < 0 || (size_t)targets[n] >= V) continue;
        if (avx)
            ad_xent_row_avx512(logp_target + n, NULL, logits + n * V, targets[n], 0.0f, V);
        else
            xent_row(logp_target + n, NULL, logits + n * V, targets[n], 0.0f, V);
    }
}

void ad_xent_backward(float *dlogits, const float *logits, const int32_t *targets,
                      const float *weights, size_t N, size_t V) {
    int avx = ad_kernels_use_avx512();
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t n = 0; n < N; n++) {
        float *d = dlogits + n * V, lp;
        if (targets[n] < 0 || (size_t)targets[n] >= V || weights[n] == 0.0f) {
            memset(d, 0, V * sizeof(float));
            continue;
        }
        if (avx)
            ad_xent_row_avx512(&lp, d, logits + n * V, targets[n], weights[n], V);
        else
            xent_row(&lp, d, logits + n * V, targets[n], weights[n], V);
    }
}

/* ---- optimizer pieces -------------------------------------------------------------------- */

/* Elements per block of ad_sum_squares; each block is summed in 8 double
 * lanes (element i of the block into lane i % 8), lanes in order, then blocks
 * in order: the same bits on every path and for every thread count. */
#define SS_BLOCK 4096

static double sum_squares_block(const float *x, size_t n) {
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lane[j] += (double)x[i + j] * (double)x[i + j];
    for (int j = 0; i < n; i++, j++)
        lane[j] += (double)x[i] * (double)x[i];
    double s = 0.0;
    for (int j = 0; j < 8; j++)
        s += lane[j];
    return s;
}

double ad_sum_squares(const float *x, size_t n) {
    size_t nblk = (n + SS_BLOCK - 1) / SS_BLOCK;
    double *part = malloc((nblk ? nblk : 1) * sizeof(double));
    int avx = ad_kernels_use_avx512();
    double s = 0.0;
    if (!part) {
        for (size_t b = 0; b < nblk; b++) {
            size_t lo = b * SS_BLOCK, m = n - lo < SS_BLOCK ? n - lo : SS_BLOCK;
            s += avx ? ad_sum_squares_avx512(x + lo, m) : sum_squares_block(x + lo, m);
        }
        return s;
    }
#pragma omp parallel for schedule(dynamic)
    for (size_t b = 0; b < nblk; b++) {
        size_t lo = b * SS_BLOCK, m = n - lo < SS_BLOCK ? n - lo : SS_BLOCK;
        part[b] = avx ? ad_sum_squares_avx512(x + lo, m) : sum_squares_block(x + lo, m);
    }
    for (size_t b = 0; b < nblk; b++)
        s += part[b];
    free(part);
    return s;
}

void ad_scale(float *x, size_t n, float s) {
#pragma omp parallel for schedule(dynamic) if (n > AD_SERIAL_MAX)
    for (size_t c = 0; c < ew_chunks(n); c++) {
        size_t lo = c * EW_CHUNK, hi = n - lo < EW_CHUNK ? n : lo + EW_CHUNK;
        for (size_t i = lo; i < hi; i++)
            x[i] *= s;
    }
}

/* The update in PyTorch's order of operations (torch.optim.AdamW):
 *   p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g g;
 *   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - b_i^t.
 * The AVX-512 body performs the same IEEE operations, so both agree bit for
 * bit. Work items are chunks of EW_CHUNK floats inside one segment. */
void ad_adamw_update_segments(float *p, const float *g, float *m, float *v, const size_t *off,
                              const size_t *len, const float *wd, size_t n_seg, float lr, float b1,
                              float b2, float eps, uint64_t t) {
    if (t == 0) t = 1;
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    float step = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    int avx = ad_kernels_use_avx512();
    size_t items = 0;
    for (size_t i = 0; i < n_seg; i++)
        items += ew_chunks(len[i]);
#pragma omp parallel for schedule(dynamic)
    for (size_t it = 0; it < items; it++) {
        size_t seg = 0, first = 0; /* the segment holding item `it`, and its first item */
        while (first + ew_chunks(len[seg]) <= it)
            first += ew_chunks(len[seg++]);
        size_t lo = off[seg] + (it - first) * EW_CHUNK;
        size_t hi = off[seg] + len[seg] - lo < EW_CHUNK ? off[seg] + len[seg] : lo + EW_CHUNK;
        float decay = (float)(1.0 - (double)lr * (double)wd[seg]);
        if (avx) {
            ad_adamw_update_avx512(p + lo, g + lo, m + lo, v + lo, hi - lo, step, b1, b2, eps,
                                   decay, one_b1, one_b2, bc2_sqrt);
            continue;
        }
        for (size_t i = lo; i < hi; i++) {
            float gi = g[i];
            float mi = b1 * m[i] + one_b1 * gi;
            float vi = b2 * v[i] + one_b2 * gi * gi;
            float denom = sqrtf(vi) / bc2_sqrt + eps;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * decay - step * (mi / denom);
        }
    }
}

void ad_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                     float b2, float eps, float wd, uint64_t t) {
    size_t off = 0;
    ad_adamw_update_segments(p, g, m, v, &off, &n, &wd, 1, lr, b1, b2, eps, t);
}
