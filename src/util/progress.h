/* progress.h: one live progress line for long work.
 *
 * On a terminal (stderr is a tty) the line is redrawn in place at most a few
 * times a second: "label  done/total  rate unit/s  ETA mm:ss  extra". Otherwise
 * a plain log line is printed every `log_every_s` seconds and at the end, so
 * logs stay readable. Progress output can be silenced with AD_QUIET=1. */
#ifndef AD_UTIL_PROGRESS_H
#define AD_UTIL_PROGRESS_H

#include <stddef.h>

typedef struct ad_progress {
    char label[64];
    char unit[16];
    size_t total;
    double t_start, t_last_draw;
    double log_every_s;
    int is_tty, quiet, drawn;
} ad_progress;

/* Starts a progress display for `total` units of work. This function can't fail. */
void ad_progress_begin(ad_progress *p, const char *label, size_t total, const char *unit);

/* Reports `done` units finished; `rate_units` (may be 0) is the amount to use for
 * the rate instead of `done` (e.g. tokens while `done` counts steps); `extra` is
 * free text appended to the line (may be NULL). */
void ad_progress_update(ad_progress *p, size_t done, double rate_units, const char *extra);

/* Prints the final line and a newline. */
void ad_progress_end(ad_progress *p, double rate_units, const char *extra);

/* Monotonic wall clock in seconds. */
double ad_now(void);

#endif
