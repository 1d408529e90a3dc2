/* reward_majority.c: the majority reward (TTRL, label-free): 1 for the group's
 * majority answer, 0 otherwise. See reward.h. */
#include <stdlib.h>

#include "loop/reward_internal.h"

static int score_majority(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    unsigned char *voter = malloc(ctx->n);
    if (!voter) return ad_error_set(err, "reward majority: out of memory for %zu voters", ctx->n);
    for (size_t i = 0; i < ctx->n; i++)
        voter[i] = 1;
    const char *mode;
    int rc = ad_reward_vote(ctx, voter, &mode, err);
    for (size_t i = 0; rc == AD_OK && i < ctx->n; i++)
        out[i] = ad_reward_matches(ad_reward_answer(&ctx->c[i]), mode) ? 1.0 : 0.0;
    free(voter);
    return rc;
}

const ad_reward ad_reward_majority = {
    .name = "majority",
    .summary = "1 when the answer is the group's majority answer, else 0 (TTRL; label-free)",
    .uses_verifier = 0,
    .score = score_majority,
};
