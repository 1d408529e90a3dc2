/* run.h: a self-improvement run: base training, then rounds of
 * acquire -> select -> optimize -> evaluate -> accept, kept in a run directory:
 *
 *   DIR/config.ini                 the resolved configuration (every key)
 *   DIR/run.db                     the run store (SQLite, see store/store.h)
 *   DIR/ckpt/lNN/rNNNN/            the checkpoint of lineage l after round r
 *   DIR/ckpt/lNN/partial/          the latest mid-stage checkpoint (resume)
 *   DIR/data/round-NNNN.jsonl      the labels a round kept (self-made data)
 *   DIR/log.txt                    the log lines of every session
 *   DIR/lock                       the writer's lock (flock), holding its PID
 *
 * A run directory is made whole or not at all (in a temporary directory
 * beside it, then renamed into place), only where no file is yet; one process
 * at a time writes it (run, resume), and readers (status, export, report,
 * `run --from`) take no lock and write nothing. Every checkpoint names the
 * run and config it was made by (run_trainer.c), so one left over from
 * another run or config is never taken for this run's.
 *
 * A round is a list of stages (run_round.c: round 0 is optimize, evaluate,
 * accept on labelled base data; later rounds run all five). The stages hand
 * each other typed artifacts, held in memory during a round; the store is
 * their durable record, and a stage resumed in a new process reloads its
 * inputs through one loader per artifact (run_artifacts.c):
 *
 *   stage     reads                                   writes
 *   acquire   parent's models, parent's cursor        levels, cursor, candidates
 *   select    candidates                              selection: kept labels, pairs,
 *                                                     every candidate's decisions
 *   optimize  parent's checkpoints; sft: base data +  checkpoints; dpo: reference
 *             selections of accepted rounds and this  log-probs of the pairs
 *             one; dpo: this round's pairs
 *   evaluate  checkpoints, cursor                     accuracy per level and lineage
 *   accept    evaluations of round and parent (or     the round's status
 *             both rounds' models, label-free)
 *
 * Every stage marks itself done in the store only after its outputs are
 * durable; a killed run resumes at the first stage not marked done, and every
 * random choice derives from ad_seed(run seed, lineage, round, stage, stream,
 * item) (rng.h), so a resumed run ends bit-identical to an uninterrupted one
 * with the same thread count. */
#ifndef AD_LOOP_RUN_H
#define AD_LOOP_RUN_H

#include <stddef.h>

#include "loop/run_config.h"
#include "util/error.h"

typedef struct ad_run ad_run;

/* Creates a new run in dir (a new or empty directory; its path within the
 * store's limit, checked first) from a config file (may be NULL: defaults)
 * and overrides "section.key=value", and holds its writer's lock. On error
 * nothing is left behind (but dir's missing parent directories). */
int ad_run_create(ad_run **out, const char *dir, const char *config_path,
                  const char *const *overrides, size_t n_overrides, ad_error *err);

/* ad_run_create, but round 0 is the base model of the run in `from`, which
 * must agree on every key the base depends on (task, seed, lineages, task.*,
 * model.* but max_len, base.*, optim.*: it would train the same bits) and
 * have finished its base. The new run evaluates round 0 itself. */
int ad_run_create_from(ad_run **out, const char *dir, const char *config_path,
                       const char *const *overrides, size_t n_overrides, const char *from,
                       ad_error *err);

/* Opens an existing run directory to continue it, taking the writer's lock:
 * while another process holds it, an error that names its PID. */
int ad_run_open(ad_run **out, const char *dir, ad_error *err);

/* Opens an existing run directory to read it (the source of `run --from`):
 * no lock, the store read-only, no log; nothing in dir is written, and dir
 * may be read-only. Only for reading: do not execute it. */
int ad_run_open_reader(ad_run **out, const char *dir, ad_error *err);

/* Under mpirun or srun with more than one rank (dist/dist.h), every rank
 * calls this after rank 0 created or opened the run (status: rank 0's result
 * there; *run is rank 0's run and NULL on the others, where it becomes a
 * worker's view of the run: config only, no store, no lock). It refuses more
 * ranks than lineages, and a run directory that a rank does not see as rank 0
 * wrote it (a token file rank 0 writes and the others read). Collective: every
 * rank returns the same status (rank 0's message on rank 0). Alone it returns
 * status. Details: run_dist.c. */
int ad_run_join(ad_run **run, int status, ad_error *err);

/* Runs (or continues) base training and every round up to run.rounds; under
 * mpirun every rank calls it after ad_run_join (rank 0 runs the rounds, the
 * others serve it). */
int ad_run_execute(ad_run *run, ad_error *err);

/* Frees everything; safe on NULL. */
void ad_run_free(ad_run *run);

/* Test hook: when the environment variable AD_KILL_AT is "STAGE:ROUND[:STEP]"
 * (e.g. "optimize:1:30"), the process kills itself with SIGKILL at that point, so
 * tests can check resume from any point. AD_STALL_AT (same form) makes it sleep
 * there instead, for good or for AD_STALL_SECONDS, so tests can check which
 * waits of the other ranks time out (run.dist_timeout) and which do not. */
void ad_run_maybe_kill(const char *stage, size_t round, size_t step);

#endif
