/* report_buf.c: the report's growing text buffer and its HTML escaping. */
#include "report/report_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

void rp_buf_init(rp_buf *b) {
    memset(b, 0, sizeof *b);
}

void rp_buf_free(rp_buf *b) {
    free(b->s);
    rp_buf_init(b);
}

/* Makes room for `more` bytes plus the NUL; sets failed on error. */
static int grow(rp_buf *b, size_t more) {
    if (b->failed) return 0;
    if (b->n + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

static void append(rp_buf *b, const char *s, size_t len) {
    if (!grow(b, len)) return;
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

void rp_printf(rp_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->failed = 1;
        return;
    }
    if (!grow(b, (size_t)len)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

void rp_esc(rp_buf *b, const char *text) {
    if (!text) return;
    size_t len = strlen(text);
    /* ill-formed UTF-8 would be replaced by the browser anyway; doing it here
     * keeps the SVG well-formed XML for any stored bytes */
    int valid = ad_utf8_valid(text, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        switch (c) {
        case '&':
            append(b, "&amp;", 5);
            continue;
        case '<':
            append(b, "&lt;", 4);
            continue;
        case '>':
            append(b, "&gt;", 4);
            continue;
        case '"':
            append(b, "&quot;", 6);
            continue;
        case '\'':
            append(b, "&#39;", 5);
            continue;
        default:
            break;
        }
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || (c >= 0x80 && !valid))
            append(b, REPLACEMENT, sizeof REPLACEMENT - 1);
        else
            append(b, (const char *)&text[i], 1);
    }
}

int rp_buf_check(const rp_buf *b, ad_error *err) {
    if (b->failed) return ad_error_set(err, "report: out of memory");
    return AD_OK;
}
