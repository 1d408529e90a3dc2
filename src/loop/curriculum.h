/* curriculum.h: the acquire stage's choice of levels for each round.
 *
 * A curriculum is a sequence of steps and a pace. The steps are either the
 * integers first_level, first_level + 1, ..., last_level (one level each: a
 * digit count, a length) or an explicit schedule (util/level.h), such as the
 * reference paper's multiplication order pairs(6-10) = 1x6&6x1, 2x6&6x2, ...,
 * 6x6, 1x7&7x1, ... where one step may hold several levels. The pace is
 *   fixed:     each round takes the next steps_per_round steps;
 *   adaptive:  each round takes the next step, then keeps taking the step
 *              after it while a measured score (label-free: self-consistency
 *              among k samples or lineages; with labels: accuracy) is >=
 *              min_score on every level of that step, up to steps_per_round
 *              steps (0 = no limit). This is the paper's accelerated schedule
 *              ("add every next level the model already masters").
 * Precisely, adaptive takes the longest run of next steps that all score >=
 * min_score, or the single next step when the first one falls short; with
 * `hold`, it instead repeats the last step taken (fresh prompts at the same
 * levels, labelled by the model that has since trained on them) and only
 * moves on once the next step scores high enough. Before any step was taken
 * it takes the first step regardless.
 *
 * The only state is a cursor (the index of the next step), which the round
 * driver keeps in the run store; the same cursor and the same scores give the
 * same levels. Not here: measuring the score (the caller's callback decodes
 * and votes) or the base data's levels. */
#ifndef AD_LOOP_CURRICULUM_H
#define AD_LOOP_CURRICULUM_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/level.h"

typedef struct ad_curriculum {
    const ad_level_schedule *schedule; /* explicit steps (borrowed), or NULL for integers */
    int32_t first_level;               /* integers: step 0 is this level (frontier + 1) */
    int32_t last_level;                /* integers: the last level there is */
    int adaptive;                      /* 0 fixed pace, 1 adaptive */
    size_t steps_per_round; /* fixed: steps each round (>= 1); adaptive: the most (0 = any) */
    double min_score;       /* adaptive: a step is taken when every level scores >= this */
    int hold;               /* adaptive: repeat the last step while the next falls short */
} ad_curriculum;

/* Integer levels from first_level, +1 level per round, fixed pace. */
ad_curriculum ad_curriculum_default(int32_t first_level, int32_t last_level);

/* Checks the parameters (steps_per_round >= 1 when fixed; first <= last for
 * integers; min_score a number for adaptive). */
int ad_curriculum_validate(const ad_curriculum *c, ad_error *err);

/* Number of steps in the sequence. This function can't fail. */
size_t ad_curriculum_n_steps(const ad_curriculum *c);

/* Levels of step j (< ad_curriculum_n_steps): writes at most cap levels to out
 * and returns how many the step has (call with cap 0 to size a buffer). */
size_t ad_curriculum_step_levels(const ad_curriculum *c, size_t j, ad_level *out, size_t cap);

/* Scores one level (higher is better); for the adaptive pace. Returns AD_OK or
 * AD_ERR with err set. */
typedef int (*ad_curriculum_measure_fn)(void *ctx, ad_level level, double *score, ad_error *err);

/* The levels of the next round, starting at step *cursor, in step order. On
 * success *cursor moves past the steps taken and *out holds their levels (an
 * empty list when the sequence is exhausted; out->text is NULL). measure is
 * only called in adaptive pace, once per level of each step it inspects, and
 * never beyond the first step that falls short. A held round (see `hold`)
 * returns the previous step's levels and leaves *cursor where it was. On error (invalid curriculum,
 * measure failed, out of memory) *cursor is unchanged and *out is empty. */
int ad_curriculum_next(const ad_curriculum *c, size_t *cursor, ad_curriculum_measure_fn measure,
                       void *ctx, ad_level_list *out, ad_error *err);

#endif
