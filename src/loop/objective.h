/* objective.h: training objectives as plug-ins of the optimize stage.
 *
 * An objective turns one typed batch into one optimizer step of a trainer
 * (model/trainer.h). The batch says what the objective consumes:
 *
 *   AD_BATCH_SEQUENCES  n sequences, each BOS + prompt + completion + EOS   (sft)
 *   AD_BATCH_PAIRS      n preference pairs of one prompt, chosen and
 *                       rejected, with the frozen reference's log-probs  (dpo)
 *   AD_BATCH_GROUPS     n sampled completions with the sampling policy's
 *                       per-token log-probs and an advantage each      (grpo)
 *   AD_BATCH_SAMPLES    n of a round's samples with the sampling policy's
 *                       per-token log-probs, each judged correct or not,
 *                       with its prompt's correct rate                  (nft)
 *
 * Each objective is one ad_objective value in its own file (objective_sft.c,
 * objective_dpo.c, objective_grpo.c, objective_nft.c) and one line in
 * objective.c's registry;
 * ad_objective_step checks the batch kind and the parameters before it
 * dispatches, so an objective's step sees well-typed arguments. The losses, as
 * formulas, are in docs/objectives.md.
 *
 * Not here: where pairs come from (the select stage's pair rules), computing
 * the reference log-probs (ad_score_sequences with the frozen model), the
 * advantages (loop/advantage.h), the trainer's micro-batching and AdamW
 * (model/trainer.c). */
#ifndef AD_LOOP_OBJECTIVE_H
#define AD_LOOP_OBJECTIVE_H

#include <stddef.h>

#include "model/trainer.h"
#include "util/error.h"

typedef enum ad_batch_kind {
    AD_BATCH_SEQUENCES = 0,
    AD_BATCH_PAIRS = 1,
    AD_BATCH_GROUPS = 2,
    AD_BATCH_SAMPLES = 3
} ad_batch_kind;

/* One preference pair. chosen and rejected are BOS + prompt + completion + EOS
 * with loss_from marking the completion; both share the prompt (the same tokens
 * before loss_from). ref_* is log p_ref(completion + EOS | BOS + prompt) under
 * the frozen reference model: the sum over the same tokens the policy's
 * log-prob covers. */
typedef struct ad_pair_example {
    ad_example chosen, rejected;
    double ref_chosen, ref_rejected;
} ad_pair_example;

/* One sampled completion for a policy-gradient step (GRPO family). The
 * sequences of one prompt's group sit next to each other in the batch, but the
 * objective does not need to know the groups: the advantage already carries
 * the comparison (loop/advantage.h). n_i = seq.len - seq.loss_from is the
 * number of completion tokens: the predictions of tokens[loss_from .. len-1]. */
typedef struct ad_policy_example {
    ad_example seq;        /* BOS + prompt + completion (+ EOS when sampling reached it);
                              loss_from marks the completion */
    const float *old_logp; /* [n_i] the sampling policy's log p of each completion token */
    const float *ref_logp; /* [n_i] the same under the frozen reference, or NULL (read only
                              when kl_beta > 0) */
    float advantage;       /* shared by every token of the sequence */
    int masked;            /* 1: contributes nothing (an output cut at the length bound,
                              rl.incomplete = mask); 0: trained on */
    /* nft only (AD_BATCH_SAMPLES; grpo ignores them): */
    float correct_rate; /* r_q in [0, 1]: the share of the prompt's samples judged correct */
    int positive;       /* 1: judged correct (pi_theta's likelihood), 0: wrong (pi_neg's) */
} ad_policy_example;

typedef struct ad_objective_batch {
    ad_batch_kind kind;
    const ad_example *seqs;          /* kind SEQUENCES: n sequences */
    const float *weights;            /* kind SEQUENCES: a finite weight per sequence, or NULL
                                        for 1 each (plain SFT, bit-identical to ad_trainer_step) */
    const ad_pair_example *pairs;    /* kind PAIRS: n pairs */
    const ad_policy_example *policy; /* kind GROUPS, SAMPLES: n sampled completions */
    size_t n;
} ad_objective_batch;

typedef enum ad_dpo_loss { AD_DPO_SIGMOID = 0, AD_DPO_IPO = 1, AD_DPO_RPO = 2 } ad_dpo_loss;

/* How grpo turns per-token losses into the step loss (docs/rl.md). The names
 * are verl's loss_agg_mode; TRL's loss_type dapo, grpo and dr_grpo. */
typedef enum ad_loss_agg {
    AD_AGG_TOKEN_MEAN = 0,             /* "token-mean": over all tokens of the batch (DAPO) */
    AD_AGG_SEQ_MEAN_TOKEN_MEAN = 1,    /* "seq-mean-token-mean": mean of each sequence's
                                          token mean (GRPO) */
    AD_AGG_SEQ_MEAN_TOKEN_SUM_NORM = 2 /* "seq-mean-token-sum-norm": mean of each sequence's
                                          token sum / norm_len (Dr. GRPO) */
} ad_loss_agg;

/* nft's prompt weight w(r_q) (Chen et al. 2025's "normalize"). On-policy it
 * makes NFT's gradient Dr. GRPO's (1 - r) or GRPO's (sqrt((1 - r) / r)); none
 * weighs every prompt alike. */
typedef enum ad_nft_weight {
    AD_NFT_WEIGHT_DR_GRPO = 0, /* 1 - r_q (the paper's default) */
    AD_NFT_WEIGHT_GRPO = 1,    /* sqrt((1 - r_q) / r_q) */
    AD_NFT_WEIGHT_NONE = 2     /* 1 */
} ad_nft_weight;

typedef struct ad_objective_params {
    ad_dpo_loss loss;         /* dpo.loss: sigmoid (DPO, conservative DPO), ipo, rpo */
    double beta;              /* dpo.beta > 0, default 0.1 */
    double nll_weight;        /* dpo.nll_weight >= 0: RPO's alpha, default 1 */
    double label_smoothing;   /* dpo.label_smoothing in [0, 0.5): conservative DPO's e,
                                 default 0; applies to sigmoid and rpo, not ipo */
    double epsilon;           /* grpo.epsilon in (0, 1): the ratio's lower clip 1 - epsilon,
                                 default 0.2 */
    double epsilon_high;      /* grpo.epsilon_high >= 0: the upper clip 1 + epsilon_high
                                 (DAPO's clip-higher: 0.28); 0, the default, means epsilon */
    double kl_beta;           /* grpo.kl_beta >= 0: weight of the k3 KL to the reference;
                                 default 0: no KL term, ref_logp never read */
    ad_loss_agg loss_agg;     /* grpo.loss_agg, default token-mean (DAPO, TRL's default) */
    double norm_len;          /* grpo.norm_len >= 0: Dr. GRPO's constant divisor in tokens
                                 (the generation budget); must be > 0 with
                                 seq-mean-token-sum-norm; default 0 (unset) */
    double nft_eps;           /* nft.eps in (0, 1]: the floor of the negatives' likelihood
                                 ratio (value clipped, gradient kept); default 1 */
    double nft_neg_weight;    /* nft.neg_weight >= 0: weight of the negatives' term; 1 is
                                 NFT, 0 trains on the positives only (RFT); default 1 */
    ad_nft_weight nft_weight; /* nft.prompt_weight, default dr_grpo (1 - r_q) */
    /* run.shards (sft only; 0 or 1: none, today's bits): the step's batch is cut
     * into `shards` contiguous slices of (nearly) equal size, each slice's
     * gradient is computed from zero, and the slices' gradients are summed in
     * slice order, so the bits depend on shards, never on who computed a slice.
     * shard_group (dist.h; NULL: this process computes every slice) is the
     * ranks sharing the step: member g of G computes slices g*S/G .. and they
     * exchange them (objective_shards.c). */
    size_t shards;
    const struct ad_dist_group *shard_group;
} ad_objective_params;

/* sigmoid, beta 0.1, nll_weight 1, label_smoothing 0; epsilon 0.2,
 * epsilon_high 0 (= epsilon), kl_beta 0, token-mean, norm_len 0; nft_eps 1,
 * nft_neg_weight 1, nft_weight dr_grpo. The aggregation (loss_agg, norm_len)
 * applies to nft as well. */
ad_objective_params ad_objective_default_params(void);

/* Checks the ranges above; AD_ERR with a message naming the key otherwise. */
int ad_objective_params_check(const ad_objective_params *p, ad_error *err);

/* "sigmoid", "ipo", "rpo" <-> ad_dpo_loss. The name of an unknown value is
 * "?"; parsing an unknown name returns AD_ERR (listing the names) and leaves
 * *out alone. */
const char *ad_dpo_loss_name(ad_dpo_loss loss);
int ad_dpo_loss_parse(const char *name, ad_dpo_loss *out, ad_error *err);

/* "token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm" <->
 * ad_loss_agg, with the same conventions as ad_dpo_loss_name / _parse. */
const char *ad_loss_agg_name(ad_loss_agg agg);
int ad_loss_agg_parse(const char *name, ad_loss_agg *out, ad_error *err);

typedef struct ad_objective_stats {
    double loss; /* the step's objective value (sft: mean token loss; dpo: mean pair loss) */
    size_t n_tokens, n_targets; /* all tokens, completion tokens (EOS included) of the step */
    float grad_norm, lr;        /* before clipping; the rate used */
    /* pairs only (NaN otherwise): means over the step's pairs, policy before the update */
    double margin;                     /* (lp_c - ref_c) - (lp_r - ref_r), without beta */
    double pref_accuracy;              /* fraction of pairs with margin > 0 */
    double chosen_logp, rejected_logp; /* lp_c, lp_r */
    /* groups and samples only (NaN otherwise, and NaN when the step has no
     * unmasked token): means over the unmasked completion tokens, policy
     * before the update */
    double clip_fraction; /* grpo: tokens whose ratio was clipped in the active direction
                             (rho > 1 + eps_high with A > 0, rho < 1 - eps with A < 0);
                             nft: tokens whose value was clipped (ad_nft_token_loss) */
    double kl;            /* the k3 estimate of KL(pi_theta || pi_ref); NaN when kl_beta = 0 */
    double ratio;         /* rho = exp(logp - old_logp) */
    double entropy;       /* entropy of the policy's next-token distribution, nats */
} ad_objective_stats;

/* One sft step of b split into p->shards slices (see shards above): the
 * sequence objectives' step when p->shards > 1. Group members must call it
 * with the same batch and weights. */
int ad_objective_sharded_step(ad_trainer *t, const ad_objective_params *p,
                              const ad_objective_batch *b, ad_objective_stats *st, ad_error *err);

typedef struct ad_objective {
    const char *name;    /* "sft", "dpo", "grpo", "nft" */
    const char *summary; /* one line for listings */
    ad_batch_kind batch; /* the batch kind it consumes */
    /* One optimizer step. Called by ad_objective_step only: b->kind == batch,
     * b->n > 0 with its array set, p checked, st non-NULL with its pair and
     * group fields NaN and the rest 0. On error the model's parameters are
     * unchanged. */
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

/* One completion token's GRPO-family loss as a pure function (for tests and
 * docs): with p = logp, rho = exp(logp - old_logp), A = advantage,
 * eh = epsilon_high (epsilon when 0), q = ref_logp,
 *   loss = -min(rho A, clip(rho, 1 - epsilon, 1 + eh) A)
 *          + kl_beta * (exp(q - p) - (q - p) - 1).
 * Sets *d_logp (may be NULL) to d loss / d logp: -rho A where the unclipped
 * term is the minimum, 0 where the clip is active (*clipped, may be NULL, gets
 * 1 then: rho > 1 + eh with A > 0, or rho < 1 - epsilon with A < 0; ties count
 * as unclipped), plus kl_beta * (1 - exp(q - p)). ref_logp is not read when
 * kl_beta == 0. p is assumed checked. This function can't fail. */
double ad_grpo_token_loss(const ad_objective_params *p, double logp, double old_logp,
                          double ref_logp, double advantage, double *d_logp, int *clipped);

/* One completion token's NFT loss (Chen et al. 2025) as a pure function (for
 * tests and docs). With D = min(logp - old_logp, AD_NFT_MAX_LOG_RATIO),
 * R = exp(D), r = r_q clamped to [AD_NFT_RATE_MIN, AD_NFT_RATE_MAX], w the
 * prompt weight of r (nft_weight) and eps = nft_eps:
 *   positive:  loss = -w D                        (-w log R: SFT's, times w)
 *   negative:  loss = -neg_weight w log max_v(q, eps),  q = (1 - r R) / (1 - r)
 * where max_v clips the value only: the derivative is taken as if q were not
 * clipped, divided by max(q, eps) (the paper's code, clamp_preserve_grad):
 *   d_logp = -w                                  positive
 *          = neg_weight w (r R / (1 - r)) / max(q, eps)   negative
 * and 0 for both when logp - old_logp exceeds the cap (D is then constant).
 * A prompt with r_q = 0 or 1 carries no signal (the paper drops it): loss 0,
 * d_logp 0. *clipped (may be NULL) gets 1 when a value was clipped (q < eps on
 * a negative, or the log-ratio past its cap). d_logp may be NULL. p is assumed
 * checked. This function can't fail. */
double ad_nft_token_loss(const ad_objective_params *p, double logp, double old_logp,
                         double correct_rate, int positive, double *d_logp, int *clipped);

/* The paper's fixed guards: the log-ratio cap (exp(10) bounds R) and the
 * clamp of r_q (the paper's code clamps to [0.02, 0.98]). */
#define AD_NFT_MAX_LOG_RATIO 10.0
#define AD_NFT_RATE_MIN 0.02
#define AD_NFT_RATE_MAX 0.98

/* The built-in objectives, one file each; callers use the registry above. */
extern const ad_objective ad_objective_sft, ad_objective_dpo, ad_objective_grpo, ad_objective_nft;

#endif
