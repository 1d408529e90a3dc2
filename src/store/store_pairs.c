/* store_pairs.c: a round's preference pairs (made by the select stage) and
 * the reference model's log-probs of them per lineage (recorded by the
 * optimize stage). Not here: making pairs (src/loop) or their JSONL export
 * (store_export.c). */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/vec.h"

/* ---- pairs ----------------------------------------------------------------- */

static const char *const insert_pair_sql =
    "INSERT INTO pairs(run_id, round, stage, pair_index, rule, prompt_index, level_a, level_b,"
    " prompt, chosen, rejected, chosen_lineage, chosen_sample, rejected_lineage,"
    " rejected_sample, chosen_correct, rejected_correct) VALUES(?1, ?2, 'select', ?3, ?4, ?5,"
    " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/* 1 or 0 as itself, anything else (unknown) as NULL. */
static int bind_correct(sqlite3_stmt *s, int at, int correct) {
    if (correct == 0 || correct == 1) return sqlite3_bind_int(s, at, correct);
    return sqlite3_bind_null(s, at);
}

static int bind_pair(sqlite3_stmt *s, int64_t run_id, const ad_store_pair *p) {
    int rc = sqlite3_bind_int64(s, 1, run_id);
    rc |= sqlite3_bind_int64(s, 2, p->round);
    rc |= sqlite3_bind_int64(s, 3, (int64_t)p->pair_index);
    rc |= sqlite3_bind_text(s, 4, p->rule, -1, SQLITE_STATIC); /* NULL binds NULL */
    rc |= sqlite3_bind_int64(s, 5, (int64_t)p->prompt_index);
    rc |= sqlite3_bind_int64(s, 6, p->level.a);
    rc |= sqlite3_bind_int64(s, 7, p->level.b);
    rc |= sqlite3_bind_text(s, 8, p->prompt ? p->prompt : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 9, p->chosen ? p->chosen : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 10, p->rejected ? p->rejected : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 11, (int64_t)p->chosen_lineage);
    rc |= sqlite3_bind_int64(s, 12, (int64_t)p->chosen_sample);
    rc |= sqlite3_bind_int64(s, 13, (int64_t)p->rejected_lineage);
    rc |= sqlite3_bind_int64(s, 14, (int64_t)p->rejected_sample);
    rc |= bind_correct(s, 15, p->chosen_correct);
    rc |= bind_correct(s, 16, p->rejected_correct);
    return rc;
}

int ad_store_pairs_insert(ad_store *st, const ad_store_pair *rows, size_t n, ad_error *err) {
    if (!st->run_id) return ad_error_set(err, "%s: insert pairs: no run selected", st->path);
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "insert pairs", err, insert_pair_sql, "")) return AD_ERR;
    int own;
    if (store_tx_enter(st, &own, "insert pairs", err)) {
        sqlite3_finalize(s);
        return AD_ERR;
    }
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        if (bind_pair(s, st->run_id, &rows[i]) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE)
            rc = ad_error_set(err, "%s: insert pairs: row %zu (round %u, pair %zu): %s", st->path,
                              i, rows[i].round, rows[i].pair_index, sqlite3_errmsg(st->db));
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    sqlite3_finalize(s);
    return store_tx_leave(st, own, rc, "insert pairs", err);
}

static int col_correct(sqlite3_stmt *s, int col) {
    return sqlite3_column_type(s, col) == SQLITE_NULL ? -1 : sqlite3_column_int(s, col) != 0;
}

int ad_store_pairs_foreach(ad_store *st, uint32_t round, ad_store_pair_fn fn, void *ctx,
                           ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read pairs", err,
                      "SELECT pair_index, rule, prompt_index, level_a, level_b, prompt, chosen,"
                      " rejected, chosen_lineage, chosen_sample, rejected_lineage,"
                      " rejected_sample, chosen_correct, rejected_correct FROM pairs"
                      " WHERE run_id = ?1 AND round = ?2 ORDER BY pair_index",
                      "RI", (int64_t)round))
        return AD_ERR;
    int rc;
    while ((rc = store_step(st, s, "read pairs", err)) == 1) {
        ad_store_pair p;
        memset(&p, 0, sizeof p);
        p.round = round;
        p.pair_index = (size_t)sqlite3_column_int64(s, 0);
        p.rule = (const char *)sqlite3_column_text(s, 1);
        p.prompt_index = (size_t)sqlite3_column_int64(s, 2);
        p.level = store_col_level(s, 3);
        p.prompt = (const char *)sqlite3_column_text(s, 5);
        p.chosen = (const char *)sqlite3_column_text(s, 6);
        p.rejected = (const char *)sqlite3_column_text(s, 7);
        p.chosen_lineage = (size_t)sqlite3_column_int64(s, 8);
        p.chosen_sample = (size_t)sqlite3_column_int64(s, 9);
        p.rejected_lineage = (size_t)sqlite3_column_int64(s, 10);
        p.rejected_sample = (size_t)sqlite3_column_int64(s, 11);
        p.chosen_correct = col_correct(s, 12);
        p.rejected_correct = col_correct(s, 13);
        int rule_lost = !p.rule && sqlite3_column_type(s, 1) != SQLITE_NULL;
        if (rule_lost || !p.prompt || !p.chosen || !p.rejected) {
            rc = -1;
            ad_error_set(err, "%s: read pairs: out of memory", st->path);
            break;
        }
        if (fn(ctx, &p, err)) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

/* ---- reference log-probs --------------------------------------------------- */

int ad_store_pair_logps_insert(ad_store *st, uint32_t round, size_t lineage,
                               const double *ref_chosen, const double *ref_rejected, size_t n,
                               ad_error *err) {
    if (!st->run_id)
        return ad_error_set(err, "%s: insert pair log-probs: no run selected", st->path);
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "insert pair log-probs", err,
                      "INSERT INTO pair_logps(run_id, round, stage, pair_index, lineage,"
                      " ref_chosen, ref_rejected) VALUES(?1, ?2, 'optimize', ?3, ?4, ?5, ?6)",
                      ""))
        return AD_ERR;
    int own;
    if (store_tx_enter(st, &own, "insert pair log-probs", err)) {
        sqlite3_finalize(s);
        return AD_ERR;
    }
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        int b = sqlite3_bind_int64(s, 1, st->run_id);
        b |= sqlite3_bind_int64(s, 2, round);
        b |= sqlite3_bind_int64(s, 3, (int64_t)i);
        b |= sqlite3_bind_int64(s, 4, (int64_t)lineage);
        b |= sqlite3_bind_double(s, 5, ref_chosen[i]); /* NaN binds NULL */
        b |= sqlite3_bind_double(s, 6, ref_rejected[i]);
        if (b != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE)
            rc = ad_error_set(err, "%s: insert pair log-probs: round %u, lineage %zu, pair %zu: %s",
                              st->path, round, lineage, i, sqlite3_errmsg(st->db));
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return store_tx_leave(st, own, rc, "insert pair log-probs", err);
}

int ad_store_pair_logps_get(ad_store *st, uint32_t round, size_t lineage, double **ref_chosen,
                            double **ref_rejected, size_t *n, ad_error *err) {
    *ref_chosen = *ref_rejected = NULL;
    *n = 0;
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read pair log-probs", err,
                      "SELECT pair_index, ref_chosen, ref_rejected FROM pair_logps"
                      " WHERE run_id = ?1 AND round = ?2 AND lineage = ?3 ORDER BY pair_index",
                      "RII", (int64_t)round, (int64_t)lineage))
        return AD_ERR;
    ad_vec chosen, rejected;
    ad_vec_init(&chosen, sizeof(double));
    ad_vec_init(&rejected, sizeof(double));
    int rc;
    while ((rc = store_step(st, s, "read pair log-probs", err)) == 1) {
        int64_t index = sqlite3_column_int64(s, 0);
        if (index != (int64_t)chosen.n) {
            ad_error_set(err, "%s: read pair log-probs: round %u, lineage %zu: pair %zu is missing",
                         st->path, round, lineage, chosen.n);
            rc = -1;
            break;
        }
        double c = store_col_double(s, 1), r = store_col_double(s, 2);
        if (ad_vec_push(&chosen, &c, err) != AD_OK || ad_vec_push(&rejected, &r, err) != AD_OK) {
            ad_error_prefix(err, "%s: read pair log-probs: ", st->path);
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(s);
    if (rc < 0) {
        ad_vec_free(&chosen);
        ad_vec_free(&rejected);
        return AD_ERR;
    }
    *n = chosen.n;
    *ref_chosen = ad_vec_release(&chosen);
    *ref_rejected = ad_vec_release(&rejected);
    return AD_OK;
}
