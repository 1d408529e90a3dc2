/* wait_policy.c: bounded spinning for OpenMP's idle threads, set before the
 * OpenMP runtime starts.
 *
 * Why: libgomp's threads spin at every barrier for about 300,000 iterations
 * before they sleep. When another process takes one of the cores, the thread
 * that shares a core with it is preempted for whole scheduler slices, and its
 * peers spin through every barrier of every step waiting for it: a 2-thread
 * run on a 2-core machine with one core busy ran 4-10x slower than alone
 * (bench/RESULTS.md, "A busy machine"). A short spin keeps the cheap wake-up
 * of spinning for the short waits of an idle machine and sleeps soon on a
 * busy one.
 *
 * libgomp reads GOMP_SPINCOUNT once, when it is loaded, before main runs, so
 * setting it here takes one re-exec of the binary with the variable set. A
 * user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone (and then no
 * re-exec happens), and AD_NO_REEXEC=1 turns the whole thing off. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/commands.h"

/* Spins before a waiting thread sleeps (libgomp's default: 300,000).
 * Measured at the flagship shape, 2 threads (bench/run_busy.sh, RESULTS.md):
 * 1,000 keeps 47% of its idle speed beside a busy core (the default 24%) and
 * costs 10% when the machine is idle; 100 or passive keep 59% but cost 21%. */
#define SPINCOUNT "1000"

void cli_bound_openmp_spinning(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("AD_NO_REEXEC")) return;
    if (setenv("GOMP_SPINCOUNT", SPINCOUNT, 0) != 0 || setenv("AD_SPIN_BOUNDED", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc, say): go on with the runtime's own policy */
    unsetenv("GOMP_SPINCOUNT");
    unsetenv("AD_SPIN_BOUNDED");
}

const char *cli_openmp_wait(char *buf, size_t cap) {
    const char *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    if (spin && getenv("AD_SPIN_BOUNDED"))
        snprintf(buf, cap, "GOMP_SPINCOUNT=%s (bounded spinning, set by autodidact)", spin);
    else if (policy || spin)
        snprintf(buf, cap, "OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s (set by the environment)",
                 policy ? policy : "(unset)", spin ? spin : "(unset)");
    else
        snprintf(buf, cap, "the runtime's default (spin ~300,000 times, then sleep)");
    return buf;
}
