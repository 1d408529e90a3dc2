/* store_rounds.c: rounds (status, curriculum cursor, the last accepted one),
 * stage markers and figures, deletion for redoing a stage or a round, and the
 * round table for `autodidact status`. */
#include "store/store_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *ad_round_status_name(ad_round_status s) {
    switch (s) {
    case AD_ROUND_RUNNING:
        return "running";
    case AD_ROUND_ACCEPTED:
        return "accepted";
    case AD_ROUND_ROLLED_BACK:
        return "rolled_back";
    }
    return "?";
}

static ad_round_status status_from_text(const char *t) {
    if (t && strcmp(t, "accepted") == 0) return AD_ROUND_ACCEPTED;
    if (t && strcmp(t, "rolled_back") == 0) return AD_ROUND_ROLLED_BACK;
    return AD_ROUND_RUNNING;
}

int ad_store_round_begin(ad_store *st, uint32_t round, ad_error *err) {
    return store_exec(st, "begin round", err, NULL,
                      "INSERT INTO rounds(run_id, round, status, started_at) "
                      "VALUES(?1, ?2, 'running', ?3)",
                      "RID", (int64_t)round, store_now());
}

int ad_store_round_finish(ad_store *st, uint32_t round, int accepted, const char *reason,
                          ad_error *err) {
    size_t changed = 0;
    if (store_exec(st, "finish round", err, &changed,
                   "UPDATE rounds SET status = ?3, reason = ?4, finished_at = ?5 "
                   "WHERE run_id = ?1 AND round = ?2",
                   "RITTD", (int64_t)round, accepted ? "accepted" : "rolled_back", reason,
                   store_now()))
        return AD_ERR;
    if (changed != 1)
        return ad_error_set(err, "%s: finish round: round %u was never begun", st->path, round);
    return AD_OK;
}

int ad_store_round_get(ad_store *st, uint32_t round, ad_store_round *out, int *found,
                       ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read round", err,
                      "SELECT status, cursor FROM rounds WHERE run_id = ?1 AND round = ?2", "RI",
                      (int64_t)round))
        return AD_ERR;
    int rc = store_step(st, s, "read round", err);
    *found = rc == 1;
    memset(out, 0, sizeof *out);
    out->round = round;
    out->cursor = -1;
    if (rc == 1) {
        out->status = status_from_text((const char *)sqlite3_column_text(s, 0));
        if (sqlite3_column_type(s, 1) != SQLITE_NULL) out->cursor = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

int ad_store_round_set_cursor(ad_store *st, uint32_t round, size_t cursor, ad_error *err) {
    if (cursor > (size_t)INT64_MAX)
        return ad_error_set(err, "%s: record cursor: round %u: cursor %zu is out of range",
                            st->path, round, cursor);
    size_t changed = 0;
    if (store_exec(st, "record cursor", err, &changed,
                   "UPDATE rounds SET cursor = ?3 WHERE run_id = ?1 AND round = ?2", "RII",
                   (int64_t)round, (int64_t)cursor))
        return AD_ERR;
    if (changed != 1)
        return ad_error_set(err, "%s: record cursor: round %u was never begun", st->path, round);
    return AD_OK;
}

int ad_store_last_accepted(ad_store *st, uint32_t before, uint32_t *round, int *found,
                           ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read last accepted round", err,
                      "SELECT max(round) FROM rounds WHERE run_id = ?1 AND round < ?2"
                      " AND status = 'accepted'",
                      "RI", (int64_t)before))
        return AD_ERR;
    int rc = store_step(st, s, "read last accepted round", err);
    *found = rc == 1 && sqlite3_column_type(s, 0) != SQLITE_NULL;
    *round = 0;
    if (*found && store_col_round(st, s, 0, round, "read last accepted round", err)) rc = -1;
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

int ad_store_stage_done(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                        double seconds, ad_error *err) {
    return store_exec(st, "mark stage done", err, NULL,
                      "INSERT INTO stages(run_id, round, stage, lineage, seconds, finished_at) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                      "RITIDD", (int64_t)round, stage, lineage, seconds, store_now());
}

int ad_store_stage_seconds(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                           double *seconds, int *found, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read stage marker", err,
                      "SELECT seconds FROM stages WHERE run_id = ?1 AND round = ?2 AND stage = ?3 "
                      "AND lineage = ?4",
                      "RITI", (int64_t)round, stage, lineage))
        return AD_ERR;
    int rc = store_step(st, s, "read stage marker", err);
    *found = rc == 1;
    *seconds = rc == 1 ? store_col_double(s, 0) : 0;
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

int ad_store_stage_is_done(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                           int *done, ad_error *err) {
    double seconds;
    return ad_store_stage_seconds(st, round, stage, lineage, &seconds, done, err);
}

int ad_store_stage_metric(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                          const char *key, double value, ad_error *err) {
    return store_exec(st, "record stage figure", err, NULL,
                      "INSERT INTO stage_metrics(run_id, round, stage, lineage, key, value) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                      "RITITD", (int64_t)round, stage, lineage, key, value);
}

int ad_store_stage_metric_get(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                              const char *key, double *value, int *found, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read stage figure", err,
                      "SELECT value FROM stage_metrics WHERE run_id = ?1 AND round = ?2 AND "
                      "stage = ?3 AND lineage = ?4 AND key = ?5",
                      "RITIT", (int64_t)round, stage, lineage, key))
        return AD_ERR;
    int rc = store_step(st, s, "read stage figure", err);
    if (rc == 1) *value = store_col_double(s, 0);
    sqlite3_finalize(s);
    if (rc < 0) return AD_ERR;
    *found = rc == 1;
    return AD_OK;
}

int ad_store_delete_stage(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                          ad_error *err) {
    /* every table with a stage column, and how its rows name their lineage */
    static const struct {
        const char *table, *of_lineage;
    } tables[] = {
        {"samples", "lineage = ?4"},
        {"pairs", "(chosen_lineage = ?4 OR rejected_lineage = ?4)"},
        {"pair_logps", "lineage = ?4"},
        {"evaluations", "lineage = ?4"},
        {"checkpoints", "lineage = ?4"},
        {"stage_metrics", "lineage = ?4"},
        {"step_metrics", "lineage = ?4"},
        {"stages", "lineage = ?4"},
    };
    int own;
    if (store_tx_enter(st, &own, "delete stage", err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t t = 0; rc == AD_OK && t < sizeof tables / sizeof tables[0]; t++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "DELETE FROM %s WHERE run_id = ?1 AND round = ?2 AND stage = ?3 "
                 "AND (?4 < 0 OR %s)",
                 tables[t].table, tables[t].of_lineage);
        rc = store_exec(st, "delete stage", err, NULL, sql, "RITI", (int64_t)round, stage, lineage);
    }
    return store_tx_leave(st, own, rc, "delete stage", err);
}

int ad_store_delete_round(ad_store *st, uint32_t round, ad_error *err) {
    int own;
    if (store_tx_enter(st, &own, "delete round", err)) return AD_ERR;
    /* foreign keys cascade to every table that hangs off rounds */
    int rc =
        store_exec(st, "delete round", err, NULL,
                   "DELETE FROM rounds WHERE run_id = ?1 AND round = ?2", "RI", (int64_t)round);
    return store_tx_leave(st, own, rc, "delete round", err);
}

/* ---- the round table ------------------------------------------------------- */

/* Fills row->stages_done: distinct stage names in the order they first finished. */
static int read_stage_names(ad_store *st, ad_store_round_row *row, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read stages", err,
                      "SELECT stage FROM stages WHERE run_id = ?1 AND round = ?2 "
                      "GROUP BY stage ORDER BY min(finished_at), stage",
                      "RI", (int64_t)row->round))
        return AD_ERR;
    int rc;
    size_t len = 0;
    row->stages_done[0] = '\0';
    while ((rc = store_step(st, s, "read stages", err)) == 1) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        int w = snprintf(row->stages_done + len, sizeof row->stages_done - len, "%s%s",
                         len ? " " : "", name ? name : "?");
        if (w > 0) len += (size_t)w;
        if (len >= sizeof row->stages_done) len = sizeof row->stages_done - 1;
    }
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}

int ad_store_rounds(ad_store *st, ad_store_round_row **rows, size_t *n, ad_error *err) {
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *s;
    if (store_prepare(
            st, &s, "read rounds", err,
            "SELECT r.round, r.status, r.reason, r.started_at, r.finished_at,"
            " (SELECT coalesce(sum(seconds), 0) FROM stages g"
            "   WHERE g.run_id = r.run_id AND g.round = r.round),"
            " (SELECT count(*) FROM samples x WHERE x.run_id = r.run_id AND x.round = r.round),"
            " (SELECT coalesce(sum(kept), 0) FROM samples x"
            "   WHERE x.run_id = r.run_id AND x.round = r.round)"
            " FROM rounds r WHERE r.run_id = ?1 ORDER BY r.round",
            "R"))
        return AD_ERR;
    ad_store_round_row *v = NULL;
    size_t cap = 0, count = 0;
    int rc;
    while ((rc = store_step(st, s, "read rounds", err)) == 1) {
        if (store_reserve(st, (void **)&v, &cap, count, sizeof *v, "read rounds", err)) {
            rc = -1;
            break;
        }
        ad_store_round_row *row = &v[count++];
        memset(row, 0, sizeof *row);
        if (store_col_round(st, s, 0, &row->round, "read rounds", err)) {
            rc = -1;
            break;
        }
        row->status = status_from_text((const char *)sqlite3_column_text(s, 1));
        const char *reason = (const char *)sqlite3_column_text(s, 2);
        snprintf(row->reason, sizeof row->reason, "%s", reason ? reason : "");
        row->started_at = store_col_double(s, 3);
        row->finished_at = store_col_double(s, 4);
        row->stage_seconds = store_col_double(s, 5);
        row->n_samples = (size_t)sqlite3_column_int64(s, 6);
        row->n_kept = (size_t)sqlite3_column_int64(s, 7);
    }
    sqlite3_finalize(s);
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (read_stage_names(st, &v[i], err)) rc = -1;
    if (rc < 0) {
        free(v);
        return AD_ERR;
    }
    *rows = v;
    *n = count;
    return AD_OK;
}

/* ---- per-step figures ------------------------------------------------------ */

int ad_store_step_metrics_insert(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                                 size_t step, const char *const *keys, const double *values,
                                 size_t n, ad_error *err) {
    int own;
    if (store_tx_enter(st, &own, "record step figures", err)) return AD_ERR;
    int rc = AD_OK;
    for (size_t i = 0; rc == AD_OK && i < n; i++)
        rc = store_exec(st, "record step figures", err, NULL,
                        "INSERT INTO step_metrics(run_id, round, stage, lineage, step, key, value)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        "RITIITD", (int64_t)round, stage, lineage, (int64_t)step, keys[i],
                        values[i]);
    return store_tx_leave(st, own, rc, "record step figures", err);
}

int ad_store_step_metrics_truncate(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                                   size_t from_step, ad_error *err) {
    return store_exec(st, "truncate step figures", err, NULL,
                      "DELETE FROM step_metrics WHERE run_id = ?1 AND round = ?2 AND stage = ?3"
                      " AND lineage = ?4 AND step >= ?5",
                      "RITII", (int64_t)round, stage, lineage, (int64_t)from_step);
}

int ad_store_step_metrics_foreach(ad_store *st, const char *stage, ad_store_step_metric_fn fn,
                                  void *ctx, ad_error *err) {
    sqlite3_stmt *s;
    if (store_prepare(st, &s, "read step figures", err,
                      "SELECT round, stage, lineage, step, key, value FROM step_metrics"
                      " WHERE run_id = ?1 AND (?2 IS NULL OR stage = ?2)"
                      " ORDER BY round, stage, lineage, step, key",
                      "RT", stage))
        return AD_ERR;
    int rc;
    while ((rc = store_step(st, s, "read step figures", err)) == 1) {
        ad_store_step_metric m = {.stage = (const char *)sqlite3_column_text(s, 1),
                                  .lineage = sqlite3_column_int64(s, 2),
                                  .step = (size_t)sqlite3_column_int64(s, 3),
                                  .key = (const char *)sqlite3_column_text(s, 4),
                                  .value = store_col_double(s, 5)};
        if (store_col_round(st, s, 0, &m.round, "read step figures", err)) {
            rc = -1;
            break;
        }
        if (!m.stage || !m.key) {
            rc = -1;
            ad_error_set(err, "%s: read step figures: out of memory", st->path);
            break;
        }
        if (fn(ctx, &m, err)) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc < 0 ? AD_ERR : AD_OK;
}
