/* filters.c: the selection filters. Each groups the candidates by sorting an
 * array of references (the caller's array keeps its order), then judges each
 * group; see filters.h for the rules. */
#include "loop/filters.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/vote.h"

/* Slack for comparisons of a share or fraction against a count, so that
 * 0.6 * 5 counts as 3 despite rounding. */
#define SHARE_SLACK 1e-9

static const char *const filter_names[AD_FILTER_COUNT] = {
    "complete", "length", "vote_samples", "vote_lineages", "confidence", "verifier", "unique",
};

const char *ad_filter_name(ad_filter_id id) {
    return (unsigned)id < AD_FILTER_COUNT ? filter_names[id] : "?";
}

/* ---- grouping -------------------------------------------------------------- */

typedef struct cref {
    ad_candidate *c;
    size_t i;     /* position in the caller's array */
    double score; /* mean log-prob, for the confidence ranking */
} cref;

static int cmp_size(size_t a, size_t b) {
    return (a > b) - (a < b);
}

/* (prompt, lineage, sample, position) */
static int cmp_pls(const void *x, const void *y) {
    const cref *a = x, *b = y;
    int r = cmp_size(a->c->prompt, b->c->prompt);
    if (!r) r = cmp_size(a->c->lineage, b->c->lineage);
    if (!r) r = cmp_size(a->c->sample, b->c->sample);
    return r ? r : cmp_size(a->i, b->i);
}

/* (level, position) */
static int cmp_level(const void *x, const void *y) {
    const cref *a = x, *b = y;
    int r = ad_level_cmp(a->c->level, b->c->level);
    return r ? r : cmp_size(a->i, b->i);
}

/* score descending, then position */
static int cmp_score(const cref *a, const cref *b) {
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return cmp_size(a->i, b->i);
}

static int cmp_conf_all(const void *x, const void *y) {
    return cmp_score(x, y);
}

static int cmp_conf_level(const void *x, const void *y) {
    const cref *a = x, *b = y;
    int r = ad_level_cmp(a->c->level, b->c->level);
    return r ? r : cmp_score(a, b);
}

static int cmp_conf_prompt(const void *x, const void *y) {
    const cref *a = x, *b = y;
    int r = cmp_size(a->c->prompt, b->c->prompt);
    return r ? r : cmp_score(a, b);
}

/* References to all n candidates sorted by cmp; NULL (with err set) when out of
 * memory. n == 0 returns a valid one-element allocation. */
static cref *sorted_refs(ad_candidate *c, size_t n, int (*cmp)(const void *, const void *),
                         ad_error *err) {
    cref *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) {
        ad_error_set(err, "filters: out of memory for %zu candidates", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (cref){&c[i], i, ad_candidate_mean_logprob(&c[i])};
    qsort(r, n, sizeof *r, cmp);
    return r;
}

typedef enum group_key { BY_LEVEL, BY_PROMPT, BY_PROMPT_LINEAGE, BY_ALL } group_key;

static int same_group(const ad_candidate *a, const ad_candidate *b, group_key key) {
    switch (key) {
    case BY_LEVEL:
        return ad_level_cmp(a->level, b->level) == 0;
    case BY_PROMPT:
        return a->prompt == b->prompt;
    case BY_PROMPT_LINEAGE:
        return a->prompt == b->prompt && a->lineage == b->lineage;
    case BY_ALL:
        return 1;
    }
    return 0;
}

/* End (exclusive) of the group that starts at r[start]. */
static size_t group_end(const cref *r, size_t start, size_t n, group_key key) {
    size_t end = start + 1;
    while (end < n && same_group(r[start].c, r[end].c, key))
        end++;
    return end;
}

static void judge(ad_candidate *c, ad_filter_id id, int pass) {
    uint32_t bit = 1u << id;
    c->ran |= bit;
    if (pass)
        c->passed |= bit;
    else
        c->kept = 0;
}

/* The text a vote compares, or NULL for an output that never reached EOS. */
static const char *vote_answer(const ad_candidate *c) {
    if (!c->hit_eos) return NULL;
    return c->answer ? c->answer : c->completion;
}

/* ---- filters --------------------------------------------------------------- */

int ad_filter_begin(ad_candidate *c, size_t n, ad_error *err) {
    for (size_t i = 0; i < n; i++)
        if (!c[i].completion)
            return ad_error_set(err, "filters: candidate %zu has no completion", i);
    cref *r = sorted_refs(c, n, cmp_pls, err);
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

void ad_filter_complete(ad_candidate *c, size_t n) {
    for (size_t i = 0; i < n; i++)
        judge(&c[i], AD_FILTER_COMPLETE, c[i].hit_eos != 0);
}

int ad_filter_length(ad_candidate *c, size_t n, size_t min_shortfall, ad_error *err) {
    if (min_shortfall < 1) return ad_error_set(err, "length filter: shortfall must be >= 1");
    cref *r = sorted_refs(c, n, cmp_level, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = group_end(r, s, n, BY_LEVEL);
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
            judge(r[j].c, AD_FILTER_LENGTH, !short_by);
        }
    }
    free(r);
    return AD_OK;
}

/* Votes among the group r[s..e) with the given voters (voter[j - s] != 0) and
 * passes the candidates whose answer equals the accepted mode. The mode is
 * accepted when unique and its count >= min_count. */
static int vote_group(cref *r, size_t s, size_t e, const char *voter, double min_count,
                      ad_filter_id id, const char **answers, ad_error *err) {
    for (size_t j = s; j < e; j++)
        answers[j - s] = voter[j - s] ? vote_answer(r[j].c) : NULL;
    ad_vote v;
    if (ad_vote_mode(answers, e - s, &v, err)) return AD_ERR;
    const char *mode = NULL;
    if (v.unique && (double)v.count >= min_count - SHARE_SLACK) mode = answers[v.first];
    for (size_t j = s; j < e; j++) {
        const char *a = vote_answer(r[j].c);
        judge(r[j].c, id, mode && a && strcmp(a, mode) == 0);
    }
    return AD_OK;
}

/* Shared driver of the two votes: groups by key, marks voters, votes. */
static int vote_filter(ad_candidate *c, size_t n, group_key key, int greedy_voters_only,
                       double min_share, size_t min_agree, ad_filter_id id, ad_error *err) {
    cref *r = sorted_refs(c, n, cmp_pls, err);
    if (!r) return AD_ERR;
    const char **answers = malloc((n ? n : 1) * sizeof *answers);
    char *voter = malloc(n ? n : 1);
    int rc = (answers && voter) ? AD_OK : ad_error_set(err, "vote filter: out of memory");
    for (size_t s = 0, e; rc == AD_OK && s < n; s = e) {
        e = group_end(r, s, n, key);
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

int ad_filter_vote_samples(ad_candidate *c, size_t n, double min_share, ad_error *err) {
    if (!(min_share > 0.0 && min_share <= 1.0))
        return ad_error_set(err, "vote filter: share threshold %g is not in (0, 1]", min_share);
    return vote_filter(c, n, BY_PROMPT_LINEAGE, 0, min_share, 0, AD_FILTER_VOTE_SAMPLES, err);
}

int ad_filter_vote_lineages(ad_candidate *c, size_t n, size_t n_lineages, size_t min_agree,
                            ad_error *err) {
    if (min_agree < 1 || min_agree > n_lineages)
        return ad_error_set(err, "lineage vote: %zu of %zu lineages is not a valid threshold",
                            min_agree, n_lineages);
    for (size_t i = 0; i < n; i++)
        if (c[i].lineage >= n_lineages)
            return ad_error_set(err, "lineage vote: candidate %zu has lineage %zu but m = %zu", i,
                                c[i].lineage, n_lineages);
    return vote_filter(c, n, BY_PROMPT, 1, 0.0, min_agree, AD_FILTER_VOTE_LINEAGES, err);
}

double ad_candidate_mean_logprob(const ad_candidate *c) {
    if (c->n_tokens == 0 || isnan(c->logprob_sum)) return -INFINITY;
    return c->logprob_sum / (double)c->n_tokens;
}

int ad_filter_confidence(ad_candidate *c, size_t n, const ad_conf_params *p, ad_error *err) {
    if (!p->use_top_fraction) {
        if (isnan(p->min_mean_logprob))
            return ad_error_set(err, "confidence filter: threshold is NaN");
        for (size_t i = 0; i < n; i++)
            judge(&c[i], AD_FILTER_CONFIDENCE,
                  ad_candidate_mean_logprob(&c[i]) >= p->min_mean_logprob);
        return AD_OK;
    }
    if (!(p->top_fraction > 0.0 && p->top_fraction <= 1.0))
        return ad_error_set(err, "confidence filter: top fraction %g is not in (0, 1]",
                            p->top_fraction);
    int (*cmp)(const void *, const void *) = cmp_conf_all;
    group_key key = BY_ALL;
    if (p->group == AD_CONF_GROUP_LEVEL)
        cmp = cmp_conf_level, key = BY_LEVEL;
    else if (p->group == AD_CONF_GROUP_PROMPT)
        cmp = cmp_conf_prompt, key = BY_PROMPT;
    else if (p->group != AD_CONF_GROUP_ALL)
        return ad_error_set(err, "confidence filter: unknown grouping %d", (int)p->group);
    cref *r = sorted_refs(c, n, cmp, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = group_end(r, s, n, key);
        size_t keep = (size_t)ceil(p->top_fraction * (double)(e - s) - SHARE_SLACK);
        for (size_t j = s; j < e; j++)
            judge(r[j].c, AD_FILTER_CONFIDENCE, j - s < keep);
    }
    free(r);
    return AD_OK;
}

int ad_filter_verifier(ad_candidate *c, size_t n, ad_error *err) {
    for (size_t i = 0; i < n; i++)
        if (c[i].correct != 0 && c[i].correct != 1)
            return ad_error_set(err,
                                "verifier filter: candidate %zu (prompt %zu, lineage %zu, sample "
                                "%zu) was never verified",
                                i, c[i].prompt, c[i].lineage, c[i].sample);
    for (size_t i = 0; i < n; i++)
        judge(&c[i], AD_FILTER_VERIFIER, c[i].correct == 1);
    return AD_OK;
}

int ad_filter_unique(ad_candidate *c, size_t n, ad_error *err) {
    cref *r = sorted_refs(c, n, cmp_pls, err);
    if (!r) return AD_ERR;
    for (size_t s = 0, e; s < n; s = e) {
        e = group_end(r, s, n, BY_PROMPT);
        for (size_t j = s; j < e; j++) {
            ad_candidate *x = r[j].c;
            int dup = 0;
            for (size_t q = s; x->kept && q < j && !dup; q++)
                dup = r[q].c->kept && strcmp(x->completion, r[q].c->completion) == 0;
            judge(x, AD_FILTER_UNIQUE, !dup);
        }
    }
    free(r);
    return AD_OK;
}

/* ---- pipeline -------------------------------------------------------------- */

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
    return p;
}

int ad_filter_run(ad_candidate *c, size_t n, const ad_filter_params *p, ad_error *err) {
    if (ad_filter_begin(c, n, err)) return AD_ERR;
    if (p->complete) ad_filter_complete(c, n);
    if (p->length && ad_filter_length(c, n, p->length_shortfall, err)) return AD_ERR;
    if (p->vote_samples && ad_filter_vote_samples(c, n, p->vote_min_share, err)) return AD_ERR;
    if (p->vote_lineages && ad_filter_vote_lineages(c, n, p->n_lineages, p->vote_min_agree, err))
        return AD_ERR;
    if (p->confidence && ad_filter_confidence(c, n, &p->conf, err)) return AD_ERR;
    if (p->verifier && ad_filter_verifier(c, n, err)) return AD_ERR;
    if (p->unique && ad_filter_unique(c, n, err)) return AD_ERR;
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
