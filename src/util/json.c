/* json.c: strict JSON parsing (see json.h). */
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

/* The byte offset of the first "\u0000" escape (an odd run of backslashes
 * before "u0000"), or len when there is none. */
static size_t find_nul_escape(const char *t, size_t len) {
    for (size_t i = 0; i + 5 < len; i++) {
        if (t[i] != '\\' || t[i + 1] != 'u' || memcmp(t + i + 2, "0000", 4)) continue;
        size_t run = 1;
        while (run <= i && t[i - run] == '\\')
            run++;
        if (run % 2 == 1) return i; /* this backslash is not itself escaped */
    }
    return len;
}

static int key_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *ad_json_duplicate_key(const char *const *keys, size_t n, int *oom) {
    *oom = 0;
    if (n < 2) return NULL;
    const char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) return *oom = 1, NULL;
    memcpy(sorted, keys, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, key_cmp);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (!strcmp(sorted[i - 1], sorted[i])) dup = sorted[i];
    free(sorted);
    return dup;
}

/* The first key that appears twice in some object of the tree, or NULL
 * (*oom set when memory ran out). */
static const char *duplicate_key(const cJSON *v, int *oom) {
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        const char *d = duplicate_key(c, oom);
        if (d || *oom) return d;
        n++;
    }
    if (!cJSON_IsObject(v) || n < 2) return NULL;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) return *oom = 1, NULL;
    size_t k = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        keys[k++] = c->string ? c->string : "";
    const char *dup = ad_json_duplicate_key(keys, n, oom);
    free(keys);
    return dup;
}

cJSON *ad_json_parse_strict(const char *text, size_t len, ad_error *err) {
    const char *nul = memchr(text, '\0', len);
    if (nul) return ad_error_set(err, "a NUL byte at byte %zu", (size_t)(nul - text)), NULL;
    size_t esc = find_nul_escape(text, len);
    if (esc < len) return ad_error_set(err, "\"\\u0000\" (a NUL character) at byte %zu", esc), NULL;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return ad_error_set(err, "not valid JSON (near byte %zu)", at), NULL;
    }
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(v);
            return ad_error_set(err, "characters after the JSON value, at byte %zu",
                                (size_t)(p - text)),
                   NULL;
        }
    int oom = 0;
    const char *dup = duplicate_key(v, &oom);
    if (dup || oom) {
        if (oom)
            ad_error_set(err, "out of memory checking the keys");
        else
            ad_error_set(err, "the key \"%.60s\" appears twice in one object", dup);
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}
