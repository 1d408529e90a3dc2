/* store_export.c: a round's candidates as JSON lines (`autodidact export`). */
#include "store/store_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

typedef struct export_ctx {
    ad_store *st;
    FILE *out;
    size_t n;
} export_ctx;

/* The level as a JSON number, or [a, b] for a pair (the tasks' convention). */
static cJSON *level_json(ad_level l) {
    if (!ad_level_is_pair(l)) return cJSON_CreateNumber(l.a);
    int pair[2] = {l.a, l.b};
    return cJSON_CreateIntArray(pair, 2);
}

static int export_row(void *ctx, const ad_store_sample *r, ad_error *err) {
    export_ctx *x = ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON *level = level_json(r->level);
    int ok = o && level;
    if (ok)
        cJSON_AddItemToObject(o, "level", level);
    else
        cJSON_Delete(level);
    /* cJSON writes a non-finite number (an empty completion's log-prob) as null */
    ok = ok && cJSON_AddStringToObject(o, "prompt", r->prompt) &&
         cJSON_AddStringToObject(o, "completion", r->completion) &&
         cJSON_AddNumberToObject(o, "logprob", r->logprob) &&
         cJSON_AddBoolToObject(o, "kept", r->kept != 0) &&
         (r->correct < 0 ? cJSON_AddNullToObject(o, "correct") != NULL
                         : cJSON_AddBoolToObject(o, "correct", r->correct == 1) != NULL) &&
         cJSON_AddNumberToObject(o, "lineage", (double)r->lineage);
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line) return ad_error_set(err, "%s: export: out of memory", x->st->path);
    int bad = fputs(line, x->out) < 0 || fputc('\n', x->out) == EOF;
    free(line);
    if (bad) return ad_error_set(err, "%s: export: write failed", x->st->path);
    x->n++;
    return AD_OK;
}

int ad_store_export_jsonl(ad_store *st, uint32_t round, const char *stage, FILE *out,
                          size_t *n_written, ad_error *err) {
    export_ctx x = {st, out, 0};
    int rc = ad_store_samples_foreach(st, round, stage, export_row, &x, err);
    if (n_written) *n_written = x.n;
    if (rc == AD_OK && (fflush(out) != 0 || ferror(out)))
        return ad_error_set(err, "%s: export: write failed", st->path);
    return rc;
}
