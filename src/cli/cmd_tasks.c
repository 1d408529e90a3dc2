/* cmd_tasks.c: `autodidact tasks list|sample|verify`: look at the task
 * library from the shell: list the tasks, draw problems as JSONL, and check
 * answers read as JSONL on stdin. Thin: parsing and printing only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "tasks/task.h"

#define CMD "tasks"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: autodidact tasks list [--json]\n"
        "       autodidact tasks sample NAME --level L [-n N] [--seed S] "
        "[--independent-lengths]\n"
        "       autodidact tasks verify NAME [--verifier CMD] [--workers N] [--timeout S]\n"
        "                                    [--memory-mb M]\n"
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
           "[--independent-lengths]\n\n"
           "Writes N problems (default 1) as JSONL {\"task\",\"level\",\"prompt\",\"answer\"}.\n"
           "  --level L              difficulty: 7, or a pair 5,6 (written [5,6] in JSON)\n"
           "  -n N                   how many problems (default 1)\n"
           "  --seed S               random seed (default 1); the same seed gives the same "
           "problems\n"
           "  --independent-lengths  reverse-add/forward-add: operand lengths drawn from "
           "1..L\n");
}

static void verify_usage(void) {
    printf("usage: autodidact tasks verify NAME [--verifier CMD] [--workers N] [--timeout S]\n"
           "                                    [--memory-mb M]\n\n"
           "Reads JSONL {\"prompt\",\"answer\"} on stdin and writes each line back with\n"
           "\"correct\", \"score\" and \"reason\" added; a summary goes to stderr.\n"
           "  --verifier CMD   file: tasks: a program that reads {\"prompt\",\"answer\"} lines\n"
           "                   and answers {\"correct\": bool, \"score\": number} lines; it runs\n"
           "                   sandboxed (own process group, CPU/memory/file limits)\n"
           "  --workers N      verifier processes (default 2)\n"
           "  --timeout S      seconds per answer before the verifier is killed (default 10)\n"
           "  --memory-mb M    address-space limit of each verifier process (default 1024)\n");
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

/* Verifies one JSONL line and prints it back with the verdict added. */
static int verify_line(const ad_task *t, const char *line, size_t line_no, size_t *correct,
                       ad_error *err) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(o, "answer");
    int rc = AD_ERR;
    ad_verdict v;
    if (!cJSON_IsObject(o))
        ad_error_set(err, "stdin:%zu: not a JSON object", line_no);
    else if (!cJSON_IsString(prompt) || !cJSON_IsString(answer))
        ad_error_set(err, "stdin:%zu: needs string fields \"prompt\" and \"answer\"", line_no);
    else if (ad_task_verify(t, prompt->valuestring, answer->valuestring, &v, err))
        ad_error_prefix(err, "stdin:%zu: ", line_no);
    else
        rc = AD_OK;
    if (rc == AD_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "correct");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "score");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "reason");
        cJSON_AddBoolToObject(o, "correct", v.correct);
        cJSON_AddNumberToObject(o, "score", v.score);
        cJSON_AddStringToObject(o, "reason", v.reason);
        char *s = cJSON_PrintUnformatted(o);
        if (s)
            printf("%s\n", s);
        else
            rc = ad_error_set(err, "stdin:%zu: out of memory", line_no);
        free(s);
        *correct += (size_t)v.correct;
    }
    cJSON_Delete(o);
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
            opts.sandbox.memory_bytes = mb << 20;
        } else if (!strcmp(a, "--timeout")) {
            if (!(v = option_value(argc, argv, &i, "verify")) ||
                cli_parse_float(CMD " verify", "--timeout", v, &timeout))
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
    char *line = NULL;
    size_t cap = 0, line_no = 0, total = 0, correct = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        if (strspn(line, " \t\r\n") == (size_t)n) continue;
        if (verify_line(t, line, line_no, &correct, &err))
            rc = cli_fail(CMD, &err);
        else
            total++;
    }
    free(line);
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
