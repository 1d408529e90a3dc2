/* run_branch.c: `autodidact run CONFIG --from SRC`, a new run that starts
 * from another run's base model instead of training its own.
 *
 * Round 0 (base training) depends only on the task, the seed, the lineage
 * count, the model, the base data and the optimizer settings; a run that
 * agrees with SRC on all of those would train a bit-identical base. So the
 * copy is not an approximation: it saves the base's minutes, which lets one
 * compare recipes (filters, round sizes, schedules) on the very same base
 * model. Any difference in those keys is refused, naming the key. The copy
 * holds the base checkpoints (model, optimizer state, trainer state) and the
 * optimize stage's record (loss, speed, seconds); round 0 is then evaluated
 * and accepted by the new run itself, with its own eval settings.
 *
 * The lineage count may differ: lineage l's base depends on the seed and l
 * alone (run_lineage_seed), so the lineages both runs have are copied and the
 * new run trains the rest itself. A one-model base thus becomes lineage 0 of
 * a vote across lineages without training it twice. */
#include <stdlib.h>
#include <string.h>

#include "loop/run_internal.h"
#include "model/checkpoint.h"
#include "model/kernels.h"
#include "model/optimizer.h"
#include "util/atomic_file.h"

/* Keys whose values decide the base model (model.max_len only bounds lengths). */
static int decides_base(const char *name) {
    static const char *const exact[] = {"run.task", "run.seed"};
    static const char *const prefix[] = {"task.", "model.", "base.", "optim."};
    if (!strcmp(name, "model.max_len")) return 0;
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(name, exact[i])) return 1;
    for (size_t i = 0; i < sizeof prefix / sizeof *prefix; i++)
        if (!strncmp(name, prefix[i], strlen(prefix[i]))) return 1;
    return 0;
}

static int same_base(const ad_run_config *src, const ad_run_config *cfg, const char *from,
                     ad_error *err) {
    const ad_config_schema *s = ad_run_config_schema();
    for (size_t i = 0; i < s->n_keys; i++) {
        const ad_config_key *k = &s->keys[i];
        if (!decides_base(k->name)) continue;
        char a[256], b[256];
        if (ad_config_format_value(k, src, a, sizeof a, err) != AD_OK ||
            ad_config_format_value(k, cfg, b, sizeof b, err) != AD_OK)
            return AD_ERR;
        if (strcmp(a, b) != 0)
            return ad_error_set(err,
                                "--from %s: %s is '%s' there and '%s' here; the base model "
                                "depends on it, so it cannot be shared",
                                from, k->name, a, b);
    }
    return AD_OK;
}

static int base_accepted(ad_run *src, const char *from, ad_error *err) {
    ad_store_round row;
    int found = 0;
    if (ad_store_round_get(src->st, 0, &row, &found, err) != AD_OK) return AD_ERR;
    return found && row.status == AD_ROUND_ACCEPTED
               ? AD_OK
               : ad_error_set(err, "--from %s: its base (round 0) is not finished yet", from);
}

/* Copies lineage l's base checkpoint; the model's max_seq_len becomes this
 * run's, and so do the run identity and config its trainer state names. */
static int copy_checkpoint(ad_run *src, ad_run *run, size_t l, ad_error *err) {
    char from[AD_RUN_PATH_MAX], to[AD_RUN_PATH_MAX], dir[AD_RUN_PATH_MAX], *stamped = NULL;
    run_ckpt_path(src, l, 0, from, sizeof from);
    run_ckpt_path(run, l, 0, to, sizeof to);
    snprintf(dir, sizeof dir, "%s/ckpt/l%02zu", run->dir, l);
    ad_model *m = NULL;
    ad_vocab *v = calloc(1, sizeof *v);
    ad_adamw opt = {0};
    char *json = NULL;
    int rc =
        v ? ad_checkpoint_load(from, &m, v, &opt, &json, err) : ad_error_set(err, "out of memory");
    if (rc == AD_OK && !opt.m) rc = ad_error_set(err, "%s: checkpoint lacks optimizer state", from);
    if (rc == AD_OK) rc = run_check_identity(src, from, json, err);
    if (rc == AD_OK && !(stamped = run_stamp_state(run, json, 0, l)))
        rc = ad_error_set(err, "%s: trainer state is not a JSON object", from);
    if (rc == AD_OK) {
        m->cfg.max_seq_len = run->max_len;
        rc = ad_mkdir_p(dir, err);
    }
    if (rc == AD_OK) rc = ad_checkpoint_save(to, m, v, &opt, stamped, err);
    free(stamped);
    ad_model_free(m);
    ad_adamw_free(&opt);
    free(json);
    free(v);
    return rc;
}

/* Records round 0 as begun with its optimize stage done for the n_copied
 * lineages, figures from SRC; the others are trained when the run executes. */
static int copy_record(ad_run *src, ad_run *run, size_t n_copied, ad_error *err) {
    const ad_level_list *base = &run->cfg.base_levels;
    int rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) rc = ad_store_round_begin(run->st, 0, err);
    if (rc == AD_OK) rc = ad_store_levels_insert(run->st, 0, "train", base->v, NULL, base->n, err);
    for (size_t l = 0; rc == AD_OK && l < n_copied; l++) {
        static const char *const keys[] = {"loss", "tokens_per_s"};
        char path[AD_RUN_PATH_MAX];
        double v = 0, seconds = 0;
        int found = 0;
        run_ckpt_path(run, l, 0, path, sizeof path);
        rc = ad_store_checkpoint_insert(run->st, 0, (int64_t)l, AD_STAGE_OPTIMIZE, path, -1, err);
        for (size_t k = 0; rc == AD_OK && k < 2; k++) {
            rc = ad_store_stage_metric_get(src->st, 0, AD_STAGE_OPTIMIZE, (int64_t)l, keys[k], &v,
                                           &found, err);
            if (rc == AD_OK && found)
                rc = ad_store_stage_metric(run->st, 0, AD_STAGE_OPTIMIZE, (int64_t)l, keys[k], v,
                                           err);
        }
        if (rc == AD_OK)
            rc = ad_store_stage_seconds(src->st, 0, AD_STAGE_OPTIMIZE, (int64_t)l, &seconds, &found,
                                        err);
        if (rc == AD_OK)
            rc = ad_store_stage_done(run->st, 0, AD_STAGE_OPTIMIZE, (int64_t)l, seconds, err);
    }
    if (rc == AD_OK) return ad_store_commit(run->st, err);
    ad_store_rollback(run->st);
    return AD_ERR;
}

int ad_run_create_from(ad_run **out, const char *dir, const char *config_path,
                       const char *const *overrides, size_t n_overrides, const char *from,
                       ad_error *err) {
    *out = NULL;
    ad_run *src = NULL, *run = NULL;
    ad_run_config cfg = {0};
    int threads = ad_kernels_get_threads(); /* opening SRC applies its run.threads */
    int rc = ad_run_open_reader(&src, from, err);
    ad_kernels_set_threads(threads);
    if (rc == AD_OK) rc = ad_run_config_load(&cfg, config_path, overrides, n_overrides, err);
    if (rc == AD_OK) rc = same_base(&src->cfg, &cfg, from, err);
    if (rc == AD_OK) rc = base_accepted(src, from, err);
    ad_run_config_free(&cfg);
    if (rc == AD_OK) rc = ad_run_create(&run, dir, config_path, overrides, n_overrides, err);
    /* The checks are done: what can fail now is I/O. The run then simply has
     * no round 0 yet, and `resume` would train its base from scratch. */
    size_t n_copied = 0;
    if (rc == AD_OK)
        n_copied = src->cfg.lineages < run->cfg.lineages ? src->cfg.lineages : run->cfg.lineages;
    for (size_t l = 0; rc == AD_OK && l < n_copied; l++)
        rc = copy_checkpoint(src, run, l, err);
    if (rc == AD_OK) rc = copy_record(src, run, n_copied, err);
    if (rc == AD_OK && n_copied == run->cfg.lineages)
        run_log(run, "round 0: base model copied from %s", from);
    else if (rc == AD_OK)
        run_log(run,
                "round 0: base models of lineages 0-%zu copied from %s; lineages %zu-%zu "
                "are trained here",
                n_copied - 1, from, n_copied, run->cfg.lineages - 1);
    ad_run_free(src);
    if (rc != AD_OK) {
        ad_run_free(run);
        return AD_ERR;
    }
    *out = run;
    return AD_OK;
}
