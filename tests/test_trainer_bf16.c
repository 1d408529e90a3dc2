/* test_trainer_bf16.c: training with bf16 matrix products (ad_train_config.bf16)
 * against the same training in fp32: the first step's loss and gradients
 * within bf16's rounding, the same progress over a short run, the same bits on
 * 1 and 2 threads, the fp32 products restored after every pass (the sampler
 * and evaluation stay fp32), and a clear refusal on a CPU without
 * AVX512-BF16. Where the CPU lacks it, only the refusal is checked. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/kernels.h"
#include "model/kernels_internal.h"
#include "model/trainer.h"
#include "util/rng.h"

#define N_EX 32
#define SEQ 24
#define VOCAB 16

static ad_model *make_model(void) {
    ad_model_config mc = ad_model_default_config();
    mc.n_layers = 2;
    mc.n_heads = 4;
    mc.d_model = 64;
    mc.d_ff = 256;
    mc.vocab_size = VOCAB;
    mc.max_seq_len = SEQ;
    mc.seed = 7;
    ad_model *m = NULL;
    ad_error err = {{0}};
    CHECK_MSG(ad_model_create(&m, &mc, &err) == AD_OK, "%s", err.msg);
    return m;
}

/* Learnable sequences: a random prompt, then its reverse as the completion. */
static void make_examples(ad_example *ex) {
    ad_rng rng;
    ad_rng_seed(&rng, 99);
    for (size_t i = 0; i < N_EX; i++) {
        size_t half = 4 + (size_t)ad_rng_below(&rng, 7); /* 4..10 */
        ex[i].len = 2 * half + 2;
        ex[i].loss_from = half + 1;
        ex[i].tokens = malloc(ex[i].len * sizeof(int32_t));
        ex[i].tokens[0] = 1; /* BOS */
        for (size_t k = 0; k < half; k++) {
            ex[i].tokens[1 + k] = 3 + (int32_t)ad_rng_below(&rng, VOCAB - 3);
            ex[i].tokens[1 + half + k] = 0;
        }
        for (size_t k = 0; k < half; k++)
            ex[i].tokens[1 + half + k] = ex[i].tokens[half - k];
        ex[i].tokens[ex[i].len - 1] = 2; /* EOS */
    }
}

static int make_trainer(ad_trainer *t, ad_model *m, int bf16, ad_error *err) {
    ad_train_config tc = ad_train_default_config(200);
    tc.batch_size = N_EX;
    tc.bf16 = bf16;
    tc.schedule.peak_lr = 3e-3f;
    return ad_trainer_init(t, m, &tc, err);
}

/* Trains a fresh model for `steps` steps; returns the last step's loss and
 * leaves the final parameters in *params (malloc'd) and the first step's
 * gradients in *grads0. */
static double run(int bf16, size_t steps, float **params, float **grads0, double *loss0) {
    ad_example ex[N_EX];
    make_examples(ex);
    ad_model *m = make_model();
    ad_trainer t;
    ad_error err = {{0}};
    double loss = NAN;
    if (m && make_trainer(&t, m, bf16, &err) == AD_OK) {
        for (size_t s = 0; s < steps; s++) {
            ad_step_stats st;
            /* step 0's gradients, from the pieces of a step (which update nothing) */
            if (s == 0 && grads0) {
                double lp[N_EX];
                ad_trainer_begin_step(&t);
                CHECK(ad_trainer_forward(&t, ex, N_EX, lp, &err) == AD_OK);
                size_t n_targets = 0;
                CHECK(ad_trainer_check_examples(&t, ex, N_EX, &n_targets, NULL, &err) == AD_OK);
                ad_trainer_backward(&t, NULL, 1.0f / (float)n_targets);
                *grads0 = malloc(m->n_params * sizeof(float));
                memcpy(*grads0, m->grads, m->n_params * sizeof(float));
                double sum = 0;
                for (size_t i = 0; i < N_EX; i++)
                    sum -= lp[i];
                if (loss0) *loss0 = sum / (double)n_targets;
            }
            CHECK_MSG(ad_trainer_step(&t, ex, N_EX, &st, &err) == AD_OK, "%s", err.msg);
            loss = st.loss;
            CHECK(ad_kernels_set_bf16(0) == 0); /* every pass restores fp32 */
        }
        if (params) {
            *params = malloc(m->n_params * sizeof(float));
            memcpy(*params, m->params, m->n_params * sizeof(float));
        }
        ad_trainer_free(&t);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    ad_model_free(m);
    for (size_t i = 0; i < N_EX; i++)
        ad_example_free(&ex[i]);
    return loss;
}

static size_t n_params(void) {
    ad_model *m = make_model();
    size_t n = m ? m->n_params : 0;
    ad_model_free(m);
    return n;
}

static void test_close_to_fp32(void) {
    if (!ad_kernels_have_bf16()) {
        printf("  (no AVX512-BF16 on this CPU: nothing to compare)\n");
        return;
    }
    float *g32 = NULL, *g16 = NULL;
    double l32 = 0, l16 = 0;
    double end32 = run(0, 150, NULL, &g32, &l32), end16 = run(1, 150, NULL, &g16, &l16);
    size_t n = n_params();
    double dot = 0, n32 = 0, n16 = 0;
    for (size_t i = 0; g32 && g16 && i < n; i++) {
        dot += (double)g32[i] * g16[i];
        n32 += (double)g32[i] * g32[i];
        n16 += (double)g16[i] * g16[i];
    }
    double cosine = dot / sqrt(n32 * n16);
    printf("  first loss %.5f / %.5f, gradient cosine %.6f, norms %.4f / %.4f, "
           "loss after 150 steps %.4f / %.4f (fp32 / bf16)\n",
           l32, l16, cosine, sqrt(n32), sqrt(n16), end32, end16);
    CHECK(fabs(l16 - l32) < 1e-2 * l32);
    CHECK(cosine > 0.999);
    CHECK(fabs(sqrt(n16) / sqrt(n32) - 1) < 0.01);
    /* both learn the task, and bf16 about as far */
    CHECK(end32 < 0.5 * l32 && end16 < 0.5 * l16);
    CHECK(fabs(end16 - end32) < 0.15 * end32 + 0.02);
    free(g32), free(g16);
}

static void test_threads_agree(void) {
    if (!ad_kernels_have_bf16()) return;
    int saved = omp_get_max_threads();
    float *p[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        run(1, 5, &p[t], NULL, NULL);
    }
    omp_set_num_threads(saved);
    CHECK(p[0] && p[1] && memcmp(p[0], p[1], n_params() * sizeof(float)) == 0);
    free(p[0]), free(p[1]);
}

static void test_refused_without_bf16(void) {
    int prev = ad_kernels_force_avx512(0); /* the portable path: no AVX512-BF16 */
    ad_model *m = make_model();
    ad_trainer t;
    ad_error err = {{0}};
    CHECK(m && make_trainer(&t, m, 1, &err) == AD_ERR);
    CHECK(strstr(err.msg, "AVX512-BF16") != NULL);
    CHECK(ad_kernels_set_bf16(1) == 0 && ad_kernels_set_bf16(0) == 0); /* stays off */
    int rc = m ? make_trainer(&t, m, 0, &err) : AD_ERR;
    CHECK(rc == AD_OK);
    if (rc == AD_OK) ad_trainer_free(&t);
    ad_model_free(m);
    ad_kernels_force_avx512(prev ? 1 : -1);
}

int main(void) {
    RUN(test_close_to_fp32);
    RUN(test_threads_agree);
    RUN(test_refused_without_bf16);
    return test_summary();
}
