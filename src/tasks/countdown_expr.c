/* countdown_expr.c: a recursive-descent evaluator over exact 128-bit
 * rationals, with every failure (syntax, unknown or reused number, division by
 * zero, overflow, depth) turned into a reason string. */
#include "tasks/countdown_expr.h"

#include <stdio.h>
#include <string.h>

#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_LEN 4096
#define EXPR_MAX_NUMBERS 64

typedef struct parser {
    const char *text, *p;
    uint64_t avail[EXPR_MAX_NUMBERS];
    unsigned char used[EXPR_MAX_NUMBERS];
    size_t n_avail;
    int depth;
    char *reason;
    size_t cap;
} parser;

/* Writes the reason (fmt with one long long) and returns 0. */
static int fail(parser *ps, const char *fmt, long long x) {
    snprintf(ps->reason, ps->cap, fmt, x);
    return 0;
}

static int fail_msg(parser *ps, const char *msg) {
    snprintf(ps->reason, ps->cap, "%s", msg);
    return 0;
}

static __int128 gcd128(__int128 a, __int128 b) {
    if (a < 0) a = -a;
    while (b) {
        __int128 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Reduces r (den != 0) to lowest terms with a positive denominator. */
static void reduce(ad_rational *r) {
    if (r->den < 0) r->num = -r->num, r->den = -r->den;
    __int128 g = gcd128(r->num, r->den);
    if (g > 1) r->num /= g, r->den /= g;
}

/* r = x op y; 0 on overflow or division by zero (reason set). */
static int apply(parser *ps, char op, ad_rational x, ad_rational y, ad_rational *r) {
    __int128 a, b;
    int overflow = 0;
    switch (op) {
    case '+':
    case '-':
        overflow |= __builtin_mul_overflow(x.num, y.den, &a);
        overflow |= __builtin_mul_overflow(y.num, x.den, &b);
        overflow |= op == '+' ? __builtin_add_overflow(a, b, &r->num)
                              : __builtin_sub_overflow(a, b, &r->num);
        overflow |= __builtin_mul_overflow(x.den, y.den, &r->den);
        break;
    case '*':
        overflow |= __builtin_mul_overflow(x.num, y.num, &r->num);
        overflow |= __builtin_mul_overflow(x.den, y.den, &r->den);
        break;
    default: /* '/' */
        if (y.num == 0) return fail_msg(ps, "division by zero");
        overflow |= __builtin_mul_overflow(x.num, y.den, &r->num);
        overflow |= __builtin_mul_overflow(x.den, y.num, &r->den);
        break;
    }
    /* Keeping magnitudes under 2^125 makes the sign flips in reduce() safe. */
    const __int128 limit = (__int128)1 << 125;
    overflow |= r->num > limit || r->num < -limit || r->den > limit || r->den < -limit;
    if (overflow) return fail_msg(ps, "an intermediate value exceeds 125 bits");
    reduce(r);
    return 1;
}

static int parse_expr(parser *ps, ad_rational *out);

/* Takes one unused occurrence of x from the available numbers. */
static int use_number(parser *ps, uint64_t x) {
    int seen = 0;
    for (size_t i = 0; i < ps->n_avail; i++) {
        if (ps->avail[i] != x) continue;
        seen = 1;
        if (!ps->used[i]) {
            ps->used[i] = 1;
            return 1;
        }
    }
    if (seen) return fail(ps, "%lld is used more often than it is given", (long long)x);
    return fail(ps, "%lld is not one of the given numbers", (long long)x);
}

static int parse_factor(parser *ps, ad_rational *out) {
    long long pos = (long long)(ps->p - ps->text) + 1;
    if (*ps->p == '(') {
        if (++ps->depth > EXPR_MAX_DEPTH)
            return fail(ps, "parentheses nested deeper than %lld", EXPR_MAX_DEPTH);
        ps->p++;
        if (!parse_expr(ps, out)) return 0;
        if (*ps->p != ')')
            return fail(ps, "missing ')' at position %lld", (long long)(ps->p - ps->text) + 1);
        ps->p++;
        ps->depth--;
        return 1;
    }
    size_t n = 0;
    while (ps->p[n] >= '0' && ps->p[n] <= '9')
        n++;
    if (n == 0) return fail(ps, "expected a number or '(' at position %lld", pos);
    if (n > 1 && ps->p[0] == '0')
        return fail(ps, "number with a leading zero at position %lld", pos);
    if (n > 18) return fail(ps, "number too long at position %lld", pos);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (uint64_t)(ps->p[i] - '0');
    ps->p += n;
    if (!use_number(ps, x)) return 0;
    out->num = (__int128)x;
    out->den = 1;
    return 1;
}

static int parse_term(parser *ps, ad_rational *out) {
    if (!parse_factor(ps, out)) return 0;
    while (*ps->p == '*' || *ps->p == '/') {
        char op = *ps->p++;
        ad_rational y;
        if (!parse_factor(ps, &y) || !apply(ps, op, *out, y, out)) return 0;
    }
    return 1;
}

static int parse_expr(parser *ps, ad_rational *out) {
    if (!parse_term(ps, out)) return 0;
    while (*ps->p == '+' || *ps->p == '-') {
        char op = *ps->p++;
        ad_rational y;
        if (!parse_term(ps, &y) || !apply(ps, op, *out, y, out)) return 0;
    }
    return 1;
}

int ad_expr_eval(const char *text, const uint64_t *avail, size_t n_avail, ad_rational *value,
                 char *reason, size_t cap) {
    parser ps = {.text = text, .p = text, .reason = reason, .cap = cap};
    if (!*text) return fail_msg(&ps, "empty answer");
    if (strlen(text) > EXPR_MAX_LEN)
        return fail(&ps, "answer longer than %lld bytes", EXPR_MAX_LEN);
    if (n_avail > EXPR_MAX_NUMBERS)
        return fail(&ps, "more than %lld numbers given", EXPR_MAX_NUMBERS);
    memcpy(ps.avail, avail, n_avail * sizeof *avail);
    ps.n_avail = n_avail;
    if (!parse_expr(&ps, value)) return 0;
    if (*ps.p)
        return fail(&ps, "unexpected character at position %lld", (long long)(ps.p - text) + 1);
    return 1;
}
