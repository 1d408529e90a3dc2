/* reward_lineages.c: the lineages reward (label-free, across models): 1 when
 * the answer is the one the other lineages' greedy outputs agree on. See
 * reward.h. */
#include <stdlib.h>

#include "loop/reward_internal.h"
#include "loop/vote.h"

/* Every candidate agrees, or not, with the mode of ctx->others' answers. */
static int score_against_others(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    const char **answers = malloc((ctx->n_others ? ctx->n_others : 1) * sizeof *answers);
    if (!answers) return ad_error_set(err, "reward lineages: out of memory");
    for (size_t i = 0; i < ctx->n_others; i++)
        answers[i] = ad_reward_answer(&ctx->others[i]);
    ad_vote v;
    int rc = ad_vote_mode(answers, ctx->n_others, &v, err);
    const char *mode = rc == AD_OK && v.unique ? answers[v.first] : NULL;
    for (size_t j = 0; rc == AD_OK && j < ctx->n; j++)
        out[j] = ad_reward_matches(ad_reward_answer(&ctx->c[j]), mode) ? 1.0 : 0.0;
    free(answers);
    return rc;
}

/* The candidates of one lineage share their voters (the other lineages'
 * greedy candidates), so the vote runs once per lineage present. */
static int score_lineages(const ad_reward_ctx *ctx, double *out, ad_error *err) {
    if (ctx->others) return score_against_others(ctx, out, err);
    unsigned char *voter = malloc(ctx->n), *done = calloc(ctx->n, 1);
    int rc = voter && done
                 ? AD_OK
                 : ad_error_set(err, "reward lineages: out of memory for %zu candidates", ctx->n);
    for (size_t i = 0; rc == AD_OK && i < ctx->n; i++) {
        if (done[i]) continue;
        size_t lineage = ctx->c[i].lineage;
        for (size_t j = 0; j < ctx->n; j++)
            voter[j] = ctx->c[j].lineage != lineage && ctx->c[j].sample == 0;
        const char *mode;
        rc = ad_reward_vote(ctx, voter, &mode, err);
        for (size_t j = i; rc == AD_OK && j < ctx->n; j++) {
            if (ctx->c[j].lineage != lineage) continue;
            out[j] = ad_reward_matches(ad_reward_answer(&ctx->c[j]), mode) ? 1.0 : 0.0;
            done[j] = 1;
        }
    }
    free(voter);
    free(done);
    return rc;
}

const ad_reward ad_reward_lineages = {
    .name = "lineages",
    .summary = "1 when the answer is the mode of the other lineages' greedy answers, else 0 "
               "(label-free)",
    .uses_verifier = 0,
    .score = score_lineages,
};
