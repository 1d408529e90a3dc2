/* test_atomic_file.c: atomic writes (src/util/atomic_file.h): the file
 * appears whole, and a commit removes the temporaries that killed writers
 * left beside it (a run SIGKILLed mid-write, scripts/killresume.sh), but not
 * those of live processes or of other files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "util/atomic_file.h"

static char tmpdir[] = "/tmp/ad_test_atomic_XXXXXX";

/* A process id that no longer runs: a child that has exited and been reaped. */
static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

static void touch(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

static int exists(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return access(path, F_OK) == 0;
}

static void test_stale_predicate(void) {
    char name[64];
    long dead = dead_pid();
    snprintf(name, sizeof name, "a.jsonl.tmp.%ld", dead);
    CHECK(ad_tmp_is_stale(name, "a.jsonl"));
    CHECK(!ad_tmp_is_stale(name, "b.jsonl"));
    CHECK(!ad_tmp_is_stale(name, "a.json"));
    snprintf(name, sizeof name, "a.jsonl.tmp.%ld", (long)getpid());
    CHECK(ad_tmp_is_stale(name, "a.jsonl"));
    snprintf(name, sizeof name, "a.jsonl.tmp.%ld", (long)getppid());
    CHECK(!ad_tmp_is_stale(name, "a.jsonl")); /* alive: maybe writing right now */
    CHECK(!ad_tmp_is_stale("a.jsonl.tmp.", "a.jsonl"));
    CHECK(!ad_tmp_is_stale("a.jsonl.tmp.12x", "a.jsonl"));
    CHECK(!ad_tmp_is_stale("a.jsonl", "a.jsonl"));
}

static void test_commit_removes_stale(void) {
    char dead[64], alive[64], other[64], path[512];
    long pid = dead_pid();
    snprintf(dead, sizeof dead, "round.jsonl.tmp.%ld", pid);
    snprintf(alive, sizeof alive, "round.jsonl.tmp.%ld", (long)getppid());
    snprintf(other, sizeof other, "other.jsonl.tmp.%ld", pid);
    touch(dead);
    touch(alive);
    touch(other);
    snprintf(path, sizeof path, "%s/round.jsonl", tmpdir);
    ad_error err;
    CHECK(ad_atomic_write(path, "{}\n", 3, &err) == AD_OK);
    char *text = NULL;
    size_t len = 0;
    CHECK(ad_read_file(path, 100, &text, &len, &err) == AD_OK && len == 3 && !strcmp(text, "{}\n"));
    free(text);
    CHECK_MSG(!exists(dead), "%s is still there", dead);
    CHECK(exists(alive));
    CHECK(exists(other));
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_stale_predicate);
    RUN(test_commit_removes_stale);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
