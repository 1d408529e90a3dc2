/* level.c: levels, level lists and schedules: a small recursive-descent parser
 * over the text syntax described in level.h, and formatting. */
#include "util/level.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ad_level ad_level_int(int32_t a) {
    ad_level l = {a, AD_LEVEL_SCALAR};
    return l;
}

ad_level ad_level_pair(int32_t a, int32_t b) {
    ad_level l = {a, b};
    return l;
}

int ad_level_is_pair(ad_level l) {
    return l.b != AD_LEVEL_SCALAR;
}

int ad_level_cmp(ad_level x, ad_level y) {
    if (x.a != y.a) return x.a < y.a ? -1 : 1;
    if (x.b != y.b) return x.b < y.b ? -1 : 1;
    return 0;
}

char *ad_level_format(ad_level l, char *buf, size_t cap) {
    if (!cap) return buf;
    if (ad_level_is_pair(l))
        snprintf(buf, cap, "%ldx%ld", (long)l.a, (long)l.b);
    else
        snprintf(buf, cap, "%ld", (long)l.a);
    return buf;
}

/* ---- parser state ---------------------------------------------------------- */

typedef struct parser {
    const char *text; /* whole text, for messages */
    const char *p;    /* cursor */
    const char *what; /* "level", "level list", "schedule" */
    ad_level *v;      /* expanded levels */
    size_t n, cap;
    ad_error *err;
} parser;

static void skip_blank(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

static int fail(parser *ps, const char *msg) {
    return ad_error_set(ps->err, "%s '%s': %s at column %zu", ps->what, ps->text, msg,
                        (size_t)(ps->p - ps->text) + 1);
}

static int accept(parser *ps, char c) {
    skip_blank(ps);
    if (*ps->p != c) return 0;
    ps->p++;
    return 1;
}

static int parse_int(parser *ps, int32_t *out) {
    skip_blank(ps);
    if (!isdigit((unsigned char)*ps->p)) return fail(ps, "expected a number");
    long v = 0;
    while (isdigit((unsigned char)*ps->p)) {
        v = v * 10 + (*ps->p - '0');
        if (v > AD_LEVEL_MAX) return fail(ps, "level too large (max 1000000)");
        ps->p++;
    }
    *out = (int32_t)v;
    return AD_OK;
}

/* range := int ['-' int], with lo <= hi */
static int parse_range(parser *ps, int32_t *lo, int32_t *hi) {
    if (parse_int(ps, lo)) return AD_ERR;
    *hi = *lo;
    if (accept(ps, '-')) {
        if (parse_int(ps, hi)) return AD_ERR;
        if (*hi < *lo) return fail(ps, "decreasing range");
    }
    return AD_OK;
}

/* Makes room for one more element in a growing array of n elements. */
static int grow(parser *ps, void **v, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return AD_OK;
    size_t new_cap = *cap ? *cap * 2 : 16;
    void *grown = realloc(*v, new_cap * elem);
    if (!grown) return fail(ps, "out of memory");
    *v = grown;
    *cap = new_cap;
    return AD_OK;
}

static int push(parser *ps, ad_level l) {
    if (ps->n >= AD_LEVEL_LIST_MAX) return fail(ps, "more than 65536 levels");
    if (grow(ps, (void **)&ps->v, &ps->cap, ps->n, sizeof *ps->v)) return AD_ERR;
    ps->v[ps->n++] = l;
    return AD_OK;
}

/* Pushes every level of a1-a2 (x b1-b2 when pair), a major. */
static int push_block(parser *ps, int32_t a1, int32_t a2, int pair, int32_t b1, int32_t b2) {
    for (int32_t a = a1; a <= a2; a++) {
        if (!pair) {
            if (push(ps, ad_level_int(a))) return AD_ERR;
            continue;
        }
        for (int32_t b = b1; b <= b2; b++)
            if (push(ps, ad_level_pair(a, b))) return AD_ERR;
    }
    return AD_OK;
}

/* item := range ['x' range] | '(' range ',' range ')' */
static int parse_item(parser *ps) {
    int32_t a1, a2, b1 = 0, b2 = 0;
    if (accept(ps, '(')) {
        if (parse_range(ps, &a1, &a2)) return AD_ERR;
        if (!accept(ps, ',')) return fail(ps, "expected ',' inside a pair");
        if (parse_range(ps, &b1, &b2)) return AD_ERR;
        if (!accept(ps, ')')) return fail(ps, "expected ')'");
        return push_block(ps, a1, a2, 1, b1, b2);
    }
    if (parse_range(ps, &a1, &a2)) return AD_ERR;
    int pair = accept(ps, 'x');
    if (pair && parse_range(ps, &b1, &b2)) return AD_ERR;
    return push_block(ps, a1, a2, pair, b1, b2);
}

static int cmp_level_ptr(const void *x, const void *y) {
    return ad_level_cmp(*(const ad_level *)x, *(const ad_level *)y);
}

/* Fails when a level occurs twice among the n parsed so far. */
static int check_distinct(parser *ps) {
    if (ps->n < 2) return AD_OK;
    ad_level *sorted = malloc(ps->n * sizeof *sorted);
    if (!sorted) return fail(ps, "out of memory");
    memcpy(sorted, ps->v, ps->n * sizeof *sorted);
    qsort(sorted, ps->n, sizeof *sorted, cmp_level_ptr);
    for (size_t i = 1; i < ps->n; i++) {
        if (ad_level_cmp(sorted[i - 1], sorted[i]) == 0) {
            char buf[AD_LEVEL_TEXT_MAX];
            ad_level_format(sorted[i], buf, sizeof buf);
            free(sorted);
            return ad_error_set(ps->err, "%s '%s': level %s appears twice", ps->what, ps->text,
                                buf);
        }
    }
    free(sorted);
    return AD_OK;
}

/* Copies text without its leading and trailing blanks into a new string. */
static char *trimmed_copy(const char *text) {
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strlen(text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, text, len);
    s[len] = '\0';
    return s;
}

/* Ends a successful parse of a list or schedule: checks that no level
 * repeats and copies the trimmed text into *copy. */
static int finish(parser *ps, int rc, char **copy) {
    *copy = NULL;
    if (rc == AD_OK) rc = check_distinct(ps);
    if (rc == AD_OK && !(*copy = trimmed_copy(ps->text)))
        rc = ad_error_set(ps->err, "%s: out of memory", ps->what);
    return rc;
}

static void parser_init(parser *ps, const char *text, const char *what, ad_error *err) {
    memset(ps, 0, sizeof *ps);
    ps->text = ps->p = text;
    ps->what = what;
    ps->err = err;
}

static int at_end(parser *ps) {
    skip_blank(ps);
    return *ps->p == '\0';
}

/* ---- public parsers -------------------------------------------------------- */

int ad_level_parse(const char *text, ad_level *out, ad_error *err) {
    parser ps;
    parser_init(&ps, text, "level", err);
    int rc = parse_item(&ps);
    if (rc == AD_OK && !at_end(&ps)) rc = fail(&ps, "unexpected text");
    if (rc == AD_OK && ps.n != 1) rc = fail(&ps, "a range is not one level");
    if (rc == AD_OK) *out = ps.v[0];
    free(ps.v);
    return rc;
}

int ad_level_list_parse(const char *text, ad_level_list *out, ad_error *err) {
    memset(out, 0, sizeof *out);
    parser ps;
    parser_init(&ps, text, "level list", err);
    int rc = AD_OK;
    if (!at_end(&ps)) {
        do {
            rc = parse_item(&ps);
        } while (rc == AD_OK && accept(&ps, ','));
        if (rc == AD_OK && !at_end(&ps)) rc = fail(&ps, "expected ',' or the end");
    }
    char *copy;
    if (finish(&ps, rc, &copy) != AD_OK) {
        free(ps.v);
        return AD_ERR;
    }
    out->v = ps.v;
    out->n = ps.n;
    out->text = copy;
    return AD_OK;
}

int ad_level_list_contains(const ad_level_list *list, ad_level l) {
    for (size_t i = 0; i < list->n; i++)
        if (ad_level_cmp(list->v[i], l) == 0) return 1;
    return 0;
}

void ad_level_list_free(ad_level_list *list) {
    free(list->v);
    free(list->text);
    memset(list, 0, sizeof *list);
}

/* Step boundaries grow one entry per step. */
typedef struct step_marks {
    size_t *v;
    size_t n, cap;
} step_marks;

static int mark_step(parser *ps, step_marks *m) {
    if (grow(ps, (void **)&m->v, &m->cap, m->n, sizeof *m->v)) return AD_ERR;
    m->v[m->n++] = ps->n;
    return AD_OK;
}

/* pairs(N-M): for n = N..M the steps 1xn&nx1, ..., (n-1)xn&nx(n-1), nxn. */
static int parse_pairs(parser *ps, step_marks *m) {
    int32_t lo, hi;
    if (!accept(ps, '(')) return fail(ps, "expected '(' after pairs");
    if (parse_range(ps, &lo, &hi)) return AD_ERR;
    if (!accept(ps, ')')) return fail(ps, "expected ')'");
    if (lo < 1) return fail(ps, "pairs() needs sizes >= 1");
    for (int32_t n = lo; n <= hi; n++) {
        for (int32_t i = 1; i < n; i++) {
            if (push(ps, ad_level_pair(i, n)) || push(ps, ad_level_pair(n, i))) return AD_ERR;
            if (mark_step(ps, m)) return AD_ERR;
        }
        if (push(ps, ad_level_pair(n, n)) || mark_step(ps, m)) return AD_ERR;
    }
    return AD_OK;
}

/* One schedule entry: pairs(...) or item ('&' item)*. Marks the step ends. */
static int parse_schedule_entry(parser *ps, step_marks *m) {
    skip_blank(ps);
    if (strncmp(ps->p, "pairs", 5) == 0) {
        ps->p += 5;
        return parse_pairs(ps, m);
    }
    do {
        if (parse_item(ps)) return AD_ERR;
    } while (accept(ps, '&'));
    return mark_step(ps, m);
}

int ad_level_schedule_parse(const char *text, ad_level_schedule *out, ad_error *err) {
    memset(out, 0, sizeof *out);
    parser ps;
    parser_init(&ps, text, "schedule", err);
    step_marks m = {0};
    int rc = AD_OK;
    if (!at_end(&ps)) {
        rc = mark_step(&ps, &m); /* step 0 starts at 0 */
        while (rc == AD_OK) {
            rc = parse_schedule_entry(&ps, &m);
            if (rc == AD_OK && !accept(&ps, ',')) break;
        }
        if (rc == AD_OK && !at_end(&ps)) rc = fail(&ps, "expected ',', '&' or the end");
    }
    char *copy;
    if (finish(&ps, rc, &copy) != AD_OK) {
        free(ps.v);
        free(m.v);
        return AD_ERR;
    }
    out->levels = ps.v;
    out->n_levels = ps.n;
    out->step_start = m.v;
    out->n_steps = m.n ? m.n - 1 : 0;
    out->text = copy;
    return AD_OK;
}

void ad_level_schedule_free(ad_level_schedule *s) {
    free(s->levels);
    free(s->step_start);
    free(s->text);
    memset(s, 0, sizeof *s);
}
