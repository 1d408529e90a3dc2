/* complete.c: task <-> model glue: vocabulary, labelled examples, batched completion. */
#include "loop/complete.h"

#include <stdlib.h>
#include <string.h>

int ad_vocab_for_task(ad_vocab *v, const ad_task *t, ad_error *err) {
    size_t n = 0;
    const char *const *tokens = ad_task_tokens(t, &n);
    if (ad_vocab_build(v, tokens, n, err) != AD_OK)
        return ad_error_prefix(err, "task %s: ", ad_task_name(t));
    return AD_OK;
}

int ad_task_sequence_bound(const ad_task *t, ad_level lv, size_t probe, uint64_t seed, size_t *out,
                           ad_error *err) {
    *out = ad_task_max_sequence_len(t);
    if (*out) return AD_OK;
    ad_problem p = {0};
    size_t worst = 0;
    for (size_t i = 0; i < probe; i++) {
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed(seed, AD_SEED_ANY, AD_SEED_ANY, AD_SEED_BASE,
                                  ad_seed_level_key(lv.a, lv.b), i));
        size_t bound;
        if (ad_task_generate(t, lv, &rng, &p, err) != AD_OK ||
            ad_task_max_answer_len(t, p.prompt.s, &bound, err) != AD_OK) {
            ad_problem_free(&p);
            return AD_ERR;
        }
        size_t len = p.prompt.len + bound + 2;
        if (len > worst) worst = len;
    }
    ad_problem_free(&p);
    *out = worst;
    return AD_OK;
}

int ad_labelled_example(const ad_task *t, const ad_vocab *v, size_t max_len, ad_level lv,
                        ad_rng *rng, ad_problem *scratch, ad_example *out, ad_error *err) {
    if (ad_task_generate(t, lv, rng, scratch, err) != AD_OK) return AD_ERR;
    if (!scratch->has_answer)
        return ad_error_set(err, "task %s: a problem without an answer cannot be a training label",
                            ad_task_name(t));
    return ad_example_encode(out, v, scratch->prompt.s, scratch->answer.s, max_len, err);
}

void ad_completion_free(ad_completion *c) {
    free(c->text);
    memset(c, 0, sizeof *c);
}

/* Encodes BOS + prompt for every prompt into one id buffer; offsets in starts. */
static int encode_prompts(const ad_vocab *v, const ad_task *t, size_t max_len,
                          const char *const *prompts, size_t n, int32_t **ids_out, size_t *starts,
                          size_t *lens, size_t *budgets, ad_error *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(prompts[i]) + 1;
    int32_t *ids = malloc((total ? total : 1) * sizeof *ids);
    if (!ids) return ad_error_set(err, "out of memory encoding %zu prompts", n);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t np = 0, bound = 0;
        ids[at] = AD_TOK_BOS;
        if (ad_vocab_encode(v, prompts[i], ids + at + 1, total - at - 1, &np, err) != AD_OK ||
            ad_task_max_answer_len(t, prompts[i], &bound, err) != AD_OK) {
            free(ids);
            return ad_error_prefix(err, "prompt %zu '%.60s': ", i, prompts[i]);
        }
        if (np + 2 > max_len) {
            free(ids);
            return ad_error_set(err, "prompt %zu is %zu tokens, too long for the model's %zu", i,
                                np + 1, max_len);
        }
        starts[i] = at;
        lens[i] = np + 1;
        budgets[i] = bound + 1 < max_len - lens[i] ? bound + 1 : max_len - lens[i];
        at += np + 1;
    }
    *ids_out = ids;
    return AD_OK;
}

/* Turns raw sampler results into text completions. */
static int decode_results(const ad_vocab *v, ad_sample_result *res, size_t n, ad_completion *out,
                          ad_error *err) {
    for (size_t i = 0; i < n; i++) {
        size_t body = res[i].n - (res[i].hit_eos ? 1 : 0);
        size_t cap = body * (AD_TOKEN_MAX_LEN + 1) + 1;
        out[i].text = malloc(cap);
        if (!out[i].text ||
            ad_vocab_decode(v, res[i].tokens, body, out[i].text, cap, err) != AD_OK) {
            for (size_t j = 0; j <= i; j++)
                ad_completion_free(&out[j]);
            return out[i].text ? AD_ERR : ad_error_set(err, "out of memory decoding");
        }
        out[i].n_tokens = res[i].n;
        out[i].logprob_sum = res[i].logprob_sum;
        out[i].hit_eos = res[i].hit_eos;
        out[i].certainty_sum = res[i].certainty_sum;
    }
    return AD_OK;
}

int ad_complete_prompts(ad_model *m, const ad_vocab *v, const ad_task *t,
                        const char *const *prompts, size_t n, size_t k, const ad_sample_params *sp,
                        uint64_t base_stream, ad_completion *out, ad_error *err) {
    memset(out, 0, n * k * sizeof *out);
    if (n == 0 || k == 0) return AD_OK;
    size_t *starts = malloc(n * sizeof *starts), *lens = malloc(n * sizeof *lens);
    size_t *budgets = malloc(n * sizeof *budgets);
    ad_sample_request *reqs = malloc(n * k * sizeof *reqs);
    ad_sample_result *res = calloc(n * k, sizeof *res);
    int32_t *ids = NULL;
    int rc = AD_ERR;
    if (!starts || !lens || !budgets || !reqs || !res) {
        ad_error_set(err, "out of memory for %zu completions", n * k);
        goto done;
    }
    if (encode_prompts(v, t, m->cfg.max_seq_len, prompts, n, &ids, starts, lens, budgets, err))
        goto done;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++)
            reqs[i * k + j] =
                (ad_sample_request){ids + starts[i], lens[i], budgets[i], base_stream + i * k + j};
    if (ad_sample_generate(m, reqs, n * k, sp, res, err) != AD_OK) goto done;
    rc = decode_results(v, res, n * k, out, err);
    for (size_t i = 0; i < n * k; i++)
        ad_sample_result_free(&res[i]);
done:
    free(res);
    free(reqs);
    free(ids);
    free(starts);
    free(lens);
    free(budgets);
    return rc;
}
