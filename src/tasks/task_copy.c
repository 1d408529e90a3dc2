/* task_copy.c: the copy and reverse tasks over random digit strings.
 *
 * copy: "s=" -> s; reverse: "s=" -> s reversed ("0123=" -> "3210"). The level
 * is the length of s. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"

#define COPY_MAX_LEN 1000
#define SCRATCH 2048

static const char *const copy_tokens[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "="};

static int is_reverse(const ad_task *t) {
    return t->ops == &ad_task_reverse_ops;
}

/* The answer for s (n digits) into out. */
static void copy_answer(int reverse, const char *s, size_t n, char *out) {
    if (!reverse) {
        memcpy(out, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = s[n - 1 - i];
}

/* Length of s in a prompt "s=", or 0 when the prompt has another form. */
static size_t scan_prompt(const char *prompt) {
    size_t n = ad_span_digits(prompt);
    return (n > 0 && prompt[n] == '=' && prompt[n + 1] == '\0') ? n : 0;
}

static int copy_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                         ad_error *err) {
    size_t n = (size_t)lv.a;
    char *p = ad_text_start(&out->prompt, n + 1, err);
    char *a = p ? ad_text_start(&out->answer, n, err) : NULL;
    if (!a) return AD_ERR;
    ad_random_digits(rng, p, n);
    p[n] = '=';
    copy_answer(is_reverse(t), p, n, a);
    return AD_OK;
}

static int copy_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                       ad_error *err) {
    size_t n = scan_prompt(prompt);
    if (!n) return ad_prompt_error(err, t->name, prompt, "DIGITS=");
    char stack[SCRATCH], *expected = n <= sizeof stack ? stack : malloc(n);
    if (!expected) return ad_error_set(err, "%s: out of memory", t->name);
    copy_answer(is_reverse(t), prompt, n, expected);
    ad_verdict_exact(v, answer, expected, n, "0123456789");
    if (expected != stack) free(expected);
    return AD_OK;
}

static int copy_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    size_t n = scan_prompt(prompt);
    if (!n) return ad_prompt_error(err, t->name, prompt, "DIGITS=");
    *out = n;
    return AD_OK;
}

const ad_task_ops ad_task_copy_ops = {
    .name = "copy",
    .description = "copy a digit string",
    .knob = "length",
    .min = {1, AD_LEVEL_SCALAR},
    .max = {COPY_MAX_LEN, AD_LEVEL_SCALAR},
    .tokens = copy_tokens,
    .n_tokens = sizeof copy_tokens / sizeof copy_tokens[0],
    .generate = copy_generate,
    .verify = copy_verify,
    .max_answer_len = copy_max_len,
};

const ad_task_ops ad_task_reverse_ops = {
    .name = "reverse",
    .description = "reverse a digit string",
    .knob = "length",
    .min = {1, AD_LEVEL_SCALAR},
    .max = {COPY_MAX_LEN, AD_LEVEL_SCALAR},
    .tokens = copy_tokens,
    .n_tokens = sizeof copy_tokens / sizeof copy_tokens[0],
    .generate = copy_generate,
    .verify = copy_verify,
    .max_answer_len = copy_max_len,
};
