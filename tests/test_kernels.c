/* test_kernels.c: every compute kernel against a naive double-precision
 * reference: forward values directly, backward passes against central
 * differences of the double reference; the AVX-512 and portable paths against
 * each other; decoding attention against full attention; determinism across
 * thread counts. Each check runs on every path the CPU offers. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/kernels.h"
#include "model/kernels_internal.h"
#include "util/rng.h"

static ad_rng g_rng;
static const char *g_path = "";

static float *randv(size_t n, double scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(ad_rng_normal(&g_rng) * scale);
    return x;
}

static float *zeros(size_t n) {
    return calloc(n ? n : 1, sizeof(float));
}

static double *to_double(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* max |a - b| / (atol + rtol |b|) over n elements: <= 1 means close. */
static double worst(const float *a, const double *b, size_t n, double rtol, double atol) {
    double w = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (atol + rtol * fabs(b[i]));
        if (!(e <= w)) w = e; /* catches NaN */
    }
    return w;
}

#define CHECK_ALL_CLOSE(a, b, n, rtol, atol)                                                       \
    do {                                                                                           \
        double w_ = worst((a), (b), (n), (rtol), (atol));                                          \
        CHECK_MSG(w_ <= 1.0, "[%s] %s vs %s: worst error %.3g x tolerance", g_path, #a, #b, w_);   \
    } while (0)

/* Central-difference gradient of J(x) = sum(dout * f(x)) in double, checked
 * against `got` (a kernel's accumulated gradient; `base` is what it held
 * before) at up to max_checks evenly spaced entries. */
typedef void (*ref_fn)(double *out, const double *x, const void *ctx);

static void check_grad(const char *what, const float *got, const float *base, double *x, size_t nx,
                       const double *dout, size_t nout, ref_fn f, const void *ctx,
                       size_t max_checks, double rtol, double atol) {
    double *o = malloc(nout * sizeof(double)), w = 0.0;
    const double h = 1e-5;
    size_t step = nx > max_checks ? (nx + max_checks - 1) / max_checks : 1, bad = 0;
    for (size_t j = 0; j < nx; j += step) {
        double keep = x[j], jp = 0, jm = 0;
        x[j] = keep + h;
        f(o, x, ctx);
        for (size_t i = 0; i < nout; i++)
            jp += dout[i] * o[i];
        x[j] = keep - h;
        f(o, x, ctx);
        for (size_t i = 0; i < nout; i++)
            jm += dout[i] * o[i];
        x[j] = keep;
        double want = (jp - jm) / (2 * h) + (base ? base[j] : 0.0);
        double e = fabs(got[j] - want) / (atol + rtol * fabs(want));
        if (!(e <= w)) w = e, bad = j;
    }
    CHECK_MSG(w <= 1.0, "[%s] %s: worst error %.3g x tolerance at %zu", g_path, what, w, bad);
    free(o);
}

/* Runs a test body once per available path (portable, then AVX-512). */
static void on_each_path(void (*body)(void)) {
    int prev = ad_kernels_force_avx512(0);
    g_path = "portable";
    body();
    if (ad_kernels_force_avx512(1) >= 0 && ad_kernels_use_avx512()) {
        g_path = "avx512";
        body();
    }
    ad_kernels_force_avx512(prev);
}

/* ---- matmul ------------------------------------------------------------------------------ */

static void matmul_case(size_t N, size_t I, size_t O) {
    float *in = randv(N * I, 1), *W = randv(O * I, 1), *dout = randv(N * O, 1);
    float *out = randv(N * O, 1), *out0 = malloc(N * O * sizeof(float));
    memcpy(out0, out, N * O * sizeof(float));
    double *ref = malloc(N * O * sizeof(double)), *rdin = malloc(N * I * sizeof(double)),
           *rdw = malloc(O * I * sizeof(double));
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < O; o++) {
            double s = 0;
            for (size_t i = 0; i < I; i++)
                s += (double)in[n * I + i] * W[o * I + i];
            ref[n * O + o] = s;
        }
    double tol = 1e-5 * sqrt((double)I);
    ad_matmul_forward(out, in, W, N, I, O, 0);
    CHECK_ALL_CLOSE(out, ref, N * O, 1e-4, tol);
    /* accumulate = 1 adds onto what is there */
    memcpy(out, out0, N * O * sizeof(float));
    for (size_t i = 0; i < N * O; i++)
        ref[i] += out0[i];
    ad_matmul_forward(out, in, W, N, I, O, 1);
    CHECK_ALL_CLOSE(out, ref, N * O, 1e-4, tol);
    /* packed once, then the same bits as the per-call product, overwriting or adding */
    ad_packed_matrix *pw = NULL;
    ad_error err;
    float *outp = malloc(N * O * sizeof(float));
    CHECK(ad_matmul_pack(&pw, W, I, O, &err) == AD_OK);
    for (int acc = 0; acc < 2 && pw; acc++) {
        memcpy(outp, out0, N * O * sizeof(float));
        memcpy(out, out0, N * O * sizeof(float));
        ad_matmul_forward(out, in, W, N, I, O, acc);
        ad_matmul_forward_packed(outp, in, pw, N, acc);
        CHECK_MSG(memcmp(out, outp, N * O * sizeof(float)) == 0,
                  "[%s] packed product (accumulate %d) differs from the per-call one", g_path, acc);
        /* a few rows alone (as in decoding) give those rows' bits too: our own
         * product sums each element in one order whatever the rows, and 3 and 7
         * rows run the 4- and 8-row tiles where N rows ran the 12-row one;
         * OpenBLAS (the portable path) does not promise that */
        if (!ad_kernels_use_avx512()) continue;
        for (size_t want = 3; want <= 7; want += 4) {
            size_t few = want < N ? want : N;
            memcpy(outp, out0, few * O * sizeof(float));
            ad_matmul_forward_packed(outp, in, pw, few, acc);
            CHECK_MSG(memcmp(out, outp, few * O * sizeof(float)) == 0,
                      "[%s] %zu packed rows alone differ from the same rows in %zu", g_path, few,
                      N);
            if (few == N) break;
        }
    }
    ad_packed_matrix_free(pw);
    free(outp);

    float *din = randv(N * I, 1), *dW = randv(O * I, 1);
    for (size_t n = 0; n < N; n++)
        for (size_t i = 0; i < I; i++) {
            double s = din[n * I + i];
            for (size_t o = 0; o < O; o++)
                s += (double)dout[n * O + o] * W[o * I + i];
            rdin[n * I + i] = s;
        }
    for (size_t o = 0; o < O; o++)
        for (size_t i = 0; i < I; i++) {
            double s = dW[o * I + i];
            for (size_t n = 0; n < N; n++)
                s += (double)dout[n * O + o] * in[n * I + i];
            rdw[o * I + i] = s;
        }
    ad_matmul_backward(din, dW, dout, in, W, N, I, O);
    CHECK_ALL_CLOSE(din, rdin, N * I, 1e-4, 1e-5 * sqrt((double)O));
    CHECK_ALL_CLOSE(dW, rdw, O * I, 1e-4, 1e-5 * sqrt((double)N));
    /* the overwriting form ignores what din held and equals accumulating into zeros */
    float *d0 = zeros(N * I), *d1 = randv(N * I, 1);
    ad_matmul_backward(d0, NULL, dout, in, W, N, I, O);
    ad_matmul_backward_into(d1, NULL, dout, in, W, N, I, O);
    size_t same = 0;
    for (size_t i = 0; i < N * I; i++)
        same += d0[i] == d1[i];
    CHECK(same == N * I);
    free(in), free(W), free(dout), free(out), free(out0), free(ref), free(rdin), free(rdw);
    free(din), free(dW), free(d0), free(d1);
}

static void matmul_body(void) {
    matmul_case(3, 5, 4);                           /* tiny: OpenBLAS on every path */
    matmul_case(37, 29, 45);                        /* edges of every register tile */
    matmul_case(64, 400, 40);                       /* K over one KC slice */
    matmul_case(200, 33, 70);                       /* rows over one MC block */
    matmul_case(17, 8, 3100);                       /* wide: many column panels */
    if (!test_quick()) matmul_case(16, 2048, 2100); /* packed B over 16 MB: two column blocks */
    matmul_case(300, 20, 384);                      /* the LM-head shapes: small K */
    matmul_case(1100, 40, 70);                      /* weight gradient over k parts: 512, 512, 76 */
}

static void test_matmul(void) {
    on_each_path(matmul_body);
}

/* Products sharing an input (q/k/v, gate/up) through the *_parts calls: in
 * fp32 the bits of one ad_matmul_forward per part, and of
 * ad_matmul_backward_into then ad_matmul_backward. */
static void parts_body(void) {
    enum { N = 90, I = 48, O = 64, P = 3 };
    float *in = randv(N * I, 1), *W = randv(P * O * I, 1), *dy = randv(P * N * O, 1);
    float *out = zeros(P * N * O), *ref = zeros(P * N * O), *outs[P];
    float *dW = randv(P * O * I, 1), *dW_ref = malloc(P * O * I * sizeof(float));
    float *din = zeros(N * I), *din_ref = zeros(N * I);
    const float *dys[P];
    memcpy(dW_ref, dW, P * O * I * sizeof(float));
    for (size_t p = 0; p < P; p++) {
        outs[p] = out + p * N * O;
        dys[p] = dy + p * N * O;
        ad_matmul_forward(ref + p * N * O, in, W + p * O * I, N, I, O, 0);
        (p ? ad_matmul_backward : ad_matmul_backward_into)(din_ref, dW_ref + p * O * I, dys[p], in,
                                                           W + p * O * I, N, I, O);
    }
    ad_matmul_forward_parts(outs, in, W, N, I, O, P);
    ad_matmul_backward_parts_into(din, dW, dys, in, W, N, I, O, P);
    CHECK_MSG(memcmp(out, ref, sizeof(float) * P * N * O) == 0, "[%s] forward parts", g_path);
    CHECK_MSG(memcmp(din, din_ref, sizeof(float) * N * I) == 0, "[%s] input gradient", g_path);
    CHECK_MSG(memcmp(dW, dW_ref, sizeof(float) * P * O * I) == 0, "[%s] weight gradients", g_path);
    free(in), free(W), free(dy), free(out), free(ref), free(dW), free(dW_ref), free(din),
        free(din_ref);
}

static void test_matmul_parts(void) {
    on_each_path(parts_body);
}

/* ---- RMSNorm ----------------------------------------------------------------------------- */

typedef struct norm_ctx {
    size_t N, C;
    const double *w;
    double eps;
    int wrt_w; /* differentiate with respect to w instead of x */
    const double *x;
} norm_ctx;

static void ref_rmsnorm(double *out, const double *v, const void *vctx) {
    const norm_ctx *c = vctx;
    const double *x = c->wrt_w ? c->x : v, *w = c->wrt_w ? v : c->w;
    for (size_t n = 0; n < c->N; n++) {
        double ss = 0;
        for (size_t i = 0; i < c->C; i++)
            ss += x[n * c->C + i] * x[n * c->C + i];
        double r = 1.0 / sqrt(ss / c->C + c->eps);
        for (size_t i = 0; i < c->C; i++)
            out[n * c->C + i] = x[n * c->C + i] * r * w[i];
    }
}

static void rmsnorm_case(size_t N, size_t C) {
    float *x = randv(N * C, 1.5), *w = randv(C, 1), *dout = randv(N * C, 1);
    float *out = zeros(N * C), *rstd = zeros(N), *din = randv(N * C, 1), *dw = randv(C, 1);
    float *din0 = malloc(N * C * sizeof(float)), *dw0 = malloc(C * sizeof(float));
    memcpy(din0, din, N * C * sizeof(float));
    memcpy(dw0, dw, C * sizeof(float));
    double *xd = to_double(x, N * C), *wd = to_double(w, C), *dd = to_double(dout, N * C);
    double *ref = malloc(N * C * sizeof(double));
    norm_ctx ctx = {N, C, wd, 1e-6, 0, xd};
    ref_rmsnorm(ref, xd, &ctx);
    ad_rmsnorm_forward(out, rstd, x, w, N, C, 1e-6f);
    CHECK_ALL_CLOSE(out, ref, N * C, 1e-5, 1e-6);
    ad_rmsnorm_backward(din, dw, dout, x, w, rstd, N, C);
    check_grad("rmsnorm dx", din, din0, xd, N * C, dd, N * C, ref_rmsnorm, &ctx, 400, 1e-4, 1e-5);
    ctx.wrt_w = 1;
    check_grad("rmsnorm dw", dw, dw0, wd, C, dd, N * C, ref_rmsnorm, &ctx, 400, 1e-4, 1e-5);
    free(x), free(w), free(dout), free(out), free(rstd), free(din), free(dw), free(din0);
    free(dw0), free(xd), free(wd), free(dd), free(ref);
}

static void rmsnorm_body(void) {
    rmsnorm_case(3, 16);
    rmsnorm_case(5, 37);
    rmsnorm_case(70, 24); /* more rows than one reduction block */
}

static void test_rmsnorm(void) {
    on_each_path(rmsnorm_body);
}

/* ---- SwiGLU ------------------------------------------------------------------------------ */

typedef struct glu_ctx {
    size_t n;
    const double *other; /* up when differentiating gate, gate when differentiating up */
    int wrt_up;
} glu_ctx;

static void ref_swiglu(double *out, const double *v, const void *vctx) {
    const glu_ctx *c = vctx;
    for (size_t i = 0; i < c->n; i++) {
        double g = c->wrt_up ? c->other[i] : v[i], u = c->wrt_up ? v[i] : c->other[i];
        out[i] = g / (1.0 + exp(-g)) * u;
    }
}

static void swiglu_body(void) {
    size_t N = 3, F = 45, n = N * F; /* not a multiple of 16 */
    float *g = randv(n, 3), *u = randv(n, 1), *dh = randv(n, 1), *h = zeros(n);
    float *dg = randv(n, 1), *du = randv(n, 1);
    g[0] = -95.0f, g[1] = 95.0f, g[2] = 0.0f; /* saturated and zero inputs */
    double *gd = to_double(g, n), *ud = to_double(u, n), *dd = to_double(dh, n);
    double *ref = malloc(n * sizeof(double));
    glu_ctx ctx = {n, ud, 0}, ctx2 = {n, gd, 1};
    ref_swiglu(ref, gd, &ctx);
    ad_swiglu_forward(h, g, u, N, F);
    CHECK_ALL_CLOSE(h, ref, n, 1e-5, 1e-6);
    ad_swiglu_backward(dg, du, dh, g, u, N, F); /* overwrites */
    check_grad("swiglu dgate", dg, NULL, gd, n, dd, n, ref_swiglu, &ctx, n, 1e-4, 1e-6);
    check_grad("swiglu dup", du, NULL, ud, n, dd, n, ref_swiglu, &ctx2, n, 1e-4, 1e-6);
    free(g), free(u), free(dh), free(h), free(dg), free(du), free(gd), free(ud), free(dd);
    free(ref);
}

static void test_swiglu(void) {
    on_each_path(swiglu_body);
}

/* ---- RoPE -------------------------------------------------------------------------------- */

static void rope_body(void) {
    size_t B = 2, T = 9, H = 3, D = 10, C = H * D, n = B * T * C;
    float theta = 500.0f;
    float *x = randv(n, 1), *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    ad_rope_forward(y, NULL, B, T, H, D, theta);
    /* direct formula: pairs (i, i + D/2) rotated by pos * theta^(-2i/D) */
    double *ref = malloc(n * sizeof(double));
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < H; h++)
                for (size_t i = 0; i < D / 2; i++) {
                    size_t o = (b * T + t) * C + h * D;
                    double ang = (double)t * pow(theta, -2.0 * (double)i / (double)D);
                    double a = x[o + i], c = x[o + i + D / 2];
                    ref[o + i] = a * cos(ang) - c * sin(ang);
                    ref[o + i + D / 2] = c * cos(ang) + a * sin(ang);
                }
    CHECK_ALL_CLOSE(y, ref, n, 1e-5, 1e-6);
    /* one row at a time (decoding) gives the same values */
    float *row = malloc(C * sizeof(float));
    memcpy(row, x + (1 * T + 7) * C, C * sizeof(float));
    ad_rope_one(row, H, D, 7, theta);
    CHECK_ALL_CLOSE(row, ref + (1 * T + 7) * C, C, 1e-5, 1e-6);
    /* the backward is the transpose of the rotation: <R x, g> == <x, R^T g> */
    float *gr = randv(n, 1), *gb = malloc(n * sizeof(float));
    memcpy(gb, gr, n * sizeof(float));
    ad_rope_backward(gb, NULL, B, T, H, D, theta);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < n; i++)
        lhs += (double)y[i] * gr[i], rhs += (double)x[i] * gb[i];
    CHECK_CLOSE(lhs, rhs, 1e-5, 1e-5);
    free(x), free(y), free(ref), free(row), free(gr), free(gb);
}

static void test_rope(void) {
    on_each_path(rope_body);
}

/* ---- attention --------------------------------------------------------------------------- */

typedef struct att_ctx {
    size_t B, T, H, D;
    double *q, *k, *v; /* the one being differentiated is replaced by the argument */
    int which;         /* 0 q, 1 k, 2 v */
} att_ctx;

static void ref_attention(double *out, const double *arg, const void *vctx) {
    const att_ctx *c = vctx;
    size_t C = c->H * c->D;
    const double *q = c->which == 0 ? arg : c->q, *k = c->which == 1 ? arg : c->k,
                 *v = c->which == 2 ? arg : c->v;
    double *s = malloc(c->T * sizeof(double));
    for (size_t b = 0; b < c->B; b++)
        for (size_t h = 0; h < c->H; h++)
            for (size_t t = 0; t < c->T; t++) {
                const double *qt = q + (b * c->T + t) * C + h * c->D;
                double mx = -1e300, sum = 0;
                for (size_t j = 0; j <= t; j++) {
                    const double *kj = k + (b * c->T + j) * C + h * c->D;
                    double d = 0;
                    for (size_t i = 0; i < c->D; i++)
                        d += qt[i] * kj[i];
                    s[j] = d / sqrt((double)c->D);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (size_t j = 0; j <= t; j++)
                    sum += (s[j] = exp(s[j] - mx));
                double *o = out + (b * c->T + t) * C + h * c->D;
                for (size_t i = 0; i < c->D; i++) {
                    double a = 0;
                    for (size_t j = 0; j <= t; j++)
                        a += s[j] / sum * v[(b * c->T + j) * C + h * c->D + i];
                    o[i] = a;
                }
            }
    free(s);
}

/* Without stored weights (probs NULL: each head's weights in a per-thread
 * buffer, recomputed by the backward) the output and the gradients are the
 * stored path's bits. g0: the gradients before the stored backward; g: after. */
static void attention_recompute_case(const float *out, float *const *g0, const float *const *g,
                                     const float *q, const float *k, const float *v,
                                     const float *dout, size_t B, size_t T, size_t H, size_t D) {
    size_t C = H * D, n = B * T * C, nt = (size_t)omp_get_max_threads();
    ad_attention_work w = {zeros(nt * ad_attention_work_floats(T, C)), nt};
    float *out2 = zeros(n), *h[3];
    ad_attention_forward(out2, NULL, q, k, v, NULL, B, T, H, D, &w);
    CHECK_MSG(memcmp(out2, out, n * sizeof(float)) == 0,
              "[%s] attention without stored weights: the same output bits", g_path);
    for (int i = 0; i < 3; i++) {
        h[i] = malloc(n * sizeof(float));
        memcpy(h[i], g0[i], n * sizeof(float));
    }
    ad_attention_backward(h[0], h[1], h[2], dout, NULL, q, k, v, NULL, B, T, H, D, &w);
    int same = 1;
    for (int i = 0; i < 3; i++) {
        same &= memcmp(h[i], g[i], n * sizeof(float)) == 0;
        free(h[i]);
    }
    CHECK_MSG(same, "[%s] recomputed weights: the stored path's gradient bits", g_path);
    free(out2);
    free(w.buf);
}

static void attention_case(size_t B, size_t T, size_t H, size_t D) {
    size_t C = H * D, n = B * T * C;
    float *q = randv(n, 1), *k = randv(n, 1), *v = randv(n, 1), *dout = randv(n, 1);
    float *out = zeros(n), *probs = randv(B * H * T * T, 1);
    float *g[3] = {randv(n, 1), randv(n, 1), randv(n, 1)}, *g0[3];
    att_ctx ctx = {B, T, H, D, to_double(q, n), to_double(k, n), to_double(v, n), 0};
    double *ref = malloc(n * sizeof(double)), *dd = to_double(dout, n);
    ref_attention(ref, ctx.q, &ctx);
    ad_attention_forward(out, probs, q, k, v, NULL, B, T, H, D, NULL);
    CHECK_ALL_CLOSE(out, ref, n, 1e-4, 1e-5);
    int causal_ok = 1;
    for (size_t bh = 0; bh < B * H; bh++)
        for (size_t t = 0; t < T; t++) {
            double s = 0;
            for (size_t j = 0; j < T; j++) {
                float p = probs[(bh * T + t) * T + j];
                if (j > t && p != 0.0f) causal_ok = 0;
                s += p;
            }
            if (fabs(s - 1.0) > 1e-5) causal_ok = 0;
        }
    CHECK_MSG(causal_ok, "[%s] probs rows sum to 1 and are 0 beyond the diagonal", g_path);
    for (int i = 0; i < 3; i++) {
        g0[i] = malloc(n * sizeof(float));
        memcpy(g0[i], g[i], n * sizeof(float));
    }
    ad_attention_backward(g[0], g[1], g[2], dout, probs, q, k, v, NULL, B, T, H, D, NULL);
    attention_recompute_case(out, g0, (const float *const *)g, q, k, v, dout, B, T, H, D);
    double *args[3] = {ctx.q, ctx.k, ctx.v};
    const char *names[3] = {"attention dq", "attention dk", "attention dv"};
    for (int w = 0; w < 3; w++) {
        ctx.which = w; /* the backward accumulates onto g0 */
        check_grad(names[w], g[w], g0[w], args[w], n, dd, n, ref_attention, &ctx, 150, 1e-3, 1e-5);
    }
    /* decoding the last position of each row against a cache == full attention */
    size_t len[2] = {T, T - 1}, nb = B < 2 ? B : 2;
    float *qd = malloc(nb * C * sizeof(float)), *od = zeros(nb * C);
    for (size_t i = 0; i < nb; i++)
        memcpy(qd + i * C, q + (i * T + len[i] - 1) * C, C * sizeof(float));
    ad_attention_decode(od, qd, k, v, len, nb, T * C, H, D);
    for (size_t i = 0; i < nb; i++)
        CHECK_ALL_CLOSE(od + i * C, ref + (i * T + len[i] - 1) * C, C, 1e-4, 1e-5);
    /* every position of every row as its own query row naming its cache row
     * (a prefill): full attention's rows, and decoding's bits */
    size_t *slot = malloc(B * T * sizeof(size_t)), *lens = malloc(B * T * sizeof(size_t));
    float *os = zeros(n);
    for (size_t r = 0; r < B * T; r++)
        slot[r] = r / T, lens[r] = r % T + 1;
    ad_attention_decode_slots(os, q, k, v, slot, lens, B * T, T * C, H, D);
    CHECK_ALL_CLOSE(os, ref, n, 1e-4, 1e-5);
    for (size_t i = 0; i < nb; i++)
        CHECK(memcmp(os + (i * T + len[i] - 1) * C, od + i * C, C * sizeof(float)) == 0);
    free(slot), free(lens), free(os);
    free(q), free(k), free(v), free(dout), free(out), free(probs), free(ref), free(dd);
    for (int i = 0; i < 3; i++)
        free(g[i]), free(g0[i]);
    free(ctx.q), free(ctx.k), free(ctx.v), free(qd), free(od);
}

static void attention_body(void) {
    attention_case(2, 5, 2, 4);
    attention_case(2, 19, 3, 8);  /* two key blocks, narrow heads */
    attention_case(1, 40, 2, 20); /* three key blocks, head size not a multiple of 16 */
    attention_case(1, 21, 2, 32); /* head size of two full vector groups */
    attention_case(1, 17, 1, 16);
    if (!test_quick()) attention_case(2, 70, 1, 72); /* five blocks, two column groups */
}

static void test_attention(void) {
    on_each_path(attention_body);
}

/* A row packed with sequences of 21, 1, 9, 1 and 3 tokens (the 1s as padding
 * is laid out) computes, bit for bit, what each sequence alone in a row of
 * its own computes: output and gradients, with weights stored and recomputed. */
static void packed_attention_body(void) {
    enum { T = 35, H = 2, D = 24, C = H * D, NS = 5 };
    const size_t len[NS] = {21, 1, 9, 1, 3};
    size_t n = T * C, nt = (size_t)omp_get_max_threads();
    int32_t seg[T];
    float *q = randv(n, 1), *k = randv(n, 1), *v = randv(n, 1), *dout = randv(n, 1);
    float *probs = zeros(H * T * T), *out = zeros(n), *alone = zeros(n);
    float *g[3] = {zeros(n), zeros(n), zeros(n)}, *ga[3] = {zeros(n), zeros(n), zeros(n)};
    ad_attention_work w = {zeros(nt * ad_attention_work_floats(T, C)), nt};
    for (size_t s = 0, a = 0; s < NS; a += len[s++])
        for (size_t t = a; t < a + len[s]; t++)
            seg[t] = (int32_t)a;
    for (int keep = 0; keep < 2; keep++) {
        for (int i = 0; i < 3; i++)
            memset(g[i], 0, n * sizeof(float)), memset(ga[i], 0, n * sizeof(float));
        ad_attention_forward(out, keep ? probs : NULL, q, k, v, seg, 1, T, H, D, &w);
        ad_attention_backward(g[0], g[1], g[2], dout, keep ? probs : NULL, q, k, v, seg, 1, T, H, D,
                              &w);
        for (size_t s = 0, a = 0; s < NS; a += len[s++]) {
            size_t o = a * C;
            ad_attention_forward(alone + o, NULL, q + o, k + o, v + o, NULL, 1, len[s], H, D, &w);
            ad_attention_backward(ga[0] + o, ga[1] + o, ga[2] + o, dout + o, NULL, q + o, k + o,
                                  v + o, NULL, 1, len[s], H, D, &w);
        }
        CHECK_MSG(memcmp(out, alone, n * sizeof(float)) == 0, "[%s] packed output, keep %d", g_path,
                  keep);
        for (int i = 0; i < 3; i++)
            CHECK_MSG(memcmp(g[i], ga[i], n * sizeof(float)) == 0,
                      "[%s] packed gradient %d, keep %d", g_path, i, keep);
        /* a token alone attends to itself: out = v, dv = dout, dq = dk = 0 */
        for (size_t t = 21; t < T; t += 10) /* the sequences of one token */
            for (size_t c = 0; c < C; c++)
                CHECK(out[t * C + c] == v[t * C + c] && g[2][t * C + c] == dout[t * C + c] &&
                      g[0][t * C + c] == 0.0f && g[1][t * C + c] == 0.0f);
    }
    free(q), free(k), free(v), free(dout), free(probs), free(out), free(alone), free(w.buf);
    for (int i = 0; i < 3; i++)
        free(g[i]), free(ga[i]);
}

static void test_packed_attention(void) {
    on_each_path(packed_attention_body);
}

/* The all-heads decoding body gives, bit for bit, what the head-by-head body
 * gives on each head: head sizes that are and are not multiples of 16 (groups
 * of columns straddling two heads), rows wider than one pass (C > 128),
 * several 64-key chunks whose max grows (rescaling), and a single key. */
static void test_decode_rows_equal_heads(void) {
    if (!ad_kernels_use_avx512()) return; /* only the portable body on this CPU */
    const size_t shapes[][3] = {{4, 32, 30},  {4, 24, 70}, {6, 64, 130}, {2, 20, 5},
                                {16, 16, 64}, {3, 48, 1},  {5, 40, 200}, {1, 16, 17}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        size_t H = shapes[c][0], D = shapes[c][1], n = shapes[c][2], C = H * D;
        float *q = randv(C, 3), *k = randv(n * C, 1), *v = randv(n * C, 1);
        for (size_t s = 0; s < n; s++) /* later keys score higher: the max grows by chunk */
            for (size_t i = 0; i < C; i++)
                k[s * C + i] += 0.02f * (float)s * q[i];
        float *row = zeros(C), *heads = zeros(C);
        ad_attention_row_decode_avx512(row, q, k, v, n, H, D, C);
        for (size_t h = 0; h < H; h++)
            ad_attention_head_decode_avx512(heads + h * D, q + h * D, k + h * D, v + h * D, n, D,
                                            C);
        CHECK_MSG(memcmp(row, heads, C * sizeof(float)) == 0,
                  "H=%zu D=%zu n=%zu: all-heads decode differs from head by head", H, D, n);
        free(q), free(k), free(v), free(row), free(heads);
    }
}

/* Keys and values cached in bf16: ad_attention_decode_slots_bf16 gives the
 * bits ad_attention_decode_slots gives on the floats they widen to, for rows
 * of shared and separate cache rows, on the all-heads body (H <= 16, D >= 16)
 * and on other shapes (17 heads, heads of 8), on both kernel paths; and
 * ad_bf16_from_floats rounds to nearest even (ties to even, carries into the
 * exponent, signs kept). */
static void decode_bf16_body(void) {
    const size_t shapes[][3] = {{6, 64, 70}, {4, 20, 9}, {17, 16, 5}, {3, 8, 33}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        size_t H = shapes[c][0], D = shapes[c][1], T = shapes[c][2], C = H * D, rows = 3;
        float *q = randv(rows * C, 2), *k = randv(2 * T * C, 1), *v = randv(2 * T * C, 1);
        uint16_t *k16 = malloc(2 * T * C * sizeof(uint16_t)), *v16 = malloc(2 * T * C * 2);
        ad_bf16_from_floats(k16, k, 2 * T * C);
        ad_bf16_from_floats(v16, v, 2 * T * C);
        for (size_t i = 0; i < 2 * T * C; i++) { /* k, v now hold the widened values */
            uint32_t uk = (uint32_t)k16[i] << 16, uv = (uint32_t)v16[i] << 16;
            memcpy(&k[i], &uk, 4), memcpy(&v[i], &uv, 4);
        }
        size_t slot[3] = {1, 0, 1}, len[3] = {T, T / 2 + 1, 1};
        float *want = zeros(rows * C), *got = zeros(rows * C);
        ad_attention_decode_slots(want, q, k, v, slot, len, rows, T * C, H, D);
        ad_attention_decode_slots_bf16(got, q, k16, v16, slot, len, rows, T * C, H, D);
        CHECK_MSG(memcmp(want, got, rows * C * sizeof(float)) == 0, "[%s] H=%zu D=%zu", g_path, H,
                  D);
        free(q), free(k), free(v), free(k16), free(v16), free(want), free(got);
    }
    const float x[] = {1.0f, -2.5f, 1.00390625f, 1.01171875f, 3.40282347e38f, -0.0f, 1e-3f};
    const uint16_t want[] = {0x3f80, 0xc020, 0x3f80, 0x3f82, 0x7f80, 0x8000, 0x3a83};
    uint16_t got[7];
    ad_bf16_from_floats(got, x, 7);
    CHECK(memcmp(got, want, sizeof want) == 0);
}

static void test_decode_bf16(void) {
    on_each_path(decode_bf16_body);
}

/* ---- cross-entropy ----------------------------------------------------------------------- */

static void xent_body(void) {
    size_t N = 6, V = 37;
    float *x = randv(N * V, 3), *lp = randv(N, 1), *d = randv(N * V, 1), w[6];
    int32_t tg[6] = {0, 36, -1, 5, 17, 3};
    x[5 * V + 3] = 80.0f; /* a dominant logit */
    for (size_t n = 0; n < N; n++)
        w[n] = 0.5f + (float)n;
    w[4] = 0.0f;
    ad_xent_forward(lp, x, tg, N, V);
    ad_xent_backward(d, x, tg, w, N, V);
    double rlp[6], *rd = malloc(N * V * sizeof(double));
    for (size_t n = 0; n < N; n++) {
        double mx = -1e300, s = 0;
        for (size_t i = 0; i < V; i++)
            mx = x[n * V + i] > mx ? x[n * V + i] : mx;
        for (size_t i = 0; i < V; i++)
            s += exp(x[n * V + i] - mx);
        double lse = mx + log(s);
        rlp[n] = tg[n] < 0 ? 0.0 : x[n * V + tg[n]] - lse;
        for (size_t i = 0; i < V; i++)
            rd[n * V + i] =
                tg[n] < 0 ? 0.0 : w[n] * (exp(x[n * V + i] - lse) - (i == (size_t)tg[n]));
    }
    CHECK_ALL_CLOSE(lp, rlp, N, 1e-5, 1e-5);
    CHECK_ALL_CLOSE(d, rd, N * V, 1e-4, 1e-6);
    free(x), free(lp), free(d), free(rd);
}

static void test_xent(void) {
    on_each_path(xent_body);
}

/* ---- optimizer pieces -------------------------------------------------------------------- */

static double g_ss[2];
static float *g_adam_out[2];
static int g_run;

static void sums_body(void) {
    size_t n = 10007; /* several blocks and a ragged tail */
    float *x = randv(n, 2);
    double ref = 0;
    for (size_t i = 0; i < n; i++)
        ref += (double)x[i] * x[i];
    double s = ad_sum_squares(x, n);
    CHECK_CLOSE(s, ref, 1e-12, 0);
    g_ss[g_run] = s;
    ad_scale(x, n, 0.5f);
    CHECK_CLOSE(ad_sum_squares(x, n), ref / 4, 1e-12, 0);
    free(x);

    /* AdamW: three steps against a double reference in PyTorch's formulation */
    size_t m = 37;
    float *p = randv(m, 1), *mo = zeros(m), *v = zeros(m), *gr = randv(m, 1);
    double *pd = to_double(p, m), *md = calloc(m, sizeof(double)), *vd = calloc(m, sizeof(double));
    const double lr = 1e-2, b1 = 0.9, b2 = 0.98, eps = 1e-8, wd = 0.1;
    for (uint64_t t = 1; t <= 3; t++) {
        ad_adamw_update(p, gr, mo, v, m, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, t);
        for (size_t i = 0; i < m; i++) {
            double gi = gr[i];
            md[i] = (float)b1 * md[i] + (1 - (float)b1) * gi;
            vd[i] = (float)b2 * vd[i] + (1 - (float)b2) * gi * gi;
            double mh = md[i] / (1 - pow((float)b1, (double)t));
            double vh = vd[i] / (1 - pow((float)b2, (double)t));
            pd[i] = pd[i] * (1 - lr * wd) - lr * mh / (sqrt(vh) + eps);
        }
    }
    CHECK_ALL_CLOSE(p, pd, m, 1e-5, 1e-7);
    CHECK_ALL_CLOSE(mo, md, m, 1e-5, 1e-8);
    CHECK_ALL_CLOSE(v, vd, m, 1e-5, 1e-9);
    /* one pass over segments == one call per segment, bit for bit */
    float *p2 = malloc(m * sizeof(float)), *m2 = zeros(m), *v2 = zeros(m);
    float *p3 = malloc(m * sizeof(float)), *m3 = zeros(m), *v3 = zeros(m);
    memcpy(p2, p, m * sizeof(float));
    memcpy(p3, p, m * sizeof(float));
    size_t off[3] = {0, 10, 11}, len[3] = {10, 1, 26};
    float wds[3] = {0.1f, 0.0f, 0.3f};
    ad_adamw_update_segments(p2, gr, m2, v2, off, len, wds, 3, 0.01f, 0.9f, 0.99f, 1e-8f, 4);
    for (int i = 0; i < 3; i++)
        ad_adamw_update(p3 + off[i], gr + off[i], m3 + off[i], v3 + off[i], len[i], 0.01f, 0.9f,
                        0.99f, 1e-8f, wds[i], 4);
    CHECK(memcmp(p2, p3, m * sizeof(float)) == 0 && memcmp(v2, v3, m * sizeof(float)) == 0);
    CHECK(memcmp(p2, p, m * sizeof(float)) != 0);
    free(p2), free(m2), free(v2), free(p3), free(m3), free(v3);
    g_adam_out[g_run++] = p;
    free(mo), free(v), free(gr), free(pd), free(md), free(vd);
}

static void test_sums_and_adamw(void) {
    g_run = 0;
    ad_rng keep = g_rng;
    int prev = ad_kernels_force_avx512(0);
    g_path = "portable";
    sums_body();
    if (ad_kernels_force_avx512(1) >= 0 && ad_kernels_use_avx512()) {
        g_rng = keep; /* same inputs on both paths */
        g_path = "avx512";
        sums_body();
        /* these two kernels promise identical bits on both paths */
        CHECK(g_ss[0] == g_ss[1]);
        CHECK(memcmp(g_adam_out[0], g_adam_out[1], 37 * sizeof(float)) == 0);
    }
    ad_kernels_force_avx512(prev);
    ad_kernels_force_avx512(-1);
    for (int i = 0; i < g_run; i++)
        free(g_adam_out[i]);
}

/* ---- rows apart ---------------------------------------------------------------------------- */

typedef struct rows_seen {
    int calls;
    int seen[64];
    size_t first_r0, first_r1;
} rows_seen;

static void mark_rows(void *ctx, size_t r0, size_t r1) {
    rows_seen *s = ctx;
    if (__atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED) == 0) s->first_r0 = r0, s->first_r1 = r1;
    for (size_t i = r0; i < r1; i++)
        __atomic_fetch_add(&s->seen[i], 1, __ATOMIC_RELAXED);
}

/* ad_kernels_for_rows visits every row once, in one range per thread (never
 * more ranges than rows) when the weights are small or in bf16 and the CPU
 * runs our own products, else in one call over all rows. */
static void test_for_rows(void) {
    const size_t ns[] = {0, 1, 2, 5, 64};
    int nt = ad_kernels_get_threads();
    for (int t = 1; t <= 3; t++) {
        ad_kernels_set_threads(t);
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
            for (int big = 0; big < 2; big++)
                for (int bf16 = 0; bf16 < 2; bf16++) {
                    size_t n = ns[k];
                    rows_seen s = {0};
                    ad_kernels_for_rows(n, big ? (size_t)1 << 30 : 1000, bf16, mark_rows, &s);
                    for (size_t i = 0; i < n; i++)
                        CHECK_MSG(s.seen[i] == 1, "row %zu of %zu seen %d times", i, n, s.seen[i]);
                    size_t want = n == 0                                       ? 0
                                  : (big && !bf16) || !ad_kernels_use_avx512() ? 1
                                  : (size_t)t < n                              ? (size_t)t
                                                                               : n;
                    CHECK_MSG((size_t)s.calls == want,
                              "%zu rows, %d threads, bf16 %d: %d calls, want %zu", n, t, bf16,
                              s.calls, want);
                    if (want == 1) CHECK(s.first_r0 == 0 && s.first_r1 == n);
                }
    }
    ad_kernels_set_threads(nt);
}

/* ---- paths agree, threads do not matter -------------------------------------------------- */

/* The AVX-512 products of shape (N, I, O) give the same bits on 1, 2 and 3
 * threads: forward, packed forward and both gradients. The shapes cover the
 * three ways a product is shared out (whole row units, column panels, small
 * row units for few rows and columns). */
static void products_agree_across_threads(size_t N, size_t I, size_t O) {
    float *in = randv(N * I, 1), *W = randv(O * I, 1), *dout = randv(N * O, 1);
    float *out[3], *pk[3], *din[3], *dw[3];
    ad_packed_matrix *pw = NULL;
    ad_error err = {0};
    CHECK(ad_matmul_pack(&pw, W, I, O, &err) == AD_OK);
    int nt = ad_kernels_get_threads();
    for (int t = 0; t < 3; t++) {
        out[t] = zeros(N * O), pk[t] = zeros(N * O), din[t] = zeros(N * I), dw[t] = zeros(O * I);
        ad_kernels_set_threads(t + 1);
        ad_matmul_forward(out[t], in, W, N, I, O, 0);
        if (pw) ad_matmul_forward_packed(pk[t], in, pw, N, 0);
        ad_matmul_backward(din[t], dw[t], dout, in, W, N, I, O);
    }
    ad_kernels_set_threads(nt);
    for (int t = 1; t < 3; t++) {
        CHECK(memcmp(out[0], out[t], N * O * sizeof(float)) == 0);
        CHECK(memcmp(out[0], pk[t], N * O * sizeof(float)) == 0);
        CHECK(memcmp(din[0], din[t], N * I * sizeof(float)) == 0);
        CHECK(memcmp(dw[0], dw[t], O * I * sizeof(float)) == 0);
    }
    for (int t = 0; t < 3; t++)
        free(out[t]), free(pk[t]), free(din[t]), free(dw[t]);
    ad_packed_matrix_free(pw);
    free(in), free(W), free(dout);
}

static void test_paths_and_threads_agree(void) {
    if (!ad_kernels_use_avx512()) return; /* nothing to compare on this CPU */
    size_t N = 96, I = 64, O = 80;
    float *in = randv(N * I, 1), *W = randv(O * I, 1), *a = zeros(N * O), *b = zeros(N * O);
    double *bd = malloc(N * O * sizeof(double));
    ad_kernels_force_avx512(0);
    ad_matmul_forward(a, in, W, N, I, O, 0);
    ad_kernels_force_avx512(1);
    ad_matmul_forward(b, in, W, N, I, O, 0);
    for (size_t i = 0; i < N * O; i++)
        bd[i] = b[i];
    g_path = "openblas vs avx512";
    CHECK_ALL_CLOSE(a, bd, N * O, 1e-5, 1e-5);
    /* the AVX-512 product and the norm gradient do not depend on the thread count */
    int nt = ad_kernels_get_threads();
    float *dw1 = zeros(O * I), *dw2 = zeros(O * I), *dout = randv(N * O, 1);
    ad_kernels_set_threads(1);
    ad_matmul_backward(NULL, dw1, dout, in, W, N, I, O);
    ad_matmul_forward(a, in, W, N, I, O, 0);
    ad_kernels_set_threads(3);
    ad_matmul_backward(NULL, dw2, dout, in, W, N, I, O);
    ad_matmul_forward(b, in, W, N, I, O, 0);
    CHECK(memcmp(dw1, dw2, O * I * sizeof(float)) == 0);
    CHECK(memcmp(a, b, N * O * sizeof(float)) == 0);
    products_agree_across_threads(64, 384, 384);   /* decoding: column panels */
    products_agree_across_threads(200, 128, 64);   /* few columns: small row units */
    products_agree_across_threads(150, 40, 200);   /* between: column panels */
    products_agree_across_threads(500, 130, 70);   /* many rows: whole row units */
    products_agree_across_threads(13, 1536, 384);  /* one row tile, long k */
    products_agree_across_threads(2100, 128, 96);  /* weight gradient in k parts */
    products_agree_across_threads(1216, 128, 512); /* row units of 48 on 2 threads */
    products_agree_across_threads(4352, 512, 128); /* 9 k parts: column slices too */
    float *x = randv(N * I, 1), *w = randv(I, 1), *r = zeros(N), *y = zeros(N * I);
    float *d1 = zeros(N * I), *d2 = zeros(N * I), *gw1 = zeros(I), *gw2 = zeros(I);
    ad_rmsnorm_forward(y, r, x, w, N, I, 1e-6f);
    ad_kernels_set_threads(1);
    ad_rmsnorm_backward(d1, gw1, y, x, w, r, N, I);
    ad_kernels_set_threads(3);
    ad_rmsnorm_backward(d2, gw2, y, x, w, r, N, I);
    CHECK(memcmp(gw1, gw2, I * sizeof(float)) == 0);
    CHECK(memcmp(d1, d2, N * I * sizeof(float)) == 0);
    ad_kernels_set_threads(nt);
    ad_kernels_force_avx512(-1);
    free(in), free(W), free(a), free(b), free(bd), free(dw1), free(dw2), free(dout);
    free(x), free(w), free(r), free(y), free(d1), free(d2), free(gw1), free(gw2);
}

int main(void) {
    ad_rng_seed(&g_rng, 12345);
    printf("kernels: %s path, %d threads\n", ad_kernels_isa(), ad_kernels_get_threads());
    RUN(test_matmul);
    RUN(test_matmul_parts);
    RUN(test_for_rows);
    RUN(test_rmsnorm);
    RUN(test_swiglu);
    RUN(test_rope);
    RUN(test_attention);
    RUN(test_packed_attention);
    RUN(test_decode_rows_equal_heads);
    RUN(test_decode_bf16);
    RUN(test_xent);
    RUN(test_sums_and_adamw);
    RUN(test_paths_and_threads_agree);
    return test_summary();
}
