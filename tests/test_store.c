/* test_store.c: the run store on temporary databases: a round recorded and
 * read back after reopening, stage markers that commit with their figures
 * (also across a killed process), the round driver's cursor and last accepted
 * round, preference pairs and their reference log-probs, deletion for redoing
 * a stage or a round, the status queries, JSONL export (candidates and pairs),
 * and refusal of files that are not run stores. Migration from older schema
 * versions is tests/test_store_migrate.c's. */
#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "store/store.h"

static char tmpdir[256];

/* A fresh path inside the test's temporary directory. */
static const char *db_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static ad_store_sample sample_row(uint32_t round, size_t prompt, size_t lineage, size_t sample) {
    ad_store_sample r;
    memset(&r, 0, sizeof r);
    r.round = round;
    r.lineage = lineage;
    r.prompt_index = prompt;
    r.sample_index = sample;
    r.level = prompt % 2 ? ad_level_pair(5, 6) : ad_level_int(17);
    r.prompt = "321+54=";
    r.completion = sample % 2 ? "8610" : "861";
    r.n_tokens = 5;
    r.logprob = -0.25 * (double)(prompt + 1);
    r.hit_eos = 1;
    r.filters_ran = 0x5;
    r.filters_passed = sample % 2 ? 0x5 : 0x1;
    r.kept = sample % 2;
    r.correct = (int)(prompt % 3) - 1; /* -1, 0, 1 */
    r.score = prompt % 2 ? 0.125 * (double)(sample + 1) : NAN;
    return r;
}

/* Opens (creating) a store with one run and round `round` begun. */
static ad_store *open_with_round(const char *name, uint32_t round) {
    ad_error err;
    ad_store *st = NULL;
    int rc = ad_store_open(db_path(name), 1, &st, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (!st) return NULL;
    CHECK(ad_store_run_create(st, "test", 41, "[model]\nlayers = 2\n", &err) == AD_OK);
    CHECK(ad_store_round_begin(st, round, &err) == AD_OK);
    return st;
}

typedef struct collect {
    size_t n, kept;
    ad_store_sample first;
    char first_completion[32];
    double logprob_sum, score_sum;
} collect;

static int collect_row(void *ctx, const ad_store_sample *r, ad_error *err) {
    collect *c = ctx;
    if (c->n == 0) {
        c->first = *r;
        snprintf(c->first_completion, sizeof c->first_completion, "%s", r->completion);
    }
    c->n++;
    c->kept += r->kept != 0;
    if (!isnan(r->logprob)) c->logprob_sum += r->logprob;
    if (!isnan(r->score)) c->score_sum += r->score;
    return AD_OK;
}

static size_t count_samples(ad_store *st, uint32_t round, const char *stage) {
    ad_error err;
    collect c = {0};
    int rc = ad_store_samples_foreach(st, round, stage, collect_row, &c, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    return c.n;
}

static void test_round_trip_and_reopen(void) {
    ad_error err;
    ad_store *st = open_with_round("a.db", 0);
    if (!st) return;
    CHECK(ad_store_lineage_add(st, 0, 41, &err) == AD_OK);
    CHECK(ad_store_lineage_add(st, 1, 42, &err) == AD_OK);
    ad_level lv[3] = {ad_level_int(3), ad_level_int(1), ad_level_pair(2, 2)};
    size_t counts[3] = {10, 20, 30};
    /* the stage's figures and its marker in one transaction */
    CHECK(ad_store_begin(st, &err) == AD_OK);
    CHECK(ad_store_levels_insert(st, 0, "train", lv, counts, 3, &err) == AD_OK);
    enum { N = 2000 };
    ad_store_sample *rows = malloc(N * sizeof *rows);
    for (size_t i = 0; i < N; i++)
        rows[i] = sample_row(0, i / 4, (i / 2) % 2, i % 2);
    rows[0].logprob = NAN;
    rows[1].logprob = -INFINITY;
    CHECK(ad_store_samples_insert(st, "select", rows, N, &err) == AD_OK);
    CHECK(ad_store_stage_metric(st, 0, "select", -1, "kept_fraction", 0.5, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 0, "select", -1, 1.25, &err) == AD_OK);
    CHECK(ad_store_commit(st, &err) == AD_OK);
    ad_store_eval ev[3] = {{0, 0, ad_level_int(17), "accuracy", 0.75, 512},
                           {0, 0, ad_level_int(16), "accuracy", 1.0, 512},
                           {0, -1, ad_level_int(17), "maj@5", NAN, 512}};
    CHECK(ad_store_evals_insert(st, "evaluate", ev, 3, &err) == AD_OK);
    CHECK(ad_store_checkpoint_insert(st, 0, 0, "optimize", "ckpt/round0-l0.safetensors", -1,
                                     &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 0, "optimize", 0, 10.0, &err) == AD_OK);
    CHECK(ad_store_round_finish(st, 0, 1, NULL, &err) == AD_OK);
    ad_store_close(st);

    /* reopen without create and read everything back */
    st = NULL;
    int rc = ad_store_open(db_path("a.db"), 0, &st, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    if (!st) {
        free(rows);
        return;
    }
    uint64_t seed = 0;
    char *config = NULL;
    CHECK(ad_store_run_select(st, NULL, &seed, &config, &err) == AD_OK);
    CHECK(seed == 41 && config && strcmp(config, "[model]\nlayers = 2\n") == 0);
    free(config);
    size_t nl = 0;
    CHECK(ad_store_lineage_count(st, &nl, &err) == AD_OK && nl == 2);
    int done = 0;
    CHECK(ad_store_stage_is_done(st, 0, "select", -1, &done, &err) == AD_OK && done);
    CHECK(ad_store_stage_is_done(st, 0, "optimize", 0, &done, &err) == AD_OK && done);
    CHECK(ad_store_stage_is_done(st, 0, "optimize", 1, &done, &err) == AD_OK && !done);
    CHECK(ad_store_stage_is_done(st, 0, "optimize", -1, &done, &err) == AD_OK && !done);
    double v = 0;
    int found = 0;
    CHECK(ad_store_stage_metric_get(st, 0, "select", -1, "kept_fraction", &v, &found, &err) ==
          AD_OK);
    CHECK(found && v == 0.5);
    CHECK(ad_store_stage_metric_get(st, 0, "select", -1, "nope", &v, &found, &err) == AD_OK);
    CHECK(!found);
    ad_level *got = NULL;
    size_t n = 0;
    CHECK(ad_store_levels_get(st, 0, "train", &got, &n, &err) == AD_OK && n == 3);
    CHECK(n == 3 && got[0].a == 1 && got[1].a == 2 && got[1].b == 2 && got[2].a == 3);
    free(got);
    collect c = {0};
    CHECK(ad_store_samples_foreach(st, 0, "select", collect_row, &c, &err) == AD_OK);
    CHECK(c.n == N && c.kept == N / 2);
    CHECK(c.first.prompt_index == 0 && c.first.lineage == 0 && c.first.sample_index == 0);
    CHECK(isnan(c.first.logprob) && c.first.correct == -1 && c.first.filters_passed == 0x1);
    CHECK(isnan(c.first.score) && c.score_sum == 0.125 * (N / 4) * (1 + 2));
    CHECK(c.first.level.a == 17 && c.first.level.b == AD_LEVEL_SCALAR);
    CHECK(strcmp(c.first_completion, "861") == 0);
    CHECK(isinf(c.logprob_sum)); /* -inf came back as -inf */
    CHECK(count_samples(st, 0, "other") == 0 && count_samples(st, 0, NULL) == N);
    ad_store_eval *cells = NULL;
    CHECK(ad_store_eval_series(st, "accuracy", 0, &cells, &n, &err) == AD_OK && n == 2);
    CHECK(n == 2 && cells[0].level.a == 16 && cells[1].value == 0.75 && cells[1].n == 512);
    free(cells);
    CHECK(ad_store_eval_series(st, "maj@5", -1, &cells, &n, &err) == AD_OK && n == 1);
    CHECK(n == 1 && isnan(cells[0].value));
    free(cells);
    char path[256];
    int64_t parent = 7;
    CHECK(ad_store_checkpoint_get(st, 0, 0, path, sizeof path, &parent, &found, &err) == AD_OK);
    CHECK(found && strcmp(path, "ckpt/round0-l0.safetensors") == 0 && parent == -1);
    CHECK(ad_store_checkpoint_get(st, 0, 0, path, 4, &parent, &found, &err) == AD_ERR);
    CHECK(ad_store_checkpoint_get(st, 0, 1, path, sizeof path, &parent, &found, &err) == AD_OK);
    CHECK(!found);
    ad_store_close(st);
    free(rows);
}

static void test_rounds_table(void) {
    ad_error err;
    ad_store *st = open_with_round("b.db", 0);
    if (!st) return;
    CHECK(ad_store_stage_done(st, 0, "train", -1, 2.0, &err) == AD_OK);
    CHECK(ad_store_round_finish(st, 0, 1, NULL, &err) == AD_OK);
    CHECK(ad_store_round_begin(st, 1, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 1, "acquire", -1, 1.0, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 1, "select", -1, 0.5, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 1, "optimize", 0, 3.0, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 1, "optimize", 1, 3.0, &err) == AD_OK);
    ad_store_sample rows[4];
    for (size_t i = 0; i < 4; i++)
        rows[i] = sample_row(1, i, 0, i % 2);
    CHECK(ad_store_samples_insert(st, "select", rows, 4, &err) == AD_OK);
    CHECK(ad_store_round_finish(st, 1, 0, "accuracy on levels 1-16 fell by 3.1%", &err) == AD_OK);
    CHECK(ad_store_round_begin(st, 2, &err) == AD_OK);
    ad_store_round_row *r = NULL;
    size_t n = 0;
    CHECK(ad_store_rounds(st, &r, &n, &err) == AD_OK && n == 3);
    if (n == 3) {
        CHECK(r[0].round == 0 && r[0].status == AD_ROUND_ACCEPTED && r[0].stage_seconds == 2.0);
        CHECK(strcmp(r[0].stages_done, "train") == 0 && r[0].reason[0] == '\0');
        CHECK(r[1].status == AD_ROUND_ROLLED_BACK);
        CHECK(strcmp(r[1].reason, "accuracy on levels 1-16 fell by 3.1%") == 0);
        CHECK_MSG(strcmp(r[1].stages_done, "acquire select optimize") == 0, "%s", r[1].stages_done);
        CHECK(r[1].stage_seconds == 7.5 && r[1].n_samples == 4 && r[1].n_kept == 2);
        CHECK(r[2].status == AD_ROUND_RUNNING && isnan(r[2].finished_at) && r[2].started_at > 0);
        CHECK(r[2].stages_done[0] == '\0' && r[2].n_samples == 0);
    }
    free(r);
    CHECK(strcmp(ad_round_status_name(AD_ROUND_ROLLED_BACK), "rolled_back") == 0);
    ad_store_close(st);
}

static void test_errors_name_path_and_step(void) {
    ad_error err;
    ad_store *st = open_with_round("c.db", 0);
    if (!st) return;
    char want[600];
    CHECK(ad_store_stage_done(st, 0, "select", -1, 1.0, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 0, "select", -1, 1.0, &err) == AD_ERR);
    snprintf(want, sizeof want, "%s: mark stage done: UNIQUE constraint failed", db_path("c.db"));
    CHECK_MSG(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
    CHECK(ad_store_round_finish(st, 9, 1, NULL, &err) == AD_ERR);
    CHECK(strstr(err.msg, "finish round: round 9 was never begun") != NULL);
    CHECK(ad_store_round_begin(st, 0, &err) == AD_ERR); /* twice */
    /* foreign keys are on: samples of a round that was never begun are refused */
    ad_store_sample r = sample_row(5, 0, 0, 0);
    CHECK(ad_store_samples_insert(st, "select", &r, 1, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "insert samples: row 0 (prompt 0, lineage 0, sample 0): FOREIGN KEY "
                              "constraint failed") != NULL,
              "%s", err.msg);
    /* a failing row inside a batch stores none of the batch */
    ad_store_sample rows[10];
    for (size_t i = 0; i < 10; i++)
        rows[i] = sample_row(0, i, 0, 0);
    rows[7] = rows[3]; /* duplicate (round, stage, prompt, lineage, sample) */
    CHECK(ad_store_samples_insert(st, "select", rows, 10, &err) == AD_ERR);
    CHECK(strstr(err.msg, "row 7 (prompt 3, lineage 0, sample 0): UNIQUE") != NULL);
    CHECK(count_samples(st, 0, NULL) == 0);
    CHECK(ad_store_commit(st, &err) == AD_ERR); /* nothing open */
    CHECK(ad_store_begin(st, &err) == AD_OK);
    CHECK(ad_store_begin(st, &err) == AD_ERR && strstr(err.msg, "already open"));
    ad_store_rollback(st);
    CHECK(ad_store_run_select(st, "nobody", NULL, NULL, &err) == AD_ERR);
    CHECK(strstr(err.msg, "no run named 'nobody'") != NULL);
    CHECK(ad_store_run_create(st, "test", 1, "", &err) == AD_ERR); /* name taken */
    ad_store_close(st);
    /* a fresh handle has no run selected */
    CHECK(ad_store_open(db_path("c.db"), 0, &st, &err) == AD_OK);
    CHECK(ad_store_round_begin(st, 3, &err) == AD_ERR);
    CHECK(strstr(err.msg, "begin round: no run selected") != NULL);
    ad_store_close(st);
}

/* Figures written with the marker in a transaction that never commits leave
 * nothing behind; rolled back in-process or killed mid-stage. */
static void test_stage_atomicity(void) {
    ad_error err;
    ad_store *st = open_with_round("d.db", 1);
    if (!st) return;
    ad_store_sample rows[50];
    for (size_t i = 0; i < 50; i++)
        rows[i] = sample_row(1, i, 0, 0);
    CHECK(ad_store_begin(st, &err) == AD_OK);
    CHECK(ad_store_samples_insert(st, "select", rows, 50, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 1, "select", -1, 1.0, &err) == AD_OK);
    ad_store_rollback(st);
    int done = 1;
    CHECK(ad_store_stage_is_done(st, 1, "select", -1, &done, &err) == AD_OK && !done);
    CHECK(count_samples(st, 1, NULL) == 0);
    ad_store_close(st);

    /* a child process writes a stage and is killed before committing; another
     * child commits and then dies without closing */
    for (int commit = 0; commit < 2; commit++) {
        pid_t pid = fork();
        if (pid == 0) {
            ad_store *cs = NULL;
            ad_error e;
            if (ad_store_open(db_path("d.db"), 0, &cs, &e) ||
                ad_store_run_select(cs, "test", NULL, NULL, &e) || ad_store_begin(cs, &e) ||
                ad_store_samples_insert(cs, "select", rows, 50, &e) ||
                ad_store_stage_metric(cs, 1, "select", -1, "kept", 50, &e) ||
                ad_store_stage_done(cs, 1, "select", -1, 2.0, &e))
                _exit(3);
            if (commit && ad_store_commit(cs, &e)) _exit(4);
            kill(getpid(), SIGKILL);
            _exit(5);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
        CHECK(ad_store_open(db_path("d.db"), 0, &st, &err) == AD_OK);
        if (!st) return;
        CHECK(ad_store_run_select(st, "test", NULL, NULL, &err) == AD_OK);
        CHECK(ad_store_stage_is_done(st, 1, "select", -1, &done, &err) == AD_OK);
        CHECK(done == commit);
        CHECK(count_samples(st, 1, "select") == (commit ? 50u : 0u));
        double v = 0;
        int found = 0;
        CHECK(ad_store_stage_metric_get(st, 1, "select", -1, "kept", &v, &found, &err) == AD_OK);
        CHECK(found == commit && (!commit || v == 50));
        ad_store_close(st);
    }
}

static void test_delete_stage_and_round(void) {
    ad_error err;
    ad_store *st = open_with_round("e.db", 2);
    if (!st) return;
    ad_store_sample rows[8];
    for (size_t i = 0; i < 8; i++)
        rows[i] = sample_row(2, i / 2, i % 2, 0);
    CHECK(ad_store_samples_insert(st, "select", rows, 8, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 2, "select", 0, 1, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 2, "select", 1, 1, &err) == AD_OK);
    CHECK(ad_store_stage_metric(st, 2, "select", 1, "kept", 3, &err) == AD_OK);
    ad_store_eval ev = {2, 0, ad_level_int(4), "accuracy", 0.5, 100};
    CHECK(ad_store_evals_insert(st, "evaluate", &ev, 1, &err) == AD_OK);
    CHECK(ad_store_stage_done(st, 2, "evaluate", -1, 1, &err) == AD_OK);
    CHECK(ad_store_checkpoint_insert(st, 2, 0, "optimize", "c2", 1, &err) == AD_OK);
    ad_level lv = ad_level_int(4);
    CHECK(ad_store_levels_insert(st, 2, "train", &lv, NULL, 1, &err) == AD_OK);
    CHECK(ad_store_levels_insert(st, 2, "eval", &lv, NULL, 1, &err) == AD_OK);
    /* redo the stage that chose the training levels: delete them, write them again */
    ad_level *got;
    size_t n;
    CHECK(ad_store_levels_insert(st, 2, "train", &lv, NULL, 1, &err) == AD_ERR); /* twice */
    CHECK(ad_store_levels_delete(st, 2, "train", &err) == AD_OK);
    CHECK(ad_store_levels_get(st, 2, "train", &got, &n, &err) == AD_OK && n == 0);
    free(got);
    CHECK(ad_store_levels_get(st, 2, "eval", &got, &n, &err) == AD_OK && n == 1);
    free(got);
    CHECK(ad_store_levels_insert(st, 2, "train", &lv, NULL, 1, &err) == AD_OK);
    /* redo lineage 1's select: only its rows go */
    CHECK(ad_store_delete_stage(st, 2, "select", 1, &err) == AD_OK);
    CHECK(count_samples(st, 2, "select") == 4);
    int done = 0, found = 1;
    double v;
    CHECK(ad_store_stage_is_done(st, 2, "select", 1, &done, &err) == AD_OK && !done);
    CHECK(ad_store_stage_is_done(st, 2, "select", 0, &done, &err) == AD_OK && done);
    CHECK(ad_store_stage_metric_get(st, 2, "select", 1, "kept", &v, &found, &err) == AD_OK);
    CHECK(!found);
    /* every lineage */
    CHECK(ad_store_delete_stage(st, 2, "select", -1, &err) == AD_OK);
    CHECK(count_samples(st, 2, NULL) == 0);
    CHECK(ad_store_stage_is_done(st, 2, "select", 0, &done, &err) == AD_OK && !done);
    CHECK(ad_store_stage_is_done(st, 2, "evaluate", -1, &done, &err) == AD_OK && done);
    ad_store_eval *cells;
    CHECK(ad_store_eval_series(st, "accuracy", 0, &cells, &n, &err) == AD_OK && n == 1);
    free(cells);
    /* delete the round: everything hanging off it goes */
    CHECK(ad_store_samples_insert(st, "select", rows, 8, &err) == AD_OK);
    CHECK(ad_store_delete_round(st, 2, &err) == AD_OK);
    CHECK(count_samples(st, 2, NULL) == 0);
    CHECK(ad_store_eval_series(st, "accuracy", 0, &cells, &n, &err) == AD_OK && n == 0);
    free(cells);
    char path[64];
    CHECK(ad_store_checkpoint_get(st, 2, 0, path, sizeof path, NULL, &found, &err) == AD_OK);
    CHECK(!found);
    CHECK(ad_store_levels_get(st, 2, "train", &got, &n, &err) == AD_OK && n == 0);
    free(got);
    ad_store_round_row *r;
    CHECK(ad_store_rounds(st, &r, &n, &err) == AD_OK && n == 0);
    free(r);
    /* and the round can be begun again */
    CHECK(ad_store_round_begin(st, 2, &err) == AD_OK);
    ad_store_close(st);
}

/* WAL: a reader sees the last committed state while a writer holds a
 * transaction open. */
static void test_wal_concurrent_reader(void) {
    ad_error err;
    ad_store *w = open_with_round("f.db", 0), *r = NULL;
    if (!w) return;
    CHECK(ad_store_open(db_path("f.db"), 0, &r, &err) == AD_OK);
    if (!r) {
        ad_store_close(w);
        return;
    }
    CHECK(ad_store_run_select(r, "test", NULL, NULL, &err) == AD_OK);
    CHECK(ad_store_begin(w, &err) == AD_OK);
    CHECK(ad_store_round_begin(w, 1, &err) == AD_OK);
    ad_store_round_row *rows;
    size_t n = 0;
    CHECK(ad_store_rounds(r, &rows, &n, &err) == AD_OK && n == 1);
    free(rows);
    CHECK(ad_store_commit(w, &err) == AD_OK);
    CHECK(ad_store_rounds(r, &rows, &n, &err) == AD_OK && n == 2);
    free(rows);
    sqlite3 *db;
    CHECK(sqlite3_open(db_path("f.db"), &db) == SQLITE_OK);
    sqlite3_stmt *s;
    CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(s) == SQLITE_ROW &&
          strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    ad_store_close(r);
    ad_store_close(w);
}

/* Exports a round (its candidates of every stage, or its pairs) into memory
 * and parses it: a JSON array of the lines' objects. *written as exported. */
static cJSON *export_parsed(ad_store *st, uint32_t round, int pairs, size_t *written) {
    ad_error err;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = pairs ? ad_store_export_pairs_jsonl(st, round, f, written, &err)
                   : ad_store_export_jsonl(st, round, NULL, f, written, &err);
    fclose(f);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    cJSON *all = cJSON_CreateArray();
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        CHECK(next != NULL); /* every line ends with a newline */
        if (!next) break;
        *next++ = '\0';
        cJSON *o = cJSON_Parse(line);
        CHECK(cJSON_IsObject(o));
        if (o) cJSON_AddItemToArray(all, o);
    }
    free(buf);
    return all;
}

static void test_export_jsonl(void) {
    ad_error err;
    ad_store *st = open_with_round("g.db", 3);
    if (!st) return;
    ad_store_sample rows[3] = {sample_row(3, 0, 0, 0), sample_row(3, 1, 1, 1),
                               sample_row(3, 2, 0, 1)};
    rows[0].completion = "a \"quoted\"\nline";
    CHECK(ad_store_samples_insert(st, "select", rows, 3, &err) == AD_OK);
    size_t written = 0;
    cJSON *all = export_parsed(st, 3, 0, &written);
    CHECK(written == 3 && cJSON_GetArraySize(all) == 3);
    for (int i = 0; i < cJSON_GetArraySize(all); i++) {
        cJSON *o = cJSON_GetArrayItem(all, i);
        cJSON *level = cJSON_GetObjectItem(o, "level"),
              *correct = cJSON_GetObjectItem(o, "correct");
        cJSON *kept = cJSON_GetObjectItem(o, "kept"), *lin = cJSON_GetObjectItem(o, "lineage");
        const char *completion = cJSON_GetStringValue(cJSON_GetObjectItem(o, "completion"));
        CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(o, "prompt")) != NULL);
        double lp = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "logprob"));
        if (i == 0) {
            CHECK(cJSON_IsNumber(level) && level->valueint == 17);
            CHECK(cJSON_IsNull(correct) && cJSON_IsFalse(kept) && lin->valueint == 0);
            CHECK(completion && strcmp(completion, "a \"quoted\"\nline") == 0);
            CHECK(lp == -0.25);
        } else if (i == 1) {
            CHECK(cJSON_IsArray(level) && cJSON_GetArraySize(level) == 2);
            CHECK(cJSON_GetArrayItem(level, 0)->valueint == 5);
            CHECK(cJSON_IsFalse(correct) && cJSON_IsTrue(kept) && lin->valueint == 1);
        } else {
            CHECK(cJSON_IsTrue(correct));
        }
        CHECK(cJSON_GetArraySize(o) == 7);
    }
    cJSON_Delete(all);
    ad_store_close(st);
}

/* The round driver's own reads: one round's status and cursor, the last
 * accepted round before another. */
static void test_round_state(void) {
    ad_error err;
    ad_store *st = open_with_round("r.db", 0);
    if (!st) return;
    ad_store_round r;
    int found = 1;
    CHECK(ad_store_round_get(st, 1, &r, &found, &err) == AD_OK && !found);
    CHECK(ad_store_round_get(st, 0, &r, &found, &err) == AD_OK && found);
    CHECK(r.round == 0 && r.status == AD_ROUND_RUNNING && r.cursor == -1);
    uint32_t last = 7;
    CHECK(ad_store_last_accepted(st, 5, &last, &found, &err) == AD_OK && !found && last == 0);
    CHECK(ad_store_round_finish(st, 0, 1, NULL, &err) == AD_OK);
    for (uint32_t i = 1; i <= 3; i++)
        CHECK(ad_store_round_begin(st, i, &err) == AD_OK);
    CHECK(ad_store_round_set_cursor(st, 1, 4, &err) == AD_OK);
    CHECK(ad_store_round_set_cursor(st, 1, 5, &err) == AD_OK); /* a redo overwrites */
    CHECK(ad_store_round_set_cursor(st, 2, 0, &err) == AD_OK);
    CHECK(ad_store_round_finish(st, 1, 1, NULL, &err) == AD_OK);
    CHECK(ad_store_round_finish(st, 2, 0, "worse", &err) == AD_OK);
    CHECK(ad_store_round_get(st, 1, &r, &found, &err) == AD_OK && found);
    CHECK(r.round == 1 && r.status == AD_ROUND_ACCEPTED && r.cursor == 5);
    CHECK(ad_store_round_get(st, 2, &r, &found, &err) == AD_OK && found);
    CHECK(r.status == AD_ROUND_ROLLED_BACK && r.cursor == 0);
    CHECK(ad_store_round_get(st, 3, &r, &found, &err) == AD_OK && found);
    CHECK(r.status == AD_ROUND_RUNNING && r.cursor == -1);
    /* round 2 was rolled back and round 3 is running: 1 is the last accepted */
    CHECK(ad_store_last_accepted(st, 4, &last, &found, &err) == AD_OK && found && last == 1);
    CHECK(ad_store_last_accepted(st, 3, &last, &found, &err) == AD_OK && found && last == 1);
    CHECK(ad_store_last_accepted(st, 1, &last, &found, &err) == AD_OK && found && last == 0);
    CHECK(ad_store_last_accepted(st, 0, &last, &found, &err) == AD_OK && !found);
    CHECK(ad_store_round_set_cursor(st, 9, 1, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "record cursor: round 9 was never begun") != NULL, "%s", err.msg);
    /* the cursor goes with its round */
    CHECK(ad_store_delete_round(st, 1, &err) == AD_OK);
    CHECK(ad_store_round_get(st, 1, &r, &found, &err) == AD_OK && !found && r.cursor == -1);
    CHECK(ad_store_last_accepted(st, 4, &last, &found, &err) == AD_OK && found && last == 0);
    ad_store_close(st);
    /* a handle with no run selected */
    CHECK(ad_store_open(db_path("r.db"), 0, &st, &err) == AD_OK);
    CHECK(ad_store_round_get(st, 0, &r, &found, &err) == AD_ERR);
    CHECK(strstr(err.msg, "read round: no run selected") != NULL);
    ad_store_close(st);
}

/* Pair i of a round: pairs of a pair level from lineage 1 over lineage 0,
 * with unknown corrects on every third. */
static ad_store_pair pair_row(uint32_t round, size_t i) {
    ad_store_pair p;
    memset(&p, 0, sizeof p);
    p.round = round;
    p.pair_index = i;
    p.rule = i % 2 ? "vote" : "verifier";
    p.prompt_index = 10 + i;
    p.level = i % 2 ? ad_level_pair(3, 4) : ad_level_int(6);
    p.prompt = "12*34=";
    p.chosen = i == 0 ? "a \"quoted\"\nline" : "408";
    p.rejected = "407";
    p.chosen_lineage = i % 2;
    p.chosen_sample = 2 * i;
    p.rejected_lineage = 0;
    p.rejected_sample = 2 * i + 1;
    p.chosen_correct = i % 3 == 2 ? -1 : 1;
    p.rejected_correct = i % 3 == 2 ? -1 : 0;
    return p;
}

typedef struct pair_collect {
    size_t n, bad;
} pair_collect;

static int check_pair(void *ctx, const ad_store_pair *p, ad_error *err) {
    pair_collect *c = ctx;
    ad_store_pair want = pair_row(p->round, c->n);
    int same = p->pair_index == want.pair_index && p->prompt_index == want.prompt_index &&
               p->level.a == want.level.a && p->level.b == want.level.b &&
               strcmp(p->rule, want.rule) == 0 && strcmp(p->prompt, want.prompt) == 0 &&
               strcmp(p->chosen, want.chosen) == 0 && strcmp(p->rejected, want.rejected) == 0 &&
               p->chosen_lineage == want.chosen_lineage && p->chosen_sample == want.chosen_sample &&
               p->rejected_lineage == want.rejected_lineage &&
               p->rejected_sample == want.rejected_sample &&
               p->chosen_correct == want.chosen_correct &&
               p->rejected_correct == want.rejected_correct;
    if (!same) fprintf(stderr, "  pair %zu differs\n", c->n);
    c->bad += !same;
    c->n++;
    return AD_OK;
}

static size_t count_pairs(ad_store *st, uint32_t round) {
    ad_error err;
    pair_collect c = {0, 0};
    int rc = ad_store_pairs_foreach(st, round, check_pair, &c, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK(c.bad == 0);
    return c.n;
}

static int stop_at_two(void *ctx, const ad_store_pair *p, ad_error *err) {
    size_t *seen = ctx;
    if (++*seen == 2) return ad_error_set(err, "stop");
    return AD_OK;
}

static void test_pairs(void) {
    ad_error err;
    ad_store *st = open_with_round("q.db", 1);
    if (!st) return;
    CHECK(ad_store_round_begin(st, 2, &err) == AD_OK);
    enum { N = 6 };
    ad_store_pair rows[N];
    for (size_t i = 0; i < N; i++)
        rows[i] = pair_row(1, N - 1 - i); /* stored out of order, read in pair order */
    CHECK(ad_store_pairs_insert(st, rows, N, &err) == AD_OK);
    ad_store_pair other = pair_row(2, 0);
    CHECK(ad_store_pairs_insert(st, &other, 1, &err) == AD_OK);
    ad_store_close(st);
    CHECK(ad_store_open(db_path("q.db"), 0, &st, &err) == AD_OK);
    if (!st) return;
    CHECK(ad_store_run_select(st, NULL, NULL, NULL, &err) == AD_OK);
    CHECK(count_pairs(st, 1) == N && count_pairs(st, 2) == 1 && count_pairs(st, 3) == 0);
    size_t seen = 0;
    CHECK(ad_store_pairs_foreach(st, 1, stop_at_two, &seen, &err) == AD_ERR && seen == 2);
    CHECK(strcmp(err.msg, "stop") == 0);
    /* a NULL rule reads back as NULL */
    ad_store_pair p = pair_row(2, 1);
    p.rule = NULL;
    CHECK(ad_store_pairs_insert(st, &p, 1, &err) == AD_OK);
    /* a pair index twice, or a round never begun: none of the batch is stored */
    ad_store_pair bad[2] = {pair_row(2, 5), pair_row(2, 0)};
    CHECK(ad_store_pairs_insert(st, bad, 2, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "insert pairs: row 1 (round 2, pair 0): UNIQUE") != NULL, "%s",
              err.msg);
    ad_store_pair orphan = pair_row(9, 0);
    CHECK(ad_store_pairs_insert(st, &orphan, 1, &err) == AD_ERR);
    CHECK(strstr(err.msg, "FOREIGN KEY constraint failed") != NULL);
    sqlite3 *db;
    CHECK(sqlite3_open(db_path("q.db"), &db) == SQLITE_OK);
    sqlite3_stmt *s;
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT count(*), sum(rule IS NULL), sum(stage = 'select'),"
                             " sum(chosen_correct IS NULL) FROM pairs WHERE round = 2",
                             -1, &s, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) == 2 && sqlite3_column_int(s, 1) == 1);
    CHECK(sqlite3_column_int(s, 2) == 2 && sqlite3_column_int(s, 3) == 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    ad_store_close(st);
}

static void check_logps(ad_store *st, uint32_t round, size_t lineage, size_t want_n, double base) {
    ad_error err;
    double *c = (double *)1, *r = (double *)1;
    size_t n = 99;
    int rc = ad_store_pair_logps_get(st, round, lineage, &c, &r, &n, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
    CHECK_MSG(n == want_n, "round %u lineage %zu: %zu log-probs", round, lineage, n);
    if (want_n == 0) CHECK(c == NULL && r == NULL);
    for (size_t i = 0; rc == AD_OK && i < n && i < want_n; i++) {
        if (i == 1) {
            CHECK(isnan(c[i]) && r[i] == -INFINITY);
            continue;
        }
        CHECK(c[i] == base - (double)i && r[i] == base - 0.5 - (double)i);
    }
    free(c);
    free(r);
}

static void insert_logps(ad_store *st, uint32_t round, size_t lineage, size_t n, double base) {
    ad_error err;
    double c[8], r[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        c[i] = base - (double)i;
        r[i] = base - 0.5 - (double)i;
    }
    c[1] = NAN;
    r[1] = -INFINITY;
    int rc = ad_store_pair_logps_insert(st, round, lineage, c, r, n, &err);
    CHECK_MSG(rc == AD_OK, "%s", err.msg);
}

static void test_pair_logps(void) {
    ad_error err;
    ad_store *st = open_with_round("l.db", 1);
    if (!st) return;
    insert_logps(st, 1, 0, 5, -3.0);
    insert_logps(st, 1, 1, 5, -7.0);
    check_logps(st, 1, 0, 5, -3.0);
    check_logps(st, 1, 1, 5, -7.0);
    check_logps(st, 1, 2, 0, 0);
    check_logps(st, 0, 0, 0, 0);
    double c[2] = {-1, -2}, r[2] = {-3, -4};
    CHECK(ad_store_pair_logps_insert(st, 1, 0, c, r, 2, &err) == AD_ERR); /* twice */
    CHECK_MSG(strstr(err.msg, "insert pair log-probs: round 1, lineage 0, pair 0: UNIQUE") != NULL,
              "%s", err.msg);
    CHECK(ad_store_pair_logps_insert(st, 4, 0, c, r, 2, &err) == AD_ERR); /* round never begun */
    check_logps(st, 1, 0, 5, -3.0);
    /* a hole in the pair indices is an error, not a silent shift */
    sqlite3 *db;
    CHECK(sqlite3_open(db_path("l.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "DELETE FROM pair_logps WHERE lineage = 1 AND pair_index = 2", NULL,
                       NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    double *gc = (double *)1, *gr = (double *)1;
    size_t n = 9;
    CHECK(ad_store_pair_logps_get(st, 1, 1, &gc, &gr, &n, &err) == AD_ERR);
    CHECK(gc == NULL && gr == NULL && n == 0);
    CHECK_MSG(strstr(err.msg, "round 1, lineage 1: pair 2 is missing") != NULL, "%s", err.msg);
    ad_store_close(st);
}

/* Appends "stage/lineage/step/key=value;" for each per-step figure. */
static int collect_steps(void *ctx, const ad_store_step_metric *m, ad_error *err) {
    char *buf = ctx;
    size_t len = strlen(buf);
    snprintf(buf + len, 512 - len, "%s/%lld/%zu/%s=%g;", m->stage, (long long)m->lineage, m->step,
             m->key, m->value);
    return AD_OK;
}

/* Per-step figures: insert, order, refusal of a repeat, truncation for a
 * resumed stage, deletion with the stage. */
static void test_step_metrics(void) {
    ad_error err;
    ad_store *st = open_with_round("s.db", 1);
    if (!st) return;
    const char *keys[2] = {"loss", "lr"};
    double v0[2] = {2.5, 0.001}, v1[2] = {2.0, 0.002}, v2[2] = {1.5, NAN};
    CHECK(ad_store_step_metrics_insert(st, 1, "optimize", 0, 10, keys, v1, 2, &err) == AD_OK);
    CHECK(ad_store_step_metrics_insert(st, 1, "optimize", 0, 0, keys, v0, 2, &err) == AD_OK);
    CHECK(ad_store_step_metrics_insert(st, 1, "optimize", 0, 20, keys, v2, 2, &err) == AD_OK);
    CHECK(ad_store_step_metrics_insert(st, 1, "judge", -1, 0, keys, v0, 1, &err) == AD_OK);
    CHECK(ad_store_step_metrics_insert(st, 1, "optimize", 0, 10, keys, v1, 1, &err) == AD_ERR);
    CHECK(ad_store_step_metrics_insert(st, 7, "optimize", 0, 0, keys, v0, 1, &err) == AD_ERR);
    char got[512] = "";
    CHECK(ad_store_step_metrics_foreach(st, NULL, collect_steps, got, &err) == AD_OK);
    CHECK_MSG(strcmp(got, "judge/-1/0/loss=2.5;optimize/0/0/loss=2.5;optimize/0/0/lr=0.001;"
                          "optimize/0/10/loss=2;optimize/0/10/lr=0.002;optimize/0/20/loss=1.5;"
                          "optimize/0/20/lr=nan;") == 0,
              "%s", got);
    /* a stage resumed at step 10 redoes steps >= 10 */
    CHECK(ad_store_step_metrics_truncate(st, 1, "optimize", 0, 10, &err) == AD_OK);
    got[0] = '\0';
    CHECK(ad_store_step_metrics_foreach(st, "optimize", collect_steps, got, &err) == AD_OK);
    CHECK_MSG(strcmp(got, "optimize/0/0/loss=2.5;optimize/0/0/lr=0.001;") == 0, "%s", got);
    CHECK(ad_store_step_metrics_insert(st, 1, "optimize", 0, 10, keys, v1, 2, &err) == AD_OK);
    CHECK(ad_store_delete_stage(st, 1, "optimize", 0, &err) == AD_OK);
    got[0] = '\0';
    CHECK(ad_store_step_metrics_foreach(st, NULL, collect_steps, got, &err) == AD_OK);
    CHECK_MSG(strcmp(got, "judge/-1/0/loss=2.5;") == 0, "%s", got);
    ad_store_close(st);
}

/* Collects up to 3 pair indices into ctx[0..2], the count in ctx[3]. */
static int pair_indices(void *ctx, const ad_store_pair *p, ad_error *err) {
    size_t *v = ctx;
    if (v[3] < 3) v[v[3]] = p->pair_index;
    v[3]++;
    return AD_OK;
}

/* Redoing select removes its pairs (a pair belongs to both its lineages);
 * redoing one lineage's optimize removes that lineage's reference log-probs;
 * deleting the round removes both. */
static void test_delete_pairs(void) {
    ad_error err;
    ad_store *st = open_with_round("dp.db", 1);
    if (!st) return;
    ad_store_pair rows[4];
    for (size_t i = 0; i < 4; i++)
        rows[i] = pair_row(1, i); /* odd pairs chose lineage 1; all rejected lineage 0 */
    CHECK(ad_store_pairs_insert(st, rows, 4, &err) == AD_OK);
    insert_logps(st, 1, 0, 4, -1.0);
    insert_logps(st, 1, 1, 4, -2.0);
    CHECK(ad_store_delete_stage(st, 1, "optimize", 1, &err) == AD_OK);
    check_logps(st, 1, 1, 0, 0);
    check_logps(st, 1, 0, 4, -1.0);
    CHECK(count_pairs(st, 1) == 4);
    CHECK(ad_store_delete_stage(st, 1, "select", 1, &err) == AD_OK);
    size_t left[4] = {0}, n_left = 0;
    CHECK(ad_store_pairs_foreach(st, 1, pair_indices, left, &err) == AD_OK);
    n_left = left[3];
    CHECK(n_left == 2 && left[0] == 0 && left[1] == 2); /* those that chose lineage 1 went */
    CHECK(ad_store_delete_stage(st, 1, "select", -1, &err) == AD_OK);
    CHECK(count_pairs(st, 1) == 0);
    check_logps(st, 1, 0, 4, -1.0); /* optimize's rows are not select's */
    CHECK(ad_store_delete_stage(st, 1, "optimize", -1, &err) == AD_OK);
    check_logps(st, 1, 0, 0, 0);
    /* the round: everything */
    CHECK(ad_store_pairs_insert(st, rows, 4, &err) == AD_OK);
    insert_logps(st, 1, 0, 4, -1.0);
    CHECK(ad_store_delete_round(st, 1, &err) == AD_OK);
    CHECK(count_pairs(st, 1) == 0);
    check_logps(st, 1, 0, 0, 0);
    ad_store_close(st);
}

static void test_export_pairs_jsonl(void) {
    ad_error err;
    ad_store *st = open_with_round("ep.db", 2);
    if (!st) return;
    ad_store_pair rows[3] = {pair_row(2, 0), pair_row(2, 1), pair_row(2, 2)};
    rows[1].rule = NULL;
    CHECK(ad_store_pairs_insert(st, rows, 3, &err) == AD_OK);
    static const char *const keys[] = {
        "prompt",         "chosen",           "rejected",       "level",           "rule",
        "chosen_correct", "rejected_correct", "chosen_lineage", "rejected_lineage"};
    size_t written = 0;
    cJSON *all = export_parsed(st, 2, 1, &written);
    CHECK(written == 3 && cJSON_GetArraySize(all) == 3);
    for (int i = 0; i < cJSON_GetArraySize(all); i++) {
        cJSON *o = cJSON_GetArrayItem(all, i);
        CHECK(cJSON_GetArraySize(o) == 9);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            CHECK_MSG(cJSON_GetObjectItem(o, keys[k]) != NULL, "line %d has no %s", i, keys[k]);
        const char *chosen = cJSON_GetStringValue(cJSON_GetObjectItem(o, "chosen"));
        const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(o, "rule"));
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(o, "prompt"));
        const char *rejected = cJSON_GetStringValue(cJSON_GetObjectItem(o, "rejected"));
        cJSON *level = cJSON_GetObjectItem(o, "level");
        cJSON *cc = cJSON_GetObjectItem(o, "chosen_correct"),
              *rc = cJSON_GetObjectItem(o, "rejected_correct");
        double cl = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "chosen_lineage"));
        double rl = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "rejected_lineage"));
        CHECK(prompt && strcmp(prompt, "12*34=") == 0);
        CHECK(rejected && strcmp(rejected, "407") == 0);
        if (i == 0) {
            CHECK(chosen && strcmp(chosen, "a \"quoted\"\nline") == 0);
            CHECK(rule && strcmp(rule, "verifier") == 0);
            CHECK(cJSON_IsNumber(level) && level->valueint == 6);
            CHECK(cJSON_IsTrue(cc) && cJSON_IsFalse(rc) && cl == 0 && rl == 0);
        } else if (i == 1) {
            CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "rule")));
            CHECK(cJSON_IsArray(level) && cJSON_GetArraySize(level) == 2);
            CHECK(cJSON_GetArrayItem(level, 0)->valueint == 3 &&
                  cJSON_GetArrayItem(level, 1)->valueint == 4);
            CHECK(cl == 1 && rl == 0);
        } else {
            CHECK(cJSON_IsNull(cc) && cJSON_IsNull(rc));
        }
    }
    cJSON_Delete(all);
    /* a round without pairs writes nothing */
    all = export_parsed(st, 1, 1, &written);
    CHECK(written == 0 && cJSON_GetArraySize(all) == 0);
    cJSON_Delete(all);
    ad_store_close(st);
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

/* Opening anything but a run store fails with a message naming the path. */
static void expect_refused(const char *path, int create, const char *fragment) {
    ad_error err;
    ad_store *st = (ad_store *)1;
    CHECK(ad_store_open(path, create, &st, &err) == AD_ERR);
    CHECK(st == NULL);
    CHECK_MSG(strstr(err.msg, path) == err.msg && strstr(err.msg, fragment) != NULL, "%s", err.msg);
}

static void test_refuses_foreign_files(void) {
    char text[8192];
    memset(text, 'x', sizeof text);
    memcpy(text, "this is a config file, not a database\n", 38);
    write_file(db_path("text.db"), text, sizeof text);
    expect_refused(db_path("text.db"), 0, "file is not a database");
    expect_refused(db_path("text.db"), 1, "file is not a database");
    /* a run store whose header was overwritten */
    ad_store *st = open_with_round("h.db", 0);
    ad_store_close(st);
    FILE *f = fopen(db_path("h.db"), "r+b");
    CHECK(f != NULL);
    if (f) {
        fwrite("garbage garbage!", 1, 16, f);
        fclose(f);
    }
    expect_refused(db_path("h.db"), 0, "file is not a database");
    /* someone else's SQLite database */
    sqlite3 *db;
    CHECK(sqlite3_open(db_path("other.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_close(db);
    expect_refused(db_path("other.db"), 1, "not an autodidact run store");
    /* a run store of another schema version */
    st = open_with_round("v.db", 0);
    ad_store_close(st);
    CHECK(sqlite3_open(db_path("v.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    expect_refused(db_path("v.db"), 0, "schema version 99, but this build reads version 3");
    /* missing, empty, a directory */
    expect_refused(db_path("missing.db"), 0, "no such file");
    write_file(db_path("empty.db"), "", 0);
    expect_refused(db_path("empty.db"), 0, "an empty database");
    expect_refused(tmpdir, 1, "open");
    /* an empty file may become a store when asked to create one */
    ad_error err;
    CHECK(ad_store_open(db_path("empty.db"), 1, &st, &err) == AD_OK);
    ad_store_close(st);
    CHECK(ad_store_open(db_path("empty.db"), 0, &st, &err) == AD_OK);
    CHECK(strcmp(ad_store_path(st), db_path("empty.db")) == 0);
    ad_store_close(st);
}

/* Batched inserts are fast enough for 100k-candidate rounds. */
static void test_insert_rate(void) {
    ad_error err;
    ad_store *st = open_with_round("p.db", 0);
    if (!st) return;
    size_t n = test_quick() ? 5000 : 50000;
    ad_store_sample *rows = malloc(n * sizeof *rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = sample_row(0, i, 0, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(ad_store_samples_insert(st, "select", rows, n, &err) == AD_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("# inserted %zu samples in %.3f s (%.0f rows/s)\n", n, s, (double)n / s);
    CHECK(count_samples(st, 0, "select") == n);
    free(rows);
    ad_store_close(st);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ad_test_store_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_round_trip_and_reopen);
    RUN(test_rounds_table);
    RUN(test_errors_name_path_and_step);
    RUN(test_stage_atomicity);
    RUN(test_delete_stage_and_round);
    RUN(test_wal_concurrent_reader);
    RUN(test_export_jsonl);
    RUN(test_round_state);
    RUN(test_pairs);
    RUN(test_pair_logps);
    RUN(test_step_metrics);
    RUN(test_delete_pairs);
    RUN(test_export_pairs_jsonl);
    RUN(test_refuses_foreign_files);
    RUN(test_insert_rate);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
