/* run.c: creating and opening a run directory (its path checked before
 * anything is written, made whole or not at all, one writer at a time under
 * DIR/lock, readers that write nothing), and small helpers shared by the
 * stages (paths, seeds, logging, the kill hook). The round driver is
 * run_round.c. */
#include "loop/run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist/dist.h"
#include "loop/complete.h"
#include "loop/run_internal.h"
#include "model/checkpoint.h"
#include "model/kernels.h"
#include "util/atomic_file.h"

void run_log(ad_run *run, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
    if (run->log) {
        fprintf(run->log, "%s\n", line);
        fflush(run->log);
    }
}

/* snprintf into a path buffer; "" when it does not fit (see AD_RUN_DIR_MAX:
 * it cannot happen for a checked run directory, and "" names no file). */
static void run_path(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void run_path(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) buf[0] = '\0';
}

void run_ckpt_path(const ad_run *run, size_t lineage, size_t round, char *buf, size_t cap) {
    run_path(buf, cap, "%s/ckpt/l%02zu/r%04zu", run->dir, lineage, round);
}

void run_partial_path(const ad_run *run, size_t lineage, char *buf, size_t cap) {
    run_path(buf, cap, "%s/ckpt/l%02zu/partial", run->dir, lineage);
}

void run_data_path(const ad_run *run, size_t round, char *buf, size_t cap) {
    run_path(buf, cap, "%s/data/round-%04zu.jsonl", run->dir, round);
}

uint64_t run_lineage_seed(const ad_run *run, size_t lineage) {
    return ad_seed(run->cfg.seed, lineage, 0, AD_SEED_INIT, 0, 0);
}

/* 1 when the hook spec "STAGE:ROUND[:STEP]" names this point. */
static int hook_at(const char *spec, const char *stage, size_t round, size_t step) {
    if (!spec || !*spec) return 0;
    char want[64];
    snprintf(want, sizeof want, "%s:%zu", stage, round);
    size_t n = strlen(want);
    if (strncmp(spec, want, n) != 0) return 0;
    return spec[n] == '\0' || (spec[n] == ':' && (size_t)strtoull(spec + n + 1, NULL, 10) == step);
}

void ad_run_maybe_kill(const char *stage, size_t round, size_t step) {
    if (hook_at(getenv("AD_KILL_AT"), stage, round, step)) raise(SIGKILL);
    if (!hook_at(getenv("AD_STALL_AT"), stage, round, step)) return;
    const char *secs = getenv("AD_STALL_SECONDS");
    if (secs && *secs) {
        sleep((unsigned)strtoul(secs, NULL, 10));
        return;
    }
    for (;;) /* until something outside stops it (a timeout's MPI_Abort) */
        sleep(60);
}

/* The highest level the curriculum can reach within the run, for sizing max_len. */
static ad_level reachable_top(const ad_run *run) {
    const ad_run_config *c = &run->cfg;
    ad_level top = c->base_levels.v[0];
    for (size_t i = 1; i < c->base_levels.n; i++)
        if (ad_level_cmp(c->base_levels.v[i], top) > 0) top = c->base_levels.v[i];
    if (run->cur.schedule) {
        for (size_t i = 0; i < run->cur.schedule->n_levels; i++)
            if (ad_level_cmp(run->cur.schedule->levels[i], top) > 0)
                top = run->cur.schedule->levels[i];
        return top;
    }
    size_t per = c->levels_per_round ? c->levels_per_round : 8;
    int64_t reach =
        (int64_t)run->cur.first_level - 1 + (int64_t)(c->rounds * per) + (int64_t)c->eval_above;
    if (reach > run->cur.last_level) reach = run->cur.last_level;
    if (reach > top.a) top = ad_level_int((int32_t)reach);
    return top;
}

/* What create and open share: task, vocabulary, curriculum, max_len, log. */
static int run_init_common(ad_run *run, ad_error *err) {
    ad_run_config *c = &run->cfg;
    ad_task_options to;
    ad_task_default_options(&to);
    to.verifier = c->verifier && c->verifier[0] ? c->verifier : NULL;
    to.sandbox.timeout_s = c->verifier_timeout;
    to.sandbox.workers = c->verifier_workers;
    to.sandbox.pass_env = c->verifier_env;
    if (ad_task_open(c->task, &to, &run->task, err) != AD_OK) return AD_ERR;
    ad_dist_set_timeout(c->dist_timeout);
    /* Independent operand lengths are for the base data (the paper's); the
     * rounds pose and evaluate problems whose operands have the level's length,
     * which is what the curriculum and the length filter assume. */
    to.independent_lengths = c->independent_lengths;
    to.equal_length_share = c->equal_length_share;
    if (ad_task_open(c->task, &to, &run->base_task, err) != AD_OK) return AD_ERR;
    for (size_t i = 0; i < c->base_levels.n; i++)
        if (ad_task_level_check(run->task, c->base_levels.v[i], err) != AD_OK)
            return ad_error_prefix(err, "base.levels: ");
    if (ad_vocab_for_task(&run->vocab, run->task, err) != AD_OK) return AD_ERR;
    ad_level base_top = c->base_levels.v[0], hi = ad_task_level_max(run->task);
    for (size_t i = 1; i < c->base_levels.n; i++)
        if (ad_level_cmp(c->base_levels.v[i], base_top) > 0) base_top = c->base_levels.v[i];
    run->cur = (ad_curriculum){0};
    run->cur.schedule = c->schedule.n_steps ? &c->schedule : NULL;
    run->cur.first_level = c->first_level ? (int32_t)c->first_level : base_top.a + 1;
    run->cur.last_level = c->last_level ? (int32_t)c->last_level : hi.a;
    run->cur.adaptive = c->adaptive;
    run->cur.steps_per_round = c->levels_per_round;
    run->cur.min_score = c->adaptive_threshold;
    run->cur.hold = c->adaptive_hold;
    if (!run->cur.schedule && (ad_level_is_pair(base_top) || run->cur.first_level > hi.a))
        return ad_error_set(err, "curriculum: set curriculum.schedule for pair levels, or a "
                                 "first_level within the task's range");
    if (ad_curriculum_validate(&run->cur, err) != AD_OK)
        return ad_error_prefix(err, "curriculum: ");
    run->max_len = c->max_len;
    if (!run->max_len) {
        if (ad_task_sequence_bound(run->task, reachable_top(run), 16, c->seed, &run->max_len, err))
            return AD_ERR;
        run->max_len += 8;
    }
    if (run->lock_fd >= 0) { /* a writer; a reader leaves the directory as it is */
        char path[AD_RUN_PATH_MAX];
        run_path(path, sizeof path, "%s/log.txt", run->dir);
        run->log = fopen(path, "a");
        if (!run->log) return ad_error_set(err, "%s: cannot open for appending", path);
    }
    if (c->threads) ad_kernels_set_threads((int)c->threads);
    if (run->lock_fd >= 0 && c->decode_precision && !ad_kernels_have_bf16())
        return ad_error_set(err,
                            "run.decode_precision = bf16 needs a CPU with AVX512-BF16 (this "
                            "one's kernels: %s)",
                            ad_kernels_isa());
    char why[512];
    if (to.verifier && (ad_sandbox_probe(why, sizeof why), why[0]))
        run_log(run, "verifier sandbox: %s", why);
    return AD_OK;
}

/* ---- the run directory: its path, its lock, making it ----------------------- */

/* The suffix of the temporary directory a run is made in, beside its target. */
#define CREATING_SUFFIX ".creating-XXXXXX"

/* dir without trailing slashes into out[AD_RUN_DIR_MAX], checked against the
 * limits of AD_RUN_DIR_MAX before anything is written: run.db's absolute path
 * (and, with `creating`, the temporary directory's) must fit SQLite's limit. */
static int check_dir_path(const char *dir, int creating, char *out, ad_error *err) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || (n == 1 && dir[0] == '/'))
        return ad_error_set(err, "'%s' cannot be a run directory", dir);
    size_t abs = n;
    if (dir[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return ad_error_set(err, "cannot read the working directory: %s", strerror(errno));
        abs += strlen(cwd) + 1;
        free(cwd);
    }
    size_t need = abs + (creating ? strlen(CREATING_SUFFIX) : 0) + strlen("/run.db-journal");
    size_t max = ad_store_path_max();
    if (n >= AD_RUN_DIR_MAX || need >= max)
        return ad_error_set(err,
                            "%.60s...: the run directory's path is too long (%zu bytes, %zu as "
                            "an absolute path); the run store allows %zu bytes for "
                            "DIR%s/run.db-journal",
                            dir, n, abs, max - 1, creating ? CREATING_SUFFIX : "");
    memcpy(out, dir, n);
    out[n] = '\0';
    return AD_OK;
}

/* The holder's PID as the lock file says, into buf ("?" when unreadable). */
static void lock_holder(int fd, char *buf, size_t cap) {
    ssize_t got = pread(fd, buf, cap - 1, 0);
    buf[got > 0 ? got : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (!buf[0]) snprintf(buf, cap, "?");
}

/* Takes the writer's lock: an exclusive flock on DIR/lock, which then holds
 * the holder's PID for the message a second writer gets. The lock is the
 * process's: a writer that is killed leaves the file but not the lock. */
static int lock_dir(ad_run *run, ad_error *err) {
    char path[AD_RUN_PATH_MAX];
    run_path(path, sizeof path, "%s/lock", run->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return ad_error_set(err, "%s: cannot open the lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32];
        lock_holder(fd, pid, sizeof pid);
        close(fd);
        if (e == EWOULDBLOCK)
            return ad_error_set(err,
                                "%s is in use: another autodidact (pid %s) is writing this run; "
                                "wait for it to end, or stop it",
                                run->dir, pid);
        return ad_error_set(err, "%s: cannot lock: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return ad_error_set(err, "%s: cannot write: %s", path, strerror(e));
    }
    run->lock_fd = fd;
    return AD_OK;
}

static void unlock_dir(ad_run *run) {
    if (run->lock_fd < 0) return;
    if (ftruncate(run->lock_fd, 0) != 0) {
        /* the PID stays in the file; the lock goes with the descriptor anyway */
    }
    close(run->lock_fd);
    run->lock_fd = -1;
}

/* Refuses a target that is not a new or empty directory, before anything is
 * made: a run never mixes with files it did not write. */
static int check_target(const char *dir, ad_error *err) {
    char path[AD_RUN_PATH_MAX];
    struct stat st;
    run_path(path, sizeof path, "%s/run.db", dir);
    if (stat(path, &st) == 0)
        return ad_error_set(err, "%s already holds a run: use `autodidact resume %s`", dir, dir);
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? AD_OK
                               : ad_error_set(err, "%s: cannot read: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ad_error_set(err, "%s exists and is not a directory", dir);
    DIR *d = opendir(dir);
    if (!d) return ad_error_set(err, "%s: cannot read: %s", dir, strerror(errno));
    struct dirent *e;
    char first[256] = "";
    while ((e = readdir(d)) && !first[0])
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(first, sizeof first, "%s", e->d_name);
    closedir(d);
    if (first[0])
        return ad_error_set(err,
                            "%s is not empty (it holds '%s'): a run is made in a new or empty "
                            "directory",
                            dir, first);
    return AD_OK;
}

/* Removes what creating a run made in its temporary directory: only those
 * names, so a path gone wrong can never delete anything else. */
static void remove_creation(const char *tmp) {
    static const char *const files[] = {"config.ini",     "run.db",  "run.db-wal", "run.db-shm",
                                        "run.db-journal", "log.txt", "lock"};
    char path[AD_RUN_PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        run_path(path, sizeof path, "%s/%s", tmp, files[i]);
        if (path[0]) unlink(path);
    }
    run_path(path, sizeof path, "%s/config.ini.tmp.%ld", tmp, (long)getpid());
    if (path[0]) unlink(path);
    static const char *const dirs[] = {"ckpt", "data"};
    for (size_t i = 0; i < 2; i++) {
        run_path(path, sizeof path, "%s/%s", tmp, dirs[i]);
        if (path[0]) rmdir(path);
    }
    rmdir(tmp);
}

/* Makes the temporary directory beside dir (its parents as needed) that the
 * run is built in, with the mode a plain mkdir would give, into tmp. */
static int make_temp_dir(const char *dir, char *tmp, size_t cap, ad_error *err) {
    char parent[AD_RUN_DIR_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (ad_mkdir_p(parent, err) != AD_OK) return AD_ERR;
    }
    run_path(tmp, cap, "%s" CREATING_SUFFIX, dir);
    if (!tmp[0] || !mkdtemp(tmp))
        return ad_error_set(err, "%s" CREATING_SUFFIX ": cannot create: %s", dir, strerror(errno));
    mode_t mask = umask(0);
    umask(mask);
    if (chmod(tmp, 0777 & ~mask) != 0) {
        int e = errno;
        rmdir(tmp);
        return ad_error_set(err, "%s: cannot set its mode: %s", tmp, strerror(e));
    }
    return AD_OK;
}

/* Opens the run store (a writer's, or a reader's read-only one), selects the
 * run, checks its seed against config.ini, and reads the run's identity. */
static int open_store(ad_run *run, int writer, ad_error *err) {
    char path[AD_RUN_PATH_MAX];
    run_path(path, sizeof path, "%s/run.db", run->dir);
    int rc = writer ? ad_store_open(path, 0, &run->st, err)
                    : ad_store_open_readonly(path, &run->st, err);
    uint64_t seed = 0;
    if (rc == AD_OK) rc = ad_store_run_select(run->st, NULL, &seed, NULL, err);
    if (rc == AD_OK && seed != run->cfg.seed)
        rc = ad_error_set(err, "%s: config.ini seed %llu differs from the store's %llu", run->dir,
                          (unsigned long long)run->cfg.seed, (unsigned long long)seed);
    if (rc == AD_OK) rc = ad_store_run_identity(run->st, &run->identity, err);
    return rc;
}

/* The hash of the resolved config's text (FNV-1a, 64 bits). */
static int hash_config(ad_run *run, ad_error *err) {
    char *text = NULL;
    if (ad_config_dump(ad_run_config_schema(), &run->cfg, &text, err) != AD_OK) return AD_ERR;
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        h = (h ^ *c) * 0x100000001b3ull;
    free(text);
    run->config_hash = h;
    return AD_OK;
}

/* Fills the run made in run->dir: its folders, config.ini, and the store with
 * the run and its lineages (then closed, so that its WAL is folded in). */
static int fill_new_run(ad_run *run, ad_error *err) {
    char path[AD_RUN_PATH_MAX], *text = NULL;
    run_path(path, sizeof path, "%s/ckpt", run->dir);
    int rc = ad_mkdir_p(path, err);
    run_path(path, sizeof path, "%s/data", run->dir);
    if (rc == AD_OK) rc = ad_mkdir_p(path, err);
    if (rc == AD_OK) rc = run_init_common(run, err);
    if (rc == AD_OK) rc = run_judge_adopt(run, err);
    if (rc == AD_OK) rc = ad_config_dump(ad_run_config_schema(), &run->cfg, &text, err);
    run_path(path, sizeof path, "%s/config.ini", run->dir);
    if (rc == AD_OK) rc = ad_atomic_write(path, text, strlen(text), err);
    run_path(path, sizeof path, "%s/run.db", run->dir);
    if (rc == AD_OK) rc = ad_store_open(path, 1, &run->st, err);
    if (rc == AD_OK) rc = ad_store_begin(run->st, err);
    if (rc == AD_OK) rc = ad_store_run_create(run->st, "run", run->cfg.seed, text, err);
    for (size_t l = 0; rc == AD_OK && l < run->cfg.lineages; l++)
        rc = ad_store_lineage_add(run->st, l, run_lineage_seed(run, l), err);
    if (rc == AD_OK) rc = ad_store_commit(run->st, err);
    free(text);
    ad_store_close(run->st);
    run->st = NULL;
    if (rc == AD_OK) rc = ad_fsync_dir(run->dir, err);
    return rc;
}

/* A file: task's relative path is made absolute (from the working directory at
 * creation), so that the stored config means the same file from any directory. */
static int absolute_task_path(ad_run_config *c, ad_error *err) {
    static const char prefix[] = "file:";
    if (!c->task || strncmp(c->task, prefix, sizeof prefix - 1)) return AD_OK;
    const char *rel = c->task + sizeof prefix - 1;
    if (rel[0] == '/' || !rel[0]) return AD_OK;
    char *abs = realpath(rel, NULL);
    if (!abs) return ad_error_set(err, "run.task = '%s': %s: %s", c->task, rel, strerror(errno));
    char *name = malloc(strlen(abs) + sizeof prefix);
    if (name) sprintf(name, "%s%s", prefix, abs);
    free(abs);
    if (!name) return ad_error_set(err, "out of memory");
    free(c->task);
    c->task = name;
    return AD_OK;
}

/* Creating a run is all or nothing: it is made whole in DIR.creating-XXXXXX
 * beside DIR, then renamed into place (over an empty DIR, which rename
 * allows; a DIR that is not empty by then makes the rename fail). The lock
 * taken in the temporary directory moves with it, and the log file stays
 * open across the rename. On error the temporary directory is removed. */
int ad_run_create(ad_run **out, const char *dir, const char *config_path,
                  const char *const *overrides, size_t n_overrides, ad_error *err) {
    *out = NULL;
    char target[AD_RUN_DIR_MAX], tmp[AD_RUN_DIR_MAX] = "";
    if (check_dir_path(dir, 1, target, err) != AD_OK || check_target(target, err) != AD_OK)
        return AD_ERR;
    ad_run *run = calloc(1, sizeof *run);
    if (!run) return ad_error_set(err, "out of memory");
    run->lock_fd = -1;
    int rc = ad_run_config_load(&run->cfg, config_path, overrides, n_overrides, err);
    if (rc == AD_OK) rc = absolute_task_path(&run->cfg, err);
    if (rc == AD_OK) rc = run_dist_ranks_check(&run->cfg, (size_t)ad_dist_size(), err);
    if (rc == AD_OK) rc = make_temp_dir(target, tmp, sizeof tmp, err);
    snprintf(run->dir, sizeof run->dir, "%s", tmp);
    if (rc == AD_OK) rc = lock_dir(run, err);
    if (rc == AD_OK) rc = fill_new_run(run, err);
    if (rc == AD_OK && rename(tmp, target) != 0)
        rc = ad_error_set(err, "%s: cannot move the new run into place: %s", target,
                          errno == ENOTEMPTY || errno == EEXIST ? "the directory is not empty now"
                                                                : strerror(errno));
    if (rc != AD_OK) {
        unlock_dir(run);
        if (tmp[0]) remove_creation(tmp);
        ad_run_free(run);
        return AD_ERR;
    }
    snprintf(run->dir, sizeof run->dir, "%s", target);
    char parent[AD_RUN_DIR_MAX + 3];
    snprintf(parent, sizeof parent, "%s/..", target);
    rc = ad_fsync_dir(parent, err);
    if (rc == AD_OK) rc = open_store(run, 1, err);
    if (rc == AD_OK) rc = hash_config(run, err);
    if (rc != AD_OK) {
        ad_run_free(run);
        return AD_ERR;
    }
    *out = run;
    return AD_OK;
}

/* How a process opens a run directory. */
enum { OPEN_READER, OPEN_WRITER, OPEN_WORKER };

/* Opens a run as a writer (lock, store read-write, log), as a reader (no
 * lock, store read-only, nothing written) or as a worker rank (config only:
 * no lock, no store, no log; see run_dist.c). */
static int open_run(ad_run **out, const char *dir, int mode, ad_error *err) {
    int writer = mode == OPEN_WRITER;
    *out = NULL;
    ad_run *run = calloc(1, sizeof *run);
    if (!run) return ad_error_set(err, "out of memory");
    run->lock_fd = -1;
    char path[AD_RUN_PATH_MAX];
    struct stat st;
    int rc = check_dir_path(dir, 0, run->dir, err);
    run_path(path, sizeof path, "%s/run.db", run->dir);
    if (rc == AD_OK && stat(path, &st) != 0)
        rc = ad_error_set(err, "%s: no run here (%s: %s)", run->dir, path, strerror(errno));
    if (rc == AD_OK && writer) rc = lock_dir(run, err);
    run_path(path, sizeof path, "%s/config.ini", run->dir);
    if (rc == AD_OK) rc = ad_run_config_load(&run->cfg, path, NULL, 0, err);
    if (rc == AD_OK && writer) rc = run_dist_ranks_check(&run->cfg, (size_t)ad_dist_size(), err);
    if (rc == AD_OK && mode != OPEN_WORKER) rc = open_store(run, writer, err);
    if (rc == AD_OK) rc = hash_config(run, err);
    if (rc == AD_OK) rc = run_init_common(run, err);
    if (rc != AD_OK) {
        ad_run_free(run);
        return AD_ERR;
    }
    *out = run;
    return AD_OK;
}

int ad_run_open(ad_run **out, const char *dir, ad_error *err) {
    return open_run(out, dir, OPEN_WRITER, err);
}

int ad_run_open_reader(ad_run **out, const char *dir, ad_error *err) {
    return open_run(out, dir, OPEN_READER, err);
}

int run_open_worker(ad_run **out, const char *dir, ad_error *err) {
    return open_run(out, dir, OPEN_WORKER, err);
}

void ad_run_free(ad_run *run) {
    if (!run) return;
    for (size_t i = 0; i < run->n_sets; i++) {
        for (size_t j = 0; run->sets[i].examples && j < run->sets[i].n_examples; j++)
            ad_example_free(&run->sets[i].examples[j]);
        free(run->sets[i].examples);
    }
    free(run->sets);
    ad_store_close(run->st);
    ad_dist_group_free(run->group);
    ad_task_free(run->task);
    ad_task_free(run->base_task);
    ad_run_config_free(&run->cfg);
    if (run->log) fclose(run->log);
    unlock_dir(run);
    free(run);
}

void run_fit_max_len(const ad_run *run, ad_model *m) {
    if (m->cfg.max_seq_len < run->max_len) m->cfg.max_seq_len = run->max_len;
}

int run_load_model(ad_run *run, size_t lineage, size_t round, ad_model **m, ad_error *err) {
    char path[AD_RUN_PATH_MAX], *json = NULL;
    run_ckpt_path(run, lineage, round, path, sizeof path);
    ad_vocab *v = malloc(sizeof *v);
    if (!v) return ad_error_set(err, "out of memory");
    int rc = ad_checkpoint_load(path, m, v, NULL, &json, err);
    free(v);
    if (rc == AD_OK) rc = run_check_identity(run, path, json, err);
    free(json);
    if (rc == AD_OK) run_fit_max_len(run, *m);
    if (rc == AD_OK) (*m)->decode_bf16 = run->cfg.decode_precision;
    if (rc != AD_OK) {
        ad_model_free(*m);
        *m = NULL;
    }
    return rc;
}
