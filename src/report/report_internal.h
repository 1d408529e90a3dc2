/* report_internal.h: what the report's source files share: the figures of a
 * run as read from its store (report_data.c), a growable text buffer with
 * HTML escaping (report_buf.c), SVG primitives (report_svg.c) and one
 * function per section of the page. Not part of the public API.
 *
 * The flow: report_html.c loads every run (rp_run_load), then asks each
 * section to append its HTML to one buffer, and writes the buffer atomically.
 * Sections only read rp_run; they never open a store. */
#ifndef AD_REPORT_INTERNAL_H
#define AD_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "report/report.h"
#include "store/store.h"
#include "util/error.h"
#include "util/level.h"
#include "util/vec.h"

/* ---- the text buffer ------------------------------------------------------- */

/* A growing NUL-terminated string. Appends never fail on the spot: running
 * out of memory sets `failed` and later appends do nothing, so a section can
 * write freely and the writer checks once (rp_buf_check). */
typedef struct rp_buf {
    char *s;
    size_t n, cap;
    int failed;
} rp_buf;

void rp_buf_init(rp_buf *b);
void rp_buf_free(rp_buf *b);
/* printf-style append. */
void rp_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text with & < > " ' escaped, control characters and bytes of
 * ill-formed UTF-8 replaced by U+FFFD, so any stored string is safe inside
 * an HTML element, an attribute value or SVG (XML) text. NULL appends "". */
void rp_esc(rp_buf *b, const char *text);
/* AD_OK, or AD_ERR with err set when an append ran out of memory. */
int rp_buf_check(const rp_buf *b, ad_error *err);

/* ---- a run's figures --------------------------------------------------------- */

typedef struct rp_round {
    uint32_t round;
    ad_round_status status;
    char reason[256];
    double seconds; /* sum of the round's stage markers */
    size_t n_samples, n_kept;
    int has_train;               /* the round recorded training levels */
    ad_level train_lo, train_hi; /* this round's training levels (first, last) */
    int has_frontier;
    ad_level frontier; /* highest level trained on in rounds 0..this one */
} rp_round;

/* A per-round figure: a stage's figure (stage_metrics) or the mean of a
 * per-step series over the round's steps (for rl rounds). */
typedef struct rp_figure {
    uint32_t round;
    int64_t lineage; /* -1: the whole round */
    char stage[24];
    char key[48];
    double value;
} rp_figure;

/* Seconds of one stage in one round, summed over its lineages. */
typedef struct rp_time {
    uint32_t round;
    char stage[24];
    double seconds;
} rp_time;

/* One point of a per-step series (step_metrics). */
typedef struct rp_point {
    uint32_t round;
    int64_t lineage;
    char stage[24];
    char key[40];
    size_t step;
    double value;
} rp_point;

/* One candidate shown in the sample browser (strings owned). */
typedef struct rp_sample {
    uint32_t round;
    size_t lineage, prompt_index, sample_index;
    ad_level level;
    char *prompt, *completion;
    int kept, correct;
    uint32_t ran, passed;
    double score;
} rp_sample;

typedef struct rp_run {
    char *dir;    /* as given */
    char *name;   /* the directory's last component, for labels */
    char *config; /* config.ini of the run directory, or the store's snapshot */
    size_t n_lineages;
    int running;    /* some round is still running */
    ad_vec rounds;  /* rp_round, in round order */
    ad_vec cells;   /* ad_store_eval "accuracy" (metric NULL), every lineage and -1 */
    ad_vec figures; /* rp_figure */
    ad_vec times;   /* rp_time */
    ad_vec points;  /* rp_point, ordered by round, stage, lineage, step */
    ad_vec samples; /* rp_sample */
} rp_run;

/* Reads everything the report shows from DIR/run.db (opened read-only) and
 * DIR/config.ini. On error the run is left empty (rp_run_free is safe). */
int rp_run_load(rp_run *run, const char *dir, const ad_report_params *p, ad_error *err);
void rp_run_free(rp_run *run);

/* A figure's value, or NaN when the run does not have it. */
double rp_figure_get(const rp_run *run, uint32_t round, const char *stage, int64_t lineage,
                     const char *key);

/* The largest round recorded (0 when none). This function can't fail. */
uint32_t rp_last_round(const rp_run *run);

/* The candidates of the sample browser for one round (report_samples_data.c). */
int rp_samples_load(rp_run *run, ad_store *st, uint32_t round, size_t per_kind, ad_error *err);

/* ---- config text ------------------------------------------------------------- */

/* Calls fn(section.key, value) for each `key = value` line of INI text, in
 * order, skipping comments; the strings live until fn returns. */
typedef void (*rp_ini_fn)(void *ctx, const char *name, const char *value);
void rp_ini_foreach(const char *text, rp_ini_fn fn, void *ctx);

/* The value of section.key in INI text into out (cap bytes); 0 when absent. */
int rp_ini_get(const char *text, const char *name, char *out, size_t cap);

/* ---- SVG primitives ------------------------------------------------------------ */

/* A chart: data ranges, pixel size, margins, titles. rp_chart_begin opens the
 * <svg> and draws the frame, grid, ticks with their numbers and the axis
 * labels (units included); marks go between begin and end. */
typedef struct rp_chart {
    double x0, x1, y0, y1; /* data ranges (x0 < x1, y0 < y1) */
    double w, h;           /* pixels */
    const char *title, *xlabel, *ylabel;
    int x_integer; /* ticks at whole numbers only (rounds) */
    int y_log;     /* log10 y axis (learning rates, gradient norms); y0 > 0 */
} rp_chart;

/* A chart of w x h pixels with the default margins. This function can't fail. */
rp_chart rp_chart_make(double w, double h, const char *title, const char *xlabel,
                       const char *ylabel);
/* Widens [lo, hi] to include v (NaN ignored). */
void rp_range_add(double *lo, double *hi, double v);
/* Makes a degenerate or empty range drawable. */
void rp_range_fix(double *lo, double *hi, int log_scale);
void rp_chart_begin(rp_buf *b, const rp_chart *c, const char *css_class);
void rp_chart_end(rp_buf *b);
double rp_px(const rp_chart *c, double x);
double rp_py(const rp_chart *c, double y);

/* A line through (xs[i], ys[i]) (NaN points break it), with a marker and a
 * tooltip at each point when markers is set. `label` names the series for
 * tooltips and the data-series attribute. */
void rp_line(rp_buf *b, const rp_chart *c, const double *xs, const double *ys, size_t n,
             const char *color, const char *dash, int markers, const char *label);

/* An HTML legend: one swatch per series. */
void rp_legend(rp_buf *b, const char *const *labels, const char *const *colors,
               const char *const *dashes, size_t n);

/* Okabe-Ito colour i (cycles after 8). This function can't fail. */
const char *rp_color(size_t i);
/* A dash pattern for series i ("" for solid). This function can't fail. */
const char *rp_dash(size_t i);
/* The heatmap's colour of v in [0, 1] (a viridis-like sequential scale,
 * readable in grey), written as "#rrggbb" into out[8]. NaN gives light grey. */
void rp_heat_color(double v, char out[8]);
/* 1 when text on the heatmap colour of v reads better in white. */
int rp_heat_dark(double v);

/* ---- sections ------------------------------------------------------------------ */

/* Each appends one <section id="..."> to b; `runs` has n entries (several
 * runs: comparison mode). */
void rp_section_heatmap(rp_buf *b, const rp_run *runs, size_t n);
void rp_section_rounds(rp_buf *b, const rp_run *runs, size_t n);
void rp_section_curves(rp_buf *b, const rp_run *runs, size_t n, size_t max_points);
void rp_section_time(rp_buf *b, const rp_run *runs, size_t n);
void rp_section_acceptance(rp_buf *b, const rp_run *runs, size_t n);
void rp_section_config(rp_buf *b, const rp_run *runs, size_t n);
void rp_section_samples(rp_buf *b, const rp_run *runs, size_t n);

#endif
