/* objective_grpo.c: the GRPO-family policy objective: a clipped importance
 * ratio per completion token (PPO's surrogate, with DAPO's clip-higher), an
 * optional k3 KL to a frozen reference, and three ways to aggregate the token
 * losses (DAPO's token mean, GRPO's per-sequence mean, Dr. GRPO's constant
 * divisor), on sampled completions with an advantage each.
 *
 * The step loss is L = sum_i sum_t c_i loss_it over the unmasked sequences i
 * and their completion tokens t, with c_i the aggregation's coefficient:
 *     token-mean               c_i = 1 / N        N: unmasked completion tokens
 *     seq-mean-token-mean      c_i = 1 / (S n_i)  S: unmasked sequences, n_i: i's tokens
 *     seq-mean-token-sum-norm  c_i = 1 / (S norm_len)
 * Each token's loss depends on the policy only through its own log p, so the
 * gradient is the backward of  -sum_it w_it logp_it  with w_it = -c_i dloss_it/dlogp:
 * one forward and one backward per micro-batch (cfg.batch_size rows of
 * unmasked sequences), then the optimizer step. The c_i are known before the
 * first forward (they depend on shapes only), so the split into micro-batches
 * does not change the gradient.
 *
 * Masked sequences are never forwarded and read only for their shape. A step
 * with no unmasked token, or with every weight zero (all advantages zero and
 * kl_beta = 0), runs no backward: the gradient is exactly zero, and the
 * optimizer step is still taken (see docs/rl.md).
 *
 * The step machinery (ad_policy_token_step, objective_internal.h) takes the
 * per-token loss as a function, so objective_nft.c's NFT runs through it too.
 *
 * Not here: sampling, rewards and advantages (loop/advantage.h), the
 * per-token log-probs of the sampling policy and of the reference (the
 * caller's, e.g. ad_score_sequences), the formulas' derivation (docs/rl.md). */
#include <math.h>
#include <stdlib.h>

#include "loop/objective_internal.h"

double ad_grpo_token_loss(const ad_objective_params *p, double logp, double old_logp,
                          double ref_logp, double advantage, double *d_logp, int *clipped) {
    double eh = p->epsilon_high > 0.0 ? p->epsilon_high : p->epsilon;
    double rho = exp(logp - old_logp), A = advantage;
    double lo = 1.0 - p->epsilon, hi = 1.0 + eh;
    /* min(rho A, clip(rho) A) picks the clipped term, which is flat in logp,
     * only beyond the bound on the side A pushes towards */
    int clip = (A > 0.0 && rho > hi) || (A < 0.0 && rho < lo);
    double loss, d;
    if (clip) {
        loss = -(A > 0.0 ? hi : lo) * A;
        d = 0.0;
    } else {
        loss = -rho * A;
        d = -rho * A; /* d rho / d logp = rho */
    }
    if (p->kl_beta > 0.0) {
        double u = ref_logp - logp, eu = exp(u);
        loss += p->kl_beta * (eu - u - 1.0);
        d += p->kl_beta * (1.0 - eu); /* d/dlogp of exp(q - p) - (q - p) - 1 */
    }
    if (d_logp) *d_logp = d;
    if (clipped) *clipped = clip;
    return loss;
}

/* Every value of x[0..n) is finite. */
static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Sequence i is well-formed: its shape fits the trainer's model; unmasked,
 * its old (and, with kl_beta > 0, reference) log-probs are set and finite and
 * its advantage finite. Adds an unmasked sequence's completion tokens and all
 * its tokens to *n_targets, *n_tokens and counts it in *n_seqs. */
static int check_policy(const ad_trainer *t, const ad_objective_params *p,
                        const ad_policy_example *pe, size_t i, size_t *n_targets, size_t *n_tokens,
                        size_t *n_seqs, ad_error *err) {
    size_t tg = 0, tk = 0;
    if (ad_trainer_check_examples(t, &pe->seq, 1, &tg, &tk, err) != AD_OK)
        return ad_error_set(err,
                            "sequence %zu: bad shape (len %zu, loss from %zu; need 1 <= "
                            "loss_from < len <= %zu)",
                            i, pe->seq.len, pe->seq.loss_from, t->model->cfg.max_seq_len);
    if (pe->masked != 0 && pe->masked != 1)
        return ad_error_set(err, "sequence %zu: masked is %d (0 or 1)", i, pe->masked);
    if (pe->masked) return AD_OK;
    if (!pe->old_logp)
        return ad_error_set(err, "sequence %zu: no old log-probs (%zu completion tokens)", i, tg);
    if (!all_finite(pe->old_logp, tg))
        return ad_error_set(err, "sequence %zu: an old log-prob of its %zu tokens is not finite", i,
                            tg);
    if (p->kl_beta > 0.0 && !pe->ref_logp)
        return ad_error_set(err, "sequence %zu: kl_beta %g needs reference log-probs", i,
                            p->kl_beta);
    if (p->kl_beta > 0.0 && !all_finite(pe->ref_logp, tg))
        return ad_error_set(
            err, "sequence %zu: a reference log-prob of its %zu tokens is not finite", i, tg);
    if (!isfinite(pe->advantage))
        return ad_error_set(err, "sequence %zu: advantage %g is not finite", i,
                            (double)pe->advantage);
    *n_targets += tg;
    *n_tokens += tk;
    *n_seqs += 1;
    return AD_OK;
}

/* Sums over the step's unmasked tokens, for the loss and the stats. */
typedef struct token_sums {
    double loss, clipped, kl, ratio, entropy;
} token_sums;

/* The step's buffers: the unmasked sequences' indices, one micro-batch's rows,
 * their log-prob sums (unused but required), token weights and row pointers. */
typedef struct grpo_work {
    size_t *idx;      /* [S] indices of the unmasked sequences */
    ad_example *rows; /* [batch_size] */
    double *row_logp; /* [batch_size] */
    float *w;         /* [N] token weights, all sequences one after the other */
    const float **wp; /* [batch_size] each row's slice of w */
} grpo_work;

static void work_free(grpo_work *wk) {
    free(wk->idx);
    free(wk->rows);
    free(wk->row_logp);
    free(wk->w);
    free(wk->wp);
}

/* c_i, the weight of sequence i's token losses in the step loss. */
static double agg_coef(const ad_objective_params *p, size_t n_i, size_t n_seqs, size_t n_tok) {
    switch (p->loss_agg) {
    case AD_AGG_SEQ_MEAN_TOKEN_MEAN:
        return 1.0 / ((double)n_seqs * (double)n_i);
    case AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM:
        return 1.0 / ((double)n_seqs * p->norm_len);
    case AD_AGG_TOKEN_MEAN:
    default:
        return 1.0 / (double)n_tok;
    }
}

/* One micro-batch of k unmasked sequences idx[0..k): the forward, each token's
 * loss and weight (written at *w_at onwards), one backward unless every weight
 * of the micro-batch is zero. */
static int micro_batch(ad_trainer *t, const ad_objective_params *p, ad_token_loss_fn loss,
                       const ad_policy_example *pol, const size_t *idx, size_t k, size_t n_seqs,
                       size_t n_tok, grpo_work *wk, size_t *w_at, token_sums *sum, ad_error *err) {
    for (size_t r = 0; r < k; r++)
        wk->rows[r] = pol[idx[r]].seq;
    if (ad_trainer_forward(t, wk->rows, k, wk->row_logp, err) != AD_OK) return AD_ERR;
    int any = 0;
    for (size_t r = 0; r < k; r++) {
        const ad_policy_example *pe = &pol[idx[r]];
        size_t n = 0;
        const float *lp = ad_trainer_token_logps(t, r, &n);
        float *w = wk->w + *w_at;
        double c = agg_coef(p, n, n_seqs, n_tok);
        for (size_t j = 0; j < n; j++) {
            double ref = p->kl_beta > 0.0 ? (double)pe->ref_logp[j] : 0.0, d = 0;
            int clipped = 0;
            double l = loss(p, pe, j, lp[j], &d, &clipped);
            sum->loss += c * l;
            sum->clipped += clipped;
            sum->ratio += exp((double)lp[j] - pe->old_logp[j]);
            if (p->kl_beta > 0.0) sum->kl += exp(ref - lp[j]) - (ref - lp[j]) - 1.0;
            w[j] = (float)(-c * d); /* the backward minimises -sum w * logp */
            any |= w[j] != 0.0f;
        }
        sum->entropy += ad_trainer_token_entropy_sum(t, r);
        wk->wp[r] = w;
        *w_at += n;
    }
    if (any) ad_trainer_backward_tokens(t, wk->wp, 1.0f);
    return AD_OK;
}

int ad_policy_token_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                         ad_token_loss_fn loss, const char *name, ad_objective_stats *st,
                         ad_error *err) {
    size_t n = b->n, n_tok = 0, n_all = 0, n_seqs = 0, rows = t->cfg.batch_size;
    for (size_t i = 0; i < n; i++)
        if (check_policy(t, p, &b->policy[i], i, &n_tok, &n_all, &n_seqs, err) != AD_OK)
            return ad_error_prefix(err, "%s: ", name);
    grpo_work wk = {0};
    wk.idx = malloc((n_seqs ? n_seqs : 1) * sizeof *wk.idx);
    wk.rows = malloc(rows * sizeof *wk.rows);
    wk.row_logp = malloc(rows * sizeof *wk.row_logp);
    wk.w = malloc((n_tok ? n_tok : 1) * sizeof *wk.w);
    wk.wp = malloc(rows * sizeof *wk.wp);
    if (!wk.idx || !wk.rows || !wk.row_logp || !wk.w || !wk.wp) {
        work_free(&wk);
        return ad_error_set(err, "%s: out of memory for %zu sequences", name, n);
    }
    for (size_t i = 0, s = 0; i < n; i++)
        if (!b->policy[i].masked) wk.idx[s++] = i;
    token_sums sum = {0, 0, 0, 0, 0};
    size_t w_at = 0;
    int rc = AD_OK;
    ad_trainer_begin_step(t);
    for (size_t from = 0; rc == AD_OK && from < n_seqs; from += rows) {
        size_t k = n_seqs - from < rows ? n_seqs - from : rows;
        rc = micro_batch(t, p, loss, b->policy, wk.idx + from, k, n_seqs, n_tok, &wk, &w_at, &sum,
                         err);
        if (rc != AD_OK)
            ad_error_prefix(err, "sequences %zu..%zu: ", wk.idx[from], wk.idx[from + k - 1]);
    }
    work_free(&wk);
    if (rc != AD_OK) {
        ad_trainer_begin_step(t); /* drop the partial gradients */
        return ad_error_prefix(err, "%s: ", name);
    }
    st->grad_norm = ad_trainer_finish_step(t, &st->lr);
    st->loss = sum.loss;
    st->n_targets = n_tok;
    st->n_tokens = n_all;
    if (n_tok > 0) {
        double N = (double)n_tok;
        st->clip_fraction = sum.clipped / N;
        st->ratio = sum.ratio / N;
        st->entropy = sum.entropy / N;
        if (p->kl_beta > 0.0) st->kl = sum.kl / N;
    }
    return AD_OK;
}

/* ad_grpo_token_loss on sequence pe's token j. */
static double grpo_token(const ad_objective_params *p, const ad_policy_example *pe, size_t j,
                         double logp, double *d_logp, int *flag) {
    double ref = p->kl_beta > 0.0 ? (double)pe->ref_logp[j] : 0.0;
    return ad_grpo_token_loss(p, logp, pe->old_logp[j], ref, pe->advantage, d_logp, flag);
}

static int grpo_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                     ad_objective_stats *st, ad_error *err) {
    return ad_policy_token_step(t, p, b, grpo_token, "grpo", st, err);
}

const ad_objective ad_objective_grpo = {
    .name = "grpo",
    .summary = "policy gradient on sampled groups: clipped ratio (clip-higher), k3 KL, "
               "token-mean / seq-mean-token-mean / seq-mean-token-sum-norm",
    .batch = AD_BATCH_GROUPS,
    .step = grpo_step,
};
