/* sandbox_spawn.c: starting and stopping one verifier worker: its guardian
 * process, the bubblewrap command line, the limits, the cleared environment
 * and the private temporary directory; and the once-per-process probe for
 * bubblewrap. Not here: the request/reply protocol and the pool (sandbox.c).
 *
 * The story of a worker. We make a private directory, then fork a guardian:
 * a copy of our process that never execs and from then on calls only
 * async-signal-safe functions (we may be multi-threaded). The guardian makes
 * itself a child subreaper, so that every process the verifier starts stays
 * its descendant even after its parent dies or it calls setsid. It forks the
 * verifier (/bin/sh -c CMD, or bwrap ... /bin/sh -c CMD) in a process group of
 * its own, under the resource limits, with the cleared environment, and waits
 * for one of three things: the verifier exits; we ask it to stop (SIGTERM);
 * or our process is gone. The last is seen on the lifeline, a pipe whose
 * write end only our process holds (close-on-exec, and closed by every
 * guardian): when we die, however we die, the guardian's read end reports a
 * hang-up. Then it kills the verifier's group, and kills every child it has
 * until none is left (orphans keep arriving as their parents die), removes
 * the private directory (we may be gone and unable to), and exits:
 * with the verifier's own status when the verifier ended first (so the pool
 * can say "killed by SIGSEGV"), else by SIGKILL.
 *
 * Under bubblewrap the verifier is bwrap, whose sandbox is a new PID
 * namespace: its first process dies with bwrap (--die-with-parent), and the
 * kernel kills the whole namespace with it. bwrap reports a command killed by
 * signal n as exit status 128 + n, which the guardian turns back into death
 * by that signal. */
#include "tasks/sandbox_internal.h"

#include <dirent.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIFELINE_FD 3
#define STOP_GRACE_S 3.0 /* how long a guardian may take to clear up after SIGTERM */
#define PROBE_TIMEOUT_S 20.0
#define TREE_MAX 64 /* processes looked at by sandbox_tree_cpu */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

double sandbox_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* ---- names of environment variables ------------------------------------------ */

void sandbox_names_free(char **names) {
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

int sandbox_names_parse(const char *list, char ***out, ad_error *err) {
    *out = NULL;
    size_t cap = 1, n = 0;
    for (const char *s = list ? list : ""; *s; s++)
        cap += *s == ',' || *s == ' ';
    char **names = calloc(cap + 1, sizeof *names);
    if (!names) return ad_error_set(err, "verifier: out of memory");
    for (const char *s = list ? list : ""; *s;) {
        size_t len = strcspn(s, ", \t");
        if (len) {
            int ok = !(s[0] >= '0' && s[0] <= '9');
            for (size_t i = 0; i < len; i++)
                ok = ok && (s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
                            (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'));
            if (!ok || !(names[n] = strndup(s, len))) {
                sandbox_names_free(names);
                return ad_error_set(err, "verifier environment: '%.*s' is not a variable name",
                                    (int)(len > 64 ? 64 : len), s);
            }
            n++;
        }
        s += len;
        s += strspn(s, ", \t");
    }
    *out = names;
    return AD_OK;
}

/* ---- the private directory ---------------------------------------------------- */

static char *make_tmpdir(ad_error *err) {
    const char *base = getenv("TMPDIR");
    struct stat st;
    if (!base || base[0] != '/' || stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) base = "/tmp";
    size_t len = strlen(base) + 40;
    char *dir = malloc(len);
    if (!dir) {
        ad_error_set(err, "verifier: out of memory");
        return NULL;
    }
    snprintf(dir, len, "%s/autodidact-verifier-XXXXXX", base);
    if (!mkdtemp(dir)) {
        ad_error_set(err, "verifier: cannot create a directory in %s: %s", base, strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

/* Removes a file or a directory tree at (parent, name), with raw system
 * calls only: the guardian, a fork of a multi-threaded process, uses it too.
 * Directories the verifier closed (chmod 000) are opened up first; trees
 * deeper than 32 levels are left. */
static void remove_at(int parent, const char *name, int depth) {
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT || depth > 32) return;
    fchmodat(parent, name, 0700, AT_SYMLINK_NOFOLLOW);
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    /* Entries removed while reading may shift the rest: read again from the
     * start until nothing is left (or nothing more can be removed). */
    for (int pass = 0, found = 1; found && pass < 8; pass++) {
        char buf[1024];
        ssize_t n;
        found = 0;
        lseek(fd, 0, SEEK_SET);
        while ((n = getdents64(fd, buf, sizeof buf)) > 0) {
            for (ssize_t off = 0; off < n;) {
                const struct dirent64 *e = (const struct dirent64 *)(buf + off);
                off += e->d_reclen;
                const char *d = e->d_name;
                if (d[0] == '.' && (!d[1] || (d[1] == '.' && !d[2]))) continue;
                remove_at(fd, d, depth + 1);
                found = 1;
            }
        }
    }
    close(fd);
    unlinkat(parent, name, AT_REMOVEDIR);
}

static void remove_tree(const char *dir) {
    remove_at(AT_FDCWD, dir, 0);
}

/* ---- what the verifier is given ------------------------------------------------ */

/* "NAME=value" (malloc'd), or NULL when out of memory. */
static char *env_entry(const char *name, const char *value) {
    size_t len = strlen(name) + strlen(value) + 2;
    char *e = malloc(len);
    if (e) snprintf(e, len, "%s=%s", name, value);
    return e;
}

/* PATH, HOME and TMPDIR (both the private directory), then the named
 * variables that are set. NULL-terminated, freed with sandbox_names_free. */
static char **build_env(const sandbox_launch *l, const char *tmpdir) {
    size_t n = 0;
    while (l->env_names[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env) return NULL;
    const char *path = getenv("PATH");
    size_t k = 0;
    int ok = (env[k++] = env_entry("PATH", path && *path ? path : DEFAULT_PATH)) &&
             (env[k++] = env_entry("HOME", tmpdir)) && (env[k++] = env_entry("TMPDIR", tmpdir));
    for (size_t i = 0; ok && i < n; i++) {
        const char *name = l->env_names[i], *value = getenv(name);
        if (!value || !strcmp(name, "PATH") || !strcmp(name, "HOME") || !strcmp(name, "TMPDIR"))
            continue;
        ok = (env[k++] = env_entry(name, value)) != NULL;
    }
    if (ok) return env;
    sandbox_names_free(env);
    return NULL;
}

/* bwrap's options: a read-only view of everything, a private /dev and /proc
 * (with the knobs of the kernel read-only), new PID, network, IPC and UTS
 * namespaces, no capabilities (they matter when we are root), a new session
 * (no terminal to push keystrokes into). */
static const char *const bwrap_options[] = {
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--ro-bind",
    "/proc/sys",
    "/proc/sys",
    "--ro-bind-try",
    "/proc/sysrq-trigger",
    "/proc/sysrq-trigger",
    "--ro-bind-try",
    "/proc/irq",
    "/proc/irq",
    "--ro-bind-try",
    "/proc/bus",
    "/proc/bus",
    "--ro-bind-try",
    "/proc/fs",
    "/proc/fs",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
};
#define N_BWRAP_OPTIONS (sizeof bwrap_options / sizeof bwrap_options[0])

/* The verifier's argv (pointers into constants, tmpdir and command; free the
 * array only), or NULL when out of memory. */
static const char **build_argv(const char *bwrap, const char *tmpdir, const char *command) {
    const char **argv = calloc(N_BWRAP_OPTIONS + 12, sizeof *argv);
    if (!argv) return NULL;
    size_t k = 0;
    if (bwrap) {
        argv[k++] = "bwrap";
        for (size_t i = 0; i < N_BWRAP_OPTIONS; i++)
            argv[k++] = bwrap_options[i];
        argv[k++] = "--bind";
        argv[k++] = tmpdir;
        argv[k++] = tmpdir;
        argv[k++] = "--";
        argv[k++] = "/bin/sh";
    } else {
        argv[k++] = "sh";
    }
    argv[k++] = "-c";
    argv[k++] = command;
    return argv;
}

/* RLIMIT_NPROC counts every process and thread of the user, not only the
 * verifier's: the limit is what the user runs now plus the headroom. Root is
 * exempt from the limit in the kernel, so it is left alone there. */
static rlim_t nproc_limit(size_t headroom) {
    if (geteuid() == 0 || getuid() == 0) return RLIM_INFINITY;
    size_t count = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char path[300], buf[2048];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0) continue;
        buf[len] = '\0';
        const char *uid = strstr(buf, "\nUid:"), *threads = strstr(buf, "\nThreads:");
        if (uid && threads && strtoul(uid + 5, NULL, 10) == (unsigned long)getuid())
            count += strtoul(threads + 9, NULL, 10);
    }
    if (d) closedir(d);
    return (rlim_t)(count + headroom);
}

/* ---- the guardian (after fork: async-signal-safe calls only) ------------------- */

typedef struct child_plan {
    const char *exe;
    char *const *argv, *const *envp;
    const ad_sandbox_params *p;
    const char *tmpdir; /* removed by the guardian once everything is dead */
    rlim_t nproc;
    int bwrap;
    pid_t guardian;
} child_plan;

static volatile sig_atomic_t guardian_stop;

static void on_term(int sig) {
    guardian_stop = 1;
}

static void on_chld(int sig) {}

static void set_limit(int resource, rlim_t soft, rlim_t hard) {
    struct rlimit r = {soft, hard};
    setrlimit(resource, &r);
}

static void close_from(unsigned fd) {
    if (close_range(fd, ~0u, 0) == 0) return;
    struct rlimit r;
    rlim_t top = getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < 65536 ? r.rlim_cur : 65536;
    for (rlim_t i = fd; i < top; i++)
        close((int)i);
}

/* The verifier: stdin, stdout and stderr are set up by the guardian. */
static void exec_verifier(const child_plan *c) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != c->guardian) _exit(127); /* the guardian died before prctl */
    close_from(3);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    rlim_t cpu = (rlim_t)ceil(c->p->cpu_s);
    set_limit(RLIMIT_CPU, cpu, cpu + 1); /* SIGXCPU at the soft limit, SIGKILL a second later */
    set_limit(RLIMIT_AS, (rlim_t)c->p->memory_bytes, (rlim_t)c->p->memory_bytes);
    set_limit(RLIMIT_FSIZE, (rlim_t)c->p->file_bytes, (rlim_t)c->p->file_bytes);
    set_limit(RLIMIT_NOFILE, (rlim_t)c->p->open_files, (rlim_t)c->p->open_files);
    if (c->nproc != RLIM_INFINITY) set_limit(RLIMIT_NPROC, c->nproc, c->nproc);
    set_limit(RLIMIT_CORE, 0, 0);
    execve(c->exe, c->argv, c->envp);
    _exit(127);
}

/* SIGKILLs every child listed in /proc/thread-self/children. */
static void kill_children(void) {
    int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    ssize_t len = read(fd, buf, sizeof buf);
    close(fd);
    long pid = 0;
    for (ssize_t i = 0; i < len; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') {
            pid = pid * 10 + (buf[i] - '0');
        } else {
            if (pid > 0) kill((pid_t)pid, SIGKILL); /* a number cut at the end is not reached */
            pid = 0;
        }
    }
}

/* Kills and reaps every descendant; returns the verifier's wait status. */
static int sweep(pid_t v) {
    kill(-v, SIGKILL); /* v is not reaped yet: its group id cannot have been reused */
    int vst = 0;
    for (;;) {
        kill_children();
        int st;
        pid_t r = waitpid(-1, &st, 0);
        if (r == v) vst = st;
        if (r < 0 && errno != EINTR) return vst;
    }
}

/* Reaps finished orphans; 1 when the verifier itself has ended (left unreaped). */
static int verifier_ended(pid_t v) {
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return 0;
        if (si.si_pid == v) return 1;
        waitpid(si.si_pid, NULL, 0);
    }
}

/* Ends the guardian the way the verifier ended. */
static void mirror_exit(int st, int bwrap) {
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
    if (bwrap && code > 128 && code < 128 + 65) sig = code - 128;
    int stops = sig == SIGCHLD || sig == SIGCONT || sig == SIGSTOP || sig == SIGTSTP ||
                sig == SIGTTIN || sig == SIGTTOU || sig == SIGURG || sig == SIGWINCH;
    if (sig && !stops) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        kill(getpid(), sig);
    }
    _exit(sig ? 128 + sig : code);
}

/* Puts fds in_r, out_w, err (or our stderr when -1) and the lifeline at 0, 1,
 * 2 and 3, and closes everything else we inherited. */
static int guardian_fds(int in_r, int out_w, int err_fd, int lifeline) {
    int a = fcntl(in_r, F_DUPFD, 10), b = fcntl(out_w, F_DUPFD, 10);
    int c = fcntl(err_fd >= 0 ? err_fd : 2, F_DUPFD, 10), d = fcntl(lifeline, F_DUPFD, 10);
    if (a < 0 || b < 0 || c < 0 || d < 0) return -1;
    if (dup2(a, 0) < 0 || dup2(b, 1) < 0 || dup2(c, 2) < 0 || dup2(d, LIFELINE_FD) < 0) return -1;
    close_from(LIFELINE_FD + 1);
    return 0;
}

static void guardian_main(child_plan *c, int in_r, int out_w, int err_fd, int lifeline) {
    sigset_t block, none;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, NULL);
    setpgid(0, 0);
    if (guardian_fds(in_r, out_w, err_fd, lifeline) != 0) _exit(127);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    set_limit(RLIMIT_CORE, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* a terminal's signals are for us, not the guardian */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    c->guardian = getpid();
    pid_t v = fork();
    if (v == 0) exec_verifier(c);
    if (v < 0) _exit(127);
    close(0);
    close(1);
    sigemptyset(&none);
    int ended = 0;
    while (!guardian_stop && !(ended = verifier_ended(v))) {
        struct pollfd pf = {LIFELINE_FD, POLLIN, 0};
        if (ppoll(&pf, 1, NULL, &none) > 0) break; /* the lifeline broke: we are gone */
    }
    int st = sweep(v);
    remove_tree(c->tmpdir); /* also when we are gone and cannot do it */
    if (ended) mirror_exit(st, c->bwrap);
    kill(getpid(), SIGKILL); /* stopped: reported as killed, like any stopped worker */
    _exit(137);
}

/* ---- starting and stopping ---------------------------------------------------- */

static int make_pipes(int in[2], int out[2], ad_error *err) {
    if (pipe2(in, O_CLOEXEC)) return ad_error_set(err, "verifier: pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC) == 0) return AD_OK;
    int e = errno;
    close(in[0]);
    close(in[1]);
    return ad_error_set(err, "verifier: pipe: %s", strerror(e));
}

/* Forks the guardian; returns its pid or -1 (errno set). */
static pid_t fork_guardian(const sandbox_launch *l, const char *tmpdir, char **env,
                           const char **argv, int in[2], int out[2]) {
    int err_fd = l->p->inherit_stderr ? -1 : open("/dev/null", O_WRONLY | O_CLOEXEC);
    child_plan c = {.exe = l->bwrap ? l->bwrap : "/bin/sh",
                    .argv = (char *const *)argv,
                    .envp = env,
                    .p = l->p,
                    .tmpdir = tmpdir,
                    .nproc = nproc_limit(l->p->max_processes),
                    .bwrap = l->bwrap != NULL};
    pid_t pid = fork();
    if (pid == 0) guardian_main(&c, in[0], out[1], err_fd, l->lifeline_r);
    int e = errno;
    if (err_fd >= 0) close(err_fd);
    errno = e;
    return pid;
}

int sandbox_spawn(const sandbox_launch *l, sandbox_proc *out, ad_error *err) {
    char *tmpdir = make_tmpdir(err);
    if (!tmpdir) return AD_ERR;
    char **env = build_env(l, tmpdir);
    const char **argv = build_argv(l->bwrap, tmpdir, l->command);
    int in[2], out_p[2], rc = AD_ERR;
    if (!env || !argv) {
        ad_error_set(err, "verifier: out of memory");
    } else if (make_pipes(in, out_p, err) == AD_OK) {
        pid_t pid = fork_guardian(l, tmpdir, env, argv, in, out_p);
        int e = errno;
        close(in[0]);
        close(out_p[1]);
        if (pid < 0) {
            close(in[1]);
            close(out_p[0]);
            ad_error_set(err, "verifier: fork: %s", strerror(e));
        } else {
            fcntl(in[1], F_SETFL, O_NONBLOCK);
            fcntl(out_p[0], F_SETFL, O_NONBLOCK);
            *out = (sandbox_proc){pid, in[1], out_p[0], tmpdir};
            rc = AD_OK;
        }
    }
    sandbox_names_free(env);
    free(argv);
    if (rc != AD_OK) {
        remove_tree(tmpdir);
        free(tmpdir);
    }
    return rc;
}

/* 1 when pid has exited (not reaped) within wait_s. */
static int exited_within(pid_t pid, double wait_s) {
    for (double end = sandbox_now() + wait_s;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r < 0 || si.si_pid == pid) return 1;
        if (sandbox_now() >= end) return 0;
        sleep_ms(1);
    }
}

void sandbox_stop(sandbox_proc *pr, double grace_s, int *status) {
    close(pr->to_fd);
    close(pr->from_fd);
    if (!exited_within(pr->pid, grace_s)) {
        kill(pr->pid, SIGTERM); /* the guardian clears up and ends */
        if (!exited_within(pr->pid, STOP_GRACE_S)) kill(pr->pid, SIGKILL);
    }
    int st = 0;
    while (waitpid(pr->pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (status) *status = st;
    pr->pid = 0;
    if (pr->tmpdir) remove_tree(pr->tmpdir);
    free(pr->tmpdir);
    pr->tmpdir = NULL;
}

/* ---- CPU use of a worker's processes ------------------------------------------- */

static int read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    return 0;
}

/* CPU seconds used by one process (-1 when unknown). */
static double proc_cpu(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf)) return -1;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long utime, stime;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double sandbox_tree_cpu(pid_t pid) {
    pid_t queue[TREE_MAX];
    size_t n = 1;
    queue[0] = pid;
    double most = -1;
    for (size_t i = 0; i < n; i++) {
        double cpu = proc_cpu(queue[i]);
        if (cpu > most) most = cpu;
        char path[96], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)queue[i], (int)queue[i]);
        if (read_small(path, buf, sizeof buf)) continue;
        for (char *s = buf, *end; n < TREE_MAX; s = end) {
            long child = strtol(s, &end, 10);
            if (end == s) break;
            queue[n++] = (pid_t)child;
        }
    }
    return most;
}

/* ---- is bubblewrap usable here? ---------------------------------------------- */

static struct {
    const char *bwrap; /* NULL: basic sandbox */
    char cause[320];   /* why not, when bwrap is NULL */
    char path[512];
} probe;
static pthread_once_t probe_once_flag = PTHREAD_ONCE_INIT;

/* Finds bwrap (AD_BWRAP, else PATH) into probe.path; 0 when there is none. */
static int find_bwrap(void) {
    const char *env = getenv("AD_BWRAP");
    if (env && (!*env || !strcmp(env, "none"))) {
        snprintf(probe.cause, sizeof probe.cause, "bubblewrap is turned off (AD_BWRAP=%s)", env);
        return 0;
    }
    if (env && strchr(env, '/')) {
        snprintf(probe.path, sizeof probe.path, "%s", env);
        if (access(probe.path, X_OK) == 0) return 1;
        snprintf(probe.cause, sizeof probe.cause, "AD_BWRAP=%s is not an executable", env);
        return 0;
    }
    const char *dirs = getenv("PATH");
    for (const char *s = dirs && *dirs ? dirs : DEFAULT_PATH; *s;) {
        size_t len = strcspn(s, ":");
        if (len && len < sizeof probe.path - 8) {
            snprintf(probe.path, sizeof probe.path, "%.*s/%s", (int)len, s, env ? env : "bwrap");
            if (access(probe.path, X_OK) == 0) return 1;
        }
        s += len + (s[len] == ':');
    }
    snprintf(probe.cause, sizeof probe.cause,
             "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)");
    return 0;
}

/* Runs bwrap with the sandbox's options on "exit 0"; 0 when that works, else
 * the first line of what bwrap said goes to probe.cause. */
static int try_bwrap(void) {
    ad_error err;
    char *tmpdir = make_tmpdir(&err);
    const char **argv = tmpdir ? build_argv(probe.path, tmpdir, "exit 0") : NULL;
    char *env[] = {"PATH=" DEFAULT_PATH, NULL};
    int pipefd[2] = {-1, -1}, ok = 0;
    if (argv && pipe2(pipefd, O_CLOEXEC) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_RDWR);
            if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(pipefd[1], 2) < 0)
                _exit(127);
            execve(probe.path, (char *const *)argv, env);
            _exit(127);
        }
        close(pipefd[1]);
        char said[256] = "";
        size_t have = 0;
        struct pollfd pf = {pipefd[0], POLLIN, 0};
        for (double end = sandbox_now() + PROBE_TIMEOUT_S; pid > 0 && sandbox_now() < end;) {
            if (poll(&pf, 1, 100) <= 0) continue;
            ssize_t n = read(pipefd[0], said + have, sizeof said - 1 - have);
            if (n <= 0) break;
            have += (size_t)n;
        }
        said[have] = '\0';
        said[strcspn(said, "\n")] = '\0';
        int st = 0;
        if (pid > 0 && !exited_within(pid, 0.0)) kill(pid, SIGKILL);
        if (pid > 0) waitpid(pid, &st, 0);
        ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok)
            snprintf(probe.cause, sizeof probe.cause, "bwrap cannot run here (%s)",
                     said[0] ? said : "no message");
        close(pipefd[0]);
    } else {
        snprintf(probe.cause, sizeof probe.cause, "bwrap could not be tried (%.200s)",
                 tmpdir ? strerror(errno) : err.msg);
    }
    free(argv);
    if (tmpdir) remove_tree(tmpdir);
    free(tmpdir);
    return ok;
}

static void run_probe(void) {
    if (find_bwrap() && try_bwrap()) probe.bwrap = probe.path;
}

const char *sandbox_bwrap_path(void) {
    pthread_once(&probe_once_flag, run_probe);
    return probe.bwrap;
}

int ad_sandbox_probe(char *why, size_t cap) {
    const char *bwrap = sandbox_bwrap_path();
    int root = geteuid() == 0 || getuid() == 0;
    if (why && cap) {
        why[0] = '\0';
        if (!bwrap)
            snprintf(why, cap,
                     "%s; verifiers run in the basic sandbox: no PID namespace, no network "
                     "isolation, no read-only filesystem%s",
                     probe.cause, root ? ", and no process limit (root is exempt from it)" : "");
        else if (root)
            snprintf(why, cap,
                     "running as root: no process limit for verifiers (root is exempt "
                     "from RLIMIT_NPROC; the PID namespace still ends them all)");
    }
    return bwrap ? AD_SANDBOX_BWRAP : AD_SANDBOX_BASIC;
}
