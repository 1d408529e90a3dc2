/* report.h: a run (or several, side by side) as one self-contained HTML page.
 *
 * The page reads each run directory's store (DIR/run.db, opened read-only, so
 * a run that is still going is neither blocked nor changed) and its config
 * (DIR/config.ini) and draws, with inline SVG and CSS only (no script, no
 * font, no URL: it opens offline and fetches nothing):
 *
 *   heatmap      held-out accuracy per level and round, per lineage, with the
 *                trained frontier drawn on it and the base model's row
 *   rounds       per-round figures: label accuracy, kept fraction, pair
 *                accuracy, judge and reward precision, greedy vs pass@k vs
 *                maj@k, throughput (whichever the runs recorded)
 *   curves       training curves over steps (loss, learning rate, gradient
 *                norm, rl rewards) from the per-step series
 *   time         seconds per stage per round, stacked
 *   acceptance   which rounds were accepted or rolled back and why, the
 *                curriculum's advances and holds
 *   config       the config, and what differs between runs
 *   samples      a few kept and rejected candidates per round with each
 *                filter's decision and the checker's verdict
 *
 * With several runs the per-round figures and curves overlay them
 * (comparison mode). docs/report.md says where each number comes from.
 *
 * The same stores give the same bytes (nothing depends on the clock).
 * Not here: the command line (src/cli/cmd_report.c). */
#ifndef AD_REPORT_REPORT_H
#define AD_REPORT_REPORT_H

#include <stddef.h>

#include "util/error.h"

typedef struct ad_report_params {
    size_t samples_per_round; /* kept, and rejected, candidates shown per round (each) */
    size_t max_points;        /* most points drawn per training curve (evenly thinned) */
} ad_report_params;

/* samples_per_round 3, max_points 400. This function can't fail. */
ad_report_params ad_report_default_params(void);

/* Renders the report of the runs in dirs[0..n) (n >= 1) into a malloc'd,
 * NUL-terminated string *html of *len bytes. On error *html is NULL and err
 * names the run directory and the cause. */
int ad_report_render(const char *const *dirs, size_t n, const ad_report_params *p, char **html,
                     size_t *len, ad_error *err);

/* Renders the report and writes it to out_path atomically (the old file, if
 * any, stays until the new one is whole). On error nothing is written. */
int ad_report_write(const char *const *dirs, size_t n, const ad_report_params *p,
                    const char *out_path, ad_error *err);

#endif
