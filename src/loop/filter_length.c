/* filter_length.c: the length filter: drops outputs much shorter than the
 * longest complete output of their level. See filters.h. */
#include <stdlib.h>

#include "loop/filters_internal.h"

/* (level, position) */
static int cmp_level(const void *x, const void *y) {
    const ad_filter_ref *a = x, *b = y;
    int r = ad_level_cmp(a->c->level, b->c->level);
    return r ? r : ad_filter_cmp_size(a->i, b->i);
}

int ad_filter_length(ad_candidate *c, size_t n, size_t min_shortfall, ad_error *err) {
    if (min_shortfall < 1) return ad_error_set(err, "length filter: shortfall must be >= 1");
    ad_filter_ref *r = ad_filter_refs(c, n, NULL, cmp_level, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = ad_filter_group_end(r, s, n, AD_FILTER_BY_LEVEL);
        size_t longest = 0;
        int any = 0;
        for (size_t j = s; j < e; j++) {
            if (!r[j].c->hit_eos) continue;
            any = 1;
            if (r[j].c->n_tokens > longest) longest = r[j].c->n_tokens;
        }
        for (size_t j = s; j < e; j++) {
            const ad_candidate *x = r[j].c;
            int short_by = any && x->n_tokens < longest && longest - x->n_tokens >= min_shortfall;
            ad_filter_mark(r[j].c, AD_FILTER_LENGTH, !short_by);
        }
    }
    free(r);
    return AD_OK;
}

static int enabled_length(const ad_filter_params *p) {
    return p->length;
}

static int run_length(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_length(c, n, p->length_shortfall, err);
}

const ad_filter_ops ad_filter_ops_length = {
    .id = AD_FILTER_LENGTH,
    .name = "length",
    .summary = "drop outputs d or more tokens shorter than the longest of their level",
    .enabled = enabled_length,
    .run = run_length,
};
