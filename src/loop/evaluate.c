/* evaluate.c: greedy decoding of held-out problems and per-level accuracy;
 * best-of-k over sampled answers (chosen by likelihood or by vote) and pass@k. */
#include "loop/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loop/complete.h"
#include "loop/judge.h"
#include "util/progress.h"

int ad_eval_problem(const ad_task *t, ad_level lv, uint64_t seed, size_t i, ad_problem *p,
                    ad_error *err) {
    ad_rng rng;
    ad_rng_seed(&rng, ad_seed(seed, AD_SEED_ANY, AD_SEED_ANY, AD_SEED_EVAL,
                              ad_seed_level_key(lv.a, lv.b), i));
    return ad_task_generate(t, lv, &rng, p, err);
}

static void prompts_free(char **prompts, size_t n) {
    for (size_t i = 0; prompts && i < n; i++)
        free(prompts[i]);
    free(prompts);
}

/* Held-out prompts first .. first + n - 1 of level lv (malloc'd, freed with
 * prompts_free). On error nothing is allocated. */
static int level_prompts(const ad_task *t, ad_level lv, uint64_t seed, size_t first, size_t n,
                         char ***out, ad_error *err) {
    char **prompts = calloc(n ? n : 1, sizeof *prompts);
    ad_problem p = {0};
    int rc = prompts ? AD_OK : ad_error_set(err, "out of memory evaluating %zu problems", n);
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        rc = ad_eval_problem(t, lv, seed, first + i, &p, err);
        if (rc == AD_OK && !(prompts[i] = strdup(p.prompt.s)))
            rc = ad_error_set(err, "out of memory");
    }
    ad_problem_free(&p);
    if (rc != AD_OK) {
        prompts_free(prompts, n);
        return AD_ERR;
    }
    *out = prompts;
    return AD_OK;
}

static void completions_free(ad_completion *outs, size_t n) {
    for (size_t i = 0; outs && i < n; i++)
        ad_completion_free(&outs[i]);
    free(outs);
}

/* right[j] = 1 when outs[j] reached EOS and the task's verifier accepts its
 * text; outs[j] answers prompts[j % n_prompts]. One batch: an external
 * verifier checks them in parallel. */
static int completions_right(const ad_task *t, char *const *prompts, size_t n_prompts,
                             const ad_completion *outs, size_t n, int *right, ad_error *err) {
    const char **ps = calloc(n ? n : 1, sizeof *ps);
    const char **as = calloc(n ? n : 1, sizeof *as);
    ad_verdict *v = malloc((n ? n : 1) * sizeof *v);
    int rc = ps && as && v ? AD_OK : ad_error_set(err, "out of memory verifying %zu answers", n);
    for (size_t j = 0; rc == AD_OK && j < n; j++) {
        ps[j] = prompts[j % n_prompts];
        as[j] = outs[j].text;
    }
    if (rc == AD_OK) rc = ad_task_verify_batch(t, ps, as, n, v, err);
    for (size_t j = 0; rc == AD_OK && j < n; j++)
        right[j] = outs[j].hit_eos && v[j].correct;
    free(ps);
    free(as);
    free(v);
    return rc;
}

/* Greedy answers to the n prompts: out[i] for prompts[i] (right, log-prob,
 * tokens, and an equal share of the decoding's wall time). */
static int greedy_outcomes(ad_model *m, const ad_vocab *v, const ad_task *t, char *const *prompts,
                           size_t n, ad_eval_outcome *out, ad_error *err) {
    ad_completion *outs = calloc(n ? n : 1, sizeof *outs);
    int *right = malloc((n ? n : 1) * sizeof *right);
    if (!outs || !right) {
        free(outs);
        free(right);
        return ad_error_set(err, "out of memory evaluating %zu problems", n);
    }
    ad_sample_params sp = ad_sample_default_params();
    double t0 = ad_now();
    int rc = ad_complete_prompts(m, v, t, (const char *const *)prompts, n, 1, &sp, 0, outs, err);
    double share = n ? (ad_now() - t0) / (double)n : 0;
    if (rc == AD_OK) rc = completions_right(t, prompts, n, outs, n, right, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        out[i] = (ad_eval_outcome){.logprob_sum = outs[i].logprob_sum,
                                   .seconds = share,
                                   .n_tokens = outs[i].n_tokens,
                                   .right = right[i]};
    free(right);
    completions_free(outs, n);
    return rc;
}

/* Level lv's figures from its n outcomes, summed in problem order. This
 * function can't fail. */
static ad_level_accuracy level_summary(ad_level lv, const ad_eval_outcome *o, size_t n) {
    size_t correct = 0;
    double lp = 0, toks = 0, dt = 0;
    for (size_t i = 0; i < n; i++) {
        correct += o[i].right != 0;
        lp += o[i].logprob_sum;
        toks += (double)o[i].n_tokens;
        dt += o[i].seconds;
    }
    return (ad_level_accuracy){lv,
                               n,
                               correct,
                               n ? (double)correct / (double)n : 0,
                               n ? lp / (double)n : 0,
                               dt > 0 ? toks / dt : 0};
}

/* Greedy decoding of the n prompts of level lv; fills acc. */
static int greedy_level(ad_model *m, const ad_vocab *v, const ad_task *t, ad_level lv,
                        char *const *prompts, size_t n, ad_level_accuracy *acc, ad_error *err) {
    ad_eval_outcome *o = malloc((n ? n : 1) * sizeof *o);
    if (!o) return ad_error_set(err, "out of memory evaluating %zu problems", n);
    int rc = greedy_outcomes(m, v, t, prompts, n, o, err);
    if (rc == AD_OK) *acc = level_summary(lv, o, n);
    free(o);
    return rc;
}

int ad_evaluate_range(ad_model *m, const ad_vocab *v, const ad_task *t, const ad_level *levels,
                      size_t n_levels, size_t n_per_level, uint64_t seed, size_t from, size_t to,
                      ad_eval_outcome *out, ad_error *err) {
    if (from > to || to > n_levels * n_per_level)
        return ad_error_set(err, "evaluate: problems [%zu, %zu) of %zu", from, to,
                            n_levels * n_per_level);
    for (size_t i = 0; n_per_level && i < n_levels; i++) {
        size_t a = i * n_per_level, b = a + n_per_level;
        a = a > from ? a : from;
        b = b < to ? b : to;
        if (a >= b) continue;
        char **prompts = NULL;
        int rc = level_prompts(t, levels[i], seed, a - i * n_per_level, b - a, &prompts, err);
        if (rc == AD_OK) rc = greedy_outcomes(m, v, t, prompts, b - a, out + (a - from), err);
        prompts_free(prompts, b - a);
        if (rc != AD_OK) {
            char buf[AD_LEVEL_TEXT_MAX];
            return ad_error_prefix(
                err, "evaluating level %s: ", ad_level_format(levels[i], buf, sizeof buf));
        }
    }
    return AD_OK;
}

void ad_evaluate_summarize(const ad_level *levels, size_t n_levels, size_t n_per_level,
                           const ad_eval_outcome *outcomes, ad_level_accuracy *out) {
    for (size_t i = 0; i < n_levels; i++)
        out[i] = level_summary(levels[i], outcomes + i * n_per_level, n_per_level);
}

int ad_evaluate_levels(ad_model *m, const ad_vocab *v, const ad_task *t, const ad_level *levels,
                       size_t n_levels, size_t n_per_level, uint64_t seed, ad_level_accuracy *out,
                       ad_error *err) {
    size_t n = n_levels * n_per_level;
    ad_eval_outcome *o = malloc((n ? n : 1) * sizeof *o);
    if (!o) return ad_error_set(err, "out of memory evaluating %zu problems", n);
    int rc = ad_evaluate_range(m, v, t, levels, n_levels, n_per_level, seed, 0, n, o, err);
    if (rc == AD_OK) ad_evaluate_summarize(levels, n_levels, n_per_level, o, out);
    free(o);
    return rc;
}

/* ---- best-of-k ------------------------------------------------------------- */

ad_best_of_params ad_best_of_default_params(void) {
    ad_best_of_params p = {.k = 1, .by = AD_BEST_OF_LIKELIHOOD, .temperature = 1.0f};
    return p;
}

static int best_of_check(const ad_best_of_params *p, ad_error *err) {
    if (!p) return ad_error_set(err, "best-of: no parameters given");
    if (p->k < 1 || p->k > AD_BEST_OF_MAX)
        return ad_error_set(err, "best-of: k = %zu is not in 1..%d", p->k, AD_BEST_OF_MAX);
    if (!(isfinite(p->temperature) && p->temperature >= 0.0f))
        return ad_error_set(err, "best-of: temperature %g is not a finite value >= 0",
                            (double)p->temperature);
    if (strcmp(ad_best_of_rule_name(p->by), "?") == 0)
        return ad_error_set(err, "best-of: unknown rule %d", (int)p->by);
    if (p->by == AD_BEST_OF_JUDGE && !(p->judge && p->judge_vocab))
        return ad_error_set(err, "best-of: by judge needs a judge model");
    return AD_OK;
}

/* k samples of each of the n prompts: outs[j * n + i] is sample j of prompt i,
 * decoded with the seed of sample j (see evaluate.h) and request stream i. On
 * error the samples drawn so far stay in outs (zeroed, calloc'd, elsewhere)
 * for the caller to free. */
static int draw_samples(ad_model *m, const ad_vocab *v, const ad_task *t, ad_level lv,
                        char *const *prompts, size_t n, uint64_t seed, const ad_best_of_params *p,
                        ad_completion *outs, ad_error *err) {
    ad_sample_params sp = ad_sample_default_params();
    sp.temperature = p->temperature;
    uint64_t key = ad_seed_level_key(lv.a, lv.b);
    for (size_t j = 0; j < p->k; j++) {
        sp.seed = ad_seed(seed, AD_SEED_ANY, AD_SEED_ANY, AD_SEED_SAMPLE, key, j);
        if (ad_complete_prompts(m, v, t, (const char *const *)prompts, n, 1, &sp, 0, outs + j * n,
                                err) != AD_OK)
            return AD_ERR;
    }
    return AD_OK;
}

/* The value best-of ranks each of the m samples by: the judge's P(yes) for
 * those that reached EOS (NaN for the rest) when by judge, else the
 * sequence log-prob. One batched judge pass over every sample. */
static int sample_values(char *const *prompts, size_t n, const ad_completion *outs, size_t m,
                         const ad_best_of_params *p, double *value, ad_error *err) {
    if (p->by != AD_BEST_OF_JUDGE) {
        for (size_t s = 0; s < m; s++)
            value[s] = outs[s].logprob_sum;
        return AD_OK;
    }
    const char **ps = malloc((m ? m : 1) * sizeof *ps), **cs = malloc((m ? m : 1) * sizeof *cs);
    int rc = ps && cs ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t s = 0; rc == AD_OK && s < m; s++) {
        ps[s] = prompts[s % n]; /* sample s is sample s / n of prompt s % n */
        cs[s] = outs[s].hit_eos ? outs[s].text : NULL;
    }
    if (rc == AD_OK) rc = ad_judge_score(p->judge, p->judge_vocab, ps, cs, m, value, err);
    free(ps);
    free(cs);
    return rc;
}

/* Scores problem i's k samples (outs[j * n + i], verdicts in
 * right_all[j * n + i], ranking values in value_all[j * n + i]): chosen right,
 * any right. */
static int score_problem(const ad_completion *outs, const int *right_all, const double *value_all,
                         size_t n, size_t i, const ad_best_of_params *p, const char **answers,
                         double *value, int *chosen_right, int *any_right, ad_error *err) {
    *any_right = 0;
    for (size_t j = 0; j < p->k; j++) {
        const ad_completion *c = &outs[j * n + i];
        *any_right |= right_all[j * n + i];
        answers[j] = c->hit_eos ? c->text : NULL;
        value[j] = value_all[j * n + i];
    }
    size_t chosen;
    if (ad_best_of_choose(p->by, answers, value, p->k, &chosen, err) != AD_OK) return AD_ERR;
    *chosen_right = chosen < p->k && right_all[chosen * n + i];
    return AD_OK;
}

int ad_evaluate_best_of(ad_model *m, const ad_vocab *v, const ad_task *t, ad_level lv, size_t n,
                        uint64_t seed, const ad_best_of_params *p, ad_best_of_accuracy *out,
                        ad_error *err) {
    if (best_of_check(p, err) != AD_OK) return AD_ERR;
    if (n > SIZE_MAX / p->k / sizeof(ad_completion))
        return ad_error_set(err, "best-of: %zu problems x %zu samples is too many", n, p->k);
    char **prompts = NULL;
    if (level_prompts(t, lv, seed, 0, n, &prompts, err) != AD_OK) return AD_ERR;
    memset(out, 0, sizeof *out);
    out->params = *p;
    ad_completion *outs = calloc(n ? n * p->k : 1, sizeof *outs);
    const char **answers = malloc(p->k * sizeof *answers);
    double *value = malloc(p->k * sizeof *value);
    double *value_all = malloc((n ? n * p->k : 1) * sizeof *value_all);
    int *right = malloc((n ? n * p->k : 1) * sizeof *right);
    int rc = (outs && answers && value && value_all && right) ? AD_OK
                                                              : ad_error_set(err, "out of memory");
    if (rc == AD_OK) rc = greedy_level(m, v, t, lv, prompts, n, &out->greedy, err);
    if (rc == AD_OK) rc = draw_samples(m, v, t, lv, prompts, n, seed, p, outs, err);
    if (rc == AD_OK && n) rc = completions_right(t, prompts, n, outs, n * p->k, right, err);
    if (rc == AD_OK && n) rc = sample_values(prompts, n, outs, n * p->k, p, value_all, err);
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        int chosen_right = 0, any_right = 0;
        rc = score_problem(outs, right, value_all, n, i, p, answers, value, &chosen_right,
                           &any_right, err);
        out->chosen_correct += (size_t)chosen_right;
        out->any_correct += (size_t)any_right;
    }
    if (rc == AD_OK && n) {
        out->best_of_accuracy = (double)out->chosen_correct / (double)n;
        out->pass_at_k = (double)out->any_correct / (double)n;
    }
    completions_free(outs, n * p->k);
    free(answers);
    free(value);
    free(value_all);
    free(right);
    prompts_free(prompts, n);
    if (rc == AD_OK) return AD_OK;
    char buf[AD_LEVEL_TEXT_MAX];
    return ad_error_prefix(err, "best-of-%zu at level %s: ", p->k,
                           ad_level_format(lv, buf, sizeof buf));
}
