/* filter_confidence.c: the confidence filter on mean token log-prob, by a
 * threshold or as the top fraction of a group. See filters.h. */
#include <math.h>
#include <stdlib.h>

#include "loop/filters_internal.h"

double ad_candidate_mean_logprob(const ad_candidate *c) {
    if (c->n_tokens == 0 || isnan(c->logprob_sum)) return -INFINITY;
    return c->logprob_sum / (double)c->n_tokens;
}

/* score descending, then position */
static int cmp_score(const ad_filter_ref *a, const ad_filter_ref *b) {
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return ad_filter_cmp_size(a->i, b->i);
}

static int cmp_conf_all(const void *x, const void *y) {
    return cmp_score(x, y);
}

static int cmp_conf_level(const void *x, const void *y) {
    const ad_filter_ref *a = x, *b = y;
    int r = ad_level_cmp(a->c->level, b->c->level);
    return r ? r : cmp_score(a, b);
}

static int cmp_conf_prompt(const void *x, const void *y) {
    const ad_filter_ref *a = x, *b = y;
    int r = ad_filter_cmp_size(a->c->prompt, b->c->prompt);
    return r ? r : cmp_score(a, b);
}

int ad_filter_confidence(ad_candidate *c, size_t n, const ad_conf_params *p, ad_error *err) {
    if (!p->use_top_fraction) {
        if (isnan(p->min_mean_logprob))
            return ad_error_set(err, "confidence filter: threshold is NaN");
        for (size_t i = 0; i < n; i++)
            ad_filter_mark(&c[i], AD_FILTER_CONFIDENCE,
                           ad_candidate_mean_logprob(&c[i]) >= p->min_mean_logprob);
        return AD_OK;
    }
    if (!(p->top_fraction > 0.0 && p->top_fraction <= 1.0))
        return ad_error_set(err, "confidence filter: top fraction %g is not in (0, 1]",
                            p->top_fraction);
    int (*cmp)(const void *, const void *) = cmp_conf_all;
    ad_filter_group key = AD_FILTER_BY_ALL;
    if (p->group == AD_CONF_GROUP_LEVEL)
        cmp = cmp_conf_level, key = AD_FILTER_BY_LEVEL;
    else if (p->group == AD_CONF_GROUP_PROMPT)
        cmp = cmp_conf_prompt, key = AD_FILTER_BY_PROMPT;
    else if (p->group != AD_CONF_GROUP_ALL)
        return ad_error_set(err, "confidence filter: unknown grouping %d", (int)p->group);
    ad_filter_ref *r = ad_filter_refs(c, n, ad_candidate_mean_logprob, cmp, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = ad_filter_group_end(r, s, n, key);
        size_t keep = (size_t)ceil(p->top_fraction * (double)(e - s) - AD_FILTER_SHARE_SLACK);
        for (size_t j = s; j < e; j++)
            ad_filter_mark(r[j].c, AD_FILTER_CONFIDENCE, j - s < keep);
    }
    free(r);
    return AD_OK;
}

static int enabled_confidence(const ad_filter_params *p) {
    return p->confidence;
}

static int run_confidence(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_confidence(c, n, &p->conf, err);
}

const ad_filter_ops ad_filter_ops_confidence = {
    .id = AD_FILTER_CONFIDENCE,
    .name = "confidence",
    .summary = "keep outputs with a high mean token log-prob (threshold or top fraction)",
    .enabled = enabled_confidence,
    .run = run_confidence,
};
