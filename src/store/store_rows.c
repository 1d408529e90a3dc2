/* store_rows.c: the bulk rows of a round: levels, candidates (batched through
 * one prepared statement), evaluation figures and checkpoints. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- levels ---------------------------------------------------------------- */

int ad_store_levels_insert(ad_store *st, uint32_t round, const char *role, const ad_level *levels,
                           const size_t *counts, size_t n, ad_error *err) {
    int own;
    if (store_tx_enter(st, &own, "insert levels", err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        rc = store_exec(st, "insert levels", err, NULL,
                        "INSERT INTO levels(run_id, round, role, level_a, level_b, n) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                        "RITIII", (int64_t)round, role, (int64_t)levels[i].a, (int64_t)levels[i].b,
                        (int64_t)(counts ? counts[i] : 0));
    return store_tx_leave(st, own, rc, "insert levels", err);
}

int ad_store_levels_delete(ad_store *st, uint32_t round, const char *role, ad_error *err) {
    return store_exec(st, "delete levels", err, NULL,
                      "DELETE FROM levels WHERE run_id = ?1 AND round = ?2 AND"
                      " (?3 IS NULL OR role = ?3)",
                      "RIT", (int64_t)round, role);
}

int ad_store_levels_get(ad_store *st, uint32_t round, const char *role, ad_level **levels,
                        size_t *n, ad_error *err) {
    *levels = NULL;
    *n = 0;
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read levels", err,
                      "SELECT level_a, level_b FROM levels WHERE run_id = ?1 AND round = ?2 "
                      "AND role = ?3 ORDER BY level_a, level_b",
                      "RIT", (int64_t)round, role))
        return AD_ERR;
    ad_level *v = NULL;
    size_t cap = 0, count = 0;
    int rc;
    while ((rc = store_step(st, s, "read levels", err)) == 1) {
        if (store_reserve(st, (void **)&v, &cap, count, sizeof *v, "read levels", err)) {
            rc = -1;
            break;
        }
        v[count++] = store_col_level(s, 0);
    }
    sqlite3_finalize(s);
    if (rc < 0) {
        free(v);
        return AD_ERR;
    }
    *levels = v;
    *n = count;
    return AD_OK;
}

/* ---- samples --------------------------------------------------------------- */

static const char *const insert_sample_sql =
    "INSERT INTO samples(run_id, round, stage, lineage, prompt_index, sample_index, level_a,"
    " level_b, prompt, completion, n_tokens, logprob, hit_eos, filters_ran, filters_passed,"
    " kept, correct, score) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18)";

static int bind_sample(sqlite3_stmt *s, int64_t run_id, const char *stage,
                       const ad_store_sample *r) {
    int rc = sqlite3_bind_int64(s, 1, run_id);
    rc |= sqlite3_bind_int64(s, 2, r->round);
    rc |= sqlite3_bind_text(s, 3, stage, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, (int64_t)r->lineage);
    rc |= sqlite3_bind_int64(s, 5, (int64_t)r->prompt_index);
    rc |= sqlite3_bind_int64(s, 6, (int64_t)r->sample_index);
    rc |= sqlite3_bind_int64(s, 7, r->level.a);
    rc |= sqlite3_bind_int64(s, 8, r->level.b);
    rc |= sqlite3_bind_text(s, 9, r->prompt ? r->prompt : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 10, r->completion ? r->completion : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 11, (int64_t)r->n_tokens);
    rc |= sqlite3_bind_double(s, 12, r->logprob);
    rc |= sqlite3_bind_int(s, 13, r->hit_eos != 0);
    rc |= sqlite3_bind_int64(s, 14, r->filters_ran);
    rc |= sqlite3_bind_int64(s, 15, r->filters_passed);
    rc |= sqlite3_bind_int(s, 16, r->kept != 0);
    if (r->correct == 0 || r->correct == 1)
        rc |= sqlite3_bind_int(s, 17, r->correct);
    else
        rc |= sqlite3_bind_null(s, 17);
    rc |= sqlite3_bind_double(s, 18, r->score); /* NaN binds NULL */
    return rc;
}

int ad_store_samples_insert(ad_store *st, const char *stage, const ad_store_sample *rows, size_t n,
                            ad_error *err) {
    if (!st->run_id) return ad_error_set(err, "%s: insert samples: no run selected", st->path);
    if (!st->insert_sample &&
        sqlite3_prepare_v2(st->db, insert_sample_sql, -1, &st->insert_sample, NULL) != SQLITE_OK)
        return store_fail(st, "insert samples", err);
    int own;
    if (store_tx_enter(st, &own, "insert samples", err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        sqlite3_stmt *s = st->insert_sample;
        if (bind_sample(s, st->run_id, stage, &rows[i]) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_DONE)
            rc = ad_error_set(err,
                              "%s: insert samples: row %zu (prompt %zu, lineage %zu, "
                              "sample %zu): %s",
                              st->path, i, rows[i].prompt_index, rows[i].lineage,
                              rows[i].sample_index, sqlite3_errmsg(st->db));
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return store_tx_leave(st, own, rc, "insert samples", err);
}

int ad_store_samples_foreach(ad_store *st, uint32_t round, const char *stage, ad_store_sample_fn fn,
                             void *ctx, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read samples", err,
                      "SELECT stage, lineage, prompt_index, sample_index, level_a, level_b,"
                      " prompt, completion, n_tokens, logprob, hit_eos, filters_ran,"
                      " filters_passed, kept, correct, score FROM samples"
                      " WHERE run_id = ?1 AND round = ?2 AND (?3 IS NULL OR stage = ?3)"
                      " ORDER BY prompt_index, lineage, sample_index, stage",
                      "RIT", (int64_t)round, stage))
        return AD_ERR;
    int rc;
    while ((rc = store_step(st, s, "read samples", err)) == 1) {
        ad_store_sample r;
        memset(&r, 0, sizeof r);
        r.round = round;
        r.stage = (const char *)sqlite3_column_text(s, 0);
        r.lineage = (size_t)sqlite3_column_int64(s, 1);
        r.prompt_index = (size_t)sqlite3_column_int64(s, 2);
        r.sample_index = (size_t)sqlite3_column_int64(s, 3);
        r.level = store_col_level(s, 4);
        r.prompt = (const char *)sqlite3_column_text(s, 6);
        r.completion = (const char *)sqlite3_column_text(s, 7);
        r.n_tokens = (size_t)sqlite3_column_int64(s, 8);
        r.logprob = store_col_double(s, 9);
        r.hit_eos = sqlite3_column_int(s, 10);
        r.filters_ran = (uint32_t)sqlite3_column_int64(s, 11);
        r.filters_passed = (uint32_t)sqlite3_column_int64(s, 12);
        r.kept = sqlite3_column_int(s, 13);
        r.correct = sqlite3_column_type(s, 14) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 14);
        r.score = store_col_double(s, 15);
        if (!r.stage || !r.prompt || !r.completion) {
            rc = -1;
            ad_error_set(err, "%s: read samples: out of memory", st->path);
            break;
        }
        if (fn(ctx, &r, err)) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

int ad_store_samples_set_score(ad_store *st, uint32_t round, const char *stage,
                               const ad_store_sample *keys, const double *scores, size_t n,
                               ad_error *err) {
    int own;
    if (store_tx_enter(st, &own, "set scores", err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        size_t changed = 0;
        rc = store_exec(st, "set scores", err, &changed,
                        "UPDATE samples SET score = ?7 WHERE run_id = ?1 AND round = ?2 AND"
                        " stage = ?3 AND prompt_index = ?4 AND lineage = ?5 AND sample_index = ?6",
                        "RITIIID", (int64_t)round, stage, (int64_t)keys[i].prompt_index,
                        (int64_t)keys[i].lineage, (int64_t)keys[i].sample_index, scores[i]);
        if (rc == AD_OK && changed != 1)
            rc = ad_error_set(err,
                              "%s: set scores: round %u has no %s candidate (prompt %zu, "
                              "lineage %zu, sample %zu)",
                              st->path, round, stage, keys[i].prompt_index, keys[i].lineage,
                              keys[i].sample_index);
    }
    return store_tx_leave(st, own, rc, "set scores", err);
}

/* ---- evaluations ----------------------------------------------------------- */

int ad_store_evals_insert(ad_store *st, const char *stage, const ad_store_eval *rows, size_t n,
                          ad_error *err) {
    int own;
    if (store_tx_enter(st, &own, "insert evaluations", err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        const ad_store_eval *r = &rows[i];
        rc = store_exec(st, "insert evaluations", err, NULL,
                        "INSERT INTO evaluations(run_id, round, stage, lineage, level_a, level_b,"
                        " metric, value, n) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        "RITIIITDI", (int64_t)r->round, stage, r->lineage, (int64_t)r->level.a,
                        (int64_t)r->level.b, r->metric, r->value, (int64_t)r->n);
    }
    return store_tx_leave(st, own, rc, "insert evaluations", err);
}

int ad_store_eval_series(ad_store *st, const char *metric, int64_t lineage, ad_store_eval **cells,
                         size_t *n, ad_error *err) {
    *cells = NULL;
    *n = 0;
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read evaluations", err,
                      "SELECT round, level_a, level_b, value, n FROM evaluations"
                      " WHERE run_id = ?1 AND metric = ?2 AND lineage = ?3"
                      " ORDER BY level_a, level_b, round",
                      "RTI", metric, lineage))
        return AD_ERR;
    ad_store_eval *v = NULL;
    size_t cap = 0, count = 0;
    int rc;
    while ((rc = store_step(st, s, "read evaluations", err)) == 1) {
        if (store_reserve(st, (void **)&v, &cap, count, sizeof *v, "read evaluations", err)) {
            rc = -1;
            break;
        }
        ad_store_eval *c = &v[count++];
        memset(c, 0, sizeof *c);
        if (store_col_round(st, s, 0, &c->round, "read evaluations", err)) {
            rc = -1;
            break;
        }
        c->lineage = lineage;
        c->level = store_col_level(s, 1);
        c->value = store_col_double(s, 3);
        c->n = (size_t)sqlite3_column_int64(s, 4);
    }
    sqlite3_finalize(s);
    if (rc < 0) {
        free(v);
        return AD_ERR;
    }
    *cells = v;
    *n = count;
    return AD_OK;
}

/* ---- checkpoints ----------------------------------------------------------- */

int ad_store_checkpoint_insert(ad_store *st, uint32_t round, int64_t lineage, const char *stage,
                               const char *path, int64_t parent_round, ad_error *err) {
    return store_exec(st, "insert checkpoint", err, NULL,
                      "INSERT INTO checkpoints(run_id, round, lineage, stage, path, parent_round,"
                      " created_at) VALUES(?1, ?2, ?3, ?4, ?5,"
                      " CASE WHEN ?6 < 0 THEN NULL ELSE ?6 END, ?7)",
                      "RIITTID", (int64_t)round, lineage, stage, path, parent_round, store_now());
}

int ad_store_checkpoint_get(ad_store *st, uint32_t round, int64_t lineage, char *path, size_t cap,
                            int64_t *parent_round, int *found, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read checkpoint", err,
                      "SELECT path, parent_round FROM checkpoints"
                      " WHERE run_id = ?1 AND round = ?2 AND lineage = ?3",
                      "RII", (int64_t)round, lineage))
        return AD_ERR;
    int rc = store_step(st, s, "read checkpoint", err);
    *found = rc == 1;
    if (rc == 1) {
        const char *p = (const char *)sqlite3_column_text(s, 0);
        if (!p || strlen(p) >= cap) {
            rc = -1;
            ad_error_set(err, "%s: read checkpoint: path of round %u does not fit %zu bytes",
                         st->path, round, cap);
        } else {
            strcpy(path, p);
            if (parent_round)
                *parent_round =
                    sqlite3_column_type(s, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 1);
        }
    }
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}
