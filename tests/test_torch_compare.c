/* test_torch_compare.c: the engine against PyTorch.
 *
 * tests/torch_reference.py built the same architecture in PyTorch, in float64,
 * for three variants (NoPE untied, RoPE untied, NoPE tied) and committed under
 * tests/fixtures/torch/<variant>/ a checkpoint (ckpt/) and the expected results
 * (expected.safetensors): logits, loss, the gradient of the mean loss for every
 * tensor, and the mean loss and pre-clipping gradient norm of 10 AdamW steps.
 * This test loads each checkpoint with ad_checkpoint_load, runs the engine on
 * the same batch and compares, in fp32, with relative tolerance 1e-4:
 *   - per tensor: the norm-wise relative error ||got - want|| / ||want||, and
 *     every element within 1e-4 * (|want| + max|want|);
 *   - the loss sum and every AdamW-step loss and gradient norm, relatively.
 * It prints the worst errors it saw. Two negative controls show that the
 * comparison has teeth: RoPE switched off, or one norm weight nudged by 0.1%,
 * must both be rejected.
 *
 * Not for: finite-difference gradient checks (test_model_grad.c) or anything
 * that needs PyTorch at test time. Run from the repository root, or set
 * AD_TORCH_FIXTURES to the fixtures folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/checkpoint.h"
#include "model/optimizer.h"
#include "model/safetensors.h"

#define RTOL 1e-4
#define N_STEPS 10

static const char *const VARIANTS[] = {"nope_untied", "rope_untied", "nope_tied"};
#define N_VARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

/* Worst errors over the whole run, printed at the end. */
static double worst_logits, worst_grad, worst_loss, worst_step_loss, worst_norm;
static char worst_grad_name[160];

static const char *fixtures_dir(void) {
    const char *d = getenv("AD_TORCH_FIXTURES");
    return d && *d ? d : "tests/fixtures/torch";
}

/* How far got[n] is from want[n]: norm-wise relative error, and the largest
 * elementwise excess ratio |got - want| / (|want| + max|want|) (<= RTOL passes). */
typedef struct cmp_result {
    double rel;  /* ||got - want|| / ||want|| */
    double elem; /* max_i |got_i - want_i| / (|want_i| + max|want|) */
} cmp_result;

static cmp_result compare(const float *got, const float *want, size_t n) {
    double diff2 = 0, want2 = 0, want_max = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        diff2 += d * d;
        want2 += (double)want[i] * want[i];
        if (fabs(want[i]) > want_max) want_max = fabs(want[i]);
    }
    cmp_result r = {0, 0};
    r.rel = want2 > 0 ? sqrt(diff2 / want2) : sqrt(diff2);
    for (size_t i = 0; i < n; i++) {
        double scale = fabs(want[i]) + want_max;
        double e = fabs((double)got[i] - want[i]) / (scale > 0 ? scale : 1.0);
        if (e > r.elem || e != e) r.elem = e;
    }
    return r;
}

static int cmp_ok(cmp_result r) {
    return r.rel <= RTOL && r.elem <= RTOL;
}

static double rel_diff(double got, double want) {
    return fabs(got - want) / fmax(fabs(want), 1e-30);
}

/* One variant: its loaded model, vocab and expected results. */
typedef struct fixture {
    char name[64];
    ad_model *m;
    ad_vocab vocab;
    ad_safetensors *want;
    size_t B, T, V;
    int32_t *tokens, *targets;
} fixture;

static void fixture_free(fixture *f) {
    ad_model_free(f->m);
    ad_safetensors_close(f->want);
    free(f->tokens);
    free(f->targets);
    memset(f, 0, sizeof *f);
}

/* Loads variant `name`; on failure records a test failure and returns AD_ERR. */
static int fixture_load(fixture *f, const char *name) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    char path[1024];
    ad_error err = {{0}};
    snprintf(path, sizeof path, "%s/%s/ckpt", fixtures_dir(), name);
    int rc = ad_checkpoint_load(path, &f->m, &f->vocab, NULL, NULL, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", path, err.msg);
    if (rc != AD_OK) return AD_ERR;
    snprintf(path, sizeof path, "%s/%s/expected.safetensors", fixtures_dir(), name);
    rc = ad_safetensors_open(&f->want, path, 0, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (rc != AD_OK) return AD_ERR;
    const ad_safetensors_tensor *t = ad_safetensors_find(f->want, "tokens");
    CHECK_MSG(t && t->ndim == 2, "%s: no [B, T] tokens tensor", path);
    if (!t || t->ndim != 2) return AD_ERR;
    f->B = t->shape[0];
    f->T = t->shape[1];
    f->V = f->m->cfg.vocab_size;
    f->tokens = malloc(f->B * f->T * sizeof(int32_t));
    f->targets = malloc(f->B * f->T * sizeof(int32_t));
    if (!f->tokens || !f->targets) return AD_ERR;
    size_t shape[2] = {f->B, f->T};
    rc = ad_safetensors_read_i32(f->want, "tokens", 2, shape, f->tokens, &err);
    if (rc == AD_OK) rc = ad_safetensors_read_i32(f->want, "targets", 2, shape, f->targets, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    return rc;
}

/* Reads an expected F32 tensor of n elements (any shape) into a fresh buffer. */
static float *want_f32(const fixture *f, const char *name, size_t n) {
    const ad_safetensors_tensor *t = ad_safetensors_find(f->want, name);
    CHECK_MSG(t && t->dtype == AD_DTYPE_F32 && t->numel == n,
              "%s: expected tensor '%s' with %zu F32 elements", f->name, name, n);
    if (!t || t->dtype != AD_DTYPE_F32 || t->numel != n) return NULL;
    float *out = malloc(n * sizeof(float));
    ad_error err = {{0}};
    if (out && ad_safetensors_read_f32(f->want, name, t->ndim, t->shape, out, &err) != AD_OK) {
        CHECK_MSG(0, "%s", err.msg);
        free(out);
        return NULL;
    }
    return out;
}

/* A number stored in the expected file's metadata (the AdamW settings). */
static double want_meta(const fixture *f, const char *key) {
    const char *s = ad_safetensors_metadata(f->want, key);
    CHECK_MSG(s != NULL, "%s: metadata key '%s' missing", f->name, key);
    return s ? strtod(s, NULL) : NAN;
}

/* Forward + backward of the mean loss on the fixture's batch; fills loss and count. */
static int run_forward_backward(fixture *f, double *loss_sum, size_t *count) {
    ad_batch b = {f->B, f->T, f->tokens, f->targets, NULL};
    ad_error err = {{0}};
    ad_model_zero_grad(f->m);
    int rc = ad_model_forward(f->m, &b, loss_sum, count, &err);
    CHECK_MSG(rc == AD_OK, "%s: forward: %s", f->name, err.msg);
    if (rc != AD_OK || *count == 0) return AD_ERR;
    ad_model_backward(f->m, NULL, (float)(1.0 / (double)*count));
    return AD_OK;
}

/* Compares logits, loss and every gradient with the fixture; returns 1 when all
 * are within tolerance. `quiet` suppresses failure records (negative controls). */
static int compare_forward_backward(fixture *f, int quiet) {
    double loss_sum = 0;
    size_t count = 0;
    if (run_forward_backward(f, &loss_sum, &count) != AD_OK) return 0;
    int all_ok = 1;

    size_t nl = f->B * f->T * f->V;
    float *logits = want_f32(f, "logits", nl);
    float *want_loss = want_f32(f, "loss_sum", 1);
    int32_t want_count = -1;
    size_t one = 1;
    ad_error err = {{0}};
    if (ad_safetensors_read_i32(f->want, "target_count", 1, &one, &want_count, &err) != AD_OK)
        CHECK_MSG(0, "%s", err.msg);
    if (!logits || !want_loss) {
        free(logits);
        free(want_loss);
        return 0;
    }
    cmp_result r = compare(ad_model_logits(f->m), logits, nl);
    double lr = rel_diff(loss_sum, want_loss[0]);
    if (!quiet) {
        CHECK_MSG(cmp_ok(r), "%s: logits rel %.3g elem %.3g", f->name, r.rel, r.elem);
        CHECK_MSG(lr <= RTOL, "%s: loss sum %.9g, PyTorch %.9g", f->name, loss_sum, want_loss[0]);
        CHECK_MSG((int32_t)count == want_count, "%s: %zu targets, PyTorch %d", f->name, count,
                  (int)want_count);
        worst_logits = fmax(worst_logits, fmax(r.rel, r.elem));
        worst_loss = fmax(worst_loss, lr);
    }
    all_ok &= cmp_ok(r) && lr <= RTOL && (int32_t)count == want_count;
    free(logits);
    free(want_loss);

    /* Every tensor of the model has its gradient in the fixture, and vice versa. */
    size_t n_grads = 0;
    for (size_t i = 0; i < ad_safetensors_count(f->want); i++)
        n_grads += strncmp(ad_safetensors_at(f->want, i)->name, "grad.", 5) == 0;
    if (!quiet)
        CHECK_MSG(n_grads == f->m->n_tensors, "%s: %zu gradients in the fixture, %zu tensors",
                  f->name, n_grads, f->m->n_tensors);
    all_ok &= n_grads == f->m->n_tensors;
    for (size_t i = 0; i < f->m->n_tensors; i++) {
        const ad_tensor_info *t = &f->m->tensors[i];
        char name[160];
        snprintf(name, sizeof name, "grad.%s", t->name);
        float *want = want_f32(f, name, t->numel);
        if (!want) {
            all_ok = 0;
            continue;
        }
        r = compare(f->m->grads + t->offset, want, t->numel);
        if (!quiet) {
            CHECK_MSG(cmp_ok(r), "%s: %s rel %.3g elem %.3g", f->name, name, r.rel, r.elem);
            if (fmax(r.rel, r.elem) > worst_grad) {
                worst_grad = fmax(r.rel, r.elem);
                snprintf(worst_grad_name, sizeof worst_grad_name, "%s %s", f->name, t->name);
            }
        }
        all_ok &= cmp_ok(r);
        free(want);
    }
    return all_ok;
}

static void test_forward_backward(void) {
    for (size_t v = 0; v < N_VARIANTS; v++) {
        fixture f;
        if (fixture_load(&f, VARIANTS[v]) == AD_OK) {
            /* The checkpoint loader must have picked up the variant's shape. */
            int rope = strstr(VARIANTS[v], "rope") != NULL;
            int tied = strstr(VARIANTS[v], "tied") && !strstr(VARIANTS[v], "untied");
            CHECK_MSG(f.m->cfg.pos == (rope ? AD_POS_ROPE : AD_POS_NONE), "%s: position encoding",
                      f.name);
            CHECK_MSG(f.m->cfg.tie_embeddings == tied, "%s: tie_embeddings", f.name);
            CHECK(f.vocab.size == f.m->cfg.vocab_size);
            CHECK(compare_forward_backward(&f, 0));
        }
        fixture_free(&f);
    }
}

/* 10 steps: forward, backward of the mean loss, clip + AdamW; the loss and the
 * pre-clipping gradient norm of each step against PyTorch's. */
static void test_adamw_steps(void) {
    for (size_t v = 0; v < N_VARIANTS; v++) {
        fixture f;
        if (fixture_load(&f, VARIANTS[v]) != AD_OK) {
            fixture_free(&f);
            continue;
        }
        float *losses = want_f32(&f, "adamw.loss", N_STEPS);
        float *norms = want_f32(&f, "adamw.grad_norm", N_STEPS);
        ad_adamw_config oc = ad_adamw_default_config();
        oc.beta1 = (float)want_meta(&f, "beta1");
        oc.beta2 = (float)want_meta(&f, "beta2");
        oc.eps = (float)want_meta(&f, "eps");
        oc.weight_decay = (float)want_meta(&f, "weight_decay");
        oc.grad_clip = (float)want_meta(&f, "grad_clip");
        float lr = (float)want_meta(&f, "lr");
        CHECK((size_t)want_meta(&f, "steps") == N_STEPS);
        ad_adamw opt;
        ad_error err = {{0}};
        int rc = ad_adamw_init(&opt, f.m, &oc, &err);
        CHECK_MSG(rc == AD_OK, "%s", err.msg);
        for (size_t s = 0; rc == AD_OK && losses && norms && s < N_STEPS; s++) {
            double loss_sum = 0;
            size_t count = 0;
            if (run_forward_backward(&f, &loss_sum, &count) != AD_OK) break;
            float norm = ad_adamw_step(&opt, f.m, lr);
            double le = rel_diff(loss_sum / (double)count, losses[s]);
            double ne = rel_diff(norm, norms[s]);
            CHECK_MSG(le <= RTOL, "%s step %zu: loss %.9g, PyTorch %.9g", f.name, s,
                      loss_sum / (double)count, losses[s]);
            CHECK_MSG(ne <= RTOL, "%s step %zu: grad norm %.9g, PyTorch %.9g", f.name, s, norm,
                      norms[s]);
            worst_step_loss = fmax(worst_step_loss, le);
            worst_norm = fmax(worst_norm, ne);
        }
        CHECK(rc != AD_OK || opt.step == N_STEPS);
        /* The losses must actually move, or the comparison proves little. */
        if (losses) CHECK(fabs(losses[N_STEPS - 1] - losses[0]) > 100 * RTOL * losses[0]);
        if (rc == AD_OK) ad_adamw_free(&opt);
        free(losses);
        free(norms);
        fixture_free(&f);
    }
}

/* The comparison must reject a model that is slightly wrong. */
static void test_negative_controls(void) {
    fixture f;
    if (fixture_load(&f, "rope_untied") == AD_OK) {
        f.m->cfg.pos = AD_POS_NONE; /* forget RoPE */
        CHECK_MSG(!compare_forward_backward(&f, 1), "RoPE switched off went unnoticed");
    }
    fixture_free(&f);
    if (fixture_load(&f, "nope_tied") == AD_OK) {
        f.m->w.layers[f.m->cfg.n_layers - 1].mlp_norm[3] *= 1.001f;
        CHECK_MSG(!compare_forward_backward(&f, 1), "a norm weight off by 0.1%% went unnoticed");
    }
    fixture_free(&f);
}

int main(void) {
    RUN(test_forward_backward);
    RUN(test_adamw_steps);
    RUN(test_negative_controls);
    printf("worst relative errors vs PyTorch float64: logits %.2e, loss %.2e, gradient %.2e "
           "(%s), AdamW step loss %.2e, grad norm %.2e\n",
           worst_logits, worst_loss, worst_grad, worst_grad_name, worst_step_loss, worst_norm);
    return test_summary();
}
