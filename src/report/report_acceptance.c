/* report_acceptance.c: lineages and acceptance: one table row per round with
 * its outcome (accepted, rolled back and why, still running), the levels it
 * trained on, what the curriculum did (advance, hold), each lineage's
 * accuracy at the round's newest trained level (a lineage falling behind
 * shows here), candidates kept and seconds. */
#include "report/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double cell_value(const rp_run *run, uint32_t round, int64_t lineage, ad_level level) {
    for (size_t i = 0; i < run->cells.n; i++) {
        const ad_store_eval *c = ad_vec_at(&run->cells, i);
        if (c->round == round && c->lineage == lineage && ad_level_cmp(c->level, level) == 0)
            return c->value;
    }
    return NAN;
}

/* The frontier of the last accepted round before index i; 0 when none. */
static int previous_frontier(const rp_run *run, size_t i, ad_level *out) {
    while (i-- > 0) {
        const rp_round *p = ad_vec_at(&run->rounds, i);
        if (p->status == AD_ROUND_ACCEPTED && p->has_frontier) {
            *out = p->frontier;
            return 1;
        }
    }
    return 0;
}

static void curriculum_cell(rp_buf *b, const rp_run *run, size_t i) {
    const rp_round *r = ad_vec_at(&run->rounds, i);
    char lv[AD_LEVEL_TEXT_MAX];
    ad_level prev;
    if (!r->has_train || r->round == 0) {
        rp_printf(b, "<td>%s</td>", r->round == 0 ? "base training" : "-");
        return;
    }
    ad_level_format(r->train_hi, lv, sizeof lv);
    if (!previous_frontier(run, i, &prev))
        rp_printf(b, "<td>start at %s</td>", lv);
    else if (ad_level_cmp(r->train_hi, prev) > 0)
        rp_printf(b, "<td class=\"advance\">advance to %s</td>", lv);
    else if (ad_level_cmp(r->train_hi, prev) == 0)
        rp_printf(b, "<td class=\"hold\">hold at %s</td>", lv);
    else
        rp_printf(b, "<td>back to %s</td>", lv);
}

static void round_row(rp_buf *b, const rp_run *run, size_t i) {
    const rp_round *r = ad_vec_at(&run->rounds, i);
    const char *status = ad_round_status_name(r->status);
    rp_printf(b, "<tr class=\"%s\"><td class=\"num\">%u</td><td>%s</td><td>", status, r->round,
              r->status == AD_ROUND_ROLLED_BACK ? "rolled back" : status);
    rp_esc(b, r->reason);
    rp_printf(b, "</td>");
    char lo[AD_LEVEL_TEXT_MAX], hi[AD_LEVEL_TEXT_MAX];
    if (r->has_train)
        rp_printf(b, "<td>%s%s%s</td>", ad_level_format(r->train_lo, lo, sizeof lo),
                  ad_level_cmp(r->train_lo, r->train_hi) ? "-" : "",
                  ad_level_cmp(r->train_lo, r->train_hi)
                      ? ad_level_format(r->train_hi, hi, sizeof hi)
                      : "");
    else
        rp_printf(b, "<td>-</td>");
    curriculum_cell(b, run, i);
    for (size_t l = 0; l < run->n_lineages; l++) {
        double v = r->has_train ? cell_value(run, r->round, (int64_t)l, r->train_hi) : NAN;
        if (isnan(v))
            rp_printf(b, "<td class=\"num\">-</td>");
        else
            rp_printf(b, "<td class=\"num\">%.3f</td>", v);
    }
    /* the select stage's own count (acquire records the same candidates too) */
    double cand = rp_figure_get(run, r->round, "select", -1, "candidates");
    double kept = rp_figure_get(run, r->round, "select", -1, "kept");
    if (!isnan(cand) && !isnan(kept))
        rp_printf(b, "<td class=\"num\">%.0f / %.0f</td>", kept, cand);
    else
        rp_printf(b, "<td class=\"num\">-</td>");
    rp_printf(b, "<td class=\"num\">%.1f</td></tr>", r->seconds);
}

static void run_table(rp_buf *b, const rp_run *run) {
    size_t accepted = 0, rolled = 0;
    for (size_t i = 0; i < run->rounds.n; i++) {
        const rp_round *r = ad_vec_at(&run->rounds, i);
        accepted += r->status == AD_ROUND_ACCEPTED && r->round > 0;
        rolled += r->status == AD_ROUND_ROLLED_BACK;
    }
    rp_printf(b, "<h3>");
    rp_esc(b, run->name);
    rp_printf(b,
              "</h3><p class=\"note\">%zu lineage%s; %zu round%s accepted, %zu rolled back%s.</p>",
              run->n_lineages, run->n_lineages == 1 ? "" : "s", accepted, accepted == 1 ? "" : "s",
              rolled, run->running ? "; a round is still running" : "");
    rp_printf(b, "<table class=\"acceptance\"><tr><th>round</th><th>outcome</th><th>reason</th>"
                 "<th>trained levels</th><th>curriculum</th>");
    for (size_t l = 0; l < run->n_lineages; l++)
        rp_printf(b, "<th>accuracy at newest level, lineage %zu</th>", l);
    rp_printf(b, "<th>kept / candidates</th><th>seconds</th></tr>");
    for (size_t i = 0; i < run->rounds.n; i++)
        round_row(b, run, i);
    rp_printf(b, "</table>");
}

void rp_section_acceptance(rp_buf *b, const rp_run *runs, size_t n) {
    rp_printf(b, "<section id=\"acceptance\"><h2>Lineages and acceptance</h2>");
    for (size_t r = 0; r < n; r++)
        run_table(b, &runs[r]);
    rp_printf(b, "</section>");
}
