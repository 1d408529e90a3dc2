/* judge.c: the judge's vocabulary, examples and scores (see judge.h). */
#include "loop/judge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "model/sampler.h"

int ad_judge_vocab(ad_vocab *judge, const ad_vocab *task, ad_error *err) {
    if (ad_vocab_find(task, AD_JUDGE_YES) >= 0 || ad_vocab_find(task, AD_JUDGE_NO) >= 0)
        return ad_error_set(err, "judge: the task's vocabulary already uses the verdict symbols "
                                 "'" AD_JUDGE_YES "' / '" AD_JUDGE_NO "'");
    size_t n = task->size - 3;
    const char **symbols = malloc((n + 2) * sizeof *symbols);
    if (!symbols) return ad_error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        symbols[i] = task->tokens[3 + i];
    symbols[n] = AD_JUDGE_YES;
    symbols[n + 1] = AD_JUDGE_NO;
    int rc = ad_vocab_build(judge, symbols, n + 2, err);
    free(symbols);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "judge vocabulary: ");
}

int ad_judge_example(ad_example *ex, const ad_vocab *judge, const char *prompt,
                     const char *completion, int verdict, size_t max_len, ad_error *err) {
    if (max_len < 1) return ad_error_set(err, "judge: max_len 0");
    /* the task's example (BOS prompt completion EOS) with room for the verdict */
    if (ad_example_encode(ex, judge, prompt, completion, max_len - 1, err) != AD_OK) return AD_ERR;
    int32_t *grown = realloc(ex->tokens, (ex->len + 1) * sizeof *grown);
    if (!grown) {
        ad_example_free(ex);
        return ad_error_set(err, "out of memory");
    }
    ex->tokens = grown;
    ex->tokens[ex->len] = ad_vocab_find(judge, verdict ? AD_JUDGE_YES : AD_JUDGE_NO);
    ex->len++;
    ex->loss_from = ex->len - 1;
    return AD_OK;
}

/* Scores each answer's two verdict sequences: lp[2i] = log p(YES), lp[2i+1] =
 * log p(NO), both at the position after EOS. */
static int score_verdicts(ad_model *m, const ad_vocab *judge, const char *const *prompts,
                          const char *const *completions, size_t n, double *lp, ad_error *err) {
    ad_example *ex = calloc(2 * n, sizeof *ex);
    const int32_t **seqs = calloc(2 * n, sizeof *seqs);
    size_t *lens = calloc(2 * n, sizeof *lens), *from = calloc(2 * n, sizeof *from);
    int rc = ex && seqs && lens && from ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < 2 * n; i++) {
        rc = ad_judge_example(&ex[i], judge, prompts[i / 2], completions[i / 2], i % 2 == 0,
                              m->cfg.max_seq_len, err);
        if (rc != AD_OK) break;
        seqs[i] = ex[i].tokens;
        lens[i] = ex[i].len;
        from[i] = ex[i].loss_from;
    }
    if (rc == AD_OK && n) rc = ad_score_sequences(m, seqs, lens, from, 2 * n, lp, NULL, err);
    for (size_t i = 0; ex && i < 2 * n; i++)
        ad_example_free(&ex[i]);
    free(ex);
    free(seqs);
    free(lens);
    free(from);
    return rc;
}

int ad_judge_score(ad_model *m, const ad_vocab *judge, const char *const *prompts,
                   const char *const *completions, size_t n, double *p_yes, ad_error *err) {
    /* the answers to score, packed: NULL completions (unfinished) stay NaN */
    const char **p = malloc((n ? n : 1) * sizeof *p), **c = malloc((n ? n : 1) * sizeof *c);
    size_t *at = malloc((n ? n : 1) * sizeof *at), k = 0;
    double *lp = malloc((n ? 2 * n : 1) * sizeof *lp);
    int rc = p && c && at && lp ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        p_yes[i] = NAN;
        if (completions[i]) p[k] = prompts[i], c[k] = completions[i], at[k++] = i;
    }
    if (rc == AD_OK && k) rc = score_verdicts(m, judge, p, c, k, lp, err);
    /* p(YES) / (p(YES) + p(NO)) = sigmoid(log p(YES) - log p(NO)) */
    for (size_t j = 0; rc == AD_OK && j < k; j++) {
        double d = lp[2 * j] - lp[2 * j + 1];
        p_yes[at[j]] = d >= 0 ? 1.0 / (1.0 + exp(-d)) : exp(d) / (1.0 + exp(d));
    }
    free(p);
    free(c);
    free(at);
    free(lp);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "judge: ");
}

/* The first difference between a loaded judge vocabulary and the one the
 * task's judge must have; AD_OK when they are the same. */
static int judge_vocab_check(const char *dir, const ad_vocab *got, const ad_vocab *task,
                             ad_error *err) {
    ad_vocab *want = malloc(sizeof *want);
    if (!want) return ad_error_set(err, "out of memory");
    int rc = ad_judge_vocab(want, task, err);
    if (rc == AD_OK && got->size != want->size)
        rc = ad_error_set(err,
                          "%s: not a judge for this task: its vocabulary has %zu tokens, the "
                          "task's judge has %zu",
                          dir, got->size, want->size);
    for (size_t i = 0; rc == AD_OK && i < want->size; i++)
        if (strcmp(got->tokens[i], want->tokens[i]))
            rc = ad_error_set(err,
                              "%s: not a judge for this task: token %zu is '%s', the task's "
                              "judge has '%s'",
                              dir, i, got->tokens[i], want->tokens[i]);
    free(want);
    return rc;
}

int ad_judge_load(const char *dir, const ad_vocab *task, size_t min_seq_len, ad_model **m,
                  ad_vocab *judge, ad_error *err) {
    *m = NULL;
    if (ad_checkpoint_load(dir, m, judge, NULL, NULL, err) != AD_OK) return AD_ERR;
    if (judge_vocab_check(dir, judge, task, err) != AD_OK) {
        ad_model_free(*m);
        *m = NULL;
        return AD_ERR;
    }
    if ((*m)->cfg.max_seq_len < min_seq_len) (*m)->cfg.max_seq_len = min_seq_len;
    return AD_OK;
}
