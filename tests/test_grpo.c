/* test_grpo.c: the GRPO family: advantage estimators (src/loop/advantage.h),
 * the per-token loss, the grpo objective (src/loop/objective_grpo.c) and the
 * trainer's per-token pieces it is built from.
 *
 *   - every estimator on hand-made groups (a group of one, equal rewards,
 *     aliasing), the zero-variance helper, names and refusals;
 *   - ad_grpo_token_loss at hand-computed points and against central
 *     differences (clipped and unclipped regions, both signs of A, KL on);
 *   - the trainer's token log-probs and token backward against its row pieces,
 *     bit for bit;
 *   - the grpo objective's loss, statistics and EVERY parameter gradient
 *     against PyTorch (tests/torch_grpo_reference.py wrote
 *     tests/fixtures/torch_grpo/) for the three aggregations with and without
 *     KL and with epsilon_high = epsilon, at several micro-batch sizes, with
 *     negative controls; ref_logp NULL whenever kl_beta = 0;
 *   - masked sequences change nothing (bit for bit); an all-masked batch and
 *     an all-zero-advantage batch make a step with a zero gradient;
 *   - a few dozen steps on a toy model raise the log-prob of the A > 0
 *     completion and lower the A < 0 one;
 *   - the registry, the parameters and every refusal.
 *
 * Gradients are read from the model's gradient buffer after a step at
 * learning rate 0 without clipping (AdamW then moves nothing). Run from the
 * repository root, or set AD_TORCH_GRPO_FIXTURES to the fixture folder. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "objective_testlib.h"
#include "loop/advantage.h"
#include "loop/objective.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

#define RTOL 1e-4 /* as test_torch_compare.c and the DPO test */

/* ---- advantage estimators ------------------------------------------------ */

/* Groups {1, 0, 0, 1}, {1, 1, 1} (equal), {0.5} (one), {3, 1, 2}. */
static const double REWARDS[] = {1, 0, 0, 1, 1, 1, 1, 0.5, 3, 1, 2};
static const size_t GROUPS[] = {4, 3, 1, 3};
#define N_REWARDS (sizeof REWARDS / sizeof REWARDS[0])
#define N_GROUPS (sizeof GROUPS / sizeof GROUPS[0])

static void test_advantage_values(void) {
    double a[N_REWARDS];
    ad_error err = {{0}};
    /* grpo: group 0 has mean 0.5 and sample std sqrt(4 * 0.25 / 3) = 1/sqrt(3);
     * group 3 mean 2, sample std sqrt((1 + 1 + 0) / 2) = 1 */
    CHECK(ad_advantages(AD_ADV_GRPO, REWARDS, N_REWARDS, GROUPS, N_GROUPS, a, &err) == AD_OK);
    double s0 = 1.0 / sqrt(3.0) + 1e-4;
    const double want_grpo[] = {0.5 / s0, -0.5 / s0, -0.5 / s0,  0.5 / s0,    0, 0,
                                0,        0,         1 / 1.0001, -1 / 1.0001, 0};
    for (size_t i = 0; i < N_REWARDS; i++)
        CHECK_CLOSE(a[i], want_grpo[i], 1e-12, 1e-15);
    /* the equal group and the group of one are exactly 0 */
    CHECK(a[4] == 0.0 && a[5] == 0.0 && a[6] == 0.0 && a[7] == 0.0);
    /* dr_grpo: r - mean */
    CHECK(ad_advantages(AD_ADV_DR_GRPO, REWARDS, N_REWARDS, GROUPS, N_GROUPS, a, &err) == AD_OK);
    const double want_dr[] = {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, 1, -1, 0};
    for (size_t i = 0; i < N_REWARDS; i++)
        CHECK_CLOSE(a[i], want_dr[i], 1e-12, 1e-15);
    /* rloo: r - mean of the other G - 1: 1 - 1/3, 0 - 2/3; 3 - 1.5, 1 - 2.5, 2 - 2 */
    CHECK(ad_advantages(AD_ADV_RLOO, REWARDS, N_REWARDS, GROUPS, N_GROUPS, a, &err) == AD_OK);
    const double want_rloo[] = {2.0 / 3, -2.0 / 3, -2.0 / 3, 2.0 / 3, 0, 0, 0, 0, 1.5, -1.5, 0};
    for (size_t i = 0; i < N_REWARDS; i++)
        CHECK_CLOSE(a[i], want_rloo[i], 1e-12, 1e-15);
    CHECK(a[7] == 0.0); /* G = 1: no other sample to compare with */
    /* reinforce: r - the batch mean 11.5 / 11, whatever the groups */
    CHECK(ad_advantages(AD_ADV_REINFORCE, REWARDS, N_REWARDS, GROUPS, N_GROUPS, a, &err) == AD_OK);
    for (size_t i = 0; i < N_REWARDS; i++)
        CHECK_CLOSE(a[i], REWARDS[i] - 11.5 / 11, 1e-12, 1e-15);
    /* in place (rewards == adv) gives the same as out of place */
    double b[N_REWARDS];
    for (int e = 0; e < (int)ad_adv_estimator_count(); e++) {
        memcpy(b, REWARDS, sizeof b);
        CHECK(ad_advantages((ad_adv_estimator)e, REWARDS, N_REWARDS, GROUPS, N_GROUPS, a, &err) ==
              AD_OK);
        CHECK(ad_advantages((ad_adv_estimator)e, b, N_REWARDS, GROUPS, N_GROUPS, b, &err) == AD_OK);
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "%s in place differs",
                  ad_adv_estimator_name((ad_adv_estimator)e));
    }
    /* a batch of equal rewards: every estimator gives exact zeros */
    const double same[] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
    const size_t two[] = {3, 3};
    for (int e = 0; e < (int)ad_adv_estimator_count(); e++) {
        CHECK(ad_advantages((ad_adv_estimator)e, same, 6, two, 2, a, &err) == AD_OK);
        for (size_t i = 0; i < 6; i++)
            CHECK(a[i] == 0.0);
    }
    /* empty input */
    CHECK(ad_advantages(AD_ADV_GRPO, NULL, 0, NULL, 0, NULL, &err) == AD_OK);
}

/* The group estimators' advantages add up to zero in each group; grpo's have
 * sample standard deviation std / (std + eps), i.e. just below 1. */
static void test_advantage_properties(void) {
    double r[24], a[24];
    const size_t g[] = {8, 5, 2, 9};
    uint64_t s = 12345;
    for (size_t i = 0; i < 24; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        r[i] = (double)((s >> 33) % 1000) / 100.0;
    }
    ad_error err = {{0}};
    const ad_adv_estimator es[] = {AD_ADV_GRPO, AD_ADV_DR_GRPO, AD_ADV_RLOO};
    for (size_t k = 0; k < 3; k++) {
        CHECK(ad_advantages(es[k], r, 24, g, 4, a, &err) == AD_OK);
        for (size_t gi = 0, at = 0; gi < 4; at += g[gi], gi++) {
            double sum = 0;
            for (size_t i = 0; i < g[gi]; i++)
                sum += a[at + i];
            CHECK_MSG(fabs(sum) < 1e-9, "%s group %zu sums to %g", ad_adv_estimator_name(es[k]), gi,
                      sum);
            if (es[k] != AD_ADV_GRPO) continue;
            double m = 0, ss = 0, rm = 0, rss = 0;
            for (size_t i = 0; i < g[gi]; i++) {
                m += a[at + i] / (double)g[gi];
                rm += r[at + i] / (double)g[gi];
            }
            for (size_t i = 0; i < g[gi]; i++) {
                ss += (a[at + i] - m) * (a[at + i] - m);
                rss += (r[at + i] - rm) * (r[at + i] - rm);
            }
            double sd = sqrt(rss / (double)(g[gi] - 1));
            CHECK_CLOSE(sqrt(ss / (double)(g[gi] - 1)), sd / (sd + AD_ADV_STD_EPS), 1e-12, 0);
        }
    }
    /* rloo is dr_grpo scaled by G / (G - 1) */
    double d[24];
    CHECK(ad_advantages(AD_ADV_DR_GRPO, r, 24, g, 4, d, &err) == AD_OK);
    CHECK(ad_advantages(AD_ADV_RLOO, r, 24, g, 4, a, &err) == AD_OK);
    for (size_t gi = 0, at = 0; gi < 4; at += g[gi], gi++)
        for (size_t i = 0; i < g[gi]; i++)
            CHECK_CLOSE(a[at + i], d[at + i] * (double)g[gi] / (double)(g[gi] - 1), 1e-12, 1e-12);
}

static void test_advantage_refusals(void) {
    double a[N_REWARDS], keep[N_REWARDS];
    for (size_t i = 0; i < N_REWARDS; i++)
        a[i] = keep[i] = -7.0;
    ad_error err = {{0}};
    const size_t short_groups[] = {4, 3, 1, 2}, long_groups[] = {4, 3, 1, 4},
                 empty_group[] = {4, 0, 4, 3};
    CHECK(ad_advantages(AD_ADV_GRPO, REWARDS, N_REWARDS, short_groups, 4, a, &err) == AD_ERR &&
          strstr(err.msg, "hold 10 of the 11 rewards"));
    CHECK(ad_advantages(AD_ADV_GRPO, REWARDS, N_REWARDS, long_groups, 4, a, &err) == AD_ERR &&
          strstr(err.msg, "more than the 11 rewards"));
    CHECK(ad_advantages(AD_ADV_RLOO, REWARDS, N_REWARDS, empty_group, 4, a, &err) == AD_ERR &&
          strstr(err.msg, "group 1 is empty"));
    double bad[N_REWARDS];
    memcpy(bad, REWARDS, sizeof bad);
    bad[9] = NAN;
    CHECK(ad_advantages(AD_ADV_DR_GRPO, bad, N_REWARDS, GROUPS, N_GROUPS, a, &err) == AD_ERR &&
          strstr(err.msg, "reward 9 is nan"));
    CHECK(ad_advantages((ad_adv_estimator)9, REWARDS, N_REWARDS, GROUPS, N_GROUPS, a, &err) ==
              AD_ERR &&
          strstr(err.msg, "unknown estimator"));
    CHECK(ad_advantages(AD_ADV_GRPO, NULL, 3, GROUPS, 1, a, &err) == AD_ERR);
    CHECK(memcmp(a, keep, sizeof a) == 0); /* nothing written on error */
    /* names */
    CHECK(ad_adv_estimator_count() == 4);
    for (size_t e = 0; e < ad_adv_estimator_count(); e++) {
        ad_adv_estimator got = AD_ADV_REINFORCE;
        if (e == AD_ADV_REINFORCE) got = AD_ADV_GRPO;
        CHECK(ad_adv_estimator_parse(ad_adv_estimator_name((ad_adv_estimator)e), &got, &err) ==
                  AD_OK &&
              got == (ad_adv_estimator)e);
    }
    CHECK(strcmp(ad_adv_estimator_name(AD_ADV_DR_GRPO), "dr_grpo") == 0);
    CHECK(strcmp(ad_adv_estimator_name((ad_adv_estimator)4), "?") == 0);
    ad_adv_estimator e = AD_ADV_RLOO;
    CHECK(ad_adv_estimator_parse("ppo", &e, &err) == AD_ERR && strstr(err.msg, "'ppo'") &&
          e == AD_ADV_RLOO);
}

static void test_zero_variance(void) {
    unsigned char flat[N_GROUPS];
    size_t n_flat = 99;
    ad_error err = {{0}};
    CHECK(ad_groups_zero_variance(REWARDS, N_REWARDS, GROUPS, N_GROUPS, flat, &n_flat, &err) ==
          AD_OK);
    CHECK(flat[0] == 0 && flat[1] == 1 && flat[2] == 1 && flat[3] == 0 && n_flat == 2);
    /* all right or all wrong: DAPO's dynamic sampling drops both */
    const double acc[] = {1, 1, 1, 0, 0, 0, 1, 0, 1};
    const size_t g3[] = {3, 3, 3};
    CHECK(ad_groups_zero_variance(acc, 9, g3, 3, flat, &n_flat, &err) == AD_OK);
    CHECK(flat[0] == 1 && flat[1] == 1 && flat[2] == 0 && n_flat == 2);
    CHECK(ad_groups_zero_variance(acc, 9, g3, 3, NULL, &n_flat, &err) == AD_OK && n_flat == 2);
    const size_t g_bad[] = {3, 3};
    CHECK(ad_groups_zero_variance(acc, 9, g_bad, 2, flat, &n_flat, &err) == AD_ERR);
}

/* ---- the per-token loss as a pure function ------------------------------- */

static ad_objective_params grpo_params(double eps, double eps_high, double kl_beta) {
    ad_objective_params p = ad_objective_default_params();
    p.epsilon = eps;
    p.epsilon_high = eps_high;
    p.kl_beta = kl_beta;
    return p;
}

static void test_token_loss_values(void) {
    ad_objective_params p = grpo_params(0.2, 0.28, 0);
    double d = 7;
    int c = 7;
    /* inside the range: -rho A, derivative -rho A */
    CHECK_CLOSE(ad_grpo_token_loss(&p, log(1.1), 0, NAN, 1.0, &d, &c), -1.1, 1e-12, 0);
    CHECK_CLOSE(d, -1.1, 1e-12, 0);
    CHECK(c == 0);
    /* A > 0, rho 1.5 > 1.28: clipped at 1.28, flat */
    CHECK_CLOSE(ad_grpo_token_loss(&p, -1.0 + log(1.5), -1.0, NAN, 2.0, &d, &c), -2.56, 1e-12, 0);
    CHECK(d == 0.0 && c == 1);
    /* A > 0, rho 1.25: clipped with symmetric 0.2 (epsilon_high 0), not with 0.28 */
    CHECK_CLOSE(ad_grpo_token_loss(&p, log(1.25), 0, NAN, 1.0, &d, &c), -1.25, 1e-12, 0);
    CHECK(c == 0);
    ad_objective_params sym = grpo_params(0.2, 0.0, 0);
    CHECK_CLOSE(ad_grpo_token_loss(&sym, log(1.25), 0, NAN, 1.0, &d, &c), -1.2, 1e-12, 0);
    CHECK(d == 0.0 && c == 1);
    /* A < 0, rho 0.5 < 0.8: clipped at 0.8: loss -(0.8 * -1) */
    CHECK_CLOSE(ad_grpo_token_loss(&p, log(0.5), 0, NAN, -1.0, &d, &c), 0.8, 1e-12, 0);
    CHECK(d == 0.0 && c == 1);
    /* A < 0, rho 1.5: the unclipped term is the minimum: loss 1.5, gradient flows */
    CHECK_CLOSE(ad_grpo_token_loss(&p, log(1.5), 0, NAN, -1.0, &d, &c), 1.5, 1e-12, 0);
    CHECK_CLOSE(d, 1.5, 1e-12, 0);
    CHECK(c == 0);
    /* A > 0, rho 0.5: unclipped, gradient flows */
    CHECK_CLOSE(ad_grpo_token_loss(&p, log(0.5), 0, NAN, 1.0, &d, &c), -0.5, 1e-12, 0);
    CHECK_CLOSE(d, -0.5, 1e-12, 0);
    CHECK(c == 0);
    /* A = 0: nothing, never clipped */
    CHECK(ad_grpo_token_loss(&p, log(3.0), 0, NAN, 0.0, &d, &c) == 0.0 && d == 0.0 && c == 0);
    /* k3 with beta 0.5, p = -1, q = -2: u = q - p = -1: e^-1 - (-1) - 1 = e^-1;
     * d/dp = 1 - e^-1; on top of the unclipped policy term at rho = 1, A = 1 */
    ad_objective_params kl = grpo_params(0.2, 0.28, 0.5);
    CHECK_CLOSE(ad_grpo_token_loss(&kl, -1.0, -1.0, -2.0, 1.0, &d, &c), -1.0 + 0.5 * exp(-1.0),
                1e-12, 0);
    CHECK_CLOSE(d, -1.0 + 0.5 * (1.0 - exp(-1.0)), 1e-12, 0);
    /* k3 is 0 with its derivative where the policy equals the reference */
    CHECK_CLOSE(ad_grpo_token_loss(&kl, -3.0, -3.0, -3.0, 0.0, &d, &c), 0.0, 0, 1e-15);
    CHECK(fabs(d) < 1e-15);
    /* kl_beta 0: the reference (NaN here) is never read */
    CHECK(isfinite(ad_grpo_token_loss(&p, -1.0, -1.2, NAN, 0.7, &d, &c)) && isfinite(d));
    CHECK(isfinite(ad_grpo_token_loss(&p, -1.0, -1.2, 0, 0.7, NULL, NULL)));
}

/* Derivatives against central differences in logp, away from the clip
 * boundaries (where the loss has a kink). */
static void test_token_loss_derivatives(void) {
    const ad_objective_params ps[] = {grpo_params(0.2, 0.28, 0), grpo_params(0.2, 0.0, 0),
                                      grpo_params(0.2, 0.28, 0.3), grpo_params(0.1, 0.5, 2.0)};
    const double log_ratios[] = {-0.9, -0.5, -0.3, -0.1, 0.0, 0.05, 0.15, 0.21, 0.3, 0.6, 1.2};
    const double advantages[] = {1.3, -0.7, 0.25, -2.0};
    const double refs[] = {-0.4, 0.0, 1.5}; /* ref_logp - old_logp */
    const double old = -1.7, h = 1e-6;
    double worst = 0;
    size_t n_clipped = 0, n_free = 0;
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        for (size_t k = 0; k < sizeof log_ratios / sizeof log_ratios[0]; k++)
            for (size_t a = 0; a < sizeof advantages / sizeof advantages[0]; a++)
                for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++) {
                    double lp = old + log_ratios[k], ref = old + refs[r], A = advantages[a], d;
                    int c;
                    ad_grpo_token_loss(&ps[i], lp, old, ref, A, &d, &c);
                    double up = ad_grpo_token_loss(&ps[i], lp + h, old, ref, A, NULL, NULL);
                    double down = ad_grpo_token_loss(&ps[i], lp - h, old, ref, A, NULL, NULL);
                    double fd = (up - down) / (2 * h);
                    CHECK_MSG(fabs(fd - d) <= 1e-7 + 1e-6 * fabs(d),
                              "params %zu log-ratio %g A %g ref %g: d/dlogp %.10g, central "
                              "difference %.10g",
                              i, log_ratios[k], A, refs[r], d, fd);
                    worst = fmax(worst, fabs(fd - d));
                    n_clipped += (size_t)c;
                    n_free += (size_t)!c;
                }
    CHECK(n_clipped > 20 && n_free > 20); /* both regions were visited */
    printf("  token loss derivatives: worst |analytic - central difference| %.2e (%zu clipped, "
           "%zu unclipped points)\n",
           worst, n_clipped, n_free);
}

/* ---- the trainer's per-token pieces -------------------------------------- */

/* n sequences BOS + prompt + completion (+ EOS for even i) of varied lengths;
 * tokens 3..11. */
static void toy_examples(ad_example *ex, size_t n, uint64_t salt) {
    uint64_t s = 0x9e3779b97f4a7c15ULL ^ salt;
    for (size_t i = 0; i < n; i++) {
        size_t prompt = 2 + i % 4, comp = 1 + (i * 3 + salt) % 5, len = prompt + comp + 2;
        ex[i].tokens = malloc(len * sizeof(int32_t));
        ex[i].len = len;
        ex[i].loss_from = 1 + prompt;
        ex[i].tokens[0] = AD_TOK_BOS;
        for (size_t k = 1; k < len; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            ex[i].tokens[k] = 3 + (int32_t)((s >> 33) % 9);
        }
        if (i % 2 == 0) ex[i].tokens[len - 1] = AD_TOK_EOS;
    }
}

/* Token log-probs add up (in double, in order) to the row's log-prob bit for
 * bit; a token backward with constant weights per row is the row backward bit
 * for bit; a NULL row is weight 0; no forward, no tokens. */
static void test_trainer_token_pieces(void) {
    ad_model *m = toy_model(5);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 5) != AD_OK) {
        ad_model_free(m);
        return;
    }
    ad_example ex[5];
    toy_examples(ex, 5, 31);
    size_t n = m->n_params, cnt = 9;
    CHECK(ad_trainer_token_logps(&t, 0, &cnt) == NULL && cnt == 0); /* no forward yet */
    CHECK(isnan(ad_trainer_token_entropy_sum(&t, 0)));
    double lp[5];
    ad_error err = {{0}};
    float *g_row = malloc(n * sizeof(float)), *buf = malloc(64 * sizeof(float));
    const float rw[5] = {0.5f, -2.0f, 0.0f, 1.5f, 1.0f};
    const float *tw[5];
    ad_trainer_begin_step(&t);
    int ok = g_row && buf && ad_trainer_forward(&t, ex, 5, lp, &err) == AD_OK;
    CHECK_MSG(ok, "%s", err.msg);
    size_t at = 0;
    for (size_t r = 0; ok && r < 5; r++) {
        const float *x = ad_trainer_token_logps(&t, r, &cnt);
        CHECK(x != NULL && cnt == ex[r].len - ex[r].loss_from);
        double sum = 0;
        for (size_t k = 0; k < cnt; k++) {
            sum += (double)x[k];
            CHECK(x[k] < 0.0f);
            buf[at + k] = rw[r];
        }
        CHECK_MSG(sum == lp[r], "row %zu: token sum %.17g, row log p %.17g", r, sum, lp[r]);
        double h = ad_trainer_token_entropy_sum(&t, r);
        CHECK(h > 0 && h <= (double)cnt * log(12.0) + 1e-9); /* 0 < H <= log V per token */
        tw[r] = rw[r] != 0.0f ? buf + at : NULL;
        at += cnt;
    }
    CHECK(ad_trainer_token_logps(&t, 5, &cnt) == NULL && cnt == 0);
    if (ok) {
        ad_trainer_backward(&t, rw, 0.125f);
        memcpy(g_row, m->grads, n * sizeof(float));
        ad_model_zero_grad(m);
        ad_trainer_backward_tokens(&t, tw, 0.125f);
        CHECK_MSG(memcmp(g_row, m->grads, n * sizeof(float)) == 0,
                  "token backward differs from the row backward");
        /* all ones == the plain (SFT) backward */
        for (size_t k = 0; k < at; k++)
            buf[k] = 1.0f;
        for (size_t r = 0; r < 5; r++)
            tw[r] = buf; /* long enough for any row */
        ad_model_zero_grad(m);
        ad_trainer_backward(&t, NULL, 0.25f);
        memcpy(g_row, m->grads, n * sizeof(float));
        ad_model_zero_grad(m);
        ad_trainer_backward_tokens(&t, tw, 0.25f);
        CHECK(memcmp(g_row, m->grads, n * sizeof(float)) == 0);
        /* NULL rows have weight 0: nothing at all */
        const float *none[5] = {NULL, NULL, NULL, NULL, NULL};
        ad_model_zero_grad(m);
        ad_trainer_backward_tokens(&t, none, 1.0f);
        int zero = 1;
        for (size_t i = 0; i < n; i++)
            zero &= m->grads[i] == 0.0f;
        CHECK(zero);
    }
    ad_trainer_finish_step(&t, NULL);
    CHECK(ad_trainer_token_logps(&t, 0, &cnt) == NULL); /* the step is over */
    free(g_row);
    free(buf);
    free_examples(ex, 5);
    ad_trainer_free(&t);
    ad_model_free(m);
}

/* ---- the grpo objective against PyTorch ---------------------------------- */

static const char *fixture_dir(void) {
    const char *d = getenv("AD_TORCH_GRPO_FIXTURES");
    return d && *d ? d : "tests/fixtures/torch_grpo";
}

typedef struct grpo_fixture {
    ad_model *m;
    ad_vocab vocab;
    ad_safetensors *want;
    size_t R, T;
    int32_t *tokens;        /* [R, T] */
    float *old, *ref, *tlp; /* [R, T] old_logp, ref_logp, PyTorch's token log p */
    float *adv;             /* [R] */
    ad_policy_example *pol; /* [R] */
} grpo_fixture;

static void fixture_free(grpo_fixture *f) {
    ad_model_free(f->m);
    ad_safetensors_close(f->want);
    free(f->tokens);
    free(f->old);
    free(f->ref);
    free(f->tlp);
    free(f->adv);
    free(f->pol);
    memset(f, 0, sizeof *f);
}

/* The rows as policy examples; old_logp and ref_logp point at each row's
 * first completion position of the [R, T] arrays. */
static int fixture_rows(grpo_fixture *f) {
    size_t R = f->R, one = R;
    int32_t *lens = malloc(R * sizeof *lens), *from = malloc(R * sizeof *from),
            *masked = malloc(R * sizeof *masked);
    ad_error err = {{0}};
    int rc = lens && from && masked ? AD_OK : AD_ERR;
    if (rc == AD_OK) rc = ad_safetensors_read_i32(f->want, "lens", 1, &one, lens, &err);
    if (rc == AD_OK) rc = ad_safetensors_read_i32(f->want, "loss_from", 1, &one, from, &err);
    if (rc == AD_OK) rc = ad_safetensors_read_i32(f->want, "masked", 1, &one, masked, &err);
    f->pol = calloc(R, sizeof *f->pol);
    if (!f->pol) rc = AD_ERR;
    for (size_t i = 0; rc == AD_OK && i < R; i++) {
        ad_policy_example *p = &f->pol[i];
        p->seq = (ad_example){f->tokens + i * f->T, (size_t)lens[i], (size_t)from[i]};
        p->old_logp = f->old + i * f->T + (size_t)from[i] - 1;
        p->ref_logp = f->ref + i * f->T + (size_t)from[i] - 1;
        p->advantage = f->adv[i];
        p->masked = masked[i];
        if (p->masked) p->old_logp = p->ref_logp = NULL; /* a masked row is never read */
    }
    CHECK_MSG(rc == AD_OK, "fixture rows: %s", err.msg);
    free(lens);
    free(from);
    free(masked);
    return rc;
}

static int fixture_load(grpo_fixture *f) {
    memset(f, 0, sizeof *f);
    if (policy_fixture_open(fixture_dir(), &f->m, &f->vocab, &f->want, &f->R, &f->T, &f->tokens) !=
        AD_OK)
        return AD_ERR;
    size_t RT = f->R * f->T;
    f->old = read_f32(f->want, "old_logp", RT);
    f->ref = read_f32(f->want, "ref_logp", RT);
    f->tlp = read_f32(f->want, "token_logp", RT);
    f->adv = read_f32(f->want, "advantage", f->R);
    if (!f->old || !f->ref || !f->tlp || !f->adv) return AD_ERR;
    return fixture_rows(f);
}

/* A variant's parameters from the fixture's metadata. */
static ad_objective_params fixture_params(const grpo_fixture *f, const char *variant) {
    ad_objective_params p = ad_objective_default_params();
    char key[128];
    snprintf(key, sizeof key, "%s.loss_agg", variant);
    const char *s = ad_safetensors_metadata(f->want, key);
    ad_error err = {{0}};
    CHECK_MSG(s && ad_loss_agg_parse(s, &p.loss_agg, &err) == AD_OK, "%s: %s", key, err.msg);
    const char *names[] = {"epsilon", "epsilon_high", "kl_beta", "norm_len"};
    double *fields[] = {&p.epsilon, &p.epsilon_high, &p.kl_beta, &p.norm_len};
    for (size_t i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.%s", variant, names[i]);
        s = ad_safetensors_metadata(f->want, key);
        CHECK_MSG(s != NULL, "metadata %s missing", key);
        if (s) *fields[i] = strtod(s, NULL);
    }
    return p;
}

static double worst_grad_err, worst_loss_err, worst_stat_err;
static char worst_grad_name[160];

/* One grpo step of p at lr 0 over the fixture's rows (ref_logp NULL on every
 * row when kl_beta = 0); compares the loss, the statistics and every gradient
 * with the fixture's `variant`. Returns 1 when all are within RTOL; records
 * failures unless quiet (negative controls). */
static int compare_variant(grpo_fixture *f, const char *variant, const ad_objective_params *p,
                           size_t batch_size, int quiet) {
    ad_trainer t;
    if (gradient_trainer(&t, f->m, batch_size) != AD_OK) return 0;
    ad_policy_example *rows = malloc(f->R * sizeof *rows);
    if (!rows) return 0;
    memcpy(rows, f->pol, f->R * sizeof *rows);
    for (size_t i = 0; p->kl_beta == 0.0 && i < f->R; i++)
        rows[i].ref_logp = NULL;
    ad_objective_batch b = {.kind = AD_BATCH_GROUPS, .policy = rows, .n = f->R};
    ad_objective_stats st;
    ad_error err = {{0}};
    int rc = ad_objective_step(ad_objective_find("grpo"), &t, p, &b, &st, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", variant, err.msg);
    ad_trainer_free(&t);
    free(rows);
    if (rc != AD_OK) return 0;
    char name[200];
    snprintf(name, sizeof name, "%s.loss", variant);
    double want = read_scalar(f->want, name), le = fabs(st.loss - want) / fabs(want);
    int ok = le <= RTOL;
    if (!quiet) {
        CHECK_MSG(le <= RTOL, "%s batch %zu: loss %.9g, PyTorch %.9g", variant, batch_size, st.loss,
                  want);
        worst_loss_err = fmax(worst_loss_err, le);
        /* statistics: the clip fraction exactly (the log-ratios keep clear of the
         * boundaries), the ratio, kl and entropy to the tolerance */
        snprintf(name, sizeof name, "%s.clip_fraction", variant);
        CHECK_CLOSE(st.clip_fraction, read_scalar(f->want, name), 1e-6, 0);
        const char *keys[] = {"ratio", "kl"};
        const double got[] = {st.ratio, st.kl};
        for (size_t k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s.%s", variant, keys[k]);
            double w = read_scalar(f->want, name);
            if (isnan(w)) {
                CHECK_MSG(isnan(got[k]), "%s: %s should be NaN, got %g", variant, keys[k], got[k]);
                continue;
            }
            double e = fabs(got[k] - w) / fabs(w);
            CHECK_MSG(e <= RTOL, "%s: %s %.9g, PyTorch %.9g", variant, keys[k], got[k], w);
            worst_stat_err = fmax(worst_stat_err, e);
        }
        double w = read_scalar(f->want, "entropy"), e = fabs(st.entropy - w) / w;
        CHECK_MSG(e <= RTOL, "%s: entropy %.9g, PyTorch %.9g", variant, st.entropy, w);
        worst_stat_err = fmax(worst_stat_err, e);
        CHECK(st.n_targets == 14 && isnan(st.margin)); /* the unmasked rows' tokens */
    }
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

static const char *const VARIANTS[] = {"token_mean",    "token_mean_kl", "seq_mean",
                                       "seq_mean_kl",   "sum_norm",      "sum_norm_kl",
                                       "token_mean_sym"};
#define N_VARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

static void test_grpo_against_torch(void) {
    grpo_fixture f;
    if (fixture_load(&f) != AD_OK) {
        fixture_free(&f);
        return;
    }
    /* the forward: each completion token's log p */
    ad_trainer t;
    ad_example *rows = malloc(f.R * sizeof *rows);
    double *lp = malloc(f.R * sizeof *lp), worst_lp = 0;
    ad_error err = {{0}};
    if (rows && lp && gradient_trainer(&t, f.m, f.R) == AD_OK) {
        for (size_t i = 0; i < f.R; i++)
            rows[i] = f.pol[i].seq;
        ad_trainer_begin_step(&t);
        CHECK_MSG(ad_trainer_forward(&t, rows, f.R, lp, &err) == AD_OK, "%s", err.msg);
        for (size_t i = 0; i < f.R; i++) {
            size_t n = 0;
            const float *x = ad_trainer_token_logps(&t, i, &n);
            CHECK(x && n == rows[i].len - rows[i].loss_from);
            const float *w = f.tlp + i * f.T + rows[i].loss_from - 1;
            for (size_t k = 0; x && k < n; k++) {
                double e = fabs((double)x[k] - w[k]) / fmax(fabs(w[k]), 1e-3);
                CHECK_MSG(e <= RTOL, "row %zu token %zu: log p %.9g, PyTorch %.9g", i, k, x[k],
                          w[k]);
                worst_lp = fmax(worst_lp, e);
            }
        }
        ad_trainer_free(&t);
    }
    free(rows);
    free(lp);
    /* every variant at 1, 2, 3 and 8 rows per micro-batch */
    const size_t batch_sizes[] = {1, 2, 3, 8};
    for (size_t v = 0; v < N_VARIANTS; v++) {
        ad_objective_params p = fixture_params(&f, VARIANTS[v]);
        for (size_t k = 0; k < sizeof batch_sizes / sizeof batch_sizes[0]; k++)
            CHECK(compare_variant(&f, VARIANTS[v], &p, batch_sizes[k], 0));
    }
    /* negative controls: symmetric clipping where 0.28 was meant, the KL left
     * out, the other per-sequence aggregation, norm_len off by 1%: each must fail */
    ad_objective_params p = fixture_params(&f, "token_mean");
    p.epsilon_high = 0;
    CHECK_MSG(!compare_variant(&f, "token_mean", &p, 8, 1), "epsilon_high went unnoticed");
    p = fixture_params(&f, "token_mean_kl");
    p.kl_beta = 0;
    CHECK_MSG(!compare_variant(&f, "token_mean_kl", &p, 8, 1), "the KL term went unnoticed");
    p = fixture_params(&f, "seq_mean");
    p.loss_agg = AD_AGG_TOKEN_MEAN;
    CHECK_MSG(!compare_variant(&f, "seq_mean", &p, 8, 1), "the aggregation went unnoticed");
    p = fixture_params(&f, "sum_norm_kl");
    p.norm_len *= 1.01;
    CHECK_MSG(!compare_variant(&f, "sum_norm_kl", &p, 8, 1), "norm_len went unnoticed");
    printf("  worst relative errors vs PyTorch float64: token log p %.2e, loss %.2e, statistics "
           "%.2e, gradient %.2e (%s)\n",
           worst_lp, worst_loss_err, worst_stat_err, worst_grad_err, worst_grad_name);
    fixture_free(&f);
}

/* ---- masked sequences, empty signal -------------------------------------- */

/* Masked sequences anywhere in the batch, with junk in every field the
 * objective must not read, give the same gradient and loss bit for bit; an
 * all-masked batch and an all-zero-advantage batch make a valid step with an
 * exactly zero gradient. */
static void test_masked_and_empty(void) {
    ad_model *m = toy_model(8);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 2) != AD_OK) {
        ad_model_free(m);
        return;
    }
    ad_example ex[7];
    toy_examples(ex, 7, 3);
    float lp[7 * 24], junk[24];
    size_t at[7];
    current_logps(m, ex, 7, -0.1f, lp, at);
    for (size_t k = 0; k < 24; k++)
        junk[k] = NAN;
    const float adv[7] = {1.0f, -0.5f, 0.25f, -1.0f, 2.0f, 0.0f, -0.75f};
    ad_policy_example all[7], some[4];
    for (size_t i = 0; i < 7; i++)
        all[i] = (ad_policy_example){ex[i], lp + at[i], lp + at[i], adv[i], 0, 0, 0};
    /* rows 1, 4 and 5 masked in `all`; `some` is the other four alone */
    const size_t keep[4] = {0, 2, 3, 6};
    for (size_t k = 0; k < 4; k++)
        some[k] = all[keep[k]];
    const size_t drop[3] = {1, 4, 5};
    for (size_t k = 0; k < 3; k++) {
        all[drop[k]].masked = 1;
        all[drop[k]].old_logp = k == 0 ? junk : NULL;
        all[drop[k]].ref_logp = NULL;
        all[drop[k]].advantage = NAN;
    }
    size_t n = m->n_params;
    float *g = malloc(n * sizeof(float));
    const ad_loss_agg aggs[] = {AD_AGG_TOKEN_MEAN, AD_AGG_SEQ_MEAN_TOKEN_MEAN,
                                AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM};
    ad_error err = {{0}};
    for (size_t a = 0; g && a < 3; a++) {
        ad_objective_params p = grpo_params(0.2, 0.28, 0.2);
        p.loss_agg = aggs[a];
        p.norm_len = 8;
        ad_objective_batch bs = {.kind = AD_BATCH_GROUPS, .policy = some, .n = 4};
        ad_objective_batch ba = {.kind = AD_BATCH_GROUPS, .policy = all, .n = 7};
        ad_objective_stats s1, s2;
        CHECK_MSG(ad_objective_step(&ad_objective_grpo, &t, &p, &bs, &s1, &err) == AD_OK, "%s",
                  err.msg);
        memcpy(g, m->grads, n * sizeof(float));
        CHECK_MSG(ad_objective_step(&ad_objective_grpo, &t, &p, &ba, &s2, &err) == AD_OK, "%s",
                  err.msg);
        CHECK_MSG(memcmp(g, m->grads, n * sizeof(float)) == 0,
                  "%s: masked sequences changed the gradient", ad_loss_agg_name(aggs[a]));
        CHECK(s1.loss == s2.loss && s1.n_targets == s2.n_targets && s1.n_tokens == s2.n_tokens);
        CHECK(s1.clip_fraction == s2.clip_fraction && s1.kl == s2.kl && s1.ratio == s2.ratio);
        CHECK(s1.grad_norm > 0 && s1.grad_norm == s2.grad_norm);
    }
    /* every sequence masked: a step (the schedule advances), zero gradient,
     * loss 0, the token statistics NaN */
    ad_policy_example none[7];
    memcpy(none, all, sizeof none);
    for (size_t i = 0; i < 7; i++)
        none[i].masked = 1;
    ad_objective_batch bn = {.kind = AD_BATCH_GROUPS, .policy = none, .n = 7};
    ad_objective_stats st;
    size_t sched = t.sched_step;
    ad_objective_params p = grpo_params(0.2, 0.28, 0.2);
    CHECK_MSG(ad_objective_step(&ad_objective_grpo, &t, &p, &bn, &st, &err) == AD_OK, "%s",
              err.msg);
    int zero = 1;
    for (size_t i = 0; i < n; i++)
        zero &= m->grads[i] == 0.0f;
    CHECK(zero && st.grad_norm == 0.0f && t.sched_step == sched + 1);
    CHECK(st.loss == 0.0 && st.n_targets == 0 && st.n_tokens == 0);
    CHECK(isnan(st.clip_fraction) && isnan(st.kl) && isnan(st.ratio) && isnan(st.entropy));
    /* every advantage zero, no KL: a zero gradient, the statistics still measured */
    for (size_t i = 0; i < 4; i++)
        some[i].advantage = 0.0f;
    p.kl_beta = 0;
    ad_objective_batch bz = {.kind = AD_BATCH_GROUPS, .policy = some, .n = 4};
    CHECK_MSG(ad_objective_step(&ad_objective_grpo, &t, &p, &bz, &st, &err) == AD_OK, "%s",
              err.msg);
    zero = 1;
    for (size_t i = 0; i < n; i++)
        zero &= m->grads[i] == 0.0f;
    CHECK(zero && st.grad_norm == 0.0f && st.loss == 0.0 && st.clip_fraction == 0.0);
    CHECK_CLOSE(st.ratio, exp(0.1), 1e-5, 0); /* old log-probs were shifted by -0.1 */
    CHECK(isnan(st.kl) && st.entropy > 0);
    /* ... but with the KL on, the same batch has a gradient (towards the reference) */
    p.kl_beta = 0.5;
    for (size_t i = 0; i < 4; i++)
        some[i].ref_logp = some[i].old_logp; /* reference 0.1 nats below the policy */
    CHECK(ad_objective_step(&ad_objective_grpo, &t, &p, &bz, &st, &err) == AD_OK);
    CHECK(st.grad_norm > 0 && st.kl > 0);
    CHECK_CLOSE(st.kl, exp(-0.1) - (-0.1) - 1, 1e-4, 0);
    free(g);
    free_examples(ex, 7);
    ad_trainer_free(&t);
    ad_model_free(m);
}

/* ---- learning ------------------------------------------------------------ */

/* Two completions of one prompt, A = +1 and A = -1, on-policy (old_logp the
 * current model's before each step): 30 steps raise the first's log-prob and
 * lower the second's, for each aggregation; the A > 0 completion ends more
 * likely than the A < 0 one. */
static void test_learning(void) {
    const ad_loss_agg aggs[] = {AD_AGG_TOKEN_MEAN, AD_AGG_SEQ_MEAN_TOKEN_MEAN,
                                AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM};
    for (size_t a = 0; a < 3; a++) {
        ad_model *m = toy_model(21);
        if (!m) return;
        int32_t good[] = {AD_TOK_BOS, 5, 6, 7, 3, 4, 9, AD_TOK_EOS};
        int32_t bad[] = {AD_TOK_BOS, 5, 6, 7, 8, 10, AD_TOK_EOS};
        ad_example ex[2] = {{good, 8, 4}, {bad, 7, 4}};
        ad_train_config tc = ad_train_default_config(30);
        tc.batch_size = 2;
        tc.schedule.peak_lr = 3e-3f;
        tc.schedule.warmup_steps = tc.schedule.decay_steps = 0;
        ad_trainer t;
        ad_error err = {{0}};
        ad_objective_params p = grpo_params(0.2, 0.28, 0);
        p.loss_agg = aggs[a];
        p.norm_len = 8;
        float lp[16];
        size_t at[2];
        double before[2] = {0, 0}, after[2] = {0, 0};
        int rc = ad_trainer_init(&t, m, &tc, &err);
        for (size_t s = 0; rc == AD_OK && s <= 30; s++) {
            current_logps(m, ex, 2, 0.0f, lp, at);
            double *sum = s == 0 ? before : after;
            for (size_t i = 0; i < 2; i++) {
                sum[i] = 0;
                for (size_t k = 0; k < ex[i].len - ex[i].loss_from; k++)
                    sum[i] += lp[at[i] + k];
            }
            if (s == 30) break;
            ad_policy_example pol[2] = {{ex[0], lp + at[0], NULL, 1.0f, 0, 0, 0},
                                        {ex[1], lp + at[1], NULL, -1.0f, 0, 0, 0}};
            ad_objective_batch b = {.kind = AD_BATCH_GROUPS, .policy = pol, .n = 2};
            ad_objective_stats st;
            rc = ad_objective_step(&ad_objective_grpo, &t, &p, &b, &st, &err);
            if (rc == AD_OK) CHECK_CLOSE(st.ratio, 1.0, 1e-6, 0); /* on-policy */
        }
        CHECK_MSG(rc == AD_OK, "%s", err.msg);
        printf("  %s: log p(A > 0) %.4f -> %.4f, log p(A < 0) %.4f -> %.4f\n",
               ad_loss_agg_name(aggs[a]), before[0], after[0], before[1], after[1]);
        CHECK(after[0] > before[0] + 1.0);
        CHECK(after[1] < before[1] - 1.0);
        CHECK(after[0] > after[1]);
        ad_trainer_free(&t);
        ad_model_free(m);
    }
}

/* ---- registry, parameters, refusals -------------------------------------- */

static void test_registry_and_params(void) {
    const ad_objective *o = ad_objective_find("grpo");
    CHECK(o == &ad_objective_grpo && o->batch == AD_BATCH_GROUPS);
    ad_objective_params p = ad_objective_default_params();
    CHECK(p.epsilon == 0.2 && p.epsilon_high == 0.0 && p.kl_beta == 0.0 &&
          p.loss_agg == AD_AGG_TOKEN_MEAN && p.norm_len == 0.0);
    ad_error err = {{0}};
    CHECK(ad_objective_params_check(&p, &err) == AD_OK);
    ad_loss_agg g = AD_AGG_TOKEN_MEAN;
    for (int k = 2; k >= 0; k--)
        CHECK(ad_loss_agg_parse(ad_loss_agg_name((ad_loss_agg)k), &g, &err) == AD_OK &&
              g == (ad_loss_agg)k);
    CHECK(strcmp(ad_loss_agg_name(AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM), "seq-mean-token-sum-norm") == 0);
    CHECK(strcmp(ad_loss_agg_name((ad_loss_agg)3), "?") == 0);
    CHECK(ad_loss_agg_parse("dapo", &g, &err) == AD_ERR && strstr(err.msg, "'dapo'") &&
          g == AD_AGG_TOKEN_MEAN);
    /* each range, by the key it names: field offsets into ad_objective_params */
    struct {
        size_t field;
        double bad;
        const char *key;
    } cases[] = {
        {offsetof(ad_objective_params, epsilon), 0.0, "grpo.epsilon"},
        {offsetof(ad_objective_params, epsilon), 1.0, "grpo.epsilon"},
        {offsetof(ad_objective_params, epsilon), NAN, "grpo.epsilon"},
        {offsetof(ad_objective_params, epsilon_high), -0.1, "grpo.epsilon_high"},
        {offsetof(ad_objective_params, epsilon_high), INFINITY, "grpo.epsilon_high"},
        {offsetof(ad_objective_params, kl_beta), -1e-3, "grpo.kl_beta"},
        {offsetof(ad_objective_params, kl_beta), NAN, "grpo.kl_beta"},
        {offsetof(ad_objective_params, norm_len), -1.0, "grpo.norm_len"},
        {offsetof(ad_objective_params, norm_len), NAN, "grpo.norm_len"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = ad_objective_default_params();
        double bad = cases[i].bad;
        memcpy((char *)&p + cases[i].field, &bad, sizeof bad);
        CHECK_MSG(ad_objective_params_check(&p, &err) == AD_ERR && strstr(err.msg, cases[i].key),
                  "case %zu: '%s'", i, err.msg);
    }
    p = ad_objective_default_params();
    p.loss_agg = (ad_loss_agg)5;
    CHECK(ad_objective_params_check(&p, &err) == AD_ERR && strstr(err.msg, "grpo.loss_agg"));
    p.loss_agg = AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
    CHECK(ad_objective_params_check(&p, &err) == AD_ERR && strstr(err.msg, "grpo.norm_len"));
    p.norm_len = 512;
    CHECK(ad_objective_params_check(&p, &err) == AD_OK);
}

static void test_refusals(void) {
    ad_model *m = toy_model(3);
    ad_trainer t;
    if (!m || gradient_trainer(&t, m, 2) != AD_OK) {
        ad_model_free(m);
        return;
    }
    t.cfg.schedule.peak_lr = 1e-2f; /* a step that got through would move the weights */
    ad_example ex[4];
    toy_examples(ex, 4, 9);
    float lp[4 * 24], bad_lp[24];
    size_t at[4];
    current_logps(m, ex, 4, 0.0f, lp, at);
    ad_policy_example pol[4];
    for (size_t i = 0; i < 4; i++)
        pol[i] = (ad_policy_example){ex[i], lp + at[i], lp + at[i], i % 2 ? -1.0f : 1.0f, 0, 0, 0};
    ad_objective_batch b = {.kind = AD_BATCH_GROUPS, .policy = pol, .n = 4};
    ad_objective_batch sb = {.kind = AD_BATCH_SEQUENCES, .seqs = ex, .n = 4};
    const ad_objective *grpo = &ad_objective_grpo, *sft = &ad_objective_sft;
    ad_objective_params p = grpo_params(0.2, 0.28, 0.1);

    expect_refused(grpo, &t, &p, &sb, "consumes a batch of groups, got one of sequences");
    expect_refused(sft, &t, &p, &b, "consumes a batch of sequences, got one of groups");
    ad_objective_batch empty = b;
    empty.n = 0;
    expect_refused(grpo, &t, &p, &empty, "empty batch");
    empty.n = 2;
    empty.policy = NULL;
    expect_refused(grpo, &t, &p, &empty, "a batch of 2 groups but no array");
    p.epsilon = 1.5;
    expect_refused(grpo, &t, &p, &b, "grpo.epsilon");
    p = grpo_params(0.2, 0.28, 0.1);
    p.loss_agg = AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
    expect_refused(grpo, &t, &p, &b, "grpo.norm_len");
    p = grpo_params(0.2, 0.28, 0.1);
    /* bad sequences: the last one, so earlier ones would have been processed */
    ad_policy_example keep = pol[3];
    pol[3].seq.loss_from = pol[3].seq.len;
    expect_refused(grpo, &t, &p, &b, "grpo: sequence 3: bad shape");
    pol[3] = keep;
    pol[3].masked = 2;
    expect_refused(grpo, &t, &p, &b, "sequence 3: masked is 2");
    pol[3] = keep;
    pol[3].old_logp = NULL;
    expect_refused(grpo, &t, &p, &b, "sequence 3: no old log-probs");
    pol[3] = keep;
    memcpy(bad_lp, keep.old_logp, sizeof bad_lp);
    bad_lp[ex[3].len - ex[3].loss_from - 1] = INFINITY; /* its last token */
    pol[3].old_logp = bad_lp;
    expect_refused(grpo, &t, &p, &b, "sequence 3: an old log-prob");
    pol[3] = keep;
    pol[3].ref_logp = NULL;
    expect_refused(grpo, &t, &p, &b, "sequence 3: kl_beta 0.1 needs reference log-probs");
    pol[3].ref_logp = bad_lp;
    expect_refused(grpo, &t, &p, &b, "sequence 3: a reference log-prob");
    pol[3] = keep;
    pol[3].advantage = NAN;
    expect_refused(grpo, &t, &p, &b, "sequence 3: advantage nan");
    pol[3] = keep;
    /* a token outside the vocabulary is found by the forward pass, mid-step */
    int32_t tok = ex[3].tokens[ex[3].len - 1];
    ex[3].tokens[ex[3].len - 1] = 99;
    pol[3].seq = ex[3];
    expect_refused(grpo, &t, &p, &b, "grpo: sequences 2..3: model forward: target 99");
    ex[3].tokens[ex[3].len - 1] = tok;
    /* with kl_beta 0 a missing reference is fine, and the step goes through */
    p.kl_beta = 0;
    pol[3].ref_logp = NULL;
    ad_error err = {{0}};
    CHECK_MSG(ad_objective_step(grpo, &t, &p, &b, NULL, &err) == AD_OK, "%s", err.msg);
    CHECK(t.sched_step == 1);
    free_examples(ex, 4);
    ad_trainer_free(&t);
    ad_model_free(m);
}

int main(void) {
    RUN(test_advantage_values);
    RUN(test_advantage_properties);
    RUN(test_advantage_refusals);
    RUN(test_zero_variance);
    RUN(test_token_loss_values);
    RUN(test_token_loss_derivatives);
    RUN(test_trainer_token_pieces);
    RUN(test_grpo_against_torch);
    RUN(test_masked_and_empty);
    RUN(test_learning);
    RUN(test_registry_and_params);
    RUN(test_refusals);
    return test_summary();
}
