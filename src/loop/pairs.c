/* pairs.c: the pair-rule registry, ad_pairs_make and pair accuracy, and the
 * pieces the rules share: the per-prompt driver, answer classes, the rankings
 * and the vote. See pairs.h for the rules, pairs_<name>.c for each rule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/pairs_internal.h"

/* ---- registry ---------------------------------------------------------------- */

static const ad_pair_rule *const rules[] = {
    &ad_pair_rule_verifier,   &ad_pair_rule_vote,  &ad_pair_rule_lineages,
    &ad_pair_rule_confidence, &ad_pair_rule_judge,
};

#define N_RULES (sizeof rules / sizeof rules[0])

size_t ad_pair_rule_count(void) {
    return N_RULES;
}

const ad_pair_rule *ad_pair_rule_at(size_t i) {
    return i < N_RULES ? rules[i] : NULL;
}

const ad_pair_rule *ad_pair_rule_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_RULES; i++)
        if (strcmp(rules[i]->name, name) == 0) return rules[i];
    return NULL;
}

ad_pair_params ad_pair_default_params(void) {
    ad_pair_params p;
    memset(&p, 0, sizeof p);
    p.per_prompt = 1;
    p.n_lineages = 5;
    p.min_agree = 4;
    p.min_share = 0.5;
    p.min_gap = 0.0;
    return p;
}

int ad_pairs_make(const ad_pair_rule *rule, const ad_candidate *c, size_t n,
                  const ad_pair_params *p, ad_pair **out, size_t *n_out, ad_error *err) {
    *out = NULL;
    *n_out = 0;
    if (!rule || !rule->make) return ad_error_set(err, "pairs: no pair rule given");
    if (!p) return ad_error_set(err, "pairs (%s): no parameters given", rule->name);
    if (p->per_prompt < 1)
        return ad_error_set(err, "pairs (%s): per_prompt must be >= 1, got 0", rule->name);
    if (n && !c) return ad_error_set(err, "pairs (%s): %zu candidates but no array", rule->name, n);
    ad_vec v;
    ad_vec_init(&v, sizeof(ad_pair));
    if (rule->make(c, n, p, &v, err) != AD_OK) {
        ad_vec_free(&v);
        return AD_ERR;
    }
    *n_out = v.n;
    if (v.n)
        *out = ad_vec_release(&v);
    else
        ad_vec_free(&v);
    return AD_OK;
}

double ad_pairs_accuracy(const ad_candidate *c, const ad_pair *pairs, size_t n) {
    if (n == 0) return NAN;
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = c[pairs[i].chosen].correct, rj = c[pairs[i].rejected].correct;
        if ((ch != 0 && ch != 1) || (rj != 0 && rj != 1)) return NAN;
        right += ch == 1 && rj == 0;
    }
    return (double)right / (double)n;
}

/* ---- answers ----------------------------------------------------------------- */

const char *ad_pair_answer(const ad_candidate *c) {
    if (!c->hit_eos) return NULL;
    return c->answer ? c->answer : c->completion;
}

int ad_pair_same_answer(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* ---- the per-prompt driver --------------------------------------------------- */

typedef struct pref {
    const ad_candidate *c;
    size_t i; /* position in the caller's array */
} pref;

static int cmp_size(size_t a, size_t b) {
    return (a > b) - (a < b);
}

/* (prompt, lineage, sample, position) */
static int cmp_pls(const void *x, const void *y) {
    const pref *a = x, *b = y;
    int r = cmp_size(a->c->prompt, b->c->prompt);
    if (!r) r = cmp_size(a->c->lineage, b->c->lineage);
    if (!r) r = cmp_size(a->c->sample, b->c->sample);
    return r ? r : cmp_size(a->i, b->i);
}

/* The candidates' indices in (prompt, lineage, sample) order, after checking
 * that every completion is set and no two share (prompt, lineage, sample).
 * NULL (err set) on error. */
static size_t *canonical_order(const ad_candidate *c, size_t n, ad_error *err) {
    for (size_t i = 0; i < n; i++)
        if (!c[i].completion) {
            ad_error_set(err, "pairs: candidate %zu has no completion", i);
            return NULL;
        }
    pref *r = malloc((n ? n : 1) * sizeof *r);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!r || !idx) {
        ad_error_set(err, "pairs: out of memory for %zu candidates", n);
        free(r);
        free(idx);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (pref){&c[i], i};
    qsort(r, n, sizeof *r, cmp_pls);
    for (size_t j = 0; j < n; j++) {
        idx[j] = r[j].i;
        if (j == 0) continue;
        const ad_candidate *a = r[j - 1].c, *b = r[j].c;
        if (a->prompt == b->prompt && a->lineage == b->lineage && a->sample == b->sample) {
            ad_error_set(err,
                         "pairs: candidates %zu and %zu are both prompt %zu, lineage %zu, "
                         "sample %zu",
                         r[j - 1].i, r[j].i, a->prompt, a->lineage, a->sample);
            free(r);
            free(idx);
            return NULL;
        }
    }
    free(r);
    return idx;
}

/* Appends the pairs of one prompt's pick to out; see ad_pairs_by_prompt. */
static int emit_pairs(const ad_pair_group *g, size_t per_prompt, const ad_pair_pick *pick,
                      ad_vec *out, ad_error *err) {
    if (!pick->has_chosen) return AD_OK;
    size_t chosen = g->idx[pick->chosen];
    const char *chosen_text = g->c[chosen].completion;
    if (!g->c[chosen].hit_eos) return AD_OK; /* never a chosen without an answer */
    size_t first = out->n;
    const size_t *rejected = pick->rejected.data;
    for (size_t j = 0; j < pick->rejected.n && out->n - first < per_prompt; j++) {
        size_t r = g->idx[rejected[j]];
        const char *text = g->c[r].completion;
        int skip = r == chosen || strcmp(text, chosen_text) == 0;
        for (size_t q = first; q < out->n && !skip; q++) {
            const ad_pair *earlier = ad_vec_at(out, q);
            skip = strcmp(g->c[earlier->rejected].completion, text) == 0;
        }
        if (skip) continue;
        ad_pair pair = {chosen, r};
        if (ad_vec_push(out, &pair, err) != AD_OK) return AD_ERR;
    }
    return AD_OK;
}

int ad_pairs_by_prompt(const ad_candidate *c, size_t n, const ad_pair_params *p,
                       ad_pair_pick_fn pick_fn, ad_vec *out, ad_error *err) {
    size_t *idx = canonical_order(c, n, err);
    if (!idx) return AD_ERR;
    unsigned char *pool = malloc(n ? n : 1);
    ad_pair_pick pick;
    ad_vec_init(&pick.rejected, sizeof(size_t));
    int rc = pool ? AD_OK : ad_error_set(err, "pairs: out of memory for %zu candidates", n);
    for (size_t s = 0, e; rc == AD_OK && s < n; s = e) {
        e = s + 1;
        while (e < n && c[idx[e]].prompt == c[idx[s]].prompt)
            e++;
        ad_pair_group g = {c, idx + s, e - s, pool};
        memset(pool, 0, e - s);
        pick.has_chosen = 0;
        pick.chosen = 0;
        pick.rejected.n = 0;
        rc = pick_fn(&g, p, &pick, err);
        if (rc == AD_OK) rc = emit_pairs(&g, p->per_prompt, &pick, out, err);
    }
    ad_vec_free(&pick.rejected);
    free(pool);
    free(idx);
    return rc;
}

/* ---- classes and rankings ---------------------------------------------------- */

int ad_pair_classes(const ad_pair_group *g, double (*score)(const ad_candidate *), ad_vec *classes,
                    ad_error *err) {
    classes->n = 0;
    for (size_t pos = 0; pos < g->n; pos++) {
        if (!g->pool[pos]) continue;
        const ad_candidate *x = ad_pair_at(g, pos);
        const char *a = ad_pair_answer(x);
        double s = score ? score(x) : 0.0;
        ad_pair_class *cl = NULL;
        for (size_t k = 0; k < classes->n && !cl; k++) {
            ad_pair_class *y = ad_vec_at(classes, k);
            if (ad_pair_same_answer(y->answer, a)) cl = y;
        }
        if (!cl) {
            ad_pair_class fresh = {a, pos, 1, s};
            if (ad_vec_push(classes, &fresh, err) != AD_OK) return AD_ERR;
            continue;
        }
        cl->support++;
        if (score && s > cl->score) {
            cl->rep = pos;
            cl->score = s;
        }
    }
    return AD_OK;
}

/* support ascending, then representative position */
static int cmp_support(const void *x, const void *y) {
    const ad_pair_class *a = x, *b = y;
    int r = cmp_size(a->support, b->support);
    return r ? r : cmp_size(a->rep, b->rep);
}

/* score ascending, then representative position (scores are never NaN here) */
static int cmp_score(const void *x, const void *y) {
    const ad_pair_class *a = x, *b = y;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    return cmp_size(a->rep, b->rep);
}

int ad_pair_reject_by_support(const ad_pair_group *g, const char *chosen_answer, ad_pair_pick *pick,
                              ad_error *err) {
    for (size_t pos = 0; pos < g->n; pos++)
        if (ad_pair_same_answer(ad_pair_answer(ad_pair_at(g, pos)), chosen_answer))
            g->pool[pos] = 0;
    ad_vec classes;
    ad_vec_init(&classes, sizeof(ad_pair_class));
    int rc = ad_pair_classes(g, NULL, &classes, err);
    if (rc == AD_OK && classes.n > 1)
        qsort(classes.data, classes.n, sizeof(ad_pair_class), cmp_support);
    for (size_t k = 0; rc == AD_OK && k < classes.n; k++) {
        const ad_pair_class *cl = ad_vec_at(&classes, k);
        rc = ad_vec_push(&pick->rejected, &cl->rep, err);
    }
    ad_vec_free(&classes);
    return rc;
}

int ad_pair_pick_by_score(const ad_pair_group *g, const ad_pair_params *p,
                          double (*score)(const ad_candidate *), ad_pair_pick *pick,
                          ad_error *err) {
    for (size_t pos = 0; pos < g->n; pos++)
        g->pool[pos] = !isnan(score(ad_pair_at(g, pos)));
    ad_vec classes;
    ad_vec_init(&classes, sizeof(ad_pair_class));
    int rc = ad_pair_classes(g, score, &classes, err);
    const ad_pair_class *best = NULL;
    for (size_t k = 0; rc == AD_OK && k < classes.n; k++) {
        const ad_pair_class *cl = ad_vec_at(&classes, k);
        if (!cl->answer) continue; /* the no-answer class is never chosen */
        if (!best || cl->score > best->score || (cl->score == best->score && cl->rep < best->rep))
            best = cl;
    }
    if (rc == AD_OK && best) {
        pick->has_chosen = 1;
        pick->chosen = best->rep;
        double top = best->score;
        if (classes.n > 1) qsort(classes.data, classes.n, sizeof(ad_pair_class), cmp_score);
        for (size_t k = 0; rc == AD_OK && k < classes.n; k++) {
            const ad_pair_class *cl = ad_vec_at(&classes, k);
            if (cl->rep == pick->chosen || !(top > cl->score) || !(top - cl->score >= p->min_gap))
                continue;
            rc = ad_vec_push(&pick->rejected, &cl->rep, err);
        }
    }
    ad_vec_free(&classes);
    return rc;
}

int ad_pair_vote(const ad_pair_group *g, int greedy_only, ad_vote *v, const char **mode,
                 ad_error *err) {
    *mode = NULL;
    const char **answers = malloc((g->n ? g->n : 1) * sizeof *answers);
    if (!answers) return ad_error_set(err, "pairs: out of memory for %zu answers", g->n);
    for (size_t pos = 0; pos < g->n; pos++) {
        const ad_candidate *x = ad_pair_at(g, pos);
        answers[pos] = !greedy_only || x->sample == 0 ? ad_pair_answer(x) : NULL;
    }
    int rc = ad_vote_mode(answers, g->n, v, err);
    if (rc == AD_OK && v->unique) *mode = answers[v->first];
    free(answers);
    return rc;
}

int ad_pair_check_gap(const ad_pair_params *p, const char *rule, ad_error *err) {
    if (!(p->min_gap >= 0.0))
        return ad_error_set(err, "pairs (%s): min_gap %g is not a number >= 0", rule, p->min_gap);
    return AD_OK;
}
