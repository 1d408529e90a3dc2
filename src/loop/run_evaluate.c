/* run_evaluate.c: the evaluate stage (held-out accuracy per level over a window
 * around the frontier, for every lineage) and the accept stage (keep the round,
 * or roll it back when it lost accuracy on levels already mastered). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/evaluate.h"
#include "loop/metrics.h"
#include "loop/reward.h"
#include "loop/run_internal.h"
#include "util/progress.h"

#define WINDOW_MAX 256

/* Levels evaluated after `round`: `below` curriculum steps up to the frontier
 * and `above` beyond it (for integer levels: frontier-below+1 .. frontier+above). */
static size_t eval_window(ad_run *run, size_t cursor, ad_level *out, size_t cap) {
    const ad_run_config *c = &run->cfg;
    size_t n = 0;
    if (!run->cur.schedule) {
        int64_t frontier = (int64_t)run->cur.first_level - 1 + (int64_t)cursor;
        int64_t lo = frontier - (int64_t)c->eval_below + 1, hi = frontier + (int64_t)c->eval_above;
        ad_level lmin = ad_task_level_min(run->task), lmax = ad_task_level_max(run->task);
        if (lo < lmin.a) lo = lmin.a;
        if (hi > lmax.a) hi = lmax.a;
        for (int64_t v = lo; v <= hi && n < cap; v++)
            out[n++] = ad_level_int((int32_t)v);
        return n;
    }
    size_t steps = ad_curriculum_n_steps(&run->cur);
    size_t from = cursor > c->eval_below ? cursor - c->eval_below : 0;
    for (size_t s = from; s < cursor + c->eval_above && s < steps; s++) {
        size_t k = ad_curriculum_step_levels(&run->cur, s, NULL, 0);
        if (n + k > cap) break;
        n += ad_curriculum_step_levels(&run->cur, s, out + n, k);
    }
    return n;
}

int run_evaluate_figures(ad_run *run, size_t round, size_t l, const ad_level *lv, size_t n,
                         ad_level_accuracy *acc, ad_error *err) {
    ad_model *m = NULL;
    if (run_load_model(run, l, round, &m, err) != AD_OK) return AD_ERR;
    int rc = ad_evaluate_levels_spread(m, &run->vocab, run->task, lv, n, run->cfg.eval_n,
                                       run->cfg.seed, acc, err);
    ad_model_free(m);
    return rc;
}

static int evaluate_lineage(ad_run *run, size_t round, size_t l, const ad_level *lv, size_t n,
                            ad_error *err) {
    ad_level_accuracy acc[WINDOW_MAX];
    ad_store_eval rows[WINDOW_MAX];
    double t0 = ad_now();
    if (run_evaluate_figures(run, round, l, lv, n, acc, err) != AD_OK) return AD_ERR;
    char line[1024] = "";
    for (size_t i = 0; i < n; i++) {
        rows[i] = (ad_store_eval){(uint32_t)round,  (int64_t)l,      lv[i],
                                  AD_EVAL_ACCURACY, acc[i].accuracy, acc[i].n};
        char b[AD_LEVEL_TEXT_MAX], cell[48];
        snprintf(cell, sizeof cell, " %s:%.3f", ad_level_format(lv[i], b, sizeof b),
                 acc[i].accuracy);
        if (strlen(line) + strlen(cell) < sizeof line) strcat(line, cell);
    }
    run_log(run, "evaluate r%zu l%zu:%s", round, l, line);
    uint32_t r = (uint32_t)round;
    int rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) rc = ad_store_evals_insert(run->st, AD_STAGE_EVALUATE, rows, n, err);
    if (rc == AD_OK)
        rc = ad_store_stage_done(run->st, r, AD_STAGE_EVALUATE, (int64_t)l, ad_now() - t0, err);
    if (rc == AD_OK) return ad_store_commit(run->st, err);
    ad_store_rollback(run->st);
    return AD_ERR;
}

/* Reads: each lineage's checkpoint of the round and the round's curriculum
 * cursor. Writes: the accuracy rows of every level of the window. Under
 * mpirun every rank decodes a range of each lineage's problems
 * (run_dist_evaluate tells the workers which lineages and levels). */
int run_stage_evaluate(ad_run *run, run_round *rr, ad_error *err) {
    ad_level lv[WINDOW_MAX];
    size_t round = rr->round, L = run->cfg.lineages, n_todo = 0;
    if (round > 0 && !rr->have_cursor)
        return ad_error_set(err, "evaluate: round %zu recorded no curriculum cursor", round);
    size_t n = eval_window(run, round > 0 ? rr->cursor : 0, lv, WINDOW_MAX);
    uint64_t *todo = calloc(L, sizeof *todo);
    if (!todo) return ad_error_set(err, "out of memory");
    int rc = AD_OK;
    for (size_t l = 0; rc == AD_OK && l < L; l++) {
        int done = 0;
        rc = ad_store_stage_is_done(run->st, (uint32_t)round, AD_STAGE_EVALUATE, (int64_t)l, &done,
                                    err);
        todo[l] = !done;
        n_todo += !done;
    }
    if (rc == AD_OK && n_todo) rc = run_dist_evaluate(run, round, todo, lv, n, err);
    for (size_t l = 0; rc == AD_OK && l < L; l++) {
        if (!todo[l]) continue;
        ad_run_maybe_kill(AD_STAGE_EVALUATE, round, l);
        if (evaluate_lineage(run, round, l, lv, n, err) != AD_OK)
            rc = ad_error_prefix(err, "evaluate, lineage %zu: ", l);
    }
    free(todo);
    return rc;
}

/* Accuracy of lineage 0 at (round, level); NaN when not evaluated. */
static double cell(const ad_store_eval *cells, size_t n, size_t round, ad_level lv) {
    for (size_t i = 0; i < n; i++)
        if (cells[i].round == round && ad_level_cmp(cells[i].level, lv) == 0) return cells[i].value;
    return NAN;
}

/* Finds a mastered level (>= mastered at the last accepted round) whose accuracy
 * fell by more than max_drop; writes the reason. Returns 1 when found. */
static int lost_mastery(ad_run *run, size_t round, size_t last, char *reason, size_t cap,
                        ad_error *err, int *failed) {
    ad_store_eval *cells = NULL;
    size_t n = 0;
    *failed = ad_store_eval_series(run->st, AD_EVAL_ACCURACY, 0, &cells, &n, err) != AD_OK;
    if (*failed) return 0;
    int lost = 0;
    for (size_t i = 0; i < n && !lost; i++) {
        if (cells[i].round != last) continue;
        double before = cells[i].value, now = cell(cells, n, round, cells[i].level);
        if (before >= run->cfg.mastered && !isnan(now) && before - now > run->cfg.max_drop) {
            char b[AD_LEVEL_TEXT_MAX];
            snprintf(reason, cap, "level %s fell from %.3f to %.3f",
                     ad_level_format(cells[i].level, b, sizeof b), before, now);
            lost = 1;
        }
    }
    free(cells);
    return lost;
}

/* The levels at and just below the frontier after cursor steps: the ones a
 * round must not lose (the `below` part of the evaluation window). */
static size_t mastered_window(ad_run *run, size_t cursor, ad_level *out, size_t cap) {
    ad_level all[WINDOW_MAX];
    size_t n = eval_window(run, cursor, all, WINDOW_MAX), k = 0;
    size_t keep = run->cfg.eval_below;
    if (run->cur.schedule) { /* levels of the `below` steps before the cursor */
        size_t from = cursor > keep ? cursor - keep : 0;
        keep = 0;
        for (size_t s = from; s < cursor; s++)
            keep += ad_curriculum_step_levels(&run->cur, s, NULL, 0);
    }
    for (size_t i = 0; i < n && i < keep && k < cap; i++)
        out[k++] = all[i];
    return k;
}

static void models_release(ad_model **m, size_t n) {
    for (size_t i = 0; i < n; i++)
        ad_model_free(m[i]);
    free(m);
}

/* Every lineage's model before (the parent round) and after this round. */
static int load_before_after(ad_run *run, const run_round *rr, ad_model ***before,
                             ad_model ***after, ad_error *err) {
    size_t L = run->cfg.lineages;
    *before = calloc(L, sizeof **before);
    *after = calloc(L, sizeof **after);
    int rc = *before && *after ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t l = 0; rc == AD_OK && l < L; l++) {
        rc = run_load_model(run, l, rr->parent, &(*before)[l], err);
        if (rc == AD_OK) rc = run_load_model(run, l, rr->round, &(*after)[l], err);
    }
    return rc;
}

/* Label-free acceptance: self-consistency of the previous accepted models and
 * of this round's on the mastered levels (same probe prompts for both). */
static int lost_consistency(ad_run *run, const run_round *rr, char *reason, size_t cap, int *lost,
                            ad_error *err) {
    size_t L = run->cfg.lineages, n, round = rr->round;
    ad_level lv[WINDOW_MAX];
    ad_model **before = NULL, **after = NULL;
    int rc = load_before_after(run, rr, &before, &after, err);
    *lost = 0;
    n = rc == AD_OK ? mastered_window(run, rr->cursor_before, lv, WINDOW_MAX) : 0;
    for (size_t i = 0; rc == AD_OK && i < n && !*lost; i++) {
        double b = 0, a = 0;
        rc = run_self_consistency(run, before, L, round, (long)rr->parent, lv[i], &b, err);
        if (rc == AD_OK)
            rc = run_self_consistency(run, after, L, round, (long)round, lv[i], &a, err);
        if (rc == AD_OK && b >= run->cfg.mastered && b - a > run->cfg.max_drop) {
            char t[AD_LEVEL_TEXT_MAX];
            snprintf(reason, cap, "self-consistency at level %s fell from %.3f to %.3f",
                     ad_level_format(lv[i], t, sizeof t), b, a);
            *lost = 1;
        }
    }
    if (before) models_release(before, L);
    if (after) models_release(after, L);
    return rc;
}

/* ---- the rl guard ---------------------------------------------------------- */

/* One lineage's recorded per-step values of one key of one stage, by step. */
typedef struct step_series {
    uint32_t round;
    int64_t lineage;
    const char *key;
    ad_vec values; /* double, by step */
} step_series;

static int collect_value(void *vctx, const ad_store_step_metric *m, ad_error *err) {
    step_series *s = vctx;
    if (m->round != s->round || m->lineage != s->lineage || strcmp(m->key, s->key)) return AD_OK;
    return ad_vec_push(&s->values, &m->value, err);
}

/* Lineage l's recorded values of stage.key in the round, by step (the
 * caller frees out's storage with ad_vec_free). */
static int series_values(ad_run *run, size_t round, size_t l, const char *stage, const char *key,
                         ad_vec *out, ad_error *err) {
    step_series s = {(uint32_t)round, (int64_t)l, key, {0}};
    ad_vec_init(&s.values, sizeof(double));
    int rc = ad_store_step_metrics_foreach(run->st, stage, collect_value, &s, err);
    *out = s.values;
    return rc;
}

/* Mean of v[from, from + n). */
static double mean_of(const double *v, size_t from, size_t n) {
    double a = 0;
    for (size_t i = 0; i < n; i++)
        a += v[from + i];
    return n ? a / (double)n : NAN;
}

/* Mean of the first and of the last quarter of lineage l's recorded values
 * of stage.key in the round (NaN, NaN when none). */
static int series_trend(ad_run *run, size_t round, size_t l, const char *stage, const char *key,
                        double *first, double *last, ad_error *err) {
    ad_vec v;
    int rc = series_values(run, round, l, stage, key, &v, err);
    size_t n = v.n, q = n / 4 ? n / 4 : 1;
    *first = n ? mean_of(v.data, 0, q) : NAN;
    *last = n ? mean_of(v.data, n - q, q) : NAN;
    ad_vec_free(&v);
    return rc;
}

/* Mean reward of the first and the last quarter of lineage l's rl steps. */
static int reward_trend(ad_run *run, size_t round, size_t l, double *first, double *last,
                        ad_error *err) {
    return series_trend(run, round, l, AD_STAGE_RL, "reward_mean", first, last, err);
}

/* accept.max_loss_ratio: a lineage whose training loss over the round's last
 * quarter of recorded steps is above its first step's (before any update) by
 * more than the ratio and by AD_LOSS_RISE_MIN, or is not finite, diverged
 * (ad_loss_diverged). *diverged = 1 then, with
 * the reason. Rounds without optimize steps (rl) are not judged here. */
static int loss_diverged(ad_run *run, size_t round, char *reason, size_t cap, int *diverged,
                         ad_error *err) {
    double ratio = run->cfg.max_loss_ratio;
    *diverged = 0;
    for (size_t l = 0; ratio > 0 && l < run->cfg.lineages && !*diverged; l++) {
        ad_vec v;
        if (series_values(run, round, l, AD_STAGE_OPTIMIZE, AD_METRIC_LOSS, &v, err)) {
            ad_vec_free(&v);
            return AD_ERR;
        }
        size_t n = v.n, q = n / 4 ? n / 4 : 1;
        double start = n ? ((const double *)v.data)[0] : NAN;
        double end = n > 1 ? mean_of(v.data, n - q, q) : NAN;
        ad_vec_free(&v);
        if (n < 2) continue; /* nothing to compare */
        if (ad_loss_diverged(start, end, ratio)) {
            snprintf(reason, cap,
                     "training diverged: lineage %zu's loss went from %.4g to %.4g over the round "
                     "(more than accept.max_loss_ratio = %g times)",
                     l, start, end, ratio);
            *diverged = 1;
        }
    }
    return AD_OK;
}

/* The guard's second sign, for a collapse that raises no reward and keeps the
 * model self-consistent (TTRL's confident, consistent, wrong answers): at a
 * level the parents had mastered (self-consistency >= accept.mastered), some
 * lineage's new greedy answers agree with its parent's on fewer than
 * accept.mastered of the probe's prompts. A round that learns the frontier
 * leaves mastered answers where they were; one that drifts from them has no
 * label to be right by. */
static int drifted(ad_run *run, const run_round *rr, char *why, size_t cap, int *drift,
                   ad_error *err) {
    size_t L = run->cfg.lineages, n;
    ad_level lv[WINDOW_MAX];
    ad_model **before = NULL, **after = NULL;
    int rc = load_before_after(run, rr, &before, &after, err);
    *drift = 0;
    n = rc == AD_OK ? mastered_window(run, rr->cursor_before, lv, WINDOW_MAX) : 0;
    for (size_t i = 0; rc == AD_OK && i < n && !*drift; i++) {
        double sc = 0;
        rc = run_self_consistency(run, before, L, rr->round, (long)rr->parent, lv[i], &sc, err);
        for (size_t l = 0; rc == AD_OK && sc >= run->cfg.mastered && l < L && !*drift; l++) {
            double agree = 0;
            rc = run_agreement(run, before[l], after[l], l, rr->round, lv[i], &agree, err);
            if (rc == AD_OK && agree < run->cfg.mastered) {
                char t[AD_LEVEL_TEXT_MAX];
                snprintf(why, cap,
                         "lineage %zu's answers at mastered level %s (self-consistency %.3f) "
                         "agree with its parent's on only %.3f",
                         l, ad_level_format(lv[i], t, sizeof t), sc, agree);
                *drift = 1;
            }
        }
    }
    if (before) models_release(before, L);
    if (after) models_release(after, L);
    return rc;
}

/* rl.guard: a label-free reward can be hacked (confident, consistent, wrong);
 * a spec that includes the verifier is not guarded. Two signs, no labels:
 * the reward rose over the round (last quarter of steps above the first, for
 * some lineage) while self-consistency on the mastered levels fell
 * (lost_consistency); or the answers on the mastered levels drifted from the
 * parents' (drifted). *hacked = 1 then, with the reason. */
static int guard_tripped(ad_run *run, const run_round *rr, char *reason, size_t cap, int *hacked,
                         ad_error *err) {
    double first = NAN, last = NAN;
    int rose = 0;
    *hacked = 0;
    ad_reward_spec spec;
    if (ad_reward_spec_parse(run->cfg.rl_rewards, &spec, err) != AD_OK) return AD_ERR;
    if (ad_reward_spec_uses_verifier(&spec)) return AD_OK; /* the checker cannot be hacked */
    for (size_t l = 0; l < run->cfg.lineages && !rose; l++) {
        if (reward_trend(run, rr->round, l, &first, &last, err) != AD_OK) return AD_ERR;
        rose = last > first;
    }
    char why[200] = "";
    int lost = 0;
    if (rose && lost_consistency(run, rr, why, sizeof why, &lost, err) != AD_OK) return AD_ERR;
    if (lost) {
        snprintf(reason, cap, "rl guard: reward rose from %.3f to %.3f while %s", first, last, why);
        *hacked = 1;
        return AD_OK;
    }
    if (drifted(run, rr, why, sizeof why, &lost, err) != AD_OK) return AD_ERR;
    if (lost) snprintf(reason, cap, "rl guard: %s", why);
    *hacked = lost;
    return AD_OK;
}

/* Reads: the round's and its parent's evaluations (or, label-free, both
 * rounds' models). Writes: the round's outcome, accepted or rolled back. */
int run_stage_accept(ad_run *run, run_round *rr, ad_error *err) {
    char reason[256] = "";
    int accepted = 1, failed = 0, diverged = 0;
    size_t round = rr->round;
    if (loss_diverged(run, round, reason, sizeof reason, &diverged, err) != AD_OK) return AD_ERR;
    if (diverged && round == 0) /* nothing to roll back to */
        return ad_error_set(err, "base %s: lower base.lr (or raise accept.max_loss_ratio)", reason);
    accepted = !diverged;
    if (accepted && round > 0 && run->cfg.round_kind == 1 && run->cfg.rl_guard) {
        int hacked = 0;
        if (guard_tripped(run, rr, reason, sizeof reason, &hacked, err) != AD_OK) return AD_ERR;
        accepted = !hacked;
    }
    if (accepted && round > 0 && run->cfg.rollback) {
        if (run->cfg.rollback_label_free) {
            int lost = 0;
            if (lost_consistency(run, rr, reason, sizeof reason, &lost, err) != AD_OK)
                return AD_ERR;
            accepted = !lost;
        } else {
            accepted = !lost_mastery(run, round, rr->parent, reason, sizeof reason, err, &failed);
            if (failed) return AD_ERR;
        }
    }
    if (!accepted) run_log(run, "round %zu rolled back: %s", round, reason);
    return ad_store_round_finish(run->st, (uint32_t)round, accepted, accepted ? NULL : reason, err);
}
