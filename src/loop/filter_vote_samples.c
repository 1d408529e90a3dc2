/* filter_vote_samples.c: majority vote across the k samples of one model
 * (self-consistency). See filters.h; the vote itself is
 * ad_filter_vote_groups. */
#include "loop/filters_internal.h"

int ad_filter_vote_samples(ad_candidate *c, size_t n, double min_share, ad_error *err) {
    if (!(min_share > 0.0 && min_share <= 1.0))
        return ad_error_set(err, "vote filter: share threshold %g is not in (0, 1]", min_share);
    return ad_filter_vote_groups(c, n, AD_FILTER_BY_PROMPT_LINEAGE, 0, min_share, 0,
                                 AD_FILTER_VOTE_SAMPLES, err);
}

static int enabled_vote_samples(const ad_filter_params *p) {
    return p->vote_samples;
}

static int run_vote_samples(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_vote_samples(c, n, p->vote_min_share, err);
}

const ad_filter_ops ad_filter_ops_vote_samples = {
    .id = AD_FILTER_VOTE_SAMPLES,
    .name = "vote_samples",
    .summary = "keep the modal answer of one model's k samples when it has the share",
    .enabled = enabled_vote_samples,
    .run = run_vote_samples,
};
