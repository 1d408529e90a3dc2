/* task_sort.c: sort a list of numbers.
 *
 * Prompt: numbers 0-999 joined by ',' then '='; answer: the same numbers in
 * ascending order joined by ','. "31,5,207,5=" -> "5,5,31,207". The level is
 * the list length. The verifier accepts prompts with any canonical numbers of
 * up to 18 digits. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"

#define SORT_MAX_LEN 1000
#define SORT_MAX_VALUE 999
#define SORT_VERIFY_MAX_ITEMS 100000

static const char *const sort_tokens[] = {"0", "1", "2", "3", "4", "5",
                                          "6", "7", "8", "9", ",", "="};

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Writes the values joined by ',' into t. */
static int write_list(ad_text *t, const uint64_t *vals, size_t n, ad_error *err) {
    ad_text_clear(t);
    for (size_t i = 0; i < n; i++)
        if ((i > 0 && ad_text_putc(t, ',', err)) || ad_text_put_uint(t, vals[i], err))
            return AD_ERR;
    return AD_OK;
}

static int sort_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                         ad_error *err) {
    size_t n = (size_t)lv.a;
    uint64_t vals[SORT_MAX_LEN];
    for (size_t i = 0; i < n; i++)
        vals[i] = ad_rng_below(rng, SORT_MAX_VALUE + 1);
    if (write_list(&out->prompt, vals, n, err) || ad_text_putc(&out->prompt, '=', err))
        return AD_ERR;
    qsort(vals, n, sizeof vals[0], cmp_u64);
    return write_list(&out->answer, vals, n, err);
}

/* Parses the prompt's numbers into a malloc'd array (*vals, *n). */
static int scan_prompt(const char *prompt, uint64_t **vals, size_t *n, ad_error *err) {
    size_t cap = 1;
    for (const char *p = prompt; *p; p++)
        cap += *p == ',';
    if (cap > SORT_VERIFY_MAX_ITEMS)
        return ad_error_set(err, "sort: prompt has more than %d numbers", SORT_VERIFY_MAX_ITEMS);
    *vals = malloc(cap * sizeof **vals);
    if (!*vals) return ad_error_set(err, "sort: out of memory");
    const char *p = prompt;
    if (!ad_scan_number_list(&p, '=', *vals, cap, n) || *p != '\0') {
        free(*vals);
        *vals = NULL;
        return ad_prompt_error(err, "sort", prompt, "N,N,...,N=");
    }
    return AD_OK;
}

static int sort_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                       ad_error *err) {
    uint64_t *vals;
    size_t n;
    if (scan_prompt(prompt, &vals, &n, err)) return AD_ERR;
    qsort(vals, n, sizeof vals[0], cmp_u64);
    ad_text expected = {0};
    int rc = write_list(&expected, vals, n, err);
    if (rc == AD_OK) ad_verdict_exact(v, answer, expected.s, expected.len, "0123456789,");
    free(expected.s);
    free(vals);
    return rc;
}

/* The sorted list has the prompt's characters minus the '='. */
static int sort_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    uint64_t *vals;
    size_t n;
    if (scan_prompt(prompt, &vals, &n, err)) return AD_ERR;
    free(vals);
    *out = strlen(prompt) - 1;
    return AD_OK;
}

const ad_task_ops ad_task_sort_ops = {
    .name = "sort",
    .description = "sort a list of numbers 0-999 in ascending order",
    .knob = "list length",
    .min = {1, AD_LEVEL_SCALAR},
    .max = {SORT_MAX_LEN, AD_LEVEL_SCALAR},
    .tokens = sort_tokens,
    .n_tokens = sizeof sort_tokens / sizeof sort_tokens[0],
    .generate = sort_generate,
    .verify = sort_verify,
    .max_answer_len = sort_max_len,
};
