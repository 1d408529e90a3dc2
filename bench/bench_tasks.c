/* bench_tasks.c: how fast the task library poses and checks problems, on one
 * core.
 *
 * The headline: 1M reverse-add problems at 20 digits, each generated from its
 * own derived seed (as the loop does) and its reference answer verified; the
 * target is under 2 s. Then every built-in task at a representative level.
 * Prints "RESULT tasks NAME LEVEL problems/s" lines. Not a test: it fails
 * only when a reference answer does not verify.
 *
 * usage: bench_tasks [--n N] [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tasks/task.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct timing {
    double generate_s, verify_s, total_s;
    size_t correct;
} timing;

/* Generates and verifies n problems at lv; times the two halves separately
 * and together (one loop, as the library is used). */
static int run(const ad_task *t, ad_level lv, size_t n, timing *out) {
    ad_problem p = {0};
    ad_error err;
    ad_verdict v;
    memset(out, 0, sizeof *out);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(1, AD_SEED_ANY, 0, AD_SEED_ACQUIRE, 0, i));
        if (ad_task_generate(t, lv, &rng, &p, &err)) goto fail;
    }
    double t1 = now_s();
    for (size_t i = 0; i < n; i++) { /* the last problem, n times: verification alone */
        if (ad_task_verify(t, p.prompt.s, p.answer.s, &v, &err)) goto fail;
        out->correct += (size_t)v.correct;
    }
    double t2 = now_s();
    out->correct = 0;
    for (size_t i = 0; i < n; i++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(1, AD_SEED_ANY, 0, AD_SEED_ACQUIRE, 0, i));
        if (ad_task_generate(t, lv, &rng, &p, &err) ||
            ad_task_verify(t, p.prompt.s, p.answer.s, &v, &err))
            goto fail;
        out->correct += (size_t)v.correct;
    }
    double t3 = now_s();
    out->generate_s = t1 - t0;
    out->verify_s = t2 - t1;
    out->total_s = t3 - t2;
    ad_problem_free(&p);
    return 0;
fail:
    fprintf(stderr, "bench_tasks: %s: %s\n", ad_task_name(t), err.msg);
    ad_problem_free(&p);
    return -1;
}

static int bench_one(const char *name, ad_level lv, size_t n, int headline) {
    ad_task *t;
    ad_error err;
    if (ad_task_open(name, NULL, &t, &err)) {
        fprintf(stderr, "bench_tasks: %s\n", err.msg);
        return -1;
    }
    timing tm;
    int rc = run(t, lv, n, &tm);
    char l[AD_LEVEL_TEXT_MAX];
    ad_level_format(lv, l, sizeof l);
    if (rc == 0) {
        printf("%-12s %-6s %9zu  generate %7.3f s  verify %7.3f s  both %7.3f s  %10.0f /s%s\n",
               name, l, n, tm.generate_s, tm.verify_s, tm.total_s, (double)n / tm.total_s,
               headline ? (tm.total_s < 2.0 ? "  (target < 2 s: met)" : "  (target < 2 s: MISSED)")
                        : "");
        printf("RESULT tasks %s %s %.0f\n", name, l, (double)n / tm.total_s);
        if (tm.correct != n) {
            fprintf(stderr, "bench_tasks: %s: %zu of %zu reference answers failed\n", name,
                    n - tm.correct, n);
            rc = -1;
        }
    }
    ad_task_free(t);
    return rc;
}

int main(int argc, char **argv) {
    size_t n = 1000000;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
            n = 100000;
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            n = (size_t)strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_tasks [--n N] [--quick]\n");
            return 2;
        }
    }
    printf("one core; each problem from its own derived seed; 'both' = generate + verify\n");
    int rc = bench_one("reverse-add", ad_level_int(20), n, 1);
    size_t m = quick ? 2000 : 20000;
    struct {
        const char *name;
        ad_level lv;
    } others[] = {
        {"reverse-add", {128, AD_LEVEL_SCALAR}},
        {"forward-add", {20, AD_LEVEL_SCALAR}},
        {"copy", {100, AD_LEVEL_SCALAR}},
        {"reverse", {100, AD_LEVEL_SCALAR}},
        {"multiply", {10, 10}},
        {"multiply", {20, 20}},
        {"maze", {30, AD_LEVEL_SCALAR}},
        {"maze-nodes", {99, AD_LEVEL_SCALAR}},
        {"sort", {100, AD_LEVEL_SCALAR}},
        {"countdown", {6, AD_LEVEL_SCALAR}},
        {"subset-sum", {32, AD_LEVEL_SCALAR}},
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        rc |= bench_one(others[i].name, others[i].lv, m, 0);
    return rc ? 1 : 0;
}
