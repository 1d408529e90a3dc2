/* objective_nft.c: Negative-aware Fine-Tuning (Chen et al. 2025, "Bridging
 * Supervised Learning and Reinforcement Learning in Math Reasoning"): learns
 * from a round's wrong samples as well as its right ones.
 *
 * The sampling policy splits as pi_old = r_q pi_pos + (1 - r_q) pi_neg, with
 * r_q the share of prompt q's samples judged correct. NFT fits pi_theta to
 * pi_pos by maximum likelihood on the right samples and, on the wrong ones,
 * maximises the likelihood of the implicit negative policy
 *     pi_neg = (pi_old - r_q pi_theta) / (1 - r_q),
 * which is pi_theta's own parameterisation, so the negatives push pi_theta
 * away from them. Per token, with R = pi_theta / pi_old, the right samples
 * score log R (SFT's gradient) and the wrong ones log((1 - r_q R) / (1 - r_q)),
 * floored at nft.eps in value only; ad_nft_token_loss has the exact form, the
 * prompt weight and the guards. Tokens are aggregated by params.loss_agg
 * through the step GRPO uses (ad_policy_token_step), token-mean by default.
 *
 * A sequence of a prompt with r_q = 0 or 1 carries no signal (all right or
 * all wrong: the paper drops such prompts, as DAPO's dynamic sampling does)
 * and is treated as masked. The step ignores kl_beta (NFT has no KL term) and
 * the sequences' advantages.
 *
 * Not here: which samples are right (the select stage's filters), the
 * sampling policy's per-token log-probs (the optimize stage scores them with
 * the round's starting model), the formulas' derivation (docs/objectives.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/objective_internal.h"

/* The prompt weight w(r) of ad_nft_weight, r in (0, 1). */
static double prompt_weight(ad_nft_weight kind, double r) {
    switch (kind) {
    case AD_NFT_WEIGHT_GRPO:
        return sqrt((1.0 - r) / r);
    case AD_NFT_WEIGHT_NONE:
        return 1.0;
    case AD_NFT_WEIGHT_DR_GRPO:
    default:
        return 1.0 - r;
    }
}

double ad_nft_token_loss(const ad_objective_params *p, double logp, double old_logp,
                         double correct_rate, int positive, double *d_logp, int *clipped) {
    double loss = 0.0, d = 0.0;
    int clip = 0;
    if (correct_rate > 0.0 && correct_rate < 1.0) {
        double r = fmin(fmax(correct_rate, AD_NFT_RATE_MIN), AD_NFT_RATE_MAX);
        double w = prompt_weight(p->nft_weight, r), x = logp - old_logp;
        /* past the cap the log-ratio is a constant: no gradient through R */
        int live = x <= AD_NFT_MAX_LOG_RATIO;
        double D = live ? x : AD_NFT_MAX_LOG_RATIO, R = exp(D);
        clip = !live;
        if (positive) {
            loss = -w * D;
            d = live ? -w : 0.0;
        } else {
            double q = (1.0 - r * R) / (1.0 - r), v = fmax(q, p->nft_eps);
            double nw = p->nft_neg_weight * w;
            clip |= q < p->nft_eps;
            loss = -nw * log(v);
            /* d/dlogp of -log(v) with dq/dlogp = -r R / (1 - r), the value
             * clip passing the gradient through (1 / v, not 0) */
            d = live ? nw * (r * R / (1.0 - r)) / v : 0.0;
        }
    }
    if (d_logp) *d_logp = d;
    if (clipped) *clipped = clip;
    return loss;
}

/* ad_nft_token_loss on sequence pe's token j. */
static double nft_token(const ad_objective_params *p, const ad_policy_example *pe, size_t j,
                        double logp, double *d_logp, int *flag) {
    return ad_nft_token_loss(p, logp, pe->old_logp[j], pe->correct_rate, pe->positive, d_logp,
                             flag);
}

/* Sequence i's nft fields: r_q in [0, 1], positive 0 or 1, and consistent (a
 * right sample means r_q > 0, a wrong one r_q < 1). */
static int check_sample(const ad_policy_example *pe, size_t i, ad_error *err) {
    double r = pe->correct_rate;
    if (!(r >= 0.0 && r <= 1.0))
        return ad_error_set(err, "nft: sequence %zu: correct rate %g is not in [0, 1]", i, r);
    if (pe->positive != 0 && pe->positive != 1)
        return ad_error_set(err, "nft: sequence %zu: positive is %d (0 or 1)", i, pe->positive);
    if ((pe->positive && r == 0.0) || (!pe->positive && r == 1.0))
        return ad_error_set(err, "nft: sequence %zu: a %s sample of a prompt with correct rate %g",
                            i, pe->positive ? "right" : "wrong", r);
    return AD_OK;
}

static int nft_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                    ad_objective_stats *st, ad_error *err) {
    for (size_t i = 0; i < b->n; i++)
        if (check_sample(&b->policy[i], i, err) != AD_OK) return AD_ERR;
    /* a shallow copy whose all-right and all-wrong prompts' sequences are masked */
    ad_policy_example *rows = malloc(b->n * sizeof *rows);
    if (!rows) return ad_error_set(err, "nft: out of memory for %zu sequences", b->n);
    memcpy(rows, b->policy, b->n * sizeof *rows);
    for (size_t i = 0; i < b->n; i++) {
        double r = rows[i].correct_rate;
        rows[i].masked |= r == 0.0 || r == 1.0;
        rows[i].advantage = 0.0f; /* not read; keeps the shared checks quiet */
    }
    ad_objective_params q = *p;
    q.kl_beta = 0.0;
    ad_objective_batch local = *b;
    local.policy = rows;
    int rc = ad_policy_token_step(t, &q, &local, nft_token, "nft", st, err);
    free(rows);
    return rc;
}

const ad_objective ad_objective_nft = {
    .name = "nft",
    .summary = "negative-aware fine-tuning: likelihood of the right samples and of the implicit "
               "negative policy on the wrong ones",
    .batch = AD_BATCH_SAMPLES,
    .step = nft_step,
};
