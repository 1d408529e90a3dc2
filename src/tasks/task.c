/* task.c: the task registry (built-in names and "file:PATH"), and the public
 * entry points that check their arguments before calling a task's ops. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"

static const ad_task_ops *const builtins[] = {
    &ad_task_reverse_add_ops, &ad_task_forward_add_ops, &ad_task_copy_ops,
    &ad_task_reverse_ops,     &ad_task_multiply_ops,    &ad_task_maze_ops,
    &ad_task_maze_nodes_ops,  &ad_task_sort_ops,        &ad_task_countdown_ops,
    &ad_task_subset_sum_ops,
};

#define N_BUILTINS (sizeof builtins / sizeof builtins[0])
#define FILE_PREFIX "file:"

size_t ad_task_builtin_count(void) {
    return N_BUILTINS;
}

const char *ad_task_builtin_name(size_t i) {
    return i < N_BUILTINS ? builtins[i]->name : NULL;
}

void ad_task_default_options(ad_task_options *o) {
    memset(o, 0, sizeof *o);
    ad_sandbox_default_params(&o->sandbox);
}

/* strdup that treats NULL as NULL; sets *failed on out of memory. */
static char *copy_or_null(const char *s, int *failed) {
    if (!s) return NULL;
    char *c = strdup(s);
    if (!c) *failed = 1;
    return c;
}

static int open_builtin(ad_task *t, const char *name, ad_error *err) {
    for (size_t i = 0; i < N_BUILTINS; i++) {
        const ad_task_ops *ops = builtins[i];
        if (strcmp(ops->name, name) != 0) continue;
        t->ops = ops;
        t->name = strdup(ops->name);
        t->description = strdup(ops->description);
        if (!t->name || !t->description) return ad_error_set(err, "task %s: out of memory", name);
        t->knob = ops->knob;
        t->min = ops->min;
        t->max = ops->max;
        t->tokens = ops->tokens;
        t->n_tokens = ops->n_tokens;
        return AD_OK;
    }
    char names[512] = "";
    for (size_t i = 0; i < N_BUILTINS; i++) {
        if (i) strncat(names, ", ", sizeof names - strlen(names) - 1);
        strncat(names, builtins[i]->name, sizeof names - strlen(names) - 1);
    }
    return ad_error_set(err, "unknown task '%s' (built-in tasks: %s; or file:PATH)", name, names);
}

int ad_task_open(const char *name, const ad_task_options *opts, ad_task **out, ad_error *err) {
    *out = NULL;
    if (!name || !*name) return ad_error_set(err, "task name is empty");
    ad_task *t = calloc(1, sizeof *t);
    if (!t) return ad_error_set(err, "task %s: out of memory", name);
    if (opts)
        t->opts = *opts;
    else
        ad_task_default_options(&t->opts);
    int failed = 0;
    t->verifier_copy = copy_or_null(t->opts.verifier, &failed);
    t->extra_chars_copy = copy_or_null(t->opts.extra_chars, &failed);
    t->opts.verifier = t->verifier_copy;
    t->opts.extra_chars = t->extra_chars_copy;
    int rc = failed ? ad_error_set(err, "task %s: out of memory", name) : AD_OK;
    if (rc == AD_OK && strncmp(name, FILE_PREFIX, strlen(FILE_PREFIX)) == 0)
        rc = ad_task_file_open(t, name + strlen(FILE_PREFIX), err);
    else if (rc == AD_OK && t->opts.verifier)
        rc = ad_error_set(err,
                          "task %s: a verifier command applies only to file: tasks "
                          "(built-in tasks verify themselves)",
                          name);
    else if (rc == AD_OK && !(t->opts.equal_length_share >= 0 && t->opts.equal_length_share <= 1))
        rc = ad_error_set(err, "task %s: equal_length_share %g is not in 0-1", name,
                          t->opts.equal_length_share);
    else if (rc == AD_OK)
        rc = open_builtin(t, name, err);
    t->opts.sandbox.pass_env = NULL; /* the caller's string: the pool has copied it */
    if (rc != AD_OK) {
        ad_task_free(t);
        return AD_ERR;
    }
    *out = t;
    return AD_OK;
}

void ad_task_free(ad_task *t) {
    if (!t) return;
    if (t->free_state) t->free_state(t->state);
    free(t->verifier_copy);
    free(t->extra_chars_copy);
    free(t->name);
    free(t->description);
    free(t);
}

const char *ad_task_name(const ad_task *t) {
    return t->name;
}

const char *ad_task_description(const ad_task *t) {
    return t->description;
}

const char *ad_task_knob(const ad_task *t) {
    return t->knob;
}

ad_level ad_task_level_min(const ad_task *t) {
    return t->min;
}

ad_level ad_task_level_max(const ad_task *t) {
    return t->max;
}

const char *const *ad_task_tokens(const ad_task *t, size_t *n) {
    *n = t->n_tokens;
    return t->tokens;
}

int ad_task_level_check(const ad_task *t, ad_level lv, ad_error *err) {
    char l[AD_LEVEL_TEXT_MAX], lo[AD_LEVEL_TEXT_MAX], hi[AD_LEVEL_TEXT_MAX];
    ad_level_format(lv, l, sizeof l);
    ad_level_format(t->min, lo, sizeof lo);
    ad_level_format(t->max, hi, sizeof hi);
    if (ad_level_is_pair(lv) != ad_level_is_pair(t->min))
        return ad_error_set(err, "task %s: level %s is %s, but the task's levels are %s (%s..%s)",
                            t->name, l, ad_level_is_pair(lv) ? "a pair" : "one integer",
                            ad_level_is_pair(t->min) ? "pairs AxB" : "integers", lo, hi);
    int inside = lv.a >= t->min.a && lv.a <= t->max.a;
    if (ad_level_is_pair(lv)) inside = inside && lv.b >= t->min.b && lv.b <= t->max.b;
    if (!inside)
        return ad_error_set(err, "task %s: level %s is outside the range %s..%s", t->name, l, lo,
                            hi);
    return AD_OK;
}

int ad_task_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out, ad_error *err) {
    if (ad_task_level_check(t, lv, err)) return AD_ERR;
    ad_text_clear(&out->prompt);
    ad_text_clear(&out->answer);
    out->has_answer = 1;
    out->level = lv;
    if (t->ops->generate(t, lv, rng, out, err) == AD_OK) return AD_OK;
    ad_text_clear(&out->prompt);
    ad_text_clear(&out->answer);
    return AD_ERR;
}

static void verdict_clear(ad_verdict *v) {
    v->correct = 0;
    v->score = 0;
    v->reason[0] = '\0';
}

/* Every verdict has a score in [0, 1] and a reason. */
static void verdict_complete(ad_verdict *v) {
    if (!(v->score >= 0.0 && v->score <= 1.0)) v->score = v->correct ? 1.0 : 0.0;
    if (!v->reason[0]) strcpy(v->reason, v->correct ? "correct" : "incorrect");
}

int ad_task_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                   ad_error *err) {
    if (!prompt || !answer)
        return ad_error_set(err, "task %s: verify needs a prompt and an answer", t->name);
    verdict_clear(v);
    if (t->ops->verify(t, prompt, answer, v, err)) return AD_ERR;
    verdict_complete(v);
    return AD_OK;
}

int ad_task_verify_batch(const ad_task *t, const char *const *prompts, const char *const *answers,
                         size_t n, ad_verdict *verdicts, ad_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (!prompts[i] || !answers[i])
            return ad_error_set(err, "task %s: answer %zu: verify needs a prompt and an answer",
                                t->name, i);
        verdict_clear(&verdicts[i]);
    }
    if (!t->ops->verify_batch) {
        for (size_t i = 0; i < n; i++)
            if (ad_task_verify(t, prompts[i], answers[i], &verdicts[i], err))
                return ad_error_prefix(err, "answer %zu: ", i);
        return AD_OK;
    }
    if (t->ops->verify_batch(t, prompts, answers, n, verdicts, err)) return AD_ERR;
    for (size_t i = 0; i < n; i++)
        verdict_complete(&verdicts[i]);
    return AD_OK;
}

size_t ad_task_max_sequence_len(const ad_task *t) {
    return t->ops->max_sequence_len ? t->ops->max_sequence_len(t) : 0;
}

int ad_task_max_answer_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    if (!prompt) return ad_error_set(err, "task %s: max_answer_len needs a prompt", t->name);
    return t->ops->max_answer_len(t, prompt, out, err);
}
