/* objective_testlib.h: what the objective tests share (tests/test_objectives.c,
 * tests/test_grpo.c): a toy model, a trainer whose steps leave parameters and
 * gradients alone, the relative gradient error of test_torch_compare.c, fixture
 * reads, the check that a refused step changes nothing, and per-token log-probs
 * of the current model (tests/test_grpo.c, tests/test_nft.c). Header-only (the
 * test programs link only tests/harness.c); include it once, after harness.h. */
#ifndef AD_TESTS_OBJECTIVE_TESTLIB_H
#define AD_TESTS_OBJECTIVE_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "loop/objective.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/trainer.h"

static ad_model *toy_model(uint64_t seed) {
    ad_model_config mc = ad_model_default_config();
    mc.n_layers = 1;
    mc.n_heads = 4;
    mc.d_model = 32;
    mc.d_ff = 64;
    mc.vocab_size = 12;
    mc.max_seq_len = 24;
    mc.seed = seed;
    ad_model *m = NULL;
    ad_error err = {{0}};
    CHECK_MSG(ad_model_create(&m, &mc, &err) == AD_OK, "%s", err.msg);
    return m;
}

static inline void free_examples(ad_example *ex, size_t n) {
    for (size_t i = 0; i < n; i++)
        ad_example_free(&ex[i]);
}

/* A trainer whose steps leave the parameters and the gradients alone: learning
 * rate 0, no clipping. */
static int gradient_trainer(ad_trainer *t, ad_model *m, size_t batch_size) {
    ad_train_config tc = ad_train_default_config(100);
    tc.batch_size = batch_size;
    tc.schedule.peak_lr = 0.0f;
    tc.schedule.warmup_steps = tc.schedule.decay_steps = 0;
    tc.adamw.grad_clip = 0.0f;
    ad_error err = {{0}};
    int rc = ad_trainer_init(t, m, &tc, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    return rc;
}

/* Norm-wise and elementwise relative error, as test_torch_compare.c. */
static double grad_error(const float *got, const float *want, size_t n) {
    double diff2 = 0, want2 = 0, want_max = 0, elem = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        diff2 += d * d;
        want2 += (double)want[i] * want[i];
        want_max = fmax(want_max, fabs(want[i]));
    }
    for (size_t i = 0; i < n; i++) {
        double scale = fabs(want[i]) + want_max, e = fabs((double)got[i] - want[i]);
        e /= scale > 0 ? scale : 1.0;
        if (e > elem || e != e) elem = e;
    }
    double rel = want2 > 0 ? sqrt(diff2 / want2) : sqrt(diff2);
    return fmax(rel, elem);
}

/* Reads an F32 tensor of n elements (any shape) into a fresh buffer. */
static float *read_f32(const ad_safetensors *st, const char *name, size_t n) {
    const ad_safetensors_tensor *t = ad_safetensors_find(st, name);
    CHECK_MSG(t && t->dtype == AD_DTYPE_F32 && t->numel == n, "fixture tensor '%s'", name);
    if (!t || t->dtype != AD_DTYPE_F32 || t->numel != n) return NULL;
    float *out = malloc(n * sizeof *out);
    ad_error err = {{0}};
    if (out && ad_safetensors_read_f32(st, name, t->ndim, t->shape, out, &err) != AD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        free(out);
        return NULL;
    }
    return out;
}

/* Opens a policy-objective fixture folder (tests/torch_grpo_reference.py,
 * tests/torch_nft_reference.py): the model of dir/ckpt, dir/expected.safetensors
 * and its [R, T] tokens (malloc'd). Returns AD_ERR after a failed CHECK. */
static inline int policy_fixture_open(const char *dir, ad_model **m, ad_vocab *vocab,
                                      ad_safetensors **want, size_t *R, size_t *T,
                                      int32_t **tokens) {
    char path[1024];
    ad_error err = {{0}};
    snprintf(path, sizeof path, "%s/ckpt", dir);
    int rc = ad_checkpoint_load(path, m, vocab, NULL, NULL, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", path, err.msg);
    if (rc != AD_OK) return AD_ERR;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    rc = ad_safetensors_open(want, path, 0, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (rc != AD_OK) return AD_ERR;
    const ad_safetensors_tensor *t = ad_safetensors_find(*want, "tokens");
    CHECK_MSG(t && t->ndim == 2, "%s: no [R, T] tokens", path);
    if (!t || t->ndim != 2) return AD_ERR;
    *R = t->shape[0];
    *T = t->shape[1];
    size_t shape[2] = {*R, *T};
    *tokens = malloc(*R * *T * sizeof **tokens);
    if (!*tokens) return AD_ERR;
    rc = ad_safetensors_read_i32(*want, "tokens", 2, shape, *tokens, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    return rc;
}

/* A [1] F32 tensor's value (NaN after a failed CHECK). */
static inline double read_scalar(const ad_safetensors *st, const char *name) {
    float *v = read_f32(st, name, 1);
    double x = v ? (double)v[0] : NAN;
    free(v);
    return x;
}

/* Runs a step that must fail with `want` in the message, and checks that the
 * parameters, the optimizer and the schedule did not move. */
static void expect_refused(const ad_objective *o, ad_trainer *t, const ad_objective_params *p,
                           const ad_objective_batch *b, const char *want) {
    size_t n = t->model->n_params;
    float *before = malloc(n * sizeof(float));
    if (!before) return;
    memcpy(before, t->model->params, n * sizeof(float));
    uint64_t step = t->opt.step;
    size_t sched = t->sched_step;
    ad_error err = {{0}};
    int rc = ad_objective_step(o, t, p, b, NULL, &err);
    CHECK_MSG(rc == AD_ERR && strstr(err.msg, want), "expected '%s', got rc %d '%s'", want, rc,
              err.msg);
    CHECK(memcmp(before, t->model->params, n * sizeof(float)) == 0);
    CHECK(t->opt.step == step && t->sched_step == sched);
    free(before);
}

/* Per-token old log-probs of ex[0..n) under m (the "sampling policy" is the
 * current model: every ratio is 1), moved by `shift` nats, into lp (laid out
 * row after row; *at[i] gets row i's offset). */
static inline void current_logps(ad_model *m, const ad_example *ex, size_t n, float shift,
                                 float *lp, size_t *at) {
    ad_trainer t;
    ad_train_config tc = ad_train_default_config(1);
    tc.batch_size = n;
    double row[16];
    ad_error err = {{0}};
    if (n > 16 || ad_trainer_init(&t, m, &tc, &err) != AD_OK) return;
    ad_trainer_begin_step(&t);
    CHECK_MSG(ad_trainer_forward(&t, ex, n, row, &err) == AD_OK, "%s", err.msg);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        const float *x = ad_trainer_token_logps(&t, i, &c);
        at[i] = k;
        for (size_t j = 0; x && j < c; j++)
            lp[k++] = x[j] + shift;
    }
    ad_model_zero_grad(m);
    ad_trainer_free(&t);
}

#endif
