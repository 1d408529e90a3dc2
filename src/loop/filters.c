/* filters.c: the filter registry and pipeline (ad_filter_begin, ad_filter_run,
 * the tally, the default parameters), and the pieces the filters share:
 * grouping by sorted references, recording a decision, and the vote driver.
 * See filters.h for the rules, filter_<name>.c for each filter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/filters_internal.h"
#include "loop/vote.h"

/* ---- registry ---------------------------------------------------------------- */

/* Application order: ascending id, unique last (it reads the others' kept
 * flags); a new filter goes just before unique. See filters.h. */
static const ad_filter_ops *const registry[] = {
    &ad_filter_ops_complete,      &ad_filter_ops_length,     &ad_filter_ops_vote_samples,
    &ad_filter_ops_vote_lineages, &ad_filter_ops_confidence, &ad_filter_ops_verifier,
    &ad_filter_ops_judge,         &ad_filter_ops_sharpen,    &ad_filter_ops_unique,
};

#define N_FILTERS (sizeof registry / sizeof registry[0])

_Static_assert(N_FILTERS == AD_FILTER_COUNT, "every ad_filter_id has one registry entry");

size_t ad_filter_count_registered(void) {
    return N_FILTERS;
}

const ad_filter_ops *ad_filter_at(size_t i) {
    return i < N_FILTERS ? registry[i] : NULL;
}

const ad_filter_ops *ad_filter_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_FILTERS; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const char *ad_filter_name(ad_filter_id id) {
    for (size_t i = 0; i < N_FILTERS; i++)
        if (registry[i]->id == id) return registry[i]->name;
    return "?";
}

/* ---- grouping ---------------------------------------------------------------- */

int ad_filter_cmp_pls(const void *x, const void *y) {
    const ad_filter_ref *a = x, *b = y;
    int r = ad_filter_cmp_size(a->c->prompt, b->c->prompt);
    if (!r) r = ad_filter_cmp_size(a->c->lineage, b->c->lineage);
    if (!r) r = ad_filter_cmp_size(a->c->sample, b->c->sample);
    return r ? r : ad_filter_cmp_size(a->i, b->i);
}

ad_filter_ref *ad_filter_refs(ad_candidate *c, size_t n, double (*score)(const ad_candidate *),
                              int (*cmp)(const void *, const void *), ad_error *err) {
    ad_filter_ref *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) {
        ad_error_set(err, "filters: out of memory for %zu candidates", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (ad_filter_ref){&c[i], i, score ? score(&c[i]) : 0.0};
    qsort(r, n, sizeof *r, cmp);
    return r;
}

static int same_group(const ad_candidate *a, const ad_candidate *b, ad_filter_group key) {
    switch (key) {
    case AD_FILTER_BY_LEVEL:
        return ad_level_cmp(a->level, b->level) == 0;
    case AD_FILTER_BY_PROMPT:
        return a->prompt == b->prompt;
    case AD_FILTER_BY_PROMPT_LINEAGE:
        return a->prompt == b->prompt && a->lineage == b->lineage;
    case AD_FILTER_BY_ALL:
        return 1;
    }
    return 0;
}

size_t ad_filter_group_end(const ad_filter_ref *r, size_t start, size_t n, ad_filter_group key) {
    size_t end = start + 1;
    while (end < n && same_group(r[start].c, r[end].c, key))
        end++;
    return end;
}

void ad_filter_mark(ad_candidate *c, ad_filter_id id, int pass) {
    uint32_t bit = 1u << id;
    c->ran |= bit;
    if (pass)
        c->passed |= bit;
    else
        c->kept = 0;
}

const char *ad_filter_answer(const ad_candidate *c) {
    if (!c->hit_eos) return NULL;
    return c->answer ? c->answer : c->completion;
}

/* ---- the vote driver --------------------------------------------------------- */

/* Votes among the group r[s..e) with the given voters (voter[j - s] != 0) and
 * passes the candidates whose answer equals the accepted mode. The mode is
 * accepted when unique and its count >= min_count. */
static int vote_group(ad_filter_ref *r, size_t s, size_t e, const char *voter, double min_count,
                      ad_filter_id id, const char **answers, ad_error *err) {
    for (size_t j = s; j < e; j++)
        answers[j - s] = voter[j - s] ? ad_filter_answer(r[j].c) : NULL;
    ad_vote v;
    if (ad_vote_mode(answers, e - s, &v, err)) return AD_ERR;
    const char *mode = NULL;
    if (v.unique && (double)v.count >= min_count - AD_FILTER_SHARE_SLACK) mode = answers[v.first];
    for (size_t j = s; j < e; j++) {
        const char *a = ad_filter_answer(r[j].c);
        ad_filter_mark(r[j].c, id, mode && a && strcmp(a, mode) == 0);
    }
    return AD_OK;
}

int ad_filter_vote_groups(ad_candidate *c, size_t n, ad_filter_group key, int greedy_voters_only,
                          double min_share, size_t min_agree, ad_filter_id id, ad_error *err) {
    ad_filter_ref *r = ad_filter_refs(c, n, NULL, ad_filter_cmp_pls, err);
    if (!r) return AD_ERR;
    const char **answers = malloc((n ? n : 1) * sizeof *answers);
    char *voter = malloc(n ? n : 1);
    int rc = (answers && voter) ? AD_OK : ad_error_set(err, "vote filter: out of memory");
    for (size_t s = 0, e; rc == AD_OK && s < n; s = e) {
        e = ad_filter_group_end(r, s, n, key);
        for (size_t j = s; j < e; j++)
            voter[j - s] = !greedy_voters_only || r[j].c->sample == 0;
        double min_count = greedy_voters_only ? (double)min_agree : min_share * (double)(e - s);
        rc = vote_group(r, s, e, voter, min_count, id, answers, err);
    }
    free(voter);
    free(answers);
    free(r);
    return rc;
}

/* ---- pipeline ---------------------------------------------------------------- */

int ad_filter_begin(ad_candidate *c, size_t n, ad_error *err) {
    if (n && !c) return ad_error_set(err, "filters: %zu candidates but no array", n);
    for (size_t i = 0; i < n; i++)
        if (!c[i].completion)
            return ad_error_set(err, "filters: candidate %zu has no completion", i);
    ad_filter_ref *r = ad_filter_refs(c, n, NULL, ad_filter_cmp_pls, err);
    if (!r) return AD_ERR;
    for (size_t j = 1; j < n; j++) {
        const ad_candidate *a = r[j - 1].c, *b = r[j].c;
        if (a->prompt == b->prompt && a->lineage == b->lineage && a->sample == b->sample) {
            ad_error_set(err,
                         "filters: candidates %zu and %zu are both prompt %zu, lineage %zu, "
                         "sample %zu",
                         r[j - 1].i, r[j].i, a->prompt, a->lineage, a->sample);
            free(r);
            return AD_ERR;
        }
    }
    free(r);
    for (size_t i = 0; i < n; i++) {
        c[i].kept = 1;
        c[i].ran = c[i].passed = 0;
    }
    return AD_OK;
}

ad_filter_params ad_filter_default_params(void) {
    ad_filter_params p;
    memset(&p, 0, sizeof p);
    p.complete = 1;
    p.length_shortfall = 2;
    p.vote_min_share = 0.5;
    p.n_lineages = 5;
    p.vote_min_agree = 4;
    p.conf.min_mean_logprob = -INFINITY;
    p.conf.top_fraction = 1.0;
    p.conf.group = AD_CONF_GROUP_PROMPT;
    p.unique = 1;
    p.judge_min = 0.5;
    return p;
}

int ad_filter_run(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    if (!p) return ad_error_set(err, "filters: no parameters given");
    if (ad_filter_begin(c, n, err)) return AD_ERR;
    for (size_t i = 0; i < N_FILTERS; i++) {
        const ad_filter_ops *f = registry[i];
        if (f->enabled(p) && f->run(c, n, p, err)) return AD_ERR;
    }
    return AD_OK;
}

void ad_filter_count(const ad_candidate *c, size_t n, ad_filter_tally *out) {
    memset(out, 0, sizeof *out);
    out->total = n;
    for (size_t i = 0; i < n; i++) {
        for (int f = 0; f < AD_FILTER_COUNT; f++) {
            uint32_t bit = 1u << f;
            out->judged[f] += (c[i].ran & bit) != 0;
            out->passed[f] += (c[i].passed & bit) != 0;
        }
        out->kept += c[i].kept != 0;
    }
}
