/* run_internal.h: the state of an open run, shared by the stage files
 * (run.c, run_round.c, run_artifacts.c and one file per stage), the artifacts
 * the stages hand each other, and the stage functions.
 * Not a public header. */
#ifndef AD_LOOP_RUN_INTERNAL_H
#define AD_LOOP_RUN_INTERNAL_H

#include <stdio.h>

#include "dist/dist_buf.h"
#include "loop/complete.h"
#include "loop/curriculum.h"
#include "loop/evaluate.h"
#include "loop/filters.h"
#include "loop/objective.h"
#include "loop/train_driver.h"
#include "loop/run_names.h"
#include "loop/run.h"
#include "model/model.h"
#include "model/trainer.h"
#include "model/vocab.h"
#include "store/store.h"
#include "tasks/task.h"
#include "util/vec.h"

/* One training set: the labelled base generator (examples made on demand) or a
 * round's kept labels (encoded once). */
typedef struct run_set {
    size_t round;         /* 0 = base */
    size_t n_levels;      /* its weight in the mixture */
    size_t n_examples;    /* for the base set: a large virtual count */
    ad_example *examples; /* NULL for the base set */
} run_set;

/* ---- the artifacts that flow between the stages of a round ----------------
 * Each is held in memory while a round runs and is written to the store as
 * its durable record; a stage resumed in a new process reloads its inputs
 * through the artifact's loader (run_artifacts.c). */

/* A round's candidates (acquire -> select): the filters' view and the store
 * rows, index for index. select fills the decisions in both. */
typedef struct run_candidates {
    size_t n;
    ad_candidate *c;
    ad_store_sample *rows;
    char **texts; /* [2n] owned copies: prompt and completion of candidate i at 2i, 2i+1 */
} run_candidates;

/* One kept label of a round. */
typedef struct run_label {
    char *prompt, *completion;
} run_label;

/* One preference pair of a round (owned strings). */
typedef struct run_pair {
    size_t prompt_index;
    ad_level level;
    char *rule, *prompt, *chosen, *rejected;
    size_t chosen_lineage, chosen_sample, rejected_lineage, rejected_sample;
    int chosen_correct, rejected_correct; /* reporting only */
} run_pair;

/* A round's selection (select -> optimize): its kept labels and its pairs. */
typedef struct run_selection {
    ad_vec labels; /* run_label */
    ad_vec pairs;  /* run_pair */
} run_selection;

/* The round being run: where it starts and the artifacts made so far. */
typedef struct run_round {
    size_t round;
    size_t parent;        /* the last accepted round before it: its weights start this round */
    size_t cursor_before; /* curriculum cursor after the parent */
    size_t cursor;        /* after this round's acquire (round 0: 0) */
    int have_cursor;
    int32_t top_level;     /* highest level it trains (a pair: its larger side); 0: not known */
    run_candidates *cands; /* NULL until made or loaded */
    run_selection *sel;    /* NULL until made or loaded */
} run_round;

/* Frees the artifacts; safe on NULL and on partly filled ones. */
void run_candidates_free(run_candidates *c);
void run_selection_free(run_selection *s);

/* An empty selection (NULL when out of memory), and adding to one (strings
 * copied; on error nothing is added). */
run_selection *run_selection_new(void);
int run_selection_add_label(run_selection *s, const char *prompt, const char *completion,
                            ad_error *err);
int run_selection_add_pair(run_selection *s, const ad_store_pair *row, ad_error *err);

/* Pair p as the store row of pair `index` of a round (strings borrowed). */
ad_store_pair run_pair_row(const run_pair *p, size_t round, size_t index);

/* Candidates from store rows (strings copied; decisions reset). */
int run_candidates_from_rows(const ad_store_sample *rows, size_t n, run_candidates **out,
                             ad_error *err);

/* The loaders: read a finished stage's artifact of `round` back from the store. */
int run_candidates_load(ad_run *run, size_t round, run_candidates **out, ad_error *err);
int run_selection_load(ad_run *run, size_t round, run_selection **out, ad_error *err);

/* rr->cands / rr->sel, loading them when a previous process made them. */
int run_round_candidates(ad_run *run, run_round *rr, ad_error *err);
int run_round_selection(ad_run *run, run_round *rr, ad_error *err);

/* A run directory's path is checked when the run is created or opened, before
 * anything is written: shorter than AD_RUN_DIR_MAX bytes, and short enough
 * that DIR/run.db stays within SQLite's limit on the absolute path (512 bytes,
 * the tighter bound). So every path the stages make from run->dir (DIR plus
 * at most 256 bytes: ckpt/lNN/rNNNN or /partial with the checkpoint's own file
 * and temporary names, data/round-NNNN.jsonl, ckpt/judge/rNNNN, log.txt,
 * lock) fits a buffer of AD_RUN_PATH_MAX bytes, and the path helpers below
 * cannot truncate (were one to, it would give "", which no file has). */
#define AD_RUN_DIR_MAX 1024
#define AD_RUN_PATH_MAX 2300

struct ad_run {
    char dir[AD_RUN_DIR_MAX]; /* without trailing slashes */
    ad_run_config cfg;
    ad_store *st;
    ad_task *task;      /* prompts, evaluation, verification: operands of the level's length */
    ad_task *base_task; /* labelled base data (task.independent_lengths applies here only) */
    ad_vocab vocab;
    size_t max_len; /* model max_seq_len */
    ad_curriculum cur;
    run_set *sets; /* base + accepted rounds, oldest first */
    size_t n_sets;
    FILE *log;            /* NULL for a reader */
    int lock_fd;          /* the writer's lock on DIR/lock; -1 for a reader */
    uint64_t identity;    /* the run's (ad_store_run_identity): in every checkpoint */
    uint64_t config_hash; /* of the resolved config text: in every checkpoint */
    /* under mpirun (run_dist.c): ranks per lineage (1 unless there are more
     * ranks than lineages), and the group of ranks sharing this rank's
     * lineage's steps (NULL: none, or alone) */
    size_t lineage_ranks;
    struct ad_dist_group *group;
};

/* Logs a line to stderr and DIR/log.txt. */
void run_log(ad_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Paths inside the run directory, into buf (cap >= AD_RUN_PATH_MAX: see
 * AD_RUN_DIR_MAX). */
void run_ckpt_path(const ad_run *run, size_t lineage, size_t round, char *buf, size_t cap);
void run_partial_path(const ad_run *run, size_t lineage, char *buf, size_t cap);
void run_data_path(const ad_run *run, size_t round, char *buf, size_t cap);

/* The weight-initialisation seed of lineage l (recorded in the store). */
uint64_t run_lineage_seed(const ad_run *run, size_t lineage);

/* The trainer state text of a checkpoint of this run: `json` (a JSON object,
 * or NULL for an empty one) with "run" and "config" set to this run's, and
 * "round" and "lineage" (malloc'd; NULL when out of memory or not an object). */
char *run_stamp_state(const ad_run *run, const char *json, size_t round, size_t lineage);

/* Checks that a checkpoint's trainer state (NULL: none) names this run; one
 * that names no run predates names and passes. */
int run_check_identity(const ad_run *run, const char *path, const char *json, ad_error *err);

/* Raises a loaded model's max_seq_len to the run's: a run resumed with more
 * rounds poses longer problems than its earlier checkpoints were made for, and
 * the bound is all that max_seq_len is (no parameter depends on it). */
void run_fit_max_len(const ad_run *run, ad_model *m);

/* Loads the model (and optimizer, trainer state) of lineage l as of round r. */
int run_load_model(ad_run *run, size_t lineage, size_t round, ad_model **m, ad_error *err);

/* Decodes k candidates (greedy + k-1 sampled at `temperature`) for n prompts
 * with lineage l's model m: out[i*k + j]. `first` is the round-wide index of
 * prompts[0], so that a prompt's samples do not depend on how the prompts are
 * chunked. Seeds: ad_seed(run, l, round, stage, 0 greedy | 1 sampled, 0). */
int run_decode_candidates(ad_run *run, ad_model *m, size_t l, size_t round, ad_seed_stage stage,
                          float temperature, const char *const *prompts, size_t first, size_t n,
                          size_t k, ad_completion *out, ad_error *err);

/* Label-free drift: the share of the probe's prompts at level lv (the same
 * prompts as run_self_consistency's) on which lineage l's models `before` and
 * `after` give the same finished greedy answer. */
int run_agreement(ad_run *run, ad_model *before, ad_model *after, size_t l, size_t round,
                  ad_level lv, double *agree, ad_error *err);

/* Sets c[i].correct for n candidates from the task's checker (an answer that
 * never reached EOS is wrong), prompt_of(ctx, i) naming candidate i's prompt;
 * in batches, which an external verifier checks in parallel (run_select.c). */
int run_verify_candidates(ad_run *run, ad_candidate *c, size_t n,
                          const char *(*prompt_of)(const void *ctx, size_t i), const void *ctx,
                          ad_error *err);

/* ok[i] = 1 when the task's checker finds answers[i] right for prompts[i]
 * (i < n), in batches, which an external verifier checks in parallel. */
int run_verify_answers(ad_run *run, const char *const *prompts, const char *const *answers,
                       size_t n, unsigned char *ok, ad_error *err);

/* run_verify_candidates spread over the ranks under mpirun, rank 0's side
 * (run_dist_verify.c): rank r of N checks candidates [r n / N, (r + 1) n / N)
 * and rank 0 puts the verdicts in candidate order, as one process would.
 * Alone it is run_verify_candidates. `round` names the work in messages. */
int run_dist_verify_candidates(ad_run *run, size_t round, ad_candidate *c, size_t n,
                               const char *(*prompt_of)(const void *ctx, size_t i), const void *ctx,
                               ad_error *err);

/* The select stage's filter settings from select.* (the judge filter included). */
ad_filter_params run_filter_params(const ad_run_config *c);

/* acquire.auto_temperature: what each temperature of the grid scored on the
 * probe, and the one chosen (the highest balance; ties: the earlier). */
typedef struct run_temperature_pick {
    size_t n, best;
    int proxy; /* 1: "correct" was agreement with the prompt's majority (label-free) */
    float t[AD_TEMPERATURE_GRID_MAX];
    double balance[AD_TEMPERATURE_GRID_MAX], distinct[AD_TEMPERATURE_GRID_MAX];
    double precision[AD_TEMPERATURE_GRID_MAX], kept[AD_TEMPERATURE_GRID_MAX];
} run_temperature_pick;

/* Tries every temperature of acquire.temperature_grid on the round's probe
 * (run_temperature.c). models[L] are the lineages' models of round `parent`;
 * under mpirun the probe's decoding and verdicts are spread over the ranks. */
int run_pick_temperature(ad_run *run, size_t round, size_t parent, ad_model *const *models,
                         size_t L, const ad_level_list *levels, run_temperature_pick *out,
                         ad_error *err);

/* Label-free self-consistency at a level: the mean share of the modal answer
 * over the m models' greedy answers (m >= 2), or over k samples of one model,
 * on curriculum.probe fresh prompts drawn for `round`. With from >= 0 (the
 * models are round `from`'s checkpoints, one per lineage, which the workers
 * load) the decoding is spread over the ranks by (lineage, prompt) units
 * (run_dist_acquire); -1: on this rank. */
int run_self_consistency(ad_run *run, ad_model *const *models, size_t m, size_t round, long from,
                         ad_level lv, double *score, ad_error *err);

/* The round's training settings (round 0: base.*, later rounds: round.*,
 * with round.lr lowered past round.lr_level by rr->top_level). */
ad_train_config run_train_config(const ad_run *run, const run_round *rr);

/* The highest of n levels, a pair counting as its larger side (0: none). */
int32_t run_levels_top(const ad_level *lv, size_t n);

/* rr->top_level from the round's n trained levels lv, logging the round's
 * lowered lr when round.lr_level applies. */
void run_round_set_top_level(ad_run *run, run_round *rr, const ad_level *lv, size_t n);

/* The same from the round's trained levels in the store (rank 0). */
int run_round_top_level(ad_run *run, run_round *rr, ad_error *err);

/* Gets lineage l's trainer ready for round rr (run_trainer.c): a partial
 * checkpoint of this round (*resumed = 1), else round 0's fresh model, else
 * the parent round's state with a restarted schedule. A partial checkpoint is
 * adopted only when it names this run, this config and this round: one of
 * another run or config (a directory reused, a config edited) is logged and
 * left to be overwritten. A parent checkpoint that names another run is an
 * error (one without a name predates names and is trusted). On error *m may
 * hold a model for the caller to free. */
int run_prepare_trainer(ad_run *run, const run_round *rr, size_t l, const ad_train_config *tc,
                        ad_model **m, ad_trainer *tr, int *resumed, ad_error *err);

/* Saves the trainer (model, optimizer, state with round and lineage, and the
 * run's identity and config hash: "run" and "config", 16 hex digits each) to
 * path. */
int run_save_trainer(ad_run *run, const char *path, ad_trainer *tr, size_t round, size_t l,
                     ad_error *err);

/* The stages: each reads its inputs from rr (loading them when needed),
 * writes its outputs to rr and to the store, and returns at once when its done
 * marker is set (see the table in run.h). */
int run_stage_acquire(ad_run *run, run_round *rr, ad_error *err);
int run_stage_levels(ad_run *run, run_round *rr, ad_error *err);
int run_stage_rl(ad_run *run, run_round *rr, ad_error *err);

/* ---- the rl stage's pieces that run_dist.c shares (run_rl.c) --------------- */

/* What a worker rank's rl lineage leaves instead of records: its per-step
 * figures (run_rl_figures_put's messages), its trained checkpoint in save_to
 * (a local directory), the step it started from and its seconds. */
typedef struct run_rl_worker {
    ad_dist_buf figures;
    const char *save_to;
    size_t start;
    double seconds;
} run_rl_worker;

/* Runs rl for every lineage l with todo[l] != 0 (todo[lineages]) whose rank
 * (run_dist_lineage_rank) is only_rank (any when only_rank < 0), at the
 * round's n levels lv. wk NULL (rank 0, or alone): partial checkpoints,
 * figures, checkpoint and done marker recorded as always. wk set (a worker):
 * nothing written to the run; the outputs go to wk (one lineage per call). */
int run_rl_lineages(ad_run *run, run_round *rr, const ad_level *lv, size_t n, const uint64_t *todo,
                    int only_rank, run_rl_worker *wk, ad_error *err);

/* Records lineage l's rl result (its checkpoint at path, the done marker). */
int run_rl_record(ad_run *run, const run_round *rr, size_t l, const char *path, double seconds,
                  ad_error *err);

/* A step's figures (keys[n], v[n]) appended to a worker's message (run_dist.c). */
int run_rl_figures_put(ad_dist_buf *b, size_t step, const char *const *keys, const double *v,
                       size_t n, ad_error *err);

/* The rl stage under mpirun, rank 0's side (run_dist.c): lineage l trains on
 * its rank; rank 0 trains its own, then writes the others' checkpoints and
 * figures as it would its own. */
int run_dist_rl(ad_run *run, run_round *rr, const uint64_t *todo, const ad_level *lv, size_t n,
                ad_error *err);

/* The rank that trains lineage l (and reports it): l % ranks, or the first of
 * its group when ranks share lineages (run_dist.c). Alone: 0. */
int run_dist_lineage_rank(const ad_run *run, size_t l);
int run_stage_judge(ad_run *run, run_round *rr, ad_error *err);
int run_stage_select(ad_run *run, run_round *rr, ad_error *err);

/* DIR/ckpt/judge/rNNNN: the judge as round `round` left it. */
void run_judge_path(const ad_run *run, size_t round, char *buf, size_t cap);

/* The judge reward's frozen judge (rl.judge): run_judge_adopt checks it
 * against the task and copies it into DIR/ckpt/judge/reward when the run is
 * made (no-op when rl.judge is empty), so a resumed run never reads the
 * user's path again; run_judge_reward_load loads that copy. */
int run_judge_adopt(ad_run *run, ad_error *err);
int run_judge_reward_load(const ad_run *run, ad_model **m, ad_vocab *jv, ad_error *err);
int run_stage_optimize(ad_run *run, run_round *rr, ad_error *err);

/* ---- the optimize stage's pieces that run_dist.c shares (run_optimize.c) -- */

/* One recorded optimizer step (a worker rank buffers them for rank 0). */
typedef struct run_step_figures {
    size_t step;
    ad_objective_stats st;
} run_step_figures;

/* The objective of round `round` (base training is always sft); NULL: unknown. */
const ad_objective *run_round_objective(const ad_run *run, size_t round);

/* Builds run->sets, the SFT mixture's sets for optimizing rr; run_sets_clear
 * empties them. */
int run_optimize_sets(ad_run *run, run_round *rr, ad_error *err);
void run_sets_clear(ad_run *run);

/* Trains lineage l of rr, saves its checkpoint and records it (rank 0). */
int run_optimize_lineage(ad_run *run, run_round *rr, size_t l, const ad_objective *obj,
                         ad_error *err);

/* A worker rank's lineage: readies the trainer (from the shared run
 * directory's checkpoints) and trains it, with no store and no partial
 * checkpoints, the step figures into steps (run_step_figures). *start: the
 * step it began at (a partial checkpoint's). The caller frees *m and tr. */
int run_optimize_train(ad_run *run, run_round *rr, size_t l, const ad_objective *obj, ad_vec *steps,
                       ad_model **m, ad_trainer *tr, ad_train_result *res, size_t *start,
                       ad_error *err);

/* Rank 0's records of a trained lineage: one step's figures; the checkpoint
 * row, final figures and done marker (after the checkpoint is durable). */
int run_optimize_record_step(ad_run *run, size_t round, size_t l, size_t step,
                             const ad_objective_stats *st, ad_error *err);
int run_optimize_record(ad_run *run, size_t round, size_t l, const char *path, long parent,
                        const ad_train_result *res, double seconds, ad_error *err);

/* ---- more than one process (run_dist.c) -------------------------------------- */

/* A worker rank's view of the run in dir: the config, task and vocabulary,
 * no lock, no store, no log (run.c). */
int run_open_worker(ad_run **out, const char *dir, ad_error *err);

/* The optimize stage on rank 0 under mpirun: lineage l is trained by rank
 * l % size; rank 0 writes every checkpoint and record. */
int run_dist_optimize(ad_run *run, run_round *rr, const ad_objective *obj, ad_error *err);

/* The evaluate stage under mpirun, rank 0's side: tells the workers to
 * evaluate the lineages l with todo[l] != 0 (todo[lineages]) at the n levels
 * lv, after which every rank calls run_evaluate_figures for each of them in
 * lineage order. Alone it does nothing. */
int run_dist_evaluate(ad_run *run, size_t round, const uint64_t *todo, const ad_level *lv, size_t n,
                      ad_error *err);

/* The acquire stage's decoding, by units: unit u is prompt u % n decoded by
 * lineage u / n (lineage-major), k candidates each (sample 0 greedy), with
 * the sampler streams of `stage` (AD_SEED_SAMPLE: the round's candidates;
 * AD_SEED_TEMPERATURE: auto-temperature's probe; AD_SEED_PROBE: the
 * curriculum's self-consistency probe). Decodes
 * units [from, to) into out[(to - from) * k] (unit u's candidate j at
 * out[(u - from) * k + j]) with models[l] for every lineage l the range
 * touches (the others may be NULL). A unit's candidates depend on nothing but
 * its lineage's model, its prompt and the prompt's index (sampler streams),
 * so any split of the units gives the same candidates (run_acquire.c). */
int run_decode_units(ad_run *run, size_t round, ad_model *const *models, ad_seed_stage stage,
                     float temperature, size_t k, const char *const *prompts, size_t n, size_t from,
                     size_t to, ad_completion *out, ad_error *err);

/* What run_decode_units decodes for `stage`, for the log ("acquire",
 * "temperature probe"). This function can't fail. */
const char *run_decode_units_name(ad_seed_stage stage);

/* The same spread over the ranks, rank 0's side (run_dist.c): the L * n units
 * are cut into one contiguous range per rank; the workers load the parent
 * round's models they need, decode their range and send it back; out[L * n * k]
 * then holds every unit's candidates in unit order, as run_decode_units over
 * [0, L * n) would (and alone is). */
int run_dist_acquire(ad_run *run, size_t round, size_t parent, ad_model *const *models,
                     ad_seed_stage stage, float temperature, size_t k, const char *const *prompts,
                     size_t n, ad_completion *out, ad_error *err);

/* Lineage l's held-out figures after `round` at the n levels lv
 * (run_evaluate.c): its checkpoint loaded and its problems spread over the
 * ranks (ad_evaluate_levels_spread); acc[n] is filled on rank 0 only. */
int run_evaluate_figures(ad_run *run, size_t round, size_t l, const ad_level *lv, size_t n,
                         ad_level_accuracy *acc, ad_error *err);

/* Refuses n ranks that the config's work cannot use (before a run is made or
 * opened): more than one rank per lineage unless n = lineages x G with G
 * dividing run.shards (run_dist_join.c). */
int run_dist_ranks_check(const ad_run_config *c, size_t n, ad_error *err);

/* Rank 0's commands to the workers (run_dist_serve dispatches them). */
enum {
    RUN_CMD_STOP = 0,
    RUN_CMD_OPTIMIZE = 1,
    RUN_CMD_EVALUATE = 2,
    RUN_CMD_ACQUIRE = 3,
    RUN_CMD_RL = 4,
    RUN_CMD_VERIFY = 5
};

/* Rank 0: broadcasts command `kind` (with the round it belongs to, its
 * parent and cursor) and then the payload; every worker's run_dist_serve
 * receives both. `what` names the payload in errors. */
int run_dist_command(uint64_t kind, size_t round, size_t parent, size_t cursor_before,
                     const ad_dist_buf *payload, const char *what, ad_error *err);

/* A worker's part of RUN_CMD_VERIFY: checks its range of the payload's
 * answers and sends the verdicts to rank 0 (run_dist_verify.c). */
int run_dist_serve_verify(ad_run *run, ad_dist_buf *b, ad_error *err);

/* A worker rank's part of ad_run_execute: rank 0's commands until it is done;
 * rank 0 ends them with run_dist_release (a no-op alone). */
int run_dist_serve(ad_run *run, ad_error *err);
int run_dist_release(ad_error *err);
int run_stage_evaluate(ad_run *run, run_round *rr, ad_error *err);
int run_stage_accept(ad_run *run, run_round *rr, ad_error *err);

#endif
