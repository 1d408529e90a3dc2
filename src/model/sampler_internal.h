/* sampler_internal.h: the pieces ad_sample_generate is built from, shared by
 * sampler.c, sampler_decode.c and sampler_pick.c and exposed to the sampler's
 * tests. Not a public header: nothing outside src/model (and tests) includes it.
 *
 * Two pieces:
 *  - the KV-cache decoder: slots of per-layer key/value caches, a prefill that
 *    feeds many positions of many slots in one forward, and one decoding step
 *    that feeds one token per active slot at that slot's own position;
 *  - the picking functions: log-softmax of one row of logits, and the choice of
 *    the next token (greedy, or temperature / top-k / top-p with a uniform draw). */
#ifndef AD_MODEL_SAMPLER_INTERNAL_H
#define AD_MODEL_SAMPLER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/error.h"

/* ---- KV-cache decoder (sampler_decode.c) ---- */

typedef struct ad_kv_decoder ad_kv_decoder;

/* Allocates a decoder for `slots` rows of at most `max_len` positions each
 * (max_len <= the model's max_seq_len). Cache memory is
 * 2 * L * slots * max_len * C floats; the weights are packed for the products
 * here, once (the model's weights must not change while the decoder lives).
 * With bf16 1 (on a CPU with AVX512-BF16) the weights are packed rounded to
 * bf16 (ad_matmul_pack_bf16) and keys and values are cached rounded to bf16
 * (half the cache memory). On error *out is NULL. */
int ad_kv_decoder_create(ad_kv_decoder **out, const ad_model *m, size_t slots, size_t max_len,
                         int bf16, ad_error *err);

/* Frees the decoder; NULL is fine. */
void ad_kv_decoder_free(ad_kv_decoder *d);

/* One decoding step over slots 0..nb-1 (nb <= slots): slot i feeds token tok[i]
 * at position pos[i] < max_len, attending over its cached positions 0..pos[i]-1
 * and itself; its key and value are stored at pos[i]. Logits are computed only
 * for the n_want slots listed in want[] (indices < nb, any order) and written to
 * logits[n_want, V] in that order. The caller guarantees valid ids, positions
 * and that positions 0..pos[i]-1 of each slot were fed before. This function
 * can't fail. */
void ad_kv_decoder_step(ad_kv_decoder *d, const int32_t *tok, const size_t *pos, size_t nb,
                        const size_t *want, size_t n_want, float *logits);

/* Feeds nr rows in as few forwards as the decoder's buffers allow (a prefill):
 * row r is token tok[r] at position pos[r] < max_len of slot slot[r] < slots;
 * it attends over that slot's positions 0..pos[r]-1 and itself, and its key
 * and value are stored at pos[r]. Rows of one slot come in increasing
 * position, each one's earlier positions fed before (in an earlier call or
 * earlier in this one). Logits are computed for the n_want rows listed in
 * want[] (ascending indices < nr) and written to logits[n_want, V] in that
 * order. A row's values do not depend on the other rows of the call: a prompt
 * fed here gives the bits of feeding it one token per step. This function
 * can't fail. */
void ad_kv_decoder_feed(ad_kv_decoder *d, const int32_t *tok, const size_t *slot, const size_t *pos,
                        size_t nr, const size_t *want, size_t n_want, float *logits);

/* Copies the first `len` cached positions of slot src into slot dst (every
 * layer), so that a finished slot can be filled by the last active one, or a
 * new request can start from the cache of another with the same prompt. */
void ad_kv_decoder_move(ad_kv_decoder *d, size_t dst, size_t src, size_t len);

/* ---- Picking (sampler_pick.c); every row has V >= 1 logits ---- */

/* log_softmax(logits)[tok] of one row of V raw logits, in double. */
double ad_sample_logprob(const float *logits, size_t V, int32_t tok);

/* Index of the largest logit; ties go to the lowest id. */
int32_t ad_sample_argmax(const float *logits, size_t V);

/* The distribution sampling draws from: softmax(logits / temperature) restricted
 * to the top_k largest logits (top_k 0 = all) and then to the smallest set of
 * most likely tokens whose probability reaches top_p (top_p >= 1 = all; the
 * most likely token is always kept), renormalised. temperature must be > 0.
 * Writes the kept ids to ids[] in decreasing probability (ties: lower id first)
 * and their probabilities to probs[]; both have room for V entries. Returns the
 * number kept (>= 1). This function can't fail. */
size_t ad_sample_support(const float *logits, size_t V, float temperature, size_t top_k,
                         float top_p, int32_t *ids, double *probs);

/* The next token: argmax when temperature == 0, otherwise the token whose
 * cumulative probability interval under ad_sample_support's distribution holds
 * the uniform draw u in [0, 1). ids and probs are scratch of V entries each.
 * This function can't fail. */
int32_t ad_sample_pick(const float *logits, size_t V, float temperature, size_t top_k, float top_p,
                       double u, int32_t *ids, double *probs);

#endif
