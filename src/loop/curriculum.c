/* curriculum.c: steps of a curriculum and the fixed / adaptive pace. */
#include "loop/curriculum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ad_level step_level(const ad_curriculum *c, size_t j, size_t q);

ad_curriculum ad_curriculum_default(int32_t first_level, int32_t last_level) {
    ad_curriculum c;
    memset(&c, 0, sizeof c);
    c.first_level = first_level;
    c.last_level = last_level;
    c.steps_per_round = 1;
    c.min_score = 0.99;
    return c;
}

int ad_curriculum_validate(const ad_curriculum *c, ad_error *err) {
    if (!c->adaptive && c->steps_per_round < 1)
        return ad_error_set(err, "curriculum: a fixed pace needs at least 1 step per round");
    if (c->adaptive && isnan(c->min_score))
        return ad_error_set(err, "curriculum: adaptive threshold is NaN");
    if (!c->schedule && (c->first_level < 0 || c->last_level < c->first_level))
        return ad_error_set(err, "curriculum: integer levels %ld..%ld are not a range",
                            (long)c->first_level, (long)c->last_level);
    return AD_OK;
}

size_t ad_curriculum_n_steps(const ad_curriculum *c) {
    if (c->schedule) return c->schedule->n_steps;
    if (c->last_level < c->first_level) return 0;
    return (size_t)((int64_t)c->last_level - c->first_level + 1);
}

size_t ad_curriculum_step_levels(const ad_curriculum *c, size_t j, ad_level *out, size_t cap) {
    if (j >= ad_curriculum_n_steps(c)) return 0;
    if (!c->schedule) {
        if (cap >= 1) out[0] = step_level(c, j, 0);
        return 1;
    }
    const ad_level_schedule *s = c->schedule;
    size_t n = s->step_start[j + 1] - s->step_start[j];
    if (cap) memcpy(out, s->levels + s->step_start[j], (n < cap ? n : cap) * sizeof *out);
    return n;
}

/* Level q of step j (q < the step's size). */
static ad_level step_level(const ad_curriculum *c, size_t j, size_t q) {
    if (c->schedule) return c->schedule->levels[c->schedule->step_start[j] + q];
    return ad_level_int((int32_t)(c->first_level + (int64_t)j));
}

/* 1 when every level of step j scores >= min_score; 0 when one falls short
 * (later levels of the step are not measured); -1 on error. */
static int step_passes(const ad_curriculum *c, size_t j, ad_curriculum_measure_fn measure,
                       void *ctx, ad_error *err) {
    size_t n = ad_curriculum_step_levels(c, j, NULL, 0);
    for (size_t q = 0; q < n; q++) {
        ad_level l = step_level(c, j, q);
        double score = NAN;
        if (measure(ctx, l, &score, err)) {
            char buf[AD_LEVEL_TEXT_MAX];
            ad_error_prefix(
                err, "curriculum: measuring level %s: ", ad_level_format(l, buf, sizeof buf));
            return -1;
        }
        if (!(score >= c->min_score)) return 0;
    }
    return 1;
}

/* How many steps from `start` the round takes (0 at the end, or when it holds:
 * then *hold = 1 and the round repeats step start - 1). */
static int steps_to_take(const ad_curriculum *c, size_t start, ad_curriculum_measure_fn measure,
                         void *ctx, size_t *take, int *hold, ad_error *err) {
    *hold = 0;
    size_t left = ad_curriculum_n_steps(c) - start;
    size_t most = c->steps_per_round && c->steps_per_round < left ? c->steps_per_round : left;
    if (!c->adaptive || most == 0) {
        *take = most;
        return AD_OK;
    }
    if (!measure) return ad_error_set(err, "curriculum: adaptive pace without a measure");
    size_t n = 0;
    while (n < most) {
        int ok = step_passes(c, start + n, measure, ctx, err);
        if (ok < 0) return AD_ERR;
        if (!ok) break;
        n++;
    }
    if (n == 0 && c->hold && start > 0) {
        *take = 0; /* the next step falls short: repeat the last one */
        *hold = 1;
        return AD_OK;
    }
    *take = n ? n : 1; /* the first step falls short: take it alone */
    return AD_OK;
}

int ad_curriculum_next(const ad_curriculum *c, size_t *cursor, ad_curriculum_measure_fn measure,
                       void *ctx, ad_level_list *out, ad_error *err) {
    memset(out, 0, sizeof *out);
    if (ad_curriculum_validate(c, err)) return AD_ERR;
    size_t total = ad_curriculum_n_steps(c), start = *cursor < total ? *cursor : total, take = 0;
    int hold = 0;
    if (steps_to_take(c, start, measure, ctx, &take, &hold, err)) return AD_ERR;
    size_t first = hold ? start - 1 : start, end = hold ? start : start + take;
    size_t n = 0;
    for (size_t j = first; j < end; j++)
        n += ad_curriculum_step_levels(c, j, NULL, 0);
    ad_level *v = n ? malloc(n * sizeof *v) : NULL;
    if (n && !v) return ad_error_set(err, "curriculum: out of memory for %zu levels", n);
    size_t at = 0;
    for (size_t j = first; j < end; j++)
        at += ad_curriculum_step_levels(c, j, v + at, n - at);
    out->v = v;
    out->n = n;
    *cursor = start + take;
    return AD_OK;
}
