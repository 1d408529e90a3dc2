/* task_multiply.c: multiplication with the reference paper's chain of thought.
 *
 * Prompt "rev(a)*rev(b)=". Answer: for each digit b_i of b (least significant
 * first) the partial product b_i * a * 10^i, reversed and right-padded with '0'
 * to i + len(a) + 1 characters, the partial products joined by '+'; after each
 * partial product with index 1 <= i < len(b) - 1, the running sum so far,
 * reversed and padded to i + len(a) + 1, in parentheses; then '=' and the
 * product reversed and padded to len(a) + len(b). a = 123, b = 45:
 * "321*54=" -> "5160+02940=53550". The level is the pair (len a, len b); the
 * answer's length is a fixed function of it. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"

#define MULTIPLY_MAX_DIGITS 40
#define MULTIPLY_VERIFY_MAX_DIGITS 1000 /* longest operand a prompt may have */

static const char *const multiply_tokens[] = {"0", "1", "2", "3", "4", "5", "6", "7",
                                              "8", "9", "*", "+", "(", ")", "="};

/* Length of the chain-of-thought answer for operands of la and lb digits. */
static size_t answer_len(size_t la, size_t lb) {
    size_t n = lb - 1 + 1 + la + lb; /* the '+' signs, '=', the product */
    for (size_t i = 0; i < lb; i++)
        n += i + la + 1;
    for (size_t i = 1; i + 1 < lb; i++)
        n += i + la + 1 + 2;
    return n;
}

/* Writes the answer for reversed operands a (la digits) and b (lb digits) into
 * out (answer_len(la, lb) bytes). acc holds la + lb digits of scratch. */
static void write_answer(const char *a, size_t la, const char *b, size_t lb, char *out,
                         unsigned char *acc) {
    memset(acc, 0, la + lb);
    char *o = out;
    for (size_t i = 0; i < lb; i++) {
        int d = b[i] - '0', carry = 0, sum_carry = 0;
        if (i > 0) *o++ = '+';
        memset(o, '0', i);
        o += i;
        /* The partial product's digits k = 0..la go at position i + k, and are
         * added into the running sum as they are written. */
        for (size_t k = 0; k <= la; k++) {
            int x = (k < la ? d * (a[k] - '0') : 0) + carry;
            carry = x / 10;
            int digit = x % 10;
            *o++ = (char)('0' + digit);
            int s = acc[i + k] + digit + sum_carry;
            sum_carry = s >= 10;
            acc[i + k] = (unsigned char)(s - 10 * sum_carry);
        }
        for (size_t k = i + la + 1; sum_carry && k < la + lb; k++) {
            int s = acc[k] + 1;
            sum_carry = s >= 10;
            acc[k] = (unsigned char)(s - 10 * sum_carry);
        }
        if (i >= 1 && i + 1 < lb) {
            *o++ = '(';
            for (size_t k = 0; k < i + la + 1; k++)
                *o++ = (char)('0' + acc[k]);
            *o++ = ')';
        }
    }
    *o++ = '=';
    for (size_t k = 0; k < la + lb; k++)
        *o++ = (char)('0' + acc[k]);
}

static int multiply_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                             ad_error *err) {
    size_t la = (size_t)lv.a, lb = (size_t)lv.b;
    char *p = ad_text_start(&out->prompt, la + lb + 2, err);
    char *s = p ? ad_text_start(&out->answer, answer_len(la, lb), err) : NULL;
    if (!s) return AD_ERR;
    ad_random_reversed_number(rng, p, la);
    p[la] = '*';
    ad_random_reversed_number(rng, p + la + 1, lb);
    p[la + lb + 1] = '=';
    unsigned char acc[2 * MULTIPLY_MAX_DIGITS];
    write_answer(p, la, p + la + 1, lb, s, acc);
    return AD_OK;
}

/* Parses "A*B=" with operands of at most MULTIPLY_VERIFY_MAX_DIGITS digits. */
static int scan_prompt(const char *prompt, const char **a, size_t *la, const char **b, size_t *lb,
                       ad_error *err) {
    if (!ad_scan_binary(prompt, '*', a, la, b, lb))
        return ad_prompt_error(err, "multiply", prompt, "DIGITS*DIGITS=");
    if (*la > MULTIPLY_VERIFY_MAX_DIGITS || *lb > MULTIPLY_VERIFY_MAX_DIGITS)
        return ad_error_set(err,
                            "multiply: operands of %zu and %zu digits exceed the %d-digit "
                            "limit",
                            *la, *lb, MULTIPLY_VERIFY_MAX_DIGITS);
    return AD_OK;
}

static int multiply_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                           ad_error *err) {
    const char *a, *b;
    size_t la, lb;
    if (scan_prompt(prompt, &a, &la, &b, &lb, err)) return AD_ERR;
    size_t n = answer_len(la, lb);
    char *expected = malloc(n + la + lb);
    if (!expected) return ad_error_set(err, "multiply: out of memory");
    write_answer(a, la, b, lb, expected, (unsigned char *)expected + n);
    ad_verdict_exact(v, answer, expected, n, "0123456789+()=");
    free(expected);
    return AD_OK;
}

static int multiply_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    const char *a, *b;
    size_t la, lb;
    if (scan_prompt(prompt, &a, &la, &b, &lb, err)) return AD_ERR;
    *out = answer_len(la, lb);
    return AD_OK;
}

const ad_task_ops ad_task_multiply_ops = {
    .name = "multiply",
    .description = "multiplication of reversed operands with the paper's chain of thought",
    .knob = "digits of a x digits of b",
    .min = {1, 1},
    .max = {MULTIPLY_MAX_DIGITS, MULTIPLY_MAX_DIGITS},
    .tokens = multiply_tokens,
    .n_tokens = sizeof multiply_tokens / sizeof multiply_tokens[0],
    .generate = multiply_generate,
    .verify = multiply_verify,
    .max_answer_len = multiply_max_len,
};
