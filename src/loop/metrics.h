/* metrics.h: the evaluate stage's sample statistics: pass@k (unbiased), maj@k,
 * diversity, label accuracy and kept fraction; and the exploration /
 * exploitation figures of a selection: the B-STaR balance score and distinct
 * correct answers.
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

/* The accept rule's divergence test (accept.max_loss_ratio): a round's
 * training loss that ends (the mean of its last quarter of recorded steps)
 * above `ratio` times its first step's and at least AD_LOSS_RISE_MIN nats per
 * token higher, or not finite, diverged; ratio <= 0 or a start <= 0 never
 * does. The absolute rise keeps a model at the loss floor from counting as
 * diverged: a round of replayed data took one from 5.1e-6 to 1.3e-5 (2.4x). */
#define AD_LOSS_RISE_MIN 0.05
int ad_loss_diverged(double start, double end, double ratio);

/* Unbiased pass@k (Chen et al. 2021) from n samples of which c are correct:
 * 1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1..n} (1 - k/i) so no
 * binomial is ever formed. Requires 1 <= k <= n and c <= n. */
int ad_pass_at_k(size_t n, size_t c, size_t k, double *out, ad_error *err);

/* Majority vote correctness for one prompt: the mode of the n answers (NULL =
 * no answer; ad_vote_mode's rules, so a tie or no answer scores 0) is correct
 * when correct[] of its first occurrence is 1. *out is 0 or 1. */
int ad_maj_correct(const char *const *answers, const int *correct, size_t n, int *out,
                   ad_error *err);

/* How best-of-k picks one of a prompt's k samples. Values are stable (they
 * name a CLI choice); append, never renumber. */
typedef enum ad_best_of_rule {
    AD_BEST_OF_LIKELIHOOD = 0, /* the highest sequence log-prob (the sum) */
    AD_BEST_OF_VOTE = 1,       /* the majority answer */
    AD_BEST_OF_JUDGE = 2,      /* the highest judge score P(yes) */
} ad_best_of_rule;

/* "likelihood", "vote" or "judge"; "?" for an unknown rule. This function can't fail. */
const char *ad_best_of_rule_name(ad_best_of_rule by);

/* The rule with this name; the error lists the names. */
int ad_best_of_rule_parse(const char *name, ad_best_of_rule *out, ad_error *err);

/* Best-of-n choice for one prompt: *chosen is the index of the chosen sample,
 * or n when none is chosen (the prompt then scores as wrong). answers[j] is
 * sample j's answer, NULL when it never reached EOS. Likelihood and judge: the
 * highest value[j] (the sequence log-prob, or the judge's P(yes)) among
 * samples with an answer (a NaN never wins); ties: the lowest index. Vote: the
 * first occurrence of the mode of the answers (ad_vote_mode: a tie or no
 * answer at all chooses none). value may be NULL for the vote. */
int ad_best_of_choose(ad_best_of_rule by, const char *const *answers, const double *value, size_t n,
                      size_t *chosen, ad_error *err);

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

/* ---- exploration and exploitation (B-STaR, Zeng et al. 2024) ----------------
 *
 * The balance score of one prompt i,
 *     bs_i = min(n'_i / n*, 1) * (n'_i / n_i),
 * rewards a selection that holds many distinct right answers (exploration,
 * the first factor, saturating at the target n*) and few wrong ones
 * (exploitation, the second factor: the selector's precision). n_i is the
 * number of selected (kept) candidates of the prompt, n'_i the number of
 * distinct completions among them that are correct. */

/* bs_i from its counts; 0 when n_selected == 0 (nothing selected: nothing
 * explored). Requires target >= 1 and n_unique_correct <= n_selected. */
int ad_bstar_balance(size_t n_unique_correct, size_t n_selected, size_t target, double *out,
                     ad_error *err);

typedef struct ad_balance_metrics {
    size_t target; /* n* */
    /* mean bs_i over every prompt of the array: a prompt whose candidates were
     * all dropped counts 0 (a selector that keeps nothing has not explored) */
    ad_metric bstar_balance;
    /* mean bs_i over the prompts with n_i >= 1 only: what B-STaR's own code
     * averages (its training set holds only prompts that kept something) */
    ad_metric bstar_balance_selected;
    /* mean over prompts of the distinct correct completions among ALL the
     * prompt's candidates (every lineage and sample, kept or not): how much
     * right the sampling found, before any filter */
    ad_metric distinct_correct;
} ad_balance_metrics;

/* Computes the balance figures over n candidates after the filters (kept
 * set). Group: one prompt, every lineage and sample pooled (a label is a
 * (prompt, completion) pair whoever made it). "Distinct" compares whole
 * completions (the training label), not answers; "correct" is correct == 1.
 * Every candidate must have a verdict (correct 0 or 1), else the error names
 * it; target must be >= 1. Empty input gives NaN values with n 0. */
int ad_balance_summarize(const ad_candidate *c, size_t n, size_t target, ad_balance_metrics *out,
                         ad_error *err);

#endif
