/* pairs_judge.c: the judge pair rule: the answer a learned judge scores
 * highest over the lowest scored ones; unscored candidates are left out. See
 * pairs.h. */
#include <math.h>

#include "loop/pairs_internal.h"

static double judge_score(const ad_candidate *c) {
    return c->score;
}

static int pick_judge(const ad_pair_group *g, const ad_pair_params *p, ad_pair_pick *pick,
                      ad_error *err) {
    return ad_pair_pick_by_score(g, p, judge_score, pick, err);
}

static int make_judge(const ad_candidate *c, size_t n, const ad_pair_params *p, ad_vec *out,
                      ad_error *err) {
    if (ad_pair_check_gap(p, "judge", err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < n; i++)
        if (!isnan(c[i].score) && !(c[i].score >= 0.0 && c[i].score <= 1.0))
            return ad_error_set(err,
                                "pairs (judge): candidate %zu (prompt %zu, lineage %zu, sample "
                                "%zu) has score %g, not a probability in [0, 1] or NaN",
                                i, c[i].prompt, c[i].lineage, c[i].sample, c[i].score);
    return ad_pairs_by_prompt(c, n, p, pick_judge, out, err);
}

const ad_pair_rule ad_pair_rule_judge = {
    .name = "judge",
    .summary = "the answer a learned judge scores highest over the lowest scored (needs scores)",
    .uses_verifier = 0,
    .make = make_judge,
};
