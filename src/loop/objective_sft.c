/* objective_sft.c: supervised fine-tuning as an objective: the mean over all
 * completion tokens of -log p, exactly ad_trainer_step (bit for bit), so the
 * optimize stage can drive SFT and preference objectives through one seam.
 * With per-sequence weights w_i the loss is
 *     -(1 / T) sum_i w_i log p(y_i | x_i),   T = completion tokens of the batch,
 * (weights of 1 are plain SFT; a negative weight pushes a sequence down, as
 * unlikelihood and negative-aware objectives do). */
#include <stdlib.h>

#include "loop/objective.h"

/* The weighted step: micro-batches of cfg.batch_size rows through the
 * trainer's pieces. */
static int weighted_step(ad_trainer *t, const ad_objective_batch *b, ad_objective_stats *st,
                         ad_error *err) {
    size_t targets = 0, tokens = 0, rows = t->cfg.batch_size;
    if (ad_trainer_check_examples(t, b->seqs, b->n, &targets, &tokens, err) != AD_OK) return AD_ERR;
    double *lp = malloc(rows * sizeof *lp), sum = 0;
    if (!lp) return ad_error_set(err, "out of memory");
    ad_trainer_begin_step(t);
    for (size_t from = 0; from < b->n; from += rows) {
        size_t k = b->n - from < rows ? b->n - from : rows;
        if (ad_trainer_forward(t, b->seqs + from, k, lp, err) != AD_OK) {
            ad_trainer_begin_step(t); /* drop the partial gradients */
            free(lp);
            return AD_ERR;
        }
        for (size_t i = 0; i < k; i++)
            sum -= (double)b->weights[from + i] * lp[i];
        ad_trainer_backward(t, b->weights + from, 1.0f / (float)targets);
    }
    free(lp);
    st->grad_norm = ad_trainer_finish_step(t, &st->lr);
    st->loss = sum / (double)targets;
    st->n_tokens = tokens;
    st->n_targets = targets;
    return AD_OK;
}

static int sft_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                    ad_objective_stats *st, ad_error *err) {
    if (p->shards > 1) return ad_objective_sharded_step(t, p, b, st, err);
    if (b->weights)
        return weighted_step(t, b, st, err) == AD_OK ? AD_OK : ad_error_prefix(err, "sft: ");
    ad_step_stats s;
    if (ad_trainer_step(t, b->seqs, b->n, &s, err) != AD_OK) return ad_error_prefix(err, "sft: ");
    st->loss = s.loss;
    st->n_tokens = s.n_tokens;
    st->n_targets = s.n_targets;
    st->grad_norm = s.grad_norm;
    st->lr = s.lr;
    return AD_OK;
}

const ad_objective ad_objective_sft = {
    .name = "sft",
    .summary = "supervised fine-tuning: mean -log p over completion tokens",
    .batch = AD_BATCH_SEQUENCES,
    .step = sft_step,
};
