/* sampler_score.c: teacher-forced scoring of given sequences.
 *
 * log p(seq[score_from..len-1] | seq[0..score_from-1]) for many sequences, by
 * full forward passes (ad_model_forward) over right-padded batches: position t
 * predicts seq[t+1], so the targets are seq[t+1] for score_from-1 <= t < len-1
 * and -1 elsewhere. Sequences are taken longest first, so rows of one batch
 * have similar lengths and little padding, and the batches are cut so that the
 * forward's activations stay within a fixed memory budget.
 *
 * Not for: generation (sampler.c). Scoring overwrites the model's saved
 * forward state, like any other forward pass. */
#include <stdlib.h>
#include <string.h>

#include "model/sampler.h"
#include "model/vocab.h"

/* Upper bounds for one forward batch: rows, and floats of what the forward
 * keeps (estimated per token: per layer 8 [C] and 3 [F] tensors and H*T
 * attention weights; then the head's and the backward scratch's 8 [C], 3 [F]
 * and 2 [V]), so that scoring a large set needs about 128 MiB of activations
 * at most (more only when a single row needs it). */
#define SCORE_MAX_ROWS 64
#define SCORE_BUDGET_FLOATS ((size_t)1 << 25)

typedef struct len_index {
    size_t len, idx;
} len_index;

/* Longest first; equal lengths in index order (qsort is not stable). */
static int by_len_desc(const void *a, const void *b) {
    const len_index *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int validate(const ad_model *m, const int32_t *const *seqs, const size_t *lens,
                    const size_t *score_from, size_t n, ad_error *err) {
    if (n && (!seqs || !lens || !score_from))
        return ad_error_set(err, "score: %zu sequences but a NULL array", n);
    for (size_t i = 0; i < n; i++) {
        if (!seqs[i] || !lens[i] || lens[i] > m->cfg.max_seq_len)
            return ad_error_set(err, "score: sequence %zu has length %zu (allowed 1..%zu)", i,
                                lens[i], m->cfg.max_seq_len);
        if (!score_from[i] || score_from[i] > lens[i])
            return ad_error_set(err, "score: sequence %zu score_from %zu outside 1..%zu", i,
                                score_from[i], lens[i]);
        for (size_t t = 0; t < lens[i]; t++)
            if (seqs[i][t] < 0 || (size_t)seqs[i][t] >= m->cfg.vocab_size)
                return ad_error_set(err,
                                    "score: sequence %zu token %zu has id %d, outside the "
                                    "vocabulary of %zu",
                                    i, t, (int)seqs[i][t], m->cfg.vocab_size);
    }
    return AD_OK;
}

/* How many of the sequences order[s..n) (longest first) form the next batch:
 * as many rows of T = order[s].len tokens as the budget allows. */
static size_t batch_rows(const ad_model_config *c, const len_index *order, size_t s, size_t n) {
    size_t T = order[s].len;
    size_t per_token = c->n_layers * (8 * c->d_model + 3 * c->d_ff + c->n_heads * T) +
                       8 * c->d_model + 3 * c->d_ff + 2 * c->vocab_size;
    size_t rows = SCORE_BUDGET_FLOATS / (per_token * T);
    if (rows > SCORE_MAX_ROWS) rows = SCORE_MAX_ROWS;
    if (rows > n - s) rows = n - s;
    return rows ? rows : 1;
}

/* Scores order[0..B) as one right-padded batch of T = the first (longest) length. */
static int score_batch(ad_model *m, const int32_t *const *seqs, const size_t *score_from,
                       const len_index *order, size_t B, int32_t *tokens, int32_t *targets,
                       double *out_logprob, size_t *out_n, ad_error *err) {
    size_t T = order[0].len;
    for (size_t b = 0; b < B; b++) {
        size_t i = order[b].idx, len = order[b].len;
        for (size_t t = 0; t < T; t++) {
            tokens[b * T + t] = t < len ? seqs[i][t] : AD_TOK_PAD;
            targets[b * T + t] = t + 1 < len && t + 1 >= score_from[i] ? seqs[i][t + 1] : -1;
        }
    }
    ad_batch batch = {.B = B, .T = T, .tokens = tokens, .targets = targets};
    double loss;
    size_t n_targets;
    if (ad_model_forward(m, &batch, &loss, &n_targets, err)) return AD_ERR;
    const float *lp = ad_model_target_logprobs(m);
    for (size_t b = 0; b < B; b++) {
        size_t i = order[b].idx;
        double sum = 0;
        for (size_t t = 0; t < T; t++)
            sum += lp[b * T + t];
        out_logprob[i] = sum;
        if (out_n) out_n[i] = order[b].len - score_from[i];
    }
    return AD_OK;
}

int ad_score_sequences(ad_model *m, const int32_t *const *seqs, const size_t *lens,
                       const size_t *score_from, size_t n, double *out_logprob, size_t *out_n,
                       ad_error *err) {
    if (validate(m, seqs, lens, score_from, n, err)) return AD_ERR;
    if (!n) return AD_OK;
    len_index *order = malloc(n * sizeof *order);
    if (!order) return ad_error_set(err, "score: out of memory for %zu sequences", n);
    for (size_t i = 0; i < n; i++)
        order[i] = (len_index){lens[i], i};
    qsort(order, n, sizeof *order, by_len_desc);
    size_t cap = 1; /* the largest B * T among the batches planned below */
    for (size_t s = 0; s < n;) {
        size_t B = batch_rows(&m->cfg, order, s, n);
        if (B * order[s].len > cap) cap = B * order[s].len;
        s += B;
    }
    int32_t *tokens = malloc(cap * sizeof *tokens), *targets = malloc(cap * sizeof *targets);
    int rc = AD_OK;
    if (!tokens || !targets) {
        ad_error_set(err, "score: out of memory for a batch");
        rc = AD_ERR;
    }
    for (size_t s = 0; rc == AD_OK && s < n;) {
        size_t B = batch_rows(&m->cfg, order, s, n);
        rc = score_batch(m, seqs, score_from, order + s, B, tokens, targets, out_logprob, out_n,
                         err);
        s += B;
    }
    free(tokens);
    free(targets);
    free(order);
    return rc;
}
