/* train_driver.h: the one training session of autodidact, shared by
 * `autodidact train` and the optimize stage of a run: optimizer steps of an
 * objective (objective.h) from the trainer's schedule position to the end of
 * its schedule, each fed one typed batch by a batch source, with a progress
 * line, partial checkpoints every save_every steps and the AD_KILL_AT test
 * hook.
 *
 * Batches are pure functions of the step (the source's contract), and the
 * trainer's state is saved with every partial checkpoint, so a session killed
 * at any step and started again from its last checkpoint ends bit-identical.
 *
 * Not here: where examples come from (the caller's source), building or
 * loading the model and trainer, the final checkpoint (the caller's, since
 * where it goes differs). */
#ifndef AD_LOOP_TRAIN_DRIVER_H
#define AD_LOOP_TRAIN_DRIVER_H

#include <stddef.h>

#include "loop/objective.h"
#include "model/trainer.h"
#include "util/error.h"

/* Where a session's batches come from. fill makes the batch of optimizer step
 * `step` (its examples stay valid until the next fill or release); release
 * frees what fill made. */
typedef struct ad_batch_source {
    int (*fill)(void *ctx, size_t step, ad_objective_batch *out, ad_error *err);
    void (*release)(void *ctx);
    void *ctx;
} ad_batch_source;

typedef struct ad_train_session {
    const ad_objective *objective;
    ad_objective_params params;
    const char *label; /* progress line, e.g. "optimize r3 l0" */
    size_t save_every; /* steps between partial checkpoints (0: none) */
    /* Writes a partial checkpoint of the trainer (after step save_every, 2 *
     * save_every, ..., never after the last step: the caller saves that). */
    int (*save)(void *ctx, ad_trainer *tr, ad_error *err);
    void *save_ctx;
    const char *kill_stage; /* the AD_KILL_AT name, with kill_round */
    size_t kill_round;
    /* Records the figures of step `step` (0-based) every record_every steps,
     * after the first and after the last one (record_every 0 or record NULL:
     * never): a sampled per-step series for curves. */
    size_t record_every;
    int (*record)(void *ctx, size_t step, const ad_objective_stats *st, ad_error *err);
    void *record_ctx;
    /* Steps whose loss or gradient norm is not finite are skipped by the
     * trainer (no update); more than this many in one session stop it with
     * an error that names the last one (default 10; 0: the first stops it). */
    size_t max_skipped;
} ad_train_session;

typedef struct ad_train_result {
    size_t steps;            /* steps this call took (0 when the schedule was done) */
    double tokens;           /* tokens processed */
    ad_objective_stats last; /* the last step's figures (the same after any resume) */
    double loss_ema;         /* smoothed loss, for the final line (finite steps only) */
    double first_loss;       /* the first finite step's loss in this call */
    double peak_loss;        /* the highest smoothed loss in this call, at step peak_step */
    size_t peak_step;        /* (schedule step, from 1) */
    size_t skipped;          /* steps skipped for a non-finite loss or gradient norm */
} ad_train_result;

/* The session defaults for an objective: default params, no saving, no
 * label. This function can't fail. */
ad_train_session ad_train_session_default(const ad_objective *objective);

/* Runs tr from tr->sched_step to tr->cfg.schedule.total_steps. On error the
 * trainer holds the last completed step (partial checkpoints stay valid). */
int ad_train_session_run(const ad_train_session *s, ad_trainer *tr, const ad_batch_source *src,
                         ad_train_result *out, ad_error *err);

#endif
