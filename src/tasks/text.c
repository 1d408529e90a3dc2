/* text.c: growable strings for prompts and answers, and the small scanners the
 * task parsers share (digit runs, number lists, quoting for messages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"

int ad_text_reserve(ad_text *t, size_t len, ad_error *err) {
    if (len + 1 <= t->cap) return AD_OK;
    if (len >= ((size_t)1 << 40)) return ad_error_set(err, "text of %zu bytes is too long", len);
    size_t cap = t->cap ? t->cap : 64;
    while (cap < len + 1)
        cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) return ad_error_set(err, "out of memory for a text of %zu bytes", len);
    t->s = s;
    t->cap = cap;
    return AD_OK;
}

char *ad_text_start(ad_text *t, size_t len, ad_error *err) {
    if (ad_text_reserve(t, len, err)) return NULL;
    t->len = len;
    t->s[len] = '\0';
    return t->s;
}

void ad_text_clear(ad_text *t) {
    t->len = 0;
    if (t->s) t->s[0] = '\0';
}

int ad_text_append(ad_text *t, const char *s, size_t n, ad_error *err) {
    if (ad_text_reserve(t, t->len + n, err)) return AD_ERR;
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
    return AD_OK;
}

int ad_text_putc(ad_text *t, char c, ad_error *err) {
    return ad_text_append(t, &c, 1, err);
}

int ad_text_put_uint(ad_text *t, uint64_t x, ad_error *err) {
    char buf[24], *p = buf + sizeof buf; /* digits from the right: no printf on hot paths */
    do {
        *--p = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    return ad_text_append(t, p, (size_t)(buf + sizeof buf - p), err);
}

void ad_problem_free(ad_problem *p) {
    free(p->prompt.s);
    free(p->answer.s);
    memset(p, 0, sizeof *p);
}

const char *ad_quote(const char *s, char *buf, size_t cap) {
    /* Keeps the message readable: at most ~60 visible bytes, control bytes
     * shown as '?', and "..." when cut. */
    size_t limit = cap > 64 ? 60 : (cap > 4 ? cap - 4 : 0), n = 0;
    for (; n < limit && s[n]; n++)
        buf[n] = (s[n] >= 32 && s[n] < 127) ? s[n] : '?';
    if (s[n] && cap >= 4) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

int ad_prompt_error(ad_error *err, const char *task, const char *prompt, const char *form) {
    char q[80];
    return ad_error_set(err, "%s: prompt '%s' is not of the form %s", task,
                        ad_quote(prompt, q, sizeof q), form);
}

int ad_scan_uint(const char **s, uint64_t *out) {
    const char *p = *s;
    size_t n = ad_span_digits(p);
    if (n == 0 || n > 18 || (n > 1 && p[0] == '0')) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (uint64_t)(p[i] - '0');
    *out = x;
    *s = p + n;
    return 1;
}

int ad_scan_number_list(const char **s, char end, uint64_t *vals, size_t cap, size_t *n) {
    const char *p = *s;
    size_t count = 0;
    for (;;) {
        uint64_t x;
        if (count == cap || !ad_scan_uint(&p, &x)) return 0;
        vals[count++] = x;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != end) return 0;
        *s = p + 1;
        *n = count;
        return 1;
    }
}

int ad_scan_binary(const char *prompt, char op, const char **a, size_t *la, const char **b,
                   size_t *lb) {
    size_t n1 = ad_span_digits(prompt);
    if (n1 == 0 || prompt[n1] != op) return 0;
    const char *q = prompt + n1 + 1;
    size_t n2 = ad_span_digits(q);
    if (n2 == 0 || q[n2] != '=' || q[n2 + 1] != '\0') return 0;
    *a = prompt;
    *la = n1;
    *b = q;
    *lb = n2;
    return 1;
}
