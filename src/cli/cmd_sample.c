/* cmd_sample.c: `autodidact sample CKPT --prompt TEXT`: decode completions from a
 * checkpoint and print one JSON line per sample. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "model/checkpoint.h"
#include "model/sampler.h"

static const char *usage_text =
    "usage: autodidact sample CKPT --prompt TEXT [options]\n\n"
    "Decodes completions of TEXT with the checkpoint's model (BOS is added before the\n"
    "prompt; decoding stops at EOS or after --max-new tokens) and prints one JSON line per\n"
    "sample: {\"prompt\", \"completion\", \"logprob\", \"tokens\"}, where logprob is the sum of\n"
    "the completion's token log-probabilities (EOS included) and tokens their count.\n\n"
    "options:\n"
    "  --prompt TEXT        the prompt (required)\n"
    "  -n, --num N          samples to draw (default 1)\n"
    "  --temperature T      0 = greedy (default 0)\n"
    "  --top-k K            keep the K most likely tokens (default 0 = off)\n"
    "  --top-p P            nucleus sampling mass (default 1 = off)\n"
    "  --max-new M          token budget (default: up to the model's max length)\n"
    "  --seed S             sampling seed (default 0)\n"
    "  --threads N          compute threads (default: all cores)\n"
    "  --precision P        fp32 (default) or bf16: the matrix products on bf16 operands\n"
    "                       with fp32 sums (CPUs with AVX512-BF16; 14M decodes ~2x as\n"
    "                       fast); completions can differ from fp32's by its rounding\n";

int cmd_sample(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    static const struct option opts[] = {
        {"prompt", required_argument, 0, 'p'},      {"num", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'P'},       {"max-new", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},        {"threads", required_argument, 0, 'T'},
        {"precision", required_argument, 0, 'F'},   {0, 0, 0, 0}};
    const char *prompt = NULL;
    size_t n = 1, max_new = 0, threads = 0;
    ad_sample_params sp = ad_sample_default_params();
    int c, bad = 0, bf16 = 0;
    while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            prompt = optarg;
            break;
        case 'n':
            bad |= cli_parse_size("sample", "--num", optarg, &n);
            break;
        case 't':
            bad |= cli_parse_float("sample", "--temperature", optarg, "rl.temperature",
                                   &sp.temperature);
            break;
        case 'k':
            bad |= cli_parse_size("sample", "--top-k", optarg, &sp.top_k);
            break;
        case 'P':
            bad |= cli_parse_float("sample", "--top-p", optarg, "rl.top_p", &sp.top_p);
            break;
        case 'm':
            bad |= cli_parse_size("sample", "--max-new", optarg, &max_new);
            break;
        case 's':
            bad |= cli_parse_u64("sample", "--seed", optarg, &sp.seed);
            break;
        case 'T':
            bad |= cli_parse_size("sample", "--threads", optarg, &threads);
            break;
        case 'F':
            bad |= cli_parse_decode_precision("sample", optarg, &bf16);
            break;
        default:
            bad = 1;
        }
    }
    if (bad) return 2;
    if (optind != argc - 1 || !prompt) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    if (sp.temperature < 0 || sp.top_p <= 0 || sp.top_p > 1) {
        fprintf(stderr, "autodidact sample: temperature must be >= 0 and top-p in (0, 1]\n");
        return 2;
    }
    cli_set_threads(threads);
    ad_error err = {{0}};
    ad_model *m = NULL;
    ad_vocab *vocab = malloc(sizeof *vocab);
    if (!vocab) return fprintf(stderr, "autodidact sample: out of memory\n"), 1;
    if (ad_checkpoint_load(argv[optind], &m, vocab, NULL, NULL, &err) != AD_OK) {
        free(vocab);
        return cli_fail("sample", &err);
    }
    m->decode_bf16 = bf16;
    int rc = 1;
    size_t cap = m->cfg.max_seq_len;
    int32_t *ids = malloc(cap * sizeof *ids);
    ad_sample_request *reqs = calloc(n ? n : 1, sizeof *reqs);
    ad_sample_result *res = calloc(n ? n : 1, sizeof *res);
    char *text = malloc(cap * (AD_TOKEN_MAX_LEN + 1) + 1);
    size_t plen = 0;
    if (!ids || !reqs || !res || !text) {
        ad_error_set(&err, "out of memory");
        goto done;
    }
    ids[0] = AD_TOK_BOS;
    if (ad_vocab_encode(vocab, prompt, ids + 1, cap - 1, &plen, &err) != AD_OK) {
        ad_error_prefix(&err, "--prompt: ");
        goto done;
    }
    if (plen + 1 >= cap) {
        ad_error_set(&err, "--prompt: %zu tokens leave no room in the model's %zu", plen, cap);
        goto done;
    }
    size_t budget = cap - plen - 1;
    if (max_new && max_new < budget) budget = max_new;
    for (size_t i = 0; i < n; i++)
        reqs[i] = (ad_sample_request){ids, plen + 1, budget, i};
    if (ad_sample_generate(m, reqs, n, &sp, res, &err) != AD_OK) goto done;
    for (size_t i = 0; i < n; i++) {
        size_t body = res[i].n - (res[i].hit_eos ? 1 : 0);
        if (ad_vocab_decode(vocab, res[i].tokens, body, text, cap * (AD_TOKEN_MAX_LEN + 1) + 1,
                            &err) != AD_OK)
            goto done;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "prompt", prompt);
        cJSON_AddStringToObject(o, "completion", text);
        cJSON_AddNumberToObject(o, "logprob", res[i].logprob_sum);
        cJSON_AddNumberToObject(o, "tokens", (double)res[i].n);
        cJSON_AddBoolToObject(o, "eos", res[i].hit_eos);
        char *line = cJSON_PrintUnformatted(o);
        printf("%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    rc = 0;
done:
    if (rc) cli_fail("sample", &err);
    for (size_t i = 0; res && i < n; i++)
        ad_sample_result_free(&res[i]);
    free(res);
    free(reqs);
    free(ids);
    free(text);
    free(vocab);
    ad_model_free(m);
    return rc;
}
