/* config.c: the key registry, typed value parsing, INI loading through inih
 * (with our own line reader for line numbers and indentation), overrides, and
 * writing the config back as INI or as a Markdown table. */
#include "util/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/atomic_file.h"

#define DOC_MAX 120

/* One parsed value, before it is stored in the caller's struct. */
typedef union cfg_value {
    int64_t i;
    size_t z;
    uint64_t u;
    double d;
    float f;
    int b; /* bool and enum */
    char *s;
    ad_level_list levels;
    ad_level_schedule schedule;
} cfg_value;

static void *field_of(const ad_config_key *k, void *cfg) {
    return (char *)cfg + k->offset;
}

static const void *cfield_of(const ad_config_key *k, const void *cfg) {
    return (const char *)cfg + k->offset;
}

/* Bytes of the field that holds a value of type t. */
static size_t field_size(ad_config_type t) {
    switch (t) {
    case AD_CONFIG_INT:
        return sizeof(int64_t);
    case AD_CONFIG_SIZE:
        return sizeof(size_t);
    case AD_CONFIG_U64:
        return sizeof(uint64_t);
    case AD_CONFIG_DOUBLE:
        return sizeof(double);
    case AD_CONFIG_FLOAT:
        return sizeof(float);
    case AD_CONFIG_BOOL:
    case AD_CONFIG_ENUM:
        return sizeof(int);
    case AD_CONFIG_STRING:
        return sizeof(char *);
    case AD_CONFIG_LEVELS:
        return sizeof(ad_level_list);
    case AD_CONFIG_SCHEDULE:
        return sizeof(ad_level_schedule);
    }
    return 0;
}

static const char *type_name(ad_config_type t) {
    static const char *const names[] = {"int",  "size",   "u64",  "double", "float",
                                        "bool", "string", "enum", "levels", "schedule"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* "WHERE: NAME = 'VALUE': MESSAGE" */
static int value_error(ad_error *err, const char *where, const char *name, const char *value,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int value_error(ad_error *err, const char *where, const char *name, const char *value,
                       const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ad_error_set(err, "%s: %s = '%s': %s", where, name, value, msg);
}

/* ---- value parsing --------------------------------------------------------- */

static int parse_i64(const char *t, int64_t *out) {
    if (!*t || isspace((unsigned char)*t)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(t, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *t, uint64_t *out) {
    if (!isdigit((unsigned char)*t)) return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *t, double *out) {
    if (!*t || isspace((unsigned char)*t)) return -1;
    errno = 0;
    char *end;
    double v = strtod(t, &end);
    if (*end || !isfinite(v) || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *t, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(t, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(t, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

/* Captures the value inih reads back from a one-line file. */
typedef struct echo {
    char value[AD_CONFIG_VALUE_MAX + 1];
    int calls;
} echo;

static int echo_handler(void *user, const char *section, const char *name, const char *value) {
    echo *e = user;
    e->calls++;
    snprintf(e->value, sizeof e->value, "%s", value);
    return 1;
}

/* 1 when "k = text" read back by inih yields exactly text, so a dump of the
 * value re-reads identically (no " ;" comment, no line break, no edge blanks). */
static int survives_ini(const char *text) {
    char line[AD_CONFIG_VALUE_MAX + 8];
    if (strlen(text) > AD_CONFIG_VALUE_MAX) return 0;
    snprintf(line, sizeof line, "k = %s\n", text);
    echo e = {{0}, 0};
    if (ini_parse_string(line, echo_handler, &e) != 0) return 0;
    return e.calls == 1 && strcmp(e.value, text) == 0;
}

static void format_real(double x, int is_float, char *buf, size_t cap);

static int check_range(const ad_config_key *k, double v, const char *where, const char *text,
                       ad_error *err) {
    if (!k->has_range || (v >= k->min && v <= k->max)) return AD_OK;
    char lo[32], hi[32];
    format_real(k->min, 0, lo, sizeof lo);
    format_real(k->max, 0, hi, sizeof hi);
    return value_error(err, where, k->name, text, "must be between %s and %s", lo, hi);
}

static int parse_enum(const ad_config_key *k, const char *text, const char *where, int *out,
                      ad_error *err) {
    char list[256] = "";
    for (int i = 0; k->choices && k->choices[i]; i++) {
        if (strcasecmp(text, k->choices[i]) == 0) return *out = i, AD_OK;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", k->choices[i]);
    }
    return value_error(err, where, k->name, text, "not one of: %s", list);
}

/* Parses text as a value of k's type into *v (which then owns any memory). */
static int parse_value(const ad_config_key *k, const char *text, const char *where, cfg_value *v,
                       ad_error *err) {
    memset(v, 0, sizeof *v);
    if (strlen(text) > AD_CONFIG_VALUE_MAX)
        return ad_error_set(err, "%s: %s: value of %zu characters is too long (at most %d)", where,
                            k->name, strlen(text), AD_CONFIG_VALUE_MAX);
    if (!survives_ini(text))
        return value_error(err, where, k->name, text,
                           "cannot be written to an INI file (a ' ;' comment, a line break or "
                           "blanks at an end)");
    ad_error sub;
    switch (k->type) {
    case AD_CONFIG_INT:
        if (parse_i64(text, &v->i)) return value_error(err, where, k->name, text, "not an integer");
        return check_range(k, (double)v->i, where, text, err);
    case AD_CONFIG_SIZE:
    case AD_CONFIG_U64: {
        uint64_t u;
        if (parse_u64(text, &u))
            return value_error(err, where, k->name, text, "not a non-negative integer");
        if (k->type == AD_CONFIG_SIZE && u > SIZE_MAX)
            return value_error(err, where, k->name, text, "too large");
        if (k->type == AD_CONFIG_SIZE)
            v->z = (size_t)u;
        else
            v->u = u;
        return check_range(k, (double)u, where, text, err);
    }
    case AD_CONFIG_DOUBLE:
        if (parse_double(text, &v->d))
            return value_error(err, where, k->name, text, "not a number");
        return check_range(k, v->d, where, text, err);
    case AD_CONFIG_FLOAT: {
        double d;
        if (parse_double(text, &d) || !isfinite((float)d))
            return value_error(err, where, k->name, text, "not a number");
        if (d != 0 && (float)d == 0.0f)
            return value_error(err, where, k->name, text,
                               "too small for a float: it would be read as 0");
        v->f = (float)d;
        return check_range(k, d, where, text, err);
    }
    case AD_CONFIG_BOOL:
        if (parse_bool(text, &v->b))
            return value_error(err, where, k->name, text,
                               "not a boolean (true/false, yes/no, on/off, 1/0)");
        return AD_OK;
    case AD_CONFIG_STRING:
        v->s = strdup(text);
        return v->s ? AD_OK : ad_error_set(err, "%s: %s: out of memory", where, k->name);
    case AD_CONFIG_ENUM:
        return parse_enum(k, text, where, &v->b, err);
    case AD_CONFIG_LEVELS:
        if (ad_level_list_parse(text, &v->levels, &sub) == AD_OK) return AD_OK;
        return ad_error_set(err, "%s: %s: %s", where, k->name, sub.msg);
    case AD_CONFIG_SCHEDULE:
        if (ad_level_schedule_parse(text, &v->schedule, &sub) == AD_OK) return AD_OK;
        return ad_error_set(err, "%s: %s: %s", where, k->name, sub.msg);
    }
    return ad_error_set(err, "%s: %s: unknown type %d", where, k->name, (int)k->type);
}

static void free_value(const ad_config_key *k, cfg_value *v) {
    if (k->type == AD_CONFIG_STRING) free(v->s);
    if (k->type == AD_CONFIG_LEVELS) ad_level_list_free(&v->levels);
    if (k->type == AD_CONFIG_SCHEDULE) ad_level_schedule_free(&v->schedule);
    memset(v, 0, sizeof *v);
}

/* Frees what the field holds and zeroes it. */
static void free_field(const ad_config_key *k, void *cfg) {
    void *f = field_of(k, cfg);
    if (k->type == AD_CONFIG_STRING) {
        free(*(char **)f);
        *(char **)f = NULL;
    }
    if (k->type == AD_CONFIG_LEVELS) ad_level_list_free(f);
    if (k->type == AD_CONFIG_SCHEDULE) ad_level_schedule_free(f);
}

/* Moves v into the field (after freeing the old contents). */
static void store_value(const ad_config_key *k, void *cfg, cfg_value *v) {
    void *f = field_of(k, cfg);
    free_field(k, cfg);
    switch (k->type) {
    case AD_CONFIG_INT:
        *(int64_t *)f = v->i;
        break;
    case AD_CONFIG_SIZE:
        *(size_t *)f = v->z;
        break;
    case AD_CONFIG_U64:
        *(uint64_t *)f = v->u;
        break;
    case AD_CONFIG_DOUBLE:
        *(double *)f = v->d;
        break;
    case AD_CONFIG_FLOAT:
        *(float *)f = v->f;
        break;
    case AD_CONFIG_BOOL:
    case AD_CONFIG_ENUM:
        *(int *)f = v->b;
        break;
    case AD_CONFIG_STRING:
        *(char **)f = v->s;
        break;
    case AD_CONFIG_LEVELS:
        *(ad_level_list *)f = v->levels;
        break;
    case AD_CONFIG_SCHEDULE:
        *(ad_level_schedule *)f = v->schedule;
        break;
    }
    memset(v, 0, sizeof *v);
}

/* ---- registry -------------------------------------------------------------- */

static int valid_name(const char *name) {
    size_t len = strlen(name), dots = 0;
    if (len == 0 || len >= AD_CONFIG_NAME_MAX || name[0] == '.' || name[len - 1] == '.') return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '.')
            dots++;
        else if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '_'))
            return 0;
    }
    return dots <= 1;
}

int ad_config_schema_check(const ad_config_schema *s, ad_error *err) {
    for (size_t i = 0; i < s->n_keys; i++) {
        const ad_config_key *k = &s->keys[i];
        const char *name = k->name ? k->name : "(null)";
        if (!k->name || !valid_name(k->name))
            return ad_error_set(err, "config schema: key %zu: bad name '%s'", i, name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->keys[j].name, k->name) == 0)
                return ad_error_set(err, "config schema: key '%s' registered twice", name);
        if ((unsigned)k->type > AD_CONFIG_SCHEDULE)
            return ad_error_set(err, "config schema: %s: unknown type %d", name, (int)k->type);
        if (k->type == AD_CONFIG_ENUM && (!k->choices || !k->choices[0]))
            return ad_error_set(err, "config schema: %s: enum without choices", name);
        if (!k->doc || strlen(k->doc) > DOC_MAX || strchr(k->doc, '\n'))
            return ad_error_set(err, "config schema: %s: doc missing, multi-line or over %d chars",
                                name, DOC_MAX);
        if (!k->def) return ad_error_set(err, "config schema: %s: no default", name);
        cfg_value v;
        if (parse_value(k, k->def, "config schema: default", &v, err)) return AD_ERR;
        free_value(k, &v);
    }
    return AD_OK;
}

const ad_config_key *ad_config_find(const ad_config_schema *s, const char *name) {
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].name, name) == 0) return &s->keys[i];
    return NULL;
}

int ad_config_defaults(const ad_config_schema *s, void *cfg, ad_error *err) {
    if (ad_config_schema_check(s, err)) return AD_ERR;
    for (size_t i = 0; i < s->n_keys; i++) {
        const ad_config_key *k = &s->keys[i];
        memset(field_of(k, cfg), 0, field_size(k->type));
        if (ad_config_set_value(s, cfg, k->name, k->def, "default", err)) return AD_ERR;
    }
    return AD_OK;
}

/* Levenshtein distance of two short strings (names are < AD_CONFIG_NAME_MAX). */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), row[AD_CONFIG_NAME_MAX + 1];
    if (la > AD_CONFIG_NAME_MAX || lb > AD_CONFIG_NAME_MAX) return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

static int unknown_key(const ad_config_schema *s, const char *where, const char *name,
                       ad_error *err) {
    const char *best = NULL;
    size_t best_d = 3; /* suggest only close names */
    for (size_t i = 0; i < s->n_keys; i++) {
        size_t d = edit_distance(name, s->keys[i].name);
        if (d < best_d) best_d = d, best = s->keys[i].name;
    }
    if (best)
        return ad_error_set(err, "%s: unknown key '%s' (did you mean '%s'?)", where, name, best);
    return ad_error_set(err, "%s: unknown key '%s'", where, name);
}

int ad_config_set_value(const ad_config_schema *s, void *cfg, const char *name, const char *value,
                        const char *where, ad_error *err) {
    const ad_config_key *k = ad_config_find(s, name);
    if (!k) return unknown_key(s, where, name, err);
    cfg_value v;
    if (parse_value(k, value, where, &v, err)) return AD_ERR;
    store_value(k, cfg, &v);
    return AD_OK;
}

/* Copies s[0..len) without edge blanks into out (cap bytes); 0 if it does not fit. */
static int trim_into(const char *s, size_t len, char *out, size_t cap) {
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= cap) return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

int ad_config_set(const ad_config_schema *s, void *cfg, const char *assignment, ad_error *err) {
    const char *eq = strchr(assignment, '=');
    if (!eq) return ad_error_set(err, "--set '%s': expected section.key=value", assignment);
    char name[AD_CONFIG_NAME_MAX], value[AD_CONFIG_VALUE_MAX + 2];
    if (!trim_into(assignment, (size_t)(eq - assignment), name, sizeof name))
        return ad_error_set(err, "--set '%s': key name too long", assignment);
    if (!trim_into(eq + 1, strlen(eq + 1), value, sizeof value))
        return ad_error_set(err, "--set: %s: value too long (at most %d characters)", name,
                            AD_CONFIG_VALUE_MAX);
    return ad_config_set_value(s, cfg, name, value, "--set", err);
}

/* ---- loading INI ----------------------------------------------------------- */

typedef struct load_ctx {
    const ad_config_schema *s;
    void *cfg;
    const char *source;
    const char *p, *end; /* the unread text */
    size_t line;         /* lines handed to inih so far */
    size_t *set_on;      /* [n_keys] line where each key was set in this text (0: not) */
    int failed;
    ad_error *err;
} load_ctx;

/* A line's own faults, which inih would pass over: a carriage return that
 * does not end it (CR-only line endings would make the whole file one line,
 * and every key after the first section would be lost), and text after a
 * section header's ']' other than a comment ("[model] junk"). */
static int line_fault(load_ctx *c, const char *q, const char *stop) {
    if (q >= stop) return 0;
    const char *cr = memchr(q, '\r', (size_t)(stop - q));
    if (cr && cr + 1 != stop) {
        ad_error_set(c->err,
                     "%s:%zu: a carriage return inside the line (CR-only line endings? save the "
                     "file with LF or CRLF line endings)",
                     c->source, c->line);
        return 1;
    }
    if (q < stop && *q == '[') {
        const char *close = memchr(q, ']', (size_t)(stop - q)), *t = close ? close + 1 : stop;
        while (t < stop && (*t == ' ' || *t == '\t' || *t == '\r'))
            t++;
        if (close && t < stop && *t != ';' && *t != '#') {
            ad_error_set(c->err, "%s:%zu: text after the section header: '%.*s'", c->source,
                         c->line, (int)(stop - t > 40 ? 40 : stop - t), t);
            return 1;
        }
    }
    return 0;
}

/* inih's fgets-style reader: one line per call, indentation removed (so inih
 * never takes an indented line for a continuation), overlong lines refused. */
static char *read_line(char *str, int num, void *stream) {
    load_ctx *c = stream;
    if (c->failed || c->p >= c->end) return NULL;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    const char *stop = nl ? nl : c->end, *q = c->p;
    c->line++;
    while (q < stop && (*q == ' ' || *q == '\t'))
        q++;
    if (line_fault(c, q, stop)) {
        c->failed = 1;
        return NULL;
    }
    size_t len = (size_t)(stop - q);
    if (num < 3 || len > (size_t)num - 2) {
        ad_error_set(c->err, "%s:%zu: line longer than %d characters", c->source, c->line,
                     num > 2 ? num - 2 : 0);
        c->failed = 1;
        return NULL;
    }
    memcpy(str, q, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    c->p = nl ? nl + 1 : c->end;
    return str;
}

static int on_pair(void *user, const char *section, const char *name, const char *value) {
    load_ctx *c = user;
    if (c->failed) return 1;
    char where[512], full[AD_CONFIG_NAME_MAX * 2 + 2];
    snprintf(where, sizeof where, "%s:%zu", c->source, c->line);
    snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", name);
    const ad_config_key *k = ad_config_find(c->s, full);
    if (!k) {
        unknown_key(c->s, where, full, c->err);
        c->failed = 1;
        return 0;
    }
    size_t idx = (size_t)(k - c->s->keys);
    if (c->set_on[idx]) {
        ad_error_set(c->err, "%s: %s is set twice (first on line %zu)", where, full,
                     c->set_on[idx]);
        c->failed = 1;
        return 0;
    }
    c->set_on[idx] = c->line;
    if (ad_config_set_value(c->s, c->cfg, full, value, where, c->err)) {
        c->failed = 1;
        return 0;
    }
    return 1;
}

int ad_config_load_string(const ad_config_schema *s, void *cfg, const char *text,
                          const char *source, ad_error *err) {
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.cfg = cfg;
    c.source = source;
    c.p = text;
    c.end = text + strlen(text);
    c.err = err;
    c.set_on = calloc(s->n_keys ? s->n_keys : 1, sizeof *c.set_on);
    if (!c.set_on) return ad_error_set(err, "%s: out of memory", source);
    int rc = ini_parse_stream(read_line, &c, on_pair, &c);
    free(c.set_on);
    if (c.failed) return AD_ERR;
    if (rc > 0)
        return ad_error_set(err, "%s:%d: syntax error (expected '[section]' or 'key = value')",
                            source, rc);
    if (rc < 0) return ad_error_set(err, "%s: the INI parser failed (%d)", source, rc);
    return AD_OK;
}

int ad_config_load_file(const ad_config_schema *s, void *cfg, const char *path, ad_error *err) {
    char *text;
    size_t len;
    if (ad_read_file(path, AD_CONFIG_FILE_MAX, &text, &len, err)) return AD_ERR;
    int rc;
    if (strlen(text) != len)
        rc = ad_error_set(err, "%s: not a text file (contains a NUL byte)", path);
    else
        rc = ad_config_load_string(s, cfg, text, path, err);
    free(text);
    return rc;
}

/* ---- writing --------------------------------------------------------------- */

/* Shortest %.*g text that reads back as exactly x (double or float). */
static void format_real(double x, int is_float, char *buf, size_t cap) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, x);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)x : back == x) return;
    }
}

int ad_config_format_value(const ad_config_key *k, const void *cfg, char *buf, size_t cap,
                           ad_error *err) {
    const void *f = cfield_of(k, cfg);
    const char *text = NULL;
    char num[64];
    switch (k->type) {
    case AD_CONFIG_INT:
        snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)f);
        break;
    case AD_CONFIG_SIZE:
        snprintf(num, sizeof num, "%zu", *(const size_t *)f);
        break;
    case AD_CONFIG_U64:
        snprintf(num, sizeof num, "%llu", (unsigned long long)*(const uint64_t *)f);
        break;
    case AD_CONFIG_DOUBLE:
        format_real(*(const double *)f, 0, num, sizeof num);
        break;
    case AD_CONFIG_FLOAT:
        format_real(*(const float *)f, 1, num, sizeof num);
        break;
    case AD_CONFIG_BOOL:
        text = *(const int *)f ? "true" : "false";
        break;
    case AD_CONFIG_STRING:
        text = *(char *const *)f;
        break;
    case AD_CONFIG_ENUM: {
        int idx = *(const int *)f, n = 0;
        while (k->choices[n])
            n++;
        if (idx < 0 || idx >= n)
            return ad_error_set(err, "%s: enum index %d out of range", k->name, idx);
        text = k->choices[idx];
        break;
    }
    case AD_CONFIG_LEVELS:
        text = ((const ad_level_list *)f)->text;
        break;
    case AD_CONFIG_SCHEDULE:
        text = ((const ad_level_schedule *)f)->text;
        break;
    }
    if (!text) text = k->type <= AD_CONFIG_FLOAT ? num : "";
    if (strlen(text) >= cap)
        return ad_error_set(err, "%s: value does not fit %zu bytes", k->name, cap);
    strcpy(buf, text);
    return AD_OK;
}

/* A growable string. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (n > 0 ? (size_t)n : 0);
        char *s = realloc(b->s, cap);
        if (!s || n < 0) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static int sb_finish(sbuf *b, char **out, ad_error *err) {
    if (b->oom || !b->s) {
        free(b->s);
        *out = NULL;
        return ad_error_set(err, "config: out of memory while writing");
    }
    *out = b->s;
    return AD_OK;
}

/* Length of the section part of a name ("model.layers" -> 5; "seed" -> 0). */
static size_t section_len(const char *name) {
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

static int same_section(const char *a, const char *b) {
    size_t la = section_len(a);
    return la == section_len(b) && strncmp(a, b, la) == 0;
}

/* 1 when key i is the first of its section in registration order. */
static int first_of_section(const ad_config_schema *s, size_t i) {
    for (size_t j = 0; j < i; j++)
        if (same_section(s->keys[j].name, s->keys[i].name)) return 0;
    return 1;
}

int ad_config_dump(const ad_config_schema *s, const void *cfg, char **out, ad_error *err) {
    sbuf b = {0};
    char value[AD_CONFIG_VALUE_MAX + 1];
    sb_printf(&b, "; autodidact configuration: every key and its value (see docs/config.md)\n");
    /* keys without a section first (they must precede any [section] line), then
     * each section in the order its first key was registered */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n_keys; i++) {
            const char *name = s->keys[i].name;
            if ((pass == 0) != (section_len(name) == 0) || !first_of_section(s, i)) continue;
            if (pass == 1) sb_printf(&b, "\n[%.*s]\n", (int)section_len(name), name);
            for (size_t j = i; j < s->n_keys; j++) {
                const ad_config_key *k = &s->keys[j];
                if (!same_section(k->name, name)) continue;
                if (ad_config_format_value(k, cfg, value, sizeof value, err)) {
                    free(b.s);
                    return AD_ERR;
                }
                size_t skip = section_len(k->name) ? section_len(k->name) + 1 : 0;
                sb_printf(&b, "; %s\n%s = %s\n", k->doc, k->name + skip, value);
            }
        }
    }
    return sb_finish(&b, out, err);
}

int ad_config_save(const ad_config_schema *s, const void *cfg, const char *path, ad_error *err) {
    char *text;
    if (ad_config_dump(s, cfg, &text, err)) return AD_ERR;
    int rc = ad_atomic_write(path, text, strlen(text), err);
    free(text);
    return rc;
}

int ad_config_doc_table(const ad_config_schema *s, char **out, ad_error *err) {
    sbuf b = {0};
    sb_printf(&b, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < s->n_keys; i++) {
        const ad_config_key *k = &s->keys[i];
        sb_printf(&b, "| `%s` | %s", k->name, type_name(k->type));
        if (k->type == AD_CONFIG_ENUM)
            for (int c = 0; k->choices[c]; c++)
                sb_printf(&b, "%s%s", c ? "/" : ": ", k->choices[c]);
        if (k->has_range) {
            char lo[32], hi[32];
            format_real(k->min, 0, lo, sizeof lo);
            format_real(k->max, 0, hi, sizeof hi);
            sb_printf(&b, " (%s..%s)", lo, hi);
        }
        if (k->def[0])
            sb_printf(&b, " | `%s` | %s |\n", k->def, k->doc);
        else
            sb_printf(&b, " | (empty) | %s |\n", k->doc);
    }
    return sb_finish(&b, out, err);
}

void ad_config_free(const ad_config_schema *s, void *cfg) {
    for (size_t i = 0; i < s->n_keys; i++)
        free_field(&s->keys[i], cfg);
}
