/* run_temperature.c: B-STaR's adaptive exploration (acquire.auto_temperature;
 * Zeng et al. 2024). Before a round decodes its candidates, every temperature
 * of acquire.temperature_grid decodes a probe set at the round's levels the way
 * the round will (every lineage, acquire.samples candidates per prompt, sample
 * 0 greedy), the round's filters judge the probe's candidates, and the
 * temperature whose B-STaR balance score (metrics.h) is highest samples the
 * round. Ties go to the earlier temperature of the grid.
 *
 * "Correct", for the score: the checker's verdict when the run's selection
 * already uses the checker (select.verifier), else a label-free proxy, stated
 * in the log and the stored figures: agreement with the majority answer of the
 * prompt's finished candidates (every lineage and sample pooled; no unique
 * mode: nothing agrees). The judge filter is off for the probe: the round's
 * judge is trained after acquire, from the candidates this choice produces.
 *
 * Probe prompt i sits at level levels[i % n], drawn from ad_seed(run, any,
 * round, TEMPERATURE, level key, i); every temperature decodes with the same
 * seeds (common random numbers), so the scores differ by the temperature and
 * not by the draw. The probe's candidates are not stored; its figures are
 * (acquire stage, per-step series "temperature", one step per grid point). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/metrics.h"
#include "loop/run_internal.h"
#include "loop/vote.h"

typedef struct probe {
    size_t n, k, L;
    char **prompts;
    ad_level *levels;
    ad_completion *comps; /* [L * n * k]: lineage, prompt, sample */
    ad_candidate *c;      /* the same order */
} probe;

static void probe_clear_comps(probe *p) {
    for (size_t i = 0; p->comps && i < p->L * p->n * p->k; i++)
        ad_completion_free(&p->comps[i]);
}

static void probe_free(probe *p) {
    probe_clear_comps(p);
    for (size_t i = 0; p->prompts && i < p->n; i++)
        free(p->prompts[i]);
    free(p->prompts);
    free(p->levels);
    free(p->comps);
    free(p->c);
}

static int probe_pose(ad_run *run, size_t round, const ad_level_list *levels, probe *p,
                      ad_error *err) {
    size_t total = p->L * p->n * p->k;
    p->prompts = calloc(p->n, sizeof *p->prompts);
    p->levels = calloc(p->n, sizeof *p->levels);
    p->comps = calloc(total, sizeof *p->comps);
    p->c = calloc(total, sizeof *p->c);
    if (!p->prompts || !p->levels || !p->comps || !p->c)
        return ad_error_set(err, "auto temperature: out of memory");
    ad_problem prob = {0};
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < p->n; i++) {
        ad_level lv = levels->v[i % levels->n];
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(run->cfg.seed, AD_SEED_ANY, round, AD_SEED_TEMPERATURE,
                                  ad_seed_level_key(lv.a, lv.b), i));
        rc = ad_task_generate(run->task, lv, &rng, &prob, err);
        if (rc == AD_OK && !(p->prompts[i] = strdup(prob.prompt.s)))
            rc = ad_error_set(err, "auto temperature: out of memory");
        p->levels[i] = lv;
    }
    ad_problem_free(&prob);
    return rc;
}

/* Label-free "correct": the answer is the unique mode of its prompt's finished
 * candidates (every lineage and sample). */
static int mark_majority(probe *p, ad_error *err) {
    size_t m = p->L * p->k;
    const char **answers = malloc(m * sizeof *answers);
    if (!answers) return ad_error_set(err, "auto temperature: out of memory");
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < p->n; i++) {
        for (size_t l = 0; l < p->L; l++)
            for (size_t j = 0; j < p->k; j++) {
                const ad_candidate *c = &p->c[(l * p->n + i) * p->k + j];
                answers[l * p->k + j] = c->hit_eos ? c->completion : NULL;
            }
        ad_vote v;
        rc = ad_vote_mode(answers, m, &v, err);
        for (size_t q = 0; rc == AD_OK && q < m; q++) {
            ad_candidate *c = &p->c[((q / p->k) * p->n + i) * p->k + q % p->k];
            c->correct = v.unique && answers[q] && !strcmp(answers[q], answers[v.first]);
        }
    }
    free(answers);
    return rc;
}

static const char *probe_prompt(const void *ctx, size_t q) {
    const probe *p = ctx;
    return p->prompts[p->c[q].prompt];
}

/* The candidates' verdicts: the checker's (spread over the ranks under
 * mpirun), or the majority proxy. */
static int mark_correct(ad_run *run, size_t round, probe *p, int proxy, ad_error *err) {
    if (proxy) return mark_majority(p, err);
    return run_dist_verify_candidates(run, round, p->c, p->L * p->n * p->k, probe_prompt, p, err);
}

/* Decodes the probe at temperature t with every lineage and scores it. */
static int probe_score(ad_run *run, size_t round, size_t parent, ad_model *const *models, probe *p,
                       float t, int proxy, run_temperature_pick *out, size_t g, ad_error *err) {
    int rc = run_dist_acquire(run, round, parent, models, AD_SEED_TEMPERATURE, t, p->k,
                              (const char *const *)p->prompts, p->n, p->comps, err);
    for (size_t q = 0; rc == AD_OK && q < p->L * p->n * p->k; q++) {
        const ad_completion *cp = &p->comps[q];
        size_t l = q / (p->n * p->k), i = q / p->k % p->n;
        p->c[q] = (ad_candidate){.prompt = i,
                                 .level = p->levels[i],
                                 .lineage = l,
                                 .sample = q % p->k,
                                 .completion = cp->text,
                                 .n_tokens = cp->n_tokens,
                                 .logprob_sum = cp->logprob_sum,
                                 .hit_eos = cp->hit_eos,
                                 .correct = -1,
                                 .score = NAN};
    }
    ad_filter_params fp = run_filter_params(&run->cfg);
    fp.judge = 0;
    ad_balance_metrics bm;
    ad_sample_metrics sm;
    size_t total = p->L * p->n * p->k;
    if (rc == AD_OK) rc = mark_correct(run, round, p, proxy, err);
    if (rc == AD_OK) rc = ad_filter_run(p->c, total, &fp, err);
    if (rc == AD_OK) rc = ad_balance_summarize(p->c, total, run->cfg.bstar_target, &bm, err);
    if (rc == AD_OK) rc = ad_metrics_summarize(p->c, total, 0, &sm, err);
    if (rc == AD_OK) {
        out->t[g] = t;
        out->balance[g] = bm.bstar_balance.value;
        out->distinct[g] = bm.distinct_correct.value;
        out->precision[g] = sm.label_accuracy.value;
        out->kept[g] = sm.kept_fraction.value;
    }
    probe_clear_comps(p);
    return rc;
}

int run_pick_temperature(ad_run *run, size_t round, size_t parent, ad_model *const *models,
                         size_t L, const ad_level_list *levels, run_temperature_pick *out,
                         ad_error *err) {
    float grid[AD_TEMPERATURE_GRID_MAX];
    size_t n_grid = 0;
    memset(out, 0, sizeof *out);
    if (ad_run_config_temperature_grid(&run->cfg, grid, &n_grid, err) != AD_OK) return AD_ERR;
    if (!levels->n) return ad_error_set(err, "auto temperature: the round has no levels");
    probe p = {.n = run->cfg.temperature_probe, .k = run->cfg.samples, .L = L};
    out->proxy = !run->cfg.f_verifier;
    int rc = probe_pose(run, round, levels, &p, err);
    for (size_t g = 0; rc == AD_OK && g < n_grid; g++) {
        rc = probe_score(run, round, parent, models, &p, grid[g], out->proxy, out, g, err);
        if (rc == AD_OK && out->balance[g] > out->balance[out->best]) out->best = g;
        if (rc == AD_OK)
            run_log(run,
                    "acquire r%zu: temperature %.2f: balance %.3f, distinct %s %.2f, "
                    "kept %.3f, precision %.3f",
                    round, (double)grid[g], out->balance[g], out->proxy ? "majority" : "correct",
                    out->distinct[g], out->kept[g], out->precision[g]);
    }
    out->n = rc == AD_OK ? n_grid : 0;
    probe_free(&p);
    if (rc == AD_OK)
        run_log(run, "acquire r%zu: auto temperature %.2f (B-STaR balance %.3f%s)", round,
                (double)out->t[out->best], out->balance[out->best],
                out->proxy ? "; label-free: agreement with the majority stands for correct" : "");
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "auto temperature: ");
}
