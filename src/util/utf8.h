/* utf8.h: checking that bytes are well-formed UTF-8, so that strings we put in
 * JSON files (token lists, tensor names) are readable by any JSON parser. Not a
 * Unicode library: no decoding, normalisation or character classes. */
#ifndef AD_UTIL_UTF8_H
#define AD_UTIL_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF), else 0. This function can't fail. */
int ad_utf8_valid(const char *s, size_t n);

#endif
