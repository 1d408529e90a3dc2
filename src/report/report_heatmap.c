/* report_heatmap.c: the accuracy heatmap: held-out greedy accuracy per level
 * (columns) after each round (rows, the base model's row first), one grid per
 * run and lineage, with the trained frontier drawn as a staircase at the right
 * edge of the highest level each row's model had been trained on. Only
 * evaluated cells are drawn (class "cell", with data-round, data-level and
 * data-value), so the browser test can count them. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CELL_H 22.0
#define LABEL_W 78.0 /* row labels */
#define HEAD_H 30.0  /* column labels and the axis title */

typedef struct grid {
    const rp_run *run;
    int64_t lineage;
    ad_level levels[4096];
    size_t n_levels;
    uint32_t rows; /* rounds 0..rows-1 */
    double cell_w;
} grid;

/* Distinct levels of the lineage's cells, in level order (the store returns
 * cells ordered by level). */
static void grid_levels(grid *g) {
    g->n_levels = 0;
    g->rows = rp_last_round(g->run) + 1;
    for (size_t i = 0; i < g->run->cells.n; i++) {
        const ad_store_eval *c = ad_vec_at(&g->run->cells, i);
        if (c->lineage != g->lineage) continue;
        if (c->round + 1 > g->rows) g->rows = c->round + 1;
        if (g->n_levels && ad_level_cmp(g->levels[g->n_levels - 1], c->level) == 0) continue;
        if (g->n_levels < sizeof g->levels / sizeof g->levels[0])
            g->levels[g->n_levels++] = c->level;
    }
    double w = 900.0 / (g->n_levels ? (double)g->n_levels : 1);
    g->cell_w = w > 46 ? 46 : w < 14 ? 14 : w;
}

/* The column of a level; n_levels when absent. */
static size_t level_column(const grid *g, ad_level l) {
    for (size_t i = 0; i < g->n_levels; i++)
        if (ad_level_cmp(g->levels[i], l) == 0) return i;
    return g->n_levels;
}

static const rp_round *find_round(const rp_run *run, uint32_t r) {
    for (size_t i = 0; i < run->rounds.n; i++) {
        const rp_round *x = ad_vec_at(&run->rounds, i);
        if (x->round == r) return x;
    }
    return NULL;
}

/* x of the frontier line of a row: the right edge of the last column at or
 * below the frontier level; NaN when the row has no frontier. */
static double frontier_x(const grid *g, uint32_t r) {
    const rp_round *x = find_round(g->run, r);
    if (!x || !x->has_frontier) return NAN;
    size_t cols = 0;
    while (cols < g->n_levels && ad_level_cmp(g->levels[cols], x->frontier) <= 0)
        cols++;
    return LABEL_W + (double)cols * g->cell_w;
}

static void row_labels(rp_buf *b, const grid *g) {
    for (uint32_t r = 0; r < g->rows; r++) {
        const rp_round *x = find_round(g->run, r);
        const char *mark = !x                                  ? ""
                           : x->status == AD_ROUND_ROLLED_BACK ? " \xE2\x86\xBA" /* U+21BA */
                           : x->status == AD_ROUND_RUNNING     ? " \xE2\x80\xA6" /* U+2026 */
                                                               : "";
        double y = HEAD_H + (double)r * CELL_H + CELL_H / 2 + 4;
        rp_printf(b, "<text class=\"rowlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                  LABEL_W - 4, y);
        if (r == 0)
            rp_printf(b, "base%s</text>", mark);
        else
            rp_printf(b, "r%u%s</text>", r, mark);
    }
    for (size_t i = 0; i < g->n_levels; i++) {
        char lv[AD_LEVEL_TEXT_MAX];
        ad_level_format(g->levels[i], lv, sizeof lv);
        rp_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                  LABEL_W + ((double)i + 0.5) * g->cell_w, HEAD_H - 6, lv);
    }
    rp_printf(
        b, "<text class=\"axis\" x=\"%.1f\" y=\"11\">level (digits / length) \xE2\x86\x92</text>",
        LABEL_W);
}

static void cells(rp_buf *b, const grid *g) {
    for (size_t i = 0; i < g->run->cells.n; i++) {
        const ad_store_eval *c = ad_vec_at(&g->run->cells, i);
        if (c->lineage != g->lineage) continue;
        size_t col = level_column(g, c->level);
        if (col == g->n_levels) continue;
        char fill[8], lv[AD_LEVEL_TEXT_MAX];
        rp_heat_color(c->value, fill);
        ad_level_format(c->level, lv, sizeof lv);
        double x = LABEL_W + (double)col * g->cell_w, y = HEAD_H + (double)c->round * CELL_H;
        rp_printf(
            b,
            "<rect class=\"cell\" data-round=\"%u\" data-level=\"%s\" data-value=\"%.4f\" "
            "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>round %u, "
            "level %s: accuracy %.3f over %zu problems</title></rect>",
            c->round, lv, c->value, x, y, g->cell_w, CELL_H, fill, c->round, lv, c->value, c->n);
        if (g->cell_w >= 24 && !isnan(c->value))
            rp_printf(b,
                      "<text class=\"cellnum%s\" x=\"%.1f\" y=\"%.1f\" "
                      "text-anchor=\"middle\">%.0f</text>",
                      rp_heat_dark(c->value) ? " dark" : "", x + g->cell_w / 2, y + CELL_H / 2 + 4,
                      100 * c->value);
    }
}

/* The staircase: per row a vertical segment at its frontier, joined to the
 * next row's by a horizontal one. */
static void frontier(rp_buf *b, const grid *g) {
    rp_printf(b, "<path class=\"frontier\" d=\"");
    int pen = 0;
    for (uint32_t r = 0; r < g->rows; r++) {
        double x = frontier_x(g, r), y0 = HEAD_H + (double)r * CELL_H;
        if (isnan(x)) {
            pen = 0;
            continue;
        }
        /* the pen sits at the previous row's bottom, which is this row's top */
        if (pen)
            rp_printf(b, "H%.1f V%.1f ", x, y0 + CELL_H);
        else
            rp_printf(b, "M%.1f %.1f V%.1f ", x, y0, y0 + CELL_H);
        pen = 1;
    }
    rp_printf(b, "\"/>");
}

static void heatmap_grid(rp_buf *b, const rp_run *run, int64_t lineage) {
    grid *g = calloc(1, sizeof *g);
    if (!g) {
        b->failed = 1;
        return;
    }
    g->run = run;
    g->lineage = lineage;
    grid_levels(g);
    if (!g->n_levels) {
        free(g);
        return;
    }
    double w = LABEL_W + (double)g->n_levels * g->cell_w + 8, h = HEAD_H + g->rows * CELL_H + 4;
    rp_printf(b, "<figure><figcaption>");
    rp_esc(b, run->name);
    if (lineage < 0)
        rp_printf(b, ": vote across lineages</figcaption>");
    else
        rp_printf(b, ": lineage %lld</figcaption>", (long long)lineage);
    rp_printf(b, "<svg class=\"heatmap\" data-run=\"");
    rp_esc(b, run->name);
    rp_printf(b,
              "\" data-lineage=\"%lld\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
              "role=\"img\" aria-label=\"accuracy per level and round\">",
              (long long)lineage, w, h, w, h);
    row_labels(b, g);
    cells(b, g);
    frontier(b, g);
    rp_printf(b, "</svg></figure>");
    free(g);
}

/* The colour scale, 0 to 100%, and the frontier's line. */
static void scale_legend(rp_buf *b) {
    rp_printf(b, "<div class=\"legend\"><span class=\"key\"><svg width=\"160\" height=\"24\" "
                 "aria-hidden=\"true\">");
    for (int i = 0; i < 10; i++) {
        char fill[8];
        rp_heat_color((i + 0.5) / 10, fill);
        rp_printf(b, "<rect x=\"%d\" y=\"0\" width=\"15\" height=\"12\" fill=\"%s\"/>", 5 + 15 * i,
                  fill);
    }
    rp_printf(b, "<text class=\"tick\" x=\"5\" y=\"23\">0%%</text><text class=\"tick\" x=\"155\" "
                 "y=\"23\" text-anchor=\"end\">100%%</text></svg>accuracy (share of held-out "
                 "problems solved, greedy decoding)</span>");
    rp_printf(b, "<span class=\"key\"><svg width=\"26\" height=\"14\" aria-hidden=\"true\"><path "
                 "class=\"frontier\" d=\"M13 0 V14\"/></svg>trained frontier (right edge: the "
                 "highest level trained on)</span></div>");
}

void rp_section_heatmap(rp_buf *b, const rp_run *runs, size_t n) {
    rp_printf(b, "<section id=\"heatmap\"><h2>Accuracy per level and round</h2>");
    rp_printf(b, "<p class=\"note\">Each row is the model after a round (the first row, base, is "
                 "the model after base training); each column a held-out level. Numbers are "
                 "percent; \xE2\x86\xBA marks a rolled-back round, \xE2\x80\xA6 one still "
                 "running.</p>");
    scale_legend(b);
    size_t drawn = 0;
    for (size_t r = 0; r < n; r++) {
        drawn += runs[r].cells.n;
        for (int64_t l = 0; l < (int64_t)runs[r].n_lineages; l++)
            heatmap_grid(b, &runs[r], l);
        for (size_t i = 0; i < runs[r].cells.n; i++)
            if (((const ad_store_eval *)ad_vec_at(&runs[r].cells, i))->lineage == -1) {
                heatmap_grid(b, &runs[r], -1);
                break;
            }
    }
    if (!drawn) rp_printf(b, "<p class=\"empty\">No evaluations recorded yet.</p>");
    rp_printf(b, "</section>");
}
