/* task_file.c: a user's task: a JSONL file of problems ("file:PATH").
 *
 * Each non-blank line is {"prompt": str, "answer": str (optional), "level":
 * int or [a, b] (optional)}; other keys are ignored. Levels group problems for
 * curricula: generate draws uniformly among the problems of the requested
 * level. Answers are checked by an external verifier when one is given (run in
 * a sandbox, sandbox.h), otherwise compared exactly with the file's "answer"
 * for that prompt (every line must then have one). The tokens are the distinct
 * UTF-8 characters of all prompts and answers, plus options.extra_chars. */
#include <stdlib.h>
#include <string.h>

#include "tasks/task_impl.h"
#include "util/atomic_file.h"
#include "util/utf8.h"
#include "util/json.h"

#define FILE_MAX_BYTES ((size_t)1 << 31)
#define DEFAULT_BUDGET_NO_ANSWERS 256
#define MIN_BUDGET 16
#define UTF8_TOKEN_MAX 5

typedef struct file_problem {
    char *prompt;
    char *answer; /* NULL when the line has none */
    ad_level level;
    size_t line;
} file_problem;

typedef struct level_group {
    ad_level level;
    size_t start, end; /* range in by_level */
} level_group;

typedef struct file_state {
    char *path;
    file_problem *problems;
    size_t n;
    file_problem **by_level; /* sorted by (level, line) */
    level_group *groups;
    size_t n_groups;
    file_problem **by_prompt; /* sorted by (prompt, line) */
    ad_sandbox *sandbox;      /* NULL without a verifier */
    size_t max_answer;
    size_t max_prompt; /* the longest prompt in the file, in bytes */
    char (*token_text)[UTF8_TOKEN_MAX];
    const char **tokens;
    size_t n_tokens;
} file_state;

static void file_state_free(void *p) {
    file_state *s = p;
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->problems[i].prompt);
        free(s->problems[i].answer);
    }
    free(s->problems);
    free(s->by_level);
    free(s->groups);
    free(s->by_prompt);
    ad_sandbox_close(s->sandbox);
    free(s->token_text);
    free(s->tokens);
    free(s->path);
    free(s);
}

/* ---- tokens ------------------------------------------------------------- */

/* The distinct characters seen: a table for ASCII, a growing list of the
 * multi-byte UTF-8 sequences (sorted and deduplicated at the end). */
typedef struct char_set {
    unsigned char ascii[128];
    char (*v)[UTF8_TOKEN_MAX];
    size_t n, cap;
} char_set;

/* Adds the characters of a text; 0 when it is not valid UTF-8, -1 when out of
 * memory. */
static int char_set_add(char_set *set, const char *text) {
    size_t len = strlen(text);
    if (!ad_utf8_valid(text, len)) return 0;
    for (const unsigned char *s = (const unsigned char *)text; *s;) {
        size_t n = *s < 0x80 ? 1 : *s >= 0xF0 ? 4 : *s >= 0xE0 ? 3 : 2;
        if (n == 1) {
            set->ascii[*s++] = 1;
            continue;
        }
        if (set->n == set->cap) {
            size_t cap = set->cap ? 2 * set->cap : 64;
            char(*v)[UTF8_TOKEN_MAX] = realloc(set->v, cap * sizeof *v);
            if (!v) return -1;
            set->v = v;
            set->cap = cap;
        }
        memcpy(set->v[set->n], s, n);
        set->v[set->n++][n] = '\0';
        s += n;
    }
    return 1;
}

static int cmp_token(const void *x, const void *y) {
    return strcmp((const char *)x, (const char *)y);
}

/* Turns the set into the task's token list: ASCII first, then the others in
 * code point order (which UTF-8 byte order preserves). */
static int build_tokens(file_state *s, char_set *set) {
    if (set->n) qsort(set->v, set->n, sizeof *set->v, cmp_token);
    size_t total = 0;
    for (int c = 0; c < 128; c++)
        total += set->ascii[c];
    for (size_t i = 0; i < set->n; i++)
        total += i == 0 || strcmp(set->v[i], set->v[i - 1]);
    s->token_text = calloc(total ? total : 1, sizeof *s->token_text);
    s->tokens = calloc(total ? total : 1, sizeof *s->tokens);
    if (!s->token_text || !s->tokens) return AD_ERR;
    size_t k = 0;
    for (int c = 0; c < 128; c++)
        if (set->ascii[c]) s->token_text[k++][0] = (char)c;
    for (size_t i = 0; i < set->n; i++)
        if (i == 0 || strcmp(set->v[i], set->v[i - 1])) strcpy(s->token_text[k++], set->v[i]);
    for (size_t i = 0; i < total; i++)
        s->tokens[i] = s->token_text[i];
    s->n_tokens = total;
    return AD_OK;
}

/* ---- reading the file ------------------------------------------------------ */

/* Reads one line's object into p. has_level tells whether it had a level. */
static int parse_line(const char *path, size_t line_no, const char *line, size_t len,
                      file_problem *p, int *has_level, ad_error *err) {
    ad_error why = {{0}};
    cJSON *j = ad_json_parse_strict(line, len, &why);
    if (!j) return ad_error_set(err, "%s:%zu: %s", path, line_no, why.msg);
    int rc = AD_ERR;
    char what[64];
    snprintf(what, sizeof what, "line %zu: \"level\"", line_no);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(j, "answer");
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(j, "level");
    p->line = line_no;
    p->level = ad_level_int(1);
    *has_level = level && !cJSON_IsNull(level);
    if (!cJSON_IsObject(j))
        ad_error_set(err, "%s:%zu: not a JSON object", path, line_no);
    else if (!cJSON_IsString(prompt) || !prompt->valuestring[0])
        ad_error_set(err, "%s:%zu: \"prompt\" must be a non-empty string", path, line_no);
    else if (answer && !cJSON_IsNull(answer) && !cJSON_IsString(answer))
        ad_error_set(err, "%s:%zu: \"answer\" must be a string", path, line_no);
    else if (*has_level && ad_task_level_from_json(level, what, &p->level, err))
        ad_error_prefix(err, "%s:", path);
    else if (!(p->prompt = strdup(prompt->valuestring)) ||
             (cJSON_IsString(answer) && !(p->answer = strdup(answer->valuestring))))
        ad_error_set(err, "%s:%zu: out of memory", path, line_no);
    else
        rc = AD_OK;
    cJSON_Delete(j);
    return rc;
}

/* Splits the file into lines and parses every non-blank one. */
static int read_problems(file_state *s, const char *data, size_t len, ad_error *err) {
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += data[i] == '\n';
    s->problems = calloc(cap, sizeof *s->problems);
    if (!s->problems) return ad_error_set(err, "%s: out of memory", s->path);
    size_t line_no = 0, with_level = 0, first_with = 0, first_without = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        line_no++;
        size_t blank = 0;
        while (blank < n && strchr(" \t\r", line[blank]))
            blank++;
        if (blank == n) continue;
        int has_level;
        file_problem *p = &s->problems[s->n++];
        if (parse_line(s->path, line_no, line, n, p, &has_level, err)) return AD_ERR;
        if (has_level && !with_level++) first_with = line_no;
        if (!has_level && !first_without) first_without = line_no;
        if (ad_level_is_pair(p->level) != ad_level_is_pair(s->problems[0].level))
            return ad_error_set(err, "%s:%zu: level kind (pair or integer) differs from line %zu",
                                s->path, line_no, s->problems[0].line);
    }
    if (s->n == 0) return ad_error_set(err, "%s: no problems in the file", s->path);
    if (with_level && first_without)
        return ad_error_set(err, "%s:%zu: no \"level\", but line %zu has one (give all or none)",
                            s->path, first_without, first_with);
    return AD_OK;
}

static int cmp_by_level(const void *x, const void *y) {
    const file_problem *a = *(file_problem *const *)x, *b = *(file_problem *const *)y;
    int c = ad_level_cmp(a->level, b->level);
    return c ? c : (a->line > b->line) - (a->line < b->line);
}

static int cmp_by_prompt(const void *x, const void *y) {
    const file_problem *a = *(file_problem *const *)x, *b = *(file_problem *const *)y;
    int c = strcmp(a->prompt, b->prompt);
    return c ? c : (a->line > b->line) - (a->line < b->line);
}

/* Builds the level groups, the prompt index and the level range of t. */
/* Integer levels must be contiguous: the curriculum and evaluation step
 * through every level between the lowest and the highest, so a gap would
 * only fail later, mid-run (and again at every resume). */
static int check_no_gaps(const file_state *s, ad_error *err) {
    for (size_t i = 1; i < s->n_groups; i++) {
        ad_level prev = s->groups[i - 1].level, lv = s->groups[i].level;
        if (ad_level_is_pair(prev) || ad_level_is_pair(lv) || lv.a == prev.a + 1) continue;
        return ad_error_set(err,
                            "%s: no problems at level %ld (the file has levels %ld and %ld): "
                            "levels must have no gaps",
                            s->path, (long)prev.a + 1, (long)prev.a, (long)lv.a);
    }
    return AD_OK;
}

static int index_problems(ad_task *t, file_state *s, ad_error *err) {
    s->by_level = malloc(s->n * sizeof *s->by_level);
    s->by_prompt = malloc(s->n * sizeof *s->by_prompt);
    s->groups = malloc(s->n * sizeof *s->groups);
    if (!s->by_level || !s->by_prompt || !s->groups)
        return ad_error_set(err, "%s: out of memory", s->path);
    for (size_t i = 0; i < s->n; i++)
        s->by_level[i] = s->by_prompt[i] = &s->problems[i];
    qsort(s->by_level, s->n, sizeof *s->by_level, cmp_by_level);
    qsort(s->by_prompt, s->n, sizeof *s->by_prompt, cmp_by_prompt);
    t->min = t->max = s->by_level[0]->level;
    for (size_t i = 0; i < s->n; i++) {
        ad_level lv = s->by_level[i]->level;
        if (i == 0 || ad_level_cmp(lv, s->groups[s->n_groups - 1].level) != 0)
            s->groups[s->n_groups++] = (level_group){lv, i, i};
        s->groups[s->n_groups - 1].end = i + 1;
        if (lv.a < t->min.a) t->min.a = lv.a;
        if (lv.a > t->max.a) t->max.a = lv.a;
        if (lv.b < t->min.b) t->min.b = lv.b;
        if (lv.b > t->max.b) t->max.b = lv.b;
    }
    return check_no_gaps(s, err);
}

/* Collects the tokens and the answer-length bound; checks answers exist when
 * there is no verifier. */
static int scan_texts(ad_task *t, file_state *s, ad_error *err) {
    char_set set = {0};
    size_t longest = 0, answers = 0;
    int rc = AD_OK;
    for (size_t i = 0; i < s->n && rc == AD_OK; i++) {
        const file_problem *p = &s->problems[i];
        if (!p->answer && !t->opts.verifier)
            rc = ad_error_set(err,
                              "%s:%zu: no \"answer\", and no verifier command to check "
                              "answers with",
                              s->path, p->line);
        if (strlen(p->prompt) > s->max_prompt) s->max_prompt = strlen(p->prompt);
        int ok = rc == AD_OK ? char_set_add(&set, p->prompt) : 1;
        if (ok == 1 && p->answer) ok = char_set_add(&set, p->answer);
        if (ok == 0) rc = ad_error_set(err, "%s:%zu: text is not valid UTF-8", s->path, p->line);
        if (ok < 0) rc = ad_error_set(err, "%s: out of memory", s->path);
        if (p->answer) {
            answers++;
            if (strlen(p->answer) > longest) longest = strlen(p->answer);
        }
    }
    if (rc == AD_OK && t->opts.extra_chars && char_set_add(&set, t->opts.extra_chars) != 1)
        rc = ad_error_set(err, "%s: extra characters are not valid UTF-8", s->path);
    if (rc == AD_OK && build_tokens(s, &set)) rc = ad_error_set(err, "%s: out of memory", s->path);
    free(set.v);
    s->max_answer =
        answers ? (2 * longest > MIN_BUDGET ? 2 * longest : MIN_BUDGET) : DEFAULT_BUDGET_NO_ANSWERS;
    if (t->opts.max_answer_len) s->max_answer = t->opts.max_answer_len;
    return rc;
}

/* ---- the task's operations ------------------------------------------------- */

static int file_generate(const ad_task *t, ad_level lv, ad_rng *rng, ad_problem *out,
                         ad_error *err) {
    const file_state *s = t->state;
    size_t lo = 0, hi = s->n_groups;
    while (lo < hi) { /* first group with level >= lv */
        size_t mid = (lo + hi) / 2;
        if (ad_level_cmp(s->groups[mid].level, lv) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n_groups || ad_level_cmp(s->groups[lo].level, lv) != 0) {
        char l[AD_LEVEL_TEXT_MAX];
        return ad_error_set(err, "%s: no problem at level %s", t->name,
                            ad_level_format(lv, l, sizeof l));
    }
    const level_group *g = &s->groups[lo];
    const file_problem *p = s->by_level[g->start + ad_rng_below(rng, g->end - g->start)];
    out->has_answer = p->answer != NULL;
    if (ad_text_append(&out->prompt, p->prompt, strlen(p->prompt), err)) return AD_ERR;
    return p->answer ? ad_text_append(&out->answer, p->answer, strlen(p->answer), err) : AD_OK;
}

static int file_verify(const ad_task *t, const char *prompt, const char *answer, ad_verdict *v,
                       ad_error *err) {
    const file_state *s = t->state;
    if (s->sandbox) return ad_sandbox_verify(s->sandbox, prompt, answer, v, err);
    file_problem key = {.prompt = (char *)prompt, .line = 0}, *kp = &key;
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* first problem with this prompt: line 0 sorts before all */
        size_t mid = (lo + hi) / 2;
        if (cmp_by_prompt(&s->by_prompt[mid], &kp) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n || strcmp(s->by_prompt[lo]->prompt, prompt) != 0) {
        char q[80];
        return ad_error_set(err, "%s: prompt '%s' is not in the file", t->name,
                            ad_quote(prompt, q, sizeof q));
    }
    /* A prompt given several times accepts any of its answers. */
    for (size_t i = lo; i < s->n && strcmp(s->by_prompt[i]->prompt, prompt) == 0; i++)
        if (strcmp(s->by_prompt[i]->answer, answer) == 0) return ad_verdict_pass(v);
    const char *expected = s->by_prompt[lo]->answer;
    return ad_verdict_exact(v, answer, expected, strlen(expected), NULL);
}

/* With a verifier, in parallel on the pool; else one by one (in-process). */
static int file_verify_batch(const ad_task *t, const char *const *prompts,
                             const char *const *answers, size_t n, ad_verdict *verdicts,
                             ad_error *err) {
    const file_state *s = t->state;
    if (!s->sandbox) {
        for (size_t i = 0; i < n; i++)
            if (file_verify(t, prompts[i], answers[i], &verdicts[i], err))
                return ad_error_prefix(err, "answer %zu: ", i);
        return AD_OK;
    }
    return ad_sandbox_verify_batch(s->sandbox, prompts, answers, n, verdicts, err);
}

static int file_max_len(const ad_task *t, const char *prompt, size_t *out, ad_error *err) {
    const file_state *s = t->state;
    *out = s->max_answer;
    return AD_OK;
}

/* The whole file is known: no need to sample it (a long prompt at a low
 * level would be missed). */
static size_t file_max_sequence_len(const ad_task *t) {
    const file_state *s = t->state;
    return s->max_prompt + s->max_answer + 2;
}

static const ad_task_ops file_ops = {
    .name = "file",
    .generate = file_generate,
    .verify = file_verify,
    .max_answer_len = file_max_len,
    .max_sequence_len = file_max_sequence_len,
    .verify_batch = file_verify_batch,
};

int ad_task_file_open(ad_task *t, const char *path, ad_error *err) {
    if (!*path) return ad_error_set(err, "task file: needs a path (file:PATH)");
    file_state *s = calloc(1, sizeof *s);
    if (!s) return ad_error_set(err, "%s: out of memory", path);
    t->state = s;
    t->free_state = file_state_free;
    t->ops = &file_ops;
    t->knob = "level";
    s->path = strdup(path);
    size_t name_len = strlen(path) + 6;
    t->name = malloc(name_len);
    t->description = malloc(name_len + 16);
    if (!s->path || !t->name || !t->description)
        return ad_error_set(err, "%s: out of memory", path);
    snprintf(t->name, name_len, "file:%s", path);
    snprintf(t->description, name_len + 16, "problems from %s", path);
    char *data = NULL;
    size_t len;
    if (ad_read_file(path, FILE_MAX_BYTES, &data, &len, err)) return ad_error_prefix(err, "task: ");
    int rc = read_problems(s, data, len, err);
    free(data);
    if (rc == AD_OK) rc = index_problems(t, s, err);
    if (rc == AD_OK) rc = scan_texts(t, s, err);
    if (rc == AD_OK && t->opts.verifier)
        rc = ad_sandbox_open(t->opts.verifier, &t->opts.sandbox, &s->sandbox, err);
    t->tokens = s->tokens;
    t->n_tokens = s->n_tokens;
    return rc;
}
