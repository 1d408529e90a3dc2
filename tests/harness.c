/* harness.c: runs tests, counts results, prints the summary line. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

int test_current_failed;
static int n_passed, n_failed;

void test_run(const char *name, void (*fn)(void)) {
    test_current_failed = 0;
    fn();
    if (test_current_failed) {
        n_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else {
        n_passed++;
        fprintf(stderr, "ok   %s\n", name);
    }
}

int test_summary(void) {
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}

int test_quick(void) {
    const char *q = getenv("AD_TEST_QUICK");
    return q && q[0] && strcmp(q, "0") != 0;
}
