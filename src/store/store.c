/* store.c: opening and closing the run store, statement helpers,
 * transactions, the run and its lineages. What the file must hold (header
 * checks, schema, migrations) is store_schema.c's. */
#include "store/store_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/rng.h"

/* ---- helpers --------------------------------------------------------------- */

int store_fail(ad_store *st, const char *step, ad_error *err) {
    const char *msg = st->db ? sqlite3_errmsg(st->db) : "no database handle";
    return ad_error_set(err, "%s: %s: %s", st->path, step, msg);
}

static int bind_all(ad_store *st, sqlite3_stmt *s, const char *step, ad_error *err,
                    const char *types, va_list ap) {
    for (int i = 0; types[i]; i++) {
        int rc = SQLITE_OK, at = i + 1;
        switch (types[i]) {
        case 'R':
            if (!st->run_id) return ad_error_set(err, "%s: %s: no run selected", st->path, step);
            rc = sqlite3_bind_int64(s, at, st->run_id);
            break;
        case 'I':
            rc = sqlite3_bind_int64(s, at, va_arg(ap, int64_t));
            break;
        case 'T':
            rc = sqlite3_bind_text(s, at, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
            break;
        case 'D':
            rc = sqlite3_bind_double(s, at, va_arg(ap, double));
            break;
        default:
            return ad_error_set(err, "%s: %s: bad bind type '%c'", st->path, step, types[i]);
        }
        if (rc != SQLITE_OK) return store_fail(st, step, err);
    }
    return AD_OK;
}

static int prepare_v(ad_store *st, sqlite3_stmt **out, const char *step, ad_error *err,
                     const char *sql, const char *types, va_list ap) {
    *out = NULL;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_fail(st, step, err);
    if (bind_all(st, s, step, err, types, ap)) {
        sqlite3_finalize(s);
        return AD_ERR;
    }
    *out = s;
    return AD_OK;
}

int store_prepare(ad_store *st, sqlite3_stmt **out, const char *step, ad_error *err,
                  const char *sql, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    int rc = prepare_v(st, out, step, err, sql, types, ap);
    va_end(ap);
    return rc;
}

int store_step(ad_store *st, sqlite3_stmt *s, const char *step, ad_error *err) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    store_fail(st, step, err);
    return -1;
}

int store_exec(ad_store *st, const char *step, ad_error *err, size_t *changes, const char *sql,
               const char *types, ...) {
    sqlite3_stmt *s;
    va_list ap;
    va_start(ap, types);
    int rc = prepare_v(st, &s, step, err, sql, types, ap);
    va_end(ap);
    if (rc) return AD_ERR;
    while ((rc = store_step(st, s, step, err)) == 1) {
    }
    if (changes) *changes = (size_t)sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

double store_col_double(sqlite3_stmt *s, int col) {
    return sqlite3_column_type(s, col) == SQLITE_NULL ? NAN : sqlite3_column_double(s, col);
}

int store_col_round(ad_store *st, sqlite3_stmt *s, int col, uint32_t *out, const char *step,
                    ad_error *err) {
    int64_t v = sqlite3_column_int64(s, col);
    if (sqlite3_column_type(s, col) != SQLITE_INTEGER || v < 0 || v > (int64_t)UINT32_MAX)
        return ad_error_set(err, "%s: %s: round %s is out of range (0..%u): the store is damaged",
                            st->path, step, (const char *)sqlite3_column_text(s, col), UINT32_MAX);
    *out = (uint32_t)v;
    return AD_OK;
}

ad_level store_col_level(sqlite3_stmt *s, int col_a) {
    ad_level l = {(int32_t)sqlite3_column_int64(s, col_a),
                  (int32_t)sqlite3_column_int64(s, col_a + 1)};
    return l;
}

int store_reserve(ad_store *st, void **v, size_t *cap, size_t count, size_t elem, const char *step,
                  ad_error *err) {
    if (count < *cap) return AD_OK;
    size_t new_cap = *cap ? 2 * *cap : 16;
    void *grown = realloc(*v, new_cap * elem);
    if (!grown) return ad_error_set(err, "%s: %s: out of memory", st->path, step);
    *v = grown;
    *cap = new_cap;
    return AD_OK;
}

double store_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int store_tx_enter(ad_store *st, int *own, const char *step, ad_error *err) {
    *own = sqlite3_get_autocommit(st->db) != 0;
    if (!*own) return AD_OK;
    return store_exec(st, step, err, NULL, "BEGIN IMMEDIATE", "");
}

int store_tx_leave(ad_store *st, int own, int rc, const char *step, ad_error *err) {
    if (!own) return rc;
    if (rc == AD_OK && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return AD_OK;
    if (rc == AD_OK) store_fail(st, step, err);
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return AD_ERR;
}

/* ---- open ------------------------------------------------------------------ */

int ad_store_open(const char *path, int create, ad_store **out, ad_error *err) {
    *out = NULL;
    if (!create && access(path, F_OK) != 0)
        return ad_error_set(err, "%s: open: no such file", path);
    ad_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return ad_error_set(err, "%s: open: out of memory", path);
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        store_fail(st, "open", err);
        ad_store_close(st);
        return AD_ERR;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, AD_STORE_BUSY_TIMEOUT_MS);
    if (store_schema_open(st, create, err)) {
        ad_store_close(st);
        return AD_ERR;
    }
    *out = st;
    return AD_OK;
}

/* Copies the database behind st->db into a private in-memory database and
 * swaps it in, so that an older store can be migrated in the copy while the
 * file stays as it was. On error st->db is unchanged (and still open). */
static int copy_to_memory(ad_store *st, ad_error *err) {
    sqlite3 *mem = NULL;
    if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(mem);
        return ad_error_set(err, "%s: open read-only: no in-memory copy", st->path);
    }
    sqlite3_backup *b = sqlite3_backup_init(mem, "main", st->db, "main");
    int rc = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(mem);
    if (b) sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        ad_error_set(err, "%s: open read-only: copy an older store: %s", st->path,
                     sqlite3_errmsg(b ? st->db : mem));
        sqlite3_close(mem);
        return AD_ERR;
    }
    sqlite3_close(st->db);
    st->db = mem;
    return AD_OK;
}

/* The schema version in the file's header (PRAGMA user_version). */
static int read_version(ad_store *st, int64_t *ver, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "open read-only: read schema version", err, "PRAGMA user_version",
                      ""))
        return AD_ERR;
    int rc = store_step(st, s, "open read-only: read schema version", err);
    *ver = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == 1 ? AD_OK : AD_ERR;
}

/* path as a "file:" URI with immutable=1: every byte but [A-Za-z0-9/._~-]
 * percent-encoded (malloc'd; NULL when out of memory). */
static char *immutable_uri(const char *path) {
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(path);
    char *uri = malloc(3 * n + sizeof "file:?immutable=1");
    if (!uri) return NULL;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            strchr("/._~-", *c)) {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    strcpy(o, "?immutable=1");
    return uri;
}

/* Opens st->db for reading. A run store is in WAL mode, and a WAL reader
 * needs PATH-shm, which SQLite creates (and leaves behind) when it is missing,
 * or fails to create in a directory it cannot write. PATH-wal exists exactly
 * while a writer has the store open (the last one to close folds it into the
 * file and removes it, and a killed one leaves it): then the plain read-only
 * mode shares the writer's -shm and sees its last commit. Without it the file
 * alone is the whole store, so it is opened immutable: no lock, no -shm, no
 * -wal, nothing written. (A writer that opened the store after that check
 * writes to its own -wal, not the file, unless it checkpoints during the
 * read.) */
static int open_for_reading(ad_store *st, const char *path, ad_error *err) {
    char *wal = malloc(strlen(path) + sizeof "-wal");
    if (!wal) return ad_error_set(err, "%s: open read-only: out of memory", path);
    sprintf(wal, "%s-wal", path);
    int has_wal = access(wal, F_OK) == 0;
    free(wal);
    if (has_wal)
        return sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
                   ? AD_OK
                   : store_fail(st, "open read-only", err);
    char *uri = immutable_uri(path);
    if (!uri) return ad_error_set(err, "%s: open read-only: out of memory", path);
    int rc = sqlite3_open_v2(uri, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    return rc == SQLITE_OK ? AD_OK : store_fail(st, "open read-only", err);
}

int ad_store_open_readonly(const char *path, ad_store **out, ad_error *err) {
    *out = NULL;
    if (access(path, F_OK) != 0) return ad_error_set(err, "%s: open: no such file", path);
    ad_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return ad_error_set(err, "%s: open: out of memory", path);
    }
    int64_t ver = 0;
    int rc = open_for_reading(st, path, err);
    if (rc == AD_OK) {
        sqlite3_extended_result_codes(st->db, 1);
        sqlite3_busy_timeout(st->db, AD_STORE_BUSY_TIMEOUT_MS);
        rc = read_version(st, &ver, err);
    }
    /* an older store is migrated in a copy; the header checks of
     * store_schema_open still refuse foreign and newer files */
    if (rc == AD_OK && ver >= 1 && ver < AD_STORE_SCHEMA_VERSION) rc = copy_to_memory(st, err);
    if (rc == AD_OK) rc = store_schema_open(st, 0, err);
    if (rc != AD_OK) {
        ad_store_close(st);
        return AD_ERR;
    }
    *out = st;
    return AD_OK;
}

size_t ad_store_path_max(void) {
    sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
    return vfs && vfs->mxPathname > 0 ? (size_t)vfs->mxPathname : 512;
}

void ad_store_close(ad_store *st) {
    if (!st) return;
    sqlite3_finalize(st->insert_sample);
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(st->db);
    free(st->path);
    free(st);
}

const char *ad_store_path(const ad_store *st) {
    return st->path;
}

/* ---- transactions ---------------------------------------------------------- */

int ad_store_begin(ad_store *st, ad_error *err) {
    if (!sqlite3_get_autocommit(st->db))
        return ad_error_set(err, "%s: begin: a transaction is already open", st->path);
    return store_exec(st, "begin", err, NULL, "BEGIN IMMEDIATE", "");
}

int ad_store_commit(ad_store *st, ad_error *err) {
    if (sqlite3_get_autocommit(st->db))
        return ad_error_set(err, "%s: commit: no transaction is open", st->path);
    return store_tx_leave(st, 1, AD_OK, "commit", err);
}

void ad_store_rollback(ad_store *st) {
    if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- the run and its lineages ---------------------------------------------- */

int ad_store_run_create(ad_store *st, const char *name, uint64_t seed, const char *config,
                        ad_error *err) {
    if (store_exec(st, "create run", err, NULL,
                   "INSERT INTO runs(name, seed, config, created_at) VALUES(?1, ?2, ?3, ?4)",
                   "TITD", name, (int64_t)seed, config ? config : "", store_now()))
        return AD_ERR;
    st->run_id = sqlite3_last_insert_rowid(st->db);
    return AD_OK;
}

int ad_store_run_select(ad_store *st, const char *name, uint64_t *seed, char **config,
                        ad_error *err) {
    if (config) *config = NULL;
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "select run", err,
                      "SELECT id, seed, config FROM runs WHERE ?1 IS NULL OR name = ?1 LIMIT 2",
                      "T", name))
        return AD_ERR;
    int rc = store_step(st, s, "select run", err), found = 0;
    int64_t id = 0;
    while (rc == 1) {
        found++;
        if (found == 1) {
            id = sqlite3_column_int64(s, 0);
            if (seed) *seed = (uint64_t)sqlite3_column_int64(s, 1);
            if (config) {
                const char *text = (const char *)sqlite3_column_text(s, 2);
                *config = strdup(text ? text : "");
            }
        }
        rc = store_step(st, s, "select run", err);
    }
    sqlite3_finalize(s);
    if (rc < 0 || found != 1 || (config && !*config)) {
        if (config) {
            free(*config);
            *config = NULL;
        }
        if (rc < 0) return AD_ERR;
        if (found == 0)
            return ad_error_set(err, "%s: select run: no run named '%s'", st->path,
                                name ? name : "(any)");
        if (found > 1) return ad_error_set(err, "%s: select run: several runs; name one", st->path);
        return ad_error_set(err, "%s: select run: out of memory", st->path);
    }
    st->run_id = id;
    return AD_OK;
}

int ad_store_run_identity(ad_store *st, uint64_t *identity, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read run identity", err,
                      "SELECT seed, created_at FROM runs WHERE id = ?1", "R"))
        return AD_ERR;
    int rc = store_step(st, s, "read run identity", err);
    if (rc == 1) {
        double created = sqlite3_column_double(s, 1);
        uint64_t bits;
        memcpy(&bits, &created, sizeof bits);
        *identity = ad_seed_derive((uint64_t)sqlite3_column_int64(s, 0), (uint64_t)st->run_id, bits,
                                   0x6964656e74697479ull /* "identity" */, 0);
    }
    sqlite3_finalize(s);
    if (rc == 0) return ad_error_set(err, "%s: read run identity: no run selected", st->path);
    return rc < 0 ? AD_ERR : AD_OK;
}

int ad_store_lineage_add(ad_store *st, size_t lineage, uint64_t seed, ad_error *err) {
    return store_exec(st, "add lineage", err, NULL,
                      "INSERT INTO lineages(run_id, lineage, seed) VALUES(?1, ?2, ?3)", "RII",
                      (int64_t)lineage, (int64_t)seed);
}

int ad_store_lineage_count(ad_store *st, size_t *n, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "count lineages", err,
                      "SELECT count(*) FROM lineages WHERE run_id = ?1", "R"))
        return AD_ERR;
    int rc = store_step(st, s, "count lineages", err);
    if (rc == 1) *n = (size_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc == 1 ? AD_OK : AD_ERR;
}
