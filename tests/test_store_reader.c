/* test_store_reader.c: what keeps a run store from being confused or changed
 * by those who only read it: a read-only open writes nothing (no -wal or -shm
 * left, the file's bytes and time unchanged) and still sees a live writer's
 * last commit; a run's identity is fixed for its life and differs between
 * runs; a round number out of range in a damaged store is an error naming it;
 * SQLite's path limit is real. The rest of the store is tests/test_store.c's. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "store/store.h"

static char tmpdir[256];

static const char *db_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A closed store with one run and rounds 0 and 1 (the writer folded its WAL). */
static void make_store(const char *name) {
    ad_error err;
    ad_store *st = NULL;
    CHECK_MSG(ad_store_open(db_path(name), 1, &st, &err) == AD_OK, "%s", err.msg);
    if (!st) return;
    CHECK(ad_store_run_create(st, "run", 7, "[run]\n", &err) == AD_OK);
    CHECK(ad_store_round_begin(st, 0, &err) == AD_OK);
    CHECK(ad_store_round_begin(st, 1, &err) == AD_OK);
    ad_store_close(st);
}

static size_t count_rounds(ad_store *st) {
    ad_error err;
    ad_store_round_row *rows = NULL;
    size_t n = 0;
    CHECK_MSG(ad_store_rounds(st, &rows, &n, &err) == AD_OK, "%s", err.msg);
    free(rows);
    return n;
}

static void test_reader_writes_nothing(void) {
    make_store("a.db");
    char wal[600], shm[600];
    snprintf(wal, sizeof wal, "%s-wal", db_path("a.db"));
    snprintf(shm, sizeof shm, "%s-shm", db_path("a.db"));
    CHECK(!exists(wal) && !exists(shm));
    struct stat before, after;
    CHECK(stat(db_path("a.db"), &before) == 0);
    ad_error err;
    ad_store *st = NULL;
    CHECK_MSG(ad_store_open_readonly(db_path("a.db"), &st, &err) == AD_OK, "%s", err.msg);
    if (!st) return;
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    CHECK(count_rounds(st) == 2);
    CHECK(ad_store_round_begin(st, 2, &err) != AD_OK); /* a reader cannot write */
    ad_store_close(st);
    CHECK_MSG(!exists(wal) && !exists(shm), "a reader left %s%s", exists(wal) ? "-wal " : "",
              exists(shm) ? "-shm" : "");
    CHECK(stat(db_path("a.db"), &after) == 0);
    CHECK(after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
          after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
}

/* While a writer has the store open, a reader shares its WAL and sees each
 * commit as it lands. */
static void test_reader_sees_live_writer(void) {
    make_store("b.db");
    ad_error err;
    ad_store *w = NULL, *r = NULL;
    CHECK(ad_store_open(db_path("b.db"), 0, &w, &err) == AD_OK);
    if (!w) return;
    CHECK(ad_store_run_select(w, NULL, NULL, NULL, &err) == AD_OK);
    CHECK(ad_store_round_begin(w, 2, &err) == AD_OK);
    CHECK_MSG(ad_store_open_readonly(db_path("b.db"), &r, &err) == AD_OK, "%s", err.msg);
    if (r) {
        CHECK(ad_store_run_select(r, NULL, NULL, NULL, &err) == AD_OK);
        CHECK(count_rounds(r) == 3);
        CHECK(ad_store_round_begin(w, 3, &err) == AD_OK);
        CHECK(count_rounds(r) == 4);
    }
    ad_store_close(r);
    ad_store_close(w);
}

static uint64_t identity_of(const char *name, int readonly) {
    ad_error err;
    ad_store *st = NULL;
    uint64_t id = 0;
    int rc = readonly ? ad_store_open_readonly(db_path(name), &st, &err)
                      : ad_store_open(db_path(name), 0, &st, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (!st) return 0;
    CHECK(ad_store_run_identity(st, &id, &err) != AD_OK); /* no run selected yet */
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    CHECK_MSG(ad_store_run_identity(st, &id, &err) == AD_OK, "%s", err.msg);
    ad_store_close(st);
    return id;
}

/* The same config and seed, created twice: two identities; one store, opened
 * again (writer or reader): the same one. */
static void test_run_identity(void) {
    make_store("c.db");
    make_store("d.db");
    uint64_t c = identity_of("c.db", 0);
    CHECK(c != 0 && c == identity_of("c.db", 0) && c == identity_of("c.db", 1));
    CHECK(identity_of("d.db", 0) != c);
}

/* Round numbers are uint32 everywhere: a damaged store's 99999999999 (CHECK
 * constraints switched off) is refused by name, 4294967295 is read as it is. */
static void test_round_out_of_range(void) {
    make_store("e.db");
    sqlite3 *db;
    CHECK(sqlite3_open(db_path("e.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "INSERT INTO rounds(run_id, round, status, started_at) "
                       "VALUES(1, 4294967295, 'accepted', 0)",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    ad_error err;
    ad_store *st = NULL;
    CHECK(ad_store_open_readonly(db_path("e.db"), &st, &err) == AD_OK);
    if (!st) return;
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    ad_store_round_row *rows = NULL;
    size_t n = 0;
    CHECK(ad_store_rounds(st, &rows, &n, &err) == AD_OK && n == 3 && rows[2].round == UINT32_MAX);
    free(rows);
    ad_store_close(st);
    CHECK(sqlite3_open(db_path("e.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "PRAGMA ignore_check_constraints = 1; UPDATE rounds SET round = "
                       "99999999999 WHERE round = 4294967295",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(ad_store_open(db_path("e.db"), 0, &st, &err) == AD_OK);
    if (!st) return;
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    CHECK(ad_store_rounds(st, &rows, &n, &err) != AD_OK);
    CHECK_MSG(strstr(err.msg, "round 99999999999 is out of range"), "%s", err.msg);
    ad_store_close(st);
}

/* The limit that run directories are checked against is the one SQLite
 * enforces: a store path past it cannot be opened. */
static void test_path_max(void) {
    size_t max = ad_store_path_max();
    CHECK(max >= 256 && max < 65536);
    char *path = malloc(max + 64);
    if (!path) return;
    size_t n = (size_t)snprintf(path, max + 64, "%s/", tmpdir);
    for (; n < max + 8; n++)
        path[n] = n % 100 ? 'p' : '/';
    snprintf(path + n, 16, "/x.db");
    ad_error err;
    ad_store *st = NULL;
    CHECK(ad_store_open(path, 1, &st, &err) != AD_OK);
    ad_store_close(st);
    free(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ad_test_store_reader_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_reader_writes_nothing);
    RUN(test_reader_sees_live_writer);
    RUN(test_run_identity);
    RUN(test_round_out_of_range);
    RUN(test_path_max);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
