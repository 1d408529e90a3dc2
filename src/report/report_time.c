/* report_time.c: where the time went: seconds per stage per round as stacked
 * bars, one chart per run, from the seconds each stage's done marker records
 * (summed over lineages), with the run's totals per stage below. A stage
 * keeps its colour in every chart. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loop/run_names.h"

#define MAX_STAGES 16

/* The stages in loop order; a stage not listed here is appended as met. */
static const char *const stage_order[] = {
    AD_STAGE_LEVELS, AD_STAGE_ACQUIRE,  AD_STAGE_TEMPERATURE, AD_STAGE_JUDGE, AD_STAGE_SELECT,
    AD_STAGE_RL,     AD_STAGE_OPTIMIZE, AD_STAGE_EVALUATE,    AD_STAGE_ACCEPT};

typedef struct stage_list {
    char names[MAX_STAGES][24];
    const char *colors[MAX_STAGES]; /* set for the stages some run used */
    size_t n;
} stage_list;

static void stages_of(const rp_run *runs, size_t n, stage_list *out) {
    out->n = 0;
    for (size_t i = 0; i < sizeof stage_order / sizeof stage_order[0]; i++)
        snprintf(out->names[out->n++], sizeof out->names[0], "%s", stage_order[i]);
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < runs[r].times.n; i++) {
            const rp_time *t = ad_vec_at(&runs[r].times, i);
            size_t j = 0;
            while (j < out->n && strcmp(out->names[j], t->stage))
                j++;
            if (j == out->n && out->n < MAX_STAGES)
                snprintf(out->names[out->n++], sizeof out->names[0], "%s", t->stage);
        }
}

static double stage_seconds(const rp_run *run, uint32_t round, const char *stage) {
    for (size_t i = 0; i < run->times.n; i++) {
        const rp_time *t = ad_vec_at(&run->times, i);
        if (t->round == round && !strcmp(t->stage, stage)) return t->seconds;
    }
    return 0;
}

static void bars(rp_buf *b, const rp_run *run, const stage_list *sl) {
    uint32_t last = rp_last_round(run);
    double top = NAN, zero = 0;
    for (uint32_t r = 0; r <= last; r++) {
        double sum = 0;
        for (size_t s = 0; s < sl->n; s++)
            sum += stage_seconds(run, r, sl->names[s]);
        rp_range_add(&zero, &top, sum);
    }
    rp_range_fix(&zero, &top, 0);
    char title[160];
    snprintf(title, sizeof title, "%s: seconds per stage per round", run->name);
    rp_chart c = rp_chart_make(560, 260, title, "round", "seconds (wall clock)");
    c.x0 = -0.5;
    c.x1 = last + 0.5;
    c.x_integer = 1;
    c.y0 = 0;
    c.y1 = top * 1.05;
    rp_chart_begin(b, &c, "chart stacked");
    double bw = (rp_px(&c, 1) - rp_px(&c, 0)) * 0.7;
    for (uint32_t r = 0; r <= last; r++) {
        double base = 0;
        for (size_t s = 0; s < sl->n; s++) {
            double sec = stage_seconds(run, r, sl->names[s]);
            if (sec <= 0) continue;
            double y_top = rp_py(&c, base + sec), y_bot = rp_py(&c, base);
            rp_printf(b,
                      "<rect class=\"bar\" data-round=\"%u\" data-stage=\"%s\" x=\"%.1f\" "
                      "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>round %u, "
                      "%s: %.1f s</title></rect>",
                      r, sl->names[s], rp_px(&c, r) - bw / 2, y_top, bw, y_bot - y_top,
                      sl->colors[s], r, sl->names[s], sec);
            base += sec;
        }
    }
    rp_chart_end(b);
}

static void totals(rp_buf *b, const rp_run *run, const stage_list *sl) {
    double all = 0;
    for (size_t i = 0; i < run->times.n; i++)
        all += ((const rp_time *)ad_vec_at(&run->times, i))->seconds;
    rp_printf(b, "<table class=\"compact\"><tr><th>stage</th><th>seconds</th><th>share</th></tr>");
    for (size_t s = 0; s < sl->n; s++) {
        double sum = 0;
        for (uint32_t r = 0; r <= rp_last_round(run); r++)
            sum += stage_seconds(run, r, sl->names[s]);
        if (sum <= 0) continue;
        rp_printf(b, "<tr><td>%s</td><td class=\"num\">%.1f</td><td class=\"num\">%.1f%%</td></tr>",
                  sl->names[s], sum, all > 0 ? 100 * sum / all : 0);
    }
    rp_printf(b, "<tr><td>all</td><td class=\"num\">%.1f</td><td></td></tr></table>", all);
}

void rp_section_time(rp_buf *b, const rp_run *runs, size_t n) {
    stage_list sl;
    stages_of(runs, n, &sl);
    rp_printf(b, "<section id=\"time\"><h2>Where the time went</h2>");
    const char *labels[MAX_STAGES], *colors[MAX_STAGES];
    size_t shown = 0;
    for (size_t s = 0; s < sl.n; s++) {
        int used = 0;
        for (size_t r = 0; r < n && !used; r++)
            for (size_t i = 0; i < runs[r].times.n && !used; i++)
                used = !strcmp(((const rp_time *)ad_vec_at(&runs[r].times, i))->stage, sl.names[s]);
        if (!used) continue;
        /* colours by rank among the stages used, so the first ones get the
         * most distinct colours */
        sl.colors[s] = rp_color(shown);
        labels[shown] = sl.names[s];
        colors[shown++] = sl.colors[s];
    }
    if (!shown) {
        rp_printf(b, "<p class=\"empty\">No stage has finished yet.</p></section>");
        return;
    }
    rp_legend(b, labels, colors, NULL, shown);
    for (size_t r = 0; r < n; r++) {
        rp_printf(b, "<div class=\"row\"><figure class=\"chart\">");
        bars(b, &runs[r], &sl);
        rp_printf(b, "</figure>");
        totals(b, &runs[r], &sl);
        rp_printf(b, "</div>");
    }
    rp_printf(b, "</section>");
}
