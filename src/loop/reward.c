/* reward.c: the reward registry, the checks every reward relies on, weighted
 * sums (the spec string) and reward precision. The rewards themselves are one
 * file each (reward_<name>.c); see reward.h for what each computes. */
#include "loop/reward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/reward_internal.h"
#include "loop/vote.h"

/* ---- registry ---------------------------------------------------------------- */

static const ad_reward *const rewards[] = {
    &ad_reward_verifier, &ad_reward_majority, &ad_reward_lineages, &ad_reward_self_certainty,
    &ad_reward_judge,    &ad_reward_length,   &ad_reward_format,
};

#define N_REWARDS (sizeof rewards / sizeof rewards[0])

size_t ad_reward_count(void) {
    return N_REWARDS;
}

const ad_reward *ad_reward_at(size_t i) {
    return i < N_REWARDS ? rewards[i] : NULL;
}

const ad_reward *ad_reward_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_REWARDS; i++)
        if (strcmp(rewards[i]->name, name) == 0) return rewards[i];
    return NULL;
}

double ad_reward_certainty_mean(double certainty_sum, size_t n_tokens) {
    return n_tokens ? certainty_sum / (double)n_tokens : 0.0;
}

/* ---- shared helpers ---------------------------------------------------------- */

const char *ad_reward_answer(const ad_candidate *c) {
    if (!c->hit_eos) return NULL;
    return c->answer ? c->answer : c->completion;
}

int ad_reward_matches(const char *a, const char *mode) {
    return a && mode && strcmp(a, mode) == 0;
}

int ad_reward_vote(const ad_reward_ctx *ctx, const unsigned char *voter, const char **mode,
                   ad_error *err) {
    *mode = NULL;
    const char **answers = malloc((ctx->n ? ctx->n : 1) * sizeof *answers);
    if (!answers) return ad_error_set(err, "rewards: out of memory for %zu answers", ctx->n);
    for (size_t i = 0; i < ctx->n; i++)
        answers[i] = voter[i] ? ad_reward_answer(&ctx->c[i]) : NULL;
    ad_vote v;
    int rc = ad_vote_mode(answers, ctx->n, &v, err);
    if (rc == AD_OK && v.unique) *mode = answers[v.first];
    free(answers);
    return rc;
}

int ad_reward_need_bound(const ad_reward_ctx *ctx, const char *reward, ad_error *err) {
    if (!ctx->answer_bound)
        return ad_error_set(err, "reward %s: needs the task's answer-length bounds (none given)",
                            reward);
    return AD_OK;
}

/* The common ground of every reward; see ad_reward_score. */
static int check_group(const ad_reward *r, const ad_reward_ctx *ctx, const double *out,
                       ad_error *err) {
    if (!ctx) return ad_error_set(err, "reward %s: no group given", r->name);
    if (ctx->n && (!ctx->c || !out))
        return ad_error_set(err, "reward %s: %zu candidates but a NULL array", r->name, ctx->n);
    if (ctx->n_lineages < 1)
        return ad_error_set(err, "reward %s: n_lineages must be >= 1, got 0", r->name);
    if (ctx->n_others && !ctx->others)
        return ad_error_set(err, "reward %s: %zu other answers but a NULL array", r->name,
                            ctx->n_others);
    for (size_t i = 0; i < ctx->n; i++) {
        const ad_candidate *x = &ctx->c[i];
        if (!x->completion)
            return ad_error_set(err, "reward %s: candidate %zu has no completion", r->name, i);
        if (x->prompt != ctx->c[0].prompt)
            return ad_error_set(err,
                                "reward %s: candidate %zu is of prompt %zu but candidate 0 of "
                                "prompt %zu (a group is one prompt)",
                                r->name, i, x->prompt, ctx->c[0].prompt);
        if (x->lineage >= ctx->n_lineages)
            return ad_error_set(err, "reward %s: candidate %zu has lineage %zu but m = %zu",
                                r->name, i, x->lineage, ctx->n_lineages);
        for (size_t j = 0; j < i; j++)
            if (ctx->c[j].lineage == x->lineage && ctx->c[j].sample == x->sample)
                return ad_error_set(err,
                                    "reward %s: candidates %zu and %zu are both lineage %zu, "
                                    "sample %zu",
                                    r->name, j, i, x->lineage, x->sample);
    }
    return AD_OK;
}

int ad_reward_score(const ad_reward *r, const ad_reward_ctx *ctx, double *out, ad_error *err) {
    if (!r || !r->score) return ad_error_set(err, "rewards: no reward given");
    if (check_group(r, ctx, out, err) != AD_OK) return AD_ERR;
    if (!ctx->n) return AD_OK;
    return r->score(ctx, out, err);
}

/* ---- weighted sums ----------------------------------------------------------- */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

/* "verifier, majority, ..." into buf[cap]. */
static void known_names(char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_REWARDS && at < cap; i++) {
        int w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", rewards[i]->name);
        if (w < 0) return;
        at += (size_t)w;
    }
}

/* Parses one trimmed term (the k-th, 1-based) of `text` into *t. */
static int parse_term(const char *text, size_t k, char *term, ad_reward_term *t, ad_error *err) {
    if (!*term) return ad_error_set(err, "reward spec \"%.200s\": term %zu is empty", text, k);
    char *colon = strchr(term, ':');
    char *weight = NULL;
    if (colon) {
        *colon = '\0';
        weight = trim(colon + 1);
    }
    char *name = trim(term);
    if (!*name)
        return ad_error_set(err, "reward spec \"%.200s\": term %zu has no reward name", text, k);
    t->reward = ad_reward_find(name);
    if (!t->reward) {
        char known[256];
        known_names(known, sizeof known);
        return ad_error_set(err,
                            "reward spec \"%.200s\": term %zu: unknown reward \"%.64s\" "
                            "(known: %s)",
                            text, k, name, known);
    }
    t->weight = 1.0;
    if (!weight) return AD_OK;
    if (!*weight)
        return ad_error_set(err, "reward spec \"%.200s\": term %zu (%s): missing weight after ':'",
                            text, k, name);
    char *end = NULL;
    t->weight = strtod(weight, &end);
    if (end == weight || *end)
        return ad_error_set(err,
                            "reward spec \"%.200s\": term %zu (%s): weight \"%.64s\" is not a "
                            "number",
                            text, k, name, weight);
    if (!isfinite(t->weight))
        return ad_error_set(err,
                            "reward spec \"%.200s\": term %zu (%s): weight \"%.64s\" is not "
                            "finite",
                            text, k, name, weight);
    return AD_OK;
}

int ad_reward_spec_parse(const char *text, ad_reward_spec *spec, ad_error *err) {
    if (!text) return ad_error_set(err, "reward spec: none given");
    char *copy = strdup(text);
    if (!copy) return ad_error_set(err, "reward spec: out of memory");
    ad_reward_spec s;
    memset(&s, 0, sizeof s);
    int rc = AD_OK;
    if (!*trim(copy)) rc = ad_error_set(err, "reward spec \"%.200s\": empty", text);
    char *at = copy;
    for (size_t k = 1; rc == AD_OK && at; k++) {
        char *comma = strchr(at, ',');
        if (comma) *comma = '\0';
        ad_reward_term t;
        if (s.n == AD_REWARD_MAX_TERMS) {
            rc = ad_error_set(err, "reward spec \"%.200s\": more than %d terms", text,
                              AD_REWARD_MAX_TERMS);
            break;
        }
        rc = parse_term(text, k, trim(at), &t, err);
        for (size_t j = 0; rc == AD_OK && j < s.n; j++)
            if (s.terms[j].reward == t.reward)
                rc = ad_error_set(err,
                                  "reward spec \"%.200s\": term %zu: %s appears twice (terms "
                                  "%zu and %zu)",
                                  text, k, t.reward->name, j + 1, k);
        if (rc == AD_OK) s.terms[s.n++] = t;
        at = comma ? comma + 1 : NULL;
    }
    free(copy);
    if (rc == AD_OK) *spec = s;
    return rc;
}

size_t ad_reward_spec_format(const ad_reward_spec *spec, char *buf, size_t cap) {
    size_t need = 0;
    if (cap) buf[0] = '\0';
    for (size_t k = 0; k < spec->n; k++) {
        char *dst = need < cap ? buf + need : NULL;
        size_t room = need < cap ? cap - need : 0;
        int w = snprintf(dst, room, "%s%s:%.17g", k ? "," : "", spec->terms[k].reward->name,
                         spec->terms[k].weight);
        if (w > 0) need += (size_t)w;
    }
    return need;
}

int ad_reward_spec_uses_verifier(const ad_reward_spec *spec) {
    for (size_t k = 0; k < spec->n; k++)
        if (spec->terms[k].reward->uses_verifier) return 1;
    return 0;
}

int ad_reward_spec_names(const ad_reward_spec *spec, const char *name) {
    for (size_t k = 0; k < spec->n; k++)
        if (!strcmp(spec->terms[k].reward->name, name)) return 1;
    return 0;
}

int ad_reward_spec_score(const ad_reward_spec *spec, const ad_reward_ctx *ctx, double *out,
                         double *per_reward_out, ad_error *err) {
    if (!spec || spec->n < 1 || spec->n > AD_REWARD_MAX_TERMS)
        return ad_error_set(err, "reward spec: no terms to score");
    if (!ctx) return ad_error_set(err, "reward spec: no group given");
    size_t n = ctx->n;
    if (n && !out) return ad_error_set(err, "reward spec: %zu candidates but no output array", n);
    double *scratch = per_reward_out ? NULL : malloc((n ? n : 1) * sizeof *scratch);
    if (!per_reward_out && !scratch)
        return ad_error_set(err, "reward spec: out of memory for %zu candidates", n);
    for (size_t i = 0; i < n; i++)
        out[i] = 0.0;
    int rc = AD_OK;
    for (size_t k = 0; rc == AD_OK && k < spec->n; k++) {
        double *r = per_reward_out ? per_reward_out + k * n : scratch;
        rc = ad_reward_score(spec->terms[k].reward, ctx, r, err);
        for (size_t i = 0; rc == AD_OK && i < n; i++)
            out[i] += spec->terms[k].weight * r[i];
    }
    free(scratch);
    return rc;
}

/* ---- precision --------------------------------------------------------------- */

typedef struct by_prompt {
    size_t prompt, i;
} by_prompt;

static int cmp_prompt(const void *x, const void *y) {
    const by_prompt *a = x, *b = y;
    if (a->prompt != b->prompt) return a->prompt < b->prompt ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Adds the (right, wrong) pairs of one prompt's verified candidates v[0..m). */
static void count_pairs(const ad_candidate *c, const double *r, const by_prompt *v, size_t m,
                        size_t *pairs, double *agree) {
    for (size_t a = 0; a < m; a++) {
        if (c[v[a].i].correct != 1) continue;
        for (size_t b = 0; b < m; b++) {
            if (c[v[b].i].correct != 0) continue;
            double ra = r[v[a].i], rb = r[v[b].i];
            ++*pairs;
            *agree += ra > rb ? 1.0 : ra == rb ? 0.5 : 0.0;
        }
    }
}

int ad_reward_precision_of(const ad_candidate *c, const double *r, size_t n,
                           ad_reward_precision *out, ad_error *err) {
    if (n && (!c || !r)) return ad_error_set(err, "reward precision: NULL arrays");
    by_prompt *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return ad_error_set(err, "reward precision: out of memory for %zu candidates", n);
    ad_reward_precision p = {0};
    for (size_t i = 0; i < n; i++) {
        if (c[i].correct != 0 && c[i].correct != 1) continue;
        if (isnan(r[i])) {
            free(v);
            return ad_error_set(err,
                                "reward precision: candidate %zu (prompt %zu) has a NaN reward", i,
                                c[i].prompt);
        }
        v[p.verified++] = (by_prompt){c[i].prompt, i};
        if (r[i] >= 0.5) {
            p.rewarded++;
            p.rewarded_right += c[i].correct == 1;
        }
    }
    qsort(v, p.verified, sizeof *v, cmp_prompt);
    double agree = 0;
    for (size_t s = 0, e; s < p.verified; s = e) {
        for (e = s + 1; e < p.verified && v[e].prompt == v[s].prompt;)
            e++;
        count_pairs(c, r, v + s, e - s, &p.pairs, &agree);
    }
    free(v);
    p.precision = p.rewarded ? (double)p.rewarded_right / (double)p.rewarded : NAN;
    p.pair_agreement = p.pairs ? agree / (double)p.pairs : NAN;
    *out = p;
    return AD_OK;
}
