/* cmd_report.c: `autodidact report DIR [DIR2 ...] [--out FILE]`: a run, or
 * several side by side, as one self-contained HTML page (src/report). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "report/report.h"

static const char *usage_text =
    "usage: autodidact report DIR [DIR2 ...] [--out FILE] [--samples N]\n\n"
    "Writes one self-contained HTML page (inline SVG and CSS; no script, font or URL:\n"
    "it opens offline) showing the run in DIR: the accuracy heatmap per level and\n"
    "round with the trained frontier, per-round figures (label accuracy, kept\n"
    "fraction, pair accuracy, judge and reward precision, greedy vs pass@k vs\n"
    "maj@k), training curves, seconds per stage, accepted and rolled-back rounds,\n"
    "the config, and a browser of kept and rejected candidates. With several\n"
    "directories the runs are overlaid and their configs compared. The store is\n"
    "opened read-only: a run that is still going can be reported on (the page\n"
    "shows its last commit). docs/report.md explains every figure.\n\n"
    "  --out FILE    where to write the page (default: DIR/report.html of the first DIR)\n"
    "  --samples N   kept, and rejected, candidates shown per round (default 3)\n";

int cmd_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    if (!dirs) return fprintf(stderr, "autodidact report: out of memory\n"), 1;
    size_t n = 0;
    const char *out = NULL;
    ad_report_params p = ad_report_default_params();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
            if (cli_parse_size("report", "--samples", argv[++i], &p.samples_per_round))
                return free(dirs), 2;
        } else if (argv[i][0] != '-') {
            dirs[n++] = argv[i];
        } else {
            free(dirs);
            return fprintf(stderr, "%s", usage_text), 2;
        }
    }
    if (!n) return free(dirs), fprintf(stderr, "%s", usage_text), 2;
    char path[4200];
    if (!out && (size_t)snprintf(path, sizeof path, "%s/report.html", dirs[0]) >= sizeof path) {
        fprintf(stderr, "autodidact report: %s: path too long\n", dirs[0]);
        free(dirs);
        return 2;
    }
    if (!out) out = path;
    ad_error err = {{0}};
    int rc = ad_report_write(dirs, n, &p, out, &err);
    free(dirs);
    if (rc) return cli_fail("report", &err);
    printf("%s\n", out);
    return 0;
}
