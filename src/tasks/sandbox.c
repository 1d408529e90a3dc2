/* sandbox.c: the external verifier pool: spawning workers in their own process
 * group under resource limits, one request/reply exchange with a deadline,
 * and killing and replacing workers that misbehave.
 *
 * The story of one request: take a free worker (waiting if all are busy);
 * if it is not running, or has stale output or has closed its stdout since its
 * last answer, replace it quietly; write the request line (SIGPIPE blocked in
 * this thread, so a dead reader is an EPIPE, not a signal); read one reply
 * line with poll() until the deadline; parse it. Any failure on the way kills
 * the worker's whole process group and reaps it, and the verdict records why.
 * Workers die with us too (PR_SET_PDEATHSIG), and anything they fork stays in
 * their group, so nothing outlives the pool. PR_SET_PDEATHSIG follows the
 * thread that forked: when that thread exits, the idle workers it started die
 * and are restarted quietly on their next use (the stale check). */
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

#include "tasks/task_impl.h"

typedef struct worker {
    pid_t pid;          /* 0 when not running */
    int to_fd, from_fd; /* our ends of its stdin and stdout */
    int busy;
    size_t served; /* requests answered since it started */
    char *buf;     /* reply buffer: max_reply_bytes + 1 */
} worker;

struct ad_sandbox {
    char *command;
    ad_sandbox_params p;
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
}

int ad_sandbox_open(const char *command, const ad_sandbox_params *p, ad_sandbox **out,
                    ad_error *err) {
    *out = NULL;
    if (!command || !*command) return ad_error_set(err, "verifier: empty command");
    if (p->workers < 1 || p->workers > 256)
        return ad_error_set(err, "verifier: workers = %zu, must be 1..256", p->workers);
    if (!(p->timeout_s > 0 && p->timeout_s <= 86400))
        return ad_error_set(err, "verifier: timeout %g s, must be in (0, 86400]", p->timeout_s);
    if (!(p->cpu_s >= 1 && p->cpu_s <= 1e6))
        return ad_error_set(err, "verifier: CPU limit %g s, must be in [1, 1e6]", p->cpu_s);
    if (p->max_reply_bytes < 16 || p->max_reply_bytes > ((size_t)1 << 30))
        return ad_error_set(err, "verifier: reply cap %zu bytes, must be 16..1 GiB",
                            p->max_reply_bytes);
    if (p->open_files < 4)
        return ad_error_set(err, "verifier: open-files limit %zu, must be >= 4", p->open_files);
    ad_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return ad_error_set(err, "verifier: out of memory");
    pthread_mutex_init(&sb->mu, NULL);
    pthread_cond_init(&sb->cv, NULL);
    sb->p = *p;
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
    *out = sb;
    return AD_OK;
}

/* ---- processes ------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void set_limit(int resource, rlim_t value) {
    struct rlimit r = {value, value};
    setrlimit(resource, &r);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void exec_child(const ad_sandbox *sb, int in_fd, int out_fd, int err_fd, pid_t parent) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127); /* the parent died before prctl */
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || (err_fd >= 0 && dup2(err_fd, 2) < 0))
        _exit(127);
    if (close_range(3, ~0u, 0) != 0) /* kernels before 5.9 */
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    int reset[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXCPU, SIGXFSZ};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaction(reset[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    rlim_t cpu = (rlim_t)ceil(sb->p.cpu_s);
    struct rlimit r = {cpu, cpu + 1}; /* SIGXCPU at the soft limit, SIGKILL one second later */
    setrlimit(RLIMIT_CPU, &r);
    if (sb->p.memory_bytes) set_limit(RLIMIT_AS, (rlim_t)sb->p.memory_bytes);
    set_limit(RLIMIT_FSIZE, (rlim_t)sb->p.file_bytes);
    set_limit(RLIMIT_NOFILE, (rlim_t)sb->p.open_files);
    set_limit(RLIMIT_CORE, 0);
    execl("/bin/sh", "sh", "-c", sb->command, (char *)NULL);
    _exit(127);
}

static int spawn(ad_sandbox *sb, worker *w, ad_error *err) {
    int in[2], out[2], err_fd = -1;
    if (pipe2(in, O_CLOEXEC)) return ad_error_set(err, "verifier: pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return ad_error_set(err, "verifier: pipe: %s", strerror(errno));
    }
    if (!sb->p.inherit_stderr) err_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) exec_child(sb, in[0], out[1], err_fd, parent);
    int fork_errno = errno;
    close(in[0]);
    close(out[1]);
    if (err_fd >= 0) close(err_fd);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return ad_error_set(err, "verifier: fork: %s", strerror(fork_errno));
    }
    setpgid(pid, pid); /* also done by the child; whichever runs first wins the race */
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    w->pid = pid;
    w->to_fd = in[1];
    w->from_fd = out[0];
    w->served = 0;
    pthread_mutex_lock(&sb->mu);
    sb->spawned++;
    pthread_mutex_unlock(&sb->mu);
    return AD_OK;
}

/* Kills the worker's process group and reaps it; *status gets its wait
 * status (when status is not NULL). A worker that is exiting on its own gets
 * up to grace_s to do so, so that its own exit status is seen. The group is
 * killed before the leader is reaped: while the leader is a zombie its pid,
 * and so the group id, cannot be reused by an unrelated process. */
static void stop_worker(worker *w, double grace_s, int *status) {
    close(w->to_fd);
    close(w->from_fd);
    for (double end = now_s() + grace_s;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r < 0 || si.si_pid == w->pid || now_s() >= end) break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    kill(-w->pid, SIGKILL); /* its children, if it left any */
    kill(w->pid, SIGKILL);
    int st = 0;
    while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (status) *status = st;
    w->pid = 0;
}

/* 1 when a running idle worker has printed something unasked or closed its
 * stdout (exited): it cannot serve the next request as it is. */
static int is_stale(const worker *w) {
    struct pollfd pf = {w->from_fd, POLLIN, 0};
    return poll(&pf, 1, 0) != 0;
}

/* CPU seconds used by a process, from /proc (-1 when unknown). */
static double cpu_used(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long utime, stime;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- one exchange ---------------------------------------------------------- */

enum { IO_OK = 0, IO_TIMEOUT = -1, IO_CLOSED = -2, IO_OVERSIZED = -3 };

static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - now_s();
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
        ssize_t n = read(w->from_fd, w->buf + have, cap + 1 - have);
        if (n > 0) {
            have += (size_t)n;
        } else if (n == 0) {
            return IO_CLOSED;
        } else if (errno == EAGAIN || errno == EINTR) {
            int rc = wait_fd(w->from_fd, POLLIN, deadline);
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
    stop_worker(w, 0.2, &status);
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
        if (w->pid && is_stale(w)) stop_worker(w, 0.0, NULL);
        if (!w->pid && spawn(sb, w, err)) return AD_ERR;
        size_t served = w->served;
        double deadline = now_s() + sb->p.timeout_s;
        rc = write_request(w->to_fd, req, req_len, deadline);
        if (rc == IO_OK) rc = read_reply(w, sb->p.max_reply_bytes, deadline, &len, &extra);
        if (rc != IO_CLOSED) break;
        worker_died(w, v, o);
        if (served == 0 || attempt == 1) return AD_OK;
    }
    if (rc == IO_TIMEOUT || rc == IO_OVERSIZED) {
        stop_worker(w, 0.0, NULL);
        if (rc == IO_TIMEOUT)
            return ad_verdict_fail(v, "verifier timed out after %g s", sb->p.timeout_s);
        return ad_verdict_fail(v, "verifier reply longer than %zu bytes", sb->p.max_reply_bytes);
    }
    if (!parse_reply(w->buf, len, v)) {
        char shown[80];
        ad_quote(w->buf, shown, sizeof shown); /* the line, NUL-terminated by read_reply */
        stop_worker(w, 0.0, NULL);
        return ad_verdict_fail(
            v, "verifier reply is not {\"correct\": bool, \"score\": 0..1}: '%s'", shown);
    }
    o->answered = 1;
    w->served++;
    /* More than one line, or close to the CPU limit: replace it before next use. */
    double cpu = cpu_used(w->pid);
    if (extra || cpu > 0.5 * sb->p.cpu_s) stop_worker(w, 0.0, NULL);
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

size_t ad_sandbox_spawn_count(ad_sandbox *sb) {
    pthread_mutex_lock(&sb->mu);
    size_t n = sb->spawned;
    pthread_mutex_unlock(&sb->mu);
    return n;
}

void ad_sandbox_close(ad_sandbox *sb) {
    if (!sb) return;
    for (size_t i = 0; sb->workers && i < sb->n_workers; i++) {
        if (sb->workers[i].pid) stop_worker(&sb->workers[i], 0.0, NULL);
        free(sb->workers[i].buf);
    }
    pthread_mutex_destroy(&sb->mu);
    pthread_cond_destroy(&sb->cv);
    free(sb->workers);
    free(sb->command);
    free(sb);
}
