/* metrics.h: the evaluate stage's sample statistics: pass@k (unbiased), maj@k,
 * diversity, label accuracy and kept fraction.
 *
 * The primitives take plain numbers and strings; ad_metrics_summarize applies
 * them to a round's candidate array (filters.h), grouping samples by
 * (prompt, lineage): pass@k and maj@k measure one model, so lineages are
 * never pooled. Exact-match accuracy per level is simply the mean verdict of
 * the greedy samples and needs no helper beyond ad_metrics_summarize.
 *
 * Not here: producing verdicts (the task's verifier) or storing figures. */
#ifndef AD_LOOP_METRICS_H
#define AD_LOOP_METRICS_H

#include <stddef.h>

#include "loop/filters.h"
#include "util/error.h"

/* Unbiased pass@k (Chen et al. 2021) from n samples of which c are correct:
 * 1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1..n} (1 - k/i) so no
 * binomial is ever formed. Requires 1 <= k <= n and c <= n. */
int ad_pass_at_k(size_t n, size_t c, size_t k, double *out, ad_error *err);

/* Majority vote correctness for one prompt: the mode of the n answers (NULL =
 * no answer; ad_vote_mode's rules, so a tie or no answer scores 0) is correct
 * when correct[] of its first occurrence is 1. *out is 0 or 1. */
int ad_maj_correct(const char *const *answers, const int *correct, size_t n, int *out,
                   ad_error *err);

/* Diversity of one prompt's samples: distinct texts / n (NULL entries count
 * as samples but not as texts). 0 when n == 0. */
int ad_diversity(const char *const *texts, size_t n, double *out, ad_error *err);

/* A mean and how many items it is over; value is NaN when n == 0. */
typedef struct ad_metric {
    double value;
    size_t n;
} ad_metric;

typedef struct ad_sample_metrics {
    size_t k;            /* the k of pass@k and maj@k */
    ad_metric accuracy;  /* greedy (sample 0) candidates with correct == 1, over those judged */
    ad_metric pass_at_k; /* mean pass@k over (prompt, lineage) groups */
    ad_metric maj_at_k;  /* mean maj@k over groups: vote of the k lowest sample indices */
    ad_metric diversity; /* mean over groups of distinct answers / samples (the answer,
                          * or the completion when none; unfinished outputs count) */
    ad_metric label_accuracy; /* kept candidates with correct == 1, over kept ones judged */
    ad_metric kept_fraction;  /* kept / all candidates */
} ad_sample_metrics;

/* Computes every figure over the n candidates. k = 0 skips pass@k and maj@k
 * (their n is 0). With k > 0 every (prompt, lineage) group must hold at least k
 * samples, all with a verdict (correct 0 or 1); otherwise the error names the
 * group. Votes compare answers as the filters do (filters.h). */
int ad_metrics_summarize(const ad_candidate *c, size_t n, size_t k, ad_sample_metrics *out,
                         ad_error *err);

#endif
