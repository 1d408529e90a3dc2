/* test_tasks_file.c: users' own tasks ("file:PATH" JSONL problems).
 *
 * Levels group problems; generation draws only at the requested level and is
 * deterministic; without a verifier answers are compared exactly (a prompt
 * given twice accepts either answer); with a verifier the sandbox decides;
 * tokens cover every UTF-8 character of the file; every malformed file is an
 * error naming the file and the line; batches agree with one-by-one. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "loop/complete.h"
#include "tasks/task.h"

static char dir[256];

static const char *write_file(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static ad_task *open_file_task(const char *path, const ad_task_options *opts, ad_error *err) {
    char name[600];
    snprintf(name, sizeof name, "file:%s", path);
    ad_task *t = NULL;
    if (ad_task_open(name, opts, &t, err)) return NULL;
    return t;
}

static const char *levels_jsonl =
    "{\"prompt\": \"2+2=\", \"answer\": \"4\", \"level\": 1}\n"
    "{\"prompt\": \"3+4=\", \"answer\": \"7\", \"level\": 1, \"note\": \"ignored\"}\n"
    "\n"
    "  \r\n"
    "{\"prompt\": \"12+30=\", \"answer\": \"42\", \"level\": 2}\n"
    "{\"prompt\": \"dé→\", \"answer\": \"ü\", \"level\": 3}\n"
    "{\"prompt\": \"2+2=\", \"answer\": \"four\", \"level\": 3}\n";

static void test_levels_and_generation(void) {
    ad_error err;
    ad_task *t = open_file_task(write_file("a.jsonl", levels_jsonl), NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    CHECK(strstr(ad_task_name(t), "file:") && strstr(ad_task_name(t), "a.jsonl"));
    CHECK(ad_task_level_min(t).a == 1 && ad_task_level_max(t).a == 3);
    CHECK(!ad_level_is_pair(ad_task_level_min(t)));
    ad_problem p = {0};
    ad_rng rng;
    ad_rng_seed(&rng, 4);
    int seen[2] = {0, 0};
    for (int i = 0; i < 200; i++) {
        CHECK(ad_task_generate(t, ad_level_int(1), &rng, &p, &err) == AD_OK);
        int first = !strcmp(p.prompt.s, "2+2=") && !strcmp(p.answer.s, "4");
        int second = !strcmp(p.prompt.s, "3+4=") && !strcmp(p.answer.s, "7");
        CHECK(first || second);
        CHECK(p.has_answer && p.level.a == 1);
        seen[first ? 0 : 1]++;
    }
    CHECK(seen[0] > 50 && seen[1] > 50); /* uniform among the level's problems */
    CHECK(ad_task_generate(t, ad_level_int(2), &rng, &p, &err) == AD_OK);
    CHECK(!strcmp(p.prompt.s, "12+30=") && !strcmp(p.answer.s, "42"));
    /* A gap in the levels is refused when the file is opened (it used to fail
     * only when a run reached the level); a level outside the range fails. */
    ad_task_free(t);
    t = open_file_task(write_file("gap.jsonl",
                                  "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": 1}\n"
                                  "{\"prompt\": \"c\", \"answer\": \"d\", \"level\": 5}\n"),
                       NULL, &err);
    CHECK(t == NULL && strstr(err.msg, "no problems at level 2"));
    t = open_file_task(write_file("range.jsonl",
                                  "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": 1}\n"
                                  "{\"prompt\": \"c\", \"answer\": \"d\", \"level\": 2}\n"
                                  "{\"prompt\": \"e\", \"answer\": \"f\", \"level\": 3}\n"
                                  "{\"prompt\": \"g\", \"answer\": \"h\", \"level\": 4}\n"
                                  "{\"prompt\": \"i\", \"answer\": \"j\", \"level\": 5}\n"),
                       NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    CHECK(ad_task_generate(t, ad_level_int(6), &rng, &p, &err) == AD_ERR);
    CHECK(ad_task_generate(t, ad_level_pair(1, 1), &rng, &p, &err) == AD_ERR);
    /* Same seed, same problems. */
    ad_problem q = {0};
    for (uint64_t s = 0; s < 20; s++) {
        ad_rng r1, r2;
        ad_rng_seed(&r1, s);
        ad_rng_seed(&r2, s);
        CHECK(ad_task_generate(t, ad_level_int(5), &r1, &p, &err) == AD_OK);
        CHECK(ad_task_generate(t, ad_level_int(5), &r2, &q, &err) == AD_OK);
        CHECK(!strcmp(p.prompt.s, q.prompt.s));
    }
    ad_problem_free(&p);
    ad_problem_free(&q);
    ad_task_free(t);
}

static void test_exact_verification(void) {
    ad_error err;
    ad_task *t = open_file_task(write_file("a.jsonl", levels_jsonl), NULL, &err);
    ad_verdict v;
    CHECK(ad_task_verify(t, "3+4=", "7", &v, &err) == AD_OK && v.correct && v.score == 1.0);
    CHECK(ad_task_verify(t, "3+4=", "8", &v, &err) == AD_OK && !v.correct && v.score == 0.0);
    CHECK(ad_task_verify(t, "3+4=", "", &v, &err) == AD_OK && !v.correct);
    CHECK(ad_task_verify(t, "3+4=", "77", &v, &err) == AD_OK && !v.correct);
    /* A prompt listed twice accepts each of its answers. */
    CHECK(ad_task_verify(t, "2+2=", "4", &v, &err) == AD_OK && v.correct);
    CHECK(ad_task_verify(t, "2+2=", "four", &v, &err) == AD_OK && v.correct);
    CHECK(ad_task_verify(t, "2+2=", "5", &v, &err) == AD_OK && !v.correct);
    CHECK(ad_task_verify(t, "dé→", "ü", &v, &err) == AD_OK && v.correct);
    CHECK(ad_task_verify(t, "9+9=", "18", &v, &err) == AD_ERR &&
          strstr(err.msg, "not in the file"));
    size_t bound;
    CHECK(ad_task_max_answer_len(t, "3+4=", &bound, &err) == AD_OK && bound == 16);
    ad_task_free(t);
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.max_answer_len = 3;
    t = open_file_task(write_file("a.jsonl", levels_jsonl), &opts, &err);
    CHECK(ad_task_max_answer_len(t, "anything", &bound, &err) == AD_OK && bound == 3);
    ad_task_free(t);
    char long_answer[200];
    memset(long_answer, 'z', 40);
    snprintf(long_answer + 40, sizeof long_answer - 40, "\", \"level\": [2, 3]}\n");
    char text[400] = "{\"prompt\": \"p\", \"answer\": \"";
    strcat(text, long_answer);
    t = open_file_task(write_file("pair.jsonl", text), NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    CHECK(ad_task_max_answer_len(t, "p", &bound, &err) == AD_OK && bound == 80);
    CHECK(ad_level_is_pair(ad_task_level_min(t)) && ad_task_level_max(t).b == 3);
    ad_task_free(t);
}

/* The tokens are exactly the distinct characters of the file (plus extras). */
static void test_tokens(void) {
    ad_error err;
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.extra_chars = "xλ";
    ad_task *t = open_file_task(write_file("a.jsonl", levels_jsonl), &opts, &err);
    size_t n;
    const char *const *tokens = ad_task_tokens(t, &n);
    const char *want[] = {"+", "0", "1", "2", "3", "4", "7", "=", "d",
                          "f", "o", "r", "u", "x", "é", "ü", "λ", "→"};
    CHECK_MSG(n == sizeof want / sizeof want[0], "%zu tokens", n);
    for (size_t i = 0; i < n && i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(!strcmp(tokens[i], want[i]), "token %zu is '%s', expected '%s'", i, tokens[i],
                  want[i]);
    ad_task_free(t);
    /* Files without levels are all level 1. */
    t = open_file_task(write_file("nolevel.jsonl", "{\"prompt\": \"a\", \"answer\": \"b\"}\n"),
                       NULL, &err);
    CHECK(t && ad_task_level_min(t).a == 1 && ad_task_level_max(t).a == 1);
    ad_task_free(t);
}

static void expect_error(const char *what, const char *text, const char *part,
                         const ad_task_options *opts) {
    ad_error err;
    err.msg[0] = '\0';
    const char *path = write_file("bad.jsonl", text);
    ad_task *t = open_file_task(path, opts, &err);
    CHECK_MSG(t == NULL, "%s: opened", what);
    CHECK_MSG(strstr(err.msg, part) && strstr(err.msg, "bad.jsonl"), "%s: '%s' lacks '%s'", what,
              err.msg, part);
    ad_task_free(t);
}

static void test_malformed_files(void) {
    const char *ok = "{\"prompt\": \"a\", \"answer\": \"b\"}\n";
    char text[256];
    snprintf(text, sizeof text, "%s%s{not json\n", ok, ok);
    expect_error("not JSON", text, ":3: not valid JSON", NULL);
    expect_error("array", "[1, 2]\n", ":1: not a JSON object", NULL);
    expect_error("no prompt", "{\"answer\": \"b\"}\n", ":1: \"prompt\"", NULL);
    expect_error("empty prompt", "{\"prompt\": \"\", \"answer\": \"b\"}\n", ":1: \"prompt\"", NULL);
    expect_error("answer type", "{\"prompt\": \"a\", \"answer\": 5}\n", ":1: \"answer\"", NULL);
    expect_error("level type", "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": \"x\"}\n",
                 "line 1: \"level\"", NULL);
    expect_error("level negative", "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": -2}\n",
                 "line 1: \"level\"", NULL);
    snprintf(text, sizeof text, "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": 1}\n%s", ok);
    expect_error("levels on some lines", text, ":2: no \"level\"", NULL);
    expect_error("pair and integer",
                 "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": 1}\n"
                 "{\"prompt\": \"c\", \"answer\": \"d\", \"level\": [1, 2]}\n",
                 ":2: level kind", NULL);
    expect_error("level gap",
                 "{\"prompt\": \"a\", \"answer\": \"b\", \"level\": 1}\n"
                 "{\"prompt\": \"c\", \"answer\": \"d\", \"level\": 2}\n"
                 "{\"prompt\": \"e\", \"answer\": \"f\", \"level\": 4}\n",
                 ": no problems at level 3 (the file has levels 2 and 4): levels must have no gaps",
                 NULL);
    expect_error("no answer", "{\"prompt\": \"a\"}\n", ":1: no \"answer\"", NULL);
    expect_error("bad UTF-8", "{\"prompt\": \"a\xff\", \"answer\": \"b\"}\n",
                 ":1: text is not valid UTF-8", NULL);
    expect_error("empty", "\n\n", "no problems", NULL);
    ad_error err;
    ad_task *t;
    CHECK(ad_task_open("file:/nonexistent/x.jsonl", NULL, &t, &err) == AD_ERR && t == NULL);
    CHECK(strstr(err.msg, "/nonexistent/x.jsonl") != NULL);
    CHECK(ad_task_open("file:", NULL, &t, &err) == AD_ERR);
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.extra_chars = "\xc3";
    expect_error("bad extra chars", ok, "extra characters", &opts);
}

/* With a verifier, answers go to it (prompts need not be in the file, nor
 * answers), and its verdicts come back. */
static void test_with_verifier(void) {
    const char *py = write_file("v.py", "import sys, json\n"
                                        "for line in sys.stdin:\n"
                                        "    r = json.loads(line)\n"
                                        "    ok = r['answer'].lower() == r['prompt'].lower()\n"
                                        "    print(json.dumps({'correct': ok, 'score': 0.5 if ok "
                                        "else 0}), flush=True)\n");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s", py);
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.verifier = cmd;
    opts.sandbox.workers = 1;
    ad_error err;
    ad_task *t = open_file_task(write_file("nv.jsonl", "{\"prompt\": \"Abc\"}\n"
                                                       "{\"prompt\": \"xyz\", \"level\": null}\n"),
                                &opts, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    ad_verdict v;
    CHECK(ad_task_verify(t, "Abc", "aBC", &v, &err) == AD_OK && v.correct && v.score == 0.5);
    CHECK(ad_task_verify(t, "Abc", "abd", &v, &err) == AD_OK && !v.correct);
    CHECK(ad_task_verify(t, "not in file", "NOT IN FILE", &v, &err) == AD_OK && v.correct);
    ad_problem p = {0};
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    CHECK(ad_task_generate(t, ad_level_int(1), &rng, &p, &err) == AD_OK && !p.has_answer);
    CHECK(p.answer.len == 0);
    size_t bound;
    CHECK(ad_task_max_answer_len(t, "Abc", &bound, &err) == AD_OK && bound == 256);
    ad_problem_free(&p);
    ad_task_free(t);
    /* A verifier that cannot start is an error at the first verify. */
    opts.verifier = "/nonexistent/verifier";
    t = open_file_task(write_file("nv.jsonl", "{\"prompt\": \"Abc\"}\n"), &opts, &err);
    CHECK(t != NULL);
    CHECK(t && ad_task_verify(t, "Abc", "abc", &v, &err) == AD_ERR &&
          strstr(err.msg, "could not be started"));
    ad_task_free(t);
}

/* A batch gives the verdicts that one-by-one verification gives, for a
 * built-in task, a file compared exactly and a file with a verifier pool;
 * an error names the first pair that failed. */
static void test_verify_batch(void) {
    ad_error err;
    ad_task *t = NULL;
    ad_verdict v[6], one;
    const char *add_p[] = {"321+54=", "1+1=", "321+54="}, *add_a[] = {"8610", "20", "8x"};
    CHECK(ad_task_open("reverse-add", NULL, &t, &err) == AD_OK);
    CHECK(ad_task_verify_batch(t, add_p, add_a, 3, v, &err) == AD_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(ad_task_verify(t, add_p[i], add_a[i], &one, &err) == AD_OK);
        CHECK(v[i].correct == one.correct && !strcmp(v[i].reason, one.reason));
    }
    CHECK(v[0].correct && v[1].correct && !v[2].correct);
    const char *bad_p[] = {"1+1=", "oops"};
    CHECK(ad_task_verify_batch(t, bad_p, add_a, 2, v, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "answer 1: ") && strstr(err.msg, "oops"), "%s", err.msg);
    ad_task_free(t);

    const char *fp[] = {"2+2=", "2+2=", "2+2=", "dé→", "3+4=", "12+30="};
    const char *fa[] = {"4", "four", "5", "ü", "7 ", "42"};
    t = open_file_task(write_file("a.jsonl", levels_jsonl), NULL, &err);
    CHECK(t && ad_task_verify_batch(t, fp, fa, 6, v, &err) == AD_OK);
    for (int i = 0; t && i < 6; i++)
        CHECK_MSG(v[i].correct == (i != 2 && i != 4), "%d: %s", i, v[i].reason);
    ad_task_free(t);

    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "while read l; do case \"$l\" in *'\"answer\": \"4\"'*|*'\"answer\":\"4\"'*) "
             "echo '{\"correct\": true}';; *) echo '{\"correct\": false, "
             "\"score\": 0.25}';; esac; done");
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.verifier = cmd;
    opts.sandbox.workers = 3;
    t = open_file_task(write_file("a.jsonl", levels_jsonl), &opts, &err);
    CHECK_MSG(t && ad_task_verify_batch(t, fp, fa, 6, v, &err) == AD_OK, "%s", err.msg);
    for (int i = 0; t && i < 6; i++)
        CHECK_MSG(v[i].correct == (i == 0) && v[i].score == (i == 0 ? 1.0 : 0.25), "%d: %s", i,
                  v[i].reason);
    ad_task_free(t);
    opts.verifier = "/nonexistent/verifier";
    t = open_file_task(write_file("a.jsonl", levels_jsonl), &opts, &err);
    CHECK(t && ad_task_verify_batch(t, fp, fa, 6, v, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "answer 0: ") && strstr(err.msg, "could not be started"), "%s",
              err.msg);
    ad_task_free(t);
}

/* max_len comes from the whole file: one long prompt at level 1 counts even
 * when sizing for level 2 (sampling 16 problems at the top level missed it). */
static void test_sequence_bound_whole_file(void) {
    char text[4096], longp[301];
    memset(longp, '7', 300);
    longp[300] = '\0';
    size_t pos = (size_t)snprintf(
        text, sizeof text, "{\"prompt\": \"%s=\", \"answer\": \"1\", \"level\": 1}\n", longp);
    for (int i = 0; i < 20; i++)
        pos += (size_t)snprintf(text + pos, sizeof text - pos,
                                "{\"prompt\": \"%d=\", \"answer\": \"1\", \"level\": 2}\n", i);
    ad_error err;
    ad_task *t = open_file_task(write_file("long.jsonl", text), NULL, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) return;
    size_t bound = 0;
    CHECK(ad_task_sequence_bound(t, ad_level_int(2), 16, 1, &bound, &err) == AD_OK);
    CHECK_MSG(bound == 301 + 16 + 2, "bound %zu", bound); /* prompt, answer budget, BOS, EOS */
    ad_task_free(t);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ad_file_task_test_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_levels_and_generation);
    RUN(test_exact_verification);
    RUN(test_tokens);
    RUN(test_malformed_files);
    RUN(test_sequence_bound_whole_file);
    RUN(test_with_verifier);
    RUN(test_verify_batch);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
