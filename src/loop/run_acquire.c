/* run_acquire.c: the acquire stage: choose the round's levels from the
 * curriculum (fixed, or adaptive by label-free self-consistency), pose fresh
 * prompts at them from the acquisition seed stream, and decode candidates with
 * every lineage (sample 0 greedy, samples 1..k-1 at the configured
 * temperature). The hidden answers are never looked at here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "loop/complete.h"
#include "loop/run_internal.h"
#include "loop/vote.h"
#include "util/progress.h"

#define DECODE_CHUNK 256

typedef struct lineage_models {
    ad_model **m;
    size_t n;
} lineage_models;

static void models_free(lineage_models *lm) {
    for (size_t i = 0; lm->m && i < lm->n; i++)
        ad_model_free(lm->m[i]);
    free(lm->m);
}

/* Loads every lineage's model as of round `parent`. */
static int models_load(ad_run *run, size_t parent, lineage_models *lm, ad_error *err) {
    lm->n = run->cfg.lineages;
    lm->m = calloc(lm->n, sizeof *lm->m);
    if (!lm->m) return ad_error_set(err, "out of memory");
    for (size_t l = 0; l < lm->n; l++)
        if (run_load_model(run, l, parent, &lm->m[l], err) != AD_OK) return AD_ERR;
    return AD_OK;
}

/* Decoding parameters of lineage l in a round; stage is AD_SEED_SAMPLE for the
 * round's candidates, AD_SEED_PROBE for self-consistency probes and
 * AD_SEED_TEMPERATURE for the auto-temperature probe. */
static ad_sample_params sample_params(const ad_run *run, size_t l, size_t round,
                                      ad_seed_stage stage, int greedy, float temperature) {
    ad_sample_params sp = ad_sample_default_params();
    sp.seed = ad_seed(run->cfg.seed, l, round, stage, greedy ? 0 : 1, 0);
    if (!greedy) {
        sp.temperature = temperature;
        sp.top_k = run->cfg.top_k;
        sp.top_p = run->cfg.top_p;
    }
    return sp;
}

int run_decode_candidates(ad_run *run, ad_model *m, size_t l, size_t round, ad_seed_stage stage,
                          float temperature, const char *const *prompts, size_t first, size_t n,
                          size_t k, ad_completion *out, ad_error *err) {
    ad_completion *tmp = NULL;
    ad_sample_params g = sample_params(run, l, round, stage, 1, temperature);
    ad_sample_params s = sample_params(run, l, round, stage, 0, temperature);
    if (k > 1 && !(tmp = calloc(n * (k - 1), sizeof *tmp)))
        return ad_error_set(err, "out of memory");
    ad_completion *greedy = calloc(n, sizeof *greedy);
    int rc = greedy ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK)
        rc = ad_complete_prompts(m, &run->vocab, run->task, prompts, n, 1, &g, first, greedy, err);
    if (rc == AD_OK && k > 1)
        rc = ad_complete_prompts(m, &run->vocab, run->task, prompts, n, k - 1, &s, first * (k - 1),
                                 tmp, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        out[i * k] = greedy[i];
        for (size_t j = 1; j < k; j++)
            out[i * k + j] = tmp[i * (k - 1) + j - 1];
    }
    if (rc != AD_OK) {
        for (size_t i = 0; greedy && i < n; i++)
            ad_completion_free(&greedy[i]);
        for (size_t i = 0; tmp && i < n * (k - 1); i++)
            ad_completion_free(&tmp[i]);
    }
    free(greedy);
    free(tmp);
    return rc;
}

typedef struct probe_ctx {
    ad_run *run;
    lineage_models *lm;
    size_t round, parent;
} probe_ctx;

/* The probe's curriculum.probe prompts at level lv for `round`: prompt i from
 * ad_seed(run, any, round, PROBE, level key, i). prompts[n] is calloc'd by the
 * caller; on error the ones made so far are left for the caller to free. */
static int probe_prompts(ad_run *run, size_t round, ad_level lv, char **prompts, size_t n,
                         ad_error *err) {
    ad_problem p = {0};
    int rc = AD_OK;
    uint64_t key = ad_seed_level_key(lv.a, lv.b);
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(run->cfg.seed, AD_SEED_ANY, round, AD_SEED_PROBE, key, i));
        rc = ad_task_generate(run->task, lv, &rng, &p, err);
        if (rc == AD_OK && !(prompts[i] = strdup(p.prompt.s))) rc = ad_error_set(err, "oom");
    }
    ad_problem_free(&p);
    return rc;
}

int run_agreement(ad_run *run, ad_model *before, ad_model *after, size_t l, size_t round,
                  ad_level lv, double *agree, ad_error *err) {
    size_t n = run->cfg.adaptive_probe;
    char **prompts = calloc(n, sizeof *prompts);
    ad_completion *b = calloc(n, sizeof *b), *a = calloc(n, sizeof *a);
    int rc = prompts && a && b ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = probe_prompts(run, round, lv, prompts, n, err);
    ad_sample_params g = sample_params(run, l, round, AD_SEED_PROBE, 1, 0);
    if (rc == AD_OK)
        rc = ad_complete_prompts(before, &run->vocab, run->task, (const char *const *)prompts, n, 1,
                                 &g, 0, b, err);
    if (rc == AD_OK)
        rc = ad_complete_prompts(after, &run->vocab, run->task, (const char *const *)prompts, n, 1,
                                 &g, 0, a, err);
    size_t same = 0;
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        same += b[i].hit_eos && a[i].hit_eos && !strcmp(b[i].text, a[i].text);
    *agree = n ? (double)same / (double)n : 1;
    for (size_t i = 0; i < n; i++) {
        if (a) ad_completion_free(&a[i]);
        if (b) ad_completion_free(&b[i]);
        if (prompts) free(prompts[i]);
    }
    free(prompts);
    free(a);
    free(b);
    return rc;
}

int run_self_consistency(ad_run *run, ad_model *const *models, size_t m, size_t round, long from,
                         ad_level lv, double *score, ad_error *err) {
    size_t n = run->cfg.adaptive_probe;
    size_t k = m >= 2 ? 1 : (run->cfg.samples >= 2 ? run->cfg.samples : 5);
    size_t voters = m >= 2 ? m : k;
    char **prompts = calloc(n, sizeof *prompts);
    ad_completion *outs = calloc(n * voters, sizeof *outs);
    const char **answers = calloc(voters, sizeof *answers);
    int rc = prompts && outs && answers ? AD_OK : ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = probe_prompts(run, round, lv, prompts, n, err);
    /* (lineage, prompt) units: m models x 1 greedy answer, or 1 model x k */
    ad_completion *units = calloc(n * voters + 1, sizeof *units);
    if (rc == AD_OK && !units) rc = ad_error_set(err, "out of memory");
    const char *const *ps = (const char *const *)prompts;
    float t = run->cfg.temperature;
    if (rc == AD_OK)
        rc = from >= 0 && m == run->cfg.lineages
                 ? run_dist_acquire(run, round, (size_t)from, models, AD_SEED_PROBE, t, k, ps, n,
                                    units, err)
                 : run_decode_units(run, round, models, AD_SEED_PROBE, t, k, ps, n, 0, m * n, units,
                                    err);
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        for (size_t j = 0; j < voters; j++)
            outs[i * voters + j] = m >= 2 ? units[j * n + i] : units[i * k + j];
    double total = 0;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        ad_vote v;
        for (size_t j = 0; j < voters; j++)
            answers[j] = outs[i * voters + j].hit_eos ? outs[i * voters + j].text : NULL;
        rc = ad_vote_mode(answers, voters, &v, err);
        if (rc == AD_OK && v.unique) total += (double)v.count / (double)voters;
    }
    *score = n ? total / (double)n : 0;
    for (size_t i = 0; outs && i < n * voters; i++)
        ad_completion_free(&outs[i]);
    for (size_t i = 0; prompts && i < n; i++)
        free(prompts[i]);
    free(units);
    free(outs);
    free(prompts);
    free(answers);
    char buf[AD_LEVEL_TEXT_MAX];
    if (rc == AD_OK)
        run_log(run, "r%zu: self-consistency at level %s = %.3f", round,
                ad_level_format(lv, buf, sizeof buf), *score);
    return rc;
}

/* The curriculum's measure: self-consistency of the lineages' current models. */
static int measure_consistency(void *vctx, ad_level lv, double *score, ad_error *err) {
    probe_ctx *ctx = vctx;
    return run_self_consistency(ctx->run, ctx->lm->m, ctx->lm->n, ctx->round, (long)ctx->parent, lv,
                                score, err);
}

/* The round's prompts: round_prompts per level, prompt i of a level from
 * ad_seed(seed, any lineage, round, AD_SEED_ACQUIRE, level, i). */
static int pose_prompts(ad_run *run, size_t round, const ad_level_list *levels, char ***out,
                        ad_level **out_levels, size_t *n_out, ad_error *err) {
    size_t per = run->cfg.round_prompts, n = levels->n * per;
    char **prompts = calloc(n ? n : 1, sizeof *prompts);
    ad_level *lv = calloc(n ? n : 1, sizeof *lv);
    ad_problem p = {0};
    int rc = prompts && lv ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        ad_level level = levels->v[i / per];
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(run->cfg.seed, AD_SEED_ANY, round, AD_SEED_ACQUIRE,
                                  ad_seed_level_key(level.a, level.b), i % per));
        rc = ad_task_generate(run->task, level, &rng, &p, err);
        if (rc == AD_OK && !(prompts[i] = strdup(p.prompt.s))) rc = ad_error_set(err, "oom");
        lv[i] = level;
    }
    ad_problem_free(&p);
    *out = prompts;
    *out_levels = lv;
    *n_out = n;
    return rc;
}

int run_decode_units(ad_run *run, size_t round, ad_model *const *models, ad_seed_stage stage,
                     float temperature, size_t k, const char *const *prompts, size_t n, size_t from,
                     size_t to, ad_completion *out, ad_error *err) {
    double tokens = 0;
    char label[64];
    snprintf(label, sizeof label, "%s r%zu", run_decode_units_name(stage), round);
    ad_progress prog;
    ad_progress_begin(&prog, label, to - from, "tok");
    for (size_t u = from; u < to;) {
        size_t l = u / n, i = u % n;
        size_t cnt = n - i < DECODE_CHUNK ? n - i : DECODE_CHUNK;
        cnt = cnt < to - u ? cnt : to - u;
        ad_completion *c = out + (u - from) * k;
        if (run_decode_candidates(run, models[l], l, round, stage, temperature, prompts + i, i, cnt,
                                  k, c, err) != AD_OK)
            return AD_ERR;
        for (size_t j = 0; j < cnt * k; j++)
            tokens += (double)c[j].n_tokens;
        u += cnt;
        ad_progress_update(&prog, u - from, tokens, NULL);
        if (stage == AD_SEED_SAMPLE) ad_run_maybe_kill(AD_STAGE_ACQUIRE, round, u);
    }
    ad_progress_end(&prog, tokens, NULL);
    return AD_OK;
}

/* Decodes every prompt with every lineage (alone, or spread over the ranks:
 * run_dist_acquire) and fills the store rows (strings owned by comps). */
static int decode_all(ad_run *run, size_t round, size_t parent, lineage_models *lm,
                      float temperature, char **prompts, const ad_level *lv, size_t n,
                      ad_completion *comps, ad_store_sample *rows, double *tokens, ad_error *err) {
    size_t k = run->cfg.samples, L = lm->n;
    const char *const *ps = (const char *const *)prompts;
    if (run_dist_acquire(run, round, parent, lm->m, AD_SEED_SAMPLE, temperature, k, ps, n, comps,
                         err) != AD_OK)
        return AD_ERR;
    for (size_t u = 0; u < L * n * k; u++)
        *tokens += (double)comps[u].n_tokens;
    for (size_t l = 0; l < L; l++)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < k; j++) {
                const ad_completion *c = &comps[(l * n + i) * k + j];
                ad_store_sample *r = &rows[(l * n + i) * k + j];
                *r = (ad_store_sample){.round = (uint32_t)round,
                                       .lineage = l,
                                       .prompt_index = i,
                                       .sample_index = j,
                                       .level = lv[i],
                                       .correct = -1};
                r->prompt = prompts[i];
                r->completion = c->text;
                r->n_tokens = c->n_tokens;
                r->logprob = c->logprob_sum;
                r->hit_eos = c->hit_eos;
                r->score = NAN;
            }
    return AD_OK;
}

/* The auto-temperature probe's figures: one step of the series per grid point,
 * and the temperature the round sampled at. */
static int record_temperature(ad_run *run, size_t round, const run_temperature_pick *pick,
                              ad_error *err) {
    static const char *const keys[] = {AD_METRIC_TEMPERATURE,      AD_METRIC_BSTAR_BALANCE,
                                       AD_METRIC_DISTINCT_CORRECT, AD_METRIC_KEPT_FRACTION,
                                       AD_METRIC_LABEL_ACCURACY,   "label_free_proxy"};
    int rc = AD_OK;
    for (size_t g = 0; rc == AD_OK && g < pick->n; g++) {
        double v[] = {pick->t[g],    pick->balance[g],   pick->distinct[g],
                      pick->kept[g], pick->precision[g], pick->proxy};
        rc = ad_store_step_metrics_insert(run->st, (uint32_t)round, AD_STAGE_TEMPERATURE, -1, g,
                                          keys, v, sizeof v / sizeof v[0], err);
    }
    return rc;
}

/* The stage's durable record, in one transaction: the round's levels, its
 * candidates, its curriculum cursor, figures and the done marker. */
static int record(ad_run *run, size_t round, const ad_level_list *levels, size_t cursor,
                  const ad_store_sample *rows, size_t n_rows, const run_temperature_pick *pick,
                  double temperature, double tokens, double seconds, ad_error *err) {
    size_t *counts = calloc(levels->n ? levels->n : 1, sizeof *counts);
    if (!counts) return ad_error_set(err, "out of memory");
    for (size_t i = 0; i < levels->n; i++)
        counts[i] = run->cfg.round_prompts;
    uint32_t r = (uint32_t)round;
    ad_store *st = run->st;
    int rc = ad_store_begin(st, err);
    if (rc == AD_OK) rc = ad_store_levels_insert(st, r, "train", levels->v, counts, levels->n, err);
    if (rc == AD_OK) rc = ad_store_samples_insert(st, AD_STAGE_ACQUIRE, rows, n_rows, err);
    if (rc == AD_OK) rc = ad_store_round_set_cursor(st, r, cursor, err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, AD_STAGE_ACQUIRE, -1, AD_METRIC_LEVELS, (double)levels->n,
                                   err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, AD_STAGE_ACQUIRE, -1, AD_METRIC_TEMPERATURE, temperature,
                                   err);
    if (rc == AD_OK) rc = record_temperature(run, round, pick, err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, AD_STAGE_ACQUIRE, -1, AD_METRIC_TOKENS_PER_S,
                                   seconds > 0 ? tokens / seconds : 0, err);
    if (rc == AD_OK) rc = ad_store_stage_done(st, r, AD_STAGE_ACQUIRE, -1, seconds, err);
    if (rc == AD_OK)
        rc = ad_store_commit(st, err);
    else
        ad_store_rollback(st);
    free(counts);
    return rc;
}

/* Reads: the parent's models and curriculum cursor. Writes: the round's levels,
 * its cursor and its candidates (rr->cands). */
int run_stage_acquire(ad_run *run, run_round *rr, ad_error *err) {
    int done = 0;
    size_t round = rr->round;
    if (ad_store_stage_is_done(run->st, (uint32_t)round, AD_STAGE_ACQUIRE, -1, &done, err))
        return AD_ERR;
    if (done) return AD_OK;
    double t0 = ad_now(), tokens = 0;
    size_t cursor = rr->cursor_before, n = 0, k = run->cfg.samples;
    lineage_models lm = {0};
    ad_level_list levels = {0};
    char **prompts = NULL;
    ad_level *lv = NULL;
    ad_completion *comps = NULL;
    ad_store_sample *rows = NULL;
    run_temperature_pick pick = {0};
    float temperature = run->cfg.temperature;
    int rc = models_load(run, rr->parent, &lm, err);
    probe_ctx pc = {run, &lm, round, rr->parent};
    if (rc == AD_OK)
        rc = ad_curriculum_next(&run->cur, &cursor, measure_consistency, &pc, &levels, err);
    if (rc == AD_OK && run->cfg.auto_temperature) {
        rc = run_pick_temperature(run, round, rr->parent, lm.m, lm.n, &levels, &pick, err);
        if (rc == AD_OK) temperature = pick.t[pick.best];
    }
    if (rc == AD_OK) rc = pose_prompts(run, round, &levels, &prompts, &lv, &n, err);
    size_t total = n * lm.n * k;
    if (rc == AD_OK) {
        comps = calloc(total ? total : 1, sizeof *comps);
        rows = calloc(total ? total : 1, sizeof *rows);
        if (!comps || !rows) rc = ad_error_set(err, "out of memory");
    }
    if (rc == AD_OK) {
        char text[256] = "";
        for (size_t i = 0; i < levels.n && strlen(text) < 200; i++) {
            char b[AD_LEVEL_TEXT_MAX];
            strcat(text, i ? "," : "");
            strcat(text, ad_level_format(levels.v[i], b, sizeof b));
        }
        run_log(run,
                "acquire r%zu: levels [%s], %zu prompts x %zu lineage(s) x %zu sample(s), "
                "temperature %.2f",
                round, text, n, lm.n, k, (double)temperature);
        rc = decode_all(run, round, rr->parent, &lm, temperature, prompts, lv, n, comps, rows,
                        &tokens, err);
    }
    if (rc == AD_OK)
        rc = record(run, round, &levels, cursor, rows, total, &pick, temperature, tokens,
                    ad_now() - t0, err);
    if (rc == AD_OK) rc = run_candidates_from_rows(rows, total, &rr->cands, err);
    if (rc == AD_OK) {
        rr->cursor = cursor;
        rr->have_cursor = 1;
    }
    for (size_t i = 0; comps && i < total; i++)
        ad_completion_free(&comps[i]);
    for (size_t i = 0; prompts && i < n; i++)
        free(prompts[i]);
    free(comps);
    free(rows);
    free(prompts);
    free(lv);
    ad_level_list_free(&levels);
    models_free(&lm);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "acquire: ");
}

/* Reads: the parent's models and curriculum cursor. Writes: the round's levels
 * and cursor (the curriculum's choice alone, for rounds that pose their own
 * prompts as they go: rl). */
int run_stage_levels(ad_run *run, run_round *rr, ad_error *err) {
    int done = 0;
    uint32_t r = (uint32_t)rr->round;
    if (ad_store_stage_is_done(run->st, r, AD_STAGE_LEVELS, -1, &done, err)) return AD_ERR;
    if (done) return AD_OK;
    double t0 = ad_now();
    size_t cursor = rr->cursor_before;
    lineage_models lm = {0};
    ad_level_list levels = {0};
    int rc = models_load(run, rr->parent, &lm, err);
    probe_ctx pc = {run, &lm, rr->round, rr->parent};
    if (rc == AD_OK)
        rc = ad_curriculum_next(&run->cur, &cursor, measure_consistency, &pc, &levels, err);
    if (rc == AD_OK) rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) {
        rc = ad_store_levels_insert(run->st, r, "train", levels.v, NULL, levels.n, err);
        if (rc == AD_OK) rc = ad_store_round_set_cursor(run->st, r, cursor, err);
        if (rc == AD_OK)
            rc = ad_store_stage_metric(run->st, r, AD_STAGE_LEVELS, -1, AD_METRIC_LEVELS,
                                       (double)levels.n, err);
        if (rc == AD_OK)
            rc = ad_store_stage_done(run->st, r, AD_STAGE_LEVELS, -1, ad_now() - t0, err);
        if (rc == AD_OK)
            rc = ad_store_commit(run->st, err);
        else
            ad_store_rollback(run->st);
    }
    if (rc == AD_OK) {
        rr->cursor = cursor;
        rr->have_cursor = 1;
        char b[AD_LEVEL_TEXT_MAX];
        run_log(run, "levels r%zu: %zu level(s) from %s", rr->round, levels.n,
                levels.n ? ad_level_format(levels.v[0], b, sizeof b) : "-");
    }
    ad_level_list_free(&levels);
    models_free(&lm);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "levels: ");
}
