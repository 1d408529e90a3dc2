/* reward_format.c: the format reward (shaping): 1 for an output that reached
 * EOS with a non-empty answer within the task's answer-length bound. See
 * reward.h. */
#include <string.h>

#include "loop/reward_internal.h"

static int score_format(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    if (ad_reward_need_bound(ctx, "format", err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < ctx->n; i++) {
        const char *a = ad_reward_answer(&ctx->c[i]);
        size_t len = a ? strlen(a) : 0;
        out[i] = len >= 1 && len <= ctx->answer_bound[i] ? 1.0 : 0.0;
    }
    return AD_OK;
}

const ad_reward ad_reward_format = {
    .name = "format",
    .summary = "1 when the output reached EOS with a non-empty answer within the task's "
               "answer-length bound, else 0",
    .uses_verifier = 0,
    .score = score_format,
};
