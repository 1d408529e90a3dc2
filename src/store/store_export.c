/* store_export.c: a round's candidates, or its preference pairs, as JSON
 * lines (`autodidact export`). */
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

/* true, false, or null for unknown (-1). */
static int add_correct(cJSON *o, const char *key, int correct) {
    if (correct < 0) return cJSON_AddNullToObject(o, key) != NULL;
    return cJSON_AddBoolToObject(o, key, correct == 1) != NULL;
}

/* Writes o as one line and frees it; counts the line. */
static int write_line(export_ctx *x, cJSON *o, int ok, ad_error *err) {
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line) return ad_error_set(err, "%s: export: out of memory", x->st->path);
    int bad = fputs(line, x->out) < 0 || fputc('\n', x->out) == EOF;
    free(line);
    if (bad) return ad_error_set(err, "%s: export: write failed", x->st->path);
    x->n++;
    return AD_OK;
}

/* Flushes the output; the count goes to *n_written either way. */
static int export_end(export_ctx *x, int rc, size_t *n_written, ad_error *err) {
    if (n_written) *n_written = x->n;
    if (rc == AD_OK && (fflush(x->out) != 0 || ferror(x->out)))
        return ad_error_set(err, "%s: export: write failed", x->st->path);
    return rc;
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
         cJSON_AddBoolToObject(o, "kept", r->kept != 0) && add_correct(o, "correct", r->correct) &&
         cJSON_AddNumberToObject(o, "lineage", (double)r->lineage);
    return write_line(x, o, ok, err);
}

int ad_store_export_jsonl(ad_store *st, uint32_t round, const char *stage, FILE *out,
                          size_t *n_written, ad_error *err) {
    export_ctx x = {st, out, 0};
    int rc = ad_store_samples_foreach(st, round, stage, export_row, &x, err);
    return export_end(&x, rc, n_written, err);
}

/* prompt, chosen and rejected first: the fields TRL's DPOTrainer reads. */
static int export_pair(void *ctx, const ad_store_pair *p, ad_error *err) {
    export_ctx *x = ctx;
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "prompt", p->prompt) &&
             cJSON_AddStringToObject(o, "chosen", p->chosen) &&
             cJSON_AddStringToObject(o, "rejected", p->rejected);
    cJSON *level = ok ? level_json(p->level) : NULL;
    ok = ok && level && cJSON_AddItemToObject(o, "level", level);
    if (!ok) cJSON_Delete(level);
    ok = ok &&
         (p->rule ? cJSON_AddStringToObject(o, "rule", p->rule)
                  : cJSON_AddNullToObject(o, "rule")) &&
         add_correct(o, "chosen_correct", p->chosen_correct) &&
         add_correct(o, "rejected_correct", p->rejected_correct) &&
         cJSON_AddNumberToObject(o, "chosen_lineage", (double)p->chosen_lineage) &&
         cJSON_AddNumberToObject(o, "rejected_lineage", (double)p->rejected_lineage);
    return write_line(x, o, ok, err);
}

int ad_store_export_pairs_jsonl(ad_store *st, uint32_t round, FILE *out, size_t *n_written,
                                ad_error *err) {
    export_ctx x = {st, out, 0};
    int rc = ad_store_pairs_foreach(st, round, export_pair, &x, err);
    return export_end(&x, rc, n_written, err);
}
