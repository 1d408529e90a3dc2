/* digits.c: random digit strings and schoolbook addition on reversed decimal
 * strings, the arithmetic under the addition and multiplication tasks. */
#include "tasks/task_impl.h"

#define DIGITS_PER_DRAW 18
#define TEN_POW_18 1000000000000000000ull

void ad_random_digits(ad_rng *rng, char *out, size_t n) {
    /* One unbiased draw below 10^18 gives 18 independent uniform digits. */
    while (n > 0) {
        uint64_t x = ad_rng_below(rng, TEN_POW_18);
        size_t k = n < DIGITS_PER_DRAW ? n : DIGITS_PER_DRAW;
        for (size_t i = 0; i < k; i++) {
            out[i] = (char)('0' + x % 10);
            x /= 10;
        }
        out += k;
        n -= k;
    }
}

void ad_random_reversed_number(ad_rng *rng, char *out, size_t n) {
    ad_random_digits(rng, out, n - 1);
    out[n - 1] = (char)('1' + ad_rng_below(rng, 9));
}

void ad_add_reversed(const char *a, size_t la, const char *b, size_t lb, char *out) {
    size_t n = la > lb ? la : lb;
    int carry = 0;
    for (size_t i = 0; i < n; i++) {
        int s = carry + (i < la ? a[i] - '0' : 0) + (i < lb ? b[i] - '0' : 0);
        carry = s >= 10;
        out[i] = (char)('0' + (carry ? s - 10 : s));
    }
    out[n] = (char)('0' + carry);
}
