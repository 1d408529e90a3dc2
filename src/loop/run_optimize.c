/* run_optimize.c: the optimize stage: supervised training of each lineage on
 * the mixture of base data and the accepted rounds' self-made labels
 * (rejection-sampling fine-tuning when the verifier filter is on), continuing
 * from the last accepted round's weights and optimizer state with a fresh
 * warmup-stable-decay schedule. Round 0 is base training from scratch.
 *
 * Batches are pure functions of (seed, lineage, round, step, slot), and a
 * partial checkpoint is written every run.save_every steps, so a killed stage
 * resumes mid-way and ends bit-identical. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "loop/complete.h"
#include "loop/mixture.h"
#include "loop/run_internal.h"
#include "model/checkpoint.h"
#include "util/atomic_file.h"
#include "util/progress.h"

#define BASE_VIRTUAL_EXAMPLES ((size_t)1 << 40)

typedef struct load_ctx {
    ad_run *run;
    run_set *set;
    size_t cap;
} load_ctx;

static int add_kept(void *vctx, const ad_store_sample *row, ad_error *err) {
    load_ctx *ctx = vctx;
    if (!row->kept) return AD_OK;
    run_set *s = ctx->set;
    if (s->n_examples == ctx->cap) {
        size_t nc = ctx->cap ? 2 * ctx->cap : 256;
        ad_example *e = realloc(s->examples, nc * sizeof *e);
        if (!e) return ad_error_set(err, "out of memory loading round data");
        s->examples = e;
        ctx->cap = nc;
    }
    if (ad_example_encode(&s->examples[s->n_examples], &ctx->run->vocab, row->prompt,
                          row->completion, ctx->run->max_len, err) != AD_OK)
        return AD_ERR;
    s->n_examples++;
    return AD_OK;
}

int run_sets_add_round(ad_run *run, size_t round, size_t n_levels, ad_error *err) {
    run_set *sets = realloc(run->sets, (run->n_sets + 1) * sizeof *sets);
    if (!sets) return ad_error_set(err, "out of memory");
    run->sets = sets;
    run_set *s = &sets[run->n_sets];
    *s = (run_set){.round = round, .n_levels = n_levels ? n_levels : 1};
    run->n_sets++;
    if (round == 0) {
        s->n_levels = run->cfg.base_levels.n;
        s->n_examples = BASE_VIRTUAL_EXAMPLES;
        return AD_OK;
    }
    load_ctx ctx = {run, s, 0};
    return ad_store_samples_foreach(run->st, (uint32_t)round, "select", add_kept, &ctx, err);
}

/* Rebuilds the sets for optimizing `round`: base + accepted rounds before it +
 * the round itself. */
static int build_sets(ad_run *run, size_t round, ad_error *err) {
    for (size_t i = 0; i < run->n_sets; i++) {
        for (size_t j = 0; run->sets[i].examples && j < run->sets[i].n_examples; j++)
            ad_example_free(&run->sets[i].examples[j]);
        free(run->sets[i].examples);
    }
    run->n_sets = 0;
    if (run_sets_add_round(run, 0, 0, err) != AD_OK) return AD_ERR;
    ad_store_round_row *rows = NULL;
    size_t n = 0;
    if (ad_store_rounds(run->st, &rows, &n, err) != AD_OK) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; i < n && rc == AD_OK; i++) {
        size_t r = rows[i].round;
        if (r == 0 || r > round || (r < round && rows[i].status != AD_ROUND_ACCEPTED)) continue;
        ad_level *lv = NULL;
        size_t nl = 0;
        rc = ad_store_levels_get(run->st, (uint32_t)r, "train", &lv, &nl, err);
        free(lv);
        if (rc == AD_OK) rc = run_sets_add_round(run, r, nl, err);
    }
    free(rows);
    return rc;
}

static ad_train_config train_config(const ad_run *run, size_t round) {
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

static int save_state(ad_run *run, const char *path, ad_trainer *tr, size_t round, size_t l,
                      ad_error *err) {
    char *json = state_json(tr, round, l);
    if (!json) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_save(path, tr->model, &run->vocab, &tr->opt, json, err);
    free(json);
    return rc;
}

/* Loads model + optimizer + trainer state from a checkpoint into a new trainer.
 * When want_round >= 0 the checkpoint must belong to that round (else *found = 0). */
static int load_trainer(ad_run *run, const char *path, const ad_train_config *tc,
                        ad_model **m, ad_trainer *tr, long want_round, int *found, ad_error *err) {
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
 * round, else round 0's fresh model, else the last accepted round's state with
 * a restarted schedule. *parent is the round it continues from (-1: none). */
static int prepare_trainer(ad_run *run, size_t round, size_t l, const ad_train_config *tc,
                           ad_model **m, ad_trainer *tr, long *parent, ad_error *err) {
    char path[2300];
    int found = 0;
    size_t last = 0;
    if (round > 0 && run_last_accepted(run, round, &last, err) != AD_OK) return AD_ERR;
    *parent = round > 0 ? (long)last : -1;
    run_partial_path(run, l, path, sizeof path);
    if (load_trainer(run, path, tc, m, tr, (long)round, &found, err) != AD_OK) return AD_ERR;
    if (found) {
        run_log(run, "optimize r%zu l%zu: resuming at step %zu", round, l, tr->sched_step);
        return AD_OK;
    }
    if (round == 0) {
        ad_model_config mc = ad_model_default_config();
        const ad_run_config *c = &run->cfg;
        mc.n_layers = c->layers;
        mc.n_heads = c->heads;
        mc.d_model = c->dim;
        mc.d_ff = c->ffn;
        mc.vocab_size = run->vocab.size;
        mc.max_seq_len = run->max_len;
        mc.pos = c->pos ? AD_POS_ROPE : AD_POS_NONE;
        mc.rope_theta = c->rope_theta;
        mc.tie_embeddings = c->tie;
        mc.seed = run_lineage_seed(run, l);
        if (ad_model_create(m, &mc, err) != AD_OK) return AD_ERR;
        return ad_trainer_init(tr, *m, tc, err);
    }
    run_ckpt_path(run, l, last, path, sizeof path);
    if (load_trainer(run, path, tc, m, tr, -1, &found, err) != AD_OK) return AD_ERR;
    if (!found) return ad_error_set(err, "%s: checkpoint of round %zu is missing", path, last);
    ad_trainer_restart_schedule(tr, &tc->schedule);
    return AD_OK;
}

/* Fills the examples of one step. Base examples are generated (owned[i] = 1);
 * round examples are borrowed from their set. */
static int step_examples(ad_run *run, const ad_mixture *mix, size_t l, size_t step,
                         ad_example *ex, int *owned, size_t n, ad_problem *scratch,
                         ad_error *err) {
    for (size_t i = 0; i < n; i++) {
        ad_mixture_pick pick = ad_mixture_draw(mix, step, i);
        const run_set *s = &run->sets[pick.set];
        owned[i] = s->examples == NULL;
        if (!owned[i]) {
            ex[i] = s->examples[pick.example];
            continue;
        }
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(run->cfg.seed, l, 0, AD_SEED_BASE, 0, pick.example));
        const ad_level_list *lv = &run->cfg.base_levels;
        ad_level level = lv->v[ad_rng_below(&rng, lv->n)];
        if (ad_labelled_example(run->base_task, &run->vocab, run->max_len, level, &rng, scratch,
                                &ex[i], err) != AD_OK)
            return AD_ERR;
    }
    return AD_OK;
}

/* Trains from tr->sched_step to the end of the schedule, writing partial
 * checkpoints. Fills the loss of the last step and the tokens seen. */
static int train_steps(ad_run *run, size_t round, size_t l, ad_trainer *tr,
                       const ad_mixture *mix, double *loss, double *tokens, ad_error *err) {
    size_t n = tr->cfg.batch_size, total = tr->cfg.schedule.total_steps;
    ad_example *ex = calloc(n, sizeof *ex);
    int *owned = calloc(n, sizeof *owned);
    ad_problem scratch = {0};
    char label[64], partial[2300];
    snprintf(label, sizeof label, "optimize r%zu l%zu", round, l);
    run_partial_path(run, l, partial, sizeof partial);
    ad_progress prog;
    ad_progress_begin(&prog, label, total, "tok");
    int rc = ex && owned ? AD_OK : ad_error_set(err, "out of memory");
    double ema = -1;
    for (size_t s = tr->sched_step; s < total && rc == AD_OK; s++) {
        ad_run_maybe_kill("optimize", round, s);
        ad_step_stats st;
        rc = step_examples(run, mix, l, s, ex, owned, n, &scratch, err);
        if (rc == AD_OK) rc = ad_trainer_step(tr, ex, n, &st, err);
        for (size_t i = 0; ex && i < n; i++)
            if (owned[i]) ad_example_free(&ex[i]);
        if (rc != AD_OK) break;
        *tokens += (double)st.n_tokens;
        *loss = st.loss; /* the last step's loss: the same after any resume */
        ema = ema < 0 ? st.loss : 0.9 * ema + 0.1 * st.loss;
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f lr %.1e", ema, st.lr);
        ad_progress_update(&prog, s + 1, *tokens, extra);
        if ((s + 1) % run->cfg.save_every == 0 && s + 1 < total)
            rc = save_state(run, partial, tr, round, l, err);
    }
    if (rc == AD_OK) ad_progress_end(&prog, *tokens, NULL);
    ad_problem_free(&scratch);
    free(ex);
    free(owned);
    return rc;
}

/* Records the finished lineage: checkpoint row, figures and the done marker in
 * one transaction, after the checkpoint files are durable. */
static int record_lineage(ad_run *run, size_t round, size_t l, const char *path, long parent,
                          double loss, double tokens, double seconds, ad_error *err) {
    int rc = ad_store_begin(run->st, err);
    if (rc == AD_OK)
        rc = ad_store_checkpoint_insert(run->st, (uint32_t)round, (int64_t)l, "optimize", path,
                                        parent, err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(run->st, (uint32_t)round, "optimize", (int64_t)l, "loss", loss,
                                   err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(run->st, (uint32_t)round, "optimize", (int64_t)l,
                                   "tokens_per_s", seconds > 0 ? tokens / seconds : 0, err);
    if (rc == AD_OK)
        rc = ad_store_stage_done(run->st, (uint32_t)round, "optimize", (int64_t)l, seconds, err);
    if (rc == AD_OK) return ad_store_commit(run->st, err);
    ad_store_rollback(run->st);
    return AD_ERR;
}

static int optimize_lineage(ad_run *run, size_t round, size_t l, ad_error *err) {
    ad_train_config tc = train_config(run, round);
    ad_model *m = NULL;
    ad_trainer tr = {0};
    ad_mixture mix = {0};
    long parent = -1;
    double loss = 0, tokens = 0, t0 = ad_now();
    char path[2300], dir[2300];
    int rc = prepare_trainer(run, round, l, &tc, &m, &tr, &parent, err);
    ad_mixture_set *ms = calloc(run->n_sets, sizeof *ms);
    if (rc == AD_OK && !ms) rc = ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < run->n_sets; i++)
        ms[i] = (ad_mixture_set){run->sets[i].n_examples, run->sets[i].n_levels};
    uint64_t seed = ad_seed(run->cfg.seed, l, round, AD_SEED_TRAIN, 0, 0);
    if (rc == AD_OK) rc = ad_mixture_init(&mix, ms, run->n_sets, round ? run->cfg.p_new : 1.0, seed, err);
    if (rc == AD_OK) rc = train_steps(run, round, l, &tr, &mix, &loss, &tokens, err);
    run_ckpt_path(run, l, round, path, sizeof path);
    snprintf(dir, sizeof dir, "%s/ckpt/l%02zu", run->dir, l);
    if (rc == AD_OK) rc = ad_mkdir_p(dir, err);
    if (rc == AD_OK) rc = save_state(run, path, &tr, round, l, err);
    ad_run_maybe_kill("optimize-saved", round, 0);
    if (rc == AD_OK)
        rc = record_lineage(run, round, l, path, parent, loss, tokens, ad_now() - t0, err);
    ad_mixture_free(&mix);
    free(ms);
    ad_trainer_free(&tr);
    ad_model_free(m);
    return rc;
}

int run_stage_optimize(ad_run *run, size_t round, ad_error *err) {
    int built = 0;
    for (size_t l = 0; l < run->cfg.lineages; l++) {
        int done = 0;
        if (ad_store_stage_is_done(run->st, (uint32_t)round, "optimize", (int64_t)l, &done, err))
            return AD_ERR;
        if (done) continue;
        if (!built && build_sets(run, round, err) != AD_OK) return AD_ERR;
        built = 1;
        if (optimize_lineage(run, round, l, err) != AD_OK)
            return ad_error_prefix(err, "optimize, lineage %zu: ", l);
    }
    return AD_OK;
}
