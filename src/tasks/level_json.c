/* level_json.c: levels on the command line ("7", "5,6") and in JSON (7, [5,6]),
 * on top of the level type and text syntax of util/level.h. */
#include <stdio.h>
#include <string.h>

#include "tasks/task.h"

cJSON *ad_task_level_to_json(ad_level lv) {
    if (!ad_level_is_pair(lv)) return cJSON_CreateNumber(lv.a);
    int v[2] = {lv.a, lv.b};
    return cJSON_CreateIntArray(v, 2);
}

/* A JSON number that is an integer in [0, AD_LEVEL_MAX]. */
static int level_number(const cJSON *j, int32_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= AD_LEVEL_MAX) || d != (double)(int32_t)d) return 0;
    *out = (int32_t)d;
    return 1;
}

int ad_task_level_from_json(const cJSON *j, const char *what, ad_level *out, ad_error *err) {
    int32_t a, b;
    if (level_number(j, &a)) {
        *out = ad_level_int(a);
        return AD_OK;
    }
    if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2 &&
        level_number(cJSON_GetArrayItem(j, 0), &a) && level_number(cJSON_GetArrayItem(j, 1), &b)) {
        *out = ad_level_pair(a, b);
        return AD_OK;
    }
    return ad_error_set(err, "%s must be an integer 0..%d or a pair [a, b] of them", what,
                        AD_LEVEL_MAX);
}

int ad_task_level_parse(const char *text, ad_level *out, ad_error *err) {
    /* "a,b" is the command-line spelling of a pair; util/level.h reads "(a,b)". */
    const char *t = text;
    while (*t == ' ' || *t == '\t')
        t++;
    if (*t != '(' && strchr(t, ',')) {
        char wrapped[64];
        if (strlen(t) + 3 > sizeof wrapped)
            return ad_error_set(err, "level '%.40s...' is too long", t);
        snprintf(wrapped, sizeof wrapped, "(%s)", t);
        return ad_level_parse(wrapped, out, err);
    }
    return ad_level_parse(text, out, err);
}
