/* report_rounds.c: the per-round figures: one small chart per figure the runs
 * recorded (label accuracy, kept fraction, pair accuracy, judge precision,
 * reward precision, greedy vs pass@k vs maj@k, throughput), rounds on x, with
 * every run overlaid (comparison mode: colour by run, dash by series).
 * Charts no run has data for are listed as absent rather than drawn empty. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/run_names.h"

#define MAX_SERIES 24

/* A chart: the figures it draws. A key ending in '*' matches by prefix. */
typedef struct fig_chart {
    const char *id, *title, *ylabel, *stage;
    const char *keys[4];
    int share; /* y in [0, 1] */
} fig_chart;

static const fig_chart charts[] = {
    {"label-accuracy",
     "Label accuracy: share of kept labels that are right",
     "share (0-1)",
     AD_STAGE_SELECT,
     {AD_METRIC_LABEL_ACCURACY},
     1},
    {"kept-fraction",
     "Kept fraction: share of candidates the filters kept",
     "share (0-1)",
     AD_STAGE_SELECT,
     {AD_METRIC_KEPT_FRACTION},
     1},
    {"pair-accuracy",
     "Pair accuracy: pairs whose chosen answer is right and rejected wrong",
     "share (0-1)",
     AD_STAGE_SELECT,
     {AD_METRIC_PAIR_ACCURACY},
     1},
    {"judge-precision",
     "Judge: precision and recall against the checker",
     "share (0-1)",
     AD_STAGE_SELECT,
     {AD_METRIC_JUDGE_PRECISION, AD_METRIC_JUDGE_RECALL},
     1},
    {"reward-precision",
     "Reward precision (rl): rewarded answers that are right, mean over steps",
     "share (0-1)",
     AD_STAGE_RL,
     {"precision_*"},
     1},
    {"frontier-accuracy",
     "At the frontier: greedy accuracy vs pass@k vs maj@k of the samples",
     "share (0-1)",
     AD_STAGE_SELECT,
     {AD_METRIC_GREEDY_ACCURACY, "pass@*", "maj@*"},
     1},
    {"rl-reward",
     "rl: mean reward and sample accuracy, mean over steps",
     "reward / share",
     AD_STAGE_RL,
     {"reward_mean", "accuracy"},
     0},
    {"sampling-speed",
     "Sampling speed (acquire)",
     "tokens/s",
     AD_STAGE_ACQUIRE,
     {AD_METRIC_TOKENS_PER_S},
     0},
    {"training-speed",
     "Training speed (optimize)",
     "tokens/s",
     AD_STAGE_OPTIMIZE,
     {AD_METRIC_TOKENS_PER_S},
     0},
};

typedef struct series_key {
    const char *key;
    int64_t lineage;
} series_key;

static int key_matches(const char *pattern, const char *key) {
    size_t len = strlen(pattern);
    if (len && pattern[len - 1] == '*') return !strncmp(pattern, key, len - 1);
    return !strcmp(pattern, key);
}

/* The distinct (key, lineage) series of a run that a chart draws, in the
 * order of the chart's keys, then of first appearance. */
static size_t chart_series(const fig_chart *ch, const rp_run *run, series_key *out) {
    size_t n = 0;
    for (size_t k = 0; k < 4 && ch->keys[k]; k++)
        for (size_t i = 0; i < run->figures.n && n < MAX_SERIES; i++) {
            const rp_figure *f = ad_vec_at(&run->figures, i);
            if (strcmp(f->stage, ch->stage) || !key_matches(ch->keys[k], f->key)) continue;
            size_t j = 0;
            while (j < n && !(out[j].lineage == f->lineage && !strcmp(out[j].key, f->key)))
                j++;
            if (j == n) out[n++] = (series_key){f->key, f->lineage};
        }
    return n;
}

static void series_label(char *out, size_t cap, const rp_run *run, size_t n_runs,
                         const series_key *s) {
    char lin[32] = "";
    if (s->lineage >= 0 && run->n_lineages > 1)
        snprintf(lin, sizeof lin, ", lineage %lld", (long long)s->lineage);
    snprintf(out, cap, "%s%s%s%s", n_runs > 1 ? run->name : "", n_runs > 1 ? ": " : "", s->key,
             lin);
}

/* Draws one chart over every run; returns 0 when no run has its figures. */
static int draw_chart(rp_buf *b, const fig_chart *ch, const rp_run *runs, size_t n) {
    series_key keys[MAX_SERIES];
    size_t total = 0;
    double lo = NAN, hi = NAN;
    uint32_t last = 1;
    for (size_t r = 0; r < n; r++) {
        size_t ns = chart_series(ch, &runs[r], keys);
        total += ns;
        for (size_t s = 0; s < ns; s++)
            for (uint32_t x = 0; x <= rp_last_round(&runs[r]); x++)
                rp_range_add(&lo, &hi,
                             rp_figure_get(&runs[r], x, ch->stage, keys[s].lineage, keys[s].key));
        if (rp_last_round(&runs[r]) > last) last = rp_last_round(&runs[r]);
    }
    if (!total) return 0;
    rp_chart c = rp_chart_make(440, 250, ch->title, "round", ch->ylabel);
    c.x0 = 0;
    c.x1 = last;
    c.x_integer = 1;
    if (ch->share) {
        c.y0 = lo < 0 ? lo : 0;
        c.y1 = hi > 1 ? hi : 1;
    } else {
        c.y0 = lo < 0 ? lo : 0;
        c.y1 = hi;
        rp_range_fix(&c.y0, &c.y1, 0);
        c.y1 *= 1.05;
    }
    const char *labels[MAX_SERIES * 4], *colors[MAX_SERIES * 4], *dashes[MAX_SERIES * 4];
    char names[MAX_SERIES * 4][96];
    size_t shown = 0;
    /* the title's head (before ':') goes in the SVG, the whole title in the caption */
    char head[64];
    const char *colon = strchr(ch->title, ':');
    snprintf(head, sizeof head, "%.*s", colon ? (int)(colon - ch->title) : 63, ch->title);
    c.title = head;
    rp_printf(b, "<figure class=\"chart\" id=\"fig-%s\"><figcaption>", ch->id);
    rp_esc(b, ch->title);
    rp_printf(b, "</figcaption>");
    rp_chart_begin(b, &c, "chart");
    for (size_t r = 0; r < n; r++) {
        size_t ns = chart_series(ch, &runs[r], keys);
        for (size_t s = 0; s < ns; s++) {
            uint32_t nx = rp_last_round(&runs[r]) + 1;
            double *xs = malloc(nx * sizeof *xs), *ys = malloc(nx * sizeof *ys);
            if (!xs || !ys) {
                free(xs);
                free(ys);
                b->failed = 1;
                continue;
            }
            for (uint32_t x = 0; x < nx; x++) {
                xs[x] = x;
                ys[x] = rp_figure_get(&runs[r], x, ch->stage, keys[s].lineage, keys[s].key);
            }
            const char *color = rp_color(n > 1 ? r : s), *dash = rp_dash(n > 1 ? s : 0);
            if (shown < sizeof names / sizeof names[0]) {
                series_label(names[shown], sizeof names[shown], &runs[r], n, &keys[s]);
                labels[shown] = names[shown];
                colors[shown] = color;
                dashes[shown] = dash;
                rp_line(b, &c, xs, ys, nx, color, dash, 1, names[shown]);
                shown++;
            }
            free(xs);
            free(ys);
        }
    }
    rp_chart_end(b);
    rp_legend(b, labels, colors, dashes, shown);
    rp_printf(b, "</figure>");
    return 1;
}

void rp_section_rounds(rp_buf *b, const rp_run *runs, size_t n) {
    rp_printf(b, "<section id=\"rounds\"><h2>Per round</h2><div class=\"grid\">");
    const char *absent[sizeof charts / sizeof charts[0]];
    size_t n_absent = 0;
    for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++)
        if (!draw_chart(b, &charts[i], runs, n)) absent[n_absent++] = charts[i].title;
    rp_printf(b, "</div>");
    if (n_absent) {
        rp_printf(b, "<p class=\"note\">Not recorded by %s: ", n > 1 ? "these runs" : "this run");
        for (size_t i = 0; i < n_absent; i++) {
            const char *colon = strchr(absent[i], ':');
            size_t len = colon ? (size_t)(colon - absent[i]) : strlen(absent[i]);
            rp_printf(b, "%s%.*s", i ? "; " : "", (int)len, absent[i]);
        }
        rp_printf(b, ".</p>");
    }
    rp_printf(b, "</section>");
}
