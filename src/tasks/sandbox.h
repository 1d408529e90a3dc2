/* sandbox.h: a pool of external verifier processes, each run in a sandbox.
 *
 * A verifier is any program (a shell command line, run with /bin/sh -c) that
 * reads one JSON object per line on stdin, {"prompt": ..., "answer": ...}, and
 * answers each with one JSON line {"correct": bool, "score": number} (score is
 * optional and must lie in [0, 1]; an optional "reason" string is kept).
 *
 * Every worker runs in its own process group with resource limits (CPU time,
 * address space, file size, open files, no core dumps), stderr discarded
 * unless asked for. Each request has a wall-clock deadline; a worker that
 * misses it, dies, prints something that is not such a JSON line, or prints a
 * line longer than the cap is killed with its whole process group and replaced
 * on the next request, and the answer it was checking scores incorrect with
 * the reason recorded. A worker that had answered before and dies under a
 * request (say a one-shot verifier that exits after each answer) gets the
 * request once more on a fresh worker. A verifier must print exactly one line
 * per request: extra lines are detected when they are already waiting (and
 * the worker is replaced), but a line that arrives late may be taken as the
 * reply to the next request. Nothing the verifier does can hang, crash or outlive
 * the caller, except a program that deliberately leaves its process group
 * (setsid), which only a container or cgroup could contain.
 *
 * Thread-safe: ad_sandbox_verify may be called from many threads at once; each
 * call takes a free worker (waiting for one if all are busy). Not for built-in
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
    size_t memory_bytes;    /* RLIMIT_AS of each process (default 1 GiB) */
    size_t file_bytes;      /* RLIMIT_FSIZE (default 16 MiB) */
    size_t open_files;      /* RLIMIT_NOFILE (default 64) */
    size_t max_reply_bytes; /* longest reply line accepted (default 64 KiB) */
    int inherit_stderr;     /* 1: the verifier's stderr goes to ours (default 0: discarded) */
} ad_sandbox_params;

/* Fills p with the defaults above. This function can't fail. */
void ad_sandbox_default_params(ad_sandbox_params *p);

/* Creates a pool that will run `command`. Processes start lazily, on the first
 * request that needs one. Fails on an empty command or invalid params (zero
 * workers, non-positive timeout, ...); on error *out is NULL. */
int ad_sandbox_open(const char *command, const ad_sandbox_params *p, ad_sandbox **out,
                    ad_error *err);

/* Sends {"prompt","answer"} to a worker and fills v with its verdict. A worker
 * that times out, crashes or misbehaves gives an incorrect verdict whose reason
 * says what happened (AD_OK). Returns AD_ERR only when the verifier cannot be
 * run at all: fork/pipe failure, or a command that exits with status 126/127
 * (not found / not executable) before it ever answered. */
int ad_sandbox_verify(ad_sandbox *sb, const char *prompt, const char *answer, ad_verdict *v,
                      ad_error *err);

/* Number of worker processes started so far (restarts included); for tests and
 * statistics. This function can't fail. */
size_t ad_sandbox_spawn_count(ad_sandbox *sb);

/* Kills every worker's process group, reaps the workers and frees the pool.
 * Must not be called while another thread is inside ad_sandbox_verify. Safe on
 * NULL. */
void ad_sandbox_close(ad_sandbox *sb);

#endif
