/* cmd_run.c: `autodidact run CONFIG --out DIR` starts a self-improvement run;
 * `autodidact resume DIR` continues one after an interruption. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "loop/run.h"

static const char *run_usage =
    "usage: autodidact run CONFIG --out DIR [--from RUN] [--set section.key=value ...]\n\n"
    "Starts a self-improvement run: base training on labelled problems, then rounds of\n"
    "acquire (fresh prompts past the frontier, decoded by the model), select (filters),\n"
    "optimize (training on the kept self-labels), evaluate and accept. CONFIG is an INI\n"
    "file (docs/config.md lists every key; examples/ holds ready ones); --set overrides\n"
    "one key and may be repeated. Everything is kept in DIR; if the process stops, run\n"
    "`autodidact resume DIR` to continue exactly where it was.\n\n"
    "--from RUN starts from the base model of the run in RUN instead of training one:\n"
    "the two configs must agree on every key the base depends on (task, seed, task.*,\n"
    "model.* but max_len, base.*, optim.*), so the result is the same as training it; use\n"
    "it to compare round recipes on one base. With more lineages than RUN, the lineages\n"
    "RUN has are copied and the others are trained here (a lineage's base depends only on\n"
    "the seed and its index).\n";

static const char *resume_usage =
    "usage: autodidact resume DIR\n\n"
    "Continues the run in DIR from its last durable point (after a crash, a kill or a\n"
    "finished run whose config asks for more rounds). The result is bit-identical to an\n"
    "uninterrupted run with the same seed and thread count.\n";

/* Joins the ranks (alone: returns rc) and runs. Under mpirun an error while
 * running stops every rank (the others may be waiting on this one); an error
 * in joining is every rank's, and rank 0 alone prints it. */
static int execute(const char *name, ad_run *run, int rc, ad_error *err) {
    rc = ad_run_join(&run, rc, err);
    if (rc != AD_OK) {
        ad_run_free(run);
        return ad_dist_rank() == 0 ? cli_fail(name, err) : 1;
    }
    rc = ad_run_execute(run, err);
    ad_run_free(run);
    return rc == AD_OK ? 0 : cli_fail_ranks(name, err);
}

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", run_usage), 0;
    const char *config = NULL, *out = NULL, *from = NULL;
    const char **sets = calloc((size_t)argc, sizeof *sets);
    size_t n_sets = 0;
    if (!sets) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
            from = argv[++i];
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6)) {
            sets[n_sets++] = argv[i] + 6;
        } else if (argv[i][0] != '-' && !config) {
            config = argv[i];
        } else {
            fprintf(stderr, "autodidact run: unexpected argument '%s'\n%s", argv[i], run_usage);
            free(sets);
            return 2;
        }
    }
    if (!config || !out) {
        fprintf(stderr, "autodidact run: CONFIG and --out DIR are required\n%s", run_usage);
        free(sets);
        return 2;
    }
    ad_error err = {{0}};
    ad_run *run = NULL;
    int rc = AD_OK;
    if (ad_dist_rank() == 0) /* under mpirun the others join it (ad_run_join) */
        rc = from ? ad_run_create_from(&run, out, config, sets, n_sets, from, &err)
                  : ad_run_create(&run, out, config, sets, n_sets, &err);
    free(sets);
    return execute("run", run, rc, &err);
}

int cmd_resume(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", resume_usage), 0;
    if (argc != 2) return fprintf(stderr, "%s", resume_usage), 2;
    ad_error err = {{0}};
    ad_run *run = NULL;
    int rc = ad_dist_rank() == 0 ? ad_run_open(&run, argv[1], &err) : AD_OK;
    return execute("resume", run, rc, &err);
}
