/* report_config.c: the config section (every key of the run's config.ini) and,
 * with several runs, the keys whose values differ between them; plus the small
 * INI reader both use (the snapshot autodidact writes: `[section]` lines,
 * `key = value` lines, comments on their own lines or after " ;"). */
#include "report/report_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"

/* Copies s[0..len) trimmed of blanks into out (cap bytes, truncating). */
static void trimmed(char *out, size_t cap, const char *s, size_t len) {
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (len >= cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

void rp_ini_foreach(const char *text, rp_ini_fn fn, void *ctx) {
    char section[AD_CONFIG_NAME_MAX] = "", key[AD_CONFIG_NAME_MAX], value[AD_CONFIG_VALUE_MAX + 1];
    char name[2 * AD_CONFIG_NAME_MAX + 2];
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[AD_CONFIG_VALUE_MAX + AD_CONFIG_NAME_MAX + 8];
        trimmed(buf, sizeof buf, line, len);
        line = end ? end + 1 : NULL;
        if (!buf[0] || buf[0] == ';' || buf[0] == '#') continue;
        if (buf[0] == '[') {
            char *close = strchr(buf, ']');
            trimmed(section, sizeof section, buf + 1, close ? (size_t)(close - buf - 1) : 0);
            continue;
        }
        char *eq = strchr(buf, '=');
        if (!eq) continue;
        char *comment = strstr(eq, " ;");
        if (comment) *comment = '\0';
        trimmed(key, sizeof key, buf, (size_t)(eq - buf));
        trimmed(value, sizeof value, eq + 1, strlen(eq + 1));
        snprintf(name, sizeof name, "%s%s%s", section, section[0] ? "." : "", key);
        fn(ctx, name, value);
    }
}

typedef struct ini_find {
    const char *name;
    char *out;
    size_t cap;
    int found;
} ini_find;

static void find_key(void *ctx, const char *name, const char *value) {
    ini_find *f = ctx;
    if (strcmp(name, f->name)) return;
    snprintf(f->out, f->cap, "%s", value);
    f->found = 1;
}

int rp_ini_get(const char *text, const char *name, char *out, size_t cap) {
    ini_find f = {.name = name, .out = out, .cap = cap};
    if (cap) out[0] = '\0';
    if (text) rp_ini_foreach(text, find_key, &f);
    return f.found;
}

/* ---- the section ------------------------------------------------------------- */

typedef struct key_list {
    char (*names)[2 * AD_CONFIG_NAME_MAX + 2];
    size_t n, cap;
    int failed;
} key_list;

/* Adds a key not seen yet (the union of every run's keys, in order). */
static void add_key(void *ctx, const char *name, const char *value) {
    key_list *k = ctx;
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->names[i], name)) return;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        void *grown = realloc(k->names, cap * sizeof *k->names);
        if (!grown) {
            k->failed = 1;
            return;
        }
        k->names = grown;
        k->cap = cap;
    }
    snprintf(k->names[k->n++], sizeof k->names[0], "%s", name);
}

/* Row of one key: its value in each run; `differs` set when they differ. */
static void key_row(rp_buf *b, const rp_run *runs, size_t n, const char *name) {
    rp_printf(b, "<tr><td class=\"key\">");
    rp_esc(b, name);
    rp_printf(b, "</td>");
    for (size_t r = 0; r < n; r++) {
        char v[AD_CONFIG_VALUE_MAX + 1];
        int has = rp_ini_get(runs[r].config, name, v, sizeof v);
        rp_printf(b, "<td>");
        if (has)
            rp_esc(b, v);
        else
            rp_printf(b, "<span class=\"absent\">(absent)</span>");
        rp_printf(b, "</td>");
    }
    rp_printf(b, "</tr>");
}

static int key_differs(const rp_run *runs, size_t n, const char *name) {
    char first[AD_CONFIG_VALUE_MAX + 1], v[AD_CONFIG_VALUE_MAX + 1];
    int has0 = rp_ini_get(runs[0].config, name, first, sizeof first);
    for (size_t r = 1; r < n; r++) {
        int has = rp_ini_get(runs[r].config, name, v, sizeof v);
        if (has != has0 || strcmp(v, first)) return 1;
    }
    return 0;
}

static void table_head(rp_buf *b, const rp_run *runs, size_t n, const char *cls) {
    rp_printf(b, "<table class=\"%s\"><tr><th>key</th>", cls);
    for (size_t r = 0; r < n; r++) {
        rp_printf(b, "<th>");
        rp_esc(b, runs[r].name);
        rp_printf(b, "</th>");
    }
    rp_printf(b, "</tr>");
}

/* One run's keys in newspaper columns (a long list reads better so). */
static void single_config(rp_buf *b, const rp_run *run, const key_list *keys) {
    rp_printf(b, "<div class=\"configcols\">");
    for (size_t i = 0; i < keys->n; i++) {
        char v[AD_CONFIG_VALUE_MAX + 1];
        rp_ini_get(run->config, keys->names[i], v, sizeof v);
        rp_printf(b, "<div class=\"kv\"><code>");
        rp_esc(b, keys->names[i]);
        rp_printf(b, "</code> = ");
        rp_esc(b, v);
        rp_printf(b, "</div>");
    }
    rp_printf(b, "</div>");
}

void rp_section_config(rp_buf *b, const rp_run *runs, size_t n) {
    key_list keys = {0};
    for (size_t r = 0; r < n; r++)
        if (runs[r].config) rp_ini_foreach(runs[r].config, add_key, &keys);
    if (keys.failed) b->failed = 1;
    rp_printf(b, "<section id=\"config\"><h2>Config</h2>");
    if (n > 1) {
        size_t differ = 0;
        rp_printf(b, "<h3>What differs between the runs</h3>");
        table_head(b, runs, n, "configdiff");
        for (size_t i = 0; i < keys.n; i++)
            if (key_differs(runs, n, keys.names[i])) {
                key_row(b, runs, n, keys.names[i]);
                differ++;
            }
        rp_printf(b, "</table>");
        if (!differ) rp_printf(b, "<p class=\"note\">The configs are the same.</p>");
        rp_printf(b, "<details><summary>Every key</summary>");
    }
    if (n > 1) {
        table_head(b, runs, n, "config");
        for (size_t i = 0; i < keys.n; i++)
            key_row(b, runs, n, keys.names[i]);
        rp_printf(b, "</table>");
    } else {
        single_config(b, &runs[0], &keys);
    }
    if (n > 1) rp_printf(b, "</details>");
    if (!keys.n) rp_printf(b, "<p class=\"empty\">No config found.</p>");
    rp_printf(b, "</section>");
    free(keys.names);
}
