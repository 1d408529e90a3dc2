/* trainer.h: supervised training steps on (prompt, completion) sequences.
 *
 * One optimizer step consumes batch_size * grad_accum examples, split into
 * grad_accum micro-batches of batch_size right-padded rows. The loss is the
 * mean over all completion tokens (EOS included) of the whole step, so the
 * gradient does not depend on how the step is split. The learning rate
 * follows a warmup-stable-decay schedule indexed by the trainer's own step
 * counter, which a new round restarts (ad_trainer_restart_schedule) while the
 * optimizer's moments and step continue.
 *
 * Two ways to drive it. ad_trainer_step is the whole SFT step. Other
 * objectives (src/loop/objective*.c: DPO, GRPO) assemble a step
 * from the pieces ad_trainer_step is made of:
 *
 *     ad_trainer_begin_step(t);                       zero the gradients
 *     for each micro-batch:
 *         ad_trainer_forward(t, ex, n, row_logp, err) log p of each row's completion
 *         ad_trainer_backward(t, row_weight, scale)   grads of -scale * sum w_i * logp_i
 *     ad_trainer_finish_step(t, &lr);                 AdamW at the schedule's rate
 *
 * With row_weight NULL and scale = 1 / (completion tokens of the whole step)
 * the sequence is exactly ad_trainer_step, bit for bit.
 *
 * A token-level objective (GRPO) reads each completion token's log p after the
 * forward (ad_trainer_token_logps) and calls ad_trainer_backward_tokens with a
 * weight per token instead of ad_trainer_backward.
 *
 * The trainer knows nothing of tasks: callers hand it encoded examples. */
#ifndef AD_MODEL_TRAINER_H
#define AD_MODEL_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/optimizer.h"
#include "model/vocab.h"
#include "util/error.h"

/* One encoded sequence: BOS + prompt + completion + EOS. The loss covers the
 * predictions of tokens[loss_from .. len-1] (the completion and EOS). */
typedef struct ad_example {
    int32_t *tokens;
    size_t len;
    size_t loss_from;
} ad_example;

/* Encodes BOS + prompt + completion + EOS into ex (tokens malloc'd; free with
 * ad_example_free). Fails on a character outside the vocabulary or when the
 * sequence is longer than max_len. */
int ad_example_encode(ad_example *ex, const ad_vocab *v, const char *prompt, const char *completion,
                      size_t max_len, ad_error *err);
void ad_example_free(ad_example *ex);

typedef struct ad_train_config {
    size_t batch_size; /* examples per micro-batch */
    size_t grad_accum; /* micro-batches per optimizer step */
    /* 1: a micro-batch's examples share rows as wide as its longest example
     * (first fit, in order), each attending only within itself (ad_batch's
     * seg_start), so no FLOP goes to padding; the loss and gradients equal
     * the padded batch's to float rounding. 0: one example per padded row. */
    int pack;
    /* 1: the forward and backward passes' matrix products take bf16 operands
     * with fp32 sums (ad_kernels_set_bf16; CPUs with AVX512-BF16 only, checked
     * by ad_trainer_init); the weights, the optimizer and every other kernel
     * stay fp32. 0 (default): fp32 throughout. */
    int bf16;
    ad_lr_schedule schedule;
    ad_adamw_config adamw;
} ad_train_config;

/* batch 64, no accumulation, lr 1e-3, 10% warmup, 20% cosine decay to 1%. */
ad_train_config ad_train_default_config(size_t total_steps);

typedef struct ad_trainer {
    ad_model *model; /* not owned */
    ad_adamw opt;
    ad_train_config cfg;
    size_t sched_step;                    /* steps taken in the current schedule */
    int32_t *tok_buf, *tgt_buf, *seg_buf; /* [rows * T] the micro-batch as the model sees it */
    float *wt_buf;                        /* [rows * T] per-token weights for the backward */
    size_t buf_cap;
    size_t *ex_first, *ex_n; /* [fwd_rows] example i's first target position (flat index
                                into the micro-batch) and its number of targets */
    size_t ex_cap;
    size_t fwd_rows, fwd_T; /* examples of the last ad_trainer_forward (0: none), row width */
    size_t fwd_R;           /* rows of the last forward: fwd_rows, or fewer when packed */
    int step_nonfinite;     /* a forward of this step had a non-finite loss: no update */
} ad_trainer;

typedef struct ad_step_stats {
    double loss;      /* mean token loss of the step */
    size_t n_targets; /* completion tokens in the step */
    size_t n_tokens;  /* all non-padding tokens processed */
    float grad_norm;  /* before clipping */
    float lr;
} ad_step_stats;

/* Sets up a trainer with fresh optimizer moments. */
int ad_trainer_init(ad_trainer *t, ad_model *model, const ad_train_config *cfg, ad_error *err);
void ad_trainer_free(ad_trainer *t);

/* Replaces the trainer's optimizer moments and step with *opt (loaded from a
 * checkpoint), taking ownership of its buffers; *opt is emptied. Fails when
 * the sizes differ (nothing is changed then). */
int ad_trainer_adopt_optimizer(ad_trainer *t, ad_adamw *opt, ad_error *err);

/* Starts a new schedule (a new round): same moments and optimizer step. */
void ad_trainer_restart_schedule(ad_trainer *t, const ad_lr_schedule *schedule);

/* One optimizer step over n = batch_size * grad_accum examples (fewer is allowed:
 * the last micro-batch is short). On error the model is unchanged. */
int ad_trainer_step(ad_trainer *t, const ad_example *examples, size_t n, ad_step_stats *stats,
                    ad_error *err);

/* Checks that ex[0..n) are well-formed for this trainer's model: tokens set,
 * 2 <= len <= max_seq_len, 1 <= loss_from < len (so every example has at least
 * one completion token). Adds up their completion tokens (EOS included) into
 * *n_targets and all their tokens into *n_tokens (either may be NULL). Returns
 * AD_ERR naming the first bad example; nothing is changed then. */
int ad_trainer_check_examples(const ad_trainer *t, const ad_example *ex, size_t n,
                              size_t *n_targets, size_t *n_tokens, ad_error *err);

/* ---- the pieces of a step ------------------------------------------------ */

/* Starts an optimizer step: zeroes the gradients. This function can't fail. */
void ad_trainer_begin_step(ad_trainer *t);

/* One micro-batch: packs the n >= 1 examples right-padded (as ad_trainer_step
 * does), runs the forward pass and sets row_logp[i] ([n]) to the sum of log p
 * over example i's completion tokens and EOS, accumulated in double in position
 * order. n is not bounded by cfg.batch_size (callers keep it near it: it sizes
 * the activations). The activations stay for ad_trainer_backward. On error
 * (a bad example, a token outside the vocabulary, out of memory) the model,
 * its gradients and row_logp are unchanged, and ad_trainer_backward does
 * nothing until the next successful forward. */
int ad_trainer_forward(ad_trainer *t, const ad_example *ex, size_t n, double *row_logp,
                       ad_error *err);

/* Backward of  -scale * sum_i row_weight[i] * row_logp[i]  for the rows of the
 * last ad_trainer_forward (no other forward of the model in between),
 * accumulating into the gradients: every completion token of row i gets weight
 * row_weight[i] * scale (in float). row_weight NULL means 1 for every row,
 * which is SFT's backward. Does nothing when no forward has run in this step.
 * This function can't fail. */
void ad_trainer_backward(ad_trainer *t, const float *row_weight, float scale);

/* ---- per-token access, for token-level objectives (GRPO) ----------------- */

/* The log p of each completion token of row `row` of the last
 * ad_trainer_forward, in position order: the predictions of
 * tokens[loss_from .. len-1] (EOS included when the row ends with it). Sets *n
 * to their number (len - loss_from). The pointer is into the model's
 * activations: valid until the next forward pass of the model. Returns NULL
 * with *n = 0 when no forward has run in this step or row is out of range.
 * Float values, the very ones ad_trainer_forward summed. This function can't
 * fail. */
const float *ad_trainer_token_logps(const ad_trainer *t, size_t row, size_t *n);

/* The sum over row `row`'s completion tokens (as above) of the entropy, in
 * nats, of the model's next-token distribution at each of those positions
 * (-sum_v p_v log p_v, computed in double from the logits). NaN when no forward
 * has run in this step or row is out of range. Costs O(tokens * V); does not
 * touch the gradients. This function can't fail. */
double ad_trainer_token_entropy_sum(const ad_trainer *t, size_t row);

/* Backward of  -scale * sum_rows sum_k token_weight[row][k] * logp[row][k]
 * for the rows of the last ad_trainer_forward (no other forward of the model
 * in between), logp[row] being ad_trainer_token_logps(t, row, &n) and k < n,
 * accumulating into the gradients. token_weight has one entry per row of that
 * forward; token_weight[row] NULL means weight 0 for the whole row. Each
 * position gets token_weight[row][k] * scale (in float), as in
 * ad_model_backward, so constant weights w_row on a row's tokens give exactly
 * ad_trainer_backward's gradient with row_weight[row] = w_row. Does nothing
 * when no forward has run in this step, or when token_weight is NULL. This
 * function can't fail. */
void ad_trainer_backward_tokens(ad_trainer *t, const float *const *token_weight, float scale);

/* Ends the step: clips the accumulated gradients and applies AdamW at the
 * schedule's learning rate, then advances the schedule. Returns the gradient
 * norm before clipping; *lr (may be NULL) gets the rate used. Does not zero the
 * gradients. This function can't fail: a non-finite norm (ad_adamw_step), or a
 * forward of the step with a non-finite loss (then NaN is returned), skips the
 * update; the schedule advances all the same, so a resume stays in step. */
float ad_trainer_finish_step(ad_trainer *t, float *lr);

/* The trainer's resumable state as a JSON object text (malloc'd): optimizer step,
 * schedule step and schedule. Pass to ad_checkpoint_save. */
char *ad_trainer_state_json(const ad_trainer *t);

/* Restores sched_step, schedule and optimizer step from such a JSON text. */
int ad_trainer_state_parse(ad_trainer *t, const char *json, ad_error *err);

#endif
