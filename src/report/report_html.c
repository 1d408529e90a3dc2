/* report_html.c: the report page: loads each run, writes the document (head
 * with the inline style sheet and a content security policy that forbids
 * every fetch, a header with a table of contents and the runs' summary, then
 * the sections in order) and writes the file atomically.
 *
 * Not here: reading the store (report_data.c) or drawing (the section files). */
#include "report/report_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"
#include "util/config.h"

ad_report_params ad_report_default_params(void) {
    ad_report_params p = {.samples_per_round = 3, .max_points = 400};
    return p;
}

/* Plain, printable, colour only where it carries data. Fonts are the
 * system's own: the page loads nothing. */
static const char style_sheet[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#222;background:#fff;margin:0 auto;max-width:1400px;padding:0 18px 40px}"
    "h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;border-bottom:1px solid #bbb;"
    "padding-bottom:3px;margin-top:30px}h3{font-size:15px;margin:16px 0 4px}"
    "nav a{margin-right:12px}a{color:#0072B2}"
    ".note{color:#555;max-width:900px}.empty{color:#777;font-style:italic}"
    ".grid{display:flex;flex-wrap:wrap;gap:10px 18px}.row{display:flex;flex-wrap:wrap;"
    "gap:18px;align-items:flex-start}"
    "figure{margin:8px 0;break-inside:avoid;page-break-inside:avoid}"
    "figure.chart{width:440px}figcaption{font-size:13px;color:#333;margin-bottom:2px}"
    "svg text{font-family:inherit}svg .title{font-size:13px;font-weight:600;fill:#222}"
    "svg .tick{font-size:10px;fill:#444}svg .axis{font-size:11px;fill:#222}"
    "svg .rowlabel{font-size:11px;fill:#222}svg .plot{fill:none;stroke:#888}"
    "svg .grid{stroke:#e3e3e3;stroke-width:1}svg .roundmark{stroke:#999;stroke-dasharray:3 3}"
    "svg .cellnum{font-size:10px;fill:#111}svg .cellnum.dark{fill:#fff}"
    "svg .cell{stroke:#fff;stroke-width:0.5}"
    "svg .frontier{fill:none;stroke:#D55E00;stroke-width:3}svg .bar{stroke:#fff;stroke-width:0.5}"
    ".legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:2px 0 6px}"
    ".legend .key{display:inline-flex;align-items:center;gap:4px}"
    "table{border-collapse:collapse;margin:6px 0;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.rolled_back td{background:#fbe9e0}tr.running td{background:#fff8dc}"
    "td.advance{font-weight:600}td.key{font-family:monospace}"
    ".configcols{columns:3 300px;font-size:13px}.kv{break-inside:avoid}.absent{color:#999}"
    "table.samples code{white-space:pre-wrap;word-break:break-all}"
    "td.filters span{white-space:nowrap}.pass{color:#006d4f}.fail{color:#b34700}"
    "td.right{color:#006d4f}td.wrong{color:#b34700}td.unknown{color:#777}"
    "tr.kept td:first-child{border-left:4px solid #009E73}"
    "tr.rejected td:first-child{border-left:4px solid #D55E00}"
    "@media print{body{max-width:none;padding:0}nav{display:none}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "section{break-before:auto}h2{break-after:avoid}}";

static const struct {
    const char *id, *title;
} sections[] = {
    {"heatmap", "Accuracy heatmap"}, {"rounds", "Per round"},
    {"curves", "Training curves"},   {"time", "Time"},
    {"acceptance", "Acceptance"},    {"config", "Config"},
    {"samples", "Samples"},
};

static void head(rp_buf *b, const rp_run *runs, size_t n) {
    rp_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                 "style-src 'unsafe-inline'\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                 "<title>autodidact report: ");
    for (size_t r = 0; r < n; r++) {
        if (r) rp_printf(b, ", ");
        rp_esc(b, runs[r].name);
    }
    rp_printf(b, "</title><style>%s</style></head><body>", style_sheet);
}

static void summary(rp_buf *b, const rp_run *runs, size_t n) {
    rp_printf(b, "<header><h1>autodidact report</h1><table class=\"summary\"><tr><th>run</th>"
                 "<th>directory</th><th>task</th><th>lineages</th><th>rounds</th><th>state</th>"
                 "</tr>");
    for (size_t r = 0; r < n; r++) {
        char task[AD_CONFIG_VALUE_MAX + 1];
        if (!rp_ini_get(runs[r].config, "run.task", task, sizeof task))
            snprintf(task, sizeof task, "?");
        rp_printf(b, "<tr><td>");
        rp_esc(b, runs[r].name);
        rp_printf(b, "</td><td><code>");
        rp_esc(b, runs[r].dir);
        rp_printf(b, "</code></td><td>");
        rp_esc(b, task);
        rp_printf(b, "</td><td class=\"num\">%zu</td><td class=\"num\">%zu</td><td>%s</td></tr>",
                  runs[r].n_lineages, runs[r].rounds.n ? runs[r].rounds.n - 1 : 0,
                  runs[r].running ? "running (this page shows its last commit)" : "finished");
    }
    rp_printf(b, "</table><nav>");
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        rp_printf(b, "<a href=\"#%s\">%s</a>", sections[i].id, sections[i].title);
    rp_printf(b, "</nav></header>");
}

static void document(rp_buf *b, const rp_run *runs, size_t n, const ad_report_params *p) {
    head(b, runs, n);
    summary(b, runs, n);
    rp_section_heatmap(b, runs, n);
    rp_section_rounds(b, runs, n);
    rp_section_curves(b, runs, n, p->max_points);
    rp_section_time(b, runs, n);
    rp_section_acceptance(b, runs, n);
    rp_section_config(b, runs, n);
    rp_section_samples(b, runs, n);
    rp_printf(b, "<footer class=\"note\">Made by <code>autodidact report</code>; "
                 "docs/report.md says where each figure comes from.</footer></body></html>\n");
}

int ad_report_render(const char *const *dirs, size_t n, const ad_report_params *p, char **html,
                     size_t *len, ad_error *err) {
    *html = NULL;
    *len = 0;
    if (n == 0) return ad_error_set(err, "report: no run directory given");
    ad_report_params defaults = ad_report_default_params();
    if (!p) p = &defaults;
    rp_run *runs = calloc(n, sizeof *runs);
    if (!runs) return ad_error_set(err, "report: out of memory");
    int rc = AD_OK;
    size_t loaded = 0;
    for (; rc == AD_OK && loaded < n; loaded++)
        if ((rc = rp_run_load(&runs[loaded], dirs[loaded], p, err)) != AD_OK) break;
    rp_buf b;
    rp_buf_init(&b);
    if (rc == AD_OK) {
        document(&b, runs, n, p);
        rc = rp_buf_check(&b, err);
    }
    for (size_t i = 0; i < loaded; i++)
        rp_run_free(&runs[i]);
    free(runs);
    if (rc != AD_OK) {
        rp_buf_free(&b);
        return AD_ERR;
    }
    *html = b.s;
    *len = b.n;
    return AD_OK;
}

int ad_report_write(const char *const *dirs, size_t n, const ad_report_params *p,
                    const char *out_path, ad_error *err) {
    char *html = NULL;
    size_t len = 0;
    if (ad_report_render(dirs, n, p, &html, &len, err)) return AD_ERR;
    int rc = ad_atomic_write(out_path, html, len, err);
    free(html);
    return rc;
}
