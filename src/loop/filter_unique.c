/* filter_unique.c: the unique filter: one kept copy of each (prompt,
 * completion) label. It reads the other filters' kept flags, so the registry
 * runs it last. See filters.h. */
#include <stdlib.h>
#include <string.h>

#include "loop/filters_internal.h"

int ad_filter_unique(ad_candidate *c, size_t n, ad_error *err) {
    ad_filter_ref *r = ad_filter_refs(c, n, NULL, ad_filter_cmp_pls, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = ad_filter_group_end(r, s, n, AD_FILTER_BY_PROMPT);
        for (size_t j = s; j < e; j++) {
            ad_candidate *x = r[j].c;
            int dup = 0;
            for (size_t q = s; x->kept && q < j && !dup; q++)
                dup = r[q].c->kept && strcmp(x->completion, r[q].c->completion) == 0;
            ad_filter_mark(x, AD_FILTER_UNIQUE, !dup);
        }
    }
    free(r);
    return AD_OK;
}

static int enabled_unique(const ad_filter_params *p) {
    return p->unique;
}

static int run_unique(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    return ad_filter_unique(c, n, err);
}

const ad_filter_ops ad_filter_ops_unique = {
    .id = AD_FILTER_UNIQUE,
    .name = "unique",
    .summary = "keep one copy of each (prompt, completion) label among the kept",
    .enabled = enabled_unique,
    .run = run_unique,
};
