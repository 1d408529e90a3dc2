/* test_optimizer.c: AdamW over a model against a naive double-precision
 * reference (global-norm clipping, bias correction, weight decay skipped on
 * norm weights), skipping of non-finite steps, configuration errors, and the
 * warmup-stable-decay schedule at its boundaries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "util/rng.h"

static ad_model *tiny_model(int tied) {
    ad_model_config c = ad_model_default_config();
    c.n_layers = 1, c.n_heads = 2, c.d_model = 8, c.d_ff = 12, c.vocab_size = 5;
    c.max_seq_len = 4, c.tie_embeddings = tied;
    ad_model *m = NULL;
    ad_error err;
    ad_model_create(&m, &c, &err);
    return m;
}

static void fill_grads(ad_model *m, ad_rng *r, double scale) {
    for (size_t i = 0; i < m->n_params; i++)
        m->grads[i] = (float)(ad_rng_normal(r) * scale);
}

/* Two steps (the first clipped, the second not) against the reference. */
static void check_steps(int tied) {
    ad_model *m = tiny_model(tied);
    CHECK(m != NULL);
    if (!m) return;
    ad_adamw_config oc = ad_adamw_default_config();
    oc.eps = 1e-8f, oc.weight_decay = 0.1f, oc.grad_clip = 1.0f;
    ad_adamw opt;
    ad_error err;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_OK);
    size_t n = m->n_params;
    double *p = malloc(n * sizeof(double)), *mo = calloc(n, sizeof(double)),
           *v = calloc(n, sizeof(double));
    int *is_norm = calloc(n, sizeof(int));
    for (size_t t = 0; t < m->n_tensors; t++)
        for (size_t j = 0; j < m->tensors[t].numel; j++)
            is_norm[m->tensors[t].offset + j] = m->tensors[t].is_norm;
    for (size_t i = 0; i < n; i++)
        p[i] = m->params[i];
    ad_rng r;
    ad_rng_seed(&r, 5);
    const double grad_scales[2] = {1.0, 1e-3}, lrs[2] = {0.05, 0.02};
    for (int s = 0; s < 2; s++) {
        fill_grads(m, &r, grad_scales[s]);
        double ss = 0;
        for (size_t i = 0; i < n; i++)
            ss += (double)m->grads[i] * m->grads[i];
        double norm = sqrt(ss), clip = norm > oc.grad_clip ? oc.grad_clip / (norm + 1e-6) : 1.0;
        CHECK(s == 0 ? clip < 0.2 : clip == 1.0); /* the first step really clips */
        double lr = lrs[s], b1 = oc.beta1, b2 = oc.beta2, t = s + 1;
        for (size_t i = 0; i < n; i++) {
            double g = m->grads[i] * clip;
            mo[i] = b1 * mo[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double mh = mo[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
            double wd = is_norm[i] ? 0.0 : oc.weight_decay;
            p[i] = p[i] * (1 - lr * wd) - lr * mh / (sqrt(vh) + oc.eps);
        }
        float got = ad_adamw_step(&opt, m, (float)lr);
        CHECK_CLOSE(got, norm, 1e-6, 0);
        CHECK(opt.step == (uint64_t)s + 1);
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(m->params[i] - p[i]) / (1e-7 + 1e-5 * fabs(p[i]));
        worst = e > worst ? e : worst;
        e = fabs(opt.m[i] - mo[i]) / (1e-9 + 1e-5 * fabs(mo[i]));
        worst = e > worst ? e : worst;
        e = fabs(opt.v[i] - v[i]) / (1e-12 + 1e-5 * fabs(v[i]));
        worst = e > worst ? e : worst;
    }
    CHECK_MSG(worst <= 1.0, "worst error %.3g x tolerance", worst);
    free(p), free(mo), free(v), free(is_norm);
    ad_adamw_free(&opt);
    ad_model_free(m);
}

static void test_adamw_against_reference(void) {
    check_steps(0);
    check_steps(1);
}

/* Zero gradients: matrices shrink by exactly 1 - lr*wd, norm weights stay put. */
static void test_weight_decay_mask(void) {
    ad_model *m = tiny_model(0);
    ad_adamw_config oc = ad_adamw_default_config();
    oc.weight_decay = 0.5f;
    ad_adamw opt;
    ad_error err;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_OK);
    float *before = malloc(m->n_params * sizeof(float));
    memcpy(before, m->params, m->n_params * sizeof(float));
    ad_model_zero_grad(m);
    CHECK(ad_adamw_step(&opt, m, 0.1f) == 0.0f);
    int ok = 1, n_norm = 0;
    for (size_t t = 0; t < m->n_tensors; t++) {
        const ad_tensor_info *ti = &m->tensors[t];
        n_norm += ti->is_norm;
        for (size_t j = ti->offset; j < ti->offset + ti->numel; j++) {
            float want = ti->is_norm ? before[j] : before[j] * (float)(1.0 - 0.1 * 0.5);
            if (m->params[j] != want) ok = 0;
        }
    }
    CHECK(ok);
    CHECK(n_norm == 3);
    free(before);
    ad_adamw_free(&opt);
    ad_model_free(m);
}

/* A NaN or inf gradient skips the step entirely; clip = 0 never scales. */
static void test_nonfinite_and_no_clip(void) {
    ad_model *m = tiny_model(0);
    ad_adamw_config oc = ad_adamw_default_config();
    ad_adamw opt;
    ad_error err;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_OK);
    float *before = malloc(m->n_params * sizeof(float));
    memcpy(before, m->params, m->n_params * sizeof(float));
    ad_rng r;
    ad_rng_seed(&r, 3);
    fill_grads(m, &r, 1.0);
    m->grads[7] = NAN;
    CHECK(isnan(ad_adamw_step(&opt, m, 0.1f)));
    m->grads[7] = INFINITY;
    CHECK(isinf(ad_adamw_step(&opt, m, 0.1f)));
    CHECK(opt.step == 0);
    CHECK(memcmp(before, m->params, m->n_params * sizeof(float)) == 0);
    ad_adamw_free(&opt);

    oc.grad_clip = 0.0f;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_OK);
    fill_grads(m, &r, 10.0);
    float *g = malloc(m->n_params * sizeof(float));
    memcpy(g, m->grads, m->n_params * sizeof(float));
    ad_adamw_step(&opt, m, 0.1f);
    CHECK(memcmp(g, m->grads, m->n_params * sizeof(float)) == 0);
    /* first step, no clipping: m = (1 - b1) g exactly as computed in float */
    CHECK(opt.m[11] == (1.0f - oc.beta1) * g[11]);
    free(before), free(g);
    ad_adamw_free(&opt);
    ad_model_free(m);
}

static void test_bad_config(void) {
    ad_model *m = tiny_model(0);
    ad_adamw opt;
    ad_error err;
    ad_adamw_config oc = ad_adamw_default_config();
    oc.beta1 = 1.0f;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_ERR);
    CHECK(opt.m == NULL);
    oc = ad_adamw_default_config();
    oc.weight_decay = -1.0f;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_ERR);
    oc = ad_adamw_default_config();
    oc.eps = NAN;
    CHECK(ad_adamw_init(&opt, m, &oc, &err) == AD_ERR);
    ad_adamw_free(&opt);
    ad_model_free(m);
}

static void test_schedule(void) {
    ad_lr_schedule s = {1.0f, 100, 10, 20, 0.1f};
    CHECK_CLOSE(ad_lr_at(&s, 0), 0.1, 1e-6, 0); /* warmup starts at peak / W */
    CHECK_CLOSE(ad_lr_at(&s, 4), 0.5, 1e-6, 0);
    CHECK_CLOSE(ad_lr_at(&s, 9), 1.0, 1e-6, 0);
    CHECK(ad_lr_at(&s, 10) == 1.0f);
    CHECK(ad_lr_at(&s, 79) == 1.0f); /* last stable step */
    float first_decay = ad_lr_at(&s, 80);
    CHECK(first_decay < 1.0f && first_decay > 0.99f);
    /* halfway through the decay: floor + (1 - floor) / 2 */
    CHECK_CLOSE(ad_lr_at(&s, 89), 0.1 + 0.9 * 0.5, 1e-6, 0);
    CHECK_CLOSE(ad_lr_at(&s, 99), 0.1, 1e-6, 0); /* the last step reaches the floor */
    CHECK_CLOSE(ad_lr_at(&s, 100), 0.1, 1e-6, 0);
    CHECK_CLOSE(ad_lr_at(&s, 5000), 0.1, 1e-6, 0);
    for (size_t i = 81; i < 100; i++)
        CHECK(ad_lr_at(&s, i) < ad_lr_at(&s, i - 1));
    ad_lr_schedule nw = {2.0f, 10, 0, 0, 0.5f};
    CHECK(ad_lr_at(&nw, 0) == 2.0f && ad_lr_at(&nw, 9) == 2.0f);
    CHECK(ad_lr_at(&nw, 10) == 1.0f);
    /* warmup and decay overlapping: the factors multiply, still ends at the floor */
    ad_lr_schedule ov = {1.0f, 10, 8, 8, 0.0f};
    CHECK(ad_lr_at(&ov, 0) == 0.125f);
    CHECK(ad_lr_at(&ov, 2) < 0.375f * 0.99f); /* step 2: 3/8 of warmup, decay begun */
    CHECK_CLOSE(ad_lr_at(&ov, 9), 0.0, 0, 1e-7);
    ad_lr_schedule all_decay = {1.0f, 4, 0, 10, 0.25f};
    CHECK_CLOSE(ad_lr_at(&all_decay, 3), 0.25, 1e-6, 0);
}

int main(void) {
    RUN(test_adamw_against_reference);
    RUN(test_weight_decay_mask);
    RUN(test_nonfinite_and_no_clip);
    RUN(test_bad_config);
    RUN(test_schedule);
    return test_summary();
}
