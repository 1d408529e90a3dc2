/* metrics.c: pass@k, maj@k, diversity, and their summary over candidates. */
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
