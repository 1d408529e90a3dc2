/* objective_dpo.c: direct preference optimisation and its variants (sigmoid
 * DPO, conservative DPO with label smoothing, IPO, RPO) on pairs of one prompt,
 * against log-probs of a frozen reference given with each pair.
 *
 * The step loss is the mean of ad_dpo_pair_loss over the batch's pairs. Its
 * gradient needs one forward pass per row and nothing else: each pair's loss
 * depends on the policy only through lp_c and lp_r, so
 *     dL/dtheta = (1/n) sum_pairs (dL/dlp_c) dlp_c/dtheta + (dL/dlp_r) dlp_r/dtheta,
 * which is the backward of  -(1/n) sum_rows w_row * lp_row  with w = -dL/dlp.
 * Rows go c0, r0, c1, r1, ... in micro-batches of an even number of rows (at
 * most max(2, batch_size rounded down to even)), so both halves of a pair are
 * in one forward and their weights are known before its backward.
 *
 * Not here: building pairs (the select stage), the reference log-probs
 * (ad_score_sequences on the frozen model), the formulas' derivation
 * (docs/objectives.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/objective.h"

/* log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)): exp never overflows. */
static double log_sigmoid(double x) {
    return fmin(x, 0.0) - log1p(exp(-fabs(x)));
}

static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

double ad_dpo_pair_loss(const ad_objective_params *p, double lp_c, double lp_r, double ref_c,
                        double ref_r, size_t len_c, size_t len_r, double *d_lp_c, double *d_lp_r) {
    double nc = len_c ? (double)len_c : 1.0, nr = len_r ? (double)len_r : 1.0;
    double loss, dc, dr;
    if (p->loss == AD_DPO_IPO) {
        /* per-token log-ratios, pulled towards a margin of 1/(2 beta) */
        double u = (lp_c - ref_c) / nc - (lp_r - ref_r) / nr - 1.0 / (2.0 * p->beta);
        loss = u * u;
        dc = 2.0 * u / nc;
        dr = -2.0 * u / nr;
    } else {
        double e = p->label_smoothing, h = p->beta * ((lp_c - ref_c) - (lp_r - ref_r));
        loss = -(1.0 - e) * log_sigmoid(h) - e * log_sigmoid(-h);
        /* d/dh log sigmoid(h) = sigmoid(-h), d/dh log sigmoid(-h) = -sigmoid(h) */
        double dh = -(1.0 - e) * sigmoid(-h) + e * sigmoid(h);
        dc = p->beta * dh;
        dr = -p->beta * dh;
        if (p->loss == AD_DPO_RPO) {
            loss += p->nll_weight * (-lp_c / nc);
            dc -= p->nll_weight / nc;
        }
    }
    if (d_lp_c) *d_lp_c = dc;
    if (d_lp_r) *d_lp_r = dr;
    return loss;
}

/* Pair i is well-formed: both sequences fit the trainer's model, share the
 * prompt tokens, and the reference log-probs are finite. Adds the pair's
 * completion tokens and all its tokens to *n_targets, *n_tokens. */
static int check_pair(const ad_trainer *t, const ad_pair_example *pr, size_t i, size_t *n_targets,
                      size_t *n_tokens, ad_error *err) {
    const ad_example *c = &pr->chosen, *r = &pr->rejected;
    size_t tg[2] = {0, 0}, tk[2] = {0, 0};
    if (ad_trainer_check_examples(t, c, 1, &tg[0], &tk[0], err) != AD_OK ||
        ad_trainer_check_examples(t, r, 1, &tg[1], &tk[1], err) != AD_OK)
        return ad_error_set(err,
                            "dpo: pair %zu: bad sequence shape (chosen len %zu loss from %zu, "
                            "rejected len %zu loss from %zu; need 1 <= loss_from < len <= %zu)",
                            i, c->len, c->loss_from, r->len, r->loss_from,
                            t->model->cfg.max_seq_len);
    if (c->loss_from != r->loss_from ||
        memcmp(c->tokens, r->tokens, c->loss_from * sizeof *c->tokens) != 0)
        return ad_error_set(err, "dpo: pair %zu: chosen and rejected have different prompts", i);
    if (!isfinite(pr->ref_chosen) || !isfinite(pr->ref_rejected))
        return ad_error_set(err, "dpo: pair %zu: reference log-probs %g, %g are not finite", i,
                            pr->ref_chosen, pr->ref_rejected);
    *n_targets += tg[0] + tg[1];
    *n_tokens += tk[0] + tk[1];
    return AD_OK;
}

/* Sums over the step's pairs, for the stats. */
typedef struct pair_sums {
    double loss, margin, wins, lp_c, lp_r;
} pair_sums;

/* Pairs pairs[0..np) as rows c0, r0, c1, r1, ... (rows, logp, w have 2 np
 * slots): one forward, the pair losses and row weights, one backward with
 * scale 1/n_pairs. */
static int micro_batch(ad_trainer *t, const ad_objective_params *p, const ad_pair_example *pairs,
                       size_t np, size_t n_pairs, ad_example *rows, double *logp, float *w,
                       pair_sums *sum, ad_error *err) {
    for (size_t k = 0; k < np; k++) {
        rows[2 * k] = pairs[k].chosen;
        rows[2 * k + 1] = pairs[k].rejected;
    }
    if (ad_trainer_forward(t, rows, 2 * np, logp, err) != AD_OK) return AD_ERR;
    for (size_t k = 0; k < np; k++) {
        const ad_pair_example *pr = &pairs[k];
        double lc = logp[2 * k], lr = logp[2 * k + 1], dc = 0, dr = 0;
        size_t len_c = pr->chosen.len - pr->chosen.loss_from;
        size_t len_r = pr->rejected.len - pr->rejected.loss_from;
        sum->loss +=
            ad_dpo_pair_loss(p, lc, lr, pr->ref_chosen, pr->ref_rejected, len_c, len_r, &dc, &dr);
        double margin = (lc - pr->ref_chosen) - (lr - pr->ref_rejected);
        sum->margin += margin;
        sum->wins += margin > 0;
        sum->lp_c += lc;
        sum->lp_r += lr;
        w[2 * k] = (float)-dc; /* the backward minimises -sum w * logp */
        w[2 * k + 1] = (float)-dr;
    }
    ad_trainer_backward(t, w, (float)(1.0 / (double)n_pairs));
    return AD_OK;
}

static int dpo_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                    ad_objective_stats *st, ad_error *err) {
    size_t n = b->n, n_targets = 0, n_tokens = 0;
    for (size_t i = 0; i < n; i++)
        if (check_pair(t, &b->pairs[i], i, &n_targets, &n_tokens, err) != AD_OK) return AD_ERR;
    size_t per_mb = t->cfg.batch_size / 2 ? t->cfg.batch_size / 2 : 1; /* pairs per micro-batch */
    if (per_mb > n) per_mb = n;
    ad_example *rows = malloc(2 * per_mb * sizeof *rows);
    double *logp = malloc(2 * per_mb * sizeof *logp);
    float *w = malloc(2 * per_mb * sizeof *w);
    int rc =
        rows && logp && w ? AD_OK : ad_error_set(err, "out of memory for %zu rows", 2 * per_mb);
    pair_sums sum = {0, 0, 0, 0, 0};
    if (rc == AD_OK) ad_trainer_begin_step(t);
    for (size_t from = 0; rc == AD_OK && from < n; from += per_mb) {
        size_t np = n - from < per_mb ? n - from : per_mb;
        rc = micro_batch(t, p, b->pairs + from, np, n, rows, logp, w, &sum, err);
        if (rc != AD_OK) ad_error_prefix(err, "pairs %zu..%zu: ", from, from + np - 1);
    }
    free(rows);
    free(logp);
    free(w);
    if (rc != AD_OK) {
        ad_trainer_begin_step(t); /* drop the partial gradients */
        return ad_error_prefix(err, "dpo: ");
    }
    st->grad_norm = ad_trainer_finish_step(t, &st->lr);
    st->loss = sum.loss / (double)n;
    st->n_targets = n_targets;
    st->n_tokens = n_tokens;
    st->margin = sum.margin / (double)n;
    st->pref_accuracy = sum.wins / (double)n;
    st->chosen_logp = sum.lp_c / (double)n;
    st->rejected_logp = sum.lp_r / (double)n;
    return AD_OK;
}

const ad_objective ad_objective_dpo = {
    .name = "dpo",
    .summary = "preference pairs against a frozen reference: sigmoid (DPO), ipo or rpo",
    .batch = AD_BATCH_PAIRS,
    .step = dpo_step,
};
