/* task_impl.h: what a task implementation provides, and helpers shared by the
 * implementations (text building, prompt scanning, verdict wording).
 *
 * Internal to src/tasks: callers use task.h. Each built-in task is one
 * ad_task_ops value defined in its own file and listed in task.c. */
#ifndef AD_TASKS_TASK_IMPL_H
#define AD_TASKS_TASK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tasks/task.h"

typedef struct ad_task_ops {
    const char *name;
    const char *description;
    const char *knob;
    ad_level min, max;
    const char *const *tokens;
    size_t n_tokens;
    /* lv has been checked against the range; out's texts are empty. */
    int (*generate)(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out, ad_error *err);
    int (*verify)(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                  ad_error *err);
    int (*max_answer_len)(const ad_task *t, const char *prompt, size_t *out, ad_error *err);
    /* Optional, for tasks with finitely many problems: the longest
     * BOS + prompt + answer budget + EOS over all of them, in bytes. */
    size_t (*max_sequence_len)(const ad_task *t);
    /* Optional (NULL: verify one by one): fills verdicts[0..n), which are
     * cleared; on error the message names the pair. */
    int (*verify_batch)(const ad_task *t, const char *const *prompts, const char *const *answers,
                        size_t n, ad_verdict *verdicts, ad_error *err);
} ad_task_ops;

struct ad_task {
    const ad_task_ops *ops;
    ad_task_options opts; /* opts.verifier and opts.extra_chars point into owned copies;
                             opts.sandbox.pass_env is NULL (the pool has its copy) */
    char *verifier_copy, *extra_chars_copy;
    char *name, *description;
    const char *knob;
    ad_level min, max;
    const char *const *tokens;
    size_t n_tokens;
    void *state; /* file tasks: their problems and verifier pool */
    void (*free_state)(void *state);
};

/* The built-in tasks (one file each, or two sharing a file). */
extern const ad_task_ops ad_task_reverse_add_ops, ad_task_forward_add_ops;
extern const ad_task_ops ad_task_copy_ops, ad_task_reverse_ops;
extern const ad_task_ops ad_task_multiply_ops;
extern const ad_task_ops ad_task_maze_ops, ad_task_maze_nodes_ops;
extern const ad_task_ops ad_task_sort_ops;
extern const ad_task_ops ad_task_countdown_ops;
extern const ad_task_ops ad_task_subset_sum_ops;

/* Opens a "file:PATH" task (task_file.c): fills t's metadata and state. */
int ad_task_file_open(ad_task *t, const char *path, ad_error *err);

/* ---- text building (text.c) ---------------------------------------------- */

/* Makes t hold room for len bytes plus the NUL. On error t is unchanged. */
int ad_text_reserve(ad_text *t, size_t len, ad_error *err);

/* Sets t to len bytes (contents to be written by the caller, NUL placed) and
 * returns t->s; NULL when out of memory (err set). */
char *ad_text_start(ad_text *t, size_t len, ad_error *err);

/* Empties t (keeps its buffer). This function can't fail. */
void ad_text_clear(ad_text *t);

/* Appends n bytes / one byte / a decimal number. On error t is unchanged. */
int ad_text_append(ad_text *t, const char *s, size_t n, ad_error *err);
int ad_text_putc(ad_text *t, char c, ad_error *err);
int ad_text_put_uint(ad_text *t, uint64_t x, ad_error *err);

/* ---- scanning ------------------------------------------------------------ */

/* Number of leading ASCII digits of s. */
static inline size_t ad_span_digits(const char *s) {
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/* Writes a quoted, shortened, printable copy of s (for messages) into buf. */
const char *ad_quote(const char *s, char *buf, size_t cap);

/* Prompt-format error: "TASK: prompt 'P' is not of the form FORM". */
int ad_prompt_error(ad_error *err, const char *task, const char *prompt, const char *form);

/* A list of canonical non-negative decimal numbers (no leading zeros, at most
 * 18 digits) separated by ',' and ended by `end`: parses it from *s, advances
 * *s past `end`, and stores up to cap values (count in *n). Returns 0 when the
 * text is not such a list or it holds more than cap numbers. */
int ad_scan_number_list(const char **s, char end, uint64_t *vals, size_t cap, size_t *n);

/* A prompt "A<op>B=" with A and B non-empty digit runs: returns 1 and sets
 * the operand pointers and lengths, or 0 when the prompt has another form. */
int ad_scan_binary(const char *prompt, char op, const char **a, size_t *la, const char **b,
                   size_t *lb);

/* Parses one canonical number of at most 18 digits at *s and advances; 0 on
 * failure (no digit, leading zero, too long). */
int ad_scan_uint(const char **s, uint64_t *out);

/* ---- verdicts ------------------------------------------------------------ */

/* The verdict for a task whose answer is unique: answer must equal expected
 * (n bytes) exactly. alphabet lists the bytes a well-formed answer may hold,
 * used to name the first foreign character in the reason (NULL: no such
 * check). Returns AD_OK. */
int ad_verdict_exact(ad_verdict *v, const char *answer, const char *expected, size_t n,
                     const char *alphabet);

/* When answer holds a byte outside alphabet, fills v (incorrect, naming the
 * byte and its position) and returns 1; else returns 0 and leaves v alone. */
int ad_verdict_foreign_char(ad_verdict *v, const char *answer, const char *alphabet);

/* "'x'" or "\\xNN" for a byte, into buf (cap >= 8). */
const char *ad_describe_char(unsigned char c, char *buf, size_t cap);

/* ---- random digits (digits.c) -------------------------------------------- */

/* n uniform ASCII digits. */
void ad_random_digits(ad_rng *rng, char *out, size_t n);

/* A reversed number of n >= 1 digits whose most significant digit (the last
 * character) is 1-9. */
void ad_random_reversed_number(ad_rng *rng, char *out, size_t n);

/* The sum of two reversed numbers, reversed, right-padded with '0' to
 * max(la, lb) + 1 characters (written to out, no NUL). */
void ad_add_reversed(const char *a, size_t la, const char *b, size_t lb, char *out);

#endif
