/* harness.h: the simplest honest test harness.
 *
 * A test program defines test functions and lists them in main with RUN(fn).
 * CHECK(cond) records a failure (with file and line) and continues; a test
 * fails if any CHECK in it failed. main ends with `return test_summary();`,
 * which prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef AD_TESTS_HARNESS_H
#define AD_TESTS_HARNESS_H

#include <math.h>
#include <stdio.h>

extern int test_current_failed;

void test_run(const char *name, void (*fn)(void));
int test_summary(void);
/* 1 when AD_TEST_QUICK is set (sanitizer runs): tests may shrink their sizes. */
int test_quick(void);

#define RUN(fn) test_run(#fn, fn)

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                     \
            test_current_failed = 1;                                                              \
        }                                                                                         \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                      \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fprintf(stderr, "\n");                                                                \
            test_current_failed = 1;                                                              \
        }                                                                                         \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                                             \
    do {                                                                                          \
        double a_ = (a), b_ = (b);                                                                \
        if (!(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_))) {                                       \
            fprintf(stderr, "  FAIL %s:%d: %s = %.9g, expected %s = %.9g\n", __FILE__, __LINE__,  \
                    #a, a_, #b, b_);                                                              \
            test_current_failed = 1;                                                              \
        }                                                                                         \
    } while (0)

#endif
