/* optimizer.h: AdamW with global-norm clipping, and the warmup-stable-decay
 * learning-rate schedule.
 *
 * The optimizer owns the first and second moments (same flat layout as the
 * model's params) and the step count; all three are saved with a checkpoint so
 * training resumes bit-exactly. Weight decay is decoupled and skipped for the
 * tensors marked is_norm. */
#ifndef AD_MODEL_OPTIMIZER_H
#define AD_MODEL_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/error.h"

typedef struct ad_adamw_config {
    float beta1;        /* 0.9 */
    float beta2;        /* 0.98 */
    float eps;          /* 1e-12 as in the reference paper; 1e-8 is also common */
    float weight_decay; /* 0.01, not on norm weights */
    float grad_clip;    /* global L2 norm; 0 disables clipping */
} ad_adamw_config;

ad_adamw_config ad_adamw_default_config(void);

typedef struct ad_adamw {
    ad_adamw_config cfg;
    size_t n;      /* == model->n_params */
    float *m, *v;  /* [n] moments */
    uint64_t step; /* number of updates applied so far */
} ad_adamw;

/* Allocates zeroed moments for a model. On error nothing is allocated. */
int ad_adamw_init(ad_adamw *opt, const ad_model *model, const ad_adamw_config *cfg, ad_error *err);
void ad_adamw_free(ad_adamw *opt);

/* Clips the model's gradients to cfg.grad_clip (global norm), applies one AdamW
 * update with learning rate lr, increments step. Returns the gradient norm
 * before clipping. Does not zero the gradients. */
float ad_adamw_step(ad_adamw *opt, ad_model *model, float lr);

/* Warmup-stable-decay: linear warmup over warmup_steps from 0 to peak, constant,
 * then cosine decay over the last decay_steps down to floor_ratio * peak.
 * `step` counts from 0 within the schedule (restart it for a new round). */
typedef struct ad_lr_schedule {
    float peak_lr;
    size_t total_steps;
    size_t warmup_steps;
    size_t decay_steps;
    float floor_ratio; /* 0.01 */
} ad_lr_schedule;

/* Learning rate for step (0-based) of the schedule; steps past the end give the floor. */
float ad_lr_at(const ad_lr_schedule *s, size_t step);

#endif
