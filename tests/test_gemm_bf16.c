/* test_gemm_bf16.c: the bf16 matrix product (kernels_gemm_bf16_avx512.c)
 * against a double-precision loop over the operands rounded to bf16 (so only
 * the fp32 sums may differ, within their rounding bound), against the fp32
 * product (within bf16's rounding of the operands), on every operand layout
 * and ragged shape, with and without accumulation, and bit-identical across
 * thread counts. On a CPU without AVX512-BF16 every test passes vacuously and
 * says so. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/kernels.h"
#include "model/kernels_internal.h"
#include "util/rng.h"

static ad_rng g_rng;

/* Round to nearest even, written independently of the kernel's conversion. */
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x; /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* The same rounding as bf16 values (the high halves of the rounded floats). */
static void bf16_values(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float r = bf16_round(src[i]);
        uint32_t u;
        memcpy(&u, &r, 4);
        dst[i] = (uint16_t)(u >> 16);
    }
}

static float *randv(size_t n, int integers) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = integers ? (float)((int)(ad_rng_uniform(&g_rng) * 17.0) - 8)
                        : (float)ad_rng_normal(&g_rng);
    return x;
}

/* One layout of an operand: element (r, c) at base[r * rs + c * cs]. */
typedef struct layout {
    size_t rs, cs, size;
} layout;

/* Row-major, column-major, or row-major inside a wider buffer (strided). */
static layout make_layout(int kind, size_t rows, size_t cols) {
    if (kind == 0) return (layout){cols, 1, rows * cols};
    if (kind == 1) return (layout){1, rows, rows * cols};
    return (layout){2 * cols + 1, 2, rows * (2 * cols + 1)};
}

/* Checks C against the references for C0 (+)= A B; returns the worst error as
 * a fraction of the tolerance. */
static void check_case(size_t M, size_t N, size_t K, int akind, int bkind, int accumulate,
                       int integers) {
    layout la = make_layout(akind, M, K), lb = make_layout(bkind, K, N);
    float *A = randv(la.size, integers), *B = randv(lb.size, integers);
    float *C = randv(M * N, integers), *C0 = malloc(M * N * sizeof(float));
    memcpy(C0, C, M * N * sizeof(float));
    int rc = ad_gemm_bf16(M, N, K, A, la.rs, la.cs, B, lb.rs, lb.cs, C, N, accumulate);
    CHECK(rc == 0);
    double worst_bf = 0, worst_fp = 0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double ref_bf = 0, ref_fp = 0, mag = 0;
            for (size_t k = 0; k < K; k++) {
                float a = A[i * la.rs + k * la.cs], b = B[k * lb.rs + j * lb.cs];
                ref_bf += (double)bf16_round(a) * bf16_round(b);
                ref_fp += (double)a * b;
                mag += fabs((double)a * b);
            }
            double c0 = accumulate ? C0[i * N + j] : 0.0, got = C[i * N + j];
            mag += fabs(c0) + 1e-30;
            /* fp32 sums: at most K + 1 roundings of 2^-24 of partial sums <= mag */
            double tol_bf = (double)(K + 2) * ldexp(1.0, -24) * mag;
            /* bf16 operands: each rounded by at most 2^-9 relative */
            double tol_fp = ldexp(1.0, -7) * mag;
            double e_bf = fabs(got - (ref_bf + c0)) / tol_bf,
                   e_fp = fabs(got - (ref_fp + c0)) / tol_fp;
            if (!(e_bf <= worst_bf)) worst_bf = e_bf;
            if (!(e_fp <= worst_fp)) worst_fp = e_fp;
            if (integers) CHECK(got == ref_fp + c0); /* small integers are exact in bf16 */
        }
    CHECK_MSG(worst_bf <= 1.0 && worst_fp <= 1.0,
              "M %zu N %zu K %zu A %d B %d acc %d: %.3g / %.3g of the tolerances", M, N, K, akind,
              bkind, accumulate, worst_bf, worst_fp);
    free(A), free(B), free(C), free(C0);
}

static int have_bf16(void) {
    if (ad_kernels_have_bf16()) return 1;
    printf("  (no AVX512-BF16 on this CPU: nothing to check)\n");
    return 0;
}

static void test_layouts_and_shapes(void) {
    if (!have_bf16()) return;
    /* {430, 70, 97} and {390, 40, 450} have rows enough for units that convert
     * their own rows of A, {20, 500, 70} columns enough for their own of B */
    static const size_t shapes[][3] = {{1, 1, 1},      {5, 17, 3},    {13, 33, 37}, {50, 70, 64},
                                       {97, 130, 129}, {12, 32, 385}, {3, 40, 800}, {430, 70, 97},
                                       {390, 40, 450}, {20, 500, 70}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ak = 0; ak < 3; ak++)
            for (int bk = 0; bk < 3; bk++)
                for (int acc = 0; acc < 2; acc++)
                    check_case(shapes[s][0], shapes[s][1], shapes[s][2], ak, bk, acc, 0);
}

static void test_exact_on_integers(void) {
    if (!have_bf16()) return;
    for (int ak = 0; ak < 2; ak++)
        for (int bk = 0; bk < 2; bk++)
            check_case(61, 45, 90, ak, bk, 1, 1);
}

/* The model's three products at a training shape, each on 1 and 2 threads. */
static void threads_agree(size_t N, size_t I, size_t O) {
    float *x = randv(N * I, 0), *W = randv(O * I, 0), *dy = randv(N * O, 0);
    float *out[2], *din[2], *dW[2];
    int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        out[t] = calloc(N * O, sizeof(float));
        din[t] = calloc(N * I, sizeof(float));
        dW[t] = calloc(O * I, sizeof(float));
        CHECK(ad_gemm_bf16(N, O, I, x, I, 1, W, 1, I, out[t], O, 0) == 0);  /* x W^T */
        CHECK(ad_gemm_bf16(N, I, O, dy, O, 1, W, I, 1, din[t], I, 0) == 0); /* dy W */
        CHECK(ad_gemm_bf16(O, I, N, dy, 1, O, x, I, 1, dW[t], I, 1) == 0);  /* dy^T x */
    }
    omp_set_num_threads(saved);
    CHECK(memcmp(out[0], out[1], N * O * sizeof(float)) == 0);
    CHECK(memcmp(din[0], din[1], N * I * sizeof(float)) == 0);
    CHECK(memcmp(dW[0], dW[1], O * I * sizeof(float)) == 0);
    for (int t = 0; t < 2; t++)
        free(out[t]), free(din[t]), free(dW[t]);
    free(x), free(W), free(dy);
}

static void test_threads_agree(void) {
    if (!have_bf16()) return;
    threads_agree(700, 96, 288);
    /* 7 blocks of 48 rows: on one thread the units convert their own rows of A,
     * on two A is converted first and shared (too few blocks for 4 a thread) */
    threads_agree(300, 96, 288);
    /* 5 blocks of 64 columns in the input and weight gradients: their own
     * columns of B on one thread, shared on two */
    threads_agree(300, 320, 64);
}

/* Products sharing an operand, run as one (kernels.h's *_parts with bf16 on):
 * the forward and the weight gradients bit-identical to one ad_gemm_bf16 per
 * part, the input gradient to one product over the parts side by side; parts
 * whose width splits a panel (O = 40) fall back to per-part products. */
static void check_parts(size_t N, size_t I, size_t O, size_t parts) {
    float *x = randv(N * I, 0), *W = randv(parts * O * I, 0), *dy = randv(parts * N * O, 0);
    float *out = calloc(parts * N * O, sizeof(float)), *ref = calloc(parts * N * O, sizeof(float));
    float *dW = calloc(parts * O * I, sizeof(float)),
          *dW_ref = calloc(parts * O * I, sizeof(float));
    float *din = malloc(N * I * sizeof(float)), *din_ref = calloc(N * I, sizeof(float));
    float *wide = malloc(N * parts * O * sizeof(float)); /* the dy parts side by side */
    float *outs[4];
    const float *dys[4];
    int prev = ad_kernels_set_bf16(1);
    for (size_t p = 0; p < parts; p++) {
        outs[p] = out + p * N * O;
        dys[p] = dy + p * N * O;
        CHECK(ad_gemm_bf16(N, O, I, x, I, 1, W + p * O * I, 1, I, ref + p * N * O, O, 0) == 0);
        CHECK(ad_gemm_bf16(O, I, N, dys[p], 1, O, x, I, 1, dW_ref + p * O * I, I, 1) == 0);
        for (size_t n = 0; n < N; n++)
            memcpy(wide + n * parts * O + p * O, dys[p] + n * O, O * sizeof(float));
    }
    if (O % 32 == 0) {
        CHECK(ad_gemm_bf16(N, I, parts * O, wide, parts * O, 1, W, I, 1, din_ref, I, 0) == 0);
    } else {
        for (size_t p = 0; p < parts; p++)
            CHECK(ad_gemm_bf16(N, I, O, dys[p], O, 1, W + p * O * I, I, 1, din_ref, I, p > 0) == 0);
    }
    ad_matmul_forward_parts(outs, x, W, N, I, O, parts);
    ad_matmul_backward_parts_into(din, dW, dys, x, W, N, I, O, parts);
    ad_kernels_set_bf16(prev);
    CHECK_MSG(memcmp(out, ref, parts * N * O * sizeof(float)) == 0, "forward, O %zu", O);
    CHECK_MSG(memcmp(dW, dW_ref, parts * O * I * sizeof(float)) == 0, "weight gradient, O %zu", O);
    CHECK_MSG(memcmp(din, din_ref, N * I * sizeof(float)) == 0, "input gradient, O %zu", O);
    free(x), free(W), free(dy), free(out), free(ref), free(dW), free(dW_ref), free(din),
        free(din_ref), free(wide);
}

static void test_parts(void) {
    if (!have_bf16()) return;
    check_parts(150, 96, 64, 3);
    check_parts(77, 64, 128, 2);
    check_parts(150, 96, 40, 3);
    check_parts(500, 96, 64, 3); /* rows enough for units that convert their own A */
}

/* SwiGLU (or its backward) on rows [m0, m1) of [N,F] arrays: a rows-done hook. */
typedef struct swiglu_hook {
    float *out0, *out1;
    const float *in0, *in1, *in2;
    size_t F;
    int backward;
} swiglu_hook;

static void swiglu_hook_rows(void *ctx, size_t m0, size_t m1) {
    const swiglu_hook *s = ctx;
    size_t o = m0 * s->F;
    if (s->backward)
        ad_swiglu_backward(s->out0 + o, s->out1 + o, s->in0 + o, s->in1 + o, s->in2 + o, m1 - m0,
                           s->F);
    else
        ad_swiglu_forward(s->out0 + o, s->in0 + o, s->in1 + o, m1 - m0, s->F);
}

/* ad_gemm_bf16_parts' rows-done hook, the way the MLP uses it (SwiGLU on the
 * gate/up product's rows; SwiGLU's backward on the down projection's input
 * gradient): the same bits as the product then the SwiGLU pass, on 1 and 2
 * threads, for rows enough for units of whole rows (500), a count that takes
 * them on one thread only (150), a product small enough to run on the calling
 * thread (20 x 32 x 64), and F = 40, whose parts split a panel (refused: -1,
 * nothing called). */
static void check_swiglu(size_t N, size_t C, size_t F, int threads) {
    float *x = randv(N * C, 0), *W = randv(2 * F * C, 0), *Wd = randv(C * F, 0);
    float *dy = randv(N * C, 0), *buf = calloc(12 * N * F, sizeof(float));
    float *r[6], *f[6]; /* hid gate up dgate dup dhid */
    for (int i = 0; i < 6; i++)
        r[i] = buf + 2 * (size_t)i * N * F, f[i] = r[i] + N * F;
    int saved = omp_get_max_threads(), prev = ad_kernels_set_bf16(1);
    omp_set_num_threads(threads);
    float *gu[2] = {r[1], r[2]}, *fgu[2] = {f[1], f[2]};
    ad_matmul_forward_parts(gu, x, W, N, C, F, 2);
    ad_swiglu_forward(r[0], r[1], r[2], N, F);
    ad_matmul_backward_into(r[5], NULL, dy, r[0], Wd, N, F, C);
    ad_swiglu_backward(r[3], r[4], r[5], r[1], r[2], N, F);
    swiglu_hook fw = {f[0], NULL, f[1], f[2], NULL, F, 0},
                bw = {f[3], f[4], f[5], f[1], f[2], F, 1};
    ad_gemm_rows_done done_fw = {swiglu_hook_rows, &fw}, done_bw = {swiglu_hook_rows, &bw};
    int rc = ad_gemm_bf16_parts(N, 2 * F, C, (const float *const[]){x}, C, C, 1, W, 1, C, fgu, F, F,
                                0, &done_fw);
    CHECK_MSG(rc == (F % 32 ? -1 : 0), "F %zu: rc %d", F, rc);
    if (rc == 0) {
        CHECK(ad_gemm_bf16_parts(N, F, C, (const float *const[]){dy}, SIZE_MAX, C, 1, Wd, F, 1,
                                 &f[5], SIZE_MAX, F, 0, &done_bw) == 0);
        static const char *names[6] = {"hid", "gate", "up", "dgate", "dup", "dhid"};
        for (int i = 0; i < 6; i++)
            CHECK_MSG(memcmp(r[i], f[i], N * F * sizeof(float)) == 0,
                      "%s differs: N %zu C %zu F %zu threads %d", names[i], N, C, F, threads);
    } else {
        for (int i = 0; i < 6; i++) /* the hook ran on nothing */
            CHECK(f[i][0] == 0.0f && f[i][N * F - 1] == 0.0f);
    }
    omp_set_num_threads(saved);
    ad_kernels_set_bf16(prev);
    free(x), free(W), free(Wd), free(dy), free(buf);
}

static void test_swiglu_fused(void) {
    if (!have_bf16()) return;
    static const size_t shapes[][3] = {{500, 96, 64}, {150, 64, 128}, {20, 32, 64}, {300, 64, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 1; t <= 2; t++)
            check_swiglu(shapes[s][0], shapes[s][1], shapes[s][2], t);
}

/* The whole MLP (ad_mlp_forward, ad_mlp_backward_into), whose bf16 path
 * keeps hid and hands dgate and dup to the products in bf16 only: the bits of
 * the calls it replaces, on the same shapes as above (F = 40 takes the fp32
 * path), and the backward also from a bf16 hid with bf16 products off. */
static void check_mlp(size_t N, size_t C, size_t F, int bf16, int threads) {
    float *xn = randv(N * C, 0), *W = randv(2 * F * C, 0), *Wd = randv(C * F, 0);
    float *dy = randv(N * C, 0), *x0 = randv(N * C, 0);
    /* out dxn dW_gate dW_down dhid dgate dup gate up hid */
    size_t sizes[10] = {N * C, N * C, 2 * F * C, C * F, N * F, N * F, N * F, N * F, N * F, N * F};
    float *r[10], *f[10];
    for (int i = 0; i < 10; i++)
        r[i] = calloc(sizes[i], sizeof(float)), f[i] = calloc(sizes[i], sizeof(float));
    memcpy(r[0], x0, N * C * sizeof(float));
    memcpy(f[0], x0, N * C * sizeof(float));
    int saved = omp_get_max_threads(), prev = ad_kernels_set_bf16(bf16);
    omp_set_num_threads(threads);
    float *rgu[2] = {r[7], r[8]};
    ad_matmul_forward_parts(rgu, xn, W, N, C, F, 2);
    ad_swiglu_forward(r[9], r[7], r[8], N, F);
    ad_matmul_forward(r[0], r[9], Wd, N, F, C, 1);
    ad_matmul_backward_into(r[4], r[3], dy, r[9], Wd, N, F, C);
    ad_swiglu_backward(r[5], r[6], r[4], r[7], r[8], N, F);
    const float *gu[2] = {r[5], r[6]};
    ad_matmul_backward_parts_into(r[1], r[2], gu, xn, W, N, C, F, 2);
    int h16 = ad_mlp_forward(f[0], f[9], f[7], f[8], xn, W, Wd, N, C, F);
    CHECK(h16 == (bf16 && F % 32 == 0));
    ad_mlp_backward_into(f[1], f[2], f[3], f[4], f[5], f[6], dy, xn, f[9], h16, f[7], f[8], W, Wd,
                         N, C, F);
    static const char *names[] = {"out", "dxn", "dW_gate", "dW_down", "dhid", "", "", "gate", "up"};
    for (int i = 0; i < 9; i++)
        CHECK_MSG(i == 5 || i == 6 || memcmp(r[i], f[i], sizes[i] * sizeof(float)) == 0,
                  "%s differs: N %zu C %zu F %zu bf16 %d threads %d", names[i], N, C, F, bf16,
                  threads);
    if (h16) { /* bf16 turned off between forward and backward: dW_down from the rounded hid */
        ad_kernels_set_bf16(0);
        memset(f[3], 0, C * F * sizeof(float));
        memset(r[3], 0, C * F * sizeof(float));
        ad_mlp_backward_into(f[1], f[2], f[3], f[4], f[5], f[6], dy, xn, f[9], 1, f[7], f[8], W, Wd,
                             N, C, F);
        const void *hv = f[9];
        const uint16_t *h = hv;
        for (size_t i = 0; i < N * F; i++) { /* the floats hid rounds to */
            uint32_t u = (uint32_t)h[i] << 16;
            memcpy(&r[9][i], &u, sizeof u);
        }
        ad_matmul_backward(NULL, r[3], dy, r[9], Wd, N, F, C);
        CHECK_MSG(memcmp(r[3], f[3], C * F * sizeof(float)) == 0, "dW_down from bf16, fp32");
    }
    omp_set_num_threads(saved);
    ad_kernels_set_bf16(prev);
    for (int i = 0; i < 10; i++)
        free(r[i]), free(f[i]);
    free(xn), free(W), free(Wd), free(dy), free(x0);
}

static void test_mlp(void) {
    static const size_t shapes[][3] = {{500, 96, 64}, {150, 64, 128}, {20, 32, 64}, {300, 64, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int bf16 = 0; bf16 <= have_bf16(); bf16++)
            for (int t = 1; t <= 2; t++)
                check_mlp(shapes[s][0], shapes[s][1], shapes[s][2], bf16, t);
}

/* bf16 operands given already rounded (ad_gemm_bf16_a16: A by rows and by
 * columns; ad_gemm_bf16_b16: B by rows), against the same product of their
 * floats (ad_gemm_bf16), on shapes that take every path: the bits must agree. */
static void test_a16(void) {
    if (!have_bf16()) return;
    static const size_t shapes[][3] = {{430, 70, 96}, {60, 96, 130}, {390, 40, 450}, {5, 17, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int cols = 0; cols < 2; cols++) {
            size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = randv(M * K, 0), *B = randv(K * N, 0);
            float *want = calloc(M * N, sizeof(float)), *got = calloc(M * N, sizeof(float));
            uint16_t *h = malloc(M * K * sizeof(uint16_t));
            size_t rs = cols ? 1 : K, cs = cols ? M : 1;
            bf16_values(h, A, M * K);
            CHECK(ad_gemm_bf16(M, N, K, A, rs, cs, B, N, 1, want, N, 0) == 0);
            CHECK(ad_gemm_bf16_a16(M, N, K, h, rs, cs, B, N, 1, got, N, 0) == 0);
            CHECK_MSG(memcmp(want, got, M * N * sizeof(float)) == 0, "M %zu N %zu K %zu cols %d", M,
                      N, K, cols);
            free(A), free(B), free(want), free(got), free(h);
        }
    static const size_t b_shapes[][3] = {{40, 600, 70}, {60, 96, 130}, {5, 17, 3}};
    for (size_t s = 0; s < sizeof b_shapes / sizeof b_shapes[0]; s++) {
        size_t M = b_shapes[s][0], N = b_shapes[s][1], K = b_shapes[s][2];
        float *A = randv(M * K, 0), *B = randv(K * N, 0);
        float *want = calloc(M * N, sizeof(float)), *got = calloc(M * N, sizeof(float));
        uint16_t *h = malloc(K * N * sizeof(uint16_t));
        bf16_values(h, B, K * N);
        CHECK(ad_gemm_bf16(M, N, K, A, K, 1, B, N, 1, want, N, 1) == 0);
        CHECK(ad_gemm_bf16_b16(M, N, K, A, K, 1, h, N, 1, got, N, 1) == 0);
        CHECK_MSG(memcmp(want, got, M * N * sizeof(float)) == 0, "B16: M %zu N %zu K %zu", M, N, K);
        free(A), free(B), free(want), free(got), free(h);
    }
    uint16_t one = 0;
    float x = 0;
    CHECK(ad_gemm_bf16_b16(2, 2, 2, &x, 2, 1, &one, 1, 2, &x, 2, 0) == -1); /* B by columns */
    CHECK(ad_gemm_bf16_a16(2, 2, 3, &one, 3, 1, &x, 2, 1, &x, 2, 0) == -1); /* odd rows */
}

/* SwiGLU with bf16 results (the MLP's hand-over to its products): the
 * roundings of the fp32 kernels' results, whole chunks and tails alike. */
static void test_swiglu_bf16(void) {
    if (!have_bf16()) return;
    const size_t n = 16 * 5 + 7;
    float *g = randv(n, 0), *u = randv(n, 0), *d = randv(n, 0), *f[3];
    uint16_t *want = malloc(3 * n * sizeof(uint16_t)), *got = malloc(3 * n * sizeof(uint16_t));
    for (int i = 0; i < 3; i++)
        f[i] = malloc(n * sizeof(float));
    ad_swiglu_forward(f[0], g, u, 1, n);
    ad_swiglu_backward(f[1], f[2], d, g, u, 1, n);
    for (int i = 0; i < 3; i++)
        bf16_values(want + i * n, f[i], n);
    memset(got, 0xAB, 3 * n * sizeof(uint16_t));
    ad_swiglu_forward_bf16(got, g, u, n);
    ad_swiglu_backward_bf16(got + n, got + 2 * n, d, g, u, n);
    CHECK(memcmp(want, got, 3 * n * sizeof(uint16_t)) == 0);
    for (int i = 0; i < 3; i++)
        free(f[i]);
    free(g), free(u), free(d), free(want), free(got);
}

/* Weights packed once in bf16 (ad_matmul_pack_bf16, decoding in bf16): the
 * bits of the per-call product with bf16 products on, overwriting or adding,
 * for all rows at once, for a few rows alone (a decoding step's rows run in
 * other tiles), on 1 and 2 threads, and on shapes that take every path (rows
 * enough for units of their own, ragged K and N). */
static void test_packed(void) {
    if (!have_bf16()) return;
    static const size_t shapes[][3] = {{430, 70, 96}, {64, 384, 1536}, {5, 17, 3}, {200, 100, 129}};
    int saved = omp_get_max_threads(), prev = ad_kernels_set_bf16(1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t N = shapes[s][0], O = shapes[s][1], I = shapes[s][2];
        float *in = randv(N * I, 0), *W = randv(O * I, 0), *out0 = randv(N * O, 0);
        float *want = malloc(N * O * sizeof(float)), *got = malloc(N * O * sizeof(float));
        ad_packed_matrix *pw = NULL;
        ad_error err;
        CHECK(ad_matmul_pack_bf16(&pw, W, I, O, &err) == AD_OK && ad_packed_matrix_is_bf16(pw));
        for (int acc = 0; acc < 2 && pw; acc++)
            for (int t = 1; t <= 2; t++) {
                omp_set_num_threads(t);
                memcpy(want, out0, N * O * sizeof(float));
                memcpy(got, out0, N * O * sizeof(float));
                ad_matmul_forward(want, in, W, N, I, O, acc);
                ad_matmul_forward_packed(got, in, pw, N, acc);
                CHECK_MSG(memcmp(want, got, N * O * sizeof(float)) == 0,
                          "N %zu O %zu I %zu acc %d threads %d", N, O, I, acc, t);
                size_t few = N < 3 ? N : 3;
                memcpy(got, out0, few * O * sizeof(float));
                ad_matmul_forward_packed(got, in, pw, few, acc);
                CHECK_MSG(memcmp(want, got, few * O * sizeof(float)) == 0,
                          "%zu rows alone: N %zu O %zu I %zu", few, N, O, I);
            }
        ad_packed_matrix_free(pw);
        free(in), free(W), free(out0), free(want), free(got);
    }
    omp_set_num_threads(saved);
    ad_kernels_set_bf16(prev);
}

/* Matrices packed as one and run as one product (ad_matmul_forward_packed_parts,
 * the decoder's q/k/v and gate/up): each part the bits of its own packed
 * product, on 1 and 2 threads; parts of 40 columns (a panel would straddle
 * two) run one by one, with the same bits. */
static void test_packed_parts(void) {
    if (!have_bf16()) return;
    static const size_t shapes[][4] = {{64, 384, 384, 3}, {300, 64, 96, 2}, {5, 40, 70, 3}};
    int saved = omp_get_max_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t N = shapes[s][0], O = shapes[s][1], I = shapes[s][2], P = shapes[s][3];
        float *in = randv(N * I, 0), *W = randv(P * O * I, 0);
        float *want = calloc(P * N * O, sizeof(float)), *got = calloc(P * N * O, sizeof(float));
        ad_packed_matrix *all = NULL, *one = NULL;
        ad_error err;
        CHECK(ad_matmul_pack_bf16(&all, W, I, P * O, &err) == AD_OK);
        for (size_t p = 0; p < P; p++) {
            CHECK(ad_matmul_pack_bf16(&one, W + p * O * I, I, O, &err) == AD_OK);
            ad_matmul_forward_packed(want + p * N * O, in, one, N, 0);
            ad_packed_matrix_free(one);
        }
        for (int t = 1; t <= 2; t++) {
            omp_set_num_threads(t);
            float *outs[3] = {got, got + N * O, got + 2 * N * O};
            memset(got, 0xAB, P * N * O * sizeof(float));
            ad_matmul_forward_packed_parts(outs, in, all, N, P);
            CHECK_MSG(memcmp(want, got, P * N * O * sizeof(float)) == 0,
                      "N %zu O %zu I %zu parts %zu threads %d", N, O, I, P, t);
        }
        ad_packed_matrix_free(all);
        free(in), free(W), free(want), free(got);
    }
    omp_set_num_threads(saved);
}

/* The MLP on packed weights (ad_mlp_forward_packed, bf16 decoding): the bits
 * of its steps one by one, with SwiGLU inside the gate/up product (rows in
 * units of their own at 300 rows, one block at 64) and without (weights
 * packed in fp32), on 1 and 2 threads. */
static void test_mlp_packed(void) {
    if (!have_bf16()) return;
    static const size_t shapes[][3] = {{64, 64, 96}, {300, 96, 128}, {5, 32, 64}};
    int saved = omp_get_max_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int bf = 0; bf < 2; bf++) {
            size_t N = shapes[s][0], C = shapes[s][1], F = shapes[s][2];
            float *xn = randv(N * C, 0), *Wgu = randv(2 * F * C, 0), *Wd = randv(C * F, 0);
            float *x0 = randv(N * C, 0), *want = malloc(N * C * sizeof(float));
            float *got = malloc(N * C * sizeof(float)), *buf = malloc(3 * N * F * sizeof(float));
            ad_packed_matrix *gu = NULL, *down = NULL;
            ad_error err;
            int (*pack)(ad_packed_matrix **, const float *, size_t, size_t, ad_error *) =
                bf ? ad_matmul_pack_bf16 : ad_matmul_pack;
            CHECK(pack(&gu, Wgu, C, 2 * F, &err) == AD_OK && pack(&down, Wd, F, C, &err) == AD_OK);
            float *const parts[2] = {buf, buf + N * F};
            memcpy(want, x0, N * C * sizeof(float));
            ad_matmul_forward_packed_parts(parts, xn, gu, N, 2);
            ad_swiglu_forward(buf + 2 * N * F, buf, buf + N * F, N, F);
            ad_matmul_forward_packed(want, buf + 2 * N * F, down, N, 1);
            for (int t = 1; t <= 2; t++) {
                omp_set_num_threads(t);
                memcpy(got, x0, N * C * sizeof(float));
                ad_mlp_forward_packed(got, buf + 2 * N * F, buf, buf + N * F, xn, gu, down, N);
                CHECK_MSG(memcmp(want, got, N * C * sizeof(float)) == 0,
                          "N %zu C %zu F %zu bf16 %d threads %d", N, C, F, bf, t);
            }
            ad_packed_matrix_free(gu), ad_packed_matrix_free(down);
            free(xn), free(Wgu), free(Wd), free(x0), free(want), free(got), free(buf);
        }
    omp_set_num_threads(saved);
}

int main(void) {
    ad_rng_seed(&g_rng, 20261207);
    RUN(test_layouts_and_shapes);
    RUN(test_exact_on_integers);
    RUN(test_threads_agree);
    RUN(test_parts);
    RUN(test_swiglu_fused);
    RUN(test_mlp);
    RUN(test_a16);
    RUN(test_swiglu_bf16);
    RUN(test_packed);
    RUN(test_packed_parts);
    RUN(test_mlp_packed);
    return test_summary();
}
