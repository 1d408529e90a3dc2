/* error.h: the error value every fallible library function fills.
 *
 * Library functions never print or exit: they return AD_ERR (-1) and leave a
 * human-readable message with context (file, line, key, value) in an ad_error
 * the caller owns. The CLI prints it and exits non-zero. */
#ifndef AD_UTIL_ERROR_H
#define AD_UTIL_ERROR_H

#include <stddef.h>

#define AD_OK 0
#define AD_ERR (-1)

typedef struct ad_error {
    char msg[1024];
} ad_error;

/* Formats a message into err (when err is not NULL) and returns AD_ERR, so that
 * a failing path can read `return ad_error_set(err, "...", ...);`. */
int ad_error_set(ad_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context ("file.json: ") to an existing message; returns AD_ERR. */
int ad_error_prefix(ad_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err (when not NULL). This function can't fail. */
void ad_error_clear(ad_error *err);

#endif
