/* complete.h: the bridge between tasks (text) and the model (tokens): build a
 * task's vocabulary, encode labelled problems for training, and decode model
 * completions for many prompts at once with the task's answer-length bound as
 * the generation budget (never the hidden answer). */
#ifndef AD_LOOP_COMPLETE_H
#define AD_LOOP_COMPLETE_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/sampler.h"
#include "model/trainer.h"
#include "model/vocab.h"
#include "tasks/task.h"
#include "util/error.h"

/* Builds the vocabulary of a task: the specials, then the task's tokens. */
int ad_vocab_for_task(ad_vocab *v, const ad_task *t, ad_error *err);

/* Longest sequence (BOS + prompt + bound + EOS, in bytes >= tokens) over `probe`
 * problems drawn at level lv from `seed`, or over every problem of a task that
 * has finitely many (a file task). Used to size max_seq_len. */
int ad_task_sequence_bound(const ad_task *t, ad_level lv, size_t probe, uint64_t seed, size_t *out,
                           ad_error *err);

/* Generates a labelled problem at level lv from the stream (seed, stream, a, b, i)
 * and encodes it as a training example. */
int ad_labelled_example(const ad_task *t, const ad_vocab *v, size_t max_len, ad_level lv,
                        ad_rng *rng, ad_problem *scratch, ad_example *out, ad_error *err);

/* One decoded completion. Its figures are of the model's untempered
 * next-token distributions (see ad_sample_result). */
typedef struct ad_completion {
    char *text;         /* malloc'd, without EOS */
    size_t n_tokens;    /* generated tokens, EOS included */
    double logprob_sum; /* sum of token log-probs (EOS included; nats) */
    int hit_eos;
    double certainty_sum; /* self-certainty sum_t KL(U || p_t) over the same tokens (nats);
                           * the Intuitor reward is certainty_sum / n_tokens */
} ad_completion;

/* Decodes k completions for each of n prompts: out[i*k + j] is sample j of
 * prompt i. The budget of prompt i is the task's bound + 1 (EOS), cut to the
 * model's max_seq_len. Request streams are base_stream + i*k + j, so a
 * completion does not depend on batch composition. On error nothing is
 * allocated. */
int ad_complete_prompts(ad_model *m, const ad_vocab *v, const ad_task *t,
                        const char *const *prompts, size_t n, size_t k, const ad_sample_params *sp,
                        uint64_t base_stream, ad_completion *out, ad_error *err);

void ad_completion_free(ad_completion *c);

#endif
