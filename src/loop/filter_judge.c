/* filter_judge.c: the judge filter: keeps what the run's self-taught judge
 * (judge.h) accepts. See filters.h. */
#include <math.h>

#include "loop/filters_internal.h"

int ad_filter_judge(ad_candidate *c, size_t n, double min_score, ad_error *err) {
    if (!(min_score >= 0.0 && min_score <= 1.0))
        return ad_error_set(err, "judge filter: threshold %g is not in [0, 1]", min_score);
    for (size_t i = 0; i < n; i++)
        if (!isnan(c[i].score) && !(c[i].score >= 0.0 && c[i].score <= 1.0))
            return ad_error_set(err, "judge filter: candidate %zu has score %g, not in [0, 1]", i,
                                c[i].score);
    for (size_t i = 0; i < n; i++)
        if (!isnan(c[i].score)) ad_filter_mark(&c[i], AD_FILTER_JUDGE, c[i].score >= min_score);
    return AD_OK;
}

static int enabled_judge(const ad_filter_params *p) {
    return p->judge;
}

static int run_judge(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_judge(c, n, p->judge_min, err);
}

const ad_filter_ops ad_filter_ops_judge = {
    .id = AD_FILTER_JUDGE,
    .name = "judge",
    .summary = "keep outputs the self-taught judge accepts",
    .enabled = enabled_judge,
    .run = run_judge,
};
