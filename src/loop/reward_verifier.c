/* reward_verifier.c: the verifier reward (RLVR, the oracle arm): 1 for a
 * checked-correct answer, 0 otherwise. See reward.h. */
#include "loop/reward_internal.h"

static int score_verifier(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    for (size_t i = 0; i < ctx->n; i++) {
        const ad_candidate *x = &ctx->c[i];
        if (x->correct != 0 && x->correct != 1)
            return ad_error_set(err,
                                "reward verifier: candidate %zu (prompt %zu, lineage %zu, sample "
                                "%zu) is not verified (correct = %d)",
                                i, x->prompt, x->lineage, x->sample, x->correct);
    }
    for (size_t i = 0; i < ctx->n; i++)
        out[i] = ctx->c[i].correct == 1 && ctx->c[i].hit_eos ? 1.0 : 0.0;
    return AD_OK;
}

const ad_reward ad_reward_verifier = {
    .name = "verifier",
    .summary = "1 when the checker says the answer is right, else 0 (the oracle arm)",
    .uses_verifier = 1,
    .score = score_verifier,
};
