/* metrics.c: pass@k, maj@k, diversity, and their summary over candidates;
 * the B-STaR balance score and distinct correct answers. */
#include "loop/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/vote.h"

int ad_pass_at_k(size_t n, size_t c, size_t k, double *out, ad_error *err) {
    if (k < 1 || k > n || c > n)
        return ad_error_set(err, "pass@k: need 1 <= k <= n and c <= n (n=%zu, c=%zu, k=%zu)", n, c,
                            k);
    if (n - c < k) {
        *out = 1.0; /* every k-subset holds a correct sample */
        return AD_OK;
    }
    /* C(n-c, k) / C(n, k) = prod_{i=n-c+1..n} (1 - k/i): each factor is in [0, 1). */
    double fail = 1.0;
    for (size_t i = n - c + 1; i <= n; i++)
        fail *= 1.0 - (double)k / (double)i;
    *out = 1.0 - fail;
    return AD_OK;
}

int ad_maj_correct(const char *const *answers, const int *correct, size_t n, int *out,
                   ad_error *err) {
    ad_vote v;
    if (ad_vote_mode(answers, n, &v, err)) return AD_ERR;
    *out = v.unique && correct[v.first] == 1;
    return AD_OK;
}

static const char *const best_of_names[] = {"likelihood", "vote", "judge"};
#define N_BEST_OF_RULES (sizeof best_of_names / sizeof best_of_names[0])

const char *ad_best_of_rule_name(ad_best_of_rule by) {
    return (unsigned)by < N_BEST_OF_RULES ? best_of_names[by] : "?";
}

int ad_best_of_rule_parse(const char *name, ad_best_of_rule *out, ad_error *err) {
    for (unsigned i = 0; name && i < N_BEST_OF_RULES; i++)
        if (strcmp(name, best_of_names[i]) == 0) {
            *out = (ad_best_of_rule)i;
            return AD_OK;
        }
    return ad_error_set(err, "'%s' is not a best-of rule (one of: likelihood, vote, judge)",
                        name ? name : "(null)");
}

int ad_best_of_choose(ad_best_of_rule by, const char *const *answers, const double *value, size_t n,
                      size_t *chosen, ad_error *err) {
    *chosen = n;
    if (by == AD_BEST_OF_VOTE) {
        ad_vote v;
        if (ad_vote_mode(answers, n, &v, err)) return AD_ERR;
        if (v.unique) *chosen = v.first;
        return AD_OK;
    }
    if (by != AD_BEST_OF_LIKELIHOOD && by != AD_BEST_OF_JUDGE)
        return ad_error_set(err, "best-of: unknown rule %d", (int)by);
    if (n && !value)
        return ad_error_set(err, "best-of: %s needs a value per sample", ad_best_of_rule_name(by));
    for (size_t j = 0; j < n; j++) {
        if (!answers[j] || isnan(value[j])) continue;
        if (*chosen == n || value[j] > value[*chosen]) *chosen = j;
    }
    return AD_OK;
}

int ad_diversity(const char *const *texts, size_t n, double *out, ad_error *err) {
    ad_vote v;
    if (ad_vote_mode(texts, n, &v, err)) return AD_ERR;
    *out = n ? (double)v.n_distinct / (double)n : 0.0;
    return AD_OK;
}

/* ---- summary over candidates ----------------------------------------------- */

typedef struct mean_acc {
    double sum;
    size_t n;
} mean_acc;

static void acc_add(mean_acc *a, double x) {
    a->sum += x;
    a->n++;
}

static ad_metric acc_metric(const mean_acc *a) {
    ad_metric m = {a->n ? a->sum / (double)a->n : NAN, a->n};
    return m;
}

static int cmp_group_order(const void *x, const void *y) {
    const ad_candidate *a = *(const ad_candidate *const *)x, *b = *(const ad_candidate *const *)y;
    if (a->prompt != b->prompt) return a->prompt < b->prompt ? -1 : 1;
    if (a->lineage != b->lineage) return a->lineage < b->lineage ? -1 : 1;
    return (a->sample > b->sample) - (a->sample < b->sample);
}

static const char *answer_of(const ad_candidate *c) {
    if (!c->hit_eos) return NULL;
    return c->answer ? c->answer : c->completion;
}

/* pass@k and maj@k of one (prompt, lineage) group g[0..m), sorted by sample. */
static int group_k_metrics(const ad_candidate *const *g, size_t m, size_t k, mean_acc *pass,
                           mean_acc *maj, const char **texts, int *verdicts, ad_error *err) {
    if (m < k)
        return ad_error_set(err,
                            "metrics: prompt %zu lineage %zu has %zu samples, fewer than k=%zu",
                            g[0]->prompt, g[0]->lineage, m, k);
    size_t c = 0;
    for (size_t j = 0; j < m; j++) {
        if (g[j]->correct != 0 && g[j]->correct != 1)
            return ad_error_set(err, "metrics: prompt %zu lineage %zu sample %zu has no verdict",
                                g[j]->prompt, g[j]->lineage, g[j]->sample);
        c += g[j]->correct == 1;
    }
    double p = 0;
    if (ad_pass_at_k(m, c, k, &p, err)) return AD_ERR;
    acc_add(pass, p);
    for (size_t j = 0; j < k; j++) {
        texts[j] = answer_of(g[j]);
        verdicts[j] = g[j]->correct;
    }
    int ok;
    if (ad_maj_correct(texts, verdicts, k, &ok, err)) return AD_ERR;
    acc_add(maj, ok);
    return AD_OK;
}

int ad_metrics_summarize(const ad_candidate *c, size_t n, size_t k, ad_sample_metrics *out,
                         ad_error *err) {
    memset(out, 0, sizeof *out);
    out->k = k;
    const ad_candidate **g = malloc((n ? n : 1) * sizeof *g);
    const char **texts = malloc((n ? n : 1) * sizeof *texts);
    int *verdicts = malloc((n ? n : 1) * sizeof *verdicts);
    int rc = (g && texts && verdicts) ? AD_OK : ad_error_set(err, "metrics: out of memory");
    mean_acc acc = {0}, pass = {0}, maj = {0}, div = {0}, label = {0}, kept = {0};
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        g[i] = &c[i];
        if (c[i].sample == 0 && c[i].correct >= 0) acc_add(&acc, c[i].correct == 1);
        if (c[i].kept && c[i].correct >= 0) acc_add(&label, c[i].correct == 1);
        acc_add(&kept, c[i].kept != 0);
    }
    if (rc == AD_OK) qsort(g, n, sizeof *g, cmp_group_order);
    for (size_t s = 0, e; rc == AD_OK && s < n; s = e) {
        e = s + 1;
        while (e < n && g[e]->prompt == g[s]->prompt && g[e]->lineage == g[s]->lineage)
            e++;
        for (size_t j = s; j < e; j++)
            texts[j - s] = g[j]->answer ? g[j]->answer : g[j]->completion;
        double d = 0;
        rc = ad_diversity(texts, e - s, &d, err);
        if (rc == AD_OK) acc_add(&div, d);
        if (rc == AD_OK && k > 0)
            rc = group_k_metrics(g + s, e - s, k, &pass, &maj, texts, verdicts, err);
    }
    free(g);
    free(texts);
    free(verdicts);
    if (rc != AD_OK) return AD_ERR;
    out->accuracy = acc_metric(&acc);
    out->pass_at_k = acc_metric(&pass);
    out->maj_at_k = acc_metric(&maj);
    out->diversity = acc_metric(&div);
    out->label_accuracy = acc_metric(&label);
    out->kept_fraction = acc_metric(&kept);
    return AD_OK;
}

/* ---- B-STaR balance ---------------------------------------------------------- */

int ad_bstar_balance(size_t n_unique_correct, size_t n_selected, size_t target, double *out,
                     ad_error *err) {
    if (target < 1 || n_unique_correct > n_selected)
        return ad_error_set(err, "balance score: need n* >= 1 and n' <= n (n'=%zu, n=%zu, n*=%zu)",
                            n_unique_correct, n_selected, target);
    if (n_selected == 0) {
        *out = 0.0;
        return AD_OK;
    }
    double explore = (double)n_unique_correct / (double)target;
    *out = (explore < 1.0 ? explore : 1.0) * ((double)n_unique_correct / (double)n_selected);
    return AD_OK;
}

static int cmp_prompt_order(const void *x, const void *y) {
    const ad_candidate *a = *(const ad_candidate *const *)x, *b = *(const ad_candidate *const *)y;
    return (a->prompt > b->prompt) - (a->prompt < b->prompt);
}

/* The number of distinct completions among g[0..m) that are correct (and
 * kept, when kept_only). */
static int distinct_correct(const ad_candidate *const *g, size_t m, int kept_only,
                            const char **texts, size_t *out, ad_error *err) {
    for (size_t j = 0; j < m; j++)
        texts[j] = g[j]->correct == 1 && (!kept_only || g[j]->kept) ? g[j]->completion : NULL;
    ad_vote v;
    if (ad_vote_mode(texts, m, &v, err)) return AD_ERR;
    *out = v.n_distinct;
    return AD_OK;
}

/* The three figures of one prompt's group g[0..m). */
static int balance_group(const ad_candidate *const *g, size_t m, size_t target, mean_acc *all,
                         mean_acc *sel, mean_acc *found, const char **texts, ad_error *err) {
    size_t n_sel = 0, n_uc = 0, n_found = 0;
    for (size_t j = 0; j < m; j++)
        n_sel += g[j]->kept != 0;
    if (distinct_correct(g, m, 1, texts, &n_uc, err)) return AD_ERR;
    if (distinct_correct(g, m, 0, texts, &n_found, err)) return AD_ERR;
    double bs = 0;
    if (ad_bstar_balance(n_uc, n_sel, target, &bs, err)) return AD_ERR;
    acc_add(all, bs);
    if (n_sel) acc_add(sel, bs);
    acc_add(found, (double)n_found);
    return AD_OK;
}

int ad_balance_summarize(const ad_candidate *c, size_t n, size_t target, ad_balance_metrics *out,
                         ad_error *err) {
    memset(out, 0, sizeof *out);
    out->target = target;
    if (target < 1) return ad_error_set(err, "balance score: target n* must be >= 1");
    for (size_t i = 0; i < n; i++)
        if (c[i].correct != 0 && c[i].correct != 1)
            return ad_error_set(err,
                                "balance score: prompt %zu lineage %zu sample %zu has no "
                                "verdict",
                                c[i].prompt, c[i].lineage, c[i].sample);
    const ad_candidate **g = malloc((n ? n : 1) * sizeof *g);
    const char **texts = malloc((n ? n : 1) * sizeof *texts);
    int rc = (g && texts) ? AD_OK : ad_error_set(err, "balance score: out of memory");
    mean_acc all = {0}, sel = {0}, found = {0};
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        g[i] = &c[i];
    if (rc == AD_OK) qsort(g, n, sizeof *g, cmp_prompt_order);
    for (size_t s = 0, e; rc == AD_OK && s < n; s = e) {
        for (e = s + 1; e < n && g[e]->prompt == g[s]->prompt;)
            e++;
        rc = balance_group(g + s, e - s, target, &all, &sel, &found, texts, err);
    }
    free(g);
    free(texts);
    if (rc != AD_OK) return AD_ERR;
    out->bstar_balance = acc_metric(&all);
    out->bstar_balance_selected = acc_metric(&sel);
    out->distinct_correct = acc_metric(&found);
    return AD_OK;
}

int ad_loss_diverged(double start, double end, double ratio) {
    if (!(ratio > 0) || !(start > 0)) return 0;
    return !isfinite(end) || (end > ratio * start && end - start >= AD_LOSS_RISE_MIN);
}
