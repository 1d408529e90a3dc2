/* sandbox.h: a pool of external verifier processes, each run in a sandbox.
 *
 * A verifier is any program (a shell command line, run with /bin/sh -c) that
 * reads one JSON object per line on stdin, {"prompt": ..., "answer": ...}, and
 * answers each with one JSON line {"correct": bool, "score": number} (score is
 * optional and must lie in [0, 1]; an optional "reason" string is kept).
 *
 * Each worker is a small guardian process (a fork of ours that never execs)
 * watching one verifier. The guardian is a child subreaper: every process the
 * verifier starts, even one that leaves its process group with setsid, is its
 * descendant, and it kills them all when the worker is stopped or when our
 * process dies, however it dies (SIGKILL included: it watches a pipe whose
 * other end only we hold). Where bubblewrap works (probed once per process),
 * the verifier runs under it: a new PID namespace that dies with the guardian,
 * no network, a read-only filesystem except a private temporary directory,
 * no capabilities. Everywhere the verifier gets a cleared environment (PATH,
 * HOME and TMPDIR pointing to its private directory, plus the variables the
 * caller names) and resource limits (CPU time, address space, file size, open
 * files, processes, no core dumps); stderr is discarded unless asked for.
 * docs/tasks.md states what each mode contains.
 *
 * Each request has a wall-clock deadline; a worker that misses it, dies,
 * prints something that is not such a JSON line, or prints a line longer than
 * the cap is stopped with everything it started and replaced on the next
 * request, and the answer it was checking scores incorrect with the reason
 * recorded. A worker that had answered before and dies under a request (say a
 * one-shot verifier that exits after each answer) gets the request once more
 * on a fresh worker. A verifier must print exactly one line per request:
 * extra lines are detected when they are already waiting (and the worker is
 * replaced), but a line that arrives late may be taken as the reply to the
 * next request.
 *
 * Thread-safe: ad_sandbox_verify may be called from many threads at once; each
 * call takes a free worker (waiting for one if all are busy);
 * ad_sandbox_verify_batch spreads a batch over the workers. Not for built-in
 * tasks, which verify in-process (task.h). */
#ifndef AD_TASKS_SANDBOX_H
#define AD_TASKS_SANDBOX_H

#include <stddef.h>

#include "tasks/verdict.h"
#include "util/error.h"

typedef struct ad_sandbox ad_sandbox;

typedef struct ad_sandbox_params {
    size_t workers;         /* processes in the pool (default 2) */
    double timeout_s;       /* wall-clock limit per request, seconds (default 10) */
    double cpu_s;           /* RLIMIT_CPU of each process, seconds (default 60); a worker
                               is replaced before it has used half of it */
    size_t memory_bytes;    /* RLIMIT_AS of each process (default 1 GiB; 16 MiB..1 TiB) */
    size_t file_bytes;      /* RLIMIT_FSIZE (default 16 MiB) */
    size_t open_files;      /* RLIMIT_NOFILE (default 64) */
    size_t max_reply_bytes; /* longest reply line accepted (default 64 KiB) */
    int inherit_stderr;     /* 1: the verifier's stderr goes to ours (default 0: discarded) */
    size_t max_processes;   /* RLIMIT_NPROC headroom: processes and threads the verifier may
                               add to its user's count (default 256; root is exempt) */
    const char *pass_env;   /* names of environment variables passed to the verifier,
                               separated by commas or blanks (NULL: none); copied */
    int isolation;          /* an ad_sandbox_isolation (default AD_SANDBOX_AUTO) */
} ad_sandbox_params;

typedef enum ad_sandbox_isolation {
    AD_SANDBOX_AUTO = 0,  /* bubblewrap when it works here, else basic */
    AD_SANDBOX_BWRAP = 1, /* bubblewrap, or ad_sandbox_open fails */
    AD_SANDBOX_BASIC = 2, /* guardian, limits and cleared environment only */
} ad_sandbox_isolation;

/* Tells, once per process (the first call probes, later calls return the
 * cached answer), whether bubblewrap can run verifiers here:
 * AD_SANDBOX_BWRAP or AD_SANDBOX_BASIC. The environment variable AD_BWRAP
 * names the bwrap program (default: found in PATH); AD_BWRAP=none disables
 * it. why (cap bytes, may be NULL) gets the protections that are missing
 * here and the cause, or "" when none is missing; as root that includes the
 * process limit, which the kernel does not apply to root. Can't fail. */
int ad_sandbox_probe(char *why, size_t cap);

/* Fills p with the defaults above. This function can't fail. */
void ad_sandbox_default_params(ad_sandbox_params *p);

/* Creates a pool that will run `command`. Processes start lazily, on the first
 * request that needs one. Fails on an empty command or invalid params (zero
 * workers, non-positive timeout, memory limit under 16 MiB, ...), or when
 * AD_SANDBOX_BWRAP is asked for and bubblewrap cannot run; on error *out is
 * NULL. */
int ad_sandbox_open(const char *command, const ad_sandbox_params *p, ad_sandbox **out,
                    ad_error *err);

/* Sends {"prompt","answer"} to a worker and fills v with its verdict. A worker
 * that times out, crashes or misbehaves gives an incorrect verdict whose reason
 * says what happened (AD_OK). Returns AD_ERR only when the verifier cannot be
 * run at all: fork/pipe failure, or a command that exits with status 126/127
 * (not found / not executable) before it ever answered. */
int ad_sandbox_verify(ad_sandbox *sb, const char *prompt, const char *answer, ad_verdict *v,
                      ad_error *err);

/* Verifies n (prompt, answer) pairs, spread over the pool's workers in
 * parallel, and fills verdicts[0..n). Each verdict is what ad_sandbox_verify
 * would give. On AD_ERR, err is the error of the lowest-numbered pair that
 * failed (and the verdicts are not all filled). */
int ad_sandbox_verify_batch(ad_sandbox *sb, const char *const *prompts, const char *const *answers,
                            size_t n, ad_verdict *verdicts, ad_error *err);

/* The isolation the pool uses: AD_SANDBOX_BWRAP or AD_SANDBOX_BASIC. Can't fail. */
int ad_sandbox_isolation_used(const ad_sandbox *sb);

/* Number of worker processes started so far (restarts included); for tests and
 * statistics. This function can't fail. */
size_t ad_sandbox_spawn_count(ad_sandbox *sb);

/* Stops every worker with everything it started, removes their temporary
 * directories and frees the pool.
 * Must not be called while another thread is inside ad_sandbox_verify. Safe on
 * NULL. */
void ad_sandbox_close(ad_sandbox *sb);

#endif
