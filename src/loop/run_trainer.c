/* run_trainer.c: a lineage's trainer in a round, shared by the stages that
 * train (optimize, rl): the round's training settings, and getting the trainer
 * ready (a partial checkpoint of this round, a fresh model for round 0, or the
 * parent round's weights and optimizer with a restarted schedule) and saving it
 * with the state a resume needs. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "loop/run_internal.h"
#include "model/checkpoint.h"

ad_train_config run_train_config(const ad_run *run, size_t round) {
    const ad_run_config *c = &run->cfg;
    size_t steps = round ? c->round_steps : c->base_steps;
    ad_train_config tc = ad_train_default_config(steps);
    tc.batch_size = round ? c->round_batch : c->base_batch;
    tc.schedule.peak_lr = round ? c->round_lr : c->base_lr;
    tc.schedule.warmup_steps = (size_t)((round ? c->round_warmup : c->base_warmup) * steps);
    tc.schedule.decay_steps = (size_t)((round ? c->round_decay : c->base_decay) * steps);
    tc.schedule.floor_ratio = c->floor_ratio;
    tc.adamw = (ad_adamw_config){c->beta1, c->beta2, c->eps, c->weight_decay, c->grad_clip};
    return tc;
}

/* The trainer state saved with every checkpoint: the trainer's own fields plus
 * the round and lineage it belongs to. */
static char *state_json(const ad_trainer *tr, size_t round, size_t lineage) {
    char *base = ad_trainer_state_json(tr);
    cJSON *o = base ? cJSON_Parse(base) : NULL;
    free(base);
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "round", (double)round);
    cJSON_AddNumberToObject(o, "lineage", (double)lineage);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int run_save_trainer(ad_run *run, const char *path, ad_trainer *tr, size_t round, size_t l,
                     ad_error *err) {
    char *json = state_json(tr, round, l);
    if (!json) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_save(path, tr->model, &run->vocab, &tr->opt, json, err);
    free(json);
    return rc;
}

/* Loads model + optimizer + trainer state from a checkpoint into a new trainer.
 * When want_round >= 0 the checkpoint must belong to that round (else *found = 0). */
static int load_trainer(ad_run *run, const char *path, const ad_train_config *tc, ad_model **m,
                        ad_trainer *tr, long want_round, int *found, ad_error *err) {
    *found = 0;
    if (!ad_checkpoint_exists(path)) return AD_OK;
    ad_adamw opt = {.cfg = tc->adamw};
    char *json = NULL;
    ad_vocab *v = malloc(sizeof *v);
    if (!v) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_load(path, m, v, &opt, &json, err);
    free(v);
    if (rc == AD_OK) run_fit_max_len(run, *m);
    cJSON *o = rc == AD_OK && json ? cJSON_Parse(json) : NULL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "round");
    if (rc == AD_OK && (!cJSON_IsNumber(r) || !opt.m))
        rc = ad_error_set(err, "%s: checkpoint lacks trainer or optimizer state", path);
    if (rc == AD_OK && want_round >= 0 && (long)r->valuedouble != want_round) {
        ad_model_free(*m); /* a partial checkpoint of another round: not ours */
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
    char path[2300];
    int found = 0;
    size_t round = rr->round;
    run_partial_path(run, l, path, sizeof path);
    if (load_trainer(run, path, tc, m, tr, (long)round, &found, err) != AD_OK) return AD_ERR;
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
    if (load_trainer(run, path, tc, m, tr, -1, &found, err) != AD_OK) return AD_ERR;
    if (!found)
        return ad_error_set(err, "%s: checkpoint of round %zu is missing", path, rr->parent);
    ad_trainer_restart_schedule(tr, &tc->schedule);
    return AD_OK;
}
