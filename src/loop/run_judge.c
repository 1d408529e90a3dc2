/* run_judge.c: the judge stage, in the rounds of a run with judge.train on:
 * train the run's self-taught judge (judge.h) on the run's own history, then
 * score this round's candidates with it, before select.
 *
 * History: every candidate that reached EOS in the accepted rounds before
 * this one, labelled yes when every filter that judged it passed it, unique
 * and the judge's own filter left out (judge.labels = filters:
 * label-free, the judge learns to generalise the vote or the lineages'
 * agreement to single answers) or when the checker accepted it (judge.labels
 * = verifier: the oracle arm). Batches are half yes, half no, drawn with
 * replacement from ad_seed(run, any, round, JUDGE, step, slot).
 *
 * The judge continues from the parent round's judge (weights and optimizer,
 * with a restarted schedule) or starts fresh when there is none. While the
 * history lacks either kind of answer (always in round 1) the judge is not
 * trained and scores nothing: the candidates' scores stay NaN, which the
 * judge filter and pair rule treat as unscored.
 *
 * The stage is short and deterministic, so it has no partial checkpoint: a
 * killed judge stage is redone from its start, with the same bits. Its record:
 * DIR/ckpt/judge/rNNNN, the candidates' scores (samples.score of the
 * acquire rows), its figures and its done marker, in one transaction. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/judge.h"
#include "loop/run_internal.h"
#include "loop/train_driver.h"
#include "model/checkpoint.h"
#include "util/atomic_file.h"
#include "util/progress.h"

typedef struct judge_history {
    ad_vec yes, no; /* ad_example */
    const ad_vocab *vocab;
    size_t max_len;
    int use_checker;
} judge_history;

static void history_free(judge_history *h) {
    ad_vec *v[2] = {&h->yes, &h->no};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < v[k]->n; i++)
            ad_example_free(ad_vec_at(v[k], i));
        ad_vec_free(v[k]);
    }
}

static int history_row(void *vctx, const ad_store_sample *row, ad_error *err) {
    judge_history *h = vctx;
    if (!row->hit_eos) return AD_OK;
    /* the filters' verdict on the answer itself: every filter that judged it
     * passed it, leaving out unique (a duplicate of a kept label is a good
     * answer), sharpen (a right answer that was not the likeliest is still
     * right) and the judge's own filter (it must not teach itself) */
    uint32_t mask = row->filters_ran & ~((1u << AD_FILTER_UNIQUE) | (1u << AD_FILTER_JUDGE) |
                                         (1u << AD_FILTER_SHARPEN));
    int yes = h->use_checker ? row->correct == 1 : (row->filters_passed & mask) == mask;
    ad_example ex;
    if (ad_judge_example(&ex, h->vocab, row->prompt, row->completion, yes, h->max_len, err))
        return AD_ERR;
    if (ad_vec_push(yes ? &h->yes : &h->no, &ex, err) == AD_OK) return AD_OK;
    ad_example_free(&ex);
    return AD_ERR;
}

/* The labelled answers of the accepted rounds before rr. */
static int load_history(ad_run *run, const run_round *rr, judge_history *h, ad_error *err) {
    for (size_t r = 1; r < rr->round; r++) {
        ad_store_round row;
        int found = 0;
        if (ad_store_round_get(run->st, (uint32_t)r, &row, &found, err) != AD_OK) return AD_ERR;
        if (!found || row.status != AD_ROUND_ACCEPTED) continue;
        if (ad_store_samples_foreach(run->st, (uint32_t)r, AD_STAGE_SELECT, history_row, h, err))
            return AD_ERR;
    }
    return AD_OK;
}

void run_judge_path(const ad_run *run, size_t round, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/ckpt/judge/r%04zu", run->dir, round);
}

static ad_train_config judge_train_config(const ad_run_config *c) {
    ad_train_config tc = ad_train_default_config(c->judge_steps);
    tc.batch_size = c->judge_batch;
    tc.bf16 = c->precision == 1;
    tc.schedule.peak_lr = c->judge_lr;
    tc.schedule.floor_ratio = c->floor_ratio;
    tc.adamw = (ad_adamw_config){c->beta1, c->beta2, c->eps, c->weight_decay, c->grad_clip};
    return tc;
}

/* The judge as the parent round left it (restarted schedule), or a fresh one. */
static int judge_prepare(ad_run *run, const run_round *rr, const ad_vocab *jv, ad_model **m,
                         ad_trainer *tr, ad_error *err) {
    const ad_run_config *c = &run->cfg;
    ad_train_config tc = judge_train_config(c);
    char path[2300];
    run_judge_path(run, rr->parent, path, sizeof path);
    if (rr->parent == 0 || !ad_checkpoint_exists(path)) {
        ad_model_config mc = ad_model_default_config();
        mc.n_layers = c->judge_layers;
        mc.n_heads = c->judge_heads;
        mc.d_model = c->judge_dim;
        mc.d_ff = c->judge_ffn;
        mc.vocab_size = jv->size;
        mc.max_seq_len = run->max_len + 1;
        mc.seed = ad_seed(c->seed, AD_SEED_ANY, 0, AD_SEED_INIT, 1, 0);
        if (ad_model_create(m, &mc, err) != AD_OK) return AD_ERR;
        return ad_trainer_init(tr, *m, &tc, err);
    }
    ad_adamw opt = {.cfg = tc.adamw};
    ad_vocab *v = malloc(sizeof *v);
    char *json = NULL;
    int rc = v ? ad_checkpoint_load(path, m, v, &opt, &json, err) : ad_error_set(err, "oom");
    if (rc == AD_OK && (*m)->cfg.max_seq_len < run->max_len + 1)
        (*m)->cfg.max_seq_len = run->max_len + 1;
    if (rc == AD_OK && !opt.m) rc = ad_error_set(err, "%s: no optimizer state", path);
    if (rc == AD_OK) rc = ad_trainer_init(tr, *m, &tc, err);
    if (rc == AD_OK) rc = ad_trainer_adopt_optimizer(tr, &opt, err);
    if (rc == AD_OK && json) rc = ad_trainer_state_parse(tr, json, err);
    if (rc == AD_OK) ad_trainer_restart_schedule(tr, &tc.schedule);
    ad_adamw_free(&opt);
    free(json);
    free(v);
    return rc;
}

typedef struct judge_source {
    const judge_history *h;
    uint64_t seed;
    size_t round, n;
    ad_example *ex;
} judge_source;

/* Slot i of step `step`: a yes-answer for even i, a no-answer for odd i. */
static int judge_fill(void *vctx, size_t step, ad_objective_batch *out, ad_error *err) {
    judge_source *src = vctx;
    for (size_t i = 0; i < src->n; i++) {
        const ad_vec *cls = i % 2 == 0 ? &src->h->yes : &src->h->no;
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(src->seed, AD_SEED_ANY, src->round, AD_SEED_JUDGE, step, i));
        src->ex[i] = *(const ad_example *)ad_vec_at(cls, (size_t)ad_rng_below(&rng, cls->n));
    }
    *out = (ad_objective_batch){.kind = AD_BATCH_SEQUENCES, .seqs = src->ex, .n = src->n};
    (void)err;
    return AD_OK;
}

static void judge_release(void *vctx) {
    (void)vctx; /* the examples are borrowed from the history */
}

/* Trains the judge on the history and saves it as round rr's judge. */
static int judge_train(ad_run *run, const run_round *rr, const ad_vocab *jv, const judge_history *h,
                       ad_model **m, double *loss, ad_error *err) {
    ad_trainer tr = {0};
    int rc = judge_prepare(run, rr, jv, m, &tr, err);
    judge_source src = {h, run->cfg.seed, rr->round, run->cfg.judge_batch, NULL};
    src.ex = calloc(src.n, sizeof *src.ex);
    if (rc == AD_OK && !src.ex) rc = ad_error_set(err, "out of memory");
    char label[64], path[2300], dir[2300];
    snprintf(label, sizeof label, "judge r%zu", rr->round);
    ad_train_session s = ad_train_session_default(ad_objective_find("sft"));
    s.max_skipped = run->cfg.max_skipped;
    s.label = label;
    s.kill_stage = "judge";
    s.kill_round = rr->round;
    ad_batch_source bs = {judge_fill, judge_release, &src};
    ad_train_result res = {0};
    if (rc == AD_OK) rc = ad_train_session_run(&s, &tr, &bs, &res, err);
    *loss = res.last.loss;
    snprintf(dir, sizeof dir, "%s/ckpt/judge", run->dir);
    run_judge_path(run, rr->round, path, sizeof path);
    char *json = rc == AD_OK ? ad_trainer_state_json(&tr) : NULL;
    if (rc == AD_OK && !json) rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = ad_mkdir_p(dir, err);
    if (rc == AD_OK) rc = ad_checkpoint_save(path, *m, jv, &tr.opt, json, err);
    free(json);
    free(src.ex);
    ad_trainer_free(&tr);
    return rc;
}

/* Scores every candidate that reached EOS (the others stay NaN). */
static int judge_score_all(ad_model *m, const ad_vocab *jv, run_candidates *cl, double *scores,
                           ad_error *err) {
    const char **p = malloc((cl->n ? cl->n : 1) * sizeof *p),
               **c = malloc((cl->n ? cl->n : 1) * sizeof *c);
    int rc = p && c ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < cl->n; i++) {
        p[i] = cl->rows[i].prompt;
        c[i] = cl->c[i].hit_eos ? cl->c[i].completion : NULL;
    }
    if (rc == AD_OK) rc = ad_judge_score(m, jv, p, c, cl->n, scores, err);
    free(p);
    free(c);
    return rc;
}

static int record(ad_run *run, size_t round, const run_candidates *cl, const double *scores,
                  const judge_history *h, double loss, int trained, double seconds, ad_error *err) {
    ad_store *st = run->st;
    uint32_t r = (uint32_t)round;
    char path[2300];
    run_judge_path(run, round, path, sizeof path);
    int rc = ad_store_begin(st, err);
    if (rc == AD_OK && trained)
        rc = ad_store_samples_set_score(st, r, AD_STAGE_ACQUIRE, cl->rows, scores, cl->n, err);
    if (rc == AD_OK && trained)
        rc = ad_store_checkpoint_insert(st, r, -1, AD_STAGE_JUDGE, path, -1, err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, AD_STAGE_JUDGE, -1, AD_METRIC_JUDGE_YES, (double)h->yes.n,
                                   err);
    if (rc == AD_OK)
        rc = ad_store_stage_metric(st, r, AD_STAGE_JUDGE, -1, AD_METRIC_JUDGE_NO, (double)h->no.n,
                                   err);
    if (rc == AD_OK && trained)
        rc = ad_store_stage_metric(st, r, AD_STAGE_JUDGE, -1, AD_METRIC_LOSS, loss, err);
    if (rc == AD_OK) rc = ad_store_stage_done(st, r, AD_STAGE_JUDGE, -1, seconds, err);
    if (rc == AD_OK) return ad_store_commit(st, err);
    ad_store_rollback(st);
    return AD_ERR;
}

/* Reads: the round's candidates, the history (select rows of the accepted
 * rounds before it), the parent's judge. Writes: this round's judge, the
 * candidates' scores (rr->cands and the store), its figures. */
int run_stage_judge(ad_run *run, run_round *rr, ad_error *err) {
    int done = 0;
    size_t round = rr->round;
    if (ad_store_stage_is_done(run->st, (uint32_t)round, AD_STAGE_JUDGE, -1, &done, err))
        return AD_ERR;
    if (done) return AD_OK;
    double t0 = ad_now(), loss = NAN;
    ad_vocab *jv = malloc(sizeof *jv);
    judge_history h = {.max_len = run->max_len + 1, .use_checker = run->cfg.judge_labels == 1};
    ad_vec_init(&h.yes, sizeof(ad_example));
    ad_vec_init(&h.no, sizeof(ad_example));
    ad_model *m = NULL;
    double *scores = NULL;
    int rc = jv ? ad_judge_vocab(jv, &run->vocab, err) : ad_error_set(err, "out of memory");
    h.vocab = jv;
    if (rc == AD_OK) rc = run_round_candidates(run, rr, err);
    if (rc == AD_OK) rc = load_history(run, rr, &h, err);
    int trained = rc == AD_OK && h.yes.n > 0 && h.no.n > 0;
    if (rc == AD_OK && !trained)
        run_log(run,
                "judge r%zu: the history has %zu accepted and %zu rejected answers: not "
                "trained, no scores this round",
                round, h.yes.n, h.no.n);
    if (trained) rc = judge_train(run, rr, jv, &h, &m, &loss, err);
    if (trained && rc == AD_OK) {
        scores = malloc((rr->cands->n ? rr->cands->n : 1) * sizeof *scores);
        rc = scores ? judge_score_all(m, jv, rr->cands, scores, err)
                    : ad_error_set(err, "out of memory");
    }
    ad_run_maybe_kill(AD_STAGE_JUDGE, round, 0);
    if (rc == AD_OK)
        rc = record(run, round, rr->cands, scores, &h, loss, trained, ad_now() - t0, err);
    for (size_t i = 0; rc == AD_OK && trained && i < rr->cands->n; i++)
        rr->cands->c[i].score = rr->cands->rows[i].score = scores[i];
    free(scores);
    ad_model_free(m);
    history_free(&h);
    free(jv);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "judge: ");
}

static void judge_reward_path(const ad_run *run, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/ckpt/judge/reward", run->dir);
}

int run_judge_adopt(ad_run *run, ad_error *err) {
    const char *src = run->cfg.rl_judge;
    if (run->cfg.round_kind != 1 || !src || !src[0]) return AD_OK; /* rl rounds only */
    ad_vocab *jv = malloc(sizeof *jv);
    ad_model *m = NULL;
    char dir[AD_RUN_PATH_MAX], path[AD_RUN_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ckpt/judge", run->dir);
    judge_reward_path(run, path, sizeof path);
    int rc = jv ? ad_judge_load(src, &run->vocab, run->max_len + 1, &m, jv, err)
                : ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = ad_mkdir_p(dir, err);
    if (rc == AD_OK) rc = ad_checkpoint_save(path, m, jv, NULL, NULL, err);
    ad_model_free(m);
    free(jv);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "rl.judge: ");
}

int run_judge_reward_load(const ad_run *run, ad_model **m, ad_vocab *jv, ad_error *err) {
    char path[AD_RUN_PATH_MAX];
    judge_reward_path(run, path, sizeof path);
    return ad_judge_load(path, &run->vocab, run->max_len + 1, m, jv, err);
}
