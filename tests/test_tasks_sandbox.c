/* test_tasks_sandbox.c: the external verifier pool contains whatever the
 * verifier does, in both sandboxes (bubblewrap where it works here, and the
 * basic one everywhere).
 *
 * Small verifiers written to a temporary folder (sh and python3) answer well,
 * sleep forever, ignore SIGTERM, fork 200 children, setsid into the
 * background, allocate or write without bound, read secrets from the
 * environment, open a network socket, write outside their directory, crash,
 * print garbage, flood their output, exit early, burn CPU, open too many
 * files, or cannot be run. Each must give an incorrect verdict with a reason
 * (or, for a command that cannot start, an error), or be contained as
 * docs/tasks.md says for its mode, with no process left behind (checked in
 * /proc), also when the process that owns the pool is killed; a healthy pool
 * serves many threads at once and batches in parallel. Wall-clock bounds are
 * generous: the suite must pass on a loaded two-core machine. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tasks/sandbox.h"

static char dir[256];
static int isolation = AD_SANDBOX_AUTO; /* the mode under test */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Writes dir/name with the given text and mode; returns the path. */
static const char *write_script(const char *name, const char *text, mode_t mode) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
    return path;
}

/* Processes anywhere whose command line holds marker. */
static int count_marker(const char *marker) {
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        for (ssize_t i = 0; i < len; i++)
            if (!buf[i]) buf[i] = ' ';
        if (len > 0) {
            buf[len] = '\0';
            n += strstr(buf, marker) != NULL;
        }
    }
    if (d) closedir(d);
    return n;
}

/* No marked process and no child of ours remains (a killed group dies
 * asynchronously, so allow it a moment). */
static int nothing_left(const char *marker) {
    for (int i = 0; i < 200; i++) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (count_marker(marker) == 0 && r < 0 && errno == ECHILD) return 1;
        struct timespec ms = {0, 10000000};
        nanosleep(&ms, NULL);
    }
    return 0;
}

static ad_sandbox_params params(double timeout_s) {
    ad_sandbox_params p;
    ad_sandbox_default_params(&p);
    p.workers = 1;
    p.timeout_s = timeout_s;
    p.memory_bytes = (size_t)512 << 20;
    p.max_reply_bytes = 4096;
    p.isolation = isolation;
    return p;
}

/* Runs one request through a fresh pool; returns the verdict and the time. */
static int run_one(const char *command, ad_sandbox_params p, const char *answer, ad_verdict *v,
                   double *elapsed, ad_error *err) {
    ad_sandbox *sb;
    if (ad_sandbox_open(command, &p, &sb, err)) return AD_ERR;
    double t0 = now_s();
    int rc = ad_sandbox_verify(sb, "abc", answer, v, err);
    *elapsed = now_s() - t0;
    ad_sandbox_close(sb);
    return rc;
}

/* A misbehaving verifier: incorrect, the reason names what happened, the
 * time stays within the limit, nothing is left. */
static void expect_contained(const char *what, const char *command, ad_sandbox_params p,
                             const char *reason_part, double max_s) {
    ad_verdict v;
    ad_error err;
    double elapsed = 0;
    /* The marker names the verifier's shell in ps even when it runs no
     * marked command of its own. */
    char marked[600];
    snprintf(marked, sizeof marked, ": 987659; %s", command);
    int rc = run_one(marked, p, "cba", &v, &elapsed, &err);
    CHECK_MSG(rc == AD_OK, "%s: %s", what, err.msg);
    if (rc != AD_OK) return;
    CHECK_MSG(!v.correct && v.score == 0.0, "%s: %s", what, v.reason);
    CHECK_MSG(strstr(v.reason, reason_part) != NULL, "%s: reason '%s' lacks '%s'", what, v.reason,
              reason_part);
    CHECK_MSG(elapsed <= max_s, "%s took %.2f s (limit %.2f)", what, elapsed, max_s);
    CHECK_MSG(nothing_left("98765"), "%s left processes behind", what);
}

static const char *good_py =
    "import sys, json\n"
    "for line in sys.stdin:\n"
    "    r = json.loads(line)\n"
    "    ok = r['answer'] == r['prompt'][::-1]\n"
    "    print(json.dumps({'correct': ok, 'score': 1.0 if ok else 0.25,\n"
    "                      'reason': 'reversed' if ok else 'not reversed'}),\n"
    "          flush=True)\n";

static void test_good_verifier(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s", write_script("good.py", good_py, 0644));
    ad_sandbox_params p = params(10.0);
    ad_sandbox *sb;
    ad_error err;
    CHECK(ad_sandbox_open(cmd, &p, &sb, &err) == AD_OK);
    ad_verdict v;
    for (int i = 0; i < 50; i++) {
        CHECK(ad_sandbox_verify(sb, "abc", i % 2 ? "cba" : "abc", &v, &err) == AD_OK);
        CHECK(v.correct == (i % 2) && v.score == (i % 2 ? 1.0 : 0.25));
        CHECK(strstr(v.reason, i % 2 ? "verifier: reversed" : "verifier: not reversed"));
    }
    /* Awkward text travels intact as JSON. */
    CHECK(ad_sandbox_verify(sb, "a\n\"b\\é", "é\\b\"\na", &v, &err) == AD_OK && v.correct);
    CHECK(ad_sandbox_spawn_count(sb) == 1);
    ad_sandbox_close(sb);
    CHECK(nothing_left("good.py"));
}

typedef struct job {
    ad_sandbox *sb;
    int id, wrong;
} job;

static void *job_run(void *arg) {
    job *j = arg;
    for (int i = 0; i < 40; i++) {
        char prompt[32], answer[32];
        snprintf(prompt, sizeof prompt, "x%dy%d", j->id, i);
        size_t n = strlen(prompt);
        for (size_t k = 0; k < n; k++)
            answer[k] = prompt[n - 1 - k];
        answer[n] = '\0';
        if (i % 3 == 0) answer[0] = 'z';
        ad_verdict v;
        ad_error err;
        if (ad_sandbox_verify(j->sb, prompt, answer, &v, &err) || v.correct != (i % 3 != 0))
            j->wrong++;
    }
    return NULL;
}

static void test_pool_threads(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s", write_script("good.py", good_py, 0644));
    ad_sandbox_params p = params(10.0);
    p.workers = 2;
    ad_sandbox *sb;
    ad_error err;
    CHECK(ad_sandbox_open(cmd, &p, &sb, &err) == AD_OK);
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){sb, i, 0};
        pthread_create(&th[i], NULL, job_run, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].wrong == 0);
    }
    CHECK(ad_sandbox_spawn_count(sb) == 2);
    ad_sandbox_close(sb);
    CHECK(nothing_left("good.py"));
}

static void test_misbehaviour(void) {
    /* Timeouts: 1 s; everything else gets 20 s, so a slow start under load is
     * never mistaken for the failure being tested. The wall-clock bounds only
     * catch a hang: what is checked is the reason. */
    ad_sandbox_params quick = params(1.0), p = params(20.0);
    expect_contained("sleeps forever", "exec sleep 987651", quick, "timed out", 8);
    expect_contained("reads then sleeps", "read l; exec sleep 987651", quick, "timed out", 8);
    expect_contained("forks children and hangs",
                     "sleep 987652 & sleep 987653 & (sleep 987654 &); read l; sleep 987650", quick,
                     "timed out", 8);
    expect_contained("ignores SIGTERM",
                     "trap '' TERM; (trap '' TERM; sleep 987656) & read l; sleep 987650", quick,
                     "timed out", 8);
    expect_contained("crashes", "read l; kill -SEGV $$", p, "SIGSEGV", 20);
    expect_contained("exits early", "read l; exit 3", p, "exited with status 3", 20);
    expect_contained("prints garbage", "while read l; do echo hello; done", p, "not {", 20);
    expect_contained("wrong type", "while read l; do echo '{\"correct\": \"yes\"}'; done", p,
                     "not {", 20);
    expect_contained("score out of range",
                     "while read l; do echo '{\"correct\": true, \"score\": 1.5}'; done", p,
                     "not {", 20);
    expect_contained("floods", "read l; exec tr '\\000' x < /dev/zero", p, "longer than 4096", 20);
    expect_contained("floods lines", "read l; exec yes 987655", p, "not {", 20);

    ad_sandbox_params mem = params(20.0);
    mem.memory_bytes = (size_t)256 << 20;
    expect_contained("allocates without bound",
                     "read l; exec /usr/bin/python3 -c 'x = []  # 987659\nwhile True: "
                     "x.append(bytearray(1 << 20))'",
                     mem, "exited with status 1", 20);
    /* CPU time, not wall time, is limited: under load one CPU second may take
     * many seconds of wall time, so the deadline is far away. */
    ad_sandbox_params cpu = params(60.0);
    cpu.cpu_s = 1;
    expect_contained("burns CPU", "read l; while :; do :; done", cpu, "CPU time limit", 60);
    ad_sandbox_params files = params(20.0);
    files.file_bytes = 1 << 20;
    expect_contained("writes a big file",
                     "read l; exec head -c 10000000 /dev/zero > \"$TMPDIR/big\"", files,
                     "file size limit", 20);
    files.open_files = 16;
    expect_contained("opens many files",
                     "read l; exec /usr/bin/python3 -c "
                     "'f = [open(\"/dev/null\") for i in range(100)]'",
                     files, "exited with status 1", 20);
}

/* A verifier that exits without reading while we write a large request: the
 * write fails with EPIPE instead of killing us with SIGPIPE. */
static void test_broken_pipe(void) {
    size_t n = 4 << 20;
    char *answer = malloc(n + 1);
    memset(answer, 'a', n);
    answer[n] = '\0';
    ad_verdict v;
    ad_error err;
    double elapsed;
    CHECK(run_one("exit 0", params(5.0), answer, &v, &elapsed, &err) == AD_OK);
    CHECK(!v.correct && strstr(v.reason, "exited with status 0"));
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGPIPE));
    free(answer);
    CHECK(nothing_left("98765"));
}

static void test_cannot_start(void) {
    ad_verdict v;
    ad_error err;
    double elapsed;
    CHECK(run_one("/nonexistent/verifier-98765", params(5.0), "x", &v, &elapsed, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "could not be started") && strstr(err.msg, "127"), "%s", err.msg);
    const char *script = write_script("noexec.sh", "echo hi\n", 0644);
    CHECK(run_one(script, params(5.0), "x", &v, &elapsed, &err) == AD_ERR);
    CHECK_MSG(strstr(err.msg, "126"), "%s", err.msg);
    ad_sandbox *sb;
    ad_sandbox_params p = params(5.0);
    CHECK(ad_sandbox_open("", &p, &sb, &err) == AD_ERR);
    p.workers = 0;
    CHECK(ad_sandbox_open("cat", &p, &sb, &err) == AD_ERR && sb == NULL);
    p = params(0);
    CHECK(ad_sandbox_open("cat", &p, &sb, &err) == AD_ERR);
}

/* After a crash, a timeout or a second reply line, the next request gets a
 * fresh worker and a right answer. */
static void test_recovery(void) {
    const char *cmd = "while read l; do case \"$l\" in *boom*) kill -SEGV $$;; *hang*) sleep "
                      "987656;; *twice*) printf '{\"correct\": true}\\n{\"correct\": false}\\n'; "
                      "continue;; esac; "
                      "echo '{\"correct\": true}'; done";
    ad_sandbox_params p = params(0.5);
    ad_sandbox *sb;
    ad_error err;
    ad_verdict v;
    CHECK(ad_sandbox_open(cmd, &p, &sb, &err) == AD_OK);
    CHECK(ad_sandbox_verify(sb, "p", "ok", &v, &err) == AD_OK && v.correct);
    CHECK(ad_sandbox_verify(sb, "p", "boom", &v, &err) == AD_OK && !v.correct);
    CHECK(strstr(v.reason, "SIGSEGV"));
    CHECK(ad_sandbox_verify(sb, "p", "ok", &v, &err) == AD_OK && v.correct);
    CHECK(ad_sandbox_verify(sb, "p", "hang", &v, &err) == AD_OK && !v.correct);
    CHECK(ad_sandbox_verify(sb, "p", "ok", &v, &err) == AD_OK && v.correct);
    CHECK(ad_sandbox_verify(sb, "p", "twice", &v, &err) == AD_OK && v.correct);
    CHECK(ad_sandbox_verify(sb, "p", "ok", &v, &err) == AD_OK && v.correct);
    /* boom: a crash, retried once on a fresh worker (crashes again); hang: killed;
     * twice: replaced after its answer. */
    CHECK_MSG(ad_sandbox_spawn_count(sb) == 5, "%zu", ad_sandbox_spawn_count(sb));
    ad_sandbox_close(sb);
    CHECK(nothing_left("98765"));

    /* A one-shot verifier (answers once, then exits) is restarted quietly. */
    CHECK(ad_sandbox_open("read l; echo '{\"correct\": true}'", &p, &sb, &err) == AD_OK);
    for (int i = 0; i < 5; i++)
        CHECK(ad_sandbox_verify(sb, "p", "a", &v, &err) == AD_OK && v.correct);
    CHECK_MSG(ad_sandbox_spawn_count(sb) == 5, "%zu", ad_sandbox_spawn_count(sb));
    ad_sandbox_close(sb);

    /* Children left running by a healthy verifier die with the pool. */
    char bg[600];
    snprintf(bg, sizeof bg, "sh %s",
             write_script("bg.sh",
                          "(sleep 987657 &)\nwhile read l; do echo '{\"correct\": false}'; done\n",
                          0644));
    CHECK(ad_sandbox_open(bg, &p, &sb, &err) == AD_OK);
    CHECK(ad_sandbox_verify(sb, "p", "a", &v, &err) == AD_OK && !v.correct);
    CHECK(strstr(v.reason, "verifier: incorrect"));
    int started = 0; /* the background sleep starts on its own time */
    for (int i = 0; i < 200 && !started; i++) {
        started = count_marker("987657") == 1;
        struct timespec ms = {0, 10000000};
        nanosleep(&ms, NULL);
    }
    CHECK(started);
    ad_sandbox_close(sb);
    CHECK(nothing_left("98765"));
}

/* ---- hostile verifiers: what each mode contains ----------------------------- */

/* Waits (up to 20 s) until at least n processes carry marker; returns the count. */
static int wait_marker(const char *marker, int n) {
    int have = 0;
    for (int i = 0; i < 2000 && (have = count_marker(marker)) < n; i++) {
        struct timespec ms = {0, 10000000};
        nanosleep(&ms, NULL);
    }
    return have;
}

/* Opens a pool on a script and sends one request; the verdict's reason. */
static int ask_once(const char *name, const char *script, ad_sandbox_params p, ad_sandbox **sb,
                    ad_verdict *v) {
    char cmd[600];
    ad_error err;
    snprintf(cmd, sizeof cmd, "sh %s", write_script(name, script, 0644));
    if (ad_sandbox_open(cmd, &p, sb, &err)) {
        fprintf(stderr, "  %s: %s\n", name, err.msg);
        return AD_ERR;
    }
    return ad_sandbox_verify(*sb, "p", "a", v, &err);
}

/* 200 children, and a grandchild in a session of its own: all alive while
 * the verifier works, none after the pool closes, in both modes. */
static void test_forks_and_setsid(void) {
    const char *script = "read l\n"
                         "i=0; while [ $i -lt 200 ]; do sleep 987660 & i=$((i+1)); done\n"
                         "(setsid sleep 987661 < /dev/null > /dev/null 2>&1 &)\n"
                         "echo '{\"correct\": false, \"reason\": \"forked\"}'\n"
                         "while read l; do echo '{\"correct\": false}'; done\n";
    ad_sandbox *sb = NULL;
    ad_verdict v;
    CHECK(ask_once("fork.sh", script, params(20.0), &sb, &v) == AD_OK);
    CHECK_MSG(strstr(v.reason, "verifier: forked"), "%s", v.reason);
    CHECK_MSG(wait_marker("sleep 987660", 200) == 200, "%d children", count_marker("987660"));
    CHECK(wait_marker("sleep 987661", 1) == 1);
    ad_sandbox_close(sb);
    CHECK(nothing_left("98766"));
}

/* The process limit: a headroom of 20 over what the user runs holds 200
 * forks to about 20. Root is exempt in the kernel: there the test only
 * says so (the PID namespace or the guardian still ends them all). */
static void test_process_limit(void) {
    if (geteuid() == 0 || getuid() == 0) {
        printf("  (process limit not testable as root: the kernel exempts root)\n");
        return;
    }
    ad_sandbox_params p = params(20.0);
    p.max_processes = 20;
    const char *script = "read l\n"
                         "i=0; while [ $i -lt 200 ]; do (sleep 987690 &) 2>/dev/null; i=$((i+1)); "
                         "done\necho '{\"correct\": false}'\n";
    ad_sandbox *sb = NULL;
    ad_verdict v;
    CHECK(ask_once("nproc.sh", script, p, &sb, &v) == AD_OK);
    int running = count_marker("sleep 987690");
    CHECK_MSG(running > 0 && running <= 20, "%d running under a headroom of 20", running);
    ad_sandbox_close(sb);
    CHECK(nothing_left("98769"));
}

/* The environment is cleared but for PATH, HOME and TMPDIR (its private
 * directory) and the names passed; the directory goes with the worker. */
static void test_environment(void) {
    setenv("AD_TEST_SECRET", "hunter2", 1);
    setenv("AD_TEST_SHARED", "shared-ok", 1);
    ad_sandbox_params p = params(20.0);
    p.pass_env = "AD_TEST_SHARED, NOT_SET_ANYWHERE";
    const char *script =
        "while read l; do\n"
        "  touch \"$TMPDIR/mine\" && [ \"$HOME\" = \"$TMPDIR\" ] && t=own\n"
        "  echo \"{\\\"correct\\\": false, \\\"reason\\\": \\\"[${AD_TEST_SECRET}] "
        "$AD_TEST_SHARED $t $TMPDIR\\\"}\"\n"
        "done\n";
    ad_sandbox *sb = NULL;
    ad_verdict v;
    CHECK(ask_once("env.sh", script, p, &sb, &v) == AD_OK);
    char want[400];
    snprintf(want, sizeof want, "verifier: [] shared-ok own %s/autodidact-verifier-", dir);
    CHECK_MSG(strncmp(v.reason, want, strlen(want)) == 0, "'%s' vs '%s'", v.reason, want);
    char private_dir[300] = "";
    snprintf(private_dir, sizeof private_dir, "%s", v.reason + strlen(want) - strlen(dir) - 21);
    struct stat st;
    CHECK(stat(private_dir, &st) == 0 && S_ISDIR(st.st_mode));
    ad_sandbox_close(sb);
    CHECK_MSG(stat(private_dir, &st) != 0, "%s is still there", private_dir);
    CHECK(nothing_left(dir)); /* the scripts live in dir: a marker unique to this test */
    p.pass_env = "1BAD";
    CHECK(ad_sandbox_open("cat", &p, &sb, &(ad_error){0}) == AD_ERR && !sb);
    unsetenv("AD_TEST_SECRET");
    unsetenv("AD_TEST_SHARED");
}

/* A TCP listener on 127.0.0.1; its port, or 0. */
static int listen_local(int *fd) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) || listen(*fd, 8) ||
        getsockname(*fd, (struct sockaddr *)&a, &len))
        return 0;
    return ntohs(a.sin_port);
}

/* Network and filesystem: bubblewrap refuses both; the basic sandbox cannot
 * (docs/tasks.md says so), and the test holds it to exactly that. */
static void test_network_and_files(void) {
    int fd, port = listen_local(&fd);
    CHECK(port > 0);
    char script[1200];
    snprintf(script, sizeof script,
             "read l\n"
             "/usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", %d), "
             "timeout=5)' 2>/dev/null && net=connected || net=refused\n"
             "echo x 2>/dev/null > %s/outside && out=wrote || out=refused\n"
             "echo x > \"$TMPDIR/inside\" && in=wrote || in=refused\n"
             "echo \"{\\\"correct\\\": false, \\\"reason\\\": \\\"$net $out $in\\\"}\"\n",
             port, dir);
    ad_sandbox *sb = NULL;
    ad_verdict v;
    CHECK(ask_once("net.sh", script, params(20.0), &sb, &v) == AD_OK);
    const char *want = ad_sandbox_isolation_used(sb) == AD_SANDBOX_BWRAP
                           ? "verifier: refused refused wrote"
                           : "verifier: connected wrote wrote";
    CHECK_MSG(strcmp(v.reason, want) == 0, "'%s', expected '%s'", v.reason, want);
    char outside[300];
    snprintf(outside, sizeof outside, "%s/outside", dir);
    CHECK((access(outside, F_OK) == 0) == (ad_sandbox_isolation_used(sb) == AD_SANDBOX_BASIC));
    unlink(outside);
    ad_sandbox_close(sb);
    if (fd >= 0) close(fd);
    CHECK(nothing_left(dir));
}

/* Files without bound: each is cut at the file-size limit, and all of them
 * go with the worker's directory. */
static void test_writes_without_bound(void) {
    ad_sandbox_params p = params(1.0);
    p.file_bytes = 1 << 20;
    const char *script = "read l; cd \"$TMPDIR\"; i=0\n"
                         "while :; do head -c 2000000 /dev/zero > f$i; i=$((i+1)); done\n";
    ad_sandbox *sb = NULL;
    ad_verdict v;
    CHECK(ask_once("write.sh", script, p, &sb, &v) == AD_OK);
    CHECK_MSG(strstr(v.reason, "timed out"), "%s", v.reason);
    ad_sandbox_close(sb);
    CHECK(nothing_left(dir));
}

/* The process that owns the pool dies (SIGTERM, SIGKILL) while a verifier,
 * its child and a setsid grandchild are running: none of them survives. */
static void test_owner_dies(int sig) {
    const char *script = write_script("owner.sh",
                                      "read l\n(setsid sleep 987671 < /dev/null > /dev/null 2>&1 "
                                      "&)\nsleep 987672 &\nsleep 987673\n",
                                      0644);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sh %s", script);
    pid_t owner = fork();
    if (owner == 0) {
        ad_sandbox *sb;
        ad_sandbox_params p = params(600.0);
        ad_verdict v;
        if (ad_sandbox_open(cmd, &p, &sb, &(ad_error){0}) == AD_OK)
            ad_sandbox_verify(sb, "p", "a", &v, &(ad_error){0});
        _exit(0);
    }
    int all = wait_marker("sleep 98767", 3);
    CHECK_MSG(all == 3, "%d of 3 verifier processes started", all);
    kill(owner, sig);
    waitpid(owner, NULL, 0);
    CHECK_MSG(nothing_left("98767"), "%s left processes", sig == SIGKILL ? "SIGKILL" : "SIGTERM");
}

static void test_owner_killed(void) {
    test_owner_dies(SIGKILL);
}

static void test_owner_terminated(void) {
    test_owner_dies(SIGTERM);
}

/* A batch runs on every worker at once: one hanging problem in six costs
 * one timeout, not one per worker in turn; short-lived batch threads do not
 * cost restarts. */
static void test_batch(void) {
    ad_sandbox_params p = params(2.0);
    p.workers = 6;
    const char *cmd = "while read l; do case \"$l\" in *hang*) sleep 987680;; esac; "
                      "echo '{\"correct\": true}'; done";
    ad_sandbox *sb;
    ad_error err;
    CHECK(ad_sandbox_open(cmd, &p, &sb, &err) == AD_OK);
    const char *prompts[12], *answers[12];
    ad_verdict v[12];
    for (int i = 0; i < 12; i++) {
        prompts[i] = "p";
        answers[i] = i % 6 == 3 ? "hang" : "ok";
    }
    CHECK(ad_sandbox_verify_batch(sb, prompts, answers, 6, v, &err) == AD_OK); /* warm up */
    double t0 = now_s();
    CHECK(ad_sandbox_verify_batch(sb, prompts, answers, 12, v, &err) == AD_OK);
    double dt = now_s() - t0;
    for (int i = 0; i < 12; i++)
        CHECK_MSG(v[i].correct == (i % 6 != 3), "%d: %s", i, v[i].reason);
    /* Serial: 2 timeouts plus 10 answers; parallel: one timeout. */
    CHECK_MSG(dt < 3.9, "12 problems with 2 hanging took %.2f s on 6 workers", dt);
    CHECK(ad_sandbox_verify_batch(sb, prompts, answers, 0, v, &err) == AD_OK);
    ad_sandbox_close(sb);
    /* Workers outlive the batch threads that started them: no restarts. */
    const char *oks[6] = {"ok", "ok", "ok", "ok", "ok", "ok"};
    p.workers = 3;
    CHECK(ad_sandbox_open(cmd, &p, &sb, &err) == AD_OK);
    for (int round = 0; round < 3; round++)
        CHECK(ad_sandbox_verify_batch(sb, prompts, oks, 6, v, &err) == AD_OK && v[5].correct);
    CHECK_MSG(ad_sandbox_spawn_count(sb) <= 3, "%zu", ad_sandbox_spawn_count(sb));
    ad_sandbox_close(sb);
    CHECK(nothing_left("98768"));
}

/* The modes: bubblewrap when asked for fails cleanly where it cannot run. */
static void test_modes(void) {
    char why[512];
    int mode = ad_sandbox_probe(why, sizeof why);
    printf("  sandbox here: %s%s%s\n", mode == AD_SANDBOX_BWRAP ? "bubblewrap" : "basic",
           why[0] ? "; " : "", why);
    CHECK(mode == AD_SANDBOX_BWRAP || (mode == AD_SANDBOX_BASIC && why[0]));
    ad_sandbox_params p = params(5.0);
    p.isolation = AD_SANDBOX_BWRAP;
    ad_sandbox *sb = NULL;
    ad_error err;
    int rc = ad_sandbox_open("cat", &p, &sb, &err);
    CHECK(rc == (mode == AD_SANDBOX_BWRAP ? AD_OK : AD_ERR));
    if (rc == AD_OK) CHECK(ad_sandbox_isolation_used(sb) == AD_SANDBOX_BWRAP);
    ad_sandbox_close(sb);
    p = params(5.0);
    p.memory_bytes = 0;
    CHECK(ad_sandbox_open("cat", &p, &sb, &err) == AD_ERR && strstr(err.msg, "16 MiB"));
    p.memory_bytes = (size_t)1 << 41;
    CHECK(ad_sandbox_open("cat", &p, &sb, &err) == AD_ERR);
}

/* No worker directory is left in our TMPDIR. */
static void test_no_directories_left(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int left = 0;
    while (d && (e = readdir(d)))
        left += strncmp(e->d_name, "autodidact-verifier-", 20) == 0;
    if (d) closedir(d);
    CHECK_MSG(left == 0, "%d worker directories left in %s", left, dir);
}

static void run_mode(int mode) {
    isolation = mode;
    printf("-- %s sandbox\n", mode == AD_SANDBOX_BWRAP ? "bubblewrap" : "basic");
    RUN(test_misbehaviour);
    RUN(test_forks_and_setsid);
    RUN(test_process_limit);
    RUN(test_environment);
    RUN(test_network_and_files);
    RUN(test_writes_without_bound);
    RUN(test_owner_killed);
    RUN(test_owner_terminated);
    RUN(test_recovery);
}

int main(void) {
    /* The "nothing left" checks look at every process on the machine, so two
     * copies of this test (two checkouts testing at once) would see each
     * other's verifiers: copies take turns. The lock goes with the process. */
    int lock = open("/tmp/ad_sandbox_test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock >= 0 && flock(lock, LOCK_EX) != 0) perror("flock");
    snprintf(dir, sizeof dir, "/tmp/ad_sandbox_test_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("TMPDIR", dir, 1); /* the workers' private directories go here */
    RUN(test_modes);
    RUN(test_good_verifier);
    RUN(test_pool_threads);
    RUN(test_batch);
    RUN(test_broken_pipe);
    RUN(test_cannot_start);
    if (ad_sandbox_probe(NULL, 0) == AD_SANDBOX_BWRAP) run_mode(AD_SANDBOX_BWRAP);
    run_mode(AD_SANDBOX_BASIC);
    RUN(test_no_directories_left);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
