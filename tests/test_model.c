/* test_model.c: the whole decoder. The forward loss is compared with a naive
 * double-precision reference model written here from the architecture's
 * definition; the backward pass is checked against central differences of that
 * reference for EVERY parameter (NoPE, RoPE, tied embeddings, per-token
 * weights); then training behaviour: a tiny model overfits, runs are
 * bit-identical, a row's loss ignores the other rows and padding, bad batches
 * are refused, gradients accumulate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/activations.h"
#include "model/kernels_internal.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "util/rng.h"

/* ---- the reference model ----------------------------------------------------------------- */

typedef struct ref_batch {
    size_t B, T;
    const int32_t *tok, *tgt;
    const double *w; /* [B*T] loss weights */
} ref_batch;

static void ref_rmsnorm(double *y, const double *x, const double *w, size_t C, double eps) {
    double ss = 0;
    for (size_t i = 0; i < C; i++)
        ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / C + eps);
    for (size_t i = 0; i < C; i++)
        y[i] = x[i] * r * w[i];
}

/* y[O] = W[O,I] x[I] (+ y when add) */
static void ref_linear(double *y, const double *W, const double *x, size_t O, size_t I, int add) {
    for (size_t o = 0; o < O; o++) {
        double s = add ? y[o] : 0.0;
        for (size_t i = 0; i < I; i++)
            s += W[o * I + i] * x[i];
        y[o] = s;
    }
}

static void ref_rope(double *x, size_t H, size_t D, size_t pos, double theta) {
    for (size_t h = 0; h < H; h++)
        for (size_t i = 0; i < D / 2; i++) {
            double ang = (double)pos * pow(theta, -2.0 * (double)i / (double)D);
            double a = x[h * D + i], b = x[h * D + i + D / 2];
            x[h * D + i] = a * cos(ang) - b * sin(ang);
            x[h * D + i + D / 2] = b * cos(ang) + a * sin(ang);
        }
}

/* -sum w * log p(target) of the batch, with parameters p laid out like m->params. */
static double ref_loss(const ad_model *m, const double *p, const ref_batch *rb) {
    const ad_model_config *c = &m->cfg;
    size_t T = rb->T, C = c->d_model, F = c->d_ff, H = c->n_heads, D = C / H, V = c->vocab_size;
#define P(ptr) (p + ((ptr)-m->params))
    double *x = malloc(T * C * sizeof(double)), *xn = malloc(T * C * sizeof(double));
    double *q = malloc(T * C * sizeof(double)), *k = malloc(T * C * sizeof(double));
    double *v = malloc(T * C * sizeof(double)), *att = malloc(C * sizeof(double));
    double *g = malloc(F * sizeof(double)), *u = malloc(F * sizeof(double));
    double *logit = malloc(V * sizeof(double)), *s = malloc(T * sizeof(double));
    double loss = 0;
    for (size_t b = 0; b < rb->B; b++) {
        for (size_t t = 0; t < T; t++)
            memcpy(x + t * C, P(m->w.embed) + (size_t)rb->tok[b * T + t] * C, C * sizeof(double));
        for (size_t l = 0; l < c->n_layers; l++) {
            const ad_layer_weights *w = &m->w.layers[l];
            for (size_t t = 0; t < T; t++) {
                ref_rmsnorm(xn + t * C, x + t * C, P(w->attn_norm), C, c->rms_eps);
                ref_linear(q + t * C, P(w->wq), xn + t * C, C, C, 0);
                ref_linear(k + t * C, P(w->wk), xn + t * C, C, C, 0);
                ref_linear(v + t * C, P(w->wv), xn + t * C, C, C, 0);
                if (c->pos == AD_POS_ROPE) {
                    ref_rope(q + t * C, H, D, t, c->rope_theta);
                    ref_rope(k + t * C, H, D, t, c->rope_theta);
                }
            }
            for (size_t t = 0; t < T; t++) {
                for (size_t h = 0; h < H; h++) {
                    double mx = -1e300, sum = 0;
                    for (size_t j = 0; j <= t; j++) {
                        double d = 0;
                        for (size_t i = 0; i < D; i++)
                            d += q[t * C + h * D + i] * k[j * C + h * D + i];
                        s[j] = d / sqrt((double)D);
                        mx = s[j] > mx ? s[j] : mx;
                    }
                    for (size_t j = 0; j <= t; j++)
                        sum += (s[j] = exp(s[j] - mx));
                    for (size_t i = 0; i < D; i++) {
                        double a = 0;
                        for (size_t j = 0; j <= t; j++)
                            a += s[j] / sum * v[j * C + h * D + i];
                        att[h * D + i] = a;
                    }
                }
                ref_linear(xn + t * C, P(w->wo), att, C, C, 0); /* xn row t is free now */
            }
            for (size_t t = 0; t < T; t++) {
                for (size_t i = 0; i < C; i++)
                    x[t * C + i] += xn[t * C + i];
                double n2[4096];
                ref_rmsnorm(n2, x + t * C, P(w->mlp_norm), C, c->rms_eps);
                ref_linear(g, P(w->w_gate), n2, F, C, 0);
                ref_linear(u, P(w->w_up), n2, F, C, 0);
                for (size_t i = 0; i < F; i++)
                    g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
                ref_linear(x + t * C, P(w->w_down), g, C, F, 1);
            }
        }
        for (size_t t = 0; t < T; t++) {
            int32_t tg = rb->tgt[b * T + t];
            if (tg < 0) continue;
            ref_rmsnorm(xn, x + t * C, P(m->w.final_norm), C, c->rms_eps);
            ref_linear(logit, P(m->w.lm_head), xn, V, C, 0);
            double mx = -1e300;
            for (size_t i = 0; i < V; i++)
                mx = logit[i] > mx ? logit[i] : mx;
            double sum = exp(logit[0] - mx);
            for (size_t i = 1; i < V; i++)
                sum += exp(logit[i] - mx);
            loss -= rb->w[b * T + t] * (logit[tg] - mx - log(sum));
        }
    }
#undef P
    free(x), free(xn), free(q), free(k), free(v), free(att), free(g), free(u), free(logit), free(s);
    return loss;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static ad_model_config tiny_config(ad_pos_encoding pos, int tied) {
    ad_model_config c = ad_model_default_config();
    c.n_layers = 2;
    c.n_heads = 2;
    c.d_model = 16;
    c.d_ff = 32;
    c.vocab_size = 11;
    c.max_seq_len = 8;
    c.init_std = 0.3f; /* large enough that every nonlinearity is exercised */
    c.pos = pos;
    c.rope_theta = 100.0f;
    c.tie_embeddings = tied;
    c.seed = 7;
    return c;
}

/* B=3 rows of T=7: row 0 full, row 1 padded after 4 tokens, row 2 has only 2
 * targets; padding positions carry token 10 and target -1. */
enum { TB = 3, TT = 7 };
static const int32_t k_tokens[TB * TT] = {1,      4, 2, 7, 3, 9,  5, /**/ 1, 3, 3, 8, 10, 10, 10,
                                          /**/ 1, 6, 2, 5, 0, 10, 10};
static const int32_t k_targets[TB * TT] = {4,       2,  7, 3, 9,  5,  0,
                                           /**/ -1, 3,  8, 0, -1, -1, -1,
                                           /**/ -1, -1, 5, 0, -1, -1, -1};

/* Checks our gradients against central differences of the reference for every
 * parameter (every 7th one under sanitizers), for the objective
 * -sum w * logp with w = token_weights * scale. */
static void grad_check(ad_model_config cfg, const float *token_weights, float scale) {
    ad_model *m;
    ad_error err;
    CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
    ad_batch b = {TB, TT, k_tokens, k_targets, NULL};
    double loss, *w = calloc(TB * TT, sizeof(double)), *ones = calloc(TB * TT, sizeof(double));
    size_t nt;
    for (size_t i = 0; i < TB * TT; i++) {
        w[i] = k_targets[i] >= 0 ? (token_weights ? token_weights[i] : 1.0f) * scale : 0.0;
        ones[i] = 1.0;
    }
    CHECK(ad_model_forward(m, &b, &loss, &nt, &err) == AD_OK);
    CHECK(nt == 12);
    double *p = malloc(m->n_params * sizeof(double));
    for (size_t i = 0; i < m->n_params; i++)
        p[i] = m->params[i];
    ref_batch rb = {TB, TT, k_tokens, k_targets, ones};
    CHECK_CLOSE(loss, ref_loss(m, p, &rb), 1e-5, 1e-6);

    ad_model_zero_grad(m);
    ad_model_backward(m, token_weights, scale);
    rb.w = w;
    size_t step = test_quick() ? 7 : 1, n_bad = 0;
    for (size_t t = 0; t < m->n_tensors; t++) {
        const ad_tensor_info *ti = &m->tensors[t];
        double worst = 0;
        size_t at = 0;
        for (size_t j = ti->offset; j < ti->offset + ti->numel; j += step) {
            const double h = 1e-6;
            double keep = p[j];
            p[j] = keep + h;
            double lp = ref_loss(m, p, &rb);
            p[j] = keep - h;
            double lm = ref_loss(m, p, &rb);
            p[j] = keep;
            double want = (lp - lm) / (2 * h), got = m->grads[j];
            double e = fabs(got - want) / (1e-5 * fabs(scale) + 2e-3 * fabs(want));
            if (!(e <= worst)) worst = e, at = j - ti->offset;
        }
        if (!(worst <= 1.0)) {
            n_bad++;
            fprintf(stderr, "  gradient of %s is off: worst %.3g x tolerance at entry %zu\n",
                    ti->name, worst, at);
        }
    }
    CHECK(n_bad == 0);
    /* gradients accumulate: a second backward doubles them */
    float *g1 = malloc(m->n_params * sizeof(float));
    memcpy(g1, m->grads, m->n_params * sizeof(float));
    ad_model_backward(m, token_weights, scale);
    float gmax = 0.0f;
    for (size_t i = 0; i < m->n_params; i++)
        gmax = fmaxf(gmax, fabsf(g1[i]));
    int doubled = 1;
    for (size_t i = 0; i < m->n_params; i++)
        if (fabsf(m->grads[i] - 2 * g1[i]) > 1e-5f * fabsf(g1[i]) + 1e-6f * gmax) doubled = 0;
    CHECK(doubled);
    free(g1), free(p), free(w), free(ones);
    ad_model_free(m);
}

static const float k_weights[TB * TT] = {0.5f, 1, 2, -1,     0.25f, 3,    1,     /**/ 9, 1, 0.5f, 2,
                                         9,    9, 9, /**/ 9, 9,     1.5f, -0.5f, 9,      9, 9};

static void test_grad_nope(void) {
    grad_check(tiny_config(AD_POS_NONE, 0), NULL, 1.0f / 12);
}

static void test_grad_rope(void) {
    grad_check(tiny_config(AD_POS_ROPE, 0), k_weights, 1.0f);
}

static void test_grad_tied(void) {
    grad_check(tiny_config(AD_POS_ROPE, 1), k_weights, 0.5f);
    grad_check(tiny_config(AD_POS_NONE, 1), NULL, 1.0f);
}

/* The same checks on the portable kernels (the AVX2 machines' path). */
static void test_grad_portable(void) {
    int prev = ad_kernels_force_avx512(0);
    grad_check(tiny_config(AD_POS_ROPE, 1), k_weights, 0.5f);
    grad_check(tiny_config(AD_POS_NONE, 0), NULL, 1.0f / 12);
    ad_kernels_force_avx512(prev);
}

/* token_weights all 1 with scale s == no token weights with scale s */
static void test_weights_path(void) {
    ad_model_config cfg = tiny_config(AD_POS_NONE, 0);
    ad_model *m;
    ad_error err;
    CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
    ad_batch b = {TB, TT, k_tokens, k_targets, NULL};
    float ones[TB * TT], *g1 = malloc(m->n_params * sizeof(float));
    for (size_t i = 0; i < TB * TT; i++)
        ones[i] = 1.0f;
    CHECK(ad_model_forward(m, &b, NULL, NULL, &err) == AD_OK);
    ad_model_zero_grad(m);
    ad_model_backward(m, NULL, 0.3f);
    memcpy(g1, m->grads, m->n_params * sizeof(float));
    ad_model_zero_grad(m);
    ad_model_backward(m, ones, 0.3f);
    CHECK(memcmp(g1, m->grads, m->n_params * sizeof(float)) == 0);
    /* zero weights give zero gradients */
    float z[TB * TT] = {0};
    ad_model_zero_grad(m);
    ad_model_backward(m, z, 1.0f);
    int all_zero = 1;
    for (size_t i = 0; i < m->n_params; i++)
        if (m->grads[i] != 0.0f) all_zero = 0;
    CHECK(all_zero);
    free(g1);
    ad_model_free(m);
}

/* ---- training behaviour ------------------------------------------------------------------ */

enum { NSEQ = 32, ST = 9 };

/* 32 sequences: a unique (a, b) pair then 7 random tokens; rows 8k+7 are cut
 * short (padding). No loss on predicting b from a (ambiguous). */
static void make_data(int32_t *tok, int32_t *tgt) {
    ad_rng r;
    ad_rng_seed(&r, 99);
    for (size_t i = 0; i < NSEQ; i++) {
        size_t len = i % 8 == 7 ? 5 : ST;
        int32_t *s = tok + i * ST;
        s[0] = (int32_t)(1 + i / 8);
        s[1] = (int32_t)(1 + i % 8);
        for (size_t t = 2; t < ST; t++)
            s[t] = (int32_t)(1 + ad_rng_below(&r, 10));
        for (size_t t = 0; t < ST; t++) {
            tgt[i * ST + t] = t + 1 < len && t > 0 ? s[t + 1] : -1;
            if (t >= len) s[t] = 0;
        }
    }
}

/* Trains `steps` full-batch AdamW steps; returns the final mean loss. */
static double train(ad_model *m, size_t steps, int32_t *tok, int32_t *tgt) {
    ad_adamw opt;
    ad_error err;
    ad_adamw_config oc = ad_adamw_default_config();
    oc.weight_decay = 0.0f;
    if (ad_adamw_init(&opt, m, &oc, &err) != AD_OK) return 1e9;
    ad_lr_schedule sch = {1e-2f, steps, steps / 10, steps / 5, 0.1f};
    ad_batch b = {NSEQ, ST, tok, tgt, NULL};
    double loss = 0;
    size_t nt = 0;
    for (size_t s = 0; s < steps; s++) {
        if (ad_model_forward(m, &b, &loss, &nt, &err) != AD_OK) break;
        ad_model_zero_grad(m);
        ad_model_backward(m, NULL, 1.0f / (float)nt);
        ad_adamw_step(&opt, m, ad_lr_at(&sch, s));
    }
    ad_model_forward(m, &b, &loss, &nt, &err);
    ad_adamw_free(&opt);
    return loss / (double)nt;
}

static void test_overfit(void) {
    int32_t tok[NSEQ * ST], tgt[NSEQ * ST];
    make_data(tok, tgt);
    ad_model_config cfg = tiny_config(AD_POS_ROPE, 0);
    cfg.d_model = 32, cfg.d_ff = 64, cfg.max_seq_len = ST, cfg.init_std = 0.02f;
    ad_model *m;
    ad_error err;
    CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
    double first;
    size_t nt;
    ad_batch b = {NSEQ, ST, tok, tgt, NULL};
    CHECK(ad_model_forward(m, &b, &first, &nt, &err) == AD_OK);
    double last = train(m, 200, tok, tgt);
    printf("  overfit: mean loss %.3f -> %.4f\n", first / nt, last);
    CHECK(first / nt > 2.0);
    CHECK(last < 0.05);
    ad_model_free(m);
}

static void test_determinism(void) {
    int32_t tok[NSEQ * ST], tgt[NSEQ * ST];
    make_data(tok, tgt);
    ad_model_config cfg = tiny_config(AD_POS_NONE, 0);
    cfg.max_seq_len = ST;
    ad_model *a, *b;
    ad_error err;
    CHECK(ad_model_create(&a, &cfg, &err) == AD_OK);
    CHECK(ad_model_create(&b, &cfg, &err) == AD_OK);
    train(a, 20, tok, tgt);
    train(b, 20, tok, tgt);
    CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    ad_model_free(a);
    ad_model_free(b);
}

/* Training without stored attention weights (recomputed in the backward)
 * reaches the same bits as training with them, on the portable and the
 * AVX-512 kernels, and auto keeps them at this small shape. */
static void test_attention_recompute(void) {
    int32_t tok[NSEQ * ST], tgt[NSEQ * ST];
    make_data(tok, tgt);
    ad_model_config cfg = tiny_config(AD_POS_ROPE, 0);
    cfg.max_seq_len = ST;
    for (int avx = 0; avx < 2; avx++) {
        int prev = ad_kernels_force_avx512(avx);
        ad_model *a, *b;
        ad_error err;
        CHECK(ad_model_create(&a, &cfg, &err) == AD_OK);
        CHECK(ad_model_create(&b, &cfg, &err) == AD_OK);
        b->attention = AD_ATTENTION_RECOMPUTE;
        train(a, 10, tok, tgt);
        train(b, 10, tok, tgt);
        CHECK_MSG(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0,
                  "avx512 %d: recomputed attention trains to the same bits", avx);
        CHECK(a->acts->keep_probs == 1 && b->acts->keep_probs == 0 &&
              b->acts->layers[0].probs == NULL);
        ad_model_free(a);
        ad_model_free(b);
        ad_kernels_force_avx512(prev);
    }
}

/* The three rows of k_tokens packed into one row of 16 (lengths 7, 4 and 5:
 * the padding dropped), each attending only within itself: the same
 * log-probs and, summed over the same targets, the same gradients as the
 * padded batch, to float rounding (sums run in another order), for NoPE and
 * RoPE (positions restart per sequence), on both kernel paths. */
static void test_packed_rows(void) {
    enum { PT = 16 };
    const size_t lens[TB] = {7, 4, 5}, offs[TB] = {0, 7, 11};
    int32_t tok[PT], tgt[PT], seg[PT];
    for (size_t r = 0; r < TB; r++)
        for (size_t t = 0; t < lens[r]; t++) {
            tok[offs[r] + t] = k_tokens[r * TT + t];
            tgt[offs[r] + t] = k_targets[r * TT + t];
            seg[offs[r] + t] = (int32_t)offs[r];
        }
    for (int pos = 0; pos < 2; pos++)
        for (int avx = 0; avx < 2; avx++) {
            int prev = ad_kernels_force_avx512(avx);
            ad_model_config cfg = tiny_config(pos ? AD_POS_ROPE : AD_POS_NONE, 0);
            cfg.max_seq_len = PT;
            ad_model *m;
            ad_error err;
            CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
            float *lp = malloc(TB * TT * sizeof(float)), *g = malloc(m->n_params * sizeof(float));
            ad_batch padded = {TB, TT, k_tokens, k_targets, NULL}, packed = {1, PT, tok, tgt, seg};
            double l1, l2;
            size_t n1, n2;
            CHECK(ad_model_forward(m, &padded, &l1, &n1, &err) == AD_OK);
            memcpy(lp, ad_model_target_logprobs(m), TB * TT * sizeof(float));
            ad_model_zero_grad(m);
            ad_model_backward(m, NULL, 1.0f);
            memcpy(g, m->grads, m->n_params * sizeof(float));
            CHECK(ad_model_forward(m, &packed, &l2, &n2, &err) == AD_OK);
            CHECK(n1 == n2);
            CHECK_CLOSE(l2, l1, 1e-6, 1e-6);
            const float *lq = ad_model_target_logprobs(m);
            for (size_t r = 0; r < TB; r++)
                for (size_t t = 0; t < lens[r]; t++)
                    CHECK_CLOSE(lq[offs[r] + t], lp[r * TT + t], 1e-5, 1e-6);
            ad_model_zero_grad(m);
            ad_model_backward(m, NULL, 1.0f);
            double worst = 0;
            for (size_t i = 0; i < m->n_params; i++) {
                double e = fabs(m->grads[i] - g[i]) / (1e-6 + 1e-4 * fabs(g[i]));
                worst = e > worst ? e : worst;
            }
            CHECK_MSG(worst <= 1.0, "pos %d avx %d: packed gradients off by %.3g x tolerance", pos,
                      avx, worst);
            free(lp);
            free(g);
            ad_model_free(m);
            ad_kernels_force_avx512(prev);
        }
    int32_t bad[PT];
    memcpy(bad, seg, sizeof bad);
    bad[3] = 4; /* a start past its own position */
    ad_model_config cfg = tiny_config(AD_POS_NONE, 0);
    cfg.max_seq_len = PT;
    ad_model *m;
    ad_error err;
    CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
    ad_batch b = {1, PT, tok, tgt, bad};
    CHECK(ad_model_forward(m, &b, NULL, NULL, &err) == AD_ERR &&
          strstr(err.msg, "sequence start 4 at row 0 position 3"));
    memcpy(bad, seg, sizeof bad);
    bad[8] = 0; /* back into the first sequence after the second began at 7 */
    CHECK(ad_model_forward(m, &b, NULL, NULL, &err) == AD_ERR &&
          strstr(err.msg, "sequence start 0 at row 0 position 8 neither starts"));
    ad_model_free(m);
}

/* A row's log-probs are the same alone (unpadded) and inside a bigger padded
 * batch, before and after the activations grow. */
static void test_padding_invariance(void) {
    ad_model_config cfg = tiny_config(AD_POS_ROPE, 0);
    cfg.max_seq_len = 40;
    ad_model *m;
    ad_error err;
    CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
    int32_t row[4] = {1, 5, 2, 8}, rtg[4] = {5, 2, 8, 3};
    ad_batch one = {1, 4, row, rtg, NULL};
    double l1, l2, l3;
    size_t n1, n2;
    CHECK(ad_model_forward(m, &one, &l1, &n1, &err) == AD_OK);
    float alone[4];
    memcpy(alone, ad_model_target_logprobs(m), sizeof alone);
    size_t B = 24, T = 40;
    int32_t *tok = malloc(B * T * sizeof(int32_t)), *tgt = malloc(B * T * sizeof(int32_t));
    for (size_t i = 0; i < B * T; i++)
        tok[i] = (int32_t)(i * 7 % 11), tgt[i] = (int32_t)(i % 11);
    size_t r = 13;
    for (size_t t = 0; t < T; t++) {
        tok[r * T + t] = t < 4 ? row[t] : 10;
        tgt[r * T + t] = t < 4 ? rtg[t] : -1;
    }
    ad_batch big = {B, T, tok, tgt, NULL};
    CHECK(ad_model_forward(m, &big, &l2, &n2, &err) == AD_OK);
    const float *lp = ad_model_target_logprobs(m);
    for (size_t t = 0; t < 4; t++)
        CHECK_CLOSE(lp[r * T + t], alone[t], 1e-5, 1e-6);
    CHECK(lp[r * T + 5] == 0.0f);
    CHECK(ad_model_forward(m, &one, &l3, &n1, &err) == AD_OK); /* reuses the grown buffers */
    CHECK_CLOSE(l3, l1, 1e-6, 0);
    free(tok), free(tgt);
    ad_model_free(m);
}

static void test_bad_batches(void) {
    ad_model_config cfg = tiny_config(AD_POS_NONE, 0);
    ad_model *m;
    ad_error err;
    CHECK(ad_model_create(&m, &cfg, &err) == AD_OK);
    CHECK(ad_model_logits(m) == NULL);
    ad_model_backward(m, NULL, 1.0f); /* no forward yet: nothing happens */
    int32_t tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, tgt[9] = {2, 3, 4, 5, 6, 7, 8, 9, 1};
    ad_batch ok = {1, 8, tok, tgt, NULL};
    double loss, loss2;
    size_t nt;
    CHECK(ad_model_forward(m, &ok, &loss, &nt, &err) == AD_OK);
    ad_batch too_long = {1, 9, tok, tgt, NULL};
    CHECK(ad_model_forward(m, &too_long, &loss2, &nt, &err) == AD_ERR);
    CHECK(strstr(err.msg, "max_seq_len") != NULL);
    tok[3] = 11;
    CHECK(ad_model_forward(m, &ok, &loss2, &nt, &err) == AD_ERR);
    CHECK(strstr(err.msg, "token 11") != NULL);
    tok[3] = 4;
    tgt[2] = -2;
    CHECK(ad_model_forward(m, &ok, &loss2, &nt, &err) == AD_ERR);
    tgt[2] = 11;
    CHECK(ad_model_forward(m, &ok, &loss2, &nt, &err) == AD_ERR);
    ad_batch empty = {0, 8, tok, tgt, NULL};
    CHECK(ad_model_forward(m, &empty, &loss2, &nt, &err) == AD_ERR);
    /* the last good forward is still there */
    CHECK(ad_model_logits(m) != NULL);
    const float *lp = ad_model_target_logprobs(m);
    double s = 0;
    for (size_t i = 0; i < 8; i++)
        s -= lp[i];
    CHECK_CLOSE(s, loss, 1e-6, 0);
    ad_model_free(m);
}

int main(void) {
    RUN(test_grad_nope);
    RUN(test_grad_rope);
    RUN(test_grad_tied);
    RUN(test_grad_portable);
    RUN(test_weights_path);
    RUN(test_overfit);
    RUN(test_determinism);
    RUN(test_attention_recompute);
    RUN(test_packed_rows);
    RUN(test_padding_invariance);
    RUN(test_bad_batches);
    return test_summary();
}
