/* cmd_tasks.c: `autodidact tasks list|sample|verify`: look at the task
 * library from the shell: list the tasks, draw problems as JSONL, and check
 * answers read as JSONL on stdin. Thin: parsing and printing only. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "tasks/task.h"
#include "util/json.h"

#define CMD "tasks"
#define MEMORY_MB_MIN 16
#define MEMORY_MB_MAX (1 << 20) /* 1 TiB */
#define VERIFY_CHUNK 256        /* lines verified together (in parallel by a verifier pool) */

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: autodidact tasks list [--json]\n"
        "       autodidact tasks sample NAME --level L [-n N] [--seed S] "
        "[--independent-lengths [--equal-length-share X]]\n"
        "       autodidact tasks verify NAME [--verifier CMD] [--workers N] [--timeout S]\n"
        "                                    [--memory-mb M] [--env NAMES]\n"
        "\n"
        "Built-in problem generators and verifiers, and users' own tasks.\n"
        "NAME is a built-in task (see 'tasks list') or file:PATH, a JSONL file of\n"
        "{\"prompt\", \"answer\", \"level\"} lines. Run 'autodidact tasks SUBCOMMAND --help'.\n");
}

static void list_usage(void) {
    printf("usage: autodidact tasks list [--json]\n\n"
           "Lists the built-in tasks: name, difficulty knob, valid levels, description.\n"
           "  --json   one JSON object per task, with its tokens\n");
}

static void sample_usage(void) {
    printf("usage: autodidact tasks sample NAME --level L [-n N] [--seed S] "
           "[--independent-lengths [--equal-length-share X]]\n\n"
           "Writes N problems (default 1) as JSONL {\"task\",\"level\",\"prompt\",\"answer\"}.\n"
           "  --level L              difficulty: 7, or a pair 5,6 (written [5,6] in JSON)\n"
           "  -n N                   how many problems (default 1)\n"
           "  --seed S               random seed (default 1); the same seed gives the same "
           "problems\n"
           "  --independent-lengths  reverse-add/forward-add: operand lengths drawn from "
           "1..L\n"
           "  --equal-length-share X with --independent-lengths: the share of problems (0-1)\n"
           "                         whose operands both have L digits anyway (default 0)\n");
}

static void verify_usage(void) {
    printf("usage: autodidact tasks verify NAME [--verifier CMD] [--workers N] [--timeout S]\n"
           "                                    [--memory-mb M] [--env NAMES]\n\n"
           "Reads JSONL {\"prompt\",\"answer\"} on stdin and writes each line back with\n"
           "\"correct\", \"score\" and \"reason\" added; a summary goes to stderr.\n"
           "  --verifier CMD   file: tasks: a program that reads {\"prompt\",\"answer\"} lines\n"
           "                   and answers {\"correct\": bool, \"score\": number} lines; it runs\n"
           "                   sandboxed (bubblewrap where it works, else the basic sandbox;\n"
           "                   see docs/tasks.md), answers checked in parallel\n"
           "  --workers N      verifier processes (default 2)\n"
           "  --timeout S      seconds per answer before the verifier is stopped (default 10)\n"
           "  --memory-mb M    address-space limit of each verifier process, %d..%d\n"
           "                   (default 1024; there is no unlimited)\n"
           "  --env NAMES      environment variables passed to the verifier, comma-separated\n"
           "                   (its environment is otherwise cleared)\n",
           MEMORY_MB_MIN, MEMORY_MB_MAX);
}

static int tasks_list(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "autodidact tasks list: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!json) printf("%-12s %-26s %-14s %s\n", "NAME", "LEVEL", "RANGE", "DESCRIPTION");
    for (size_t i = 0; i < ad_task_builtin_count(); i++) {
        ad_task *t;
        ad_error err;
        if (ad_task_open(ad_task_builtin_name(i), NULL, &t, &err)) return cli_fail(CMD, &err);
        char lo[AD_LEVEL_TEXT_MAX], hi[AD_LEVEL_TEXT_MAX], range[2 * AD_LEVEL_TEXT_MAX + 4];
        ad_level_format(ad_task_level_min(t), lo, sizeof lo);
        ad_level_format(ad_task_level_max(t), hi, sizeof hi);
        snprintf(range, sizeof range, "%s..%s", lo, hi);
        if (!json) {
            printf("%-12s %-26s %-14s %s\n", ad_task_name(t), ad_task_knob(t), range,
                   ad_task_description(t));
        } else {
            size_t n;
            const char *const *tokens = ad_task_tokens(t, &n);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", ad_task_name(t));
            cJSON_AddStringToObject(o, "knob", ad_task_knob(t));
            cJSON_AddItemToObject(o, "min", ad_task_level_to_json(ad_task_level_min(t)));
            cJSON_AddItemToObject(o, "max", ad_task_level_to_json(ad_task_level_max(t)));
            cJSON_AddStringToObject(o, "description", ad_task_description(t));
            cJSON_AddItemToObject(o, "tokens", cJSON_CreateStringArray(tokens, (int)n));
            char *s = cJSON_PrintUnformatted(o);
            if (s) printf("%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
        ad_task_free(t);
    }
    return 0;
}

/* The option value after argv[*i], or NULL (with a message) when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *sub) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "autodidact tasks %s: %s needs a value\n", sub, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* Prints one problem as a JSON line. */
static int print_problem(const ad_task *t, const ad_problem *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", ad_task_name(t));
    cJSON_AddItemToObject(o, "level", ad_task_level_to_json(p->level));
    cJSON_AddStringToObject(o, "prompt", p->prompt.s);
    if (p->has_answer)
        cJSON_AddStringToObject(o, "answer", p->answer.s);
    else
        cJSON_AddNullToObject(o, "answer");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return -1;
    printf("%s\n", s);
    free(s);
    return 0;
}

static int tasks_sample(int argc, char **argv) {
    const char *name = NULL, *level_text = NULL;
    size_t count = 1;
    uint64_t seed = 1;
    ad_task_options opts;
    ad_task_default_options(&opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--level")) {
            if (!(level_text = option_value(argc, argv, &i, "sample"))) return 2;
        } else if (!strcmp(a, "-n")) {
            if (!(v = option_value(argc, argv, &i, "sample")) ||
                cli_parse_size(CMD " sample", "-n", v, &count))
                return 2;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = option_value(argc, argv, &i, "sample")) ||
                cli_parse_u64(CMD " sample", "--seed", v, &seed))
                return 2;
        } else if (!strcmp(a, "--independent-lengths")) {
            opts.independent_lengths = 1;
        } else if (!strcmp(a, "--equal-length-share")) {
            if (!(v = option_value(argc, argv, &i, "sample")) ||
                cli_parse_double(CMD " sample", "--equal-length-share", v,
                                 "task.equal_length_share", &opts.equal_length_share))
                return 2;
        } else if (a[0] == '-' || name) {
            fprintf(stderr, "autodidact tasks sample: unexpected argument '%s'\n", a);
            return 2;
        } else {
            name = a;
        }
    }
    if (!name || !level_text) {
        fprintf(stderr, "autodidact tasks sample: needs NAME and --level (see --help)\n");
        return 2;
    }
    ad_error err;
    ad_level level;
    ad_task *t;
    if (ad_task_level_parse(level_text, &level, &err)) return cli_fail(CMD, &err);
    if (ad_task_open(name, &opts, &t, &err)) return cli_fail(CMD, &err);
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    ad_problem p = {0};
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (ad_task_generate(t, level, &rng, &p, &err))
            rc = cli_fail(CMD, &err);
        else if (print_problem(t, &p))
            rc = fprintf(stderr, "autodidact tasks sample: out of memory\n") > 0;
    }
    ad_problem_free(&p);
    ad_task_free(t);
    return rc;
}

/* Reads one JSONL line's prompt and answer; *out owns the object. */
static int parse_line(const char *line, size_t len, size_t line_no, cJSON **out, ad_error *err) {
    ad_error why = {{0}};
    cJSON *o = ad_json_parse_strict(line, len, &why);
    *out = NULL;
    if (!o) return ad_error_set(err, "stdin:%zu: %s", line_no, why.msg);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(o, "answer");
    *out = NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ad_error_set(err, "stdin:%zu: not a JSON object", line_no);
    }
    if (!cJSON_IsString(prompt) || !cJSON_IsString(answer)) {
        cJSON_Delete(o);
        return ad_error_set(err, "stdin:%zu: needs string fields \"prompt\" and \"answer\"",
                            line_no);
    }
    *out = o;
    return AD_OK;
}

/* Prints the line's object back with the verdict added. */
static int print_verdict(cJSON *o, const ad_verdict *v, size_t line_no, ad_error *err) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, "correct");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "score");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "reason");
    cJSON_AddBoolToObject(o, "correct", v->correct);
    cJSON_AddNumberToObject(o, "score", v->score);
    cJSON_AddStringToObject(o, "reason", v->reason);
    char *s = cJSON_PrintUnformatted(o);
    if (!s) return ad_error_set(err, "stdin:%zu: out of memory", line_no);
    printf("%s\n", s);
    free(s);
    return AD_OK;
}

/* Lines read but not yet verified. */
typedef struct pending {
    cJSON *obj[VERIFY_CHUNK];
    const char *prompts[VERIFY_CHUNK], *answers[VERIFY_CHUNK];
    size_t line[VERIFY_CHUNK];
    ad_verdict v[VERIFY_CHUNK];
    size_t n;
} pending;

/* Verifies the pending lines together and prints them in order. When the
 * batch fails they are verified again one by one, so that the lines before
 * the failing one are printed and the message names its line. */
static int flush_pending(const ad_task *t, pending *pd, size_t *total, size_t *correct,
                         ad_error *err) {
    int batch_ok = ad_task_verify_batch(t, pd->prompts, pd->answers, pd->n, pd->v, err) == AD_OK;
    int rc = AD_OK;
    for (size_t i = 0; i < pd->n && rc == AD_OK; i++) {
        if (!batch_ok && ad_task_verify(t, pd->prompts[i], pd->answers[i], &pd->v[i], err))
            rc = ad_error_prefix(err, "stdin:%zu: ", pd->line[i]);
        else
            rc = print_verdict(pd->obj[i], &pd->v[i], pd->line[i], err);
        *total += rc == AD_OK;
        *correct += rc == AD_OK && pd->v[i].correct;
    }
    for (size_t i = 0; i < pd->n; i++)
        cJSON_Delete(pd->obj[i]);
    pd->n = 0;
    return rc;
}

/* stdin read in blocks and cut into lines, so that we can tell whether
 * another line is there without blocking (stdio cannot). */
typedef struct line_reader {
    char *buf;
    size_t start, len, cap; /* unread bytes: buf[start..len) */
} line_reader;

/* The next line (newline replaced by NUL) at *line: 1, or 0 at the end of
 * input, or -1 on a read error or out of memory. */
static int next_line(line_reader *r, char **line, size_t *n) {
    for (;;) {
        char *nl = r->len > r->start ? memchr(r->buf + r->start, '\n', r->len - r->start) : NULL;
        if (nl) {
            *line = r->buf + r->start;
            *n = (size_t)(nl - *line);
            *nl = '\0';
            r->start += *n + 1;
            return 1;
        }
        if (r->start) { /* keep the partial line at the front */
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->len -= r->start;
            r->start = 0;
        }
        if (r->len + 4097 > r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 65536;
            char *b = realloc(r->buf, cap);
            if (!b) return -1;
            r->buf = b;
            r->cap = cap;
        }
        ssize_t got = read(0, r->buf + r->len, r->cap - r->len - 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -1;
        if (got == 0) { /* the end: a last line without newline */
            if (r->len == 0) return 0;
            r->buf[r->len] = '\n';
            got = 1;
        }
        r->len += (size_t)got;
    }
}

/* 1 when another line can be read without waiting. */
static int line_waiting(const line_reader *r) {
    struct pollfd pf = {0, POLLIN, 0};
    return (r->len > r->start && memchr(r->buf + r->start, '\n', r->len - r->start)) ||
           poll(&pf, 1, 0) > 0;
}

/* Verifies the JSONL lines of stdin: as many together as have arrived (up
 * to VERIFY_CHUNK), so that a verifier pool works in parallel on a file and a
 * line-by-line conversation still gets each answer at once. */
static int verify_stream(const ad_task *t, size_t *total, size_t *correct, ad_error *err) {
    pending *pd = calloc(1, sizeof *pd);
    line_reader r = {0};
    if (!pd) return ad_error_set(err, "out of memory");
    size_t line_no = 0, n;
    char *line;
    int rc = AD_OK, bad_line = AD_OK, got = 0;
    while (bad_line == AD_OK && rc == AD_OK && (got = next_line(&r, &line, &n)) > 0) {
        line_no++;
        cJSON *o = NULL;
        ad_error line_err;
        if (strspn(line, " \t\r") != n) bad_line = parse_line(line, n, line_no, &o, &line_err);
        if (o) {
            pd->obj[pd->n] = o;
            pd->prompts[pd->n] = cJSON_GetObjectItemCaseSensitive(o, "prompt")->valuestring;
            pd->answers[pd->n] = cJSON_GetObjectItemCaseSensitive(o, "answer")->valuestring;
            pd->line[pd->n++] = line_no;
        }
        if (pd->n && (pd->n == VERIFY_CHUNK || bad_line != AD_OK || !line_waiting(&r)))
            rc = flush_pending(t, pd, total, correct, err);
        if (rc == AD_OK && bad_line != AD_OK) rc = (*err = line_err, AD_ERR);
        fflush(stdout);
    }
    if (rc == AD_OK && bad_line == AD_OK && got < 0)
        rc = ad_error_set(err, "stdin:%zu: cannot read: %s", line_no + 1, strerror(errno));
    if (rc == AD_OK && pd->n) rc = flush_pending(t, pd, total, correct, err);
    free(r.buf);
    free(pd);
    return rc;
}

static int tasks_verify(int argc, char **argv) {
    const char *name = NULL;
    ad_task_options opts;
    ad_task_default_options(&opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        float timeout;
        if (!strcmp(a, "--verifier")) {
            if (!(opts.verifier = option_value(argc, argv, &i, "verify"))) return 2;
        } else if (!strcmp(a, "--workers")) {
            if (!(v = option_value(argc, argv, &i, "verify")) ||
                cli_parse_size(CMD " verify", "--workers", v, &opts.sandbox.workers))
                return 2;
        } else if (!strcmp(a, "--memory-mb")) {
            size_t mb;
            if (!(v = option_value(argc, argv, &i, "verify")) ||
                cli_parse_size(CMD " verify", "--memory-mb", v, &mb))
                return 2;
            if (mb < MEMORY_MB_MIN || mb > MEMORY_MB_MAX) {
                fprintf(stderr, "autodidact tasks verify: --memory-mb %zu is not in %d..%d\n", mb,
                        MEMORY_MB_MIN, MEMORY_MB_MAX);
                return 2;
            }
            opts.sandbox.memory_bytes = mb << 20;
        } else if (!strcmp(a, "--env")) {
            if (!(opts.sandbox.pass_env = option_value(argc, argv, &i, "verify"))) return 2;
        } else if (!strcmp(a, "--timeout")) {
            if (!(v = option_value(argc, argv, &i, "verify")) ||
                cli_parse_float(CMD " verify", "--timeout", v, "task.verifier_timeout", &timeout))
                return 2;
            opts.sandbox.timeout_s = timeout;
        } else if (a[0] == '-' || name) {
            fprintf(stderr, "autodidact tasks verify: unexpected argument '%s'\n", a);
            return 2;
        } else {
            name = a;
        }
    }
    if (!name) {
        fprintf(stderr, "autodidact tasks verify: needs a task NAME (see --help)\n");
        return 2;
    }
    ad_error err;
    ad_task *t;
    if (ad_task_open(name, &opts, &t, &err)) return cli_fail(CMD, &err);
    char why[512];
    if (opts.verifier && (ad_sandbox_probe(why, sizeof why), why[0]))
        fprintf(stderr, "autodidact tasks verify: verifier sandbox: %s\n", why);
    size_t total = 0, correct = 0;
    int rc = verify_stream(t, &total, &correct, &err) == AD_OK ? 0 : cli_fail(CMD, &err);
    ad_task_free(t);
    fflush(stdout);
    if (rc == 0) fprintf(stderr, "%zu answers, %zu correct\n", total, correct);
    return rc;
}

int cmd_tasks(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    int help = cli_wants_help(argc - 1, argv + 1);
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "list")) return help ? (list_usage(), 0) : tasks_list(argc - 1, argv + 1);
    if (!strcmp(sub, "sample"))
        return help ? (sample_usage(), 0) : tasks_sample(argc - 1, argv + 1);
    if (!strcmp(sub, "verify"))
        return help ? (verify_usage(), 0) : tasks_verify(argc - 1, argv + 1);
    fprintf(stderr, "autodidact tasks: unknown subcommand '%s'\n", sub);
    usage(stderr);
    return 2;
}
