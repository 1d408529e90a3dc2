/* test_json.c: strict JSON parsing (util/json.h): what cJSON alone accepts and
 * Python refuses or reads otherwise is refused, with where it is. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "util/json.h"

/* Refused, with `part` in the message. */
static void refused(const char *text, size_t len, const char *part) {
    ad_error err = {{0}};
    cJSON *v = ad_json_parse_strict(text, len, &err);
    CHECK_MSG(v == NULL && strstr(err.msg, part), "'%.40s': got '%s', want '%s'", text, err.msg,
              part);
    cJSON_Delete(v);
}

static void test_refusals(void) {
    const char *trail = "{\"a\": 1} x";
    refused(trail, strlen(trail), "characters after the JSON value, at byte 9");
    const char nul[] = "{\"a\": 1}\0   ";
    refused(nul, sizeof nul - 1, "a NUL byte at byte 8");
    const char *esc = "{\"name\": \"ab\\u0000cd\"}";
    refused(esc, strlen(esc), "\"\\u0000\" (a NUL character) at byte 12");
    const char *dup = "{\"a\": {\"x\": 1, \"y\": 2, \"x\": 3}}";
    refused(dup, strlen(dup), "the key \"x\" appears twice in one object");
    const char *bad = "{\"a\": ";
    refused(bad, strlen(bad), "not valid JSON");
}

static void test_accepted(void) {
    ad_error err = {{0}};
    /* an escaped backslash before u0000 is text, not a NUL; trailing blanks are fine;
     * the same key in two different objects is fine */
    const char *ok = "{\"p\": \"\\\\u0000\", \"q\": [{\"x\": 1}, {\"x\": 2}]}  \r\n";
    cJSON *v = ad_json_parse_strict(ok, strlen(ok), &err);
    CHECK_MSG(v != NULL, "%s", err.msg);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "p");
    CHECK(cJSON_IsString(p) && !strcmp(p->valuestring, "\\u0000"));
    cJSON_Delete(v);
    const char *three = "\\\\\\u0000"; /* an odd run: the last backslash escapes u0000 */
    char buf[64];
    snprintf(buf, sizeof buf, "[\"%s\"]", three);
    refused(buf, strlen(buf), "(a NUL character)");
}

int main(void) {
    RUN(test_refusals);
    RUN(test_accepted);
    return test_summary();
}
