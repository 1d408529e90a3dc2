/* pairs_vote.c: the vote pair rule (self-consistency, label-free): the
 * prompt's majority answer over its minority answers. See pairs.h. */
#include "loop/pairs_internal.h"

/* Chosen: the unique mode of all the group's answers, when its share of the
 * group (every candidate counted) reaches min_share. Rejected: every other
 * class, no-answer included, by support. */
static int pick_vote(const ad_pair_group *g, const ad_pair_params *p, ad_pair_pick *pick,
                     ad_error *err) {
    ad_vote v;
    const char *mode;
    if (ad_pair_vote(g, 0, &v, &mode, err) != AD_OK) return AD_ERR;
    if (!mode || (double)v.count < p->min_share * (double)g->n - AD_PAIR_SHARE_SLACK) return AD_OK;
    pick->has_chosen = 1;
    pick->chosen = v.first;
    for (size_t pos = 0; pos < g->n; pos++)
        g->pool[pos] = 1;
    return ad_pair_reject_by_support(g, mode, pick, err);
}

static int make_vote(const ad_candidate *c, size_t n, const ad_pair_params *p, ad_vec *out,
                     ad_error *err) {
    if (!(p->min_share > 0.0 && p->min_share <= 1.0))
        return ad_error_set(err, "pairs (vote): min_share %g is not in (0, 1]", p->min_share);
    return ad_pairs_by_prompt(c, n, p, pick_vote, out, err);
}

const ad_pair_rule ad_pair_rule_vote = {
    .name = "vote",
    .summary = "the majority answer of all samples over a minority answer (label-free)",
    .uses_verifier = 0,
    .make = make_vote,
};
