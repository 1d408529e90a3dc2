/* store_schema.c: what a run.db file must be: the header checks at open, the
 * current schema and its creation, the connection's pragmas, and the steps
 * that migrate an older store to the current version in place.
 *
 * Not here: reading or writing a run's rows (store_rounds.c, store_rows.c,
 * store_pairs.c). */
#include "store/store_internal.h"

#include <string.h>

/* The tables that version 2 added, shared by a fresh schema and the migration
 * from version 1, so that both make the same tables. */
#define PAIRS_TABLE_SQL                                                                            \
    "CREATE TABLE pairs("                                                                          \
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, stage TEXT NOT NULL,"                       \
    " pair_index INTEGER NOT NULL CHECK(pair_index >= 0), rule TEXT,"                              \
    " prompt_index INTEGER NOT NULL, level_a INTEGER NOT NULL, level_b INTEGER NOT NULL,"          \
    " prompt TEXT NOT NULL, chosen TEXT NOT NULL, rejected TEXT NOT NULL,"                         \
    " chosen_lineage INTEGER NOT NULL CHECK(chosen_lineage >= 0),"                                 \
    " chosen_sample INTEGER NOT NULL,"                                                             \
    " rejected_lineage INTEGER NOT NULL CHECK(rejected_lineage >= 0),"                             \
    " rejected_sample INTEGER NOT NULL, chosen_correct INTEGER, rejected_correct INTEGER,"         \
    " PRIMARY KEY(run_id, round, pair_index),"                                                     \
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"

#define PAIR_LOGPS_TABLE_SQL                                                                       \
    "CREATE TABLE pair_logps("                                                                     \
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, stage TEXT NOT NULL,"                       \
    " pair_index INTEGER NOT NULL CHECK(pair_index >= 0),"                                         \
    " lineage INTEGER NOT NULL CHECK(lineage >= 0), ref_chosen REAL, ref_rejected REAL,"           \
    " PRIMARY KEY(run_id, round, pair_index, lineage),"                                            \
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"

/* The table version 3 added: a stage's figures per step (a sampled series:
 * training loss, learning rate, rewards of an RL step...). */
#define STEP_METRICS_TABLE_SQL                                                                     \
    "CREATE TABLE step_metrics("                                                                   \
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, stage TEXT NOT NULL,"                       \
    " lineage INTEGER NOT NULL CHECK(lineage >= -1), step INTEGER NOT NULL CHECK(step >= 0),"      \
    " key TEXT NOT NULL, value REAL,"                                                              \
    " PRIMARY KEY(run_id, round, stage, lineage, step, key),"                                      \
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"

/* Schema version 3. Every table hangs off runs (and most off rounds) with
 * ON DELETE CASCADE, so deleting a round removes everything recorded in it.
 * Columns a migration adds sit last in their table here too (rounds.cursor,
 * samples.score), so a fresh and a migrated store have the same tables. */
static const char *const schema_sql =
    "CREATE TABLE runs("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, seed INTEGER NOT NULL,"
    " config TEXT NOT NULL, created_at REAL NOT NULL);"
    "CREATE TABLE lineages("
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " lineage INTEGER NOT NULL CHECK(lineage >= 0), seed INTEGER NOT NULL,"
    " PRIMARY KEY(run_id, lineage));"
    "CREATE TABLE rounds("
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " round INTEGER NOT NULL CHECK(round >= 0),"
    " status TEXT NOT NULL CHECK(status IN ('running','accepted','rolled_back')),"
    " reason TEXT, started_at REAL NOT NULL, finished_at REAL,"
    " cursor INTEGER CHECK(cursor >= 0),"
    " PRIMARY KEY(run_id, round));"
    "CREATE TABLE stages("
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, stage TEXT NOT NULL,"
    " lineage INTEGER NOT NULL CHECK(lineage >= -1), seconds REAL, finished_at REAL NOT NULL,"
    " PRIMARY KEY(run_id, round, stage, lineage),"
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"
    "CREATE TABLE levels("
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, role TEXT NOT NULL,"
    " level_a INTEGER NOT NULL, level_b INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(run_id, round, role, level_a, level_b),"
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"
    "CREATE TABLE samples("
    " id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, round INTEGER NOT NULL,"
    " stage TEXT NOT NULL, lineage INTEGER NOT NULL CHECK(lineage >= 0),"
    " prompt_index INTEGER NOT NULL, sample_index INTEGER NOT NULL,"
    " level_a INTEGER NOT NULL, level_b INTEGER NOT NULL,"
    " prompt TEXT NOT NULL, completion TEXT NOT NULL, n_tokens INTEGER NOT NULL,"
    " logprob REAL, hit_eos INTEGER NOT NULL, filters_ran INTEGER NOT NULL,"
    " filters_passed INTEGER NOT NULL, kept INTEGER NOT NULL, correct INTEGER,"
    " score REAL,"
    " UNIQUE(run_id, round, stage, prompt_index, lineage, sample_index),"
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"
    "CREATE TABLE evaluations("
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, stage TEXT NOT NULL,"
    " lineage INTEGER NOT NULL CHECK(lineage >= -1), level_a INTEGER NOT NULL,"
    " level_b INTEGER NOT NULL, metric TEXT NOT NULL, value REAL, n INTEGER NOT NULL,"
    " PRIMARY KEY(run_id, round, lineage, level_a, level_b, metric),"
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"
    "CREATE TABLE checkpoints("
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, lineage INTEGER NOT NULL,"
    " stage TEXT NOT NULL, path TEXT NOT NULL, parent_round INTEGER, created_at REAL NOT NULL,"
    " PRIMARY KEY(run_id, round, lineage),"
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE CASCADE);"
    "CREATE TABLE stage_metrics("
    " run_id INTEGER NOT NULL, round INTEGER NOT NULL, stage TEXT NOT NULL,"
    " lineage INTEGER NOT NULL CHECK(lineage >= -1), key TEXT NOT NULL, value REAL,"
    " PRIMARY KEY(run_id, round, stage, lineage, key),"
    " FOREIGN KEY(run_id, round) REFERENCES rounds(run_id, round) ON DELETE "
    "CASCADE);" PAIRS_TABLE_SQL PAIR_LOGPS_TABLE_SQL STEP_METRICS_TABLE_SQL;

/* ---- migrations ------------------------------------------------------------ */

/* One statement of a migration step, with what it does for error messages. */
typedef struct migration_sql {
    const char *what, *sql;
} migration_sql;

/* A step from version v to v + 1: the tables version v must have (checked
 * first, so a damaged store is refused by name rather than half-read), then
 * its statements, in order. All steps of one open run in one transaction. */
typedef struct migration {
    const char *const *tables;  /* NULL-terminated */
    const migration_sql *steps; /* ends with {NULL, NULL} */
} migration;

static const char *const v1_tables[] = {"runs",          "lineages", "rounds",      "stages",
                                        "levels",        "samples",  "evaluations", "checkpoints",
                                        "stage_metrics", NULL};

/* Version 1 kept the curriculum cursor as the acquire stage's figure
 * 'cursor_after'; version 2 keeps it on the round, and leaves the figure. */
static const migration_sql v1_to_v2[] = {
    {"add rounds.cursor", "ALTER TABLE rounds ADD COLUMN cursor INTEGER CHECK(cursor >= 0)"},
    {"backfill rounds.cursor",
     "UPDATE rounds SET cursor = (SELECT CAST(m.value AS INTEGER) FROM stage_metrics m"
     " WHERE m.run_id = rounds.run_id AND m.round = rounds.round AND m.stage = 'acquire'"
     " AND m.lineage = -1 AND m.key = 'cursor_after')"},
    {"add samples.score", "ALTER TABLE samples ADD COLUMN score REAL"},
    {"create pairs", PAIRS_TABLE_SQL},
    {"create pair_logps", PAIR_LOGPS_TABLE_SQL},
    {NULL, NULL},
};

static const char *const v2_tables[] = {"runs",          "lineages", "rounds",      "stages",
                                        "levels",        "samples",  "evaluations", "checkpoints",
                                        "stage_metrics", "pairs",    "pair_logps",  NULL};

static const migration_sql v2_to_v3[] = {
    {"create step_metrics", STEP_METRICS_TABLE_SQL},
    {NULL, NULL},
};

/* migrations[v - 1] takes a store from version v to v + 1. A new version adds
 * its step here and raises AD_STORE_SCHEMA_VERSION. */
static const migration migrations[] = {
    {v1_tables, v1_to_v2},
    {v2_tables, v2_to_v3},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == AD_STORE_SCHEMA_VERSION - 1,
               "one migration step per schema version after the first");

/* ---- header and pragmas ---------------------------------------------------- */

static int pragma_int(ad_store *st, const char *sql, int64_t *out, const char *step,
                      ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, step, err, sql, "")) return AD_ERR;
    int rc = store_step(st, s, step, err);
    if (rc == 1) *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc == 0) return ad_error_set(err, "%s: %s: no result", st->path, step);
    return rc < 0 ? AD_ERR : AD_OK;
}

/* foreign keys, durability, WAL (persistent in the file once set). */
static int configure(ad_store *st, ad_error *err) {
    if (store_exec(st, "enable foreign keys", err, NULL, "PRAGMA foreign_keys = ON", "") ||
        store_exec(st, "set synchronous", err, NULL, "PRAGMA synchronous = FULL", ""))
        return AD_ERR;
    /* a reader's connection (ad_store_open_readonly) cannot change the mode, and
     * an immutable one reports 'delete' whatever the file says */
    if (sqlite3_db_readonly(st->db, "main") == 1) return AD_OK;
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "enable WAL", err, "PRAGMA journal_mode = WAL", "")) return AD_ERR;
    int rc = store_step(st, s, "enable WAL", err);
    const char *mode = rc == 1 ? (const char *)sqlite3_column_text(s, 0) : NULL;
    /* "memory": the in-memory copy that ad_store_open_readonly migrates */
    int wal = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
    char got[32];
    snprintf(got, sizeof got, "%s", mode ? mode : "?");
    sqlite3_finalize(s);
    if (rc < 0) return AD_ERR;
    if (!wal) return ad_error_set(err, "%s: enable WAL: journal mode stayed '%s'", st->path, got);
    return AD_OK;
}

/* Reads application id, schema version and object count. */
static int read_header(ad_store *st, int64_t *app, int64_t *ver, int64_t *objects, ad_error *err) {
    if (pragma_int(st, "PRAGMA application_id", app, "read header", err) ||
        pragma_int(st, "PRAGMA user_version", ver, "read schema version", err) ||
        pragma_int(st, "SELECT count(*) FROM sqlite_master", objects, "read schema", err))
        return AD_ERR;
    return AD_OK;
}

static int create_schema(ad_store *st, ad_error *err) {
    if (store_exec(st, "create schema", err, NULL, "BEGIN IMMEDIATE", "")) return AD_ERR;
    int64_t app, ver, objects;
    int rc = read_header(st, &app, &ver, &objects, err);
    if (rc == AD_OK && app == 0 && objects == 0) {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 AD_STORE_APPLICATION_ID, AD_STORE_SCHEMA_VERSION);
        if (sqlite3_exec(st->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(st->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
            rc = store_fail(st, "create schema", err);
    }
    /* another process may have created it meanwhile: then there is nothing to do */
    return store_tx_leave(st, 1, rc, "create schema", err);
}

/* ---- migration ------------------------------------------------------------- */

/* Runs the step from version `from` to from + 1 inside the caller's
 * transaction; err gets "PATH: migrate schema V -> V+1: WHAT: cause". */
static int migrate_step(ad_store *st, int64_t from, ad_error *err) {
    const migration *m = &migrations[from - 1];
    char step[64];
    snprintf(step, sizeof step, "migrate schema %lld -> %lld", (long long)from,
             (long long)from + 1);
    for (size_t i = 0; m->tables[i]; i++) {
        int64_t n = 0;
        sqlite3_stmt *s;
        if (store_prepare(st, &s, step, err,
                          "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                          "T", m->tables[i]))
            return AD_ERR;
        int rc = store_step(st, s, step, err);
        if (rc == 1) n = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        if (rc < 0) return AD_ERR;
        if (n != 1)
            return ad_error_set(err,
                                "%s: %s: table '%s' is missing: not a whole version %lld run store",
                                st->path, step, m->tables[i], (long long)from);
    }
    for (const migration_sql *q = m->steps; q->sql; q++)
        if (sqlite3_exec(st->db, q->sql, NULL, NULL, NULL) != SQLITE_OK)
            return ad_error_set(err, "%s: %s: %s: %s", st->path, step, q->what,
                                sqlite3_errmsg(st->db));
    return AD_OK;
}

/* Migrates an older store to AD_STORE_SCHEMA_VERSION in one transaction. The
 * version is read again under the write lock (BEGIN IMMEDIATE), so of two
 * processes opening the same old store one migrates and the other finds the
 * work done. On error the file is left as it was. */
static int migrate(ad_store *st, ad_error *err) {
    if (store_exec(st, "migrate schema", err, NULL, "BEGIN IMMEDIATE", "")) return AD_ERR;
    int64_t ver = 0;
    int rc = pragma_int(st, "PRAGMA user_version", &ver, "migrate schema", err);
    if (rc == AD_OK && (ver < 1 || ver > AD_STORE_SCHEMA_VERSION))
        rc = ad_error_set(err, "%s: migrate schema: version changed to %lld while opening",
                          st->path, (long long)ver);
    int64_t from = ver;
    for (; rc == AD_OK && ver < AD_STORE_SCHEMA_VERSION; ver++)
        rc = migrate_step(st, ver, err);
    if (rc == AD_OK && from < AD_STORE_SCHEMA_VERSION) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", AD_STORE_SCHEMA_VERSION);
        if (sqlite3_exec(st->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
            rc = ad_error_set(err, "%s: migrate schema %lld -> %d: set version: %s", st->path,
                              (long long)from, AD_STORE_SCHEMA_VERSION, sqlite3_errmsg(st->db));
    }
    if (rc == AD_OK && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = ad_error_set(err, "%s: migrate schema %lld -> %d: commit: %s", st->path,
                          (long long)from, AD_STORE_SCHEMA_VERSION, sqlite3_errmsg(st->db));
    if (rc != AD_OK) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- open ------------------------------------------------------------------ */

int store_schema_open(ad_store *st, int create, ad_error *err) {
    int64_t app, ver, objects;
    if (read_header(st, &app, &ver, &objects, err)) return AD_ERR;
    if (app == 0 && objects == 0 && ver == 0) {
        if (!create)
            return ad_error_set(err, "%s: open: an empty database, not an autodidact run store",
                                st->path);
        if (configure(st, err) || create_schema(st, err)) return AD_ERR;
        if (read_header(st, &app, &ver, &objects, err)) return AD_ERR;
    }
    if (app != AD_STORE_APPLICATION_ID)
        return ad_error_set(err,
                            "%s: open: not an autodidact run store (a SQLite database with "
                            "application_id 0x%08llx and %lld schema objects)",
                            st->path, (unsigned long long)(uint32_t)app, (long long)objects);
    if (ver < 1 || ver > AD_STORE_SCHEMA_VERSION)
        return ad_error_set(err,
                            "%s: open: run store schema version %lld, but this build reads "
                            "version %d",
                            st->path, (long long)ver, AD_STORE_SCHEMA_VERSION);
    if (configure(st, err)) return AD_ERR;
    return ver < AD_STORE_SCHEMA_VERSION ? migrate(st, err) : AD_OK;
}
