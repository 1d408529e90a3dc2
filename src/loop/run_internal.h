/* run_internal.h: the state of an open run, shared by the stage files
 * (run.c, run_acquire.c, run_select.c, run_optimize.c, run_evaluate.c).
 * Not a public header. */
#ifndef AD_LOOP_RUN_INTERNAL_H
#define AD_LOOP_RUN_INTERNAL_H

#include <stdio.h>

#include "loop/curriculum.h"
#include "loop/run.h"
#include "model/model.h"
#include "model/trainer.h"
#include "model/vocab.h"
#include "store/store.h"
#include "tasks/task.h"

/* One training set: the labelled base generator (examples made on demand) or a
 * round's kept labels (encoded once). */
typedef struct run_set {
    size_t round;        /* 0 = base */
    size_t n_levels;     /* its weight in the mixture */
    size_t n_examples;   /* for the base set: a large virtual count */
    ad_example *examples; /* NULL for the base set */
} run_set;

struct ad_run {
    char dir[2048];
    ad_run_config cfg;
    ad_store *st;
    ad_task *task;      /* prompts, evaluation, verification: operands of the level's length */
    ad_task *base_task; /* labelled base data (task.independent_lengths applies here only) */
    ad_vocab vocab;
    size_t max_len;     /* model max_seq_len */
    ad_curriculum cur;
    run_set *sets;      /* base + accepted rounds, oldest first */
    size_t n_sets;
    FILE *log;
};

/* Logs a line to stderr and DIR/log.txt. */
void run_log(ad_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Paths inside the run directory. */
void run_ckpt_path(const ad_run *run, size_t lineage, size_t round, char *buf, size_t cap);
void run_partial_path(const ad_run *run, size_t lineage, char *buf, size_t cap);
void run_data_path(const ad_run *run, size_t round, char *buf, size_t cap);

/* The weight-initialisation seed of lineage l (recorded in the store). */
uint64_t run_lineage_seed(const ad_run *run, size_t lineage);

/* The latest accepted round before `round` (0 = base). */
int run_last_accepted(ad_run *run, size_t round, size_t *out, ad_error *err);

/* Curriculum cursor after the latest accepted round before `round`. */
int run_cursor_before(ad_run *run, size_t round, size_t *cursor, ad_error *err);

/* Raises a loaded model's max_seq_len to the run's: a run resumed with more
 * rounds poses longer problems than its earlier checkpoints were made for, and
 * the bound is all that max_seq_len is (no parameter depends on it). */
void run_fit_max_len(const ad_run *run, ad_model *m);

/* Loads the model (and optimizer, trainer state) of lineage l as of round r. */
int run_load_model(ad_run *run, size_t lineage, size_t round, ad_model **m, ad_error *err);

/* Label-free self-consistency at a level: the mean share of the modal answer
 * over the m models' greedy answers (m >= 2), or over k samples of one model,
 * on curriculum.probe fresh prompts drawn for `round`. */
int run_self_consistency(ad_run *run, ad_model *const *models, size_t m, size_t round,
                         ad_level lv, double *score, ad_error *err);

/* The stages. Each checks its own done marker and returns at once when set. */
int run_stage_optimize(ad_run *run, size_t round, ad_error *err);
int run_stage_acquire(ad_run *run, size_t round, ad_error *err);
int run_stage_select(ad_run *run, size_t round, ad_error *err);
int run_stage_evaluate(ad_run *run, size_t round, ad_error *err);
int run_stage_accept(ad_run *run, size_t round, ad_error *err);

/* Loads a round's kept labels from the store into a new set (appended). */
int run_sets_add_round(ad_run *run, size_t round, size_t n_levels, ad_error *err);

#endif
