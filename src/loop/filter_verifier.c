/* filter_verifier.c: the verifier filter (rejection sampling: STaR / RFT):
 * keeps what the task's verifier judged right. See filters.h. */
#include "loop/filters_internal.h"

int ad_filter_verifier(ad_candidate *c, size_t n, ad_error *err) {
    for (size_t i = 0; i < n; i++)
        if (c[i].correct != 0 && c[i].correct != 1)
            return ad_error_set(err,
                                "verifier filter: candidate %zu (prompt %zu, lineage %zu, sample "
                                "%zu) was never verified",
                                i, c[i].prompt, c[i].lineage, c[i].sample);
    for (size_t i = 0; i < n; i++)
        ad_filter_mark(&c[i], AD_FILTER_VERIFIER, c[i].correct == 1);
    return AD_OK;
}

static int enabled_verifier(const ad_filter_params *p) {
    return p->verifier;
}

static int run_verifier(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_verifier(c, n, err);
}

const ad_filter_ops ad_filter_ops_verifier = {
    .id = AD_FILTER_VERIFIER,
    .name = "verifier",
    .summary = "keep outputs the task's verifier says are correct",
    .enabled = enabled_verifier,
    .run = run_verifier,
};
