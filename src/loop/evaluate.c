/* evaluate.c: greedy decoding of held-out problems and per-level accuracy. */
#include "loop/evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "loop/complete.h"
#include "util/progress.h"

int ad_eval_problem(const ad_task *t, ad_level lv, uint64_t seed, size_t i, ad_problem *p,
                    ad_error *err) {
    ad_rng rng;
    ad_rng_seed(&rng, ad_seed(seed, AD_SEED_ANY, AD_SEED_ANY, AD_SEED_EVAL,
                                 ad_seed_level_key(lv.a, lv.b), i));
    return ad_task_generate(t, lv, &rng, p, err);
}

/* Evaluates one level; fills acc. */
static int evaluate_level(ad_model *m, const ad_vocab *v, const ad_task *t, ad_level lv,
                          size_t n, uint64_t seed, ad_level_accuracy *acc, ad_error *err) {
    char **prompts = calloc(n, sizeof *prompts);
    ad_completion *outs = calloc(n, sizeof *outs);
    ad_problem p = {0};
    int rc = AD_ERR;
    if (!prompts || !outs) {
        ad_error_set(err, "out of memory evaluating %zu problems", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (ad_eval_problem(t, lv, seed, i, &p, err) != AD_OK) goto done;
        prompts[i] = strdup(p.prompt.s);
        if (!prompts[i]) {
            ad_error_set(err, "out of memory");
            goto done;
        }
    }
    ad_sample_params sp = ad_sample_default_params();
    double t0 = ad_now();
    if (ad_complete_prompts(m, v, t, (const char *const *)prompts, n, 1, &sp, 0, outs, err))
        goto done;
    double dt = ad_now() - t0, lp = 0, toks = 0;
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        ad_verdict verdict;
        if (ad_task_verify(t, prompts[i], outs[i].text, &verdict, err) != AD_OK) goto done;
        correct += outs[i].hit_eos && verdict.correct;
        lp += outs[i].logprob_sum;
        toks += (double)outs[i].n_tokens;
    }
    *acc = (ad_level_accuracy){lv, n, correct, n ? (double)correct / (double)n : 0,
                               n ? lp / (double)n : 0, dt > 0 ? toks / dt : 0};
    rc = AD_OK;
done:
    for (size_t i = 0; prompts && i < n; i++) free(prompts[i]);
    for (size_t i = 0; outs && i < n; i++) ad_completion_free(&outs[i]);
    free(prompts);
    free(outs);
    ad_problem_free(&p);
    return rc;
}

int ad_evaluate_levels(ad_model *m, const ad_vocab *v, const ad_task *t, const ad_level *levels,
                       size_t n_levels, size_t n_per_level, uint64_t seed,
                       ad_level_accuracy *out, ad_error *err) {
    for (size_t i = 0; i < n_levels; i++) {
        if (evaluate_level(m, v, t, levels[i], n_per_level, seed, &out[i], err) != AD_OK) {
            char buf[AD_LEVEL_TEXT_MAX];
            return ad_error_prefix(err, "evaluating level %s: ",
                                   ad_level_format(levels[i], buf, sizeof buf));
        }
    }
    return AD_OK;
}
