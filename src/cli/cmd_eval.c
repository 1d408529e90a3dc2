/* cmd_eval.c: `autodidact eval CKPT --task NAME --levels A-B`: held-out greedy
 * accuracy per level, one JSON line per level. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "loop/evaluate.h"
#include "model/checkpoint.h"

static const char *usage_text =
    "usage: autodidact eval CKPT --task NAME --levels LIST [-n N] [--seed S] [--threads N]\n\n"
    "Decodes N held-out problems per level greedily (the task's length bound is the\n"
    "budget) and prints one JSON line per level: {\"level\", \"n\", \"correct\",\n"
    "\"accuracy\", \"mean_logprob\", \"tokens_per_s\"}. Problems come from the evaluation\n"
    "seed stream of S (default 1), disjoint from training data of the same seed.\n"
    "LIST is e.g. 9-16, 5x6, or 1-3x1-3. Default N: 512.\n";

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    static const struct option opts[] = {{"task", 1, 0, 't'}, {"levels", 1, 0, 'l'},
                                         {"num", 1, 0, 'n'},  {"seed", 1, 0, 's'},
                                         {"threads", 1, 0, 'T'}, {0, 0, 0, 0}};
    const char *task_name = NULL, *levels_text = NULL;
    size_t n = 512, threads = 0;
    uint64_t seed = 1;
    int c, bad = 0;
    while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (c) {
        case 't': task_name = optarg; break;
        case 'l': levels_text = optarg; break;
        case 'n': bad |= cli_parse_size("eval", "-n", optarg, &n); break;
        case 's': bad |= cli_parse_u64("eval", "--seed", optarg, &seed); break;
        case 'T': bad |= cli_parse_size("eval", "--threads", optarg, &threads); break;
        default: bad = 1;
        }
    }
    if (bad) return 2;
    if (optind != argc - 1 || !task_name || !levels_text || n == 0)
        return fprintf(stderr, "%s", usage_text), 2;
    cli_set_threads(threads);
    ad_error err = {{0}};
    ad_task *task = NULL;
    ad_model *m = NULL;
    ad_level_list levels = {0};
    ad_vocab *vocab = malloc(sizeof *vocab);
    ad_level_accuracy *acc = NULL;
    int rc = vocab ? AD_OK : ad_error_set(&err, "out of memory");
    if (rc == AD_OK) rc = ad_task_open(task_name, NULL, &task, &err);
    if (rc == AD_OK && ad_level_list_parse(levels_text, &levels, &err) != AD_OK)
        rc = ad_error_prefix(&err, "--levels: ");
    for (size_t i = 0; rc == AD_OK && i < levels.n; i++)
        if (ad_task_level_check(task, levels.v[i], &err) != AD_OK)
            rc = ad_error_prefix(&err, "--levels: ");
    if (rc == AD_OK) rc = ad_checkpoint_load(argv[optind], &m, vocab, NULL, NULL, &err);
    if (rc == AD_OK && !(acc = calloc(levels.n ? levels.n : 1, sizeof *acc)))
        rc = ad_error_set(&err, "out of memory");
    for (size_t i = 0; rc == AD_OK && i < levels.n; i++) {
        rc = ad_evaluate_levels(m, vocab, task, &levels.v[i], 1, n, seed, &acc[i], &err);
        if (rc != AD_OK) break;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "level", ad_task_level_to_json(levels.v[i]));
        cJSON_AddNumberToObject(o, "n", (double)acc[i].n);
        cJSON_AddNumberToObject(o, "correct", (double)acc[i].correct);
        cJSON_AddNumberToObject(o, "accuracy", acc[i].accuracy);
        cJSON_AddNumberToObject(o, "mean_logprob", acc[i].mean_logprob);
        cJSON_AddNumberToObject(o, "tokens_per_s", acc[i].tokens_per_s);
        char *line = cJSON_PrintUnformatted(o);
        printf("%s\n", line);
        fflush(stdout);
        free(line);
        cJSON_Delete(o);
    }
    free(acc);
    free(vocab);
    ad_model_free(m);
    ad_level_list_free(&levels);
    ad_task_free(task);
    return rc == AD_OK ? 0 : cli_fail("eval", &err);
}
