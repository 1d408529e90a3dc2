/* test_tasks_sandbox.c: the external verifier pool contains whatever the
 * verifier does.
 *
 * Small verifiers written to a temporary folder (sh and python3) answer well,
 * sleep forever, allocate without bound, fork children, crash, print garbage,
 * flood their output, exit early, burn CPU, write big files, open too many
 * files, or cannot be run. Each must give an incorrect verdict with a reason
 * (or, for a command that cannot start, an error), within the timeout, with no
 * process left behind; a healthy pool serves many threads at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tasks/sandbox.h"

static char dir[256];

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
    int rc = run_one(command, p, "cba", &v, &elapsed, &err);
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
    /* Timeouts: 0.5 s; everything else gets 5 s, so a slow start under load is
     * never mistaken for the failure being tested. */
    ad_sandbox_params quick = params(0.5), p = params(5.0);
    expect_contained("sleeps forever", "exec sleep 987651", quick, "timed out", 1.5);
    expect_contained("reads then sleeps", "read l; exec sleep 987651", quick, "timed out", 1.5);
    expect_contained("forks children and hangs",
                     "sleep 987652 & sleep 987653 & (sleep 987654 &); read l; sleep 987650", quick,
                     "timed out", 1.5);
    expect_contained("crashes", "read l; kill -SEGV $$", p, "SIGSEGV", 5.5);
    expect_contained("exits early", "read l; exit 3", p, "exited with status 3", 5.5);
    expect_contained("prints garbage", "while read l; do echo hello; done", p, "not {", 5.5);
    expect_contained("wrong type", "while read l; do echo '{\"correct\": \"yes\"}'; done", p,
                     "not {", 5.5);
    expect_contained("score out of range",
                     "while read l; do echo '{\"correct\": true, \"score\": 1.5}'; done", p,
                     "not {", 5.5);
    expect_contained("floods", "read l; exec tr '\\000' x < /dev/zero", p, "longer than 4096", 5.5);
    expect_contained("floods lines", "read l; exec yes 987655", p, "not {", 5.5);

    ad_sandbox_params mem = params(5.0);
    mem.memory_bytes = (size_t)256 << 20;
    expect_contained("allocates without bound",
                     "read l; exec /usr/bin/python3 -c 'x = []\nwhile True: "
                     "x.append(bytearray(1 << 20))'",
                     mem, "exited with status 1", 5.5);
    ad_sandbox_params cpu = params(10.0);
    cpu.cpu_s = 1;
    expect_contained("burns CPU", "read l; while :; do :; done", cpu, "CPU time limit", 11.0);
    ad_sandbox_params files = params(5.0);
    files.file_bytes = 1 << 20;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "read l; exec head -c 10000000 /dev/zero > %s/big", dir);
    expect_contained("writes a big file", cmd, files, "file size limit", 5.5);
    files.open_files = 16;
    expect_contained("opens many files",
                     "read l; exec /usr/bin/python3 -c "
                     "'f = [open(\"/dev/null\") for i in range(100)]'",
                     files, "exited with status 1", 5.5);
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

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ad_sandbox_test_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_good_verifier);
    RUN(test_pool_threads);
    RUN(test_misbehaviour);
    RUN(test_broken_pipe);
    RUN(test_cannot_start);
    RUN(test_recovery);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
