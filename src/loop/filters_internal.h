/* filters_internal.h: what the filters share: the registry entries, grouping
 * by sorted references, recording a decision, the answer a vote compares, and
 * the vote driver both votes use.
 *
 * Internal to the filters: callers use filters.h. A filter is one file
 * filter_<name>.c that defines its public ad_filter_<name>() and its
 * ad_filter_ops_<name> entry, listed in filters.c's registry. */
#ifndef AD_LOOP_FILTERS_INTERNAL_H
#define AD_LOOP_FILTERS_INTERNAL_H

#include <stddef.h>

#include "loop/filters.h"

/* The filters, one file each, listed in filters.c in application order. */
extern const ad_filter_ops ad_filter_ops_complete;
extern const ad_filter_ops ad_filter_ops_length;
extern const ad_filter_ops ad_filter_ops_vote_samples;
extern const ad_filter_ops ad_filter_ops_vote_lineages;
extern const ad_filter_ops ad_filter_ops_confidence;
extern const ad_filter_ops ad_filter_ops_verifier;
extern const ad_filter_ops ad_filter_ops_judge;
extern const ad_filter_ops ad_filter_ops_sharpen;
extern const ad_filter_ops ad_filter_ops_unique;

/* Slack for comparisons of a share or fraction against a count, so that
 * 0.6 * 5 counts as 3 despite rounding. */
#define AD_FILTER_SHARE_SLACK 1e-9

/* A reference to a candidate, for grouping: filters sort references, never the
 * caller's array, which keeps its order. */
typedef struct ad_filter_ref {
    ad_candidate *c;
    size_t i;     /* position in the caller's array */
    double score; /* the score function's value (ad_filter_refs), else 0 */
} ad_filter_ref;

/* Three-way comparison of sizes. This function can't fail. */
static inline int ad_filter_cmp_size(size_t a, size_t b) {
    return (a > b) - (a < b);
}

/* qsort comparator of ad_filter_ref: (prompt, lineage, sample, position). */
int ad_filter_cmp_pls(const void *x, const void *y);

/* References to all n candidates, with score(candidate) in .score when score
 * is not NULL, sorted by cmp; the caller frees them with free(). NULL (err
 * set) when out of memory. n == 0 returns a valid one-element allocation. */
ad_filter_ref *ad_filter_refs(ad_candidate *c, size_t n, double (*score)(const ad_candidate *),
                              int (*cmp)(const void *, const void *), ad_error *err);

/* What makes a group of consecutive sorted references. */
typedef enum ad_filter_group {
    AD_FILTER_BY_LEVEL,
    AD_FILTER_BY_PROMPT,
    AD_FILTER_BY_PROMPT_LINEAGE,
    AD_FILTER_BY_ALL,
} ad_filter_group;

/* End (exclusive) of the group that starts at r[start]; r is sorted so that
 * each group is contiguous. This function can't fail. */
size_t ad_filter_group_end(const ad_filter_ref *r, size_t start, size_t n, ad_filter_group key);

/* Records filter id's decision on c: sets its bit in ran, and in passed when
 * pass, else clears kept. This function can't fail. */
void ad_filter_mark(ad_candidate *c, ad_filter_id id, int pass);

/* The text a vote compares (answer, else the completion), or NULL for an
 * output that never reached EOS. This function can't fail. */
const char *ad_filter_answer(const ad_candidate *c);

/* The vote driver shared by vote_samples and vote_lineages: groups the
 * candidates by key in (prompt, lineage, sample) order; in each group the
 * voters (every candidate, or only sample 0 when greedy_voters_only) vote
 * (ad_vote_mode); the mode is accepted when unique and its count >= min_count,
 * where min_count is min_agree when greedy_voters_only, else min_share times
 * the group's size (with AD_FILTER_SHARE_SLACK); a candidate passes filter id
 * when its answer equals the accepted mode. Parameters are checked by the
 * caller. Fails only when out of memory (decisions may then be partial). */
int ad_filter_vote_groups(ad_candidate *c, size_t n, ad_filter_group key, int greedy_voters_only,
                          double min_share, size_t min_agree, ad_filter_id id, ad_error *err);

#endif
