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
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s%s", prefix, old);
    return AD_ERR;
}

void ad_error_clear(ad_error *err) {
    if (err) err->msg[0] = '\0';
}
