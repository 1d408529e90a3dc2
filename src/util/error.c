/* error.c: formatting of ad_error messages. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ad_error_set(ad_error *err, const char *fmt, ...) {
    if (!err) return AD_ERR;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return AD_ERR;
}

int ad_error_prefix(ad_error *err, const char *fmt, ...) {
    if (!err) return AD_ERR;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right by the prefix, truncating its tail. */
    size_t cap = sizeof err->msg - 1, np = strlen(prefix), no = strnlen(err->msg, cap);
    if (np > cap) np = cap;
    if (no > cap - np) no = cap - np;
    memmove(err->msg + np, err->msg, no);
    memcpy(err->msg, prefix, np);
    err->msg[np + no] = '\0';
    return AD_ERR;
}

void ad_error_clear(ad_error *err) {
    if (err) err->msg[0] = '\0';
}
