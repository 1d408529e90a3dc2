/* task.h: task environments: problems with a difficulty knob, and verifiers.
 *
 * A task poses problems at a difficulty level and checks answers. Built-in
 * tasks generate their problems from a seed and verify answers on their own
 * merits (recompute a sum, validate a path, evaluate an expression); a user's
 * task is a JSONL file of problems named "file:PATH", optionally with an
 * external verifier program run in a sandbox (sandbox.h).
 *
 *   ad_task *t;
 *   ad_task_open("reverse-add", NULL, &t, &err);
 *   ad_problem p = {0};
 *   ad_task_generate(t, ad_level_int(20), &rng, &p, &err);  // p.prompt.s, p.answer.s
 *   ad_task_verify(t, p.prompt.s, model_output, &verdict, &err);
 *   ad_problem_free(&p); ad_task_free(t);
 *
 * Text is plain bytes: every symbol a task can put in a prompt or an answer is
 * one of its tokens (ad_task_tokens), usually one character; the maze's node
 * labels "1".."99" are one token each. Exact formats are in docs/tasks.md.
 *
 * Thread safety: an opened task is immutable; generate, verify and
 * max_answer_len may be called from many threads at once (an external
 * verifier pool does its own locking). This module knows nothing of models. */
#ifndef AD_TASKS_TASK_H
#define AD_TASKS_TASK_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tasks/sandbox.h"
#include "tasks/verdict.h"
#include "util/error.h"
#include "util/level.h"
#include "util/rng.h"

typedef struct ad_task ad_task;

/* A growable NUL-terminated string: s[0..len) plus '\0'; cap bytes allocated. */
typedef struct ad_text {
    char *s;
    size_t len, cap;
} ad_text;

/* One problem. Zero-initialise before the first generate; each generate reuses
 * the buffers, so one ad_problem can serve a loop of millions without malloc. */
typedef struct ad_problem {
    ad_text prompt;
    ad_text answer; /* the reference answer ("" when has_answer is 0) */
    int has_answer; /* 0 only for a user's problem given without an answer */
    ad_level level; /* the level it was generated at */
} ad_problem;

/* Frees the problem's buffers and zeroes it. Safe on a zeroed problem. */
void ad_problem_free(ad_problem *p);

typedef struct ad_task_options {
    /* reverse-add, forward-add: draw each operand's length independently and
     * uniformly from 1..level (the reference paper's base data) instead of
     * both operands having exactly `level` digits. */
    int independent_lengths;
    /* with independent_lengths: the share of problems (0-1) whose operands
     * both have the level's length anyway, so the top of a base's range is not
     * as rare as 1 in level^2 of its examples. 0 draws nothing extra (the same
     * problems as before the option existed); without independent_lengths it
     * has nothing to change and draws nothing. */
    double equal_length_share;
    /* file tasks: the external verifier command (NULL: compare with "answer"). */
    const char *verifier;
    /* its sandbox: workers, timeout, limits, the environment variables passed
     * (sandbox.pass_env, copied at open) */
    ad_sandbox_params sandbox;
    /* file tasks: the answer-length bound in bytes (0: twice the longest
     * answer in the file, at least 16; 256 when the file has no answers). */
    size_t max_answer_len;
    /* file tasks: characters (UTF-8) the answers may use beyond those that
     * appear in the file; each becomes a token. NULL for none. */
    const char *extra_chars;
} ad_task_options;

/* Fills o with the defaults (everything off, default sandbox). Can't fail. */
void ad_task_default_options(ad_task_options *o);

/* Opens a task by name: a built-in name (see ad_task_builtin_name) or
 * "file:PATH" for a JSONL file of problems. opts may be NULL (defaults). The
 * options are copied. On error *out is NULL and the message names the task,
 * file and line. */
int ad_task_open(const char *name, const ad_task_options *opts, ad_task **out, ad_error *err);

/* Frees the task (and stops its verifier processes). Safe on NULL. */
void ad_task_free(ad_task *t);

/* The built-in tasks, in a fixed order: i < ad_task_builtin_count(). The name
 * for an out-of-range i is NULL. These functions can't fail. */
size_t ad_task_builtin_count(void);
const char *ad_task_builtin_name(size_t i);

/* Metadata. Strings belong to the task. These functions can't fail. */
const char *ad_task_name(const ad_task *t);        /* "reverse-add", "file:x.jsonl" */
const char *ad_task_description(const ad_task *t); /* one line */
const char *ad_task_knob(const ad_task *t);        /* what the level means: "digits", ... */
ad_level ad_task_level_min(const ad_task *t);      /* valid levels: min <= level <= max, */
ad_level ad_task_level_max(const ad_task *t);      /* componentwise for pairs */

/* The task's tokens: n strings, each a symbol that may appear in a prompt or an
 * answer (complete: a vocabulary built from them covers every problem and
 * every well-formed answer). This function can't fail. */
const char *const *ad_task_tokens(const ad_task *t, size_t *n);

/* AD_OK when lv is a valid level of t (right kind, inside the range); else an
 * error naming the task, the level and the range. */
int ad_task_level_check(const ad_task *t, ad_level lv, ad_error *err);

/* Poses a problem at level lv, drawing randomness from rng only: the same rng
 * state gives the same problem. Fills out (prompt, reference answer, level).
 * Fails on an invalid level or out of memory; on error out holds no problem
 * (its buffers remain owned by it). */
int ad_task_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out, ad_error *err);

/* Checks answer against prompt on the answer's own merits and fills v. Any
 * answer text gives a verdict (AD_OK). Returns AD_ERR when the prompt is not a
 * prompt of this task, or when an external verifier cannot run at all. */
int ad_task_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                   ad_error *err);

/* Verifies n (prompt, answer) pairs and fills verdicts[0..n), each as
 * ad_task_verify would. A file task with an external verifier checks them in
 * parallel on its pool's workers (options.sandbox.workers); the other tasks
 * check them one after another. On error the message names the first pair
 * that failed ("answer 7: ...") and the verdicts are not all filled. */
int ad_task_verify_batch(const ad_task *t, const char *const *prompts, const char *const *answers,
                         size_t n, ad_verdict *verdicts, ad_error *err);

/* An upper bound in bytes on the length of a well-formed answer, computed from
 * the prompt alone (the generation budget: tokens are at least one byte). It
 * is exact where the format fixes the length (reverse-add at n digits: n+1).
 * Fails when the prompt is not a prompt of this task. */
int ad_task_max_answer_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err);

/* For a task with finitely many problems (a file task): the longest
 * BOS + prompt + answer budget + EOS over all of them, in bytes; 0 for a task
 * that generates problems (sample them instead). */
size_t ad_task_max_sequence_len(const ad_task *t);

/* A level as JSON: a number, or [a, b] for a pair. NULL when out of memory. */
cJSON *ad_task_level_to_json(ad_level lv);

/* Reads a level from JSON (a non-negative integer, or [a, b]); what names the
 * value in the message ("line 4: level"). */
int ad_task_level_from_json(const cJSON *j, const char *what, ad_level *out, ad_error *err);

/* Parses a level from the command line: "7", "5,6", "5x6" or "(5,6)". */
int ad_task_level_parse(const char *text, ad_level *out, ad_error *err);

#endif
