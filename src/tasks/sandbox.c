/* sandbox.c: the external verifier pool: one request/reply exchange with a
 * deadline, replacing workers that misbehave, and spreading batches over the
 * workers. Starting and stopping a worker (its guardian, bubblewrap, limits,
 * environment) is sandbox_spawn.c.
 *
 * The story of one request: take a free worker (waiting if all are busy);
 * if it is not running, or has stale output or has closed its stdout since its
 * last answer, replace it quietly; write the request line (SIGPIPE blocked in
 * this thread, so a dead reader is an EPIPE, not a signal); read one reply
 * line with poll() until the deadline; parse it. Any failure on the way stops
 * the worker with everything it started, and the verdict records why. */
#include "tasks/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tasks/sandbox_internal.h"
#include "tasks/task_impl.h"

typedef struct worker {
    sandbox_proc proc; /* proc.pid is 0 when not running */
    int busy;
    size_t served; /* requests answered since it started */
    char *buf;     /* reply buffer: max_reply_bytes + 1 */
} worker;

struct ad_sandbox {
    char *command;
    ad_sandbox_params p;
    sandbox_launch launch;
    int lifeline[2]; /* the guardians watch [0]; only this process holds [1] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker *workers;
    size_t n_workers;
    size_t spawned;    /* under mu */
    int ever_answered; /* under mu */
};

void ad_sandbox_default_params(ad_sandbox_params *p) {
    memset(p, 0, sizeof *p);
    p->workers = 2;
    p->timeout_s = 10.0;
    p->cpu_s = 60.0;
    p->memory_bytes = (size_t)1 << 30;
    p->file_bytes = (size_t)16 << 20;
    p->open_files = 64;
    p->max_reply_bytes = (size_t)64 << 10;
    p->max_processes = 256;
    p->isolation = AD_SANDBOX_AUTO;
}

/* The params' ranges; AD_OK when p can be used. */
static int check_params(const ad_sandbox_params *p, ad_error *err) {
    if (p->workers < 1 || p->workers > 256)
        return ad_error_set(err, "verifier: workers = %zu, must be 1..256", p->workers);
    if (!(p->timeout_s > 0 && p->timeout_s <= 86400))
        return ad_error_set(err, "verifier: timeout %g s, must be in (0, 86400]", p->timeout_s);
    if (!(p->cpu_s >= 1 && p->cpu_s <= 1e6))
        return ad_error_set(err, "verifier: CPU limit %g s, must be in [1, 1e6]", p->cpu_s);
    if (p->memory_bytes < ((size_t)16 << 20) || p->memory_bytes > ((size_t)1 << 40))
        return ad_error_set(err, "verifier: memory limit %zu bytes, must be 16 MiB..1 TiB",
                            p->memory_bytes);
    if (p->max_reply_bytes < 16 || p->max_reply_bytes > ((size_t)1 << 30))
        return ad_error_set(err, "verifier: reply cap %zu bytes, must be 16..1 GiB",
                            p->max_reply_bytes);
    if (p->open_files < 4)
        return ad_error_set(err, "verifier: open-files limit %zu, must be >= 4", p->open_files);
    if (p->max_processes < 1 || p->max_processes > 1000000)
        return ad_error_set(err, "verifier: process limit %zu, must be 1..1000000",
                            p->max_processes);
    if (p->isolation < AD_SANDBOX_AUTO || p->isolation > AD_SANDBOX_BASIC)
        return ad_error_set(err, "verifier: unknown isolation %d", p->isolation);
    return AD_OK;
}

int ad_sandbox_open(const char *command, const ad_sandbox_params *p, ad_sandbox **out,
                    ad_error *err) {
    *out = NULL;
    if (!command || !*command) return ad_error_set(err, "verifier: empty command");
    if (check_params(p, err)) return AD_ERR;
    const char *bwrap = p->isolation == AD_SANDBOX_BASIC ? NULL : sandbox_bwrap_path();
    if (p->isolation == AD_SANDBOX_BWRAP && !bwrap) {
        char why[512];
        ad_sandbox_probe(why, sizeof why);
        return ad_error_set(err, "verifier: bubblewrap was asked for, but %s", why);
    }
    ad_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return ad_error_set(err, "verifier: out of memory");
    pthread_mutex_init(&sb->mu, NULL);
    pthread_cond_init(&sb->cv, NULL);
    sb->lifeline[0] = sb->lifeline[1] = -1;
    sb->p = *p;
    sb->p.pass_env = NULL; /* the parsed copy is launch.env_names */
    sb->n_workers = p->workers;
    sb->command = strdup(command);
    sb->workers = calloc(p->workers, sizeof *sb->workers);
    int ok = sb->command && sb->workers;
    for (size_t i = 0; ok && i < p->workers; i++)
        ok = (sb->workers[i].buf = malloc(p->max_reply_bytes + 1)) != NULL;
    if (!ok) {
        ad_sandbox_close(sb);
        return ad_error_set(err, "verifier: out of memory");
    }
    char **names = NULL;
    int rc = sandbox_names_parse(p->pass_env, &names, err);
    if (rc == AD_OK && pipe2(sb->lifeline, O_CLOEXEC) != 0)
        rc = ad_error_set(err, "verifier: pipe: %s", strerror(errno));
    sb->launch = (sandbox_launch){sb->command, &sb->p, bwrap, names, sb->lifeline[0]};
    if (rc != AD_OK) {
        ad_sandbox_close(sb);
        return AD_ERR;
    }
    *out = sb;
    return AD_OK;
}

int ad_sandbox_isolation_used(const ad_sandbox *sb) {
    return sb->launch.bwrap ? AD_SANDBOX_BWRAP : AD_SANDBOX_BASIC;
}

/* ---- processes ------------------------------------------------------------- */

static int spawn(ad_sandbox *sb, worker *w, ad_error *err) {
    if (sandbox_spawn(&sb->launch, &w->proc, err)) return AD_ERR;
    w->served = 0;
    pthread_mutex_lock(&sb->mu);
    sb->spawned++;
    pthread_mutex_unlock(&sb->mu);
    return AD_OK;
}

/* 1 when a running idle worker has printed something unasked or closed its
 * stdout (exited): it cannot serve the next request as it is. */
static int is_stale(const worker *w) {
    struct pollfd pf = {w->proc.from_fd, POLLIN, 0};
    return poll(&pf, 1, 0) != 0;
}

/* ---- one exchange ---------------------------------------------------------- */

enum { IO_OK = 0, IO_TIMEOUT = -1, IO_CLOSED = -2, IO_OVERSIZED = -3 };

static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - sandbox_now();
        if (left <= 0) return IO_TIMEOUT;
        struct pollfd pf = {fd, events, 0};
        int r = poll(&pf, 1, (int)ceil(left * 1000.0));
        if (r > 0) return IO_OK;
        if (r < 0 && errno != EINTR) return IO_CLOSED;
    }
}

/* Writes the whole request with SIGPIPE blocked in this thread: a reader that
 * is gone gives EPIPE, and the pending signal is consumed before unblocking. */
static int write_request(int fd, const char *buf, size_t len, double deadline) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE), rc = IO_OK, broken = 0;
    while (len > 0 && rc == IO_OK) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            rc = wait_fd(fd, POLLOUT, deadline);
        } else {
            broken = n < 0 && errno == EPIPE;
            rc = IO_CLOSED;
        }
    }
    if (broken && !was_pending) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Reads one line into w->buf (NUL-terminated, without the newline). *extra
 * tells whether bytes followed the newline (a protocol violation). */
static int read_reply(worker *w, size_t cap, double deadline, size_t *len, int *extra) {
    size_t have = 0;
    for (;;) {
        char *nl = memchr(w->buf, '\n', have);
        if (nl) {
            *len = (size_t)(nl - w->buf);
            *extra = have > *len + 1;
            *nl = '\0';
            return IO_OK;
        }
        if (have == cap + 1) return IO_OVERSIZED;
        ssize_t n = read(w->proc.from_fd, w->buf + have, cap + 1 - have);
        if (n > 0) {
            have += (size_t)n;
        } else if (n == 0) {
            return IO_CLOSED;
        } else if (errno == EAGAIN || errno == EINTR) {
            int rc = wait_fd(w->proc.from_fd, POLLIN, deadline);
            if (rc != IO_OK) return rc;
        } else {
            return IO_CLOSED;
        }
    }
}

/* Fills v from a reply line; 0 when the line is not a valid reply. */
static int parse_reply(const char *line, size_t len, ad_verdict *v) {
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *correct = cJSON_GetObjectItemCaseSensitive(j, "correct");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(j, "score");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
    int ok = cJSON_IsObject(j) && cJSON_IsBool(correct) &&
             (!score || cJSON_IsNull(score) ||
              (cJSON_IsNumber(score) && score->valuedouble >= 0 && score->valuedouble <= 1));
    if (ok) {
        v->correct = cJSON_IsTrue(correct);
        v->score = cJSON_IsNumber(score) ? score->valuedouble : (v->correct ? 1.0 : 0.0);
        if (cJSON_IsString(reason) && reason->valuestring[0])
            snprintf(v->reason, sizeof v->reason, "verifier: %s", reason->valuestring);
        else
            snprintf(v->reason, sizeof v->reason, "verifier: %s",
                     v->correct ? "correct" : "incorrect");
    }
    cJSON_Delete(j);
    return ok;
}

static void describe_exit(int status, char *buf, size_t cap) {
    if (WIFEXITED(status)) {
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = sigabbrev_np(sig);
        snprintf(buf, cap, "was killed by SIG%s%s", name ? name : "?",
                 sig == SIGXCPU   ? " (CPU time limit)"
                 : sig == SIGXFSZ ? " (file size limit)"
                                  : "");
    } else {
        snprintf(buf, cap, "stopped (wait status %d)", status);
    }
}

/* Outcome of an exchange, for the pool's bookkeeping. */
typedef struct outcome {
    int answered;   /* a valid reply came back */
    int start_fail; /* exit 126/127 on the worker's first request */
} outcome;

/* The worker died (EOF or EPIPE): reap it and explain. */
static void worker_died(worker *w, ad_verdict *v, outcome *o) {
    int status;
    size_t served = w->served;
    sandbox_stop(&w->proc, 0.2, &status);
    char how[96];
    describe_exit(status, how, sizeof how);
    o->start_fail = served == 0 && WIFEXITED(status) &&
                    (WEXITSTATUS(status) == 126 || WEXITSTATUS(status) == 127);
    ad_verdict_fail(v, "verifier %s before answering", how);
}

static int exchange(ad_sandbox *sb, worker *w, const char *req, size_t req_len, ad_verdict *v,
                    outcome *o, ad_error *err) {
    int rc;
    size_t len = 0;
    int extra = 0;
    /* A worker that had answered before may die for reasons of its own (a
     * one-shot verifier exiting after its answer races with our next write):
     * then the request is tried once more on a fresh worker. */
    for (int attempt = 0;; attempt++) {
        if (w->proc.pid && is_stale(w)) sandbox_stop(&w->proc, 0.0, NULL);
        if (!w->proc.pid && spawn(sb, w, err)) return AD_ERR;
        size_t served = w->served;
        double deadline = sandbox_now() + sb->p.timeout_s;
        rc = write_request(w->proc.to_fd, req, req_len, deadline);
        if (rc == IO_OK) rc = read_reply(w, sb->p.max_reply_bytes, deadline, &len, &extra);
        if (rc != IO_CLOSED) break;
        worker_died(w, v, o);
        if (served == 0 || attempt == 1) return AD_OK;
    }
    if (rc == IO_TIMEOUT || rc == IO_OVERSIZED) {
        sandbox_stop(&w->proc, 0.0, NULL);
        if (rc == IO_TIMEOUT)
            return ad_verdict_fail(v, "verifier timed out after %g s", sb->p.timeout_s);
        return ad_verdict_fail(v, "verifier reply longer than %zu bytes", sb->p.max_reply_bytes);
    }
    if (!parse_reply(w->buf, len, v)) {
        char shown[80];
        ad_quote(w->buf, shown, sizeof shown); /* the line, NUL-terminated by read_reply */
        sandbox_stop(&w->proc, 0.0, NULL);
        return ad_verdict_fail(
            v, "verifier reply is not {\"correct\": bool, \"score\": 0..1}: '%s'", shown);
    }
    o->answered = 1;
    w->served++;
    /* More than one line, or close to the CPU limit: replace it before next use. */
    double cpu = sandbox_tree_cpu(w->proc.pid);
    if (extra || cpu > 0.5 * sb->p.cpu_s) sandbox_stop(&w->proc, 0.0, NULL);
    return AD_OK;
}

/* ---- the pool ---------------------------------------------------------------- */

static worker *acquire(ad_sandbox *sb) {
    pthread_mutex_lock(&sb->mu);
    for (;;) {
        for (size_t i = 0; i < sb->n_workers; i++) {
            if (!sb->workers[i].busy) {
                sb->workers[i].busy = 1;
                pthread_mutex_unlock(&sb->mu);
                return &sb->workers[i];
            }
        }
        pthread_cond_wait(&sb->cv, &sb->mu);
    }
}

/* Returns the worker to the pool; tells whether the failure to start must be
 * reported as an error (no worker has ever answered). */
static int release(ad_sandbox *sb, worker *w, const outcome *o) {
    pthread_mutex_lock(&sb->mu);
    if (o->answered) sb->ever_answered = 1;
    int fatal = o->start_fail && !sb->ever_answered;
    w->busy = 0;
    pthread_cond_signal(&sb->cv);
    pthread_mutex_unlock(&sb->mu);
    return fatal;
}

int ad_sandbox_verify(ad_sandbox *sb, const char *prompt, const char *answer, ad_verdict *v,
                      ad_error *err) {
    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o && cJSON_AddStringToObject(o, "prompt", prompt) &&
        cJSON_AddStringToObject(o, "answer", answer))
        line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    size_t len = line ? strlen(line) : 0;
    char *req = line ? realloc(line, len + 2) : NULL;
    if (!req) {
        free(line);
        return ad_error_set(err, "verifier: out of memory");
    }
    req[len++] = '\n';
    req[len] = '\0';
    worker *w = acquire(sb);
    outcome out = {0, 0};
    int rc = exchange(sb, w, req, len, v, &out, err);
    if (release(sb, w, &out) && rc == AD_OK)
        rc = ad_error_set(err, "verifier '%s' could not be started (%s)", sb->command, v->reason);
    free(req);
    return rc;
}

/* ---- batches ------------------------------------------------------------------ */

/* A batch shared by its threads: each takes the next pair until none is left. */
typedef struct batch {
    ad_sandbox *sb;
    const char *const *prompts, *const *answers;
    ad_verdict *verdicts;
    size_t n, next;     /* next: under mu */
    size_t failed_at;   /* lowest failed index (n: none), under mu */
    ad_error first_err; /* its error */
    pthread_mutex_t mu;
} batch;

static void *batch_thread(void *arg) {
    batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        size_t i = b->next < b->failed_at ? b->next++ : b->n;
        pthread_mutex_unlock(&b->mu);
        if (i >= b->n) return NULL;
        ad_error err;
        if (ad_sandbox_verify(b->sb, b->prompts[i], b->answers[i], &b->verdicts[i], &err)) {
            pthread_mutex_lock(&b->mu);
            if (i < b->failed_at) {
                b->failed_at = i;
                b->first_err = err;
            }
            pthread_mutex_unlock(&b->mu);
        }
    }
}

int ad_sandbox_verify_batch(ad_sandbox *sb, const char *const *prompts, const char *const *answers,
                            size_t n, ad_verdict *verdicts, ad_error *err) {
    batch b = {sb, prompts, answers, verdicts, n, 0, n, {{0}}, PTHREAD_MUTEX_INITIALIZER};
    size_t threads = n < sb->n_workers ? n : sb->n_workers, started = 0;
    pthread_t th[256];
    /* One thread per worker; the caller's is the first. A thread that cannot
     * be created only means less parallelism. */
    while (started + 1 < threads && pthread_create(&th[started], NULL, batch_thread, &b) == 0)
        started++;
    batch_thread(&b);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&b.mu);
    if (b.failed_at == n) return AD_OK;
    if (err) *err = b.first_err;
    return ad_error_prefix(err, "answer %zu: ", b.failed_at);
}

size_t ad_sandbox_spawn_count(ad_sandbox *sb) {
    pthread_mutex_lock(&sb->mu);
    size_t n = sb->spawned;
    pthread_mutex_unlock(&sb->mu);
    return n;
}

void ad_sandbox_close(ad_sandbox *sb) {
    if (!sb) return;
    for (size_t i = 0; sb->workers && i < sb->n_workers; i++) {
        if (sb->workers[i].proc.pid) sandbox_stop(&sb->workers[i].proc, 0.0, NULL);
        free(sb->workers[i].buf);
    }
    for (int i = 0; i < 2; i++)
        if (sb->lifeline[i] >= 0) close(sb->lifeline[i]);
    sandbox_names_free(sb->launch.env_names);
    pthread_mutex_destroy(&sb->mu);
    pthread_cond_destroy(&sb->cv);
    free(sb->workers);
    free(sb->command);
    free(sb);
}
