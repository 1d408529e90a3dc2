/* test_tasks.c: properties of every built-in task over many seeds and levels.
 *
 * For each task, at its smallest and largest level and at random levels in
 * between, with many seeds: generation is deterministic and stays inside the
 * level; the reference answer verifies; the answer-length bound holds (and is
 * exact where the format fixes the length); every symbol encodes with a
 * vocabulary built from the task's tokens; systematic corruptions of the
 * answer are rejected (for countdown and subset-sum, whose answers are not
 * unique, the verdict must agree with an independent oracle written here).
 * Also: registry, level syntax, malformed prompts, threads. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/vocab.h"
#include "tasks/task.h"

#define MAX_NUMBERS 1024

static ad_task *open_task(const char *name) {
    ad_task *t = NULL;
    ad_error err;
    if (ad_task_open(name, NULL, &t, &err)) fprintf(stderr, "  open %s: %s\n", name, err.msg);
    return t;
}

static size_t count_char(const char *s, char c) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Levels to test: min, max and `extra` random ones in between. */
static size_t pick_levels(const ad_task *t, ad_rng *rng, ad_level *out, size_t extra) {
    ad_level lo = ad_task_level_min(t), hi = ad_task_level_max(t);
    size_t n = 0;
    out[n++] = lo;
    out[n++] = hi;
    for (size_t i = 0; i < extra; i++) {
        ad_level lv = lo;
        lv.a = (int32_t)ad_rng_range(rng, lo.a, hi.a);
        if (ad_level_is_pair(lo)) lv.b = (int32_t)ad_rng_range(rng, lo.b, hi.b);
        out[n++] = lv;
    }
    return n;
}

/* ---- independent oracles ---------------------------------------------------- */

/* Numbers of a "N,N,...,N" run ending at `end`; returns the count, or -1. */
static int parse_list(const char **s, char end, uint64_t *vals, int cap) {
    int n = 0;
    const char *p = *s;
    for (;;) {
        if (*p < '0' || *p > '9' || n == cap) return -1;
        if (p[0] == '0' && p[1] >= '0' && p[1] <= '9') return -1;
        uint64_t x = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 18) return -1;
            x = x * 10 + (uint64_t)(*p++ - '0');
        }
        vals[n++] = x;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != end) return -1;
        *s = p + 1;
        return n;
    }
}

/* Parses "list:target=" prompts of countdown and subset-sum. */
static int parse_pool(const char *prompt, uint64_t *vals, uint64_t *target) {
    const char *p = prompt;
    int n = parse_list(&p, ':', vals, MAX_NUMBERS);
    uint64_t t[1];
    if (n < 0 || parse_list(&p, '=', t, 1) != 1 || *p) return -1;
    *target = t[0];
    return n;
}

/* Takes x from the pool (marking it used); 0 when unavailable. */
static int take(const uint64_t *vals, int *used, int n, uint64_t x) {
    for (int i = 0; i < n; i++)
        if (vals[i] == x && !used[i]) return used[i] = 1;
    return 0;
}

static int subset_oracle(const char *prompt, const char *answer) {
    uint64_t vals[MAX_NUMBERS], picked[MAX_NUMBERS], target, sum = 0;
    int used[MAX_NUMBERS] = {0};
    int n = parse_pool(prompt, vals, &target);
    const char *p = answer;
    int k = parse_list(&p, '\0', picked, MAX_NUMBERS);
    if (n < 0 || k < 1) return 0;
    for (int i = 0; i < k; i++) {
        if (!take(vals, used, n, picked[i])) return 0;
        sum += picked[i];
    }
    return sum == target;
}

/* Countdown oracle: recursive descent in long double (a different method from
 * the verifier's exact rationals). */
typedef struct calc {
    const char *p;
    uint64_t vals[MAX_NUMBERS];
    int used[MAX_NUMBERS], n, ok, depth;
} calc;

static long double calc_expr(calc *c);

static long double calc_factor(calc *c) {
    if (*c->p == '(') {
        c->p++;
        if (++c->depth > 64) c->ok = 0;
        long double v = c->ok ? calc_expr(c) : 0;
        if (*c->p != ')') c->ok = 0;
        c->p++;
        c->depth--;
        return v;
    }
    if (*c->p < '0' || *c->p > '9' || (c->p[0] == '0' && c->p[1] >= '0' && c->p[1] <= '9')) {
        c->ok = 0;
        return 0;
    }
    uint64_t x = 0;
    while (*c->p >= '0' && *c->p <= '9' && x < 1000000000)
        x = x * 10 + (uint64_t)(*c->p++ - '0');
    if (!take(c->vals, c->used, c->n, x)) c->ok = 0;
    return (long double)x;
}

static long double calc_term(calc *c) {
    long double v = calc_factor(c);
    while (c->ok && (*c->p == '*' || *c->p == '/')) {
        char op = *c->p++;
        long double w = calc_factor(c);
        if (op == '/' && w == 0) c->ok = 0;
        v = op == '*' ? v * w : (w != 0 ? v / w : 0);
    }
    return v;
}

static long double calc_expr(calc *c) {
    long double v = calc_term(c);
    while (c->ok && (*c->p == '+' || *c->p == '-')) {
        char op = *c->p++;
        long double w = calc_term(c);
        v = op == '+' ? v + w : v - w;
    }
    return v;
}

static int countdown_oracle(const char *prompt, const char *answer) {
    calc c;
    memset(&c, 0, sizeof c);
    uint64_t target;
    c.n = parse_pool(prompt, c.vals, &target);
    c.p = answer;
    c.ok = c.n > 0 && *answer;
    long double v = c.ok ? calc_expr(&c) : 0;
    if (!c.ok || *c.p) return 0;
    long double d = v - (long double)target;
    return d < 1e-9L && d > -1e-9L;
}

/* ---- corruptions ------------------------------------------------------------- */

static const char separators[] = "+,>:-=()*/;#";
static const char foreign[] = "x A.\n\t\x80\xff";

/* Writes corruption number `kind` of answer into out (cap bytes). */
static void corrupt(const char *answer, int kind, ad_rng *rng, char *out, size_t cap) {
    size_t n = strlen(answer), i = n ? (size_t)ad_rng_below(rng, n) : 0;
    char sub[2] = {0, 0};
    snprintf(out, cap, "%s", answer);
    switch (kind) {
    case 0: /* one character changed, a digit to another digit */
        if (!n) break;
        if (answer[i] >= '0' && answer[i] <= '9')
            out[i] = (char)('0' + (answer[i] - '0' + 1 + (int)ad_rng_below(rng, 9)) % 10);
        else
            out[i] = answer[i] == '0' ? '1' : '0';
        break;
    case 1: /* one character dropped */
        if (n) memmove(out + i, out + i + 1, n - i);
        break;
    case 2: /* one digit inserted */
        i = (size_t)ad_rng_below(rng, n + 1);
        memmove(out + i + 1, out + i, n - i + 1);
        out[i] = (char)('0' + ad_rng_below(rng, 10));
        break;
    case 3: /* truncated */
        out[n ? (size_t)ad_rng_below(rng, n) : 0] = '\0';
        break;
    case 4: /* empty */
        out[0] = '\0';
        break;
    case 5: /* a separator replaced by another, or a digit by a separator */
        for (size_t k = 0; k < n; k++) {
            size_t j = (i + k) % n;
            if (answer[j] < '0' || answer[j] > '9') {
                i = j;
                break;
            }
        }
        do {
            sub[0] = separators[ad_rng_below(rng, sizeof separators - 1)];
        } while (n && sub[0] == answer[i]);
        if (n) out[i] = sub[0];
        break;
    case 6: /* a character outside the alphabet inserted */
        i = (size_t)ad_rng_below(rng, n + 1);
        memmove(out + i + 1, out + i, n - i + 1);
        out[i] = foreign[ad_rng_below(rng, sizeof foreign - 1)];
        break;
    default: /* the answer twice */
        snprintf(out, cap, "%s%s", answer, answer);
        break;
    }
}
#define N_CORRUPTIONS 8

/* ---- per-task checks --------------------------------------------------------- */

/* Checks that the prompt's size matches the level, by the task's format. */
static void check_level_shape(const char *name, ad_level lv, const ad_problem *p) {
    const char *pr = p->prompt.s;
    size_t len = p->prompt.len;
    if (!strcmp(name, "reverse-add") || !strcmp(name, "forward-add") || !strcmp(name, "multiply")) {
        size_t la = strcspn(pr, "+*"), lb = len - la - 2;
        CHECK_MSG(la == (size_t)lv.a, "%s %s", name, pr);
        CHECK_MSG(lb == (size_t)(ad_level_is_pair(lv) ? lv.b : lv.a), "%s %s", name, pr);
    } else if (!strcmp(name, "copy") || !strcmp(name, "reverse")) {
        CHECK(len == (size_t)lv.a + 1);
    } else if (!strcmp(name, "maze") || !strcmp(name, "maze-nodes")) {
        size_t nodes = count_char(strchr(pr, '#'), '-') + 1;
        size_t hops = count_char(p->answer.s, '>');
        size_t want_nodes = lv.a <= 29 ? 30 : (size_t)(2 * lv.a - 28 > 99 ? 99 : 2 * lv.a - 28);
        if (!strcmp(name, "maze-nodes")) {
            CHECK_MSG(nodes == (size_t)lv.a && hops == 9, "nodes %zu hops %zu", nodes, hops);
        } else {
            CHECK_MSG(hops == (size_t)lv.a && nodes == want_nodes, "lv %d nodes %zu hops %zu", lv.a,
                      nodes, hops);
        }
    } else if (!strcmp(name, "sort")) {
        CHECK(count_char(pr, ',') + 1 == (size_t)lv.a);
    } else {
        CHECK(count_char(pr, ',') + 1 == (size_t)lv.a); /* countdown, subset-sum */
    }
}

/* Tasks whose answer is unique: any other string must be rejected. */
static int answer_unique(const char *name) {
    return strcmp(name, "countdown") && strcmp(name, "subset-sum");
}

/* Tasks whose bound is the exact answer length. */
static int bound_exact(const char *name) {
    return strcmp(name, "countdown") && strcmp(name, "subset-sum") && strcmp(name, "forward-add");
}

static void check_tokens_encode(const ad_vocab *v, const char *text) {
    int32_t ids[16384];
    size_t n;
    ad_error err;
    int rc = ad_vocab_encode(v, text, ids, sizeof ids / sizeof ids[0], &n, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
}

static void check_corruptions(const ad_task *t, const ad_problem *p, ad_rng *rng, size_t *rejected,
                              size_t *total) {
    const char *name = ad_task_name(t);
    size_t cap = 2 * p->answer.len + 16;
    char *bad = malloc(cap);
    for (int kind = 0; kind < N_CORRUPTIONS; kind++) {
        corrupt(p->answer.s, kind, rng, bad, cap);
        ad_verdict v;
        ad_error err;
        CHECK(ad_task_verify(t, p->prompt.s, bad, &v, &err) == AD_OK);
        CHECK(v.score == (v.correct ? 1.0 : 0.0) && v.reason[0]);
        int expected;
        if (answer_unique(name))
            expected = strcmp(bad, p->answer.s) == 0;
        else if (!strcmp(name, "countdown"))
            expected = countdown_oracle(p->prompt.s, bad);
        else
            expected = subset_oracle(p->prompt.s, bad);
        CHECK_MSG(v.correct == expected, "%s prompt %s answer '%s' corrupted (%d) to '%s': %s",
                  name, p->prompt.s, p->answer.s, kind, bad, v.reason);
        *rejected += !v.correct;
        (*total)++;
    }
    free(bad);
}

static void check_problem(const ad_task *t, const ad_vocab *vocab, ad_level lv, const ad_problem *p,
                          ad_rng *rng, size_t *rejected, size_t *total) {
    const char *name = ad_task_name(t);
    ad_verdict v;
    ad_error err;
    size_t bound = 0;
    CHECK(p->has_answer && ad_level_cmp(p->level, lv) == 0);
    check_level_shape(name, lv, p);
    CHECK_MSG(ad_task_verify(t, p->prompt.s, p->answer.s, &v, &err) == AD_OK && v.correct &&
                  v.score == 1.0,
              "%s %s -> %s: %s", name, p->prompt.s, p->answer.s, v.reason);
    CHECK(ad_task_max_answer_len(t, p->prompt.s, &bound, &err) == AD_OK);
    CHECK_MSG(bound >= p->answer.len, "%s bound %zu < %zu", name, bound, p->answer.len);
    if (bound_exact(name)) CHECK_MSG(bound == p->answer.len, "%s bound %zu", name, bound);
    CHECK(strlen(p->prompt.s) == p->prompt.len && strlen(p->answer.s) == p->answer.len);
    check_tokens_encode(vocab, p->prompt.s);
    check_tokens_encode(vocab, p->answer.s);
    check_corruptions(t, p, rng, rejected, total);
}

/* The main property test: every task, its extreme and random levels, many seeds. */
static void test_properties(void) {
    size_t seeds = test_quick() ? 6 : 50, extra = test_quick() ? 4 : 14;
    ad_rng pick;
    ad_rng_seed(&pick, 7);
    for (size_t i = 0; i < ad_task_builtin_count(); i++) {
        ad_task *t = open_task(ad_task_builtin_name(i));
        CHECK(t != NULL);
        if (!t) continue;
        size_t n_tokens, rejected = 0, total = 0;
        const char *const *tokens = ad_task_tokens(t, &n_tokens);
        ad_vocab *vocab = malloc(sizeof *vocab);
        ad_error err;
        CHECK(ad_vocab_build(vocab, tokens, n_tokens, &err) == AD_OK);
        ad_level levels[32];
        size_t n_levels = pick_levels(t, &pick, levels, extra);
        ad_problem p = {0};
        for (size_t l = 0; l < n_levels; l++) {
            for (size_t s = 0; s < seeds; s++) {
                ad_rng rng;
                ad_rng_seed(&rng, ad_seed_derive(11, i, l, s, 0));
                CHECK(ad_task_generate(t, levels[l], &rng, &p, &err) == AD_OK);
                check_problem(t, vocab, levels[l], &p, &rng, &rejected, &total);
            }
        }
        /* The oracle-checked tasks must still reject the bulk of corruptions. */
        CHECK_MSG(rejected * 10 >= total * 9, "%s rejected only %zu of %zu", ad_task_name(t),
                  rejected, total);
        ad_problem_free(&p);
        free(vocab);
        ad_task_free(t);
    }
}

static void test_deterministic(void) {
    for (size_t i = 0; i < ad_task_builtin_count(); i++) {
        ad_task *t = open_task(ad_task_builtin_name(i));
        if (!t) continue;
        ad_level lv = ad_task_level_max(t);
        lv.a = lv.a > 12 ? 12 : lv.a;
        if (ad_level_is_pair(lv)) lv.b = 7;
        ad_problem p = {0}, q = {0};
        ad_error err;
        size_t same = 0;
        for (uint64_t s = 0; s < 20; s++) {
            ad_rng r1, r2, r3;
            ad_rng_seed(&r1, s);
            ad_rng_seed(&r2, s);
            ad_rng_seed(&r3, s + 1000);
            CHECK(ad_task_generate(t, lv, &r1, &p, &err) == AD_OK);
            CHECK(ad_task_generate(t, lv, &r2, &q, &err) == AD_OK);
            CHECK(!strcmp(p.prompt.s, q.prompt.s) && !strcmp(p.answer.s, q.answer.s));
            CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
            CHECK(ad_task_generate(t, lv, &r3, &q, &err) == AD_OK);
            same += !strcmp(p.prompt.s, q.prompt.s);
        }
        CHECK_MSG(same <= 1, "%s: %zu of 20 seeds gave the same prompt", ad_task_name(t), same);
        ad_problem_free(&p);
        ad_problem_free(&q);
        ad_task_free(t);
    }
}

static void test_registry_and_levels(void) {
    ad_error err;
    ad_task *t;
    CHECK(ad_task_builtin_count() == 10);
    for (size_t i = 0; i < ad_task_builtin_count(); i++)
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(ad_task_builtin_name(i), ad_task_builtin_name(j)) != 0);
    CHECK(ad_task_builtin_name(ad_task_builtin_count()) == NULL);
    CHECK(ad_task_open("nope", NULL, &t, &err) == AD_ERR && t == NULL);
    CHECK(strstr(err.msg, "nope") && strstr(err.msg, "reverse-add"));
    CHECK(ad_task_open("", NULL, &t, &err) == AD_ERR);
    ad_task_options opts;
    ad_task_default_options(&opts);
    opts.verifier = "cat";
    CHECK(ad_task_open("copy", &opts, &t, &err) == AD_ERR && strstr(err.msg, "file:"));

    /* The knob ranges reach well past the reference paper. */
    struct {
        const char *name;
        int a, b;
    } reach[] = {{"reverse-add", 128, 0}, {"forward-add", 128, 0}, {"copy", 256, 0},
                 {"reverse", 256, 0},     {"sort", 256, 0},        {"multiply", 20, 20},
                 {"maze", 40, 0},         {"maze-nodes", 99, 0}};
    for (size_t i = 0; i < sizeof reach / sizeof reach[0]; i++) {
        t = open_task(reach[i].name);
        ad_level lv = reach[i].b ? ad_level_pair(reach[i].a, reach[i].b) : ad_level_int(reach[i].a);
        CHECK_MSG(t && ad_task_level_check(t, lv, &err) == AD_OK, "%s", reach[i].name);
        ad_task_free(t);
    }

    t = open_task("multiply");
    CHECK(ad_task_level_check(t, ad_level_int(5), &err) == AD_ERR && strstr(err.msg, "pair"));
    CHECK(ad_task_level_check(t, ad_level_pair(0, 5), &err) == AD_ERR);
    CHECK(ad_task_level_check(t, ad_level_pair(5, 41), &err) == AD_ERR && strstr(err.msg, "5x41"));
    ad_problem p = {0};
    ad_rng rng;
    ad_rng_seed(&rng, 1);
    CHECK(ad_task_generate(t, ad_level_pair(3, 99), &rng, &p, &err) == AD_ERR);
    ad_task_free(t);
    t = open_task("reverse-add");
    CHECK(ad_task_level_check(t, ad_level_pair(2, 2), &err) == AD_ERR);
    CHECK(ad_task_level_check(t, ad_level_int(0), &err) == AD_ERR);
    CHECK(ad_task_level_check(t, ad_level_int(1001), &err) == AD_ERR);
    ad_task_free(t);
    ad_problem_free(&p);

    ad_level lv;
    CHECK(ad_task_level_parse("7", &lv, &err) == AD_OK && lv.a == 7 && !ad_level_is_pair(lv));
    CHECK(ad_task_level_parse("5,6", &lv, &err) == AD_OK && lv.a == 5 && lv.b == 6);
    CHECK(ad_task_level_parse("5x6", &lv, &err) == AD_OK && lv.a == 5 && lv.b == 6);
    CHECK(ad_task_level_parse("(5,6)", &lv, &err) == AD_OK && lv.b == 6);
    CHECK(ad_task_level_parse("5,", &lv, &err) == AD_ERR);
    CHECK(ad_task_level_parse("x", &lv, &err) == AD_ERR);
    cJSON *j = ad_task_level_to_json(ad_level_pair(5, 6));
    char *s = cJSON_PrintUnformatted(j);
    CHECK(!strcmp(s, "[5,6]"));
    CHECK(ad_task_level_from_json(j, "level", &lv, &err) == AD_OK && lv.a == 5 && lv.b == 6);
    free(s);
    cJSON_Delete(j);
    j = cJSON_Parse("7");
    CHECK(ad_task_level_from_json(j, "level", &lv, &err) == AD_OK && lv.a == 7);
    cJSON_Delete(j);
    const char *bad[] = {"-1", "2.5", "[1]", "[1,2,3]", "\"7\"", "[1,\"a\"]", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = cJSON_Parse(bad[i]);
        CHECK_MSG(ad_task_level_from_json(j, "level", &lv, &err) == AD_ERR, "%s", bad[i]);
        cJSON_Delete(j);
    }
}

/* Malformed prompts are errors (naming the task), not verdicts. */
static void test_bad_prompts(void) {
    struct {
        const char *task, *prompt;
    } cases[] = {
        {"reverse-add", "321+54"},
        {"reverse-add", "+54="},
        {"reverse-add", "32a+54="},
        {"reverse-add", "321+54=1"},
        {"forward-add", "1-2="},
        {"copy", "="},
        {"copy", "12"},
        {"reverse", "1 2="},
        {"multiply", "12+3="},
        {"multiply", "12*="},
        {"maze", "1>2#1:2="},
        {"maze", "1>2#1:3-3:1="},
        {"maze", "1>2#1:2-2:1-1:2="},
        {"maze", "0>2#0:2-2:0="},
        {"maze", "1>100#1:100="},
        {"maze", "1>3#1:2-2:1-3:4-4:3="},
        {"sort", "1,,2="},
        {"sort", "01,2="},
        {"sort", ""},
        {"countdown", "1,2="},
        {"countdown", "1,2:="},
        {"subset-sum", "1,2:3"},
        {"subset-sum", ":3="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ad_task *t = open_task(cases[i].task);
        ad_verdict v;
        ad_error err;
        size_t bound;
        CHECK_MSG(ad_task_verify(t, cases[i].prompt, "1", &v, &err) == AD_ERR, "%s '%s'",
                  cases[i].task, cases[i].prompt);
        CHECK(strstr(err.msg, cases[i].task) != NULL);
        CHECK_MSG(ad_task_max_answer_len(t, cases[i].prompt, &bound, &err) == AD_ERR, "%s '%s'",
                  cases[i].task, cases[i].prompt);
        ad_task_free(t);
    }
}

/* Each of many threads generates and verifies the same seeds; all agree with
 * a single-threaded run. */
typedef struct thread_job {
    ad_task *t;
    uint64_t hash;
    int failures;
} thread_job;

static void *thread_run(void *arg) {
    thread_job *job = arg;
    ad_problem p = {0};
    ad_error err;
    ad_level lv = ad_task_level_min(job->t);
    lv.a += 3;
    if (ad_level_is_pair(lv)) lv.b += 2;
    for (uint64_t s = 0; s < 300; s++) {
        ad_rng rng;
        ad_rng_seed(&rng, s);
        ad_verdict v;
        if (ad_task_generate(job->t, lv, &rng, &p, &err) ||
            ad_task_verify(job->t, p.prompt.s, p.answer.s, &v, &err) || !v.correct)
            job->failures++;
        for (const char *c = p.prompt.s; *c; c++)
            job->hash = job->hash * 131 + (uint8_t)*c;
        for (const char *c = p.answer.s; *c; c++)
            job->hash = job->hash * 131 + (uint8_t)*c;
    }
    ad_problem_free(&p);
    return NULL;
}

static void test_threads(void) {
    for (size_t i = 0; i < ad_task_builtin_count(); i++) {
        ad_task *t = open_task(ad_task_builtin_name(i));
        thread_job single = {t, 0, 0}, jobs[4];
        pthread_t th[4];
        thread_run(&single);
        for (int k = 0; k < 4; k++) {
            jobs[k] = (thread_job){t, 0, 0};
            pthread_create(&th[k], NULL, thread_run, &jobs[k]);
        }
        for (int k = 0; k < 4; k++) {
            pthread_join(th[k], NULL);
            CHECK(jobs[k].hash == single.hash && jobs[k].failures == 0);
        }
        CHECK(single.failures == 0);
        ad_task_free(t);
    }
}

int main(void) {
    RUN(test_registry_and_levels);
    RUN(test_properties);
    RUN(test_deterministic);
    RUN(test_bad_prompts);
    RUN(test_threads);
    return test_summary();
}
