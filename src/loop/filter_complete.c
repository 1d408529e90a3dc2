/* filter_complete.c: the complete filter: drops outputs that did not reach
 * EOS within the token budget. See filters.h. */
#include "loop/filters_internal.h"

void ad_filter_complete(ad_candidate *c, size_t n) {
    for (size_t i = 0; i < n; i++)
        ad_filter_mark(&c[i], AD_FILTER_COMPLETE, c[i].hit_eos != 0);
}

static int enabled_complete(const ad_filter_params *p) {
    return p->complete;
}

static int run_complete(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    ad_filter_complete(c, n);
    return AD_OK;
}

const ad_filter_ops ad_filter_ops_complete = {
    .id = AD_FILTER_COMPLETE,
    .name = "complete",
    .summary = "drop outputs that did not reach EOS within the budget",
    .enabled = enabled_complete,
    .run = run_complete,
};
