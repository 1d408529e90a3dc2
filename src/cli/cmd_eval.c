/* cmd_eval.c: `autodidact eval CKPT --task NAME --levels A-B`: held-out greedy
 * accuracy per level, one JSON line per level; with --best-of K, also the
 * accuracy of an answer chosen among K samples, and pass@K. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "loop/evaluate.h"
#include "loop/judge.h"
#include "model/checkpoint.h"

static const char *usage_text =
    "usage: autodidact eval CKPT --task NAME --levels LIST [-n N] [--seed S] [--threads N]\n"
    "                       [--precision fp32|bf16]\n"
    "                       [--best-of K [--by likelihood|vote|judge] [--judge DIR]\n"
    "                                    [--temperature T]]\n\n"
    "Decodes N held-out problems per level greedily (the task's length bound is the\n"
    "budget) and prints one JSON line per level: {\"level\", \"n\", \"correct\",\n"
    "\"accuracy\", \"mean_logprob\", \"tokens_per_s\"}. Problems come from the evaluation\n"
    "seed stream of S (default 1), disjoint from training data of the same seed.\n"
    "LIST is e.g. 9-16, 5x6, or 1-3x1-3. Default N: 512. --precision bf16 decodes with\n"
    "the matrix products on bf16 operands and fp32 sums (CPUs with AVX512-BF16): faster,\n"
    "and answers can differ from fp32's by its rounding (default fp32).\n\n"
    "With --best-of K (1..4096), each problem also gets K samples at temperature T\n"
    "(default 1; 0 is greedy), seeded from S so a run repeats exactly, and is\n"
    "answered with one of them: --by likelihood (default) takes the sample with the\n"
    "highest sequence log-prob among those that reached EOS; --by vote takes the\n"
    "majority answer (a tie, or no sample that reached EOS, is wrong); --by judge\n"
    "takes the sample a self-taught judge (--judge DIR: a run's ckpt/judge/rNNNN,\n"
    "for the same task) gives the highest P(yes), among those that reached EOS.\n"
    "Each line then\n"
    "adds \"best_of\" (K), \"by\", \"temperature\", \"best_of_correct\",\n"
    "\"best_of_accuracy\" (the chosen answer's accuracy) and \"pass_at_k\" (the share\n"
    "of problems with a right answer among the K samples).\n\n"
    "Under mpirun (greedy only) each level's problems are split over the ranks by\n"
    "ranges and gathered in problem order: rank 0 prints the same figures as one\n"
    "process (tokens_per_s is per process).\n";

/* The flags of a best-of evaluation; k == 0 when --best-of was not given. */
typedef struct best_of_flags {
    ad_best_of_params p;
    int by_given, temperature_given;
    const char *judge_dir; /* --judge */
} best_of_flags;

static int parse_by(const char *s, ad_best_of_rule *out) {
    ad_error err = {{0}};
    if (ad_best_of_rule_parse(s, out, &err) == AD_OK) return 0;
    fprintf(stderr, "autodidact eval: --by: %s\n", err.msg);
    return 1;
}

/* Checks that the best-of flags fit together; 0 when they do. */
static int check_best_of(const best_of_flags *b, int best_of_given) {
    if (best_of_given && (b->p.k < 1 || b->p.k > AD_BEST_OF_MAX))
        return fprintf(stderr, "autodidact eval: --best-of: %zu is not in 1..%d\n", b->p.k,
                       AD_BEST_OF_MAX),
               1;
    if (!best_of_given && (b->by_given || b->temperature_given || b->judge_dir))
        return fprintf(stderr,
                       "autodidact eval: --by, --judge and --temperature need --best-of K\n"),
               1;
    if ((b->p.by == AD_BEST_OF_JUDGE) != (b->judge_dir != NULL))
        return fprintf(stderr, "autodidact eval: --by judge and --judge DIR go together\n"), 1;
    if (b->temperature_given && !(isfinite(b->p.temperature) && b->p.temperature >= 0.0f))
        return fprintf(stderr, "autodidact eval: --temperature: %g is not a finite value >= 0\n",
                       (double)b->p.temperature),
               1;
    return 0;
}

/* One level's JSON line: today's fields, then the best-of ones when b is not NULL. */
static void print_level(ad_level lv, const ad_level_accuracy *acc, const ad_best_of_accuracy *b) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "level", ad_task_level_to_json(lv));
    cJSON_AddNumberToObject(o, "n", (double)acc->n);
    cJSON_AddNumberToObject(o, "correct", (double)acc->correct);
    cJSON_AddNumberToObject(o, "accuracy", acc->accuracy);
    cJSON_AddNumberToObject(o, "mean_logprob", acc->mean_logprob);
    cJSON_AddNumberToObject(o, "tokens_per_s", acc->tokens_per_s);
    if (b) {
        cJSON_AddNumberToObject(o, "best_of", (double)b->params.k);
        cJSON_AddStringToObject(o, "by", ad_best_of_rule_name(b->params.by));
        cJSON_AddNumberToObject(o, "temperature", (double)b->params.temperature);
        cJSON_AddNumberToObject(o, "best_of_correct", (double)b->chosen_correct);
        cJSON_AddNumberToObject(o, "best_of_accuracy", b->best_of_accuracy);
        cJSON_AddNumberToObject(o, "pass_at_k", b->pass_at_k);
    }
    char *line = cJSON_PrintUnformatted(o);
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    cJSON_Delete(o);
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    static const struct option opts[] = {{"task", 1, 0, 't'},
                                         {"levels", 1, 0, 'l'},
                                         {"num", 1, 0, 'n'},
                                         {"seed", 1, 0, 's'},
                                         {"threads", 1, 0, 'T'},
                                         {"best-of", 1, 0, 'k'},
                                         {"by", 1, 0, 'b'},
                                         {"temperature", 1, 0, 'p'},
                                         {"judge", 1, 0, 'j'},
                                         {"precision", 1, 0, 'F'},
                                         {0, 0, 0, 0}};
    const char *task_name = NULL, *levels_text = NULL;
    size_t n = 512, threads = 0;
    uint64_t seed = 1;
    best_of_flags bf = {ad_best_of_default_params(), 0, 0, NULL};
    int c, bad = 0, best_of_given = 0, bf16 = 0;
    while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            task_name = optarg;
            break;
        case 'l':
            levels_text = optarg;
            break;
        case 'n':
            bad |= cli_parse_size("eval", "-n", optarg, &n);
            break;
        case 's':
            bad |= cli_parse_u64("eval", "--seed", optarg, &seed);
            break;
        case 'T':
            bad |= cli_parse_size("eval", "--threads", optarg, &threads);
            break;
        case 'k':
            best_of_given = 1;
            bad |= cli_parse_size("eval", "--best-of", optarg, &bf.p.k);
            break;
        case 'b':
            bf.by_given = 1;
            bad |= parse_by(optarg, &bf.p.by);
            break;
        case 'j':
            bf.judge_dir = optarg;
            break;
        case 'F':
            bad |= cli_parse_decode_precision("eval", optarg, &bf16);
            break;
        case 'p':
            bf.temperature_given = 1;
            bad |= cli_parse_float("eval", "--temperature", optarg, "rl.temperature",
                                   &bf.p.temperature);
            break;
        default:
            bad = 1;
        }
    }
    if (bad || check_best_of(&bf, best_of_given)) return 2;
    if (best_of_given && ad_dist_size() > 1) {
        if (ad_dist_rank() == 0)
            fprintf(stderr, "autodidact eval: --best-of runs in one process (start it without "
                            "mpirun); greedy evaluation is spread over ranks\n");
        return 2;
    }
    if (optind != argc - 1 || !task_name || !levels_text || n == 0)
        return fprintf(stderr, "%s", usage_text), 2;
    cli_set_threads(threads);
    ad_error err = {{0}};
    ad_task *task = NULL;
    ad_model *m = NULL;
    ad_level_list levels = {0};
    ad_vocab *vocab = malloc(sizeof *vocab), *judge_vocab = malloc(sizeof *judge_vocab);
    int rc = vocab && judge_vocab ? AD_OK : ad_error_set(&err, "out of memory");
    if (rc == AD_OK) rc = ad_task_open(task_name, NULL, &task, &err);
    if (rc == AD_OK && ad_level_list_parse(levels_text, &levels, &err) != AD_OK)
        rc = ad_error_prefix(&err, "--levels: ");
    for (size_t i = 0; rc == AD_OK && i < levels.n; i++)
        if (ad_task_level_check(task, levels.v[i], &err) != AD_OK)
            rc = ad_error_prefix(&err, "--levels: ");
    if (rc == AD_OK) rc = ad_checkpoint_load(argv[optind], &m, vocab, NULL, NULL, &err);
    if (rc == AD_OK) m->decode_bf16 = bf16;
    if (rc == AD_OK && bf.judge_dir)
        rc = ad_judge_load(bf.judge_dir, vocab, m->cfg.max_seq_len + 1, &bf.p.judge, judge_vocab,
                           &err);
    bf.p.judge_vocab = judge_vocab;
    for (size_t i = 0; rc == AD_OK && i < levels.n; i++) {
        if (best_of_given) {
            ad_best_of_accuracy b;
            rc = ad_evaluate_best_of(m, vocab, task, levels.v[i], n, seed, &bf.p, &b, &err);
            if (rc == AD_OK) print_level(levels.v[i], &b.greedy, &b);
        } else {
            ad_level_accuracy acc;
            rc = ad_evaluate_levels_spread(m, vocab, task, &levels.v[i], 1, n, seed, &acc, &err);
            if (rc == AD_OK && ad_dist_rank() == 0) print_level(levels.v[i], &acc, NULL);
        }
    }
    free(vocab);
    free(judge_vocab);
    ad_model_free(bf.p.judge);
    ad_model_free(m);
    ad_level_list_free(&levels);
    ad_task_free(task);
    return rc == AD_OK ? 0 : cli_fail_ranks("eval", &err);
}
