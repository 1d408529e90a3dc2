/* objective_sft.c: supervised fine-tuning as an objective: the mean over all
 * completion tokens of -log p, exactly ad_trainer_step (bit for bit), so the
 * optimize stage can drive SFT and preference objectives through one seam. */
#include "loop/objective.h"

static int sft_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                    ad_objective_stats *st, ad_error *err) {
    (void)p;
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
