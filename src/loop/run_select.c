/* run_select.c: the select stage: judge the round's candidates with the
 * configured filters (length, votes across samples and lineages, confidence,
 * verifier), make preference pairs with the configured pair rule, record
 * every decision and pair, and write the kept labels as the round's self-made
 * dataset. Each candidate's true correctness is also recorded, for reporting
 * only (label accuracy, pair accuracy, pass@k, maj@k): it never feeds a
 * decision unless the verifier filter or the verifier pair rule is on. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/filters.h"
#include "loop/metrics.h"
#include "loop/pairs.h"
#include "loop/run_internal.h"
#include "util/atomic_file.h"
#include "util/progress.h"

#define VERIFY_CHUNK 1024 /* verdicts held at once (~200 KiB) */

int run_verify_answers(ad_run *run, const char *const *prompts, const char *const *answers,
                       size_t n, unsigned char *ok, ad_error *err) {
    ad_verdict *v = malloc(VERIFY_CHUNK * sizeof *v);
    if (!v) return ad_error_set(err, "out of memory verifying candidates");
    int rc = AD_OK;
    for (size_t at = 0; rc == AD_OK && at < n; at += VERIFY_CHUNK) {
        size_t m = n - at < VERIFY_CHUNK ? n - at : VERIFY_CHUNK;
        rc = ad_task_verify_batch(run->task, prompts + at, answers + at, m, v, err);
        if (rc != AD_OK) ad_error_prefix(err, "verifying candidates %zu..%zu: ", at, at + m - 1);
        for (size_t i = 0; rc == AD_OK && i < m; i++)
            ok[at + i] = v[i].correct != 0;
    }
    free(v);
    return rc;
}

int run_verify_candidates(ad_run *run, ad_candidate *c, size_t n,
                          const char *(*prompt_of)(const void *ctx, size_t i), const void *ctx,
                          ad_error *err) {
    const char **ps = calloc(n + 1, sizeof *ps), **as = calloc(n + 1, sizeof *as);
    unsigned char *ok = malloc(n + 1);
    int rc = ps && as && ok ? AD_OK : ad_error_set(err, "out of memory verifying candidates");
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        ps[i] = prompt_of(ctx, i);
        as[i] = c[i].completion;
    }
    if (rc == AD_OK) rc = run_verify_answers(run, ps, as, n, ok, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        c[i].correct = c[i].hit_eos && ok[i];
    free(ps);
    free(as);
    free(ok);
    return rc;
}

static const char *row_prompt(const void *ctx, size_t i) {
    return ((const run_candidates *)ctx)->rows[i].prompt;
}

/* Verdicts for every candidate of the round, spread over the ranks under
 * mpirun (run_dist_verify.c). */
static int check_all(ad_run *run, size_t round, run_candidates *cl, ad_error *err) {
    return run_dist_verify_candidates(run, round, cl->c, cl->n, row_prompt, cl, err);
}

ad_filter_params run_filter_params(const ad_run_config *c) {
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
    p.judge = c->f_judge;
    p.judge_min = c->judge_threshold;
    p.sharpen = c->f_sharpen;
    return p;
}

static ad_pair_params pair_params(const ad_run_config *c) {
    ad_pair_params p = ad_pair_default_params();
    p.per_prompt = c->pairs_per_prompt;
    p.n_lineages = c->lineages;
    p.min_agree = c->pair_min_agree;
    p.min_share = c->pair_min_share;
    p.min_gap = c->pair_min_gap;
    return p;
}

/* The selection artifact: kept labels and pairs, with owned strings. */
static int build_selection(size_t round, const run_candidates *cl, const ad_pair *pairs,
                           size_t n_pairs, const char *rule, run_selection **out, ad_error *err) {
    run_selection *s = run_selection_new();
    int rc = s ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < cl->n; i++)
        if (cl->c[i].kept)
            rc = run_selection_add_label(s, cl->rows[i].prompt, cl->c[i].completion, err);
    for (size_t i = 0; rc == AD_OK && i < n_pairs; i++) {
        const ad_candidate *a = &cl->c[pairs[i].chosen], *b = &cl->c[pairs[i].rejected];
        ad_store_pair row = {.round = (uint32_t)round,
                             .pair_index = i,
                             .rule = rule,
                             .prompt_index = a->prompt,
                             .level = a->level,
                             .prompt = cl->rows[pairs[i].chosen].prompt,
                             .chosen = a->completion,
                             .rejected = b->completion,
                             .chosen_lineage = a->lineage,
                             .chosen_sample = a->sample,
                             .rejected_lineage = b->lineage,
                             .rejected_sample = b->sample,
                             .chosen_correct = a->correct,
                             .rejected_correct = b->correct};
        rc = run_selection_add_pair(s, &row, err);
    }
    if (rc != AD_OK) {
        run_selection_free(s);
        return AD_ERR;
    }
    *out = s;
    return AD_OK;
}

/* The kept labels as JSONL, written atomically before the store marks select done. */
static int write_dataset(ad_run *run, size_t round, const run_candidates *cl, ad_error *err) {
    char path[2300];
    run_data_path(run, round, path, sizeof path);
    ad_atomic_file f;
    if (ad_atomic_open(&f, path, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < cl->n; i++) {
        if (!cl->c[i].kept) continue;
        cJSON *o = cJSON_CreateObject();
        char lv[AD_LEVEL_TEXT_MAX];
        cJSON_AddStringToObject(o, "prompt", cl->rows[i].prompt);
        cJSON_AddStringToObject(o, "completion", cl->c[i].completion);
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
    return ad_store_stage_metric(run->st, (uint32_t)round, AD_STAGE_SELECT, -1, key, v, err);
}

/* Figures of the stage: kept fraction and label accuracy, each filter's pass
 * rate, pairs and pair accuracy, the B-STaR balance score of the kept set
 * (select.bstar_target) and the distinct correct answers per prompt, and
 * (with k >= 2 samples) pass@k, maj@k and diversity. */
static int record_metrics(ad_run *run, size_t round, const run_candidates *cl, const ad_pair *pairs,
                          size_t n_pairs, ad_error *err) {
    ad_filter_tally t;
    ad_filter_count(cl->c, cl->n, &t);
    ad_sample_metrics sm;
    size_t k = run->cfg.samples >= 2 ? run->cfg.samples : 0;
    if (ad_metrics_summarize(cl->c, cl->n, k, &sm, err) != AD_OK) return AD_ERR;
    ad_balance_metrics bm;
    if (ad_balance_summarize(cl->c, cl->n, run->cfg.bstar_target, &bm, err) != AD_OK) return AD_ERR;
    double pair_acc = ad_pairs_accuracy(cl->c, pairs, n_pairs);
    int rc = put(run, round, AD_METRIC_CANDIDATES, (double)cl->n, err);
    if (rc == AD_OK) rc = put(run, round, AD_METRIC_KEPT, (double)t.kept, err);
    if (rc == AD_OK) rc = put(run, round, AD_METRIC_KEPT_FRACTION, sm.kept_fraction.value, err);
    if (rc == AD_OK) rc = put(run, round, AD_METRIC_LABEL_ACCURACY, sm.label_accuracy.value, err);
    if (rc == AD_OK) rc = put(run, round, AD_METRIC_GREEDY_ACCURACY, sm.accuracy.value, err);
    if (rc == AD_OK) rc = put(run, round, AD_METRIC_BSTAR_BALANCE, bm.bstar_balance.value, err);
    if (rc == AD_OK)
        rc = put(run, round, AD_METRIC_DISTINCT_CORRECT, bm.distinct_correct.value, err);
    for (int f = 0; rc == AD_OK && f < AD_FILTER_COUNT; f++) {
        if (!t.judged[f]) continue;
        char key[64];
        snprintf(key, sizeof key, "%s%s", AD_METRIC_PASS_RATE_PREFIX,
                 ad_filter_name((ad_filter_id)f));
        rc = put(run, round, key, (double)t.passed[f] / (double)t.judged[f], err);
    }
    if (rc == AD_OK && run->cfg.pairs[0]) {
        rc = put(run, round, AD_METRIC_PAIRS, (double)n_pairs, err);
        if (rc == AD_OK) rc = put(run, round, AD_METRIC_PAIR_ACCURACY, pair_acc, err);
    }
    if (rc == AD_OK && k) {
        char key[32];
        snprintf(key, sizeof key, "pass@%zu", k);
        rc = put(run, round, key, sm.pass_at_k.value, err);
        snprintf(key, sizeof key, "maj@%zu", k);
        if (rc == AD_OK) rc = put(run, round, key, sm.maj_at_k.value, err);
        if (rc == AD_OK) rc = put(run, round, AD_METRIC_DIVERSITY, sm.diversity.value, err);
    }
    if (rc == AD_OK)
        run_log(run,
                "select r%zu: kept %zu of %zu candidates, label accuracy %.3f, greedy "
                "accuracy %.3f, balance %.3f, distinct correct %.2f",
                round, t.kept, cl->n, sm.label_accuracy.value, sm.accuracy.value,
                bm.bstar_balance.value, bm.distinct_correct.value);
    if (rc == AD_OK && run->cfg.pairs[0])
        run_log(run, "select r%zu: %zu %s pairs, pair accuracy %.3f", round, n_pairs,
                run->cfg.pairs, pair_acc);
    return rc;
}

/* The judge's precision and recall against the checker (reporting only) over
 * the candidates it scored; records nothing when it scored none. */
static int record_judge(ad_run *run, size_t round, const run_candidates *cl, ad_error *err) {
    size_t scored = 0, said_yes = 0, right = 0, both = 0;
    for (size_t i = 0; i < cl->n; i++) {
        const ad_candidate *c = &cl->c[i];
        if (isnan(c->score)) continue;
        int yes = c->score >= run->cfg.judge_threshold;
        scored++;
        said_yes += yes;
        right += c->correct == 1;
        both += yes && c->correct == 1;
    }
    if (!scored) return AD_OK;
    double precision = said_yes ? (double)both / (double)said_yes : NAN;
    double recall = right ? (double)both / (double)right : NAN;
    run_log(run, "select r%zu: judge precision %.3f, recall %.3f over %zu scored answers", round,
            precision, recall, scored);
    int rc = put(run, round, AD_METRIC_JUDGE_PRECISION, precision, err);
    return rc == AD_OK ? put(run, round, AD_METRIC_JUDGE_RECALL, recall, err) : rc;
}

/* The pairs as store rows (strings borrowed from sel). */
static int insert_pairs(ad_run *run, size_t round, const run_selection *sel, ad_error *err) {
    size_t n = sel->pairs.n;
    ad_store_pair *rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) return ad_error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        rows[i] = run_pair_row(ad_vec_at(&sel->pairs, i), round, i);
    int rc = ad_store_pairs_insert(run->st, rows, n, err);
    free(rows);
    return rc;
}

/* Filters, then pairs: fills the decisions in cl and the pairs (malloc'd). */
static int decide(ad_run *run, size_t round, run_candidates *cl, ad_pair **pairs, size_t *n_pairs,
                  ad_error *err) {
    ad_filter_params fp = run_filter_params(&run->cfg);
    *pairs = NULL;
    *n_pairs = 0;
    if (check_all(run, round, cl, err) != AD_OK) return AD_ERR;
    if (ad_filter_run(cl->c, cl->n, &fp, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < cl->n; i++) {
        cl->rows[i].filters_ran = cl->c[i].ran;
        cl->rows[i].filters_passed = cl->c[i].passed;
        cl->rows[i].kept = cl->c[i].kept;
        cl->rows[i].correct = cl->c[i].correct;
    }
    if (!run->cfg.pairs[0]) return AD_OK;
    const ad_pair_rule *rule = ad_pair_rule_find(run->cfg.pairs);
    if (!rule) return ad_error_set(err, "select.pairs: unknown pair rule '%s'", run->cfg.pairs);
    ad_pair_params pp = pair_params(&run->cfg);
    return ad_pairs_make(rule, cl->c, cl->n, &pp, pairs, n_pairs, err);
}

/* Reads: the round's candidates. Writes: the selection (kept labels, pairs),
 * every candidate's decisions, the dataset file and the stage's figures. */
int run_stage_select(ad_run *run, run_round *rr, ad_error *err) {
    int done = 0;
    size_t round = rr->round;
    if (ad_store_stage_is_done(run->st, (uint32_t)round, AD_STAGE_SELECT, -1, &done, err))
        return AD_ERR;
    if (done) return AD_OK;
    double t0 = ad_now();
    ad_pair *pairs = NULL;
    size_t n_pairs = 0;
    int rc = run_round_candidates(run, rr, err);
    run_candidates *cl = rr->cands;
    if (rc == AD_OK) rc = decide(run, round, cl, &pairs, &n_pairs, err);
    if (rc == AD_OK) rc = build_selection(round, cl, pairs, n_pairs, run->cfg.pairs, &rr->sel, err);
    if (rc == AD_OK) rc = write_dataset(run, round, cl, err);
    ad_run_maybe_kill(AD_STAGE_SELECT, round, 0);
    if (rc == AD_OK) rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) {
        rc = ad_store_samples_insert(run->st, AD_STAGE_SELECT, cl->rows, cl->n, err);
        if (rc == AD_OK) rc = insert_pairs(run, round, rr->sel, err);
        if (rc == AD_OK) rc = record_metrics(run, round, cl, pairs, n_pairs, err);
        if (rc == AD_OK) rc = record_judge(run, round, cl, err);
        if (rc == AD_OK)
            rc = ad_store_stage_done(run->st, (uint32_t)round, AD_STAGE_SELECT, -1, ad_now() - t0,
                                     err);
        if (rc == AD_OK)
            rc = ad_store_commit(run->st, err);
        else
            ad_store_rollback(run->st);
    }
    free(pairs);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "select: ");
}
