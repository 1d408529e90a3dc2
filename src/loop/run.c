/* run.c: creating and opening a run directory, and small helpers shared by
 * the stages (paths, seeds, logging, the kill hook). The round driver is
 * run_round.c. */
#include "loop/run.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loop/complete.h"
#include "loop/run_internal.h"
#include "model/checkpoint.h"
#include "model/kernels.h"
#include "util/atomic_file.h"

void run_log(ad_run *run, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
    if (run->log) {
        fprintf(run->log, "%s\n", line);
        fflush(run->log);
    }
}

void run_ckpt_path(const ad_run *run, size_t lineage, size_t round, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/ckpt/l%02zu/r%04zu", run->dir, lineage, round);
}

void run_partial_path(const ad_run *run, size_t lineage, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/ckpt/l%02zu/partial", run->dir, lineage);
}

void run_data_path(const ad_run *run, size_t round, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/data/round-%04zu.jsonl", run->dir, round);
}

uint64_t run_lineage_seed(const ad_run *run, size_t lineage) {
    return ad_seed(run->cfg.seed, lineage, 0, AD_SEED_INIT, 0, 0);
}

void ad_run_maybe_kill(const char *stage, size_t round, size_t step) {
    const char *spec = getenv("AD_KILL_AT");
    if (!spec || !*spec) return;
    char want[64];
    snprintf(want, sizeof want, "%s:%zu", stage, round);
    size_t n = strlen(want);
    if (strncmp(spec, want, n) != 0) return;
    if (spec[n] == '\0' || (spec[n] == ':' && (size_t)strtoull(spec + n + 1, NULL, 10) == step))
        raise(SIGKILL);
}

/* The highest level the curriculum can reach within the run, for sizing max_len. */
static ad_level reachable_top(const ad_run *run) {
    const ad_run_config *c = &run->cfg;
    ad_level top = c->base_levels.v[0];
    for (size_t i = 1; i < c->base_levels.n; i++)
        if (ad_level_cmp(c->base_levels.v[i], top) > 0) top = c->base_levels.v[i];
    if (run->cur.schedule) {
        for (size_t i = 0; i < run->cur.schedule->n_levels; i++)
            if (ad_level_cmp(run->cur.schedule->levels[i], top) > 0)
                top = run->cur.schedule->levels[i];
        return top;
    }
    size_t per = c->levels_per_round ? c->levels_per_round : 8;
    int64_t reach =
        (int64_t)run->cur.first_level - 1 + (int64_t)(c->rounds * per) + (int64_t)c->eval_above;
    if (reach > run->cur.last_level) reach = run->cur.last_level;
    if (reach > top.a) top = ad_level_int((int32_t)reach);
    return top;
}

/* What create and open share: task, vocabulary, curriculum, max_len, log. */
static int run_init_common(ad_run *run, ad_error *err) {
    ad_run_config *c = &run->cfg;
    ad_task_options to;
    ad_task_default_options(&to);
    to.verifier = c->verifier && c->verifier[0] ? c->verifier : NULL;
    if (ad_task_open(c->task, &to, &run->task, err) != AD_OK) return AD_ERR;
    /* Independent operand lengths are for the base data (the paper's); the
     * rounds pose and evaluate problems whose operands have the level's length,
     * which is what the curriculum and the length filter assume. */
    to.independent_lengths = c->independent_lengths;
    if (ad_task_open(c->task, &to, &run->base_task, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < c->base_levels.n; i++)
        if (ad_task_level_check(run->task, c->base_levels.v[i], err) != AD_OK)
            return ad_error_prefix(err, "base.levels: ");
    if (ad_vocab_for_task(&run->vocab, run->task, err) != AD_OK) return AD_ERR;
    ad_level base_top = c->base_levels.v[0], hi = ad_task_level_max(run->task);
    for (size_t i = 1; i < c->base_levels.n; i++)
        if (ad_level_cmp(c->base_levels.v[i], base_top) > 0) base_top = c->base_levels.v[i];
    run->cur = (ad_curriculum){0};
    run->cur.schedule = c->schedule.n_steps ? &c->schedule : NULL;
    run->cur.first_level = c->first_level ? (int32_t)c->first_level : base_top.a + 1;
    run->cur.last_level = c->last_level ? (int32_t)c->last_level : hi.a;
    run->cur.adaptive = c->adaptive;
    run->cur.steps_per_round = c->levels_per_round;
    run->cur.min_score = c->adaptive_threshold;
    run->cur.hold = c->adaptive_hold;
    if (!run->cur.schedule && (ad_level_is_pair(base_top) || run->cur.first_level > hi.a))
        return ad_error_set(err, "curriculum: set curriculum.schedule for pair levels, or a "
                                 "first_level within the task's range");
    if (ad_curriculum_validate(&run->cur, err) != AD_OK)
        return ad_error_prefix(err, "curriculum: ");
    run->max_len = c->max_len;
    if (!run->max_len) {
        if (ad_task_sequence_bound(run->task, reachable_top(run), 16, c->seed, &run->max_len, err))
            return AD_ERR;
        run->max_len += 8;
    }
    char path[2200];
    snprintf(path, sizeof path, "%s/log.txt", run->dir);
    run->log = fopen(path, "a");
    if (!run->log) return ad_error_set(err, "%s: cannot open for appending", path);
    if (c->threads) ad_kernels_set_threads((int)c->threads);
    return AD_OK;
}

static int make_dirs(const char *dir, ad_error *err) {
    char sub[2200];
    if (ad_mkdir_p(dir, err) != AD_OK) return AD_ERR;
    snprintf(sub, sizeof sub, "%s/ckpt", dir);
    if (ad_mkdir_p(sub, err) != AD_OK) return AD_ERR;
    snprintf(sub, sizeof sub, "%s/data", dir);
    return ad_mkdir_p(sub, err);
}

int ad_run_create(ad_run **out, const char *dir, const char *config_path,
                  const char *const *overrides, size_t n_overrides, ad_error *err) {
    *out = NULL;
    ad_run *run = calloc(1, sizeof *run);
    if (!run) return ad_error_set(err, "out of memory");
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    char path[2200];
    snprintf(path, sizeof path, "%s/run.db", dir);
    struct stat stbuf;
    int rc = AD_OK;
    if (stat(path, &stbuf) == 0)
        rc = ad_error_set(err, "%s already holds a run: use `autodidact resume %s`", dir, dir);
    if (rc == AD_OK) rc = ad_run_config_load(&run->cfg, config_path, overrides, n_overrides, err);
    if (rc == AD_OK) rc = make_dirs(dir, err);
    if (rc == AD_OK) rc = run_init_common(run, err);
    char *text = NULL;
    if (rc == AD_OK) rc = ad_config_dump(ad_run_config_schema(), &run->cfg, &text, err);
    snprintf(path, sizeof path, "%s/config.ini", dir);
    if (rc == AD_OK) rc = ad_atomic_write(path, text, strlen(text), err);
    snprintf(path, sizeof path, "%s/run.db", dir);
    if (rc == AD_OK) rc = ad_store_open(path, 1, &run->st, err);
    if (rc == AD_OK) rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) rc = ad_store_run_create(run->st, "run", run->cfg.seed, text, err);
    for (size_t l = 0; rc == AD_OK && l < run->cfg.lineages; l++)
        rc = ad_store_lineage_add(run->st, l, run_lineage_seed(run, l), err);
    if (rc == AD_OK) rc = ad_store_commit(run->st, err);
    free(text);
    if (rc != AD_OK) {
        ad_run_free(run);
        return AD_ERR;
    }
    *out = run;
    return AD_OK;
}

int ad_run_open(ad_run **out, const char *dir, ad_error *err) {
    *out = NULL;
    ad_run *run = calloc(1, sizeof *run);
    if (!run) return ad_error_set(err, "out of memory");
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    char path[2200];
    snprintf(path, sizeof path, "%s/config.ini", dir);
    int rc = ad_run_config_load(&run->cfg, path, NULL, 0, err);
    snprintf(path, sizeof path, "%s/run.db", dir);
    if (rc == AD_OK) rc = ad_store_open(path, 0, &run->st, err);
    uint64_t seed = 0;
    if (rc == AD_OK) rc = ad_store_run_select(run->st, NULL, &seed, NULL, err);
    if (rc == AD_OK && seed != run->cfg.seed)
        rc = ad_error_set(err, "%s: config.ini seed %llu differs from the store's %llu", dir,
                          (unsigned long long)run->cfg.seed, (unsigned long long)seed);
    if (rc == AD_OK) rc = run_init_common(run, err);
    if (rc != AD_OK) {
        ad_run_free(run);
        return AD_ERR;
    }
    *out = run;
    return AD_OK;
}

void ad_run_free(ad_run *run) {
    if (!run) return;
    for (size_t i = 0; i < run->n_sets; i++) {
        for (size_t j = 0; run->sets[i].examples && j < run->sets[i].n_examples; j++)
            ad_example_free(&run->sets[i].examples[j]);
        free(run->sets[i].examples);
    }
    free(run->sets);
    ad_store_close(run->st);
    ad_task_free(run->task);
    ad_task_free(run->base_task);
    ad_run_config_free(&run->cfg);
    if (run->log) fclose(run->log);
    free(run);
}

void run_fit_max_len(const ad_run *run, ad_model *m) {
    if (m->cfg.max_seq_len < run->max_len) m->cfg.max_seq_len = run->max_len;
}

int run_load_model(ad_run *run, size_t lineage, size_t round, ad_model **m, ad_error *err) {
    char path[2300];
    run_ckpt_path(run, lineage, round, path, sizeof path);
    ad_vocab *v = malloc(sizeof *v);
    if (!v) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_load(path, m, v, NULL, NULL, err);
    free(v);
    if (rc == AD_OK) run_fit_max_len(run, *m);
    return rc;
}
