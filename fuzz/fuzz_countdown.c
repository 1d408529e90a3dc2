/* fuzz_countdown.c: the countdown verifier's exact expression evaluator.
 * Input: a first line of available numbers (decimal, blank-separated, at most
 * 16), then the expression text. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "tasks/countdown_expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    char *nl = strchr(text, '\n');
    const char *expr = nl ? nl + 1 : "";
    if (nl) *nl = '\0';
    uint64_t avail[16];
    size_t n = 0;
    for (char *p = text, *end; n < 16 && *p; p = end) {
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p) break;
        avail[n++] = x;
    }
    ad_rational value;
    char reason[256];
    if (ad_expr_eval(expr, avail, n, &value, reason, sizeof reason)) {
        if (value.den <= 0) fuzz_fail("denominator not positive", expr);
    } else if (!memchr(reason, '\0', sizeof reason)) {
        fuzz_fail("reason not terminated", expr);
    }
    free(text);
    return 0;
}
