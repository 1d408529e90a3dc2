/* report_curves.c: training curves from the per-step series (step_metrics):
 * loss, learning rate, gradient norm, and the rl rounds' reward, accuracy,
 * entropy and KL, over optimizer steps. Base training (round 0) and the
 * self-improvement rounds are drawn apart, since the base's thousands of
 * steps would squash the rounds' hundreds; the rounds are laid end to end,
 * with a line where each begins. One series per run, stage and lineage;
 * long series are thinned evenly to at most max_points points. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 24

static const struct {
    const char *key, *title, *ylabel;
    int log;
} curve_keys[] = {
    {"loss", "Training loss", "loss (objective value)", 0},
    {"lr", "Learning rate", "learning rate (log scale)", 1},
    {"grad_norm", "Gradient norm, before clipping", "L2 norm (log scale)", 1},
    {"reward_mean", "rl: mean reward of the step's samples", "reward", 0},
    {"accuracy", "rl: share of the step's samples that are right", "share (0-1)", 0},
    {"entropy", "rl: mean token entropy", "nats per token", 0},
    {"kl", "rl: KL to the reference", "nats per token", 0},
};

typedef struct curve_series {
    const rp_run *run;
    size_t run_index;
    char stage[24];
    int64_t lineage;
} curve_series;

/* Where each round starts on the x axis of the rounds' chart: rounds laid
 * end to end, each as long as its last recorded step plus one recording
 * interval. offsets has last_round + 2 entries. */
static void round_offsets(const rp_run *run, double *offsets) {
    uint32_t last = rp_last_round(run);
    double *span = offsets; /* first the spans, then their running sum */
    for (uint32_t r = 0; r <= last + 1; r++)
        span[r] = 0;
    size_t prev_step = 0;
    double gap = 1;
    for (size_t i = 0; i < run->points.n; i++) {
        const rp_point *p = ad_vec_at(&run->points, i);
        if (p->round > last) continue;
        if (i && p->step > prev_step && gap == 1) gap = (double)(p->step - prev_step);
        prev_step = p->step;
        if ((double)p->step + gap > span[p->round]) span[p->round] = (double)p->step + gap;
    }
    double at = 0;
    for (uint32_t r = 0; r <= last + 1; r++) {
        double s = span[r];
        offsets[r] = r >= 1 ? at : 0;
        if (r >= 1) at += s;
    }
}

/* Distinct (run, stage, lineage) series with points of `key` in the rounds
 * [r0, r1]. */
static size_t find_series(const rp_run *runs, size_t n, const char *key, uint32_t r0, uint32_t r1,
                          curve_series *out) {
    size_t ns = 0;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < runs[r].points.n && ns < MAX_SERIES; i++) {
            const rp_point *p = ad_vec_at(&runs[r].points, i);
            if (p->round < r0 || p->round > r1 || strcmp(p->key, key)) continue;
            size_t j = 0;
            while (j < ns && !(out[j].run == &runs[r] && out[j].lineage == p->lineage &&
                               !strcmp(out[j].stage, p->stage)))
                j++;
            if (j < ns) continue;
            out[ns] = (curve_series){.run = &runs[r], .run_index = r, .lineage = p->lineage};
            snprintf(out[ns].stage, sizeof out[ns].stage, "%s", p->stage);
            ns++;
        }
    return ns;
}

/* The points of one series, thinned to at most max_points (malloc'd). */
static size_t series_points(const curve_series *s, const char *key, uint32_t r0, uint32_t r1,
                            const double *offsets, size_t max_points, double **xs, double **ys) {
    size_t total = 0;
    for (size_t i = 0; i < s->run->points.n; i++) {
        const rp_point *p = ad_vec_at(&s->run->points, i);
        total += p->round >= r0 && p->round <= r1 && p->lineage == s->lineage &&
                 !strcmp(p->key, key) && !strcmp(p->stage, s->stage);
    }
    size_t stride = max_points && total > max_points ? (total + max_points - 1) / max_points : 1;
    *xs = malloc((total / stride + 2) * sizeof **xs);
    *ys = malloc((total / stride + 2) * sizeof **ys);
    if (!*xs || !*ys) return 0;
    size_t k = 0, seen = 0;
    for (size_t i = 0; i < s->run->points.n; i++) {
        const rp_point *p = ad_vec_at(&s->run->points, i);
        if (p->round < r0 || p->round > r1 || p->lineage != s->lineage || strcmp(p->key, key) ||
            strcmp(p->stage, s->stage))
            continue;
        if (seen++ % stride && seen != total) continue;
        (*xs)[k] = (r0 >= 1 ? offsets[p->round] : 0) + (double)p->step;
        (*ys)[k++] = p->value;
    }
    return k;
}

/* Vertical marks where rounds begin (one run only: several runs have
 * different lengths). */
static void round_marks(rp_buf *b, const rp_chart *c, const double *offsets, uint32_t last) {
    for (uint32_t r = 1; r <= last; r++) {
        double x = rp_px(c, offsets[r]);
        rp_printf(b, "<line class=\"roundmark\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                  x, rp_py(c, c->y1), x, rp_py(c, c->y0));
        rp_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">r%u</text>", x + 2,
                  rp_py(c, c->y1) + 10, r);
    }
}

typedef struct curve_chart {
    size_t k; /* index into curve_keys */
    uint32_t r0, r1;
    size_t max_points;
} curve_chart;

/* Draws one chart; returns 0 when no run has the series. */
static int draw_curve(rp_buf *b, const rp_run *runs, size_t n, const curve_chart *cc) {
    curve_series ss[MAX_SERIES];
    const char *key = curve_keys[cc->k].key;
    size_t ns = find_series(runs, n, key, cc->r0, cc->r1, ss);
    if (!ns) return 0;
    double *offsets[MAX_SERIES] = {0}, *xs[MAX_SERIES] = {0}, *ys[MAX_SERIES] = {0};
    size_t np[MAX_SERIES] = {0};
    double x0 = NAN, x1 = NAN, y0 = NAN, y1 = NAN;
    int log_y = curve_keys[cc->k].log;
    for (size_t s = 0; s < ns; s++) {
        offsets[s] = malloc((rp_last_round(ss[s].run) + 2) * sizeof(double));
        if (!offsets[s]) continue;
        round_offsets(ss[s].run, offsets[s]);
        np[s] =
            series_points(&ss[s], key, cc->r0, cc->r1, offsets[s], cc->max_points, &xs[s], &ys[s]);
        for (size_t i = 0; i < np[s]; i++) {
            rp_range_add(&x0, &x1, xs[s][i]);
            if (!log_y || ys[s][i] > 0) rp_range_add(&y0, &y1, ys[s][i]);
        }
    }
    char title[160];
    snprintf(title, sizeof title, "%s (%s)", curve_keys[cc->k].title,
             cc->r0 == 0 ? "base training" : "rounds");
    rp_chart c = rp_chart_make(
        440, 250, title, cc->r0 == 0 ? "optimizer step" : "optimizer step (rounds end to end)",
        curve_keys[cc->k].ylabel);
    rp_range_fix(&x0, &x1, 0);
    rp_range_fix(&y0, &y1, log_y);
    c.x0 = x0 < 0 ? x0 : 0;
    c.x1 = x1;
    c.y0 = log_y ? y0 : (y0 > 0 ? 0 : y0);
    c.y1 = log_y ? y1 : y1 * 1.05;
    c.y_log = log_y;
    const char *labels[MAX_SERIES], *colors[MAX_SERIES], *dashes[MAX_SERIES];
    char names[MAX_SERIES][96];
    rp_printf(b, "<figure class=\"chart\">");
    rp_chart_begin(b, &c, "chart curve");
    if (n == 1 && cc->r0 >= 1 && offsets[0])
        round_marks(b, &c, offsets[0], rp_last_round(&runs[0]));
    for (size_t s = 0; s < ns; s++) {
        char lin[32] = "";
        if (ss[s].lineage >= 0 && ss[s].run->n_lineages > 1)
            snprintf(lin, sizeof lin, " l%lld", (long long)ss[s].lineage);
        snprintf(names[s], sizeof names[s], "%s%s%s%s", n > 1 ? ss[s].run->name : "",
                 n > 1 ? ": " : "", ss[s].stage, lin);
        labels[s] = names[s];
        /* one run: a colour per series; several: a colour per run, a dash per series */
        size_t within = 0;
        for (size_t t = 0; t < s; t++)
            within += ss[t].run == ss[s].run;
        colors[s] = rp_color(n > 1 ? ss[s].run_index : s);
        dashes[s] = n > 1 ? rp_dash(within) : "";
        rp_line(b, &c, xs[s], ys[s], np[s], colors[s], dashes[s], 0, names[s]);
        free(xs[s]);
        free(ys[s]);
        free(offsets[s]);
    }
    rp_chart_end(b);
    rp_legend(b, labels, colors, dashes, ns);
    rp_printf(b, "</figure>");
    return 1;
}

void rp_section_curves(rp_buf *b, const rp_run *runs, size_t n, size_t max_points) {
    rp_printf(b, "<section id=\"curves\"><h2>Training curves</h2><div class=\"grid\">");
    size_t drawn = 0;
    uint32_t last = 0;
    for (size_t r = 0; r < n; r++)
        if (rp_last_round(&runs[r]) > last) last = rp_last_round(&runs[r]);
    for (int group = 0; group < 2; group++)
        for (size_t k = 0; k < sizeof curve_keys / sizeof curve_keys[0]; k++) {
            curve_chart cc = {
                .k = k, .r0 = group ? 1 : 0, .r1 = group ? last : 0, .max_points = max_points};
            if (group && last < 1) continue;
            drawn += (size_t)draw_curve(b, runs, n, &cc);
        }
    rp_printf(b, "</div>");
    if (!drawn)
        rp_printf(b, "<p class=\"empty\">No per-step series recorded (runs made before store "
                     "schema version 3, or with run.record_every = 0, keep none).</p>");
    rp_printf(b, "</section>");
}
