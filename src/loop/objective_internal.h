/* objective_internal.h: the token-level step that the policy objectives share
 * (objective_grpo.c's GRPO family and objective_nft.c's NFT): both score every
 * completion token from its current log p against the sampling policy's, so
 * one forward, one per-token backward per micro-batch serves both; only the
 * per-token loss differs. Not a public header. */
#ifndef AD_LOOP_OBJECTIVE_INTERNAL_H
#define AD_LOOP_OBJECTIVE_INTERNAL_H

#include "loop/objective.h"

/* Completion token j of sequence pe, at the policy's current log-prob logp:
 * returns its loss, sets *d_logp to d loss / d logp and *flag to 1 when it
 * counts in the clip fraction. */
typedef double (*ad_token_loss_fn)(const ad_objective_params *p, const ad_policy_example *pe,
                                   size_t j, double logp, double *d_logp, int *flag);

/* One optimizer step of L = sum_i sum_t c_i loss(i, t) over the unmasked
 * sequences of b->policy (c_i: p->loss_agg's coefficient, objective_grpo.c).
 * Checks every sequence first (shape, old log-probs, advantage finite; with
 * p->kl_beta > 0 reference log-probs) and names `name` in errors. Fills the
 * loss, token counts, grad norm, lr, clip fraction, mean ratio, entropy (and
 * with kl_beta > 0 the k3 KL) of st. On error the model's parameters are
 * unchanged. */
int ad_policy_token_step(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                         ad_token_loss_fn loss, const char *name, ad_objective_stats *st,
                         ad_error *err);

#endif
