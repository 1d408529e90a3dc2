/* task_add.c: the addition tasks.
 *
 * reverse-add: operands and sum written least-significant digit first, the sum
 * right-padded with '0' to max(len a, len b) + 1 digits: 123 + 45 is posed as
 * "321+54=" and answered "8610". forward-add: plain order, no padding:
 * "123+45=" -> "168". Operands have no leading zero (their most significant
 * digit is 1-9). The level is the number of digits per operand; with the
 * independent_lengths option each operand's length is drawn from 1..level, but
 * for the equal_length_share of problems, which keep both at the level's. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"

#define ADD_MAX_DIGITS 1000
#define SCRATCH 2048

static const char *const add_tokens[] = {"0", "1", "2", "3", "4", "5",
                                         "6", "7", "8", "9", "+", "="};

/* Operand lengths for a level: both = level, or independent in 1..level
 * except for the equal_length_share of problems. */
static void operand_lengths(const ad_task *t, ad_level lv, ad_rng *rng, size_t *la, size_t *lb) {
    double share = t->opts.equal_length_share; /* (no draw at 0: the old problems) */
    if (t->opts.independent_lengths && !(share > 0 && ad_rng_uniform(rng) < share)) {
        *la = (size_t)ad_rng_range(rng, 1, lv.a);
        *lb = (size_t)ad_rng_range(rng, 1, lv.a);
    } else {
        *la = *lb = (size_t)lv.a;
    }
}

/* Writes "A+B=" with random operands (reversed or plain order) into the prompt;
 * sets the operand pointers inside it. */
static int write_operands(ad_problem *out, size_t la, size_t lb, ad_rng *rng, int reversed,
                          const char **a, const char **b, ad_error *err) {
    char *p = ad_text_start(&out->prompt, la + lb + 2, err);
    if (!p) return AD_ERR;
    if (reversed) {
        ad_random_reversed_number(rng, p, la);
        ad_random_reversed_number(rng, p + la + 1, lb);
    } else {
        p[0] = (char)('1' + ad_rng_below(rng, 9));
        ad_random_digits(rng, p + 1, la - 1);
        p[la + 1] = (char)('1' + ad_rng_below(rng, 9));
        ad_random_digits(rng, p + la + 2, lb - 1);
    }
    p[la] = '+';
    p[la + lb + 1] = '=';
    *a = p;
    *b = p + la + 1;
    return AD_OK;
}

/* The sum of two most-significant-first numbers, without leading zeros, into
 * out (room for max(la, lb) + 1 bytes); returns its length. */
static size_t forward_sum(const char *a, size_t la, const char *b, size_t lb, char *out) {
    size_t n = (la > lb ? la : lb) + 1;
    int carry = 0;
    for (size_t i = 0; i < n; i++) { /* i counts from the least significant digit */
        int s = carry + (i < la ? a[la - 1 - i] - '0' : 0) + (i < lb ? b[lb - 1 - i] - '0' : 0);
        carry = s >= 10;
        out[n - 1 - i] = (char)('0' + (carry ? s - 10 : s));
    }
    size_t z = 0;
    while (z + 1 < n && out[z] == '0')
        z++;
    memmove(out, out + z, n - z);
    return n - z;
}

/* The expected answer for the operands into out (room for max(la, lb) + 1
 * bytes); returns its length. */
static size_t add_answer(int reversed, const char *a, size_t la, const char *b, size_t lb,
                         char *out) {
    if (!reversed) return forward_sum(a, la, b, lb, out);
    ad_add_reversed(a, la, b, lb, out);
    return (la > lb ? la : lb) + 1;
}

static int is_reversed(const ad_task *t) {
    return t->ops == &ad_task_reverse_add_ops;
}

static int add_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                        ad_error *err) {
    size_t la, lb;
    const char *a, *b;
    operand_lengths(t, lv, rng, &la, &lb);
    if (write_operands(out, la, lb, rng, is_reversed(t), &a, &b, err)) return AD_ERR;
    char *s = ad_text_start(&out->answer, (la > lb ? la : lb) + 1, err);
    if (!s) return AD_ERR;
    out->answer.len = add_answer(is_reversed(t), a, la, b, lb, s);
    s[out->answer.len] = '\0';
    return AD_OK;
}

static int add_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                      ad_error *err) {
    const char *a, *b;
    size_t la, lb;
    if (!ad_scan_binary(prompt, '+', &a, &la, &b, &lb))
        return ad_prompt_error(err, t->name, prompt, "DIGITS+DIGITS=");
    size_t n = (la > lb ? la : lb) + 1;
    char stack[SCRATCH], *expected = n <= sizeof stack ? stack : malloc(n);
    if (!expected) return ad_error_set(err, "%s: out of memory", t->name);
    n = add_answer(is_reversed(t), a, la, b, lb, expected);
    ad_verdict_exact(v, answer, expected, n, "0123456789");
    if (expected != stack) free(expected);
    return AD_OK;
}

/* Exact for reverse-add; for forward-add the sum has max(la, lb) or one more. */
static int add_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    const char *a, *b;
    size_t la, lb;
    if (!ad_scan_binary(prompt, '+', &a, &la, &b, &lb))
        return ad_prompt_error(err, t->name, prompt, "DIGITS+DIGITS=");
    *out = (la > lb ? la : lb) + 1;
    return AD_OK;
}

const ad_task_ops ad_task_reverse_add_ops = {
    .name = "reverse-add",
    .description = "addition with operands and sum reversed, sum zero-padded to max(len)+1",
    .knob = "digits per operand",
    .min = {1, AD_LEVEL_SCALAR},
    .max = {ADD_MAX_DIGITS, AD_LEVEL_SCALAR},
    .tokens = add_tokens,
    .n_tokens = sizeof add_tokens / sizeof add_tokens[0],
    .generate = add_generate,
    .verify = add_verify,
    .max_answer_len = add_max_len,
};

const ad_task_ops ad_task_forward_add_ops = {
    .name = "forward-add",
    .description = "addition in plain digit order, no padding",
    .knob = "digits per operand",
    .min = {1, AD_LEVEL_SCALAR},
    .max = {ADD_MAX_DIGITS, AD_LEVEL_SCALAR},
    .tokens = add_tokens,
    .n_tokens = sizeof add_tokens / sizeof add_tokens[0],
    .generate = add_generate,
    .verify = add_verify,
    .max_answer_len = add_max_len,
};
