/* objective.h: training objectives as plug-ins of the optimize stage.
 *
 * An objective turns one typed batch into one optimizer step of a trainer
 * (model/trainer.h). The batch says what the objective consumes:
 *
 *   AD_BATCH_SEQUENCES  n sequences, each BOS + prompt + completion + EOS   (sft)
 *   AD_BATCH_PAIRS      n preference pairs of one prompt, chosen and
 *                       rejected, with the frozen reference's log-probs  (dpo)
 *
 * (The next kind, groups of completions with advantages for GRPO, goes through
 * the same seam.) Each objective is one ad_objective value in its own file
 * (objective_sft.c, objective_dpo.c) and one line in objective.c's registry;
 * ad_objective_step checks the batch kind and the parameters before it
 * dispatches, so an objective's step sees well-typed arguments. The losses, as
 * formulas, are in docs/objectives.md.
 *
 * Not here: where pairs come from (the select stage's pair rules), computing
 * the reference log-probs (ad_score_sequences with the frozen model), the
 * trainer's micro-batching and AdamW (model/trainer.c). */
#ifndef AD_LOOP_OBJECTIVE_H
#define AD_LOOP_OBJECTIVE_H

#include <stddef.h>

#include "model/trainer.h"
#include "util/error.h"

typedef enum ad_batch_kind { AD_BATCH_SEQUENCES = 0, AD_BATCH_PAIRS = 1 } ad_batch_kind;

/* One preference pair. chosen and rejected are BOS + prompt + completion + EOS
 * with loss_from marking the completion; both share the prompt (the same tokens
 * before loss_from). ref_* is log p_ref(completion + EOS | BOS + prompt) under
 * the frozen reference model: the sum over the same tokens the policy's
 * log-prob covers. */
typedef struct ad_pair_example {
    ad_example chosen, rejected;
    double ref_chosen, ref_rejected;
} ad_pair_example;

typedef struct ad_objective_batch {
    ad_batch_kind kind;
    const ad_example *seqs;       /* kind SEQUENCES: n sequences */
    const float *weights;         /* kind SEQUENCES: a finite weight per sequence, or NULL
                                     for 1 each (plain SFT, bit-identical to ad_trainer_step) */
    const ad_pair_example *pairs; /* kind PAIRS: n pairs */
    size_t n;
} ad_objective_batch;

typedef enum ad_dpo_loss { AD_DPO_SIGMOID = 0, AD_DPO_IPO = 1, AD_DPO_RPO = 2 } ad_dpo_loss;

typedef struct ad_objective_params {
    ad_dpo_loss loss;       /* dpo.loss: sigmoid (DPO, conservative DPO), ipo, rpo */
    double beta;            /* dpo.beta > 0, default 0.1 */
    double nll_weight;      /* dpo.nll_weight >= 0: RPO's alpha, default 1 */
    double label_smoothing; /* dpo.label_smoothing in [0, 0.5): conservative DPO's e,
                               default 0; applies to sigmoid and rpo, not ipo */
} ad_objective_params;

/* sigmoid, beta 0.1, nll_weight 1, label_smoothing 0. */
ad_objective_params ad_objective_default_params(void);

/* Checks the ranges above; AD_ERR with a message naming the key otherwise. */
int ad_objective_params_check(const ad_objective_params *p, ad_error *err);

/* "sigmoid", "ipo", "rpo" <-> ad_dpo_loss. The name of an unknown value is
 * "?"; parsing an unknown name returns AD_ERR (listing the names) and leaves
 * *out alone. */
const char *ad_dpo_loss_name(ad_dpo_loss loss);
int ad_dpo_loss_parse(const char *name, ad_dpo_loss *out, ad_error *err);

typedef struct ad_objective_stats {
    double loss; /* the step's objective value (sft: mean token loss; dpo: mean pair loss) */
    size_t n_tokens, n_targets; /* all tokens, completion tokens (EOS included) of the step */
    float grad_norm, lr;        /* before clipping; the rate used */
    /* pairs only (NaN otherwise): means over the step's pairs, policy before the update */
    double margin;                     /* (lp_c - ref_c) - (lp_r - ref_r), without beta */
    double pref_accuracy;              /* fraction of pairs with margin > 0 */
    double chosen_logp, rejected_logp; /* lp_c, lp_r */
} ad_objective_stats;

typedef struct ad_objective {
    const char *name;    /* "sft", "dpo" */
    const char *summary; /* one line for listings */
    ad_batch_kind batch; /* the batch kind it consumes */
    /* One optimizer step. Called by ad_objective_step only: b->kind == batch,
     * b->n > 0 with its array set, p checked, st non-NULL with its pair fields
     * NaN and the rest 0. On error the model's parameters are unchanged. */
    int (*step)(ad_trainer *t, const ad_objective_params *p, const ad_objective_batch *b,
                ad_objective_stats *st, ad_error *err);
} ad_objective;

/* The registry. ad_objective_find returns NULL for an unknown name;
 * ad_objective_at returns NULL past the end. */
const ad_objective *ad_objective_find(const char *name);
size_t ad_objective_count(void);
const ad_objective *ad_objective_at(size_t i);

/* Checks the batch (kind, n > 0, array set) and the params (NULL: the
 * defaults), then runs one optimizer step of o on t. st may be NULL. On error
 * the model's parameters, the optimizer and the schedule are unchanged (the
 * gradient buffer may have been cleared). */
int ad_objective_step(const ad_objective *o, ad_trainer *t, const ad_objective_params *p,
                      const ad_objective_batch *b, ad_objective_stats *st, ad_error *err);

/* One pair's DPO-family loss as a pure function (for tests and docs): returns
 * its value and sets *d_lp_c, *d_lp_r (either may be NULL) to its derivatives
 * with respect to lp_c and lp_r, the policy's log-probs summed over the
 * completion + EOS tokens; len_c, len_r are the numbers of those tokens (ipo
 * and rpo divide by them; 0 is taken as 1). p is assumed checked. With
 * m = (lp_c - ref_c) - (lp_r - ref_r), h = beta * m, e = label_smoothing:
 *   sigmoid: -(1-e) log sigmoid(h) - e log sigmoid(-h)
 *   ipo:     ((lp_c - ref_c)/len_c - (lp_r - ref_r)/len_r - 1/(2 beta))^2
 *   rpo:     sigmoid + nll_weight * (-lp_c / len_c)
 * Stable for any finite inputs (no overflow of exp). This function can't fail. */
double ad_dpo_pair_loss(const ad_objective_params *p, double lp_c, double lp_r, double ref_c,
                        double ref_r, size_t len_c, size_t len_r, double *d_lp_c, double *d_lp_r);

/* The built-in objectives, one file each; callers use the registry above. */
extern const ad_objective ad_objective_sft, ad_objective_dpo;

#endif
