/* reward_self_certainty.c: the self-certainty reward (Intuitor, label-free):
 * the mean KL(U || p_t) per generated token. See reward.h. */
#include <math.h>

#include "loop/reward_internal.h"

static int score_self_certainty(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    if (!ctx->certainty)
        return ad_error_set(err, "reward self_certainty: needs the candidates' self-certainty "
                                 "(none given)");
    for (size_t i = 0; i < ctx->n; i++) {
        if (!ctx->c[i].n_tokens) {
            out[i] = 0.0;
            continue;
        }
        if (!isfinite(ctx->certainty[i]))
            return ad_error_set(err,
                                "reward self_certainty: candidate %zu (lineage %zu, sample %zu) "
                                "has self-certainty %g, not a finite number",
                                i, ctx->c[i].lineage, ctx->c[i].sample, ctx->certainty[i]);
        out[i] = ctx->certainty[i];
    }
    return AD_OK;
}

const ad_reward ad_reward_self_certainty = {
    .name = "self_certainty",
    .summary = "the mean self-certainty KL(U || p) per generated token, in nats (Intuitor; "
               "label-free)",
    .uses_verifier = 0,
    .score = score_self_certainty,
};
