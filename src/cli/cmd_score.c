/* cmd_score.c: `autodidact score CKPT`: teacher-forced log p(completion + EOS |
 * BOS + prompt) for JSONL pairs read on stdin. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "model/checkpoint.h"
#include "model/sampler.h"
#include "model/trainer.h"
#include "util/json.h"

static const char *usage_text =
    "usage: autodidact score CKPT [--threads N] [--batch N] < pairs.jsonl\n\n"
    "Reads JSON lines {\"prompt\": ..., \"completion\": ...} on stdin and writes each line\n"
    "back with \"logprob\" (log p(completion + EOS | BOS + prompt), summed over tokens)\n"
    "and \"tokens\" (the number of scored tokens, EOS included) added. Input is read and\n"
    "scored N lines at a time (--batch, default 256), so memory stays bounded; the output\n"
    "does not depend on N. A malformed line stops it, reported with its number (the lines\n"
    "of earlier batches are already printed).\n";

typedef struct pair_list {
    cJSON **objs;
    ad_example *ex;
    size_t n, cap;
} pair_list;

/* Empties p for the next batch (keeps its arrays). */
static void pairs_clear(pair_list *p) {
    for (size_t i = 0; i < p->n; i++) {
        cJSON_Delete(p->objs[i]);
        ad_example_free(&p->ex[i]);
    }
    p->n = 0;
}

static void pairs_free(pair_list *p) {
    pairs_clear(p);
    free(p->objs);
    free(p->ex);
}

/* Line reader state kept across batches. */
typedef struct line_reader {
    char *line;
    size_t cap, lineno;
    int eof;
} line_reader;

/* Reads and encodes up to `limit` pairs; on error names the line. */
static int read_pairs(pair_list *p, line_reader *r, size_t limit, const ad_vocab *v, size_t max_len,
                      ad_error *err) {
    ssize_t got = 0;
    int rc = AD_OK;
    while (p->n < limit && (got = getline(&r->line, &r->cap, stdin)) != -1) {
        char *line = r->line;
        size_t lineno = ++r->lineno;
        if (got <= 1 && (got == 0 || line[0] == '\n')) continue;
        ad_error why = {{0}};
        cJSON *o = ad_json_parse_strict(line, (size_t)got, &why);
        if (!o) {
            rc = ad_error_set(err, "stdin line %zu: %s", lineno, why.msg);
            break;
        }
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
        const cJSON *co = cJSON_GetObjectItemCaseSensitive(o, "completion");
        if (!cJSON_IsObject(o) || !cJSON_IsString(pr) || !cJSON_IsString(co)) {
            cJSON_Delete(o);
            rc = ad_error_set(err,
                              "stdin line %zu: expected a JSON object with string "
                              "\"prompt\" and \"completion\"",
                              lineno);
            break;
        }
        if (p->n == p->cap) {
            size_t nc = p->cap ? 2 * p->cap : 64;
            cJSON **a = realloc(p->objs, nc * sizeof *a);
            if (a) p->objs = a;
            ad_example *b = realloc(p->ex, nc * sizeof *b);
            if (b) p->ex = b;
            if (!a || !b) {
                cJSON_Delete(o);
                rc = ad_error_set(err, "out of memory at line %zu", lineno);
                break;
            }
            p->cap = nc;
        }
        if (ad_example_encode(&p->ex[p->n], v, pr->valuestring, co->valuestring, max_len, err)) {
            cJSON_Delete(o);
            rc = ad_error_prefix(err, "stdin line %zu: ", lineno);
            break;
        }
        p->objs[p->n++] = o;
    }
    if (got == -1) r->eof = 1;
    return rc;
}

static int score_and_print(ad_model *m, pair_list *p, ad_error *err) {
    const int32_t **seqs = malloc((p->n ? p->n : 1) * sizeof *seqs);
    size_t *lens = malloc((p->n ? p->n : 1) * sizeof *lens);
    size_t *from = malloc((p->n ? p->n : 1) * sizeof *from);
    size_t *count = malloc((p->n ? p->n : 1) * sizeof *count);
    double *lp = malloc((p->n ? p->n : 1) * sizeof *lp);
    int rc = AD_ERR;
    if (!seqs || !lens || !from || !count || !lp) {
        ad_error_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p->n; i++) {
        seqs[i] = p->ex[i].tokens;
        lens[i] = p->ex[i].len;
        from[i] = p->ex[i].loss_from;
    }
    if (ad_score_sequences(m, (const int32_t *const *)seqs, lens, from, p->n, lp, count, err))
        goto done;
    for (size_t i = 0; i < p->n; i++) {
        cJSON_AddNumberToObject(p->objs[i], "logprob", lp[i]);
        cJSON_AddNumberToObject(p->objs[i], "tokens", (double)count[i]);
        char *text = cJSON_PrintUnformatted(p->objs[i]);
        printf("%s\n", text);
        free(text);
    }
    rc = AD_OK;
done:
    free(seqs);
    free(lens);
    free(from);
    free(count);
    free(lp);
    return rc;
}

int cmd_score(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return printf("%s", usage_text), 0;
    static const struct option opts[] = {
        {"threads", required_argument, 0, 'T'}, {"batch", required_argument, 0, 'B'}, {0, 0, 0, 0}};
    size_t threads = 0, batch = 256;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'T' && !cli_parse_size("score", "--threads", optarg, &threads)) continue;
        if (c == 'B' && !cli_parse_size("score", "--batch", optarg, &batch) && batch) continue;
        if (c == 'B' && !batch) fprintf(stderr, "autodidact score: --batch must be at least 1\n");
        return 2;
    }
    if (optind != argc - 1) return fprintf(stderr, "%s", usage_text), 2;
    cli_set_threads(threads);
    ad_error err = {{0}};
    ad_model *m = NULL;
    ad_vocab *vocab = malloc(sizeof *vocab);
    if (!vocab) return fprintf(stderr, "autodidact score: out of memory\n"), 1;
    if (ad_checkpoint_load(argv[optind], &m, vocab, NULL, NULL, &err) != AD_OK) {
        free(vocab);
        return cli_fail("score", &err);
    }
    pair_list pairs = {0};
    line_reader r = {0};
    int rc = AD_OK;
    while (rc == AD_OK && !r.eof) {
        pairs_clear(&pairs);
        rc = read_pairs(&pairs, &r, batch, vocab, m->cfg.max_seq_len, &err);
        if (rc == AD_OK && pairs.n) rc = score_and_print(m, &pairs, &err);
    }
    if (rc != AD_OK) cli_fail("score", &err);
    free(r.line);
    pairs_free(&pairs);
    free(vocab);
    ad_model_free(m);
    return rc == AD_OK ? 0 : 1;
}
