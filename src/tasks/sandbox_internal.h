/* sandbox_internal.h: what the verifier pool (sandbox.c) and the process
 * side of it (sandbox_spawn.c: guardian, bubblewrap, limits, environment)
 * share. Internal to src/tasks: callers use sandbox.h. */
#ifndef AD_TASKS_SANDBOX_INTERNAL_H
#define AD_TASKS_SANDBOX_INTERNAL_H

#include <sys/types.h>

#include "tasks/sandbox.h"

/* How a pool starts its workers; fixed at ad_sandbox_open. */
typedef struct sandbox_launch {
    const char *command;
    const ad_sandbox_params *p;
    const char *bwrap; /* bwrap's path, or NULL for the basic sandbox */
    char **env_names;  /* NULL-terminated names passed through (owned by the pool) */
    int lifeline_r;    /* read end of the pool's lifeline pipe (see sandbox_spawn.c) */
} sandbox_launch;

/* One running worker as seen from the pool. */
typedef struct sandbox_proc {
    pid_t pid;          /* the guardian; 0 when not running */
    int to_fd, from_fd; /* our ends of the verifier's stdin and stdout */
    char *tmpdir;       /* its private temporary directory (removed at stop) */
} sandbox_proc;

/* Starts a worker: a private temporary directory, a guardian, and under it
 * the verifier. On error nothing is left running or on disk. */
int sandbox_spawn(const sandbox_launch *l, sandbox_proc *out, ad_error *err);

/* Stops a worker and everything it started, reaps it and removes its
 * directory. A worker that is exiting on its own gets up to grace_s to do so,
 * so that its own exit status is seen; *status (when not NULL) gets the
 * wait status. This function can't fail. */
void sandbox_stop(sandbox_proc *pr, double grace_s, int *status);

/* The most CPU seconds used by any one process under the guardian pid
 * (RLIMIT_CPU is per process); -1 when unknown. */
double sandbox_tree_cpu(pid_t pid);

/* The bwrap program to use when bubblewrap works here, else NULL (probed
 * once per process; see ad_sandbox_probe). */
const char *sandbox_bwrap_path(void);

/* Splits a list of names separated by commas or blanks into a
 * NULL-terminated array (*out, freed with sandbox_names_free). Fails on a
 * name that is not [A-Za-z_][A-Za-z0-9_]*. */
int sandbox_names_parse(const char *list, char ***out, ad_error *err);
void sandbox_names_free(char **names);

double sandbox_now(void);

#endif
