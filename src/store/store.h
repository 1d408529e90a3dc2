/* store.h: the run store, one SQLite database per run directory.
 *
 * It records what a run did: the run and its lineages, each round's status
 * (running, accepted, rolled back and why) and curriculum cursor, the levels
 * each round used, every candidate with its filter decisions, the preference
 * pairs made of them and their reference log-probs, evaluations, checkpoints,
 * and free-form per-stage figures. It is also the run's memory for resume: a stage is done
 * exactly when its marker row exists, and the marker is written in the same
 * transaction as the stage's figures:
 *
 *     ad_store_begin(st, &err);
 *     ad_store_samples_insert(st, "select", rows, n, &err);
 *     ad_store_stage_metric(st, round, "select", -1, "kept", kept, &err);
 *     ad_store_stage_done(st, round, "select", -1, seconds, &err);
 *     ad_store_commit(st, &err);          // all of it, or none of it
 *
 * so a crash never leaves a stage half recorded; an interrupted stage is
 * redone after ad_store_delete_stage. Every write function also works outside
 * an explicit transaction (it then commits on its own).
 *
 * The database runs in WAL mode with foreign keys on, synchronous=FULL (a
 * committed marker survives power loss) and a busy timeout, so `autodidact
 * status` can read while a run writes. Every error message names the database
 * path and the step that failed: "runs/x/run.db: insert samples: UNIQUE
 * constraint failed: ...". A file that is not a SQLite database, or a SQLite
 * database that is not a run store, or one of a newer schema version, is
 * refused at open. A store of an older version is migrated in place when
 * opened (one transaction: all of it, or the file as it was); docs/checkpoint.md
 * lists the versions.
 *
 * Lineage -1 means "the whole round" (a stage that is not per lineage); in
 * deletions it means "every lineage". A level's b is AD_LEVEL_SCALAR (-1) for
 * one-integer levels. NaN figures are stored as NULL and read back as NaN.
 *
 * Not here: deciding what to record (src/loop) or the checkpoint files
 * themselves (src/model/checkpoint.h). */
#ifndef AD_STORE_STORE_H
#define AD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"
#include "util/level.h"

#define AD_STORE_SCHEMA_VERSION 3
#define AD_STORE_APPLICATION_ID 0x61644462 /* "adDb", in the SQLite header */
#define AD_STORE_BUSY_TIMEOUT_MS 10000

typedef struct ad_store ad_store;

/* Opens the run store at path. With create = 1 a missing file (or an empty
 * SQLite database) gets the schema; with create = 0 it must already be a run
 * store. A store of an older schema version is migrated to this one, under
 * the write lock and in one transaction; on error ("PATH: migrate schema
 * 1 -> 2: ...") the file is left as it was. Refuses non-database files,
 * foreign databases and newer schema versions. On error *out is NULL. */
int ad_store_open(const char *path, int create, ad_store **out, ad_error *err);

/* Opens the run store at path for reading only (reports, status, export): it
 * never writes the file or its directory (no -wal or -shm is left behind),
 * needs no write permission on either and never blocks a run writing it (WAL
 * readers see the last commit). When no writer has the store open (no
 * PATH-wal), the file is opened immutable. A store of an older schema
 * version is copied into memory and migrated there, so every reading
 * function works on it and the file stays as it was. Refuses what
 * ad_store_open refuses. Write functions fail ("attempt to write a readonly
 * database"), except on the in-memory copy of an older store, where they
 * change only the copy. On error *out is NULL. */
int ad_store_open_readonly(const char *path, ad_store **out, ad_error *err);

/* The longest database path the store accepts, in bytes: SQLite's limit on
 * the absolute path (of the default VFS; 512 on Unix). A longer path fails at
 * open; a caller that makes files beside the store checks it first. This
 * function can't fail. */
size_t ad_store_path_max(void);

/* Closes the store; an open transaction is rolled back. Safe on NULL. */
void ad_store_close(ad_store *st);

/* The path given to ad_store_open. */
const char *ad_store_path(const ad_store *st);

/* ---- transactions -------------------------------------------------------- */

/* Starts a write transaction (BEGIN IMMEDIATE). Transactions do not nest. */
int ad_store_begin(ad_store *st, ad_error *err);

/* Commits the open transaction; on error it is rolled back. */
int ad_store_commit(ad_store *st, ad_error *err);

/* Rolls back the open transaction, if any. This function can't fail. */
void ad_store_rollback(ad_store *st);

/* ---- the run ------------------------------------------------------------- */

/* Creates a run (name unique in this database) with its seed and config
 * snapshot (INI text), and selects it for every later call. */
int ad_store_run_create(ad_store *st, const char *name, uint64_t seed, const char *config,
                        ad_error *err);

/* Selects an existing run by name; fills *seed and, when config is not NULL,
 * *config (malloc'd). When name is NULL the only run is selected (an error if
 * there are none or several). */
int ad_store_run_select(ad_store *st, const char *name, uint64_t *seed, char **config,
                        ad_error *err);

/* The selected run's identity: a 64-bit mix of its row (id, seed, creation
 * time to the microsecond), fixed for the run's life and, with overwhelming
 * probability, different for every run ever created, also in the same
 * directory with the same config. Checkpoints carry it (src/loop). */
int ad_store_run_identity(ad_store *st, uint64_t *identity, ad_error *err);

/* Records lineage number `lineage` (0, 1, ...) and its seed. */
int ad_store_lineage_add(ad_store *st, size_t lineage, uint64_t seed, ad_error *err);

/* Number of lineages recorded for the selected run. */
int ad_store_lineage_count(ad_store *st, size_t *n, ad_error *err);

/* ---- rounds and stages --------------------------------------------------- */

typedef enum ad_round_status {
    AD_ROUND_RUNNING = 0,
    AD_ROUND_ACCEPTED = 1,
    AD_ROUND_ROLLED_BACK = 2,
} ad_round_status;

/* "running", "accepted", "rolled_back". This function can't fail. */
const char *ad_round_status_name(ad_round_status s);

/* Records that a round started (status running). Round 0 is base training. */
int ad_store_round_begin(ad_store *st, uint32_t round, ad_error *err);

/* Records a round's outcome: accepted, or rolled back with a reason. */
int ad_store_round_finish(ad_store *st, uint32_t round, int accepted, const char *reason,
                          ad_error *err);

/* One round's row, as the round driver reads its own state back. */
typedef struct ad_store_round {
    uint32_t round;
    ad_round_status status;
    int64_t cursor; /* curriculum cursor after the round's acquire; -1 when not recorded */
} ad_store_round;

/* One round's row; *found = 0 when the round was never begun. A cheap single
 * query, unlike ad_store_rounds (a reporting query for `status`). */
int ad_store_round_get(ad_store *st, uint32_t round, ad_store_round *out, int *found,
                       ad_error *err);

/* Records the curriculum cursor of a begun round (error when never begun);
 * a second call overwrites the first. */
int ad_store_round_set_cursor(ad_store *st, uint32_t round, size_t cursor, ad_error *err);

/* The highest accepted round < before; *found = 0 when there is none. */
int ad_store_last_accepted(ad_store *st, uint32_t before, uint32_t *round, int *found,
                           ad_error *err);

/* Marks a stage of a round done after `seconds` of work. Write it in the same
 * transaction as the stage's figures. Marking twice is an error. */
int ad_store_stage_done(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                        double seconds, ad_error *err);

/* *done = 1 when the marker exists (for lineage -1: the whole-round marker). */
int ad_store_stage_is_done(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                           int *done, ad_error *err);

/* The seconds recorded with a stage's done marker; *found = 0 without one. */
int ad_store_stage_seconds(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                           double *seconds, int *found, ad_error *err);

/* Records one figure of a stage (tokens/s, loss, kept fraction, ...). */
int ad_store_stage_metric(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                          const char *key, double value, ad_error *err);

/* Records figures of one step of a stage: keys[i] = values[i] for i < n (a
 * sampled per-step series: loss, learning rate, rewards...). Recording a
 * (round, stage, lineage, step, key) twice is an error. */
int ad_store_step_metrics_insert(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                                 size_t step, const char *const *keys, const double *values,
                                 size_t n, ad_error *err);

/* Deletes the figures of steps >= from_step of a stage (a stage resumed from a
 * partial checkpoint at from_step redoes those steps). */
int ad_store_step_metrics_truncate(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                                   size_t from_step, ad_error *err);

/* One per-step figure as read back. */
typedef struct ad_store_step_metric {
    uint32_t round;
    const char *stage;
    int64_t lineage;
    size_t step;
    const char *key;
    double value;
} ad_store_step_metric;

/* Calls fn for each per-step figure of the selected run (of one stage, or
 * all when stage is NULL), ordered by round, stage, lineage, step, key. The
 * strings live until fn returns. */
typedef int (*ad_store_step_metric_fn)(void *ctx, const ad_store_step_metric *m, ad_error *err);
int ad_store_step_metrics_foreach(ad_store *st, const char *stage, ad_store_step_metric_fn fn,
                                  void *ctx, ad_error *err);

/* Reads one figure; *found = 0 when absent. */
int ad_store_stage_metric_get(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                              const char *key, double *value, int *found, ad_error *err);

/* Deletes everything a stage recorded in a round (its samples, pairs, pair
 * log-probs, evaluations, checkpoints rows, figures and marker), for redoing
 * an interrupted stage. lineage -1 deletes the rows of every lineage; a pair
 * belongs to both lineages it was made from. Atomic. The round's levels and
 * cursor are not a stage's rows: see ad_store_levels_delete and
 * ad_store_round_set_cursor. */
int ad_store_delete_stage(ad_store *st, uint32_t round, const char *stage, int64_t lineage,
                          ad_error *err);

/* Deletes a round and everything recorded in it. Atomic. */
int ad_store_delete_round(ad_store *st, uint32_t round, ad_error *err);

/* ---- levels, samples, evaluations, checkpoints --------------------------- */

/* Records the levels a round used in a role ("train", "eval", "base"), with a
 * count for each (prompts posed; may be NULL for zeros). */
int ad_store_levels_insert(ad_store *st, uint32_t round, const char *role, const ad_level *levels,
                           const size_t *counts, size_t n, ad_error *err);

/* Deletes the levels of a round in a role (every role when role is NULL).
 * Levels belong to the round, not to a stage: a redo of the stage that
 * recorded them calls this next to ad_store_delete_stage, in one transaction. */
int ad_store_levels_delete(ad_store *st, uint32_t round, const char *role, ad_error *err);

/* The levels of a round in a role, in level order (malloc'd; *n may be 0). */
int ad_store_levels_get(ad_store *st, uint32_t round, const char *role, ad_level **levels,
                        size_t *n, ad_error *err);

/* One candidate as stored. */
typedef struct ad_store_sample {
    uint32_t round;
    const char *stage; /* the stage that recorded it (set when reading) */
    size_t lineage;
    size_t prompt_index;
    size_t sample_index;
    ad_level level;
    const char *prompt;
    const char *completion;
    size_t n_tokens;
    double logprob; /* sum of token log-probs */
    int hit_eos;
    uint32_t filters_ran; /* bit (1u << ad_filter_id) per filter that judged it */
    uint32_t filters_passed;
    int kept;
    int correct;  /* 1, 0, or -1 for unknown (stored as NULL) */
    double score; /* a learned judge's probability that it is right; NaN when not scored
                     (stored as NULL) */
} ad_store_sample;

/* Inserts n candidates recorded by `stage` (one prepared statement, one
 * transaction unless the caller holds one). On error none of them is stored
 * (when this call owns the transaction). */
int ad_store_samples_insert(ad_store *st, const char *stage, const ad_store_sample *rows, size_t n,
                            ad_error *err);

/* Calls fn for each candidate of a round (of one stage, or any when stage is
 * NULL), ordered by prompt, lineage, sample. The row's strings live until fn
 * returns. fn returning AD_ERR stops the walk and is returned. */
typedef int (*ad_store_sample_fn)(void *ctx, const ad_store_sample *row, ad_error *err);
int ad_store_samples_foreach(ad_store *st, uint32_t round, const char *stage, ad_store_sample_fn fn,
                             void *ctx, ad_error *err);

/* Sets the score of n candidates of a round recorded by `stage`, each named by
 * (prompt_index, lineage, sample_index) of keys[i] (other fields ignored);
 * scores[i] NaN stores NULL. One transaction unless the caller holds one; an
 * unknown candidate is an error (nothing is changed when this call owns the
 * transaction). The judge stage records its verdicts this way. */
int ad_store_samples_set_score(ad_store *st, uint32_t round, const char *stage,
                               const ad_store_sample *keys, const double *scores, size_t n,
                               ad_error *err);

/* One evaluation figure. */
typedef struct ad_store_eval {
    uint32_t round;
    int64_t lineage; /* -1: not per lineage (e.g. a vote across lineages) */
    ad_level level;
    const char *metric; /* "accuracy", "pass@8", "maj@8", "diversity", ... */
    double value;
    size_t n; /* problems it is over */
} ad_store_eval;

/* Inserts n evaluation figures recorded by `stage`. */
int ad_store_evals_insert(ad_store *st, const char *stage, const ad_store_eval *rows, size_t n,
                          ad_error *err);

/* The series of one metric of one lineage: every (round, level) cell, ordered
 * by level then round (malloc'd; metric pointers are NULL). For the accuracy
 * grid of `autodidact status`. */
int ad_store_eval_series(ad_store *st, const char *metric, int64_t lineage, ad_store_eval **cells,
                         size_t *n, ad_error *err);

/* Records a checkpoint file of a round and lineage, written by `stage`, with
 * the round it continued from (-1: none). */
int ad_store_checkpoint_insert(ad_store *st, uint32_t round, int64_t lineage, const char *stage,
                               const char *path, int64_t parent_round, ad_error *err);

/* The checkpoint of a round and lineage; *found = 0 when none. path gets at
 * most cap bytes (an error when it does not fit). */
int ad_store_checkpoint_get(ad_store *st, uint32_t round, int64_t lineage, char *path, size_t cap,
                            int64_t *parent_round, int *found, ad_error *err);

/* ---- preference pairs ----------------------------------------------------- */

/* One preference pair of a round, made by the select stage (stored with stage
 * 'select'): two completions of one prompt, the chosen one preferred. */
typedef struct ad_store_pair {
    uint32_t round;
    size_t pair_index; /* 0..n-1 within the round */
    const char *rule;  /* the pair rule that made it: "verifier", "vote", ... (may be NULL) */
    size_t prompt_index;
    ad_level level;
    const char *prompt, *chosen, *rejected; /* completions without EOS */
    size_t chosen_lineage, chosen_sample, rejected_lineage, rejected_sample;
    int chosen_correct, rejected_correct; /* 1, 0, or -1 unknown (NULL) */
} ad_store_pair;

/* Inserts n pairs (one transaction unless the caller holds one). On error
 * none of them is stored (when this call owns the transaction). */
int ad_store_pairs_insert(ad_store *st, const ad_store_pair *rows, size_t n, ad_error *err);

/* Calls fn for each pair of a round, ordered by pair_index. The row's strings
 * live until fn returns. fn returning AD_ERR stops the walk and is returned. */
typedef int (*ad_store_pair_fn)(void *ctx, const ad_store_pair *row, ad_error *err);
int ad_store_pairs_foreach(ad_store *st, uint32_t round, ad_store_pair_fn fn, void *ctx,
                           ad_error *err);

/* Stores the frozen reference model's teacher-forced log-probs (sums over the
 * completion's tokens, nats) of pairs 0..n-1 of a round for one lineage (each
 * lineage's reference is its weights at the start of the round); recorded by
 * the optimize stage. NaN is stored as NULL. */
int ad_store_pair_logps_insert(ad_store *st, uint32_t round, size_t lineage,
                               const double *ref_chosen, const double *ref_rejected, size_t n,
                               ad_error *err);

/* Reads them back in pair order (malloc'd arrays; *n = 0 and NULLs when
 * none). An error when the stored pair indices are not exactly 0..n-1. */
int ad_store_pair_logps_get(ad_store *st, uint32_t round, size_t lineage, double **ref_chosen,
                            double **ref_rejected, size_t *n, ad_error *err);

/* ---- queries for `autodidact status` -------------------------------------- */

typedef struct ad_store_round_row {
    uint32_t round;
    ad_round_status status;
    char reason[256];
    double started_at, finished_at; /* Unix seconds; finished_at NaN while running */
    char stages_done[256];          /* distinct stage names, in the order they finished */
    double stage_seconds;           /* sum over the round's stage markers */
    size_t n_samples, n_kept;
} ad_store_round_row;

/* Every round of the selected run, in round order (malloc'd; *n may be 0). */
int ad_store_rounds(ad_store *st, ad_store_round_row **rows, size_t *n, ad_error *err);

/* ---- export --------------------------------------------------------------- */

/* Writes a round's candidates (of one stage, or all when NULL) as JSON lines:
 * {"prompt","completion","level","logprob","kept","correct","lineage"} with
 * level a number or [a, b] and correct true/false/null. *n_written counts them. */
int ad_store_export_jsonl(ad_store *st, uint32_t round, const char *stage, FILE *out,
                          size_t *n_written, ad_error *err);

/* Writes a round's preference pairs as JSON lines, in pair order:
 * {"prompt","chosen","rejected"} (the fields TRL's DPOTrainer reads) plus
 * "level" (a number or [a, b]), "rule", "chosen_correct", "rejected_correct"
 * (true/false/null), "chosen_lineage", "rejected_lineage". *n_written counts
 * them. */
int ad_store_export_pairs_jsonl(ad_store *st, uint32_t round, FILE *out, size_t *n_written,
                                ad_error *err);

#endif
