/* filter_vote_lineages.c: majority vote of the greedy answers across m
 * independently seeded lineages. See filters.h; the vote itself is
 * ad_filter_vote_groups. */
#include "loop/filters_internal.h"

int ad_filter_vote_lineages(ad_candidate *c, size_t n, size_t n_lineages, size_t min_agree,
                            ad_error *err) {
    if (min_agree < 1 || min_agree > n_lineages)
        return ad_error_set(err, "lineage vote: %zu of %zu lineages is not a valid threshold",
                            min_agree, n_lineages);
    for (size_t i = 0; i < n; i++)
        if (c[i].lineage >= n_lineages)
            return ad_error_set(err, "lineage vote: candidate %zu has lineage %zu but m = %zu", i,
                                c[i].lineage, n_lineages);
    return ad_filter_vote_groups(c, n, AD_FILTER_BY_PROMPT, 1, 0.0, min_agree,
                                 AD_FILTER_VOTE_LINEAGES, err);
}

static int enabled_vote_lineages(const ad_filter_params *p) {
    return p->vote_lineages;
}

static int run_vote_lineages(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_vote_lineages(c, n, p->n_lineages, p->vote_min_agree, err);
}

const ad_filter_ops ad_filter_ops_vote_lineages = {
    .id = AD_FILTER_VOTE_LINEAGES,
    .name = "vote_lineages",
    .summary = "keep the greedy answer at least t of m lineages agree on",
    .enabled = enabled_vote_lineages,
    .run = run_vote_lineages,
};
