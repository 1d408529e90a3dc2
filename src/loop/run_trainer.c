/* run_trainer.c: a lineage's trainer in a round, shared by the stages that
 * train (optimize, rl): the round's training settings, and getting the trainer
 * ready (a partial checkpoint of this round, a fresh model for round 0, or the
 * parent round's weights and optimizer with a restarted schedule) and saving it
 * with the state a resume needs.
 *
 * Every checkpoint's trainer state names the run ("run": the store's run
 * identity) and the config ("config": a hash of the resolved config text) it
 * was made under. A partial checkpoint is a resume point only for the same
 * run, config and round: a directory reused after its run.db was deleted, or
 * a config edited between a kill and a resume, leaves partials that would
 * otherwise be resumed into a model of other dimensions, seed or schedule. A
 * round checkpoint is checked for the run only, as a run's config may grow
 * (more rounds) between rounds. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/run_internal.h"
#include "model/checkpoint.h"

int32_t run_levels_top(const ad_level *lv, size_t n) {
    int32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        if (lv[i].a > top) top = lv[i].a;
        if (lv[i].b != AD_LEVEL_SCALAR && lv[i].b > top) top = lv[i].b;
    }
    return top;
}

/* round.lr, or past round.lr_level lr x lr_level / level: the step size that
 * kept long rounds stable falls with the length trained (README, issue 15). */
static float round_peak_lr(const ad_run_config *c, int32_t top_level) {
    if (c->round_lr_level == 0 || top_level <= (int32_t)c->round_lr_level) return c->round_lr;
    return (float)((double)c->round_lr * (double)c->round_lr_level / (double)top_level);
}

void run_round_set_top_level(ad_run *run, run_round *rr, const ad_level *lv, size_t n) {
    rr->top_level = run_levels_top(lv, n);
    float lr = round_peak_lr(&run->cfg, rr->top_level);
    if (rr->round && lr != run->cfg.round_lr)
        run_log(run, "r%zu: round lr %.3g (round.lr %.3g x %zu / level %d)", rr->round, (double)lr,
                (double)run->cfg.round_lr, run->cfg.round_lr_level, (int)rr->top_level);
}

int run_round_top_level(ad_run *run, run_round *rr, ad_error *err) {
    ad_level *lv = NULL;
    size_t n = 0;
    if (rr->round == 0) return AD_OK;
    if (ad_store_levels_get(run->st, (uint32_t)rr->round, "train", &lv, &n, err) != AD_OK)
        return AD_ERR;
    run_round_set_top_level(run, rr, lv, n);
    free(lv);
    return AD_OK;
}

ad_train_config run_train_config(const ad_run *run, const run_round *rr) {
    const ad_run_config *c = &run->cfg;
    size_t round = rr->round;
    size_t steps = round ? c->round_steps : c->base_steps;
    ad_train_config tc = ad_train_default_config(steps);
    tc.batch_size = round ? c->round_batch : c->base_batch;
    tc.pack = c->pack;
    tc.bf16 = c->precision == 1;
    tc.schedule.peak_lr = round ? round_peak_lr(c, rr->top_level) : c->base_lr;
    tc.schedule.warmup_steps = (size_t)((round ? c->round_warmup : c->base_warmup) * steps);
    tc.schedule.decay_steps = (size_t)((round ? c->round_decay : c->base_decay) * steps);
    tc.schedule.floor_ratio = c->floor_ratio;
    tc.adamw = (ad_adamw_config){c->beta1, c->beta2, c->eps, c->weight_decay, c->grad_clip};
    return tc;
}

/* 16 hex digits, as checkpoints name runs and configs (a JSON number would
 * lose the low bits). */
static void hex64(uint64_t v, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

char *run_stamp_state(const ad_run *run, const char *json, size_t round, size_t lineage) {
    cJSON *o = json ? cJSON_Parse(json) : cJSON_CreateObject();
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    char id[17], cfg[17];
    hex64(run->identity, id);
    hex64(run->config_hash, cfg);
    static const char *const keys[] = {"run", "config", "round", "lineage"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, keys[i]);
    cJSON_AddNumberToObject(o, "round", (double)round);
    cJSON_AddNumberToObject(o, "lineage", (double)lineage);
    cJSON_AddStringToObject(o, "run", id);
    cJSON_AddStringToObject(o, "config", cfg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int run_save_trainer(ad_run *run, const char *path, ad_trainer *tr, size_t round, size_t l,
                     ad_error *err) {
    char *base = ad_trainer_state_json(tr);
    char *json = base ? run_stamp_state(run, base, round, l) : NULL;
    free(base);
    if (!json) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_save(path, tr->model, &run->vocab, &tr->opt, json, err);
    free(json);
    return rc;
}

/* Where a checkpoint's trainer state says it belongs, against this run. */
typedef enum ckpt_owner {
    OWNER_THIS,    /* this run (and, when asked, this config) */
    OWNER_UNNAMED, /* written before checkpoints named their run */
    OWNER_RUN,     /* another run */
    OWNER_CONFIG,  /* this run under another config */
} ckpt_owner;

/* A "run"/"config" key as 16 hex digits; 0 when absent or malformed. */
static int state_hex(const cJSON *o, const char *key, uint64_t *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *s = cJSON_GetStringValue(it);
    if (!s || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16) return 0;
    *v = strtoull(s, NULL, 16);
    return 1;
}

static ckpt_owner owner_of(const ad_run *run, const cJSON *o, int check_config, char *their,
                           size_t cap) {
    uint64_t id = 0, cfg = 0;
    int has_id = state_hex(o, "run", &id), has_cfg = state_hex(o, "config", &cfg);
    snprintf(their, cap, "run %016llx, config %016llx", (unsigned long long)id,
             (unsigned long long)cfg);
    if (!has_id && !cJSON_GetObjectItemCaseSensitive(o, "run")) return OWNER_UNNAMED;
    if (!has_id || id != run->identity) return OWNER_RUN;
    if (check_config && (!has_cfg || cfg != run->config_hash)) return OWNER_CONFIG;
    return OWNER_THIS;
}

int run_check_identity(const ad_run *run, const char *path, const char *json, ad_error *err) {
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    char their[80];
    ckpt_owner who = o ? owner_of(run, o, 0, their, sizeof their) : OWNER_UNNAMED;
    cJSON_Delete(o);
    if (who != OWNER_RUN) return AD_OK;
    return ad_error_set(err,
                        "%s belongs to another run (%s; this run is %016llx): refusing to "
                        "build on it",
                        path, their, (unsigned long long)run->identity);
}

/* A non-negative integer key of a trainer state, range-checked before the
 * cast (a crafted 1e300 or -1 is an error, not a wrapped number). */
static int state_index(const cJSON *o, const char *key, const char *path, size_t *out,
                       ad_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return ad_error_set(err, "%s/trainer_state.json: \"%s\" must be a non-negative integer",
                            path, key);
    *out = (size_t)d;
    return AD_OK;
}

/* Whether a partial checkpoint's state (o) is this round's and lineage's of
 * this run and config. One that is not is not adopted, and is logged when it is another
 * run's or this round's (a partial of an earlier round is merely stale:
 * every finished round leaves one). */
static int partial_fits(ad_run *run, const cJSON *o, const char *path, size_t want_round,
                        size_t lineage, int *fits, ad_error *err) {
    size_t round = 0, l = 0;
    char their[80];
    *fits = 0;
    if (state_index(o, "round", path, &round, err) != AD_OK ||
        state_index(o, "lineage", path, &l, err) != AD_OK)
        return AD_ERR;
    ckpt_owner who = owner_of(run, o, 1, their, sizeof their);
    const char *why = who == OWNER_RUN       ? "belongs to another run"
                      : who == OWNER_CONFIG  ? "was written under another config"
                      : who == OWNER_UNNAMED ? "names no run (an older autodidact wrote it)"
                                             : NULL;
    if (why && (who == OWNER_RUN || round == want_round))
        run_log(run,
                "optimize r%zu l%zu: %s %s (%s; this run %016llx, config %016llx): not "
                "resuming from it",
                want_round, lineage, path, why, their, (unsigned long long)run->identity,
                (unsigned long long)run->config_hash);
    *fits = !why && round == want_round && l == lineage;
    return AD_OK;
}

/* Loads model + optimizer + trainer state from a checkpoint into a new trainer.
 * A partial checkpoint (partial = 1) must be this run's, config's and round's
 * (else *found = 0); any other must be this run's (else an error). */
static int load_trainer(ad_run *run, const char *path, const ad_train_config *tc, ad_model **m,
                        ad_trainer *tr, int partial, size_t round, size_t lineage, int *found,
                        ad_error *err) {
    *found = 0;
    if (!ad_checkpoint_exists(path)) return AD_OK;
    ad_adamw opt = {.cfg = tc->adamw};
    char *json = NULL;
    ad_vocab *v = malloc(sizeof *v);
    if (!v) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_load(path, m, v, &opt, &json, err), fits = 1;
    free(v);
    if (rc == AD_OK) run_fit_max_len(run, *m);
    cJSON *o = rc == AD_OK && json ? cJSON_Parse(json) : NULL;
    if (rc == AD_OK && (!cJSON_IsObject(o) || !opt.m))
        rc = ad_error_set(err, "%s: checkpoint lacks trainer or optimizer state", path);
    if (rc == AD_OK && partial) rc = partial_fits(run, o, path, round, lineage, &fits, err);
    if (rc == AD_OK && !partial) rc = run_check_identity(run, path, json, err);
    if (rc == AD_OK && !fits) {
        ad_model_free(*m); /* not ours to resume from */
        *m = NULL;
    } else if (rc == AD_OK) {
        rc = ad_trainer_init(tr, *m, tc, err);
        if (rc == AD_OK) rc = ad_trainer_adopt_optimizer(tr, &opt, err);
        if (rc == AD_OK) rc = ad_trainer_state_parse(tr, json, err);
        if (rc == AD_OK) *found = 1;
    }
    cJSON_Delete(o);
    ad_adamw_free(&opt);
    free(json);
    return rc;
}

/* Gets the trainer ready for (round, lineage): a partial checkpoint of this
 * round, else round 0's fresh model, else the parent round's state with a
 * restarted schedule. *resumed = 1 for a partial checkpoint. */
int run_prepare_trainer(ad_run *run, const run_round *rr, size_t l, const ad_train_config *tc,
                        ad_model **m, ad_trainer *tr, int *resumed, ad_error *err) {
    char path[AD_RUN_PATH_MAX];
    int found = 0;
    size_t round = rr->round;
    run_partial_path(run, l, path, sizeof path);
    /* A kill during the partial's last save leaves partial.old for good. */
    if (ad_checkpoint_tidy(path, err) != AD_OK) return AD_ERR;
    if (load_trainer(run, path, tc, m, tr, 1, round, l, &found, err) != AD_OK) return AD_ERR;
    *resumed = found;
    if (found) {
        run_log(run, "optimize r%zu l%zu: resuming at step %zu", round, l, tr->sched_step);
        return AD_OK;
    }
    if (round == 0) {
        ad_model_config mc = ad_run_model_config(&run->cfg, run->vocab.size, run->max_len);
        mc.seed = run_lineage_seed(run, l);
        if (ad_model_create(m, &mc, err) != AD_OK) return AD_ERR;
        return ad_trainer_init(tr, *m, tc, err);
    }
    run_ckpt_path(run, l, rr->parent, path, sizeof path);
    if (load_trainer(run, path, tc, m, tr, 0, rr->parent, l, &found, err) != AD_OK) return AD_ERR;
    if (!found)
        return ad_error_set(err, "%s: checkpoint of round %zu is missing", path, rr->parent);
    ad_trainer_restart_schedule(tr, &tc->schedule);
    return AD_OK;
}
