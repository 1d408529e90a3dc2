/* evaluate.h: held-out accuracy per level, greedy and best-of-k.
 *
 * Problems come from the evaluation stream ad_seed(seed, AD_SEED_ANY,
 * AD_SEED_ANY, AD_SEED_EVAL, level, i), disjoint from training and
 * acquisition, so a level's held-out set is the same in every round and for
 * every lineage. The model decodes greedily with
 * the task's length bound; an answer counts as correct when decoding reached
 * EOS and the task's verifier accepts the text (for single-answer tasks this is
 * exact match of the full output).
 *
 * Best-of-k (ad_evaluate_best_of) also draws k samples per problem and
 * answers with one of them (metrics.h's ad_best_of_choose: by likelihood, by
 * majority vote, or by a self-taught judge's P(yes)); it measures how much better the model does
 * when it may pick among its own samples, the gap sharpening aims to close. */
#ifndef AD_LOOP_EVALUATE_H
#define AD_LOOP_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "loop/metrics.h"
#include "model/model.h"
#include "model/vocab.h"
#include "tasks/task.h"
#include "util/error.h"

typedef struct ad_level_accuracy {
    ad_level level;
    size_t n;            /* problems */
    size_t correct;      /* exact-match correct */
    double accuracy;     /* correct / n */
    double mean_logprob; /* mean sequence log-prob of the greedy answers */
    double tokens_per_s; /* decoding speed */
} ad_level_accuracy;

/* Evaluates n_per_level held-out problems at each level. out[n_levels]. */
int ad_evaluate_levels(ad_model *m, const ad_vocab *v, const ad_task *t, const ad_level *levels,
                       size_t n_levels, size_t n_per_level, uint64_t seed, ad_level_accuracy *out,
                       ad_error *err);

/* One held-out problem's greedy answer, as the figures above need it. Plain
 * bytes: ranks gather them (ad_evaluate_levels_spread). */
typedef struct ad_eval_outcome {
    double logprob_sum; /* the answer's sequence log-prob */
    double seconds;     /* its share of the decoding's wall time */
    uint64_t n_tokens;  /* tokens decoded */
    int32_t right;      /* EOS reached and the verifier accepts */
    int32_t pad;
} ad_eval_outcome;

/* The problems of ad_evaluate_levels numbered in one list, level i's problem j
 * being i * n_per_level + j: decodes and verifies problems [from, to) into
 * out[to - from]. A problem's outcome depends on nothing but its level, its
 * index and the model (decoding rows are independent), so any split of the
 * list gives the same outcomes. */
int ad_evaluate_range(ad_model *m, const ad_vocab *v, const ad_task *t, const ad_level *levels,
                      size_t n_levels, size_t n_per_level, uint64_t seed, size_t from, size_t to,
                      ad_eval_outcome *out, ad_error *err);

/* The per-level figures of every problem's outcome (outcomes[n_levels *
 * n_per_level], in list order), summed in problem order: the same bits
 * however the outcomes were split. tokens_per_s is per process (tokens over
 * the summed decoding seconds). This function can't fail. */
void ad_evaluate_summarize(const ad_level *levels, size_t n_levels, size_t n_per_level,
                           const ad_eval_outcome *outcomes, ad_level_accuracy *out);

/* ad_evaluate_levels spread over the ranks of an MPI job (dist.h): every rank
 * calls it with the same arguments and its own copy of the same model; rank r
 * of N decodes problems [r*P/N, (r+1)*P/N) of the P = n_levels * n_per_level,
 * and rank 0 gathers the outcomes in problem order and fills out (the other
 * ranks' out is left alone). Rank 0's figures are bit for bit those of
 * ad_evaluate_levels in one process; alone it is ad_evaluate_levels. */
int ad_evaluate_levels_spread(ad_model *m, const ad_vocab *v, const ad_task *t,
                              const ad_level *levels, size_t n_levels, size_t n_per_level,
                              uint64_t seed, ad_level_accuracy *out, ad_error *err);

typedef struct ad_best_of_params {
    size_t k;           /* samples per problem, 1..AD_BEST_OF_MAX */
    ad_best_of_rule by; /* how the answer is chosen among them */
    float temperature;  /* sampling temperature, >= 0 (0: every sample is the greedy one) */
    /* by judge: the judge model and its vocabulary (judge.h's ad_judge_load);
     * NULL otherwise */
    ad_model *judge;
    const ad_vocab *judge_vocab;
} ad_best_of_params;

#define AD_BEST_OF_MAX 4096

/* k = 1, by likelihood, temperature 1. This function can't fail. */
ad_best_of_params ad_best_of_default_params(void);

typedef struct ad_best_of_accuracy {
    ad_level_accuracy greedy; /* the level's greedy figures, as ad_evaluate_levels gives */
    ad_best_of_params params;
    size_t chosen_correct;   /* problems whose chosen sample is right */
    double best_of_accuracy; /* chosen_correct / n */
    size_t any_correct;      /* problems with at least one right sample among the k */
    double pass_at_k;        /* any_correct / n (pass@k with exactly k samples) */
} ad_best_of_accuracy;

/* Evaluates n held-out problems of level lv greedily (out->greedy), then
 * draws k samples of each at the given temperature and scores the chosen
 * one and pass@k; a sample is right as a greedy answer is (EOS reached and
 * the verifier accepts). Sample j of problem i is decoded with sampler seed
 * ad_seed(seed, AD_SEED_ANY, AD_SEED_ANY, AD_SEED_SAMPLE, level, j) and request
 * stream i: a run's candidates always name their lineage and round, so the
 * streams never meet, and a sample does not depend on k or n (the samples of
 * best-of-4 are the first 4 of best-of-8). Checks p (k in 1..AD_BEST_OF_MAX,
 * a finite temperature >= 0, a known rule, a judge when by judge) before
 * decoding anything. */
int ad_evaluate_best_of(ad_model *m, const ad_vocab *v, const ad_task *t, ad_level lv, size_t n,
                        uint64_t seed, const ad_best_of_params *p, ad_best_of_accuracy *out,
                        ad_error *err);

/* Generates the i-th held-out problem of a level into p. */
int ad_eval_problem(const ad_task *t, ad_level lv, uint64_t seed, size_t i, ad_problem *p,
                    ad_error *err);

#endif
