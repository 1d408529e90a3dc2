/* report_samples.c: the sample browser: per run and round, a few kept and a
 * few rejected candidates (the first ones in the store's order) with the
 * prompt and completion (HTML-escaped: they are the model's own bytes), each
 * filter's decision, the checker's verdict (for reporting; the filters never
 * see it) and the judge's score where a judge ran. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>

#include "loop/filters.h"

static void filters_cell(rp_buf *b, const rp_sample *s) {
    rp_printf(b, "<td class=\"filters\">");
    int any = 0;
    for (int f = 0; f < AD_FILTER_COUNT; f++) {
        if (!(s->ran & (1u << f))) continue;
        int pass = (s->passed >> f) & 1u;
        rp_printf(b, "<span class=\"%s\">%s %s</span> ", pass ? "pass" : "fail",
                  ad_filter_name((ad_filter_id)f), pass ? "\xE2\x9C\x93" : "\xE2\x9C\x97");
        any = 1;
    }
    if (!any) rp_printf(b, "(none ran)");
    rp_printf(b, "</td>");
}

static void sample_row(rp_buf *b, const rp_sample *s) {
    char lv[AD_LEVEL_TEXT_MAX];
    rp_printf(b,
              "<tr class=\"%s\"><td class=\"num\">%u</td><td class=\"num\">%zu</td>"
              "<td class=\"num\">%zu</td><td class=\"num\">%s</td><td><code>",
              s->kept ? "kept" : "rejected", s->round, s->lineage, s->sample_index,
              ad_level_format(s->level, lv, sizeof lv));
    rp_esc(b, s->prompt);
    rp_printf(b, "</code></td><td><code>");
    rp_esc(b, s->completion);
    rp_printf(b, "</code></td><td>%s</td>", s->kept ? "kept" : "rejected");
    filters_cell(b, s);
    rp_printf(b, "<td class=\"%s\">%s</td>",
              s->correct == 1   ? "right"
              : s->correct == 0 ? "wrong"
                                : "unknown",
              s->correct == 1   ? "right"
              : s->correct == 0 ? "wrong"
                                : "unknown");
    if (isnan(s->score))
        rp_printf(b, "<td class=\"num\">-</td></tr>");
    else
        rp_printf(b, "<td class=\"num\">%.3f</td></tr>", s->score);
}

void rp_section_samples(rp_buf *b, const rp_run *runs, size_t n) {
    rp_printf(b, "<section id=\"samples\"><h2>Sample browser</h2><p class=\"note\">The first "
                 "kept and rejected candidates of each round (sample 0 is the greedy answer). "
                 "The checker's verdict is for reading only: no filter sees it unless the "
                 "verifier filter is on.</p>");
    size_t shown = 0;
    for (size_t r = 0; r < n; r++) {
        const rp_run *run = &runs[r];
        if (!run->samples.n) continue;
        rp_printf(b, "<h3>");
        rp_esc(b, run->name);
        rp_printf(b, "</h3><table class=\"samples\"><tr><th>round</th><th>lineage</th>"
                     "<th>sample</th><th>level</th><th>prompt</th><th>completion</th>"
                     "<th>decision</th><th>filters</th><th>checker</th><th>judge score</th></tr>");
        for (size_t i = 0; i < run->samples.n; i++)
            sample_row(b, ad_vec_at(&run->samples, i));
        rp_printf(b, "</table>");
        shown += run->samples.n;
    }
    if (!shown)
        rp_printf(b, "<p class=\"empty\">No candidates recorded (rl rounds keep none; a run "
                     "records them from round 1 on).</p>");
    rp_printf(b, "</section>");
}
