/* bench_gemm.c: the engine's matrix products at the shapes the loop runs, in
 * GFLOP/s, beside OpenBLAS's cblas_sgemm on the same operands in the same
 * process (the baseline; OPENBLAS_CORETYPE, when set, pins its kernel).
 *
 * Per shape (N rows of activations, I inputs, O outputs of a linear layer):
 *   fwd     out[N,O] = in[N,I] W[O,I]^T          (ad_matmul_forward)
 *   packed  the same with W packed once          (ad_matmul_forward_packed)
 *   dgrad   din[N,I] = dout[N,O] W[O,I]          (ad_matmul_backward_into, din only,
 *                                                as the model calls it)
 *   wgrad   dW[O,I] += dout[N,O]^T in[N,I]       (ad_matmul_backward, dW only)
 * and, on CPUs with AVX512-BF16, fwd, dgrad and wgrad again with training's
 * mixed precision on (ad_kernels_set_bf16), against the fp32 engine.
 * Medians of --reps timed calls after one warm-up; not a test. */
#include <cblas.h>
#undef I /* OpenBLAS's cblas.h brings complex.h's I; the shapes use I for inputs */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "util/error.h"
#include "util/memory.h"

typedef struct {
    const char *name;
    size_t N, I, O;
} shape;

static const shape SHAPES[] = {
    {"decode-14M-qkvo", 64, 384, 384},   {"decode-14M-up", 64, 384, 1536},
    {"decode-14M-down", 64, 1536, 384},  {"decode-0.5M-qkvo", 64, 96, 96},
    {"decode-0.5M-up", 64, 96, 288},     {"prefill-14M-qkvo", 1024, 384, 384},
    {"prefill-14M-up", 1024, 384, 1536}, {"rl-0.8M-qkvo", 4480, 128, 128},
    {"rl-0.8M-up", 4480, 128, 512},      {"rl-0.8M-down", 4480, 512, 128},
    {"train-14M-qkvo", 3392, 384, 384},  {"train-14M-up", 3392, 384, 1536},
    {"train-14M-down", 3392, 1536, 384}, {"train-0.8M-qkvo", 2816, 128, 128},
    {"train-0.8M-up", 2816, 128, 512},   {"train-0.8M-down", 2816, 512, 128},
};

enum { FWD, PACKED, DGRAD, WGRAD, N_OPS };
static const char *const OP_NAMES[N_OPS] = {"fwd", "packed", "dgrad", "wgrad"};

typedef struct {
    const shape *s;
    float *in, *W, *out, *dout, *din, *dW;
    ad_packed_matrix *pw;
} operands;

static void run_engine(operands *o, int op) {
    const shape *s = o->s;
    switch (op) {
    case FWD:
        ad_matmul_forward(o->out, o->in, o->W, s->N, s->I, s->O, 0);
        break;
    case PACKED:
        ad_matmul_forward_packed(o->out, o->in, o->pw, s->N, 0);
        break;
    case DGRAD:
        ad_matmul_backward_into(o->din, NULL, o->dout, o->in, o->W, s->N, s->I, s->O);
        break;
    default:
        ad_matmul_backward(NULL, o->dW, o->dout, o->in, o->W, s->N, s->I, s->O);
        break;
    }
}

static void run_blas(operands *o, int op) {
    const shape *s = o->s;
    int N = (int)s->N, I = (int)s->I, O = (int)s->O;
    if (op == FWD || op == PACKED)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, o->in, I, o->W, I, 0.0f,
                    o->out, O);
    else if (op == DGRAD)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O, 1.0f, o->dout, O, o->W, I,
                    0.0f, o->din, I);
    else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N, 1.0f, o->dout, O, o->in, I,
                    1.0f, o->dW, I);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of reps calls of f(o, op), after one warm-up call. */
static double time_op(void (*f)(operands *, int), operands *o, int op, int reps) {
    double t[64];
    if (reps > 64) reps = 64;
    f(o, op);
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        f(o, op);
        t[r] = omp_get_wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

static float *random_floats(size_t n, unsigned *state) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        p[i] = (float)(*state >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

static int bench_shape(const shape *s, int reps) {
    unsigned seed = 1;
    operands o = {s,
                  random_floats(s->N * s->I, &seed),
                  random_floats(s->O * s->I, &seed),
                  random_floats(s->N * s->O, &seed),
                  random_floats(s->N * s->O, &seed),
                  random_floats(s->N * s->I, &seed),
                  random_floats(s->O * s->I, &seed),
                  NULL};
    ad_error err = {0};
    int rc = o.in && o.W && o.out && o.dout && o.din && o.dW ? 0 : 1;
    if (!rc && ad_matmul_pack(&o.pw, o.W, s->I, s->O, &err) != AD_OK) rc = 1;
    if (rc) fprintf(stderr, "bench_gemm: %s: out of memory %s\n", s->name, err.msg);
    double flop = 2.0 * (double)s->N * (double)s->I * (double)s->O;
    for (int op = 0; !rc && op < N_OPS; op++) {
        /* the engine's paths first: OpenBLAS's threads spin on for a while
         * after its calls and would slow whatever runs next */
        double te = time_op(run_engine, &o, op, reps), th = 0;
        if (op != PACKED && ad_kernels_have_bf16()) { /* training's mixed precision */
            ad_kernels_set_bf16(1);
            th = time_op(run_engine, &o, op, reps);
            ad_kernels_set_bf16(0);
        }
        double tb = time_op(run_blas, &o, op, reps);
        printf("RESULT gemm %-17s %-6s N=%-5zu I=%-5zu O=%-5zu %8.1f GFLOP/s  openblas %8.1f  "
               "ratio %5.2fx",
               s->name, OP_NAMES[op], s->N, s->I, s->O, flop / te * 1e-9, flop / tb * 1e-9,
               tb / te);
        if (th > 0) printf("  bf16 %8.1f (%4.2fx fp32)", flop / th * 1e-9, te / th);
        printf("\n");
        fflush(stdout);
    }
    ad_packed_matrix_free(o.pw);
    free(o.in), free(o.W), free(o.out), free(o.dout), free(o.din), free(o.dW);
    return rc;
}

int main(int argc, char **argv) {
    ad_memory_keep_freed(); /* as the CLI does: util/memory.c */
    int reps = 21, threads = 0;
    const char *only = NULL;
    shape custom = {"custom", 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc &&
                 sscanf(argv[++i], "%zu,%zu,%zu", &custom.N, &custom.I, &custom.O) == 3 &&
                 custom.N && custom.I && custom.O)
            ;
        else {
            fprintf(stderr, "usage: bench_gemm [--reps 21] [--threads N] [--only SUBSTRING] "
                            "[--shape N,I,O]\n"
                            "The engine's matrix products at the loop's shapes against "
                            "OpenBLAS, GFLOP/s.\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (reps < 1) reps = 1;
    if (threads > 0) ad_kernels_set_threads(threads);
    printf("# bench_gemm: kernels %s, %d threads, OpenBLAS %s\n", ad_kernels_isa(),
           ad_kernels_get_threads(), openblas_get_corename());
    int rc = 0;
    if (custom.N) return bench_shape(&custom, reps);
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++)
        if (!only || strstr(SHAPES[i].name, only)) rc |= bench_shape(&SHAPES[i], reps);
    return rc;
}
