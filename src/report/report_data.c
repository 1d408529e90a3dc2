/* report_data.c: gathering what the report shows from a run directory: its
 * rounds and their training levels, the accuracy cells of every lineage,
 * per-round figures, seconds per stage, the per-step series and a few
 * candidates per round. Everything is read through the store's public API on
 * a read-only handle, so a run that is still going is neither blocked nor
 * changed; the report sees its last commit.
 *
 * Not here: drawing (the section files). */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/run_names.h"
#include "util/atomic_file.h"
#include "util/config.h"

/* Stage figures read per round, with the lineage they are recorded under
 * (-1: the whole round; 0: read for every lineage). Figures a run did not
 * record are simply absent. */
static const struct {
    const char *stage, *key;
    int per_lineage;
} round_figures[] = {
    {AD_STAGE_SELECT, AD_METRIC_CANDIDATES, 0},
    {AD_STAGE_SELECT, AD_METRIC_KEPT, 0},
    {AD_STAGE_SELECT, AD_METRIC_KEPT_FRACTION, 0},
    {AD_STAGE_SELECT, AD_METRIC_LABEL_ACCURACY, 0},
    {AD_STAGE_SELECT, AD_METRIC_GREEDY_ACCURACY, 0},
    {AD_STAGE_SELECT, AD_METRIC_PAIRS, 0},
    {AD_STAGE_SELECT, AD_METRIC_PAIR_ACCURACY, 0},
    {AD_STAGE_SELECT, AD_METRIC_JUDGE_PRECISION, 0},
    {AD_STAGE_SELECT, AD_METRIC_JUDGE_RECALL, 0},
    {AD_STAGE_SELECT, AD_METRIC_DIVERSITY, 0},
    {AD_STAGE_ACQUIRE, AD_METRIC_TOKENS_PER_S, 0},
    {AD_STAGE_ACQUIRE, AD_METRIC_TEMPERATURE, 0},
    {AD_STAGE_OPTIMIZE, AD_METRIC_LOSS, 1},
    {AD_STAGE_OPTIMIZE, AD_METRIC_TOKENS_PER_S, 1},
    {AD_STAGE_OPTIMIZE, AD_METRIC_PREF_ACCURACY, 1},
};

double rp_figure_get(const rp_run *run, uint32_t round, const char *stage, int64_t lineage,
                     const char *key) {
    for (size_t i = 0; i < run->figures.n; i++) {
        const rp_figure *f = ad_vec_at(&run->figures, i);
        if (f->round == round && f->lineage == lineage && !strcmp(f->stage, stage) &&
            !strcmp(f->key, key))
            return f->value;
    }
    return NAN;
}

uint32_t rp_last_round(const rp_run *run) {
    if (!run->rounds.n) return 0;
    return ((const rp_round *)ad_vec_at(&run->rounds, run->rounds.n - 1))->round;
}

static int push_figure(rp_run *run, uint32_t round, const char *stage, int64_t lineage,
                       const char *key, double value, ad_error *err) {
    rp_figure f = {.round = round, .lineage = lineage, .value = value};
    snprintf(f.stage, sizeof f.stage, "%s", stage);
    snprintf(f.key, sizeof f.key, "%s", key);
    return ad_vec_push(&run->figures, &f, err);
}

static int read_figure(rp_run *run, ad_store *st, uint32_t round, const char *stage,
                       int64_t lineage, const char *key, ad_error *err) {
    double v;
    int found = 0;
    if (ad_store_stage_metric_get(st, round, stage, lineage, key, &v, &found, err)) return AD_ERR;
    return found ? push_figure(run, round, stage, lineage, key, v, err) : AD_OK;
}

/* The stage figures of one round, pass@k and maj@k with k = acquire.samples. */
static int read_round_figures(rp_run *run, ad_store *st, uint32_t round, ad_error *err) {
    for (size_t i = 0; i < sizeof round_figures / sizeof round_figures[0]; i++) {
        size_t n = round_figures[i].per_lineage ? run->n_lineages : 1;
        for (size_t l = 0; l < n; l++)
            if (read_figure(run, st, round, round_figures[i].stage,
                            round_figures[i].per_lineage ? (int64_t)l : -1, round_figures[i].key,
                            err))
                return AD_ERR;
    }
    char k[AD_CONFIG_VALUE_MAX], key[64];
    if (!rp_ini_get(run->config, "acquire.samples", k, sizeof k) || atoi(k) < 2) return AD_OK;
    snprintf(key, sizeof key, "pass@%d", atoi(k));
    if (read_figure(run, st, round, AD_STAGE_SELECT, -1, key, err)) return AD_ERR;
    snprintf(key, sizeof key, "maj@%d", atoi(k));
    return read_figure(run, st, round, AD_STAGE_SELECT, -1, key, err);
}

/* Seconds of each stage the round finished, summed over its lineages. */
static int read_round_times(rp_run *run, ad_store *st, const ad_store_round_row *row,
                            ad_error *err) {
    char names[sizeof row->stages_done];
    snprintf(names, sizeof names, "%s", row->stages_done);
    char *save = NULL;
    for (char *s = strtok_r(names, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        rp_time t = {.round = row->round};
        snprintf(t.stage, sizeof t.stage, "%s", s);
        for (int64_t l = -1; l < (int64_t)run->n_lineages; l++) {
            double sec;
            int found = 0;
            if (ad_store_stage_seconds(st, row->round, s, l, &sec, &found, err)) return AD_ERR;
            if (found && !isnan(sec)) t.seconds += sec;
        }
        if (ad_vec_push(&run->times, &t, err)) return AD_ERR;
    }
    return AD_OK;
}

/* Training levels of a round, and the frontier: the highest level trained on
 * by the accepted rounds before it and by the round itself. */
static int read_round_levels(rp_run *run, ad_store *st, rp_round *r, ad_error *err) {
    ad_level *lv = NULL;
    size_t n = 0;
    if (ad_store_levels_get(st, r->round, "train", &lv, &n, err)) return AD_ERR;
    if (n) {
        r->has_train = 1;
        r->train_lo = lv[0];
        r->train_hi = lv[n - 1];
        r->has_frontier = 1;
        r->frontier = lv[n - 1];
    }
    free(lv);
    for (size_t i = run->rounds.n; i-- > 0;) {
        const rp_round *p = ad_vec_at(&run->rounds, i);
        if (p->status != AD_ROUND_ACCEPTED || !p->has_frontier) continue;
        if (!r->has_frontier || ad_level_cmp(p->frontier, r->frontier) > 0)
            r->frontier = p->frontier;
        r->has_frontier = 1;
        break;
    }
    return AD_OK;
}

/* The most rounds a run can have (run.rounds' upper bound): the charts lay
 * rounds out by number, so a larger one is a damaged store, refused before
 * anything is sized by it. */
#define MAX_ROUND 100000u

static int check_round(uint32_t round, ad_error *err) {
    if (round <= MAX_ROUND) return AD_OK;
    return ad_error_set(err,
                        "the store holds round %u, past the most a run can have (%u): a damaged "
                        "run.db",
                        round, MAX_ROUND);
}

static int read_rounds(rp_run *run, ad_store *st, const ad_report_params *p, ad_error *err) {
    ad_store_round_row *rows = NULL;
    size_t n = 0;
    if (ad_store_rounds(st, &rows, &n, err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        rc = check_round(rows[i].round, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        rp_round r = {.round = rows[i].round, .status = rows[i].status};
        snprintf(r.reason, sizeof r.reason, "%s", rows[i].reason);
        r.seconds = rows[i].stage_seconds;
        r.n_samples = rows[i].n_samples;
        r.n_kept = rows[i].n_kept;
        run->running |= r.status == AD_ROUND_RUNNING;
        rc = read_round_levels(run, st, &r, err);
        if (rc == AD_OK) rc = ad_vec_push(&run->rounds, &r, err);
        if (rc == AD_OK) rc = read_round_figures(run, st, r.round, err);
        if (rc == AD_OK) rc = read_round_times(run, st, &rows[i], err);
        if (rc == AD_OK && r.n_samples)
            rc = rp_samples_load(run, st, r.round, p->samples_per_round, err);
    }
    free(rows);
    return rc;
}

/* Accuracy cells of every lineage, and of -1 (figures across lineages). */
static int read_cells(rp_run *run, ad_store *st, ad_error *err) {
    for (int64_t l = -1; l < (int64_t)run->n_lineages; l++) {
        ad_store_eval *cells = NULL;
        size_t n = 0;
        if (ad_store_eval_series(st, AD_EVAL_ACCURACY, l, &cells, &n, err)) return AD_ERR;
        int rc = AD_OK;
        for (size_t i = 0; rc == AD_OK && i < n; i++) {
            cells[i].lineage = l;
            rc = check_round(cells[i].round, err);
            if (rc == AD_OK) rc = ad_vec_push(&run->cells, &cells[i], err);
        }
        free(cells);
        if (rc) return AD_ERR;
    }
    return AD_OK;
}

static int collect_point(void *ctx, const ad_store_step_metric *m, ad_error *err) {
    rp_point pt = {.round = m->round, .lineage = m->lineage, .step = m->step, .value = m->value};
    snprintf(pt.stage, sizeof pt.stage, "%s", m->stage);
    snprintf(pt.key, sizeof pt.key, "%s", m->key);
    return ad_vec_push(ctx, &pt, err);
}

/* The per-step keys of rl rounds shown per round (as their mean). */
static int rl_round_key(const rp_point *pt) {
    return !strcmp(pt->stage, AD_STAGE_RL) &&
           (!strncmp(pt->key, "precision_", 10) || !strcmp(pt->key, "accuracy") ||
            !strcmp(pt->key, "reward_mean"));
}

/* rl rounds keep their figures per step; the per-round view is their mean
 * over the round's steps (reward precision, reward, accuracy). The sums
 * accumulate in run->figures itself (value = sum) with a count beside. */
static int rl_round_means(rp_run *run, ad_error *err) {
    size_t first = run->figures.n;
    ad_vec counts;
    ad_vec_init(&counts, sizeof(size_t));
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < run->points.n; i++) {
        const rp_point *pt = ad_vec_at(&run->points, i);
        if (!rl_round_key(pt) || isnan(pt->value)) continue;
        size_t j = first;
        for (; j < run->figures.n; j++) {
            const rp_figure *f = ad_vec_at(&run->figures, j);
            if (f->round == pt->round && f->lineage == pt->lineage && !strcmp(f->key, pt->key))
                break;
        }
        if (j == run->figures.n) {
            size_t zero = 0;
            rc = push_figure(run, pt->round, AD_STAGE_RL, pt->lineage, pt->key, 0, err);
            if (rc == AD_OK) rc = ad_vec_push(&counts, &zero, err);
            if (rc) break;
        }
        ((rp_figure *)ad_vec_at(&run->figures, j))->value += pt->value;
        (*(size_t *)ad_vec_at(&counts, j - first))++;
    }
    for (size_t j = first; rc == AD_OK && j < run->figures.n; j++)
        ((rp_figure *)ad_vec_at(&run->figures, j))->value /=
            (double)*(size_t *)ad_vec_at(&counts, j - first);
    ad_vec_free(&counts);
    return rc;
}

/* "runs/flagship/" -> "flagship" (malloc'd). */
static char *base_name(const char *dir) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    char *s = malloc(len - start + 1);
    if (!s) return NULL;
    memcpy(s, dir + start, len - start);
    s[len - start] = '\0';
    return s;
}

static void run_init(rp_run *run) {
    memset(run, 0, sizeof *run);
    ad_vec_init(&run->rounds, sizeof(rp_round));
    ad_vec_init(&run->cells, sizeof(ad_store_eval));
    ad_vec_init(&run->figures, sizeof(rp_figure));
    ad_vec_init(&run->times, sizeof(rp_time));
    ad_vec_init(&run->points, sizeof(rp_point));
    ad_vec_init(&run->samples, sizeof(rp_sample));
}

/* DIR/config.ini, or the store's snapshot when the file cannot be read. */
static int read_config(rp_run *run, const char *dir, char *snapshot) {
    char *path = malloc(strlen(dir) + sizeof "/config.ini");
    char *text = NULL;
    size_t len = 0;
    ad_error ignored;
    if (path) {
        sprintf(path, "%s/config.ini", dir);
        if (ad_read_file(path, AD_CONFIG_FILE_MAX, &text, &len, &ignored)) text = NULL;
    }
    free(path);
    if (text) {
        free(snapshot);
        run->config = text;
    } else {
        run->config = snapshot;
    }
    return AD_OK;
}

static int load(rp_run *run, const char *dir, ad_store *st, const ad_report_params *p,
                ad_error *err) {
    char *snapshot = NULL;
    if (ad_store_run_select(st, NULL, NULL, &snapshot, err)) return AD_ERR;
    read_config(run, dir, snapshot);
    if (ad_store_lineage_count(st, &run->n_lineages, err)) return AD_ERR;
    if (!run->n_lineages) run->n_lineages = 1;
    if (read_cells(run, st, err)) return ad_error_prefix(err, "%s/run.db: ", dir);
    if (ad_store_step_metrics_foreach(st, NULL, collect_point, &run->points, err)) return AD_ERR;
    if (read_rounds(run, st, p, err)) return ad_error_prefix(err, "%s/run.db: ", dir);
    return rl_round_means(run, err);
}

int rp_run_load(rp_run *run, const char *dir, const ad_report_params *p, ad_error *err) {
    run_init(run);
    run->dir = strdup(dir);
    run->name = base_name(dir);
    char *path = malloc(strlen(dir) + sizeof "/run.db");
    if (!run->dir || !run->name || !path) {
        free(path);
        rp_run_free(run);
        return ad_error_set(err, "%s: out of memory", dir);
    }
    sprintf(path, "%s/run.db", dir);
    ad_store *st = NULL;
    int rc = ad_store_open_readonly(path, &st, err);
    free(path);
    if (rc == AD_OK) rc = load(run, dir, st, p, err);
    ad_store_close(st);
    if (rc) rp_run_free(run);
    return rc;
}

void rp_run_free(rp_run *run) {
    for (size_t i = 0; i < run->samples.n; i++) {
        rp_sample *s = ad_vec_at(&run->samples, i);
        free(s->prompt);
        free(s->completion);
    }
    ad_vec_free(&run->rounds);
    ad_vec_free(&run->cells);
    ad_vec_free(&run->figures);
    ad_vec_free(&run->times);
    ad_vec_free(&run->points);
    ad_vec_free(&run->samples);
    free(run->dir);
    free(run->name);
    free(run->config);
    memset(run, 0, sizeof *run);
}

/* ---- the sample browser's candidates ----------------------------------------- */

typedef struct sample_pick {
    rp_run *run;
    size_t per_kind, kept, rejected;
} sample_pick;

/* Keeps the first per_kind kept and the first per_kind rejected candidates
 * (in the store's order: prompt, lineage, sample). */
static int pick_sample(void *ctx, const ad_store_sample *row, ad_error *err) {
    sample_pick *p = ctx;
    size_t *seen = row->kept ? &p->kept : &p->rejected;
    if (*seen >= p->per_kind) return AD_OK;
    rp_sample s = {.round = row->round,
                   .lineage = row->lineage,
                   .prompt_index = row->prompt_index,
                   .sample_index = row->sample_index,
                   .level = row->level,
                   .kept = row->kept,
                   .correct = row->correct,
                   .ran = row->filters_ran,
                   .passed = row->filters_passed,
                   .score = row->score};
    s.prompt = strdup(row->prompt ? row->prompt : "");
    s.completion = strdup(row->completion ? row->completion : "");
    if (!s.prompt || !s.completion || ad_vec_push(&p->run->samples, &s, err)) {
        free(s.prompt);
        free(s.completion);
        return ad_error_set(err, "%s: sample browser: out of memory", p->run->dir);
    }
    (*seen)++;
    return AD_OK;
}

int rp_samples_load(rp_run *run, ad_store *st, uint32_t round, size_t per_kind, ad_error *err) {
    sample_pick p = {.run = run, .per_kind = per_kind};
    if (!per_kind) return AD_OK;
    return ad_store_samples_foreach(st, round, AD_STAGE_SELECT, pick_sample, &p, err);
}
