/* store_internal.h: what the run store's source files share: the handle,
 * error reporting that names the database and the step, statement helpers
 * with typed binds, and transaction ownership. Not part of the public API. */
#ifndef AD_STORE_INTERNAL_H
#define AD_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

struct ad_store {
    sqlite3 *db;
    char *path;
    int64_t run_id;              /* selected run; 0 when none */
    sqlite3_stmt *insert_sample; /* prepared once, reused by every batch */
};

/* Checks the header of a freshly opened database and readies it: creates the
 * schema in an empty one (when create), migrates an older run store in place
 * (one transaction; on error the file is unchanged), refuses anything else,
 * and sets the connection's pragmas (foreign keys, synchronous, WAL). In
 * store_schema.c. */
int store_schema_open(ad_store *st, int create, ad_error *err);

/* Fills err with "PATH: STEP: sqlite's message" and returns AD_ERR. */
int store_fail(ad_store *st, const char *step, ad_error *err);

/* Prepares sql and binds parameters ?1, ?2, ... from `types`, one letter per
 * parameter:
 *   R  the selected run id (no argument; an error when no run is selected)
 *   I  int64_t          T  const char * (NULL binds NULL)
 *   D  double (NaN binds NULL)
 * On error *out is NULL and err names the step. */
int store_prepare(ad_store *st, sqlite3_stmt **out, const char *step, ad_error *err,
                  const char *sql, const char *types, ...);

/* store_prepare, then steps the statement to completion (no result rows
 * expected) and finalizes it. *changes (may be NULL) gets the rows changed. */
int store_exec(ad_store *st, const char *step, ad_error *err, size_t *changes, const char *sql,
               const char *types, ...);

/* Steps a prepared statement once: 1 for a row, 0 when done, -1 on error
 * (err set). */
int store_step(ad_store *st, sqlite3_stmt *s, const char *step, ad_error *err);

/* A REAL column, NaN when NULL. */
double store_col_double(sqlite3_stmt *s, int col);

/* A round number column: rounds are uint32 everywhere, and a value outside
 * 0..UINT32_MAX (a damaged or tampered store: CHECK constraints can be
 * switched off) is an error naming the value, never a wrapped number that
 * sends a reader's loop on for ever. */
int store_col_round(ad_store *st, sqlite3_stmt *s, int col, uint32_t *out, const char *step,
                    ad_error *err);

/* A level from two integer columns (a, b). */
ad_level store_col_level(sqlite3_stmt *s, int col_a);

/* Starts a transaction unless one is open; *own says whether this call
 * started it (and must end it with store_tx_leave). */
int store_tx_enter(ad_store *st, int *own, const char *step, ad_error *err);

/* Ends a transaction started by store_tx_enter: commits when rc is AD_OK,
 * rolls back otherwise. Returns rc, or AD_ERR when the commit fails. */
int store_tx_leave(ad_store *st, int own, int rc, const char *step, ad_error *err);

/* Makes room for element `count` of a growing array (*v, *cap elements of
 * `elem` bytes). On error (out of memory) *v is unchanged and err is set. */
int store_reserve(ad_store *st, void **v, size_t *cap, size_t count, size_t elem, const char *step,
                  ad_error *err);

/* Unix time in seconds. */
double store_now(void);

#endif
