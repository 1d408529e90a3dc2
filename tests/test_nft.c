/* test_nft.c: the NFT objective (negative-aware fine-tuning, Chen et al.
 * 2025; src/loop/objective_nft.c):
 *
 *   - ad_nft_token_loss at hand-computed points (right and wrong samples, the
 *     value clip with its pass-through gradient, the log-ratio cap, the clamp
 *     of r_q, the three prompt weights, r_q = 0 and 1) and against central
 *     differences wherever the value is smooth;
 *   - on-policy (R = 1) its gradient is GRPO's with Dr. GRPO's binary
 *     advantages (1 - r for a right sample, -r for a wrong one), per token
 *     and for a whole step;
 *   - the step's loss, statistics and EVERY parameter gradient against
 *     PyTorch (tests/torch_nft_reference.py wrote tests/fixtures/torch_nft/)
 *     for four variants at several micro-batch sizes, with negative controls;
 *   - with no wrong samples and uniform prompt weights it is SFT's gradient;
 *   - samples of prompts with r_q = 0 or 1 change nothing (bit for bit), and
 *     a batch of only those is a zero-gradient step;
 *   - a few dozen steps raise a right sample's log-prob and lower a wrong one's;
 *   - the registry, the parameters and every refusal.
 *
 * Gradients are read from the model's gradient buffer after a step at
 * learning rate 0 without clipping. Run from the repository root, or set
 * AD_TORCH_NFT_FIXTURES to the fixture folder. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "objective_testlib.h"
#include "loop/objective.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

#define RTOL 1e-4 /* as test_grpo.c */

static ad_objective_params nft_params(double eps, double neg_weight, ad_nft_weight w) {
    ad_objective_params p = ad_objective_default_params();
    p.nft_eps = eps;
    p.nft_neg_weight = neg_weight;
    p.nft_weight = w;
    return p;
}

/* The token loss at logp - old_logp = x (old_logp -1). */
static double tok(const ad_objective_params *p, double x, double r, int pos, double *d, int *clip) {
    return ad_nft_token_loss(p, x - 1.0, -1.0, r, pos, d, clip);
}

/* ---- the token loss ------------------------------------------------------- */

static void test_token_loss_values(void) {
    ad_objective_params p = nft_params(1.0, 1.0, AD_NFT_WEIGHT_DR_GRPO);
    double d = 0, R;
    int c = -1;
    /* right, r 0.5: -(1 - r) x, d = -(1 - r) */
    CHECK_CLOSE(tok(&p, 0.3, 0.5, 1, &d, &c), -0.15, 1e-12, 1e-15);
    CHECK(d == -0.5 && c == 0);
    /* wrong, R < 1: q = (1 - R / 2) / (1 / 2) = 2 - R > 1, unclipped */
    R = exp(-0.4);
    CHECK_CLOSE(tok(&p, -0.4, 0.5, 0, &d, &c), -0.5 * log(2 - R), 1e-12, 1e-15);
    CHECK_CLOSE(d, 0.5 * R / (2 - R), 1e-12, 1e-15);
    CHECK(c == 0);
    /* wrong, R > 1: q < eps = 1, the value floored at log 1 = 0, the gradient
     * passed through divided by eps */
    R = exp(0.35);
    CHECK(tok(&p, 0.35, 0.5, 0, &d, &c) == 0.0);
    CHECK_CLOSE(d, 0.5 * R, 1e-12, 1e-15);
    CHECK(c == 1);
    /* ... unclipped with eps 0.5 (q = 0.58) */
    ad_objective_params h = nft_params(0.5, 1.0, AD_NFT_WEIGHT_DR_GRPO);
    CHECK_CLOSE(tok(&h, 0.35, 0.5, 0, &d, &c), -0.5 * log(2 - R), 1e-12, 1e-15);
    CHECK_CLOSE(d, 0.5 * R / (2 - R), 1e-12, 1e-15);
    CHECK(c == 0);
    /* wrong, 1 - r R < 0 (r 0.25, R e^2): floored, gradient r R / (1 - r) * w / eps */
    R = exp(2.0);
    CHECK(tok(&p, 2.0, 0.25, 0, &d, &c) == 0.0);
    CHECK_CLOSE(d, 0.75 * (0.25 * R / 0.75), 1e-12, 1e-15);
    CHECK(c == 1);
    /* past the log-ratio cap: the value of x = 10, no gradient, counted clipped */
    CHECK_CLOSE(tok(&p, 10.5, 0.5, 1, &d, &c), -0.5 * 10.0, 1e-12, 1e-15);
    CHECK(d == 0.0 && c == 1);
    CHECK(tok(&p, 10.5, 0.5, 0, &d, &c) == 0.0 && d == 0.0 && c == 1);
    /* r_q = 0 and 1: no signal */
    CHECK(tok(&p, 0.3, 1.0, 1, &d, &c) == 0.0 && d == 0.0 && c == 0);
    CHECK(tok(&p, -0.4, 0.0, 0, &d, &c) == 0.0 && d == 0.0 && c == 0);
    /* r_q clamped to [0.02, 0.98]: weights 1 - 0.98 and 1 - 0.02 */
    tok(&p, 0.1, 0.99, 1, &d, &c);
    CHECK_CLOSE(d, -0.02, 1e-12, 1e-15);
    tok(&p, 0.0, 0.01, 0, &d, &c);
    CHECK_CLOSE(d, 0.98 * 0.02 / 0.98, 1e-12, 1e-15); /* on-policy: w r / (1 - r) */
    /* grpo's weight sqrt((1 - r) / r) and none's 1; neg_weight scales the wrong term */
    ad_objective_params g = nft_params(1.0, 1.0, AD_NFT_WEIGHT_GRPO);
    tok(&g, 0.2, 0.25, 1, &d, &c);
    CHECK_CLOSE(d, -sqrt(3.0), 1e-12, 1e-15);
    ad_objective_params n = nft_params(1.0, 0.5, AD_NFT_WEIGHT_NONE);
    R = exp(-0.4);
    CHECK_CLOSE(tok(&n, -0.4, 0.5, 0, &d, &c), -0.5 * log(2 - R), 1e-12, 1e-15);
    CHECK_CLOSE(d, 0.5 * R / (2 - R), 1e-12, 1e-15);
    tok(&n, 0.2, 0.5, 1, &d, &c);
    CHECK(d == -1.0);
    /* NULL outputs are allowed */
    CHECK(tok(&p, 0.0, 0.5, 1, NULL, NULL) == 0.0);
}

/* Central differences of the value match d_logp wherever the value is
 * smooth; where the floor clips it (q < eps), the value is flat and d_logp is
 * the pass-through gradient w nw r R / ((1 - r) eps). */
static void test_token_loss_derivatives(void) {
    const double rates[] = {0.1, 0.25, 0.5, 0.75, 0.9}, epss[] = {1.0, 0.5, 0.2};
    const ad_nft_weight ws[] = {AD_NFT_WEIGHT_DR_GRPO, AD_NFT_WEIGHT_GRPO, AD_NFT_WEIGHT_NONE};
    size_t smooth = 0, flat = 0;
    double worst = 0;
    for (size_t a = 0; a < 5; a++)
        for (size_t e = 0; e < 3; e++)
            for (size_t k = 0; k < 3; k++)
                for (int pos = 0; pos < 2; pos++)
                    for (double x = -2.0; x <= 2.0; x += 0.125) {
                        ad_objective_params p = nft_params(epss[e], 0.7, ws[k]);
                        double r = rates[a], R = exp(x), q = (1 - r * R) / (1 - r), d = 0;
                        if (!pos && fabs(q - epss[e]) < 1e-3) continue; /* the kink */
                        const double hh = 1e-6;
                        double fd = (tok(&p, x + hh, r, pos, NULL, NULL) -
                                     tok(&p, x - hh, r, pos, NULL, NULL)) /
                                    (2 * hh);
                        int c = 0;
                        tok(&p, x, r, pos, &d, &c);
                        if (!pos && q < epss[e]) {
                            double w = k == 0 ? 1 - r : k == 1 ? sqrt((1 - r) / r) : 1.0;
                            CHECK(c == 1 && fabs(fd) < 1e-9);
                            CHECK_CLOSE(d, 0.7 * w * r * R / ((1 - r) * epss[e]), 1e-12, 1e-15);
                            flat++;
                            continue;
                        }
                        double err = fabs(d - fd) / (1.0 + fabs(d));
                        CHECK_MSG(err < 1e-6, "r %g eps %g w %zu pos %d x %g: d %.9g fd %.9g", r,
                                  epss[e], k, pos, x, d, fd);
                        worst = fmax(worst, err);
                        smooth++;
                    }
    CHECK(smooth > 500 && flat > 100);
    printf("  %zu smooth points (worst relative error %.2e vs central differences), %zu clipped\n",
           smooth, worst, flat);
}

/* ---- on-policy: NFT is GRPO with binary advantages ------------------------ */

/* At R = 1 the token gradient is -A with A = 1 - r (right) or -r (wrong)
 * under dr_grpo; whole steps of nft and grpo then have the same gradient. */
static void test_on_policy_is_grpo(void) {
    ad_objective_params p = nft_params(1.0, 1.0, AD_NFT_WEIGHT_DR_GRPO), g;
    for (double r = 0.05; r < 1.0; r += 0.1) {
        double d = 0, dg = 0;
        ad_nft_token_loss(&p, -2.0, -2.0, r, 1, &d, NULL);
        ad_grpo_token_loss(&p, -2.0, -2.0, 0, 1.0 - r, &dg, NULL);
        CHECK_CLOSE(d, dg, 1e-12, 1e-15);
        ad_nft_token_loss(&p, -2.0, -2.0, r, 0, &d, NULL);
        ad_grpo_token_loss(&p, -2.0, -2.0, 0, -r, &dg, NULL);
        CHECK_CLOSE(d, dg, 1e-12, 1e-15);
    }
    ad_model *m = toy_model(31);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 3) != AD_OK) {
        ad_model_free(m);
        return;
    }
    const int32_t seqs[6][7] = {{1, 3, 4, 5, 6, 2}, {1, 3, 4, 7, 8, 9, 2}, {1, 3, 4, 10, 2},
                                {1, 5, 6, 7, 3, 2}, {1, 5, 6, 11, 11, 2},  {1, 9, 8, 4, 5}};
    const size_t lens[6] = {6, 7, 5, 6, 6, 5}, from[6] = {3, 3, 3, 4, 4, 4};
    const int pos[6] = {1, 0, 0, 1, 0, 1};
    const float rate[6] = {1.0f / 3, 1.0f / 3, 1.0f / 3, 2.0f / 3, 2.0f / 3, 2.0f / 3};
    ad_example ex[6];
    for (size_t i = 0; i < 6; i++)
        ex[i] = (ad_example){(int32_t *)seqs[i], lens[i], from[i]};
    float lp[6 * 24];
    size_t at[6];
    current_logps(m, ex, 6, 0.0f, lp, at);
    ad_policy_example nft[6], grpo[6];
    for (size_t i = 0; i < 6; i++) {
        nft[i] = (ad_policy_example){.seq = ex[i], .old_logp = lp + at[i]};
        nft[i].correct_rate = rate[i];
        nft[i].positive = pos[i];
        grpo[i] = nft[i];
        grpo[i].advantage = pos[i] ? 1.0f - rate[i] : -rate[i];
    }
    size_t n = m->n_params;
    float *gn = malloc(n * sizeof(float));
    ad_error err = {{0}};
    ad_objective_batch bn = {.kind = AD_BATCH_SAMPLES, .policy = nft, .n = 6};
    ad_objective_batch bg = {.kind = AD_BATCH_GROUPS, .policy = grpo, .n = 6};
    ad_objective_stats sn, sg;
    g = ad_objective_default_params();
    CHECK_MSG(ad_objective_step(&ad_objective_nft, &t, &p, &bn, &sn, &err) == AD_OK, "%s", err.msg);
    if (gn) memcpy(gn, m->grads, n * sizeof(float));
    CHECK_MSG(ad_objective_step(&ad_objective_grpo, &t, &g, &bg, &sg, &err) == AD_OK, "%s",
              err.msg);
    double e = gn ? grad_error(gn, m->grads, n) : 1.0;
    CHECK_MSG(e < 1e-6, "on-policy nft vs grpo: relative gradient error %.3g", e);
    CHECK(sn.grad_norm > 0 && sn.loss == 0.0 && sn.clip_fraction == 0.0);
    CHECK_CLOSE(sn.ratio, 1.0, 1e-6, 0);
    CHECK(sn.n_targets == sg.n_targets && sn.entropy == sg.entropy);
    free(gn);
    ad_trainer_free(&t);
    ad_model_free(m);
}

/* ---- the nft objective against PyTorch ----------------------------------- */

static const char *fixture_dir(void) {
    const char *d = getenv("AD_TORCH_NFT_FIXTURES");
    return d && *d ? d : "tests/fixtures/torch_nft";
}

typedef struct nft_fixture {
    ad_model *m;
    ad_vocab vocab;
    ad_safetensors *want;
    size_t R, T, n_targets;
    int32_t *tokens;         /* [R, T] */
    float *old, *tlp, *rate; /* [R, T] old_logp, PyTorch's token log p; [R] r_q */
    ad_policy_example *pol;  /* [R] */
} nft_fixture;

static void fixture_free(nft_fixture *f) {
    ad_model_free(f->m);
    ad_safetensors_close(f->want);
    free(f->tokens);
    free(f->old);
    free(f->tlp);
    free(f->rate);
    free(f->pol);
    memset(f, 0, sizeof *f);
}

/* The rows as samples; old_logp points at each row's first completion
 * position of the [R, T] array. */
static int fixture_rows(nft_fixture *f) {
    size_t R = f->R, one = R, single = 1;
    int32_t *lens = malloc(R * sizeof *lens), *from = malloc(R * sizeof *from),
            *masked = malloc(R * sizeof *masked), *pos = malloc(R * sizeof *pos), nt = 0;
    ad_error err = {{0}};
    int rc = lens && from && masked && pos ? AD_OK : AD_ERR;
    const char *names[] = {"lens", "loss_from", "masked", "positive"};
    int32_t *dst[] = {lens, from, masked, pos};
    for (size_t k = 0; rc == AD_OK && k < 4; k++)
        rc = ad_safetensors_read_i32(f->want, names[k], 1, &one, dst[k], &err);
    if (rc == AD_OK) rc = ad_safetensors_read_i32(f->want, "n_targets", 1, &single, &nt, &err);
    f->n_targets = (size_t)nt;
    f->pol = calloc(R, sizeof *f->pol);
    if (!f->pol) rc = AD_ERR;
    for (size_t i = 0; rc == AD_OK && i < R; i++) {
        ad_policy_example *p = &f->pol[i];
        p->seq = (ad_example){f->tokens + i * f->T, (size_t)lens[i], (size_t)from[i]};
        p->old_logp = f->old + i * f->T + (size_t)from[i] - 1;
        p->masked = masked[i];
        p->positive = pos[i];
        p->correct_rate = f->rate[i];
    }
    CHECK_MSG(rc == AD_OK, "fixture rows: %s", err.msg);
    free(lens);
    free(from);
    free(masked);
    free(pos);
    return rc;
}

static int fixture_load(nft_fixture *f) {
    memset(f, 0, sizeof *f);
    if (policy_fixture_open(fixture_dir(), &f->m, &f->vocab, &f->want, &f->R, &f->T, &f->tokens) !=
        AD_OK)
        return AD_ERR;
    size_t RT = f->R * f->T;
    f->old = read_f32(f->want, "old_logp", RT);
    f->tlp = read_f32(f->want, "token_logp", RT);
    f->rate = read_f32(f->want, "correct_rate", f->R);
    if (!f->old || !f->tlp || !f->rate) return AD_ERR;
    return fixture_rows(f);
}

/* A variant's parameters from the fixture's metadata. */
static ad_objective_params fixture_params(const nft_fixture *f, const char *variant) {
    ad_objective_params p = ad_objective_default_params();
    char key[128];
    ad_error err = {{0}};
    snprintf(key, sizeof key, "%s.loss_agg", variant);
    const char *s = ad_safetensors_metadata(f->want, key);
    CHECK_MSG(s && ad_loss_agg_parse(s, &p.loss_agg, &err) == AD_OK, "%s: %s", key, err.msg);
    snprintf(key, sizeof key, "%s.prompt_weight", variant);
    s = ad_safetensors_metadata(f->want, key);
    CHECK_MSG(s != NULL, "metadata %s missing", key);
    p.nft_weight = s && !strcmp(s, "grpo")   ? AD_NFT_WEIGHT_GRPO
                   : s && !strcmp(s, "none") ? AD_NFT_WEIGHT_NONE
                                             : AD_NFT_WEIGHT_DR_GRPO;
    const char *names[] = {"eps", "neg_weight", "norm_len"};
    double *fields[] = {&p.nft_eps, &p.nft_neg_weight, &p.norm_len};
    for (size_t i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s.%s", variant, names[i]);
        s = ad_safetensors_metadata(f->want, key);
        CHECK_MSG(s != NULL, "metadata %s missing", key);
        if (s) *fields[i] = strtod(s, NULL);
    }
    return p;
}

static double worst_grad_err, worst_loss_err, worst_stat_err;
static char worst_grad_name[160];

/* The step's loss and statistics against the fixture's `variant`. */
static int compare_stats(nft_fixture *f, const char *variant, const ad_objective_stats *st,
                         size_t batch_size, int quiet) {
    char name[200];
    snprintf(name, sizeof name, "%s.loss", variant);
    double want = read_scalar(f->want, name), le = fabs(st->loss - want) / fabs(want);
    if (quiet) return le <= RTOL;
    CHECK_MSG(le <= RTOL, "%s batch %zu: loss %.9g, PyTorch %.9g", variant, batch_size, st->loss,
              want);
    worst_loss_err = fmax(worst_loss_err, le);
    snprintf(name, sizeof name, "%s.clip_fraction", variant);
    CHECK_CLOSE(st->clip_fraction, read_scalar(f->want, name), 1e-6, 0);
    snprintf(name, sizeof name, "%s.ratio", variant);
    double w = read_scalar(f->want, name), e = fabs(st->ratio - w) / w;
    CHECK_MSG(e <= RTOL, "%s: ratio %.9g, PyTorch %.9g", variant, st->ratio, w);
    worst_stat_err = fmax(worst_stat_err, e);
    w = read_scalar(f->want, "entropy");
    e = fabs(st->entropy - w) / w;
    CHECK_MSG(e <= RTOL, "%s: entropy %.9g, PyTorch %.9g", variant, st->entropy, w);
    worst_stat_err = fmax(worst_stat_err, e);
    CHECK(st->n_targets == f->n_targets && isnan(st->margin) && isnan(st->kl));
    return le <= RTOL;
}

/* One nft step of p at lr 0 over the fixture's rows; compares the loss, the
 * statistics and every gradient with the fixture's `variant`. Returns 1 when
 * all are within RTOL; records failures unless quiet (negative controls). */
static int compare_variant(nft_fixture *f, const char *variant, const ad_objective_params *p,
                           size_t batch_size, int quiet) {
    ad_trainer t;
    if (gradient_trainer(&t, f->m, batch_size) != AD_OK) return 0;
    ad_objective_batch b = {.kind = AD_BATCH_SAMPLES, .policy = f->pol, .n = f->R};
    ad_objective_stats st;
    ad_error err = {{0}};
    int rc = ad_objective_step(&ad_objective_nft, &t, p, &b, &st, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", variant, err.msg);
    ad_trainer_free(&t);
    if (rc != AD_OK) return 0;
    int ok = compare_stats(f, variant, &st, batch_size, quiet);
    char name[200];
    for (size_t i = 0; i < f->m->n_tensors; i++) {
        const ad_tensor_info *ti = &f->m->tensors[i];
        snprintf(name, sizeof name, "%s.grad.%s", variant, ti->name);
        float *w = read_f32(f->want, name, ti->numel);
        if (!w) return 0;
        double e = grad_error(f->m->grads + ti->offset, w, ti->numel);
        free(w);
        ok &= e <= RTOL;
        if (quiet) continue;
        CHECK_MSG(e <= RTOL, "%s batch %zu: %s relative error %.3g", variant, batch_size, ti->name,
                  e);
        if (e > worst_grad_err) {
            worst_grad_err = e;
            snprintf(worst_grad_name, sizeof worst_grad_name, "%s %s", variant, ti->name);
        }
    }
    return ok;
}

static const char *const VARIANTS[] = {"default", "eps_half_grpo", "none_neg_half", "sum_norm"};
#define N_VARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

static void test_nft_against_torch(void) {
    nft_fixture f;
    if (fixture_load(&f) != AD_OK) {
        fixture_free(&f);
        return;
    }
    /* every variant at 1, 2, 3 and 9 rows per micro-batch */
    const size_t batch_sizes[] = {1, 2, 3, 9};
    for (size_t v = 0; v < N_VARIANTS; v++) {
        ad_objective_params p = fixture_params(&f, VARIANTS[v]);
        for (size_t k = 0; k < sizeof batch_sizes / sizeof batch_sizes[0]; k++)
            CHECK(compare_variant(&f, VARIANTS[v], &p, batch_sizes[k], 0));
    }
    /* negative controls: the floor at 0.5 where 1 was meant, the wrong
     * samples left out, the other prompt weight, r_q unclamped (0.99 kept):
     * each must fail */
    ad_objective_params p = fixture_params(&f, "default");
    p.nft_eps = 0.5;
    CHECK_MSG(!compare_variant(&f, "default", &p, 9, 1), "the floor went unnoticed");
    p = fixture_params(&f, "default");
    p.nft_neg_weight = 0;
    CHECK_MSG(!compare_variant(&f, "default", &p, 9, 1), "the wrong samples went unnoticed");
    p = fixture_params(&f, "eps_half_grpo");
    p.nft_weight = AD_NFT_WEIGHT_DR_GRPO;
    CHECK_MSG(!compare_variant(&f, "eps_half_grpo", &p, 9, 1), "the prompt weight went unnoticed");
    p = fixture_params(&f, "default");
    f.pol[7].correct_rate = 0.97f; /* inside the clamp: no longer 0.98 */
    CHECK_MSG(!compare_variant(&f, "default", &p, 9, 1), "the clamp of r_q went unnoticed");
    printf("  worst relative errors vs PyTorch float64: loss %.2e, statistics %.2e, gradient "
           "%.2e (%s)\n",
           worst_loss_err, worst_stat_err, worst_grad_err, worst_grad_name);
    fixture_free(&f);
}

/* ---- SFT, r_q = 0 and 1, learning --------------------------------------- */

/* Four sequences of the toy vocabulary (tokens 3..11), EOS on the first three. */
static void four_examples(ad_example *ex) {
    static int32_t s[4][8] = {
        {1, 3, 4, 5, 6, 7, 2}, {1, 3, 4, 9, 2}, {1, 8, 8, 8, 10, 11, 4, 2}, {1, 5, 6, 7, 8}};
    const size_t lens[4] = {7, 5, 8, 5}, from[4] = {3, 3, 4, 3};
    for (size_t i = 0; i < 4; i++)
        ex[i] = (ad_example){s[i], lens[i], from[i]};
}

/* Right samples only, with uniform prompt weights: SFT's gradient whatever
 * the old log-probs (d/dlogp of -log R is -1); with dr_grpo at r_q 0.25 it is
 * 0.75 times SFT's. */
static void test_reduces_to_sft(void) {
    ad_model *m = toy_model(17);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 2) != AD_OK) {
        ad_model_free(m);
        return;
    }
    ad_example ex[4];
    four_examples(ex);
    float lp[4 * 24];
    size_t at[4];
    current_logps(m, ex, 4, -0.3f, lp, at);
    ad_policy_example pol[4];
    for (size_t i = 0; i < 4; i++) {
        pol[i] = (ad_policy_example){.seq = ex[i], .old_logp = lp + at[i]};
        pol[i].correct_rate = 0.25f;
        pol[i].positive = 1;
    }
    size_t n = m->n_params;
    float *g = malloc(n * sizeof(float));
    ad_error err = {{0}};
    ad_objective_batch sb = {.kind = AD_BATCH_SEQUENCES, .seqs = ex, .n = 4};
    ad_objective_batch nb = {.kind = AD_BATCH_SAMPLES, .policy = pol, .n = 4};
    ad_objective_stats ss, sn;
    CHECK_MSG(ad_objective_step(&ad_objective_sft, &t, NULL, &sb, &ss, &err) == AD_OK, "%s",
              err.msg);
    if (g) memcpy(g, m->grads, n * sizeof(float));
    ad_objective_params p = nft_params(1.0, 1.0, AD_NFT_WEIGHT_NONE);
    CHECK_MSG(ad_objective_step(&ad_objective_nft, &t, &p, &nb, &sn, &err) == AD_OK, "%s", err.msg);
    double e = g ? grad_error(m->grads, g, n) : 1;
    CHECK_MSG(e < 1e-6, "nft without wrong samples vs sft: relative gradient error %.3g", e);
    CHECK(sn.n_targets == ss.n_targets && ss.grad_norm > 0);
    CHECK_CLOSE(sn.loss, -0.3, 1e-6, 0); /* -log R = -0.3 on every token */
    p.nft_weight = AD_NFT_WEIGHT_DR_GRPO;
    CHECK(ad_objective_step(&ad_objective_nft, &t, &p, &nb, &sn, &err) == AD_OK);
    for (size_t i = 0; g && i < n; i++)
        g[i] *= 0.75f;
    e = g ? grad_error(m->grads, g, n) : 1;
    CHECK_MSG(e < 1e-6, "dr_grpo weight: relative gradient error %.3g", e);
    free(g);
    ad_trainer_free(&t);
    ad_model_free(m);
}

/* Samples of prompts with r_q = 0 (wrong) or 1 (right), with junk old
 * log-probs, change nothing bit for bit; a batch of only those makes a step
 * with a zero gradient and NaN token statistics. */
static void test_rate_edges(void) {
    ad_model *m = toy_model(19);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 2) != AD_OK) {
        ad_model_free(m);
        return;
    }
    ad_example ex[4];
    four_examples(ex);
    float lp[4 * 24], junk[24];
    size_t at[4];
    current_logps(m, ex, 4, 0.2f, lp, at);
    for (size_t k = 0; k < 24; k++)
        junk[k] = NAN;
    ad_policy_example all[4], some[2];
    const int pos[4] = {1, 1, 0, 0};
    const float rate[4] = {0.5f, 1.0f, 0.5f, 0.0f};
    for (size_t i = 0; i < 4; i++) {
        all[i] = (ad_policy_example){.seq = ex[i], .old_logp = lp + at[i]};
        all[i].correct_rate = rate[i];
        all[i].positive = pos[i];
    }
    all[1].old_logp = junk;
    all[3].old_logp = NULL;
    some[0] = all[0];
    some[1] = all[2];
    size_t n = m->n_params;
    float *g = malloc(n * sizeof(float));
    ad_objective_params p = ad_objective_default_params();
    ad_objective_batch bs = {.kind = AD_BATCH_SAMPLES, .policy = some, .n = 2};
    ad_objective_batch ba = {.kind = AD_BATCH_SAMPLES, .policy = all, .n = 4};
    ad_objective_stats s1, s2;
    ad_error err = {{0}};
    CHECK_MSG(ad_objective_step(&ad_objective_nft, &t, &p, &bs, &s1, &err) == AD_OK, "%s", err.msg);
    if (g) memcpy(g, m->grads, n * sizeof(float));
    CHECK_MSG(ad_objective_step(&ad_objective_nft, &t, &p, &ba, &s2, &err) == AD_OK, "%s", err.msg);
    CHECK_MSG(g && memcmp(g, m->grads, n * sizeof(float)) == 0,
              "samples of r_q = 0 or 1 changed the gradient");
    CHECK(s1.loss == s2.loss && s1.n_targets == s2.n_targets && s1.grad_norm > 0);
    CHECK(s1.grad_norm == s2.grad_norm && s1.clip_fraction == s2.clip_fraction);
    ad_policy_example none[2] = {all[1], all[3]};
    ad_objective_batch bn = {.kind = AD_BATCH_SAMPLES, .policy = none, .n = 2};
    size_t sched = t.sched_step;
    CHECK(ad_objective_step(&ad_objective_nft, &t, &p, &bn, &s2, &err) == AD_OK);
    int zero = 1;
    for (size_t i = 0; i < n; i++)
        zero &= m->grads[i] == 0.0f;
    CHECK(zero && s2.grad_norm == 0.0f && t.sched_step == sched + 1 && s2.loss == 0.0);
    CHECK(s2.n_targets == 0 && isnan(s2.ratio) && isnan(s2.entropy));
    free(g);
    ad_trainer_free(&t);
    ad_model_free(m);
}

/* A right and a wrong completion of one prompt (r_q 0.5), against the
 * starting model's log-probs held fixed as an offline round does: 30 steps
 * raise the right one's log-prob and lower the wrong one's. */
static void test_learning(void) {
    ad_model *m = toy_model(23);
    ad_trainer t;
    ad_train_config tc = ad_train_default_config(30);
    tc.batch_size = 2;
    tc.schedule.peak_lr = 1e-2f;
    ad_error err = {{0}};
    if (!m || ad_trainer_init(&t, m, &tc, &err) != AD_OK) {
        ad_model_free(m);
        return;
    }
    static int32_t right[] = {1, 3, 4, 5, 6, 2}, wrong[] = {1, 3, 4, 7, 8, 2};
    ad_example ex[2] = {{right, 6, 3}, {wrong, 6, 3}};
    float old[2 * 24], now[2 * 24];
    size_t at[2];
    current_logps(m, ex, 2, 0.0f, old, at);
    ad_policy_example pol[2];
    for (size_t i = 0; i < 2; i++) {
        pol[i] = (ad_policy_example){.seq = ex[i], .old_logp = old + at[i]};
        pol[i].correct_rate = 0.5f;
        pol[i].positive = i == 0;
    }
    ad_objective_batch b = {.kind = AD_BATCH_SAMPLES, .policy = pol, .n = 2};
    ad_objective_params p = ad_objective_default_params();
    for (size_t s = 0; s < 30; s++)
        CHECK_MSG(ad_objective_step(&ad_objective_nft, &t, &p, &b, NULL, &err) == AD_OK, "%s",
                  err.msg);
    current_logps(m, ex, 2, 0.0f, now, at);
    double before[2] = {0, 0}, after[2] = {0, 0};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++) {
            before[i] += old[at[i] + j];
            after[i] += now[at[i] + j];
        }
    printf("  log p(right) %.4f -> %.4f, log p(wrong) %.4f -> %.4f\n", before[0], after[0],
           before[1], after[1]);
    CHECK(after[0] > before[0] + 1.0 && after[1] < before[1] - 1.0 && after[0] > after[1]);
    ad_trainer_free(&t);
    ad_model_free(m);
}

/* ---- registry, parameters, refusals --------------------------------------- */

static void test_registry_and_params(void) {
    const ad_objective *o = ad_objective_find("nft");
    CHECK(o == &ad_objective_nft && o->batch == AD_BATCH_SAMPLES && o->summary[0]);
    ad_objective_params p = ad_objective_default_params();
    CHECK(p.nft_eps == 1.0 && p.nft_neg_weight == 1.0 && p.nft_weight == AD_NFT_WEIGHT_DR_GRPO);
    ad_error err = {{0}};
    CHECK(ad_objective_params_check(&p, &err) == AD_OK);
    const double bad_eps[] = {0.0, -0.1, 1.5, NAN};
    for (size_t i = 0; i < 4; i++) {
        p = ad_objective_default_params();
        p.nft_eps = bad_eps[i];
        CHECK(ad_objective_params_check(&p, &err) == AD_ERR && strstr(err.msg, "nft.eps"));
    }
    p = ad_objective_default_params();
    p.nft_neg_weight = -1;
    CHECK(ad_objective_params_check(&p, &err) == AD_ERR && strstr(err.msg, "nft.neg_weight"));
    p = ad_objective_default_params();
    p.nft_weight = (ad_nft_weight)3;
    CHECK(ad_objective_params_check(&p, &err) == AD_ERR && strstr(err.msg, "nft.prompt_weight"));
}

static void test_refusals(void) {
    ad_model *m = toy_model(29);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 2) != AD_OK) {
        ad_model_free(m);
        return;
    }
    t.cfg.schedule.peak_lr = 1e-2f; /* a step that got through would move the weights */
    ad_example ex[4];
    four_examples(ex);
    float lp[4 * 24];
    size_t at[4];
    current_logps(m, ex, 4, 0.0f, lp, at);
    ad_policy_example pol[4];
    for (size_t i = 0; i < 4; i++) {
        pol[i] = (ad_policy_example){.seq = ex[i], .old_logp = lp + at[i]};
        pol[i].correct_rate = 0.5f;
        pol[i].positive = (int)(i % 2);
    }
    ad_objective_batch b = {.kind = AD_BATCH_SAMPLES, .policy = pol, .n = 4};
    ad_objective_batch gb = b;
    gb.kind = AD_BATCH_GROUPS;
    ad_objective_params p = ad_objective_default_params();
    expect_refused(&ad_objective_nft, &t, &p, &gb,
                   "consumes a batch of samples, got one of groups");
    expect_refused(&ad_objective_grpo, &t, &p, &b,
                   "consumes a batch of groups, got one of samples");
    p.nft_eps = 0;
    expect_refused(&ad_objective_nft, &t, &p, &b, "nft.eps");
    p = ad_objective_default_params();
    ad_policy_example keep = pol[3];
    const float rates[] = {1.5f, -0.5f, NAN};
    for (size_t k = 0; k < 3; k++) {
        pol[3].correct_rate = rates[k];
        expect_refused(&ad_objective_nft, &t, &p, &b, "nft: sequence 3: correct rate");
    }
    pol[3] = keep;
    pol[3].positive = 2;
    expect_refused(&ad_objective_nft, &t, &p, &b, "nft: sequence 3: positive is 2");
    pol[3] = keep; /* right */
    pol[3].correct_rate = 0.0f;
    expect_refused(&ad_objective_nft, &t, &p, &b,
                   "nft: sequence 3: a right sample of a prompt with correct rate 0");
    pol[3] = pol[2]; /* wrong */
    pol[3].correct_rate = 1.0f;
    expect_refused(&ad_objective_nft, &t, &p, &b,
                   "nft: sequence 3: a wrong sample of a prompt with correct rate 1");
    pol[3] = keep;
    pol[3].old_logp = NULL;
    expect_refused(&ad_objective_nft, &t, &p, &b, "nft: sequence 3: no old log-probs");
    pol[3] = keep;
    pol[3].seq.loss_from = pol[3].seq.len;
    expect_refused(&ad_objective_nft, &t, &p, &b, "nft: sequence 3: bad shape");
    pol[3] = keep;
    /* kl_beta and the advantages are not nft's: set, they change nothing */
    p.kl_beta = 0.5;
    pol[1].advantage = NAN;
    ad_error err = {{0}};
    CHECK_MSG(ad_objective_step(&ad_objective_nft, &t, &p, &b, NULL, &err) == AD_OK, "%s", err.msg);
    CHECK(t.sched_step == 1);
    ad_trainer_free(&t);
    ad_model_free(m);
}

int main(void) {
    RUN(test_token_loss_values);
    RUN(test_token_loss_derivatives);
    RUN(test_on_policy_is_grpo);
    RUN(test_nft_against_torch);
    RUN(test_reduces_to_sft);
    RUN(test_rate_edges);
    RUN(test_learning);
    RUN(test_registry_and_params);
    RUN(test_refusals);
    return test_summary();
}
