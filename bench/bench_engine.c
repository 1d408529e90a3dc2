/* bench_engine.c: how fast the engine trains and generates, against the machine's peak.
 *
 * Measures, for two model sizes (0.5M: 4 layers, 4 heads, d_model 96, d_ff 288;
 * 14M: the reference paper's 6 layers, 6 heads, d_model 384, d_ff 1536; both
 * NoPE, untied, vocab 15) at the shape of reverse addition of two 16-digit
 * numbers (53 tokens: BOS a + b = s EOS) and batch 64:
 *   - this machine's fp32 peak, with an FMA loop on every thread (AVX-512 when
 *     the CPU has it, else AVX2);
 *   - training tokens/s: zero-grad + forward + backward + clipping + AdamW over
 *     a batch of B*T tokens, and MFU = 6 * params * tokens/s / peak;
 *   - batched greedy generation tokens/s with the KV cache (ad_sample_generate):
 *     B prompts of 35 tokens, 18 new tokens each, prefill included in the time;
 *     its MFU counts every token the model processes (35 prompt tokens and 17
 *     fed-back ones per row): 2 * params * (52/18) * tokens/s / peak.
 * Attention FLOPs are not counted in either MFU. Each result is the median of
 * a few timed repetitions after one warm-up (the fastest is printed beside it).
 * The EOS row of the LM head is zeroed and two other rows are made opposite, so
 * EOS is never the argmax and every row generates exactly 18 tokens, as in
 * bench/torch_baseline.py, which measures the same things in PyTorch.
 *
 * Output: comment lines starting with '#', and one line per measurement
 *   RESULT <what> <size> <value> key=value ...
 * that bench/run_all.sh joins with PyTorch's. Not a test: it checks nothing
 * beyond the generation shape. Usage: bench_engine [--sizes 0.5M,14M]
 * [--batch 64] [--threads N] [--precision fp32|bf16] [--quick]; --precision
 * bf16 trains with bf16 products (ad_kernels_set_bf16, as run.precision does)
 * and generates with them (ad_model.decode_bf16: weights packed in bf16). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/kernels.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "model/sampler.h"
#include "model/vocab.h"
#include "util/memory.h"

/* After our headers: cblas.h pulls in <complex.h>, whose macro I clashes with
 * the parameter names of kernels.h. Used only for openblas_get_corename. */
#include <cblas.h>

#define VOCAB 15 /* <pad> <bos> <eos> 0-9 + = */
#define DIGITS 16
#define PROMPT (1 + DIGITS + 1 + DIGITS + 1) /* 35 */
#define NEW (DIGITS + 1 + 1)                 /* 18: sum digits + EOS */
#define SEQ (PROMPT + NEW)                   /* 53 */
#define TOK_PLUS 13
#define TOK_EQ 14

typedef struct size_spec {
    const char *name;
    size_t layers, heads, dim, ffn;
    int train_reps, gen_reps;
} size_spec;

static const size_spec SIZES[] = {
    {"0.5M", 4, 4, 96, 288, 15, 7},
    {"14M", 6, 6, 384, 1536, 5, 7},
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median of n timings (sorts them). */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *t, size_t n) {
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

#define MAX_REPS 64

/* ---- peak: independent FMA chains, enough to cover latency x pipes ---- */

#define FMA_CHAINS 16

__attribute__((target("avx512f"))) static double fma_loop_avx512(size_t iters) {
    __m512 acc[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (size_t n = 0; n < iters; n++)
        for (int i = 0; i < FMA_CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float sum = 0, lanes[16];
    for (int i = 0; i < FMA_CHAINS; i++) {
        _mm512_storeu_ps(lanes, acc[i]);
        for (int j = 0; j < 16; j++)
            sum += lanes[j];
    }
    return sum;
}

static double fma_loop_avx2(size_t iters) {
    __m256 acc[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++)
        acc[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (size_t n = 0; n < iters; n++)
        for (int i = 0; i < FMA_CHAINS; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float sum = 0, lanes[8];
    for (int i = 0; i < FMA_CHAINS; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        for (int j = 0; j < 8; j++)
            sum += lanes[j];
    }
    return sum;
}

/* Peak fp32 FLOP/s over all OpenMP threads: the best of 5 runs of ~0.1 s. */
static double measure_peak(int *lanes_out) {
    int avx512 = __builtin_cpu_supports("avx512f");
    int lanes = avx512 ? 16 : 8;
    size_t iters = (size_t)64 << 20; /* 2^30 FMAs a thread: ~0.13 s at 2 FMAs/cycle, 4 GHz */
    volatile double keep = 0;        /* so the loops are not optimised away */
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        int threads = 1;
        double sink = 0, t0 = now_s();
#pragma omp parallel reduction(+ : sink)
        {
#pragma omp single
            threads = omp_get_num_threads();
            sink += avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
        }
        double dt = now_s() - t0;
        keep += sink;
        double flops = (double)threads * (double)iters * FMA_CHAINS * lanes * 2.0;
        if (flops / dt > best) best = flops / dt;
    }
    *lanes_out = lanes;
    return best;
}

/* ---- the workload ---- */

/* Row b of the batch: BOS, 16 digits, '+', 16 digits, '=', 17 digits, EOS; targets
 * on the sum and EOS (what SFT on reverse addition trains). */
static void make_batch(int32_t *tokens, int32_t *targets, size_t B, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t b = 0; b < B; b++) {
        int32_t *t = tokens + b * SEQ;
        for (size_t i = 0; i < SEQ; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            t[i] = 3 + (int32_t)(s % 10);
        }
        t[0] = AD_TOK_BOS;
        t[1 + DIGITS] = TOK_PLUS;
        t[PROMPT - 1] = TOK_EQ;
        t[SEQ - 1] = AD_TOK_EOS;
        for (size_t i = 0; i < SEQ; i++)
            targets[b * SEQ + i] = (i + 1 >= PROMPT && i + 1 < SEQ) ? t[i + 1] : -1;
    }
}

static int create_model(ad_model **m, const size_spec *sz) {
    ad_model_config c = ad_model_default_config();
    c.n_layers = sz->layers;
    c.n_heads = sz->heads;
    c.d_model = sz->dim;
    c.d_ff = sz->ffn;
    c.vocab_size = VOCAB;
    c.max_seq_len = 64;
    c.pos = AD_POS_NONE;
    c.tie_embeddings = 0;
    ad_error err;
    if (ad_model_create(m, &c, &err) != AD_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        return AD_ERR;
    }
    /* EOS logit 0, and logits of tokens 3 and 4 opposite: one of them is > 0. */
    float *head = (*m)->w.lm_head;
    size_t C = c.d_model;
    memset(head + (size_t)AD_TOK_EOS * C, 0, C * sizeof(float));
    for (size_t i = 0; i < C; i++)
        head[4 * C + i] = -head[3 * C + i];
    return AD_OK;
}

/* Median and best tokens/s of `reps` training steps after one warm-up. */
static int g_bf16; /* --precision bf16 */

static int bench_train(ad_model *m, size_t B, int reps, double *med, double *best) {
    int32_t *tokens = malloc(B * SEQ * sizeof(int32_t));
    int32_t *targets = malloc(B * SEQ * sizeof(int32_t));
    ad_adamw opt;
    ad_adamw_config oc = ad_adamw_default_config();
    ad_error err;
    if (!tokens || !targets || ad_adamw_init(&opt, m, &oc, &err) != AD_OK) {
        fprintf(stderr, "bench_engine: cannot set up training\n");
        free(tokens);
        free(targets);
        return AD_ERR;
    }
    make_batch(tokens, targets, B, 1);
    ad_batch batch = {B, SEQ, tokens, targets, NULL};
    double times[MAX_REPS] = {0};
    int rc = AD_OK;
    for (int r = -1; r < reps && rc == AD_OK; r++) {
        double t0 = now_s(), loss = 0;
        size_t n = 0;
        ad_model_zero_grad(m);
        ad_kernels_set_bf16(g_bf16);
        rc = ad_model_forward(m, &batch, &loss, &n, &err);
        if (rc == AD_OK) ad_model_backward(m, NULL, 1.0f / (float)n);
        ad_kernels_set_bf16(0);
        if (rc != AD_OK) break;
        ad_adamw_step(&opt, m, 1e-4f);
        double dt = now_s() - t0;
        if (r < 0) continue; /* warm-up: buffers grow, pages fault in */
        times[r] = dt;
    }
    if (rc != AD_OK) fprintf(stderr, "bench_engine: %s\n", err.msg);
    if (rc == AD_OK) {
        *med = (double)(B * SEQ) / median(times, (size_t)reps);
        *best = (double)(B * SEQ) / times[0];
    }
    ad_adamw_free(&opt);
    free(tokens);
    free(targets);
    return rc;
}

/* Median and best generated tokens/s of greedy decoding of B prompts. */
static int bench_generate(ad_model *m, size_t B, int reps, double *med, double *best) {
    int32_t *tokens = malloc(B * SEQ * sizeof(int32_t));
    int32_t *targets = malloc(B * SEQ * sizeof(int32_t));
    ad_sample_request *reqs = calloc(B, sizeof *reqs);
    ad_sample_result *res = calloc(B, sizeof *res);
    int rc = tokens && targets && reqs && res ? AD_OK : AD_ERR;
    ad_error err = {{0}};
    if (rc == AD_OK) make_batch(tokens, targets, B, 2);
    for (size_t b = 0; rc == AD_OK && b < B; b++)
        reqs[b] = (ad_sample_request){tokens + b * SEQ, PROMPT, NEW, b};
    ad_sample_params sp = ad_sample_default_params();
    sp.temperature = 0;
    sp.max_batch = B;
    m->decode_bf16 = g_bf16;
    double times[MAX_REPS] = {0};
    for (int r = -1; r < reps && rc == AD_OK; r++) {
        double t0 = now_s();
        rc = ad_sample_generate(m, reqs, B, &sp, res, &err);
        double dt = now_s() - t0;
        if (rc != AD_OK) break;
        for (size_t b = 0; b < B; b++) {
            if (res[b].n != NEW || res[b].hit_eos) {
                snprintf(err.msg, sizeof err.msg, "row %zu generated %zu tokens, expected %d", b,
                         res[b].n, NEW);
                rc = AD_ERR;
            }
            ad_sample_result_free(&res[b]);
        }
        if (r < 0) continue;
        times[r] = dt;
    }
    if (rc != AD_OK) fprintf(stderr, "bench_engine: generate: %s\n", err.msg);
    if (rc == AD_OK) {
        *med = (double)(B * NEW) / median(times, (size_t)reps);
        *best = (double)(B * NEW) / times[0];
    }
    free(tokens);
    free(targets);
    free(reqs);
    free(res);
    return rc;
}

int main(int argc, char **argv) {
    ad_memory_keep_freed(); /* as the CLI does: util/memory.c */
    const char *sizes = "0.5M,14M", *what = "train,generate";
    size_t B = 64;
    int threads = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
            sizes = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            B = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--what") && i + 1 < argc)
            what = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "fp32") || !strcmp(argv[i + 1], "bf16")))
            g_bf16 = !strcmp(argv[++i], "bf16");
        else {
            fprintf(stderr, "usage: bench_engine [--sizes 0.5M,14M] [--what train,generate] "
                            "[--batch 64] [--threads N] [--precision fp32|bf16] [--quick]\n");
            return 2;
        }
    }
    if (B == 0) B = 64;
    if (threads > 0) ad_kernels_set_threads(threads);
    if (g_bf16 && !ad_kernels_have_bf16()) {
        fprintf(stderr, "bench_engine: --precision bf16 needs a CPU with AVX512-BF16\n");
        return 2;
    }
    printf("# autodidact engine: kernels %s, %d threads, OpenBLAS core %s "
           "(OPENBLAS_CORETYPE=%s)\n",
           ad_kernels_isa(), ad_kernels_get_threads(), openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset");
    int lanes;
    double peak = measure_peak(&lanes);
    printf("RESULT peak all %.1f gflops=%.1f simd=%s threads=%d\n", peak, peak * 1e-9,
           lanes == 16 ? "avx512" : "avx2", omp_get_max_threads());
    fflush(stdout);

    int failed = 0;
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
        const size_spec *sz = &SIZES[s];
        /* match whole comma-separated names only */
        char list[256];
        snprintf(list, sizeof list, ",%s,", sizes);
        char key[32];
        snprintf(key, sizeof key, ",%s,", sz->name);
        if (!strstr(list, key)) continue;
        ad_model *m;
        if (create_model(&m, sz) != AD_OK) return 1;
        double params = (double)m->n_params, med, best;
        int tr = quick ? 1 : sz->train_reps, gr = quick ? 1 : sz->gen_reps; /* <= MAX_REPS */
        if (!strstr(what, "train"))
            ;
        else if (bench_train(m, B, tr, &med, &best) == AD_OK)
            printf("RESULT train %s %.2f params=%zu batch=%zu seq=%d best=%.2f mfu=%.3f "
                   "precision=%s\n",
                   sz->name, med, m->n_params, B, SEQ, best, 6 * params * med / peak,
                   g_bf16 ? "bf16" : "fp32");
        else
            failed = 1;
        fflush(stdout);
        if (!strstr(what, "generate"))
            ;
        else if (bench_generate(m, B, gr, &med, &best) == AD_OK)
            printf("RESULT generate %s %.2f params=%zu batch=%zu prompt=%d new=%d best=%.2f "
                   "mfu=%.3f precision=%s\n",
                   sz->name, med, m->n_params, B, PROMPT, NEW, best,
                   2 * params * med * (PROMPT + NEW - 1) / NEW / peak, g_bf16 ? "bf16" : "fp32");
        else
            failed = 1;
        fflush(stdout);
        ad_model_free(m);
    }
    return failed;
}
