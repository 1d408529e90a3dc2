/* filter_sharpen.c: the sharpen filter (SFT-sharpening, Huang et al. 2024):
 * the model's own likelihood is the verifier: of each model's samples for a
 * prompt, only the most likely complete one becomes a label. See filters.h. */
#include <math.h>
#include <stdlib.h>

#include "loop/filters_internal.h"

/* 1 when a beats b, the best so far (NULL: none yet) of a group walked in
 * sample order: a reached EOS with a log-prob sum (not NaN) strictly above
 * b's, so a tie keeps the lower sample. */
static int more_likely(const ad_candidate *a, const ad_candidate *b) {
    if (!a->hit_eos || isnan(a->logprob_sum)) return 0;
    if (!b) return 1;
    return a->logprob_sum > b->logprob_sum;
}

int ad_filter_sharpen(ad_candidate *c, size_t n, ad_error *err) {
    ad_filter_ref *r = ad_filter_refs(c, n, NULL, ad_filter_cmp_pls, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = ad_filter_group_end(r, s, n, AD_FILTER_BY_PROMPT_LINEAGE);
        const ad_candidate *best = NULL;
        for (size_t j = s; j < e; j++)
            if (more_likely(r[j].c, best)) best = r[j].c;
        for (size_t j = s; j < e; j++)
            ad_filter_mark(r[j].c, AD_FILTER_SHARPEN, r[j].c == best);
    }
    free(r);
    return AD_OK;
}

static int enabled_sharpen(const ad_filter_params *p) {
    return p->sharpen;
}

static int run_sharpen(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_sharpen(c, n, err);
}

const ad_filter_ops ad_filter_ops_sharpen = {
    .id = AD_FILTER_SHARPEN,
    .name = "sharpen",
    .summary = "keep each model's most likely complete sample of a prompt (SFT-sharpening)",
    .enabled = enabled_sharpen,
    .run = run_sharpen,
};
