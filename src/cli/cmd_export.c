/* cmd_export.c: `autodidact export DIR --round R`: a round's candidates as JSONL. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "store/store.h"

static const char *usage_text =
    "usage: autodidact export DIR --round R\n\n"
    "Writes the candidates of round R, with the select stage's decisions, as JSON lines\n"
    "on stdout: {\"prompt\", \"completion\", \"level\", \"logprob\", \"kept\", \"correct\",\n"
    "\"lineage\"} (correct is for reporting: it comes from the task's verifier).\n";

int cmd_export(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    const char *dir = NULL;
    size_t round = 0;
    int have_round = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--round") && i + 1 < argc) {
            if (cli_parse_size("export", "--round", argv[++i], &round)) return 2;
            have_round = 1;
        } else if (!dir && argv[i][0] != '-') {
            dir = argv[i];
        } else {
            return fprintf(stderr, "%s", usage_text), 2;
        }
    }
    if (!dir || !have_round) return fprintf(stderr, "%s", usage_text), 2;
    char path[4200];
    snprintf(path, sizeof path, "%s/run.db", dir);
    ad_error err = {{0}};
    ad_store *st = NULL;
    size_t n = 0;
    int rc = ad_store_open(path, 0, &st, &err);
    if (rc == AD_OK) rc = ad_store_run_select(st, NULL, NULL, NULL, &err);
    if (rc == AD_OK) rc = ad_store_export_jsonl(st, (uint32_t)round, "select", stdout, &n, &err);
    if (rc == AD_OK && n == 0)
        rc = ad_error_set(&err, "%s: round %zu has no selected candidates (yet)", dir, round);
    ad_store_close(st);
    return rc == AD_OK ? 0 : cli_fail("export", &err);
}
