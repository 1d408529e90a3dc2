/* run_select.c: the select stage: judge the round's candidates with the
 * configured filters (length, votes across samples and lineages, confidence,
 * verifier), record every decision, and write the kept labels as the round's
 * self-made dataset. Each candidate's true correctness is also recorded, for
 * reporting only (label accuracy, pass@k, maj@k): it never feeds a decision
 * unless the verifier filter is on. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/filters.h"
#include "loop/metrics.h"
#include "loop/run_internal.h"
#include "util/atomic_file.h"
#include "util/progress.h"

typedef struct cand_list {
    ad_candidate *c;
    ad_store_sample *rows;
    char **prompts;     /* owned copies, per candidate */
    char **completions; /* owned copies, per candidate */
    size_t n, cap;
} cand_list;

static void cands_free(cand_list *cl) {
    for (size_t i = 0; i < cl->n; i++) {
        free(cl->prompts[i]);
        free(cl->completions[i]);
    }
    free(cl->c);
    free(cl->rows);
    free(cl->prompts);
    free(cl->completions);
}

static int grow(cand_list *cl, ad_error *err) {
    size_t nc = cl->cap ? 2 * cl->cap : 1024;
    ad_candidate *c = realloc(cl->c, nc * sizeof *c);
    if (c) cl->c = c;
    ad_store_sample *r = realloc(cl->rows, nc * sizeof *r);
    if (r) cl->rows = r;
    char **p = realloc(cl->prompts, nc * sizeof *p);
    if (p) cl->prompts = p;
    char **q = realloc(cl->completions, nc * sizeof *q);
    if (q) cl->completions = q;
    if (!c || !r || !p || !q) return ad_error_set(err, "out of memory reading candidates");
    cl->cap = nc;
    return AD_OK;
}

static int add_row(void *vctx, const ad_store_sample *row, ad_error *err) {
    cand_list *cl = vctx;
    if (cl->n == cl->cap && grow(cl, err) != AD_OK) return AD_ERR;
    size_t i = cl->n;
    cl->prompts[i] = strdup(row->prompt);
    cl->completions[i] = strdup(row->completion);
    if (!cl->prompts[i] || !cl->completions[i]) {
        free(cl->prompts[i]);
        free(cl->completions[i]);
        return ad_error_set(err, "out of memory reading candidates");
    }
    cl->n++;
    cl->rows[i] = *row;
    cl->rows[i].prompt = cl->prompts[i];
    cl->rows[i].completion = cl->completions[i];
    cl->c[i] = (ad_candidate){.prompt = row->prompt_index, .level = row->level,
                              .lineage = row->lineage, .sample = row->sample_index,
                              .completion = cl->completions[i], .n_tokens = row->n_tokens,
                              .logprob_sum = row->logprob, .hit_eos = row->hit_eos,
                              .correct = -1};
    return AD_OK;
}

/* Verdicts for every candidate (an answer that never reached EOS is wrong). */
static int judge_all(ad_run *run, cand_list *cl, ad_error *err) {
    for (size_t i = 0; i < cl->n; i++) {
        ad_verdict v;
        if (ad_task_verify(run->task, cl->prompts[i], cl->completions[i], &v, err) != AD_OK)
            return AD_ERR;
        cl->c[i].correct = cl->c[i].hit_eos && v.correct;
    }
    return AD_OK;
}

static ad_filter_params filter_params(const ad_run_config *c) {
    ad_filter_params p = ad_filter_default_params();
    p.complete = c->f_complete;
    p.length = c->f_length;
    p.length_shortfall = c->length_shortfall;
    p.vote_samples = c->f_vote_samples;
    p.vote_min_share = c->vote_min_share;
    p.vote_lineages = c->f_vote_lineages;
    p.n_lineages = c->lineages;
    p.vote_min_agree = c->vote_min_agree;
    p.confidence = c->f_confidence;
    p.conf.use_top_fraction = c->confidence_top > 0;
    p.conf.top_fraction = c->confidence_top;
    p.conf.min_mean_logprob = c->confidence_min;
    p.conf.group = (ad_conf_group)c->confidence_group;
    p.verifier = c->f_verifier;
    p.unique = c->f_unique;
    return p;
}

/* The kept labels as JSONL, written atomically before the store marks select done. */
static int write_dataset(ad_run *run, size_t round, const cand_list *cl, ad_error *err) {
    char path[2300];
    run_data_path(run, round, path, sizeof path);
    ad_atomic_file f;
    if (ad_atomic_open(&f, path, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < cl->n; i++) {
        if (!cl->c[i].kept) continue;
        cJSON *o = cJSON_CreateObject();
        char lv[AD_LEVEL_TEXT_MAX];
        cJSON_AddStringToObject(o, "prompt", cl->prompts[i]);
        cJSON_AddStringToObject(o, "completion", cl->completions[i]);
        cJSON_AddStringToObject(o, "level", ad_level_format(cl->c[i].level, lv, sizeof lv));
        cJSON_AddNumberToObject(o, "lineage", (double)cl->c[i].lineage);
        cJSON_AddNumberToObject(o, "logprob", cl->c[i].logprob_sum);
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!text) {
            ad_atomic_abort(&f);
            return ad_error_set(err, "out of memory");
        }
        fprintf(f.fp, "%s\n", text);
        free(text);
    }
    return ad_atomic_commit(&f, err);
}

static int put(ad_run *run, size_t round, const char *key, double v, ad_error *err) {
    return ad_store_stage_metric(run->st, (uint32_t)round, "select", -1, key, v, err);
}

/* Figures of the stage: kept fraction and label accuracy, each filter's pass
 * rate, and (with k >= 2 samples) pass@k, maj@k and diversity. */
static int record_metrics(ad_run *run, size_t round, const cand_list *cl, ad_error *err) {
    ad_filter_tally t;
    ad_filter_count(cl->c, cl->n, &t);
    ad_sample_metrics sm;
    size_t k = run->cfg.samples >= 2 ? run->cfg.samples : 0;
    if (ad_metrics_summarize(cl->c, cl->n, k, &sm, err) != AD_OK) return AD_ERR;
    int rc = put(run, round, "candidates", (double)cl->n, err);
    if (rc == AD_OK) rc = put(run, round, "kept", (double)t.kept, err);
    if (rc == AD_OK) rc = put(run, round, "kept_fraction", sm.kept_fraction.value, err);
    if (rc == AD_OK) rc = put(run, round, "label_accuracy", sm.label_accuracy.value, err);
    if (rc == AD_OK) rc = put(run, round, "greedy_accuracy", sm.accuracy.value, err);
    for (int f = 0; rc == AD_OK && f < AD_FILTER_COUNT; f++) {
        if (!t.judged[f]) continue;
        char key[64];
        snprintf(key, sizeof key, "pass_rate_%s", ad_filter_name((ad_filter_id)f));
        rc = put(run, round, key, (double)t.passed[f] / (double)t.judged[f], err);
    }
    if (rc == AD_OK && k) {
        char key[32];
        snprintf(key, sizeof key, "pass@%zu", k);
        rc = put(run, round, key, sm.pass_at_k.value, err);
        snprintf(key, sizeof key, "maj@%zu", k);
        if (rc == AD_OK) rc = put(run, round, key, sm.maj_at_k.value, err);
        if (rc == AD_OK) rc = put(run, round, "diversity", sm.diversity.value, err);
    }
    if (rc == AD_OK)
        run_log(run, "select r%zu: kept %zu of %zu candidates, label accuracy %.3f, greedy "
                     "accuracy %.3f", round, t.kept, cl->n, sm.label_accuracy.value,
                sm.accuracy.value);
    return rc;
}

int run_stage_select(ad_run *run, size_t round, ad_error *err) {
    int done = 0;
    if (ad_store_stage_is_done(run->st, (uint32_t)round, "select", -1, &done, err)) return AD_ERR;
    if (done) return AD_OK;
    double t0 = ad_now();
    cand_list cl = {0};
    ad_filter_params fp = filter_params(&run->cfg);
    int rc = ad_store_samples_foreach(run->st, (uint32_t)round, "acquire", add_row, &cl, err);
    if (rc == AD_OK) rc = judge_all(run, &cl, err);
    if (rc == AD_OK) rc = ad_filter_run(cl.c, cl.n, &fp, err);
    for (size_t i = 0; rc == AD_OK && i < cl.n; i++) {
        cl.rows[i].filters_ran = cl.c[i].ran;
        cl.rows[i].filters_passed = cl.c[i].passed;
        cl.rows[i].kept = cl.c[i].kept;
        cl.rows[i].correct = cl.c[i].correct;
    }
    if (rc == AD_OK) rc = write_dataset(run, round, &cl, err);
    ad_run_maybe_kill("select", round, 0);
    if (rc == AD_OK) rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) {
        rc = ad_store_samples_insert(run->st, "select", cl.rows, cl.n, err);
        if (rc == AD_OK) rc = record_metrics(run, round, &cl, err);
        if (rc == AD_OK)
            rc = ad_store_stage_done(run->st, (uint32_t)round, "select", -1, ad_now() - t0, err);
        if (rc == AD_OK) rc = ad_store_commit(run->st, err);
        else ad_store_rollback(run->st);
    }
    cands_free(&cl);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "select: ");
}
