/* run_dist.c: a run spread over the ranks of an MPI job (dist.h).
 *
 * Rank 0 is the run: it holds the writer's lock and the store, runs the round
 * driver and every stage, and writes every file of the run directory. The
 * other ranks (workers) open the run's config only (no store, no lock) and
 * wait for rank 0's commands. What is parallel today is the optimize stage of
 * sft rounds (base training included): lineage l is trained by rank
 * l % ranks (round-robin by lineage index, whatever is already done; with
 * more ranks than lineages, lineage l's G ranks l*G .. share its steps' slices,
 * run.shards, and the first of them reports), each
 * from the checkpoints in the shared run directory, with the batches rank 0
 * broadcasts (the mixture's sets); a worker sends its trained lineage back
 * (checkpoint files, step figures, result), and rank 0 writes and records it.
 * Training is the same code on the same inputs, so the bits are those of a
 * one-process run. Workers write no partial checkpoints: a killed job resumes
 * their lineages from the round's start (rank 0's from its partials). rl
 * rounds are spread the same way (run_dist_rl: the worker sends its checkpoint
 * and every step's figures).
 *
 * The evaluate stage is spread too: rank 0 names the lineages and levels
 * (run_dist_evaluate), and every rank decodes a range of each lineage's
 * problems (evaluate_spread.c), rank 0 gathering them in problem order. So is
 * acquire's decoding (run_dist_acquire): rank 0 chooses the levels and poses
 * the prompts, every rank decodes a range of the (lineage, prompt) units, and
 * rank 0 receives them in unit order.
 *
 * acquire.auto_temperature's probe and the self-consistency probes (the
 * curriculum's, the label-free accept rule's) are decoded the same way (each
 * with its own seed stage). The checker's verdicts in select and in that probe are spread by
 * candidate ranges (run_dist_verify.c, one more command of this loop).
 *
 * Not here: the drift rule's agreement probe, select's filters and accept run on rank 0
 * alone, so cross-lineage votes see every lineage's answers in lineage order
 * as they always did; dpo and nft rounds optimize on rank 0 (they read and
 * write the store per lineage). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/dist.h"
#include "dist/dist_buf.h"
#include "loop/run_internal.h"
#include "model/checkpoint.h"
#include "util/atomic_file.h"
#include "util/progress.h"

#define TAG_LINEAGE 17
#define TAG_CANDIDATES 18

/* What rank 0 broadcasts before each command's payload. */
typedef struct dist_cmd {
    uint64_t kind, round, parent, cursor_before;
} dist_cmd;

int run_dist_command(uint64_t kind, size_t round, size_t parent, size_t cursor_before,
                     const ad_dist_buf *payload, const char *what, ad_error *err) {
    dist_cmd cmd = {kind, round, parent, cursor_before};
    void *p = payload->p;
    size_t n = payload->n;
    if (ad_dist_buf_check(payload, what, err) != AD_OK) return AD_ERR;
    if (ad_dist_bcast_await(&cmd, sizeof cmd, 0, err) != AD_OK) return AD_ERR;
    return ad_dist_bcast_bytes(&p, &n, 0, err);
}

/* The files of a checkpoint directory, in the order they travel. */
static const char *const ckpt_files[] = {"config.json", "model.safetensors",
                                         "optimizer.safetensors", "trainer_state.json"};
#define N_CKPT_FILES (sizeof ckpt_files / sizeof *ckpt_files)
#define FILE_ABSENT UINT64_MAX

/* dir/name into buf; "" when it does not fit (names no file). */
static void path_in(char *buf, size_t cap, const char *dir, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) buf[0] = '\0';
}

/* Who trains lineage l: with no more ranks than lineages, rank l % N alone;
 * with more, the G = N / L ranks l*G .. l*G + G - 1, which split each step's
 * run.shards slices (objective_shards.c), and of which the first (the
 * leader) sends the result to rank 0. */
int run_dist_lineage_rank(const ad_run *run, size_t l) {
    size_t n = (size_t)ad_dist_size();
    return (int)(run->lineage_ranks > 1 ? l * run->lineage_ranks : l % n);
}

static int lineage_member(const ad_run *run, size_t l, int rank) {
    if (run->lineage_ranks <= 1) return run_dist_lineage_rank(run, l) == rank;
    return (size_t)rank / run->lineage_ranks == l;
}

/* ---- the mixture's sets, as bytes ------------------------------------------ */

static void put_sets(ad_dist_buf *b, const ad_run *run) {
    ad_dist_buf_put_u64(b, run->n_sets);
    for (size_t i = 0; i < run->n_sets; i++) {
        const run_set *s = &run->sets[i];
        ad_dist_buf_put_u64(b, s->round);
        ad_dist_buf_put_u64(b, s->n_levels);
        ad_dist_buf_put_u64(b, s->n_examples);
        ad_dist_buf_put_u64(b, s->examples != NULL);
        for (size_t j = 0; s->examples && j < s->n_examples; j++) {
            const ad_example *e = &s->examples[j];
            ad_dist_buf_put_u64(b, e->len);
            ad_dist_buf_put_u64(b, e->loss_from);
            ad_dist_buf_put(b, e->tokens, e->len * sizeof *e->tokens);
        }
    }
}

/* One set's encoded examples (n of them) from b into s. */
static int get_examples(ad_dist_buf *b, run_set *s, size_t n, ad_error *err) {
    s->examples = calloc(n ? n : 1, sizeof *s->examples);
    if (!s->examples) return ad_error_set(err, "out of memory");
    for (size_t j = 0; j < n && !b->failed; j++) {
        ad_example *e = &s->examples[j];
        e->len = ad_dist_buf_get_u64(b);
        e->loss_from = ad_dist_buf_get_u64(b);
        const void *t = e->len < (size_t)1 << 32 ? ad_dist_buf_take(b, e->len * 4) : NULL;
        e->tokens = t ? malloc(e->len * sizeof *e->tokens) : NULL;
        if (!e->tokens) return ad_error_set(err, "sets: bad or out of memory at example %zu", j);
        memcpy(e->tokens, t, e->len * sizeof *e->tokens);
        s->n_examples = j + 1;
    }
    return ad_dist_buf_check(b, "sets", err);
}

static int get_sets(ad_dist_buf *b, ad_run *run, ad_error *err) {
    run_sets_clear(run);
    size_t n = ad_dist_buf_get_u64(b);
    if (b->failed || n > 1u << 20) return ad_error_set(err, "sets: bad count");
    run_set *sets = realloc(run->sets, (n ? n : 1) * sizeof *sets);
    if (!sets) return ad_error_set(err, "out of memory");
    run->sets = sets;
    for (size_t i = 0; i < n; i++) {
        run_set *s = &sets[run->n_sets++];
        *s = (run_set){.round = ad_dist_buf_get_u64(b), .n_levels = ad_dist_buf_get_u64(b)};
        size_t count = ad_dist_buf_get_u64(b);
        int has = ad_dist_buf_get_u64(b) != 0;
        if (!has) s->n_examples = count;
        if (has && get_examples(b, s, count, err) != AD_OK) return AD_ERR;
    }
    return ad_dist_buf_check(b, "sets", err);
}

/* ---- a trained lineage, as bytes (worker -> rank 0) --------------------------- */

/* The files of the checkpoint directory ckpt, each length-prefixed
 * (FILE_ABSENT for a file it lacks). */
static int put_ckpt_files(ad_dist_buf *b, const char *ckpt, ad_error *err) {
    for (size_t i = 0; i < N_CKPT_FILES; i++) {
        char path[AD_RUN_PATH_MAX], *data = NULL;
        size_t len = 0;
        path_in(path, sizeof path, ckpt, ckpt_files[i]);
        if (access(path, F_OK) != 0) {
            ad_dist_buf_put_u64(b, FILE_ABSENT);
            continue;
        }
        if (ad_read_file(path, SIZE_MAX / 2, &data, &len, err) != AD_OK) return AD_ERR;
        ad_dist_buf_put_u64(b, len);
        ad_dist_buf_put(b, data, len);
        free(data);
    }
    return AD_OK;
}

/* The message: start step, seconds, result, step figures, checkpoint files. */
static int put_lineage(ad_dist_buf *b, size_t start, double seconds, const ad_train_result *res,
                       const ad_vec *steps, const char *ckpt, ad_error *err) {
    ad_dist_buf_put_u64(b, start);
    ad_dist_buf_put(b, &seconds, sizeof seconds);
    ad_dist_buf_put(b, res, sizeof *res);
    ad_dist_buf_put_u64(b, steps->n);
    ad_dist_buf_put(b, steps->data, steps->n * sizeof(run_step_figures));
    if (put_ckpt_files(b, ckpt, err) != AD_OK) return AD_ERR;
    return ad_dist_buf_check(b, "lineage", err);
}

/* Writes the message's checkpoint files into the directory dir. */
static int get_ckpt_files(ad_dist_buf *b, const char *dir, ad_error *err) {
    for (size_t i = 0; i < N_CKPT_FILES; i++) {
        uint64_t len = ad_dist_buf_get_u64(b);
        if (len == FILE_ABSENT) continue;
        const void *data = ad_dist_buf_take(b, len);
        if (!data) return ad_error_set(err, "lineage: %s cut short", ckpt_files[i]);
        char path[AD_RUN_PATH_MAX];
        path_in(path, sizeof path, dir, ckpt_files[i]);
        if (ad_atomic_write(path, data, len, err) != AD_OK) return AD_ERR;
    }
    return AD_OK;
}

/* Removes what get_ckpt_files wrote (only those names), then dir. */
static void remove_ckpt_files(const char *dir) {
    char path[AD_RUN_PATH_MAX];
    for (size_t i = 0; i < N_CKPT_FILES; i++) {
        path_in(path, sizeof path, dir, ckpt_files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* The received checkpoint in tmp, saved as lineage l's checkpoint at path by
 * the same code as every checkpoint (loaded, then saved: the same bytes). */
static int install_ckpt(ad_run *run, const char *tmp, const char *path, ad_error *err) {
    ad_model *m = NULL;
    ad_adamw opt = {0};
    char *json = NULL;
    ad_vocab *v = malloc(sizeof *v);
    if (!v) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_load(tmp, &m, v, &opt, &json, err);
    free(v);
    if (rc == AD_OK) rc = ad_checkpoint_save(path, m, &run->vocab, opt.m ? &opt : NULL, json, err);
    ad_adamw_free(&opt);
    ad_model_free(m);
    free(json);
    return rc;
}

/* Rank 0: the message's checkpoint files, written as lineage l's checkpoint
 * at path (through a temporary directory beside it). */
static int receive_ckpt(ad_run *run, ad_dist_buf *b, size_t l, const char *path, ad_error *err) {
    char dir[AD_RUN_PATH_MAX], tmp[AD_RUN_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ckpt/l%02zu", run->dir, l);
    path_in(tmp, sizeof tmp, dir, "received-XXXXXX");
    int rc = ad_mkdir_p(dir, err);
    int made = rc == AD_OK && mkdtemp(tmp) != NULL;
    if (rc == AD_OK && !made) rc = ad_error_set(err, "%s: %s", tmp, strerror(errno));
    if (rc == AD_OK) rc = get_ckpt_files(b, tmp, err);
    if (rc == AD_OK) rc = install_ckpt(run, tmp, path, err);
    if (made) remove_ckpt_files(tmp);
    return rc;
}

/* Rank 0: receives lineage l from rank `from`, writes its checkpoint and its
 * records as run_optimize_lineage would have. */
static int receive_lineage(ad_run *run, const run_round *rr, size_t l, int from, ad_error *err) {
    ad_dist_buf b = {0};
    void *p = NULL;
    if (ad_dist_recv_bytes_await(&p, &b.n, from, TAG_LINEAGE, err) != AD_OK) return AD_ERR;
    b.p = p;
    b.cap = b.n;
    size_t start = ad_dist_buf_get_u64(&b), round = rr->round;
    double seconds = 0;
    ad_train_result res;
    ad_dist_buf_get(&b, &seconds, sizeof seconds);
    ad_dist_buf_get(&b, &res, sizeof res);
    size_t n_steps = ad_dist_buf_get_u64(&b);
    const run_step_figures *steps =
        n_steps < ((size_t)1 << 40) ? ad_dist_buf_take(&b, n_steps * sizeof *steps) : NULL;
    int rc = steps || !n_steps ? ad_dist_buf_check(&b, "lineage", err)
                               : ad_error_set(err, "lineage: step figures cut short");
    char path[AD_RUN_PATH_MAX];
    run_ckpt_path(run, l, round, path, sizeof path);
    if (rc == AD_OK) rc = receive_ckpt(run, &b, l, path, err);
    ad_run_maybe_kill("optimize-saved", round, 0);
    if (rc == AD_OK)
        rc = ad_store_step_metrics_truncate(run->st, (uint32_t)round, AD_STAGE_OPTIMIZE, (int64_t)l,
                                            start, err);
    for (size_t i = 0; rc == AD_OK && i < n_steps; i++)
        rc = run_optimize_record_step(run, round, l, steps[i].step, &steps[i].st, err);
    long parent = round > 0 ? (long)rr->parent : -1;
    if (rc == AD_OK) rc = run_optimize_record(run, round, l, path, parent, &res, seconds, err);
    if (rc == AD_OK) run_log(run, "optimize r%zu l%zu: trained by rank %d", round, l, from);
    free(p);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "lineage %zu from rank %d: ", l, from);
}

/* ---- rank 0's side ------------------------------------------------------------ */

int run_dist_optimize(ad_run *run, run_round *rr, const ad_objective *obj, ad_error *err) {
    size_t L = run->cfg.lineages, n_todo = 0;
    ad_dist_buf b = {0};
    for (size_t l = 0; l < L; l++) {
        int done = 0;
        if (ad_store_stage_is_done(run->st, (uint32_t)rr->round, AD_STAGE_OPTIMIZE, (int64_t)l,
                                   &done, err) != AD_OK)
            return AD_ERR;
        ad_dist_buf_put_u64(&b, !done);
        n_todo += !done;
    }
    ad_dist_buf_put_u64(&b, (uint64_t)rr->top_level);
    int rc = n_todo ? run_optimize_sets(run, rr, err) : AD_OK;
    if (rc == AD_OK) put_sets(&b, run);
    if (rc == AD_OK) rc = ad_dist_buf_check(&b, "optimize", err);
    if (rc == AD_OK && n_todo)
        rc = run_dist_command(RUN_CMD_OPTIMIZE, rr->round, rr->parent, rr->cursor_before, &b,
                              "optimize", err);
    const uint64_t *todo = (const uint64_t *)b.p;
    for (size_t l = 0; rc == AD_OK && l < L; l++)
        if (todo[l] && run_dist_lineage_rank(run, l) == 0 &&
            run_optimize_lineage(run, rr, l, obj, err))
            rc = ad_error_prefix(err, "optimize, lineage %zu: ", l);
    for (size_t l = 0; rc == AD_OK && l < L; l++)
        if (todo[l] && run_dist_lineage_rank(run, l) != 0)
            rc = receive_lineage(run, rr, l, run_dist_lineage_rank(run, l), err);
    ad_dist_buf_free(&b);
    return rc;
}

/* ---- a worker's side ---------------------------------------------------------- */

/* A temporary directory of this machine ($TMPDIR, else /tmp) into tmp, and
 * the checkpoint path inside it into ckpt (both AD_RUN_PATH_MAX). */
static int make_local_tmp(char *tmp, char *ckpt, ad_error *err) {
    const char *td = getenv("TMPDIR");
    path_in(tmp, AD_RUN_PATH_MAX, td && *td ? td : "/tmp", "autodidact-rank-XXXXXX");
    path_in(ckpt, AD_RUN_PATH_MAX, tmp, "ckpt");
    if (!mkdtemp(tmp)) return ad_error_set(err, "%s: %s", tmp, strerror(errno));
    return AD_OK;
}

/* Sends trained lineage l to rank 0: its checkpoint passes through a
 * temporary directory of this machine (make_local_tmp). */
static int send_lineage(ad_run *run, const run_round *rr, size_t l, ad_trainer *tr, size_t start,
                        double seconds, const ad_train_result *res, const ad_vec *steps,
                        ad_error *err) {
    char tmp[AD_RUN_PATH_MAX], ckpt[AD_RUN_PATH_MAX];
    if (make_local_tmp(tmp, ckpt, err) != AD_OK) return AD_ERR;
    ad_dist_buf b = {0};
    int rc = run_save_trainer(run, ckpt, tr, rr->round, l, err);
    if (rc == AD_OK) rc = put_lineage(&b, start, seconds, res, steps, ckpt, err);
    if (rc == AD_OK) rc = ad_dist_send_bytes_await(b.p, b.n, 0, TAG_LINEAGE, err);
    remove_ckpt_files(ckpt);
    rmdir(tmp);
    ad_dist_buf_free(&b);
    return rc;
}

/* Trains lineage l and, as its leader, sends it to rank 0 (the other members
 * of its group hold the same bits and send nothing). */
static int work_lineage(ad_run *run, run_round *rr, size_t l, const ad_objective *obj,
                        ad_error *err) {
    ad_vec steps;
    ad_vec_init(&steps, sizeof(run_step_figures));
    ad_model *m = NULL;
    ad_trainer tr = {0};
    ad_train_result res = {0};
    size_t start = 0;
    double t0 = ad_now();
    int rc = run_optimize_train(run, rr, l, obj, &steps, &m, &tr, &res, &start, err);
    if (rc == AD_OK && run_dist_lineage_rank(run, l) == ad_dist_rank())
        rc = send_lineage(run, rr, l, &tr, start, ad_now() - t0, &res, &steps, err);
    ad_vec_free(&steps);
    ad_trainer_free(&tr);
    ad_model_free(m);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "optimize, lineage %zu: ", l);
}

static int serve_optimize(ad_run *run, const dist_cmd *cmd, ad_dist_buf *b, ad_error *err) {
    run_round rr = {
        .round = cmd->round, .parent = cmd->parent, .cursor_before = cmd->cursor_before};
    size_t L = run->cfg.lineages;
    const uint64_t *todo = ad_dist_buf_take(b, L * sizeof *todo);
    uint64_t top = ad_dist_buf_get_u64(b);
    if (!todo || top > AD_LEVEL_MAX) return ad_error_set(err, "optimize: message cut short");
    rr.top_level = (int32_t)top;
    if (get_sets(b, run, err) != AD_OK) return AD_ERR;
    const ad_objective *obj = run_round_objective(run, rr.round);
    if (!obj) return ad_error_set(err, "optimize.objective: unknown '%s'", run->cfg.objective);
    int me = ad_dist_rank();
    for (size_t l = 0; l < L; l++)
        if (todo[l] && lineage_member(run, l, me) && work_lineage(run, &rr, l, obj, err) != AD_OK)
            return AD_ERR;
    return AD_OK;
}

/* ---- the evaluate stage: every rank decodes a range of each lineage's problems */

int run_dist_evaluate(ad_run *run, size_t round, const uint64_t *todo, const ad_level *lv, size_t n,
                      ad_error *err) {
    if (ad_dist_size() == 1) return AD_OK;
    ad_dist_buf b = {0};
    ad_dist_buf_put(&b, todo, run->cfg.lineages * sizeof *todo);
    ad_dist_buf_put_u64(&b, n);
    ad_dist_buf_put(&b, lv, n * sizeof *lv);
    int rc = run_dist_command(RUN_CMD_EVALUATE, round, 0, 0, &b, "evaluate", err);
    if (rc == AD_OK)
        run_log(run, "evaluate r%zu: %zu problems per lineage spread over %d ranks", round,
                n * run->cfg.eval_n, ad_dist_size());
    ad_dist_buf_free(&b);
    return rc;
}

static int serve_evaluate(ad_run *run, const dist_cmd *cmd, ad_dist_buf *b, ad_error *err) {
    size_t L = run->cfg.lineages;
    const uint64_t *todo = ad_dist_buf_take(b, L * sizeof *todo);
    size_t n = ad_dist_buf_get_u64(b);
    const ad_level *lv = n <= 4096 ? ad_dist_buf_take(b, n * sizeof *lv) : NULL;
    if (!todo || !lv) return ad_error_set(err, "evaluate: message cut short");
    ad_level_accuracy *acc = calloc(n ? n : 1, sizeof *acc); /* filled on rank 0 only */
    int rc = acc ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t l = 0; rc == AD_OK && l < L; l++)
        if (todo[l] && run_evaluate_figures(run, cmd->round, l, lv, n, acc, err) != AD_OK)
            rc = ad_error_prefix(err, "evaluate, lineage %zu: ", l);
    free(acc);
    return rc;
}

/* ---- the acquire stage: every rank decodes a range of (lineage, prompt) units */

/* Unit range [*from, *to) of rank r among N (units u = l * n + i). */
static void unit_range(size_t units, size_t r, size_t N, size_t *from, size_t *to) {
    *from = r * units / N;
    *to = (r + 1) * units / N;
}

static void put_completions(ad_dist_buf *b, const ad_completion *c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        size_t len = c[i].text ? strlen(c[i].text) : 0;
        ad_dist_buf_put_u64(b, c[i].n_tokens);
        ad_dist_buf_put(b, &c[i].logprob_sum, sizeof c[i].logprob_sum);
        ad_dist_buf_put(b, &c[i].certainty_sum, sizeof c[i].certainty_sum);
        ad_dist_buf_put_u64(b, (uint64_t)c[i].hit_eos);
        ad_dist_buf_put_u64(b, len);
        ad_dist_buf_put(b, c[i].text, len);
    }
}

/* count completions from b into out (zeroed; texts malloc'd). On error the
 * texts made so far stay in out for the caller to free. */
static int get_completions(ad_dist_buf *b, ad_completion *out, size_t count, ad_error *err) {
    for (size_t i = 0; i < count; i++) {
        ad_completion *c = &out[i];
        c->n_tokens = ad_dist_buf_get_u64(b);
        ad_dist_buf_get(b, &c->logprob_sum, sizeof c->logprob_sum);
        ad_dist_buf_get(b, &c->certainty_sum, sizeof c->certainty_sum);
        c->hit_eos = ad_dist_buf_get_u64(b) != 0;
        size_t len = ad_dist_buf_get_u64(b);
        const char *t = len <= b->n ? ad_dist_buf_take(b, len) : NULL;
        if (!t) return ad_error_set(err, "candidates: message cut short at %zu", i);
        if (!(c->text = malloc(len + 1))) return ad_error_set(err, "out of memory");
        memcpy(c->text, t, len);
        c->text[len] = '\0';
    }
    return ad_dist_buf_check(b, "candidates", err);
}

const char *run_decode_units_name(ad_seed_stage stage) {
    return stage == AD_SEED_TEMPERATURE ? "temperature probe"
           : stage == AD_SEED_PROBE     ? "self-consistency probe"
                                        : "acquire";
}

int run_dist_acquire(ad_run *run, size_t round, size_t parent, ad_model *const *models,
                     ad_seed_stage stage, float temperature, size_t k, const char *const *prompts,
                     size_t n, ad_completion *out, ad_error *err) {
    size_t L = run->cfg.lineages, N = (size_t)ad_dist_size(), U = L * n;
    if (N == 1)
        return run_decode_units(run, round, models, stage, temperature, k, prompts, n, 0, U, out,
                                err);
    ad_dist_buf b = {0};
    ad_dist_buf_put_u64(&b, (uint64_t)stage);
    ad_dist_buf_put_u64(&b, k);
    ad_dist_buf_put(&b, &temperature, sizeof temperature);
    ad_dist_buf_put_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(prompts[i]);
        ad_dist_buf_put_u64(&b, len);
        ad_dist_buf_put(&b, prompts[i], len);
    }
    size_t from, to;
    int rc = run_dist_command(RUN_CMD_ACQUIRE, round, parent, 0, &b, "acquire", err);
    ad_dist_buf_free(&b);
    unit_range(U, 0, N, &from, &to);
    if (rc == AD_OK)
        rc = run_decode_units(run, round, models, stage, temperature, k, prompts, n, from, to, out,
                              err);
    for (size_t r = 1; rc == AD_OK && r < N; r++) {
        void *p = NULL;
        unit_range(U, r, N, &from, &to);
        rc = ad_dist_recv_bytes_await(&p, &b.n, (int)r, TAG_CANDIDATES, err);
        b.p = p;
        b.cap = b.n;
        if (rc == AD_OK) rc = get_completions(&b, out + from * k, (to - from) * k, err);
        if (rc != AD_OK) ad_error_prefix(err, "candidates from rank %zu: ", r);
        ad_dist_buf_free(&b);
    }
    if (rc == AD_OK)
        run_log(run, "%s r%zu: %zu lineage x prompt units spread over %zu ranks",
                run_decode_units_name(stage), round, U, N);
    return rc;
}

/* A worker's part: decodes its units with the parent's models (only the
 * lineages its range touches) and sends them to rank 0. */
static int serve_acquire(ad_run *run, const dist_cmd *cmd, ad_dist_buf *b, ad_error *err) {
    size_t L = run->cfg.lineages, N = (size_t)ad_dist_size(), from, to;
    float temperature = 0;
    uint64_t stage = ad_dist_buf_get_u64(b), k = ad_dist_buf_get_u64(b);
    ad_dist_buf_get(b, &temperature, sizeof temperature);
    if (stage != AD_SEED_SAMPLE && stage != AD_SEED_TEMPERATURE && stage != AD_SEED_PROBE)
        return ad_error_set(err, "acquire: bad seed stage %llu", (unsigned long long)stage);
    if (k < 1 || k > 4096) return ad_error_set(err, "acquire: bad sample count");
    size_t n = ad_dist_buf_get_u64(b);
    if (b->failed || n > b->n) return ad_error_set(err, "acquire: message cut short");
    char **prompts = calloc(n ? n : 1, sizeof *prompts);
    ad_model **models = calloc(L, sizeof *models);
    int rc = prompts && models ? AD_OK : ad_error_set(err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < n; i++) {
        size_t len = ad_dist_buf_get_u64(b);
        const char *t = len <= b->n ? ad_dist_buf_take(b, len) : NULL;
        if (!t || !(prompts[i] = strndup(t, len)))
            rc = ad_error_set(err, "acquire: prompt %zu cut short", i);
    }
    unit_range(L * n, (size_t)ad_dist_rank(), N, &from, &to);
    for (size_t l = n ? from / n : 0; rc == AD_OK && from < to && l <= (to - 1) / n; l++)
        rc = run_load_model(run, l, cmd->parent, &models[l], err);
    ad_completion *out = calloc((to - from) * k + 1, sizeof *out);
    if (rc == AD_OK && !out) rc = ad_error_set(err, "out of memory");
    if (rc == AD_OK)
        rc = run_decode_units(run, cmd->round, models, (ad_seed_stage)stage, temperature, k,
                              (const char *const *)prompts, n, from, to, out, err);
    ad_dist_buf m = {0};
    if (rc == AD_OK) put_completions(&m, out, (to - from) * k);
    if (rc == AD_OK) rc = ad_dist_buf_check(&m, "candidates", err);
    if (rc == AD_OK) rc = ad_dist_send_bytes_await(m.p, m.n, 0, TAG_CANDIDATES, err);
    ad_dist_buf_free(&m);
    for (size_t i = 0; out && i < (to - from) * k; i++)
        ad_completion_free(&out[i]);
    for (size_t i = 0; prompts && i < n; i++)
        free(prompts[i]);
    for (size_t l = 0; models && l < L; l++)
        ad_model_free(models[l]);
    free(out);
    free(prompts);
    free(models);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "acquire: ");
}

/* ---- the rl stage: lineage l trains on its rank, as in optimize -------------- */

int run_rl_figures_put(ad_dist_buf *b, size_t step, const char *const *keys, const double *v,
                       size_t n, ad_error *err) {
    ad_dist_buf_put_u64(b, step);
    ad_dist_buf_put_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(keys[i]);
        ad_dist_buf_put_u64(b, len);
        ad_dist_buf_put(b, keys[i], len);
        ad_dist_buf_put(b, &v[i], sizeof v[i]);
    }
    return ad_dist_buf_check(b, "rl figures", err);
}

/* Rank 0: the figures of f (run_rl_figures_put's messages), step by step,
 * into the store's per-step series of lineage l. */
static int store_rl_figures(ad_run *run, size_t round, size_t l, ad_dist_buf *f, ad_error *err) {
    enum { KEYS_MAX = 64 };
    char names[KEYS_MAX][64];
    const char *keys[KEYS_MAX];
    double v[KEYS_MAX];
    while (f->off < f->n) {
        size_t step = ad_dist_buf_get_u64(f), n = ad_dist_buf_get_u64(f);
        if (f->failed || n > KEYS_MAX) return ad_error_set(err, "rl figures: bad message");
        for (size_t i = 0; i < n; i++) {
            size_t len = ad_dist_buf_get_u64(f);
            const char *k = len < sizeof names[i] ? ad_dist_buf_take(f, len) : NULL;
            if (!k) return ad_error_set(err, "rl figures: bad key at step %zu", step);
            memcpy(names[i], k, len);
            names[i][len] = '\0';
            keys[i] = names[i];
            ad_dist_buf_get(f, &v[i], sizeof v[i]);
        }
        if (ad_dist_buf_check(f, "rl figures", err) != AD_OK) return AD_ERR;
        if (ad_store_step_metrics_insert(run->st, (uint32_t)round, AD_STAGE_RL, (int64_t)l, step,
                                         keys, v, n, err) != AD_OK)
            return AD_ERR;
    }
    return AD_OK;
}

/* Rank 0: receives rl lineage l from rank `from` and records it as
 * run_rl_lineages would have (figures from its start step on, checkpoint,
 * done marker). */
static int receive_rl(ad_run *run, const run_round *rr, size_t l, int from, ad_error *err) {
    ad_dist_buf b = {0}, f = {0};
    void *p = NULL;
    if (ad_dist_recv_bytes_await(&p, &b.n, from, TAG_LINEAGE, err) != AD_OK) return AD_ERR;
    b.p = p;
    b.cap = b.n;
    size_t start = ad_dist_buf_get_u64(&b), n_fig = ad_dist_buf_get_u64(&b), round = rr->round;
    double seconds = 0;
    ad_dist_buf_get(&b, &seconds, sizeof seconds);
    f.p = n_fig <= b.n ? (unsigned char *)ad_dist_buf_take(&b, n_fig) : NULL;
    f.n = f.cap = n_fig;
    int rc = f.p || !n_fig ? ad_dist_buf_check(&b, "rl lineage", err)
                           : ad_error_set(err, "rl lineage: figures cut short");
    char path[AD_RUN_PATH_MAX];
    run_ckpt_path(run, l, round, path, sizeof path);
    if (rc == AD_OK) rc = receive_ckpt(run, &b, l, path, err);
    if (rc == AD_OK)
        rc = ad_store_step_metrics_truncate(run->st, (uint32_t)round, AD_STAGE_RL, (int64_t)l,
                                            start, err);
    if (rc == AD_OK) rc = store_rl_figures(run, round, l, &f, err);
    if (rc == AD_OK) rc = run_rl_record(run, rr, l, path, seconds, err);
    if (rc == AD_OK) run_log(run, "rl r%zu l%zu: trained by rank %d", round, l, from);
    free(p);
    return rc == AD_OK ? AD_OK : ad_error_prefix(err, "rl lineage %zu from rank %d: ", l, from);
}

int run_dist_rl(ad_run *run, run_round *rr, const uint64_t *todo, const ad_level *lv, size_t n,
                ad_error *err) {
    size_t L = run->cfg.lineages;
    ad_dist_buf b = {0};
    ad_dist_buf_put(&b, todo, L * sizeof *todo);
    ad_dist_buf_put_u64(&b, n);
    ad_dist_buf_put(&b, lv, n * sizeof *lv);
    int rc = run_dist_command(RUN_CMD_RL, rr->round, rr->parent, rr->cursor_before, &b, "rl", err);
    ad_dist_buf_free(&b);
    if (rc == AD_OK) rc = run_rl_lineages(run, rr, lv, n, todo, 0, NULL, err);
    for (size_t l = 0; rc == AD_OK && l < L; l++)
        if (todo[l] && run_dist_lineage_rank(run, l) != 0)
            rc = receive_rl(run, rr, l, run_dist_lineage_rank(run, l), err);
    return rc;
}

/* A worker: trains rl lineage l into a local temporary checkpoint and sends
 * it, with its figures, to rank 0. */
static int work_rl(ad_run *run, run_round *rr, size_t l, const ad_level *lv, size_t n,
                   ad_error *err) {
    size_t L = run->cfg.lineages;
    char tmp[AD_RUN_PATH_MAX], ckpt[AD_RUN_PATH_MAX];
    uint64_t *one = calloc(L, sizeof *one);
    if (!one) return ad_error_set(err, "out of memory");
    one[l] = 1;
    if (make_local_tmp(tmp, ckpt, err) != AD_OK) {
        free(one);
        return AD_ERR;
    }
    run_rl_worker wk = {.save_to = ckpt};
    ad_dist_buf b = {0};
    int rc = run_rl_lineages(run, rr, lv, n, one, -1, &wk, err);
    if (rc == AD_OK) {
        ad_dist_buf_put_u64(&b, wk.start);
        ad_dist_buf_put_u64(&b, wk.figures.n);
        ad_dist_buf_put(&b, &wk.seconds, sizeof wk.seconds);
        ad_dist_buf_put(&b, wk.figures.p, wk.figures.n);
        rc = put_ckpt_files(&b, ckpt, err);
    }
    if (rc == AD_OK) rc = ad_dist_buf_check(&b, "rl lineage", err);
    if (rc == AD_OK) rc = ad_dist_send_bytes_await(b.p, b.n, 0, TAG_LINEAGE, err);
    remove_ckpt_files(ckpt);
    rmdir(tmp);
    ad_dist_buf_free(&b);
    ad_dist_buf_free(&wk.figures);
    free(one);
    return rc;
}

static int serve_rl(ad_run *run, const dist_cmd *cmd, ad_dist_buf *b, ad_error *err) {
    run_round rr = {
        .round = cmd->round, .parent = cmd->parent, .cursor_before = cmd->cursor_before};
    size_t L = run->cfg.lineages;
    const uint64_t *todo = ad_dist_buf_take(b, L * sizeof *todo);
    size_t n = ad_dist_buf_get_u64(b);
    const ad_level *lv = n <= 4096 ? ad_dist_buf_take(b, n * sizeof *lv) : NULL;
    if (!todo || !lv) return ad_error_set(err, "rl: message cut short");
    rr.top_level = run_levels_top(lv, n);
    int me = ad_dist_rank();
    for (size_t l = 0; l < L; l++)
        if (todo[l] && run_dist_lineage_rank(run, l) == me && work_rl(run, &rr, l, lv, n, err))
            return ad_error_prefix(err, "rl, lineage %zu: ", l);
    return AD_OK;
}

static const char *cmd_name(uint64_t kind) {
    static const char *const names[] = {"stop", "optimize", "evaluate", "acquire", "rl", "verify"};
    return kind < sizeof names / sizeof *names ? names[kind] : "?";
}

/* A worker's loop: rank 0's commands until it says stop. */
int run_dist_serve(ad_run *run, ad_error *err) {
    for (;;) {
        dist_cmd cmd;
        ad_dist_set_stage("waiting for rank 0's next command");
        if (ad_dist_bcast_await(&cmd, sizeof cmd, 0, err) != AD_OK) return AD_ERR;
        if (cmd.kind == RUN_CMD_STOP) return AD_OK;
        ad_dist_set_stage("round %llu %s (for rank 0)", (unsigned long long)cmd.round,
                          cmd_name(cmd.kind));
        ad_dist_buf b = {0};
        void *p = NULL;
        if (ad_dist_bcast_bytes(&p, &b.n, 0, err) != AD_OK) return AD_ERR;
        b.p = p;
        b.cap = b.n;
        int rc = cmd.kind == RUN_CMD_OPTIMIZE   ? serve_optimize(run, &cmd, &b, err)
                 : cmd.kind == RUN_CMD_EVALUATE ? serve_evaluate(run, &cmd, &b, err)
                 : cmd.kind == RUN_CMD_ACQUIRE  ? serve_acquire(run, &cmd, &b, err)
                 : cmd.kind == RUN_CMD_RL       ? serve_rl(run, &cmd, &b, err)
                 : cmd.kind == RUN_CMD_VERIFY
                     ? run_dist_serve_verify(run, &b, err)
                     : ad_error_set(err, "unknown command %llu from rank 0",
                                    (unsigned long long)cmd.kind);
        ad_dist_buf_free(&b);
        if (rc != AD_OK) return AD_ERR;
    }
}

int run_dist_release(ad_error *err) {
    if (ad_dist_size() == 1) return AD_OK;
    dist_cmd cmd = {RUN_CMD_STOP, 0, 0, 0};
    return ad_dist_bcast_await(&cmd, sizeof cmd, 0, err); /* no payload follows */
}
