/* reward_judge.c: the judge reward: a learned judge's probability that the
 * answer is right, 0 for an unscored candidate. See reward.h. */
#include <math.h>

#include "loop/reward_internal.h"

static int score_judge(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    for (size_t i = 0; i < ctx->n; i++) {
        double s = ctx->c[i].score;
        if (!isnan(s) && !(s >= 0.0 && s <= 1.0))
            return ad_error_set(err,
                                "reward judge: candidate %zu (lineage %zu, sample %zu) has score "
                                "%g, not a probability in [0, 1] or NaN",
                                i, ctx->c[i].lineage, ctx->c[i].sample, s);
    }
    for (size_t i = 0; i < ctx->n; i++)
        out[i] = isnan(ctx->c[i].score) ? 0.0 : ctx->c[i].score;
    return AD_OK;
}

const ad_reward ad_reward_judge = {
    .name = "judge",
    .summary = "a learned judge's probability that the answer is right; 0 when unscored",
    .uses_verifier = 0,
    .score = score_judge,
};
