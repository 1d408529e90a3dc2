/* cmd_export.c: `autodidact export DIR --round R [--pairs]`: a round's
 * candidates, or its preference pairs, as JSONL, read from the run store
 * opened read-only (it writes nothing in DIR). */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "store/store.h"

static const char *usage_text =
    "usage: autodidact export DIR --round R [--pairs]\n\n"
    "Writes the candidates of round R, with the select stage's decisions, as JSON lines\n"
    "on stdout: {\"prompt\", \"completion\", \"level\", \"logprob\", \"kept\", \"correct\",\n"
    "\"lineage\"} (correct is for reporting: it comes from the task's verifier).\n\n"
    "  --pairs   write the round's preference pairs instead, one per line, in the form\n"
    "            TRL's DPOTrainer reads: {\"prompt\", \"chosen\", \"rejected\"}, with \"level\",\n"
    "            \"rule\" (the pair rule that made it), \"chosen_correct\",\n"
    "            \"rejected_correct\" (true/false/null), \"chosen_lineage\",\n"
    "            \"rejected_lineage\".\n";

int cmd_export(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    const char *dir = NULL;
    size_t round = 0;
    int have_round = 0, pairs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--round") && i + 1 < argc) {
            if (cli_parse_size("export", "--round", argv[++i], &round)) return 2;
            have_round = 1;
        } else if (!strcmp(argv[i], "--pairs")) {
            pairs = 1;
        } else if (!dir && argv[i][0] != '-') {
            dir = argv[i];
        } else {
            return fprintf(stderr, "%s", usage_text), 2;
        }
    }
    if (!dir || !have_round) return fprintf(stderr, "%s", usage_text), 2;
    if (round > UINT32_MAX)
        return fprintf(stderr, "autodidact export: --round: bad value '%zu' (too large)\n", round),
               2;
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/run.db", dir) >= sizeof path)
        return fprintf(stderr, "autodidact export: %s: path too long\n", dir), 2;
    ad_error err = {{0}};
    ad_store *st = NULL;
    size_t n = 0;
    int rc = ad_store_open_readonly(path, &st, &err);
    if (rc == AD_OK) rc = ad_store_run_select(st, NULL, NULL, NULL, &err);
    if (rc == AD_OK && pairs)
        rc = ad_store_export_pairs_jsonl(st, (uint32_t)round, stdout, &n, &err);
    if (rc == AD_OK && !pairs)
        rc = ad_store_export_jsonl(st, (uint32_t)round, "select", stdout, &n, &err);
    if (rc == AD_OK && n == 0)
        rc = ad_error_set(&err, "%s: round %zu has no %s (yet)", dir, round,
                          pairs ? "preference pairs" : "selected candidates");
    ad_store_close(st);
    return rc == AD_OK ? 0 : cli_fail("export", &err);
}
