/* sampler.h: batched decoding with a KV cache, and teacher-forced scoring.
 *
 * Decoding runs many prompts at once: each row has its own prompt length and
 * stops at EOS or at its own token budget; finished rows drop out of the
 * batch. Sampling is greedy (temperature 0) or temperature / top-k / top-p.
 * Randomness for request i comes from its own generator seeded with
 * ad_seed_derive(seed, AD_SEED_SAMPLE, request.stream, 0, 0), so the tokens of a row do not
 * depend on which other rows share its batch, nor on the thread count. */
#ifndef AD_MODEL_SAMPLER_H
#define AD_MODEL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/error.h"

/* Rows decoded together by default (sampler.c says why this many). */
#define AD_SAMPLE_MAX_BATCH 64

typedef struct ad_sample_params {
    float temperature; /* 0 = greedy */
    size_t top_k;      /* 0 = off */
    float top_p;       /* 1 = off */
    uint64_t seed;
    size_t max_batch; /* rows decoded together; 0 = AD_SAMPLE_MAX_BATCH */
} ad_sample_params;

ad_sample_params ad_sample_default_params(void);

/* One request: a prompt (token ids, BOS included by the caller) and a budget of
 * new tokens (EOS counts as one). */
typedef struct ad_sample_request {
    const int32_t *prompt;
    size_t prompt_len;
    size_t max_new;
    uint64_t stream; /* per-request id mixed into the seed (e.g. its index) */
} ad_sample_request;

/* One result: generated ids (EOS included if reached), their log-probs under
 * the model's (untempered) distribution, and whether EOS was reached. The
 * caller frees with ad_sample_result_free.
 *
 * Every figure is of the untempered next-token distribution p_t = softmax(logits
 * at step t), whatever temperature / top-k / top-p picked the token: logprobs[t]
 * = log p_t(tokens[t]), the log-prob a teacher-forced forward of the same tokens
 * gives (ad_score_sequences). certainty_sum is the self-certainty of Kang et al.
 * 2025 (Intuitor) summed over the n generated steps (EOS included):
 *     sum_t KL(U || p_t) = sum_t [ -log V - (1/V) sum_v log p_t(v) ]
 * with U uniform over the V ids of the vocabulary. Units: nats; each term is >= 0
 * (0 for a uniform p_t) and unbounded above (it grows as the least likely ids'
 * probabilities shrink, so a peaked p_t scores high); the mean per token is
 * certainty_sum / n (take 0 when n == 0). */
typedef struct ad_sample_result {
    int32_t *tokens;
    float *logprobs;
    size_t n;
    int hit_eos;
    double logprob_sum;   /* sum of log p_t(tokens[t]) in double (nats) */
    double certainty_sum; /* sum of KL(U || p_t) over the n steps (nats) */
} ad_sample_result;

/* Decodes n requests. results[n] is filled. prompt_len + max_new must not exceed
 * the model's max_seq_len (the budget is cut to fit). On error nothing is
 * allocated. */
int ad_sample_generate(ad_model *m, const ad_sample_request *reqs, size_t n,
                       const ad_sample_params *params, ad_sample_result *results, ad_error *err);

void ad_sample_result_free(ad_sample_result *r);

/* Self-certainty of one row of V >= 1 raw logits: KL(U || softmax(logits)) =
 * -log V - (1/V) sum_v log_softmax(logits)[v], in nats: >= 0 up to rounding, 0
 * for equal logits, unbounded above. The per-step term of certainty_sum,
 * exposed so a teacher-forced pass (ad_model_logits) can compute the same
 * figure. This function can't fail. */
double ad_sample_certainty(const float *logits, size_t V);

/* Teacher-forced scoring: for n sequences BOS + prompt + completion (+ EOS,
 * included by the caller in `seq`), the sum of log p(token) over positions
 * score_from[i]..lens[i]-1 (score_from[i] >= 1). seqs[i] has lens[i] ids; score_from[i] is the
 * index of the first scored token. out_logprob[i] gets the sum, out_n[i] the count (may be NULL).
 */
int ad_score_sequences(ad_model *m, const int32_t *const *seqs, const size_t *lens,
                       const size_t *score_from, size_t n, double *out_logprob, size_t *out_n,
                       ad_error *err);

#endif
