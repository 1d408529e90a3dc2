/* bench_long.c: memory and time of training on long sequences (issue 11 item
 * 4): the 14M model (6 layers, 6 heads, d_model 384, d_ff 1536, NoPE, vocab
 * 15) on random sequences of T tokens, batch B, one warm-up step then `steps`
 * timed ones (zero-grad, forward, backward, AdamW), with the attention weights
 * kept for the backward or recomputed in it (model.h's ad_attention_mode).
 *
 * Peak memory is the process's (getrusage ru_maxrss), so run one mode per
 * process; bench/run_all.sh (make bench) runs both, one after the other.
 * Output: one line
 *   RESULT long <mode> T=.. B=.. rss_mb=.. step_s=.. loss=..
 * where loss is the last step's mean loss (the two modes give the same bits,
 * so the same value). Usage: bench_long [--T 1024] [--batch 16] [--steps 2]
 * [--attention auto|keep|recompute] [--threads N] [--precision fp32|bf16]; bf16
 * runs the products as run.precision = bf16 does (CPUs with AVX512-BF16).
 * Not a test. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model/kernels.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "util/memory.h"

#define VOCAB 15

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_mode(const char *s, ad_attention_mode *out) {
    const char *names[] = {"auto", "keep", "recompute"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) return *out = (ad_attention_mode)i, 0;
    return 1;
}

/* Random tokens 3..14 after BOS, every position a target. */
static void fill(int32_t *tok, int32_t *tgt, size_t B, size_t T) {
    unsigned long long s = 88172645463325252ull;
    for (size_t i = 0; i < B * T; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        tok[i] = i % T == 0 ? 1 : 3 + (int32_t)(s % 12);
    }
    for (size_t i = 0; i < B * T; i++)
        tgt[i] = (i + 1) % T ? tok[i + 1] : -1;
}

int main(int argc, char **argv) {
    ad_memory_keep_freed(); /* as the CLI does: util/memory.c */
    size_t T = 1024, B = 16, steps = 2, threads = 0;
    ad_attention_mode mode = AD_ATTENTION_AUTO;
    const char *mode_name = "auto";
    int bf16 = 0;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (more && !strcmp(argv[i], "--T"))
            T = strtoul(argv[++i], NULL, 10);
        else if (more && !strcmp(argv[i], "--batch"))
            B = strtoul(argv[++i], NULL, 10);
        else if (more && !strcmp(argv[i], "--steps"))
            steps = strtoul(argv[++i], NULL, 10);
        else if (more && !strcmp(argv[i], "--threads"))
            threads = strtoul(argv[++i], NULL, 10);
        else if (more && !strcmp(argv[i], "--attention") && !parse_mode(argv[i + 1], &mode))
            mode_name = argv[++i];
        else if (more && !strcmp(argv[i], "--precision") &&
                 (!strcmp(argv[i + 1], "fp32") || !strcmp(argv[i + 1], "bf16")))
            bf16 = !strcmp(argv[++i], "bf16");
        else {
            fprintf(stderr, "usage: bench_long [--T 1024] [--batch 16] [--steps 2] "
                            "[--attention auto|keep|recompute] [--threads N] "
                            "[--precision fp32|bf16]\n");
            return 2;
        }
    }
    if (T < 2 || B < 1 || steps < 1) return fprintf(stderr, "bench_long: bad sizes\n"), 2;
    if (threads) ad_kernels_set_threads((int)threads);
    if (bf16 && !ad_kernels_have_bf16())
        return fprintf(stderr, "bench_long: --precision bf16 needs a CPU with AVX512-BF16\n"), 2;
    ad_model_config c = ad_model_default_config();
    c.n_layers = 6, c.n_heads = 6, c.d_model = 384, c.d_ff = 1536;
    c.vocab_size = VOCAB, c.max_seq_len = T, c.pos = AD_POS_NONE, c.tie_embeddings = 0;
    ad_model *m = NULL;
    ad_adamw opt;
    ad_adamw_config oc = ad_adamw_default_config();
    ad_error err;
    int32_t *tok = malloc(B * T * sizeof *tok), *tgt = malloc(B * T * sizeof *tgt);
    if (!tok || !tgt || ad_model_create(&m, &c, &err) != AD_OK ||
        ad_adamw_init(&opt, m, &oc, &err) != AD_OK)
        return fprintf(stderr, "bench_long: %s\n", err.msg), 1;
    m->attention = mode;
    fill(tok, tgt, B, T);
    ad_batch b = {B, T, tok, tgt, NULL};
    double total = 0, loss = 0;
    size_t n = 0;
    for (size_t s = 0; s <= steps; s++) {
        double t0 = now_s();
        ad_model_zero_grad(m);
        ad_kernels_set_bf16(bf16);
        if (ad_model_forward(m, &b, &loss, &n, &err) != AD_OK)
            return fprintf(stderr, "bench_long: %s\n", err.msg), 1;
        ad_model_backward(m, NULL, 1.0f / (float)n);
        ad_kernels_set_bf16(0);
        ad_adamw_step(&opt, m, 1e-4f);
        if (s > 0) total += now_s() - t0; /* step 0 warms up: buffers grow */
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT long %s T=%zu B=%zu params=%zu threads=%d rss_mb=%.0f step_s=%.3f loss=%.6f "
           "precision=%s\n",
           mode_name, T, B, m->n_params, omp_get_max_threads(), (double)ru.ru_maxrss / 1024.0,
           total / (double)steps, loss / (double)n, bf16 ? "bf16" : "fp32");
    ad_adamw_free(&opt);
    ad_model_free(m);
    free(tok);
    free(tgt);
    return 0;
}
