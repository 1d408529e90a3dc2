/* countdown_expr.h: exact evaluation of an arithmetic expression whose numbers
 * must come from a given multiset, for the countdown verifier.
 *
 * Grammar (no blanks, no unary minus):
 *   expr   := term (('+' | '-') term)*
 *   term   := factor (('*' | '/') factor)*
 *   factor := NUMBER | '(' expr ')'
 * Arithmetic is on exact rationals with 128-bit numerator and denominator;
 * division by zero, overflow, a number not available (or used more often than
 * it is given), nesting deeper than 64 or text longer than 4096 bytes make the
 * expression invalid. Internal to src/tasks. */
#ifndef AD_TASKS_COUNTDOWN_EXPR_H
#define AD_TASKS_COUNTDOWN_EXPR_H

#include <stddef.h>
#include <stdint.h>

typedef struct ad_rational {
    __int128 num, den; /* den > 0, gcd(num, den) == 1 */
} ad_rational;

/* Evaluates text using numbers from avail (n_avail values, each usable once
 * per occurrence). Returns 1 and sets *value, or 0 and writes why into reason. */
int ad_expr_eval(const char *text, const uint64_t *avail, size_t n_avail, ad_rational *value,
                 char *reason, size_t cap);

#endif
