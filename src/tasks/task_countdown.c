/* task_countdown.c: reach a target with + - * / and parentheses.
 *
 * Prompt: the numbers (1-99) joined by ',', then ':' and the target, then '='.
 * Answer: an expression over some of the numbers, each used at most once (as
 * often as it is given), that evaluates exactly to the target. "4,6,25:100="
 * -> "4*25" or "25*4" (6 unused), not "(6-4)*25" (50). The
 * generator combines all the numbers with random operations whose
 * intermediate results stay integers in 1..999, so a solution always exists;
 * its expression is the reference answer. The level is how many numbers. */
#include <stdio.h>
#include <string.h>

#include "tasks/countdown_expr.h"
#include "tasks/task_impl.h"

#define COUNTDOWN_MIN 2
#define COUNTDOWN_MAX 12
#define COUNTDOWN_MAX_NUMBER 99
#define COUNTDOWN_MAX_VALUE 999
#define COUNTDOWN_VERIFY_MAX_NUMBERS 64
#define EXPR_BUF 512

static const char *const countdown_tokens[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
                                               ",", ":", "=", "+", "-", "*", "/", "(", ")"};

/* A partial expression during generation: its value, its text and the
 * precedence of its top operator (1: + -, 2: * /, 3: a number). */
typedef struct item {
    uint64_t value;
    int prec;
    char text[EXPR_BUF];
} item;

static int prec_of(char op) {
    return (op == '+' || op == '-') ? 1 : 2;
}

/* x op y as text, with the parentheses precedence requires; 0 when it does
 * not fit (it always does for COUNTDOWN_MAX numbers of two digits). */
static int combine_text(item *out, const item *x, char op, const item *y) {
    int p = prec_of(op);
    int left_paren = x->prec < p;
    int right_paren = y->prec < p || (y->prec == p && (op == '-' || op == '/'));
    int n = snprintf(out->text, sizeof out->text, "%s%s%s%c%s%s%s", left_paren ? "(" : "", x->text,
                     left_paren ? ")" : "", op, right_paren ? "(" : "", y->text,
                     right_paren ? ")" : "");
    out->prec = p;
    return n > 0 && (size_t)n < sizeof out->text;
}

/* Picks an operation on a, b whose result is an integer in 1..999; returns it
 * and sets *swap when the operands go in the order b op a. Subtraction (a != b)
 * or division (a == b) always qualifies, so there is always a choice. */
static char pick_op(ad_rng *rng, uint64_t a, uint64_t b, int *swap) {
    char ops[4];
    int swaps[4], n = 0;
    if (a + b <= COUNTDOWN_MAX_VALUE) ops[n] = '+', swaps[n++] = 0;
    if (a != b) ops[n] = '-', swaps[n++] = a < b;
    if (a * b <= COUNTDOWN_MAX_VALUE) ops[n] = '*', swaps[n++] = 0;
    if (a % b == 0 || b % a == 0) ops[n] = '/', swaps[n++] = a % b != 0;
    int k = (int)ad_rng_below(rng, (uint64_t)n);
    *swap = swaps[k];
    return ops[k];
}

static uint64_t apply_op(char op, uint64_t x, uint64_t y) {
    switch (op) {
    case '+':
        return x + y;
    case '-':
        return x - y;
    case '*':
        return x * y;
    default:
        return x / y;
    }
}

static int countdown_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                              ad_error *err) {
    size_t n = (size_t)lv.a;
    uint64_t numbers[COUNTDOWN_MAX];
    item items[COUNTDOWN_MAX];
    for (size_t i = 0; i < n; i++) {
        numbers[i] = 1 + ad_rng_below(rng, COUNTDOWN_MAX_NUMBER);
        items[i].value = numbers[i];
        items[i].prec = 3;
        snprintf(items[i].text, sizeof items[i].text, "%llu", (unsigned long long)numbers[i]);
    }
    for (size_t live = n; live > 1; live--) { /* combine two random items into one */
        size_t i = (size_t)ad_rng_below(rng, live);
        size_t j = (size_t)ad_rng_below(rng, live - 1);
        if (j >= i) j++;
        int swap;
        char op = pick_op(rng, items[i].value, items[j].value, &swap);
        const item *x = swap ? &items[j] : &items[i], *y = swap ? &items[i] : &items[j];
        item c = {.value = apply_op(op, x->value, y->value)};
        if (!combine_text(&c, x, op, y))
            return ad_error_set(err, "countdown: expression longer than %d bytes", EXPR_BUF);
        size_t lo = i < j ? i : j, hi = i < j ? j : i;
        items[lo] = c;
        items[hi] = items[live - 1];
    }
    ad_text_clear(&out->prompt);
    for (size_t i = 0; i < n; i++)
        if ((i > 0 && ad_text_putc(&out->prompt, ',', err)) ||
            ad_text_put_uint(&out->prompt, numbers[i], err))
            return AD_ERR;
    if (ad_text_putc(&out->prompt, ':', err) ||
        ad_text_put_uint(&out->prompt, items[0].value, err) || ad_text_putc(&out->prompt, '=', err))
        return AD_ERR;
    ad_text_clear(&out->answer);
    return ad_text_append(&out->answer, items[0].text, strlen(items[0].text), err);
}

/* Parses "N,N,...:T=" into numbers (count *n) and the target. */
static int scan_prompt(const char *prompt, uint64_t *numbers, size_t *n, uint64_t *target,
                       ad_error *err) {
    const char *p = prompt;
    if (!ad_scan_number_list(&p, ':', numbers, COUNTDOWN_VERIFY_MAX_NUMBERS, n) ||
        !ad_scan_uint(&p, target) || p[0] != '=' || p[1] != '\0')
        return ad_prompt_error(err, "countdown", prompt, "N,N,...,N:TARGET=  (at most 64 N)");
    return AD_OK;
}

static int countdown_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                            ad_error *err) {
    uint64_t numbers[COUNTDOWN_VERIFY_MAX_NUMBERS], target;
    size_t n;
    if (scan_prompt(prompt, numbers, &n, &target, err)) return AD_ERR;
    if (ad_verdict_foreign_char(v, answer, "0123456789+-*/()")) return AD_OK;
    ad_rational value;
    char why[AD_VERDICT_REASON_MAX];
    if (!ad_expr_eval(answer, numbers, n, &value, why, sizeof why))
        return ad_verdict_fail(v, "%s", why);
    if (value.den != 1 || value.num != (__int128)target) {
        if (value.den == 1 && value.num >= -(__int128)INT64_MAX && value.num <= INT64_MAX)
            return ad_verdict_fail(v, "the expression is %lld, not %llu", (long long)value.num,
                                   (unsigned long long)target);
        return ad_verdict_fail(v, "the expression is not %llu", (unsigned long long)target);
    }
    return ad_verdict_pass(v);
}

/* Every number, n-1 operators and at most one pair of parentheses around each
 * operator but the outermost: the longest expression without redundant
 * parentheses. */
static int countdown_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    uint64_t numbers[COUNTDOWN_VERIFY_MAX_NUMBERS], target;
    size_t n;
    if (scan_prompt(prompt, numbers, &n, &target, err)) return AD_ERR;
    size_t digits = (size_t)(strchr(prompt, ':') - prompt) - (n - 1);
    *out = digits + (n - 1) + (n >= 2 ? 2 * (n - 2) : 0);
    return AD_OK;
}

const ad_task_ops ad_task_countdown_ops = {
    .name = "countdown",
    .description = "reach the target with + - * / and parentheses, each number used at most once",
    .knob = "numbers",
    .min = {COUNTDOWN_MIN, AD_LEVEL_SCALAR},
    .max = {COUNTDOWN_MAX, AD_LEVEL_SCALAR},
    .tokens = countdown_tokens,
    .n_tokens = sizeof countdown_tokens / sizeof countdown_tokens[0],
    .generate = countdown_generate,
    .verify = countdown_verify,
    .max_answer_len = countdown_max_len,
};
