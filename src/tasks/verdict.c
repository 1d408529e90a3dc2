/* verdict.c: filling verdicts, and the exact-match verdict with a reason that
 * says where and how an answer differs (foreign character, truncated, extra,
 * wrong character). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tasks/task_impl.h"

int ad_verdict_pass(ad_verdict *v) {
    v->correct = 1;
    v->score = 1.0;
    memcpy(v->reason, "correct", 8);
    return AD_OK;
}

int ad_verdict_fail(ad_verdict *v, const char *fmt, ...) {
    v->correct = 0;
    v->score = 0.0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
    if (!v->reason[0]) snprintf(v->reason, sizeof v->reason, "incorrect");
    return AD_OK;
}

const char *ad_describe_char(unsigned char c, char *buf, size_t cap) {
    if (c >= 32 && c < 127 && c != '\'')
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "\\x%02x", c);
    return buf;
}

int ad_verdict_exact(ad_verdict *v, const char *answer, const char *expected, size_t n,
                     const char *alphabet) {
    size_t len = strlen(answer);
    if (len == n && memcmp(answer, expected, n) == 0) return ad_verdict_pass(v);
    if (len == 0) return ad_verdict_fail(v, "empty answer");
    if (alphabet && ad_verdict_foreign_char(v, answer, alphabet)) return AD_OK;
    size_t common = len < n ? len : n, i = 0;
    while (i < common && answer[i] == expected[i])
        i++;
    if (i == common && len < n)
        return ad_verdict_fail(v, "answer stops after %zu of %zu characters", len, n);
    if (i == common)
        return ad_verdict_fail(v, "%zu extra characters after the %zu expected", len - n, n);
    if (len != n)
        return ad_verdict_fail(v,
                               "answer has %zu characters, expected %zu; first difference "
                               "at position %zu",
                               len, n, i + 1);
    return ad_verdict_fail(v, "wrong character at position %zu", i + 1);
}

int ad_verdict_foreign_char(ad_verdict *v, const char *answer, const char *alphabet) {
    size_t i = strspn(answer, alphabet);
    if (!answer[i]) return 0;
    char c[8];
    ad_verdict_fail(v, "character %s at position %zu is not in the alphabet",
                    ad_describe_char((unsigned char)answer[i], c, sizeof c), i + 1);
    return 1;
}
