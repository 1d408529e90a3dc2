/* pairs_confidence.c: the confidence pair rule (label-free): the prompt's most
 * confident answer (mean token log-prob) over its least confident ones. See
 * pairs.h. */
#include "loop/pairs_internal.h"

static int pick_confidence(const ad_pair_group *g, const ad_pair_params *p, ad_pair_pick *pick,
                           ad_error *err) {
    return ad_pair_pick_by_score(g, p, ad_candidate_mean_logprob, pick, err);
}

static int make_confidence(const ad_candidate *c, size_t n, const ad_pair_params *p, ad_vec *out,
                           ad_error *err) {
    if (ad_pair_check_gap(p, "confidence", err) != AD_OK) return AD_ERR;
    return ad_pairs_by_prompt(c, n, p, pick_confidence, out, err);
}

const ad_pair_rule ad_pair_rule_confidence = {
    .name = "confidence",
    .summary = "the answer with the highest over the lowest mean token log-prob (label-free)",
    .uses_verifier = 0,
    .make = make_confidence,
};
