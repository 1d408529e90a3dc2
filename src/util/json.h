/* json.h: strict JSON parsing on top of cJSON, for every text we read from
 * disk or stdin (config.json, trainer states, safetensors headers, JSONL
 * lines). cJSON alone accepts what Python's json refuses or reads otherwise:
 * characters after the value, NUL bytes (taken for the end), duplicate keys
 * (cJSON returns the first, Python the last) and "\u0000" (which silently cuts
 * a string short). Each is refused here with where it is. */
#ifndef AD_UTIL_JSON_H
#define AD_UTIL_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "util/error.h"

/* Parses text[0..len) as one JSON value followed by nothing but whitespace;
 * refuses NUL bytes, "\u0000" escapes and an object with a key twice. The
 * error (no prefix: the caller names the file or line) says what and where
 * (byte offset, or the key). Returns NULL on error; free with cJSON_Delete. */
cJSON *ad_json_parse_strict(const char *text, size_t len, ad_error *err);

/* The first string of keys[0..n) that appears twice (sorting a copy: n log
 * n), or NULL when none does or memory is short (*oom set then). The check
 * the parser makes on each object, for writers that build one. */
const char *ad_json_duplicate_key(const char *const *keys, size_t n, int *oom);

#endif
