/* test_store_migrate.c: opening a run store of schema version 1, made by the
 * release before version 2 (tests/fixtures/store_v1/run, see its README),
 * migrates it in place: every row is still there, the cursor is backfilled
 * from the acquire stage's figure, the tables equal a fresh store's, the new
 * API works on it, reopening changes nothing, two processes opening it at once
 * migrate it once, and a damaged version 1 store is refused by name with the
 * file left byte for byte as it was. Set AD_STORE_FIXTURES to the fixtures
 * folder when not running from the repository root. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "store/store.h"

static char tmpdir[256];

static const char *fixture_db(void) {
    static char path[512];
    const char *d = getenv("AD_STORE_FIXTURES");
    snprintf(path, sizeof path, "%s/run/run.db", d && *d ? d : "tests/fixtures/store_v1");
    return path;
}

static const char *tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* The whole file (malloc'd; *len its size), or NULL. */
static unsigned char *read_all(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n;
    unsigned char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        unsigned char *grown = realloc(buf, cap + n);
        if (!grown) break;
        buf = grown;
        memcpy(buf + cap, chunk, n);
        cap += n;
    }
    fclose(f);
    *len = cap;
    return buf;
}

/* Copies the fixture's run.db to tmpdir/name; 0 on success. */
static int copy_fixture(const char *name) {
    size_t len;
    unsigned char *buf = read_all(fixture_db(), &len);
    CHECK_MSG(buf != NULL && len > 0, "cannot read the fixture %s", fixture_db());
    if (!buf) return -1;
    FILE *f = fopen(tmp_path(name), "wb");
    int ok = f && fwrite(buf, 1, len, f) == len;
    if (f) fclose(f);
    free(buf);
    CHECK(ok);
    return ok ? 0 : -1;
}

/* Runs sql on the database at path (no store code involved). */
static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* Every row of the query, as text: "a|b|c\n" per row (malloc'd). */
static char *raw_dump(const char *path, const char *sql) {
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            const unsigned char *t = sqlite3_column_text(s, c);
            fprintf(f, "%s%s", c ? "|" : "", t ? (const char *)t : "NULL");
        }
        fputc('\n', f);
    }
    fclose(f);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

static int64_t raw_int(const char *path, const char *sql) {
    char *t = raw_dump(path, sql);
    int64_t v = t && *t ? strtoll(t, NULL, 10) : -999;
    free(t);
    return v;
}

/* The version 1 tables and their columns, as the fixture has them. */
static const char *const v1_tables[] = {
    "runs",    "lineages",    "rounds",      "stages",        "levels",
    "samples", "evaluations", "checkpoints", "stage_metrics",
};
#define N_V1 (sizeof v1_tables / sizeof v1_tables[0])

/* The rows of each version 1 table, in version 1's columns (read before
 * migrating, so the same columns can be read after). */
static void dump_v1(const char *path, char **dumps) {
    for (size_t t = 0; t < N_V1; t++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT group_concat(name, ', ') FROM pragma_table_info('%s')",
                 v1_tables[t]);
        char *cols = raw_dump(path, sql);
        if (cols) cols[strcspn(cols, "\n")] = '\0';
        char query[1024];
        snprintf(query, sizeof query, "SELECT %s FROM %s ORDER BY rowid", cols ? cols : "*",
                 v1_tables[t]);
        free(cols);
        dumps[t] = raw_dump(path, query);
        /* the columns again, for the reading after migration */
        char *q = malloc(strlen(query) + 1);
        strcpy(q, query);
        dumps[N_V1 + t] = q;
    }
}

/* The shape of every table: columns (name, type, not null, default, pk) and
 * foreign keys, table by table. Compares a migrated store with a fresh one. */
static char *schema_shape(const char *path) {
    return raw_dump(path,
                    "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk"
                    " FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'"
                    " UNION ALL SELECT m.name, f.id, f.seq, f.\"table\", f.\"from\", f.\"to\","
                    " f.on_delete FROM sqlite_master m, pragma_foreign_key_list(m.name) f"
                    " WHERE m.type = 'table' ORDER BY 1, 2, 3");
}

typedef struct count_ctx {
    size_t n, scored;
} count_ctx;

static int count_row(void *ctx, const ad_store_sample *r, ad_error *err) {
    count_ctx *c = ctx;
    c->n++;
    c->scored += !isnan(r->score);
    return AD_OK;
}

static void test_migrates_fixture(void) {
    if (copy_fixture("m.db")) return;
    char path[512]; /* tmp_path's buffer is reused below */
    snprintf(path, sizeof path, "%s", tmp_path("m.db"));
    CHECK(raw_int(path, "PRAGMA user_version") == 1);
    int64_t cursor_v1 = raw_int(path, "SELECT value FROM stage_metrics WHERE round = 1"
                                      " AND stage = 'acquire' AND key = 'cursor_after'");
    CHECK(cursor_v1 >= 0);
    char *dumps[2 * N_V1];
    dump_v1(path, dumps);

    ad_error err;
    ad_store *st = NULL;
    int rc = ad_store_open(path, 0, &st, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (!st) goto out;
    CHECK(raw_int(path, "PRAGMA user_version") == AD_STORE_SCHEMA_VERSION);
    for (size_t t = 0; t < N_V1; t++) {
        char *after = raw_dump(path, dumps[N_V1 + t]);
        CHECK_MSG(after && dumps[t] && strcmp(after, dumps[t]) == 0, "table %s changed",
                  v1_tables[t]);
        free(after);
    }
    /* the tables are those of a fresh version 2 store */
    ad_store *fresh = NULL;
    CHECK(ad_store_open(tmp_path("fresh.db"), 1, &fresh, &err) == AD_OK);
    ad_store_close(fresh);
    char *shape = schema_shape(path), *want = schema_shape(tmp_path("fresh.db"));
    CHECK_MSG(shape && want && strcmp(shape, want) == 0, "migrated:\n%s\nfresh:\n%s",
              shape ? shape : "?", want ? want : "?");
    free(shape);
    free(want);

    /* the run as the store reads it */
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    ad_store_round_row *rows = NULL;
    size_t n = 0;
    CHECK(ad_store_rounds(st, &rows, &n, &err) == AD_OK && n == 2);
    if (n == 2) CHECK(rows[0].status == AD_ROUND_ACCEPTED && rows[1].status == AD_ROUND_ACCEPTED);
    if (n == 2) CHECK(rows[1].n_samples == 16 && rows[1].n_kept > 0);
    free(rows);
    count_ctx c = {0, 0};
    CHECK(ad_store_samples_foreach(st, 1, "select", count_row, &c, &err) == AD_OK);
    CHECK(c.n == 8 && c.scored == 0); /* version 1 never scored */
    ad_store_eval *cells = NULL;
    CHECK(ad_store_eval_series(st, "accuracy", 0, &cells, &n, &err) == AD_OK && n == 6);
    free(cells);
    int done = 0;
    CHECK(ad_store_stage_is_done(st, 1, "select", -1, &done, &err) == AD_OK && done);

    /* the cursor moved from the acquire figure onto the round */
    ad_store_round r;
    int found = 0;
    CHECK(ad_store_round_get(st, 1, &r, &found, &err) == AD_OK && found);
    CHECK_MSG(r.cursor == cursor_v1, "cursor %lld, figure %lld", (long long)r.cursor,
              (long long)cursor_v1);
    CHECK(r.status == AD_ROUND_ACCEPTED);
    CHECK(ad_store_round_get(st, 0, &r, &found, &err) == AD_OK && found && r.cursor == -1);
    uint32_t last = 9;
    CHECK(ad_store_last_accepted(st, 2, &last, &found, &err) == AD_OK && found && last == 1);
    CHECK(ad_store_last_accepted(st, 1, &last, &found, &err) == AD_OK && found && last == 0);

    /* export, and the new rows on the migrated store */
    char *buf = NULL;
    size_t len = 0, written = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(ad_store_export_jsonl(st, 1, "select", f, &written, &err) == AD_OK && written == 8);
    CHECK(ad_store_export_pairs_jsonl(st, 1, f, &written, &err) == AD_OK && written == 0);
    fclose(f);
    free(buf);
    CHECK(ad_store_round_begin(st, 2, &err) == AD_OK);
    CHECK(ad_store_round_set_cursor(st, 2, (size_t)cursor_v1 + 1, &err) == AD_OK);
    ad_store_pair p = {.round = 2,
                       .rule = "verifier",
                       .level = ad_level_int(5),
                       .prompt = "12345=",
                       .chosen = "12345",
                       .rejected = "1234",
                       .rejected_sample = 1,
                       .chosen_correct = 1,
                       .rejected_correct = 0};
    CHECK(ad_store_pairs_insert(st, &p, 1, &err) == AD_OK);
    double lc = -1.5, lr = -2.5;
    CHECK(ad_store_pair_logps_insert(st, 2, 0, &lc, &lr, 1, &err) == AD_OK);
    CHECK(ad_store_round_finish(st, 2, 1, NULL, &err) == AD_OK);
    CHECK(ad_store_last_accepted(st, 3, &last, &found, &err) == AD_OK && found && last == 2);
    ad_store_close(st);

    /* reopening a version 2 store changes nothing */
    size_t len0, len1;
    unsigned char *before = read_all(path, &len0);
    st = NULL;
    CHECK(ad_store_open(path, 0, &st, &err) == AD_OK);
    ad_store_close(st);
    unsigned char *after = read_all(path, &len1);
    CHECK(before && after && len0 == len1 && memcmp(before, after, len0) == 0);
    free(before);
    free(after);
    CHECK(raw_int(path, "PRAGMA user_version") == AD_STORE_SCHEMA_VERSION);
    CHECK(raw_int(path, "SELECT cursor FROM rounds WHERE round = 2") == cursor_v1 + 1);
out:
    for (size_t t = 0; t < 2 * N_V1; t++)
        free(dumps[t]);
}

/* Opening a damaged store fails with `fragment` in the message and leaves
 * the file byte for byte as it was, still at version 1. */
static void expect_migration_refused(const char *name, const char *fragment) {
    const char *path = tmp_path(name);
    size_t len0, len1;
    unsigned char *before = read_all(path, &len0);
    ad_error err;
    ad_store *st = (ad_store *)1;
    CHECK(ad_store_open(path, 0, &st, &err) == AD_ERR && st == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s: migrate schema 1 -> 2: ", path);
    CHECK_MSG(strncmp(err.msg, want, strlen(want)) == 0 && strstr(err.msg, fragment), "%s",
              err.msg);
    unsigned char *after = read_all(path, &len1);
    CHECK_MSG(before && after && len0 == len1 && memcmp(before, after, len0) == 0,
              "%s changed (%zu -> %zu bytes)", name, len0, len1);
    free(before);
    free(after);
    CHECK(raw_int(path, "PRAGMA user_version") == 1);
    CHECK(raw_int(path, "SELECT count(*) FROM pragma_table_info('rounds') WHERE name = 'cursor'") ==
          0);
    CHECK(raw_int(path, "SELECT count(*) FROM pragma_table_info('samples') WHERE name = 'score'") ==
          0);
}

static void test_damaged_v1_refused(void) {
    /* a table missing: refused by name before anything is changed */
    if (copy_fixture("missing.db")) return;
    raw_exec(tmp_path("missing.db"), "DROP TABLE checkpoints");
    expect_migration_refused("missing.db",
                             "table 'checkpoints' is missing: not a whole version 1 run store");
    /* a step failing halfway (after the ALTERs): all of it rolls back */
    if (copy_fixture("half.db")) return;
    raw_exec(tmp_path("half.db"), "CREATE TABLE pairs(x)");
    expect_migration_refused("half.db", "create pairs: table pairs already exists");
    /* still refused the second time, and still the same file */
    expect_migration_refused("half.db", "create pairs: table pairs already exists");
    /* once repaired, it migrates */
    raw_exec(tmp_path("half.db"), "DROP TABLE pairs");
    ad_error err;
    ad_store *st = NULL;
    CHECK(ad_store_open(tmp_path("half.db"), 0, &st, &err) == AD_OK);
    ad_store_close(st);
    CHECK(raw_int(tmp_path("half.db"), "PRAGMA user_version") == AD_STORE_SCHEMA_VERSION);
}

/* A store of a newer version than this build is refused as before. */
static void test_newer_refused(void) {
    if (copy_fixture("new.db")) return;
    raw_exec(tmp_path("new.db"), "PRAGMA user_version = 4");
    ad_error err;
    ad_store *st = NULL;
    CHECK(ad_store_open(tmp_path("new.db"), 0, &st, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "schema version 4, but this build reads version 3"), "%s", err.msg);
    CHECK(raw_int(tmp_path("new.db"), "PRAGMA user_version") == 4);
}

/* Several processes open the same version 1 store at once: each succeeds,
 * and the migration ran once (one cursor column, version 2). */
static void test_concurrent_open(void) {
    if (copy_fixture("c.db")) return;
    enum { N = 4 };
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(go[1]);
            char byte;
            if (read(go[0], &byte, 1) < 0) _exit(3); /* wait until all are forked */
            ad_store *st = NULL;
            ad_error e;
            if (ad_store_open(tmp_path("c.db"), 0, &st, &e)) {
                fprintf(stderr, "  child: %s\n", e.msg);
                _exit(4);
            }
            ad_store_close(st);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]); /* releases every child at once */
    for (int i = 0; i < N; i++) {
        int status = 0;
        waitpid(pids[i], &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", i, status);
    }
    CHECK(raw_int(tmp_path("c.db"), "PRAGMA user_version") == AD_STORE_SCHEMA_VERSION);
    CHECK(raw_int(tmp_path("c.db"),
                  "SELECT count(*) FROM pragma_table_info('rounds') WHERE name = 'cursor'") == 1);
    CHECK(raw_int(tmp_path("c.db"), "SELECT cursor FROM rounds WHERE round = 1") >= 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ad_test_store_migrate_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_migrates_fixture);
    RUN(test_damaged_v1_refused);
    RUN(test_newer_refused);
    RUN(test_concurrent_open);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
