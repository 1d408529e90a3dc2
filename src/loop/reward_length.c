/* reward_length.c: the length reward (shaping): -1 for an output that did not
 * stop within the task's answer-length bound, else 0. See reward.h. */
#include "loop/reward_internal.h"

static int score_length(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    if (ad_reward_need_bound(ctx, "length", err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < ctx->n; i++) {
        const ad_candidate *x = &ctx->c[i];
        int within = x->hit_eos && x->n_tokens >= 1 && x->n_tokens - 1 <= ctx->answer_bound[i];
        out[i] = within ? 0.0 : -1.0;
    }
    return AD_OK;
}

const ad_reward ad_reward_length = {
    .name = "length",
    .summary = "-1 when the output did not reach EOS within the task's answer-length bound, "
               "else 0",
    .uses_verifier = 0,
    .score = score_length,
};
