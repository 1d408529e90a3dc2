/* evaluate.h: held-out accuracy per level.
 *
 * Problems come from the evaluation stream ad_seed(seed, AD_SEED_ANY,
 * AD_SEED_ANY, AD_SEED_EVAL, level, i), disjoint from training and
 * acquisition, so a level's held-out set is the same in every round and for
 * every lineage. The model decodes greedily with
 * the task's length bound; an answer counts as correct when decoding reached
 * EOS and the task's verifier accepts the text (for single-answer tasks this is
 * exact match of the full output). */
#ifndef AD_LOOP_EVALUATE_H
#define AD_LOOP_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/vocab.h"
#include "tasks/task.h"
#include "util/error.h"

typedef struct ad_level_accuracy {
    ad_level level;
    size_t n;              /* problems */
    size_t correct;        /* exact-match correct */
    double accuracy;       /* correct / n */
    double mean_logprob;   /* mean sequence log-prob of the greedy answers */
    double tokens_per_s;   /* decoding speed */
} ad_level_accuracy;

/* Evaluates n_per_level held-out problems at each level. out[n_levels]. */
int ad_evaluate_levels(ad_model *m, const ad_vocab *v, const ad_task *t, const ad_level *levels,
                       size_t n_levels, size_t n_per_level, uint64_t seed,
                       ad_level_accuracy *out, ad_error *err);

/* Generates the i-th held-out problem of a level into p. */
int ad_eval_problem(const ad_task *t, ad_level lv, uint64_t seed, size_t i, ad_problem *p,
                    ad_error *err);

#endif
