/* test_sampler.c: KV-cache decoding, token picking, generation and scoring.
 *
 * The reference for everything is the full forward pass (ad_model_forward):
 * KV-cache logits must equal it, greedy tokens must be its argmax, returned
 * log-probs its log-softmax, scores its sums. Sampling is checked for
 * determinism, independence from batch companions, and (on a tiny model) for
 * frequencies that match the tempered softmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/kernels.h"
#include "model/kernels_internal.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/sampler_internal.h"
#include "model/vocab.h"
#include "util/rng.h"

/* A tiny model with large weights, so attention is far from uniform and
 * positions (RoPE) matter for the logits. */
static ad_model *tiny_model(ad_pos_encoding pos, size_t V, uint64_t seed) {
    ad_model_config c = ad_model_default_config();
    c.n_layers = 2;
    c.n_heads = 4;
    c.d_model = 32;
    c.d_ff = 64;
    c.vocab_size = V;
    c.max_seq_len = 32;
    c.init_std = 0.3f;
    c.pos = pos;
    c.seed = seed;
    ad_model *m = NULL;
    ad_error err;
    if (ad_model_create(&m, &c, &err)) fprintf(stderr, "model: %s\n", err.msg);
    return m;
}

/* Full-forward logits of B right-padded rows of T tokens, copied out. */
static float *full_logits(ad_model *m, const int32_t *tokens, size_t B, size_t T) {
    int32_t *targets = malloc(B * T * sizeof *targets);
    for (size_t i = 0; i < B * T; i++)
        targets[i] = -1;
    ad_batch b = {.B = B, .T = T, .tokens = tokens, .targets = targets};
    double loss;
    size_t nt;
    ad_error err;
    float *out = malloc(B * T * m->cfg.vocab_size * sizeof *out);
    if (ad_model_forward(m, &b, &loss, &nt, &err)) fprintf(stderr, "forward: %s\n", err.msg);
    memcpy(out, ad_model_logits(m), B * T * m->cfg.vocab_size * sizeof *out);
    free(targets);
    return out;
}

static void random_tokens(ad_rng *r, int32_t *t, size_t n, size_t V) {
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)ad_rng_below(r, V);
}

/* Feeds 4 sequences through 3 decoder slots: the shortest retires early, the
 * last slot moves into its place and the fourth sequence is admitted at
 * position 0 while the others are far ahead (ragged rows in one step). Every
 * step's logits must match the full forward's. */
static void kv_cache_matches_full_forward(ad_pos_encoding pos) {
    enum { NS = 4, T = 13, V = 11 };
    const size_t lens[NS] = {13, 5, 12, 3}; /* see the retire/admit order below */
    ad_model *m = tiny_model(pos, V, 7);
    ad_rng r;
    ad_rng_seed(&r, 3);
    int32_t toks[NS * T];
    random_tokens(&r, toks, NS * T, V);
    for (size_t s = 0; s < NS; s++)
        toks[s * T] = AD_TOK_BOS;
    float *ref = full_logits(m, toks, NS, T);
    float ref_max = 0;
    for (size_t i = 0; i < NS * T * V; i++)
        ref_max = fmaxf(ref_max, fabsf(ref[i]));
    CHECK(ref_max > 1.0f); /* logits large enough for the tolerance to mean something */

    ad_kv_decoder *d = NULL;
    ad_error err;
    CHECK(ad_kv_decoder_create(&d, m, 3, T, 0, &err) == AD_OK);
    size_t seq[3] = {0, 1, 2}, at[3] = {0, 0, 0}, nb = 3, next = 3, checked = 0;
    size_t want[3] = {0, 1, 2};
    float logits[3 * V], worst = 0;
    while (nb) {
        int32_t tok[3];
        for (size_t i = 0; i < nb; i++)
            tok[i] = toks[seq[i] * T + at[i]];
        ad_kv_decoder_step(d, tok, at, nb, want, nb, logits);
        for (size_t i = 0; i < nb; i++) {
            const float *e = ref + (seq[i] * T + at[i]) * V;
            for (size_t v = 0; v < V; v++)
                worst = fmaxf(worst, fabsf(logits[i * V + v] - e[v]));
            checked++;
            at[i]++;
        }
        for (size_t i = 0; i < nb;) {
            if (at[i] < lens[seq[i]]) {
                i++;
                continue;
            }
            if (next < NS) { /* admit the next sequence at position 0 */
                seq[i] = next++;
                at[i] = 0;
                continue;
            }
            nb--;
            ad_kv_decoder_move(d, i, nb, at[nb]);
            seq[i] = seq[nb];
            at[i] = at[nb];
        }
    }
    CHECK(checked == 13 + 5 + 12 + 3);
    CHECK_MSG(worst <= 1e-5f * ref_max, "max |kv - full| = %g for max |logit| %g", worst, ref_max);
    ad_kv_decoder_free(d);
    free(ref);
    ad_model_free(m);
}

static void test_kv_cache_nope(void) {
    kv_cache_matches_full_forward(AD_POS_NONE);
}

static void test_kv_cache_rope(void) {
    kv_cache_matches_full_forward(AD_POS_ROPE);
}

/* ---- picking on hand-made logits ---- */

static const float hand[6] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};

/* softmax(hand / t)[j] restricted to the ids in keep[0..n), renormalised. */
static double hand_prob(float t, const int32_t *keep, size_t n, int32_t j) {
    double z = 0, pj = 0;
    for (size_t i = 0; i < n; i++) {
        double e = exp(hand[keep[i]] / t);
        z += e;
        if (keep[i] == j) pj = e;
    }
    return pj / z;
}

static int support_is(float t, size_t k, float p, const int32_t *want, size_t n_want) {
    int32_t ids[6];
    double probs[6];
    size_t n = ad_sample_support(hand, 6, t, k, p, ids, probs);
    if (n != n_want) return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i] || fabs(probs[i] - hand_prob(t, want, n, want[i])) > 1e-12) return 0;
    return 1;
}

static void test_pick_support_hand(void) {
    /* T = 1: probs 1,3 -> .384 each, 2 -> .141, 0 -> .052, 5 -> .032, 4 -> .007 */
    CHECK(ad_sample_argmax(hand, 6) == 1); /* tie with id 3 goes to the lower id */
    CHECK(support_is(1, 0, 1, (int32_t[]){0, 1, 2, 3, 4, 5}, 6));
    CHECK(support_is(1, 1, 1, (int32_t[]){1}, 1));
    CHECK(support_is(1, 2, 1, (int32_t[]){1, 3}, 2));
    CHECK(support_is(1, 3, 1, (int32_t[]){1, 3, 2}, 3));
    CHECK(support_is(1, 6, 1, (int32_t[]){0, 1, 2, 3, 4, 5}, 6));
    CHECK(support_is(1, 0, 0.3f, (int32_t[]){1}, 1));
    CHECK(support_is(1, 0, 0.5f, (int32_t[]){1, 3}, 2));
    CHECK(support_is(1, 0, 0.8f, (int32_t[]){1, 3, 2}, 3));
    CHECK(support_is(1, 0, 0.95f, (int32_t[]){1, 3, 2, 0}, 4));
    CHECK(support_is(1, 0, 0.97f, (int32_t[]){1, 3, 2, 0, 5}, 5));
    /* top-p applies to the top-k set renormalised: within {1,3,2} the first two
     * carry .845 >= .8, while over all six they carry only .768 < .8 */
    CHECK(support_is(1, 3, 0.8f, (int32_t[]){1, 3}, 2));
    /* temperature before top-p: at T = 4 the two best carry only ~.45 < .5 */
    CHECK(support_is(4, 0, 0.5f, (int32_t[]){1, 3, 2}, 3));
    CHECK(support_is(0.5f, 0, 1, (int32_t[]){0, 1, 2, 3, 4, 5}, 6));
    double lz = log(exp(1.0) + 2 * exp(3.0) + exp(2.0) + exp(-1.0) + exp(0.5));
    CHECK_CLOSE(ad_sample_logprob(hand, 6, 4), -1.0 - lz, 1e-12, 1e-12);
    CHECK_CLOSE(ad_sample_logprob(hand, 6, 3), 3.0 - lz, 1e-12, 1e-12);
}

/* A grid of uniform draws must land on each token in proportion to its
 * probability, never outside the support; temperature 0 ignores the draw. */
static void test_pick_frequencies_hand(void) {
    enum { N = 100000 };
    const float temps[3] = {1.0f, 0.5f, 2.0f};
    const size_t ks[3] = {0, 3, 0};
    const float ps[3] = {1.0f, 1.0f, 0.8f};
    for (int c = 0; c < 3; c++) {
        int32_t ids[6], sup[6];
        double probs[6], sprob[6];
        size_t n = ad_sample_support(hand, 6, temps[c], ks[c], ps[c], sup, sprob);
        size_t count[6] = {0};
        for (size_t i = 0; i < N; i++)
            count[ad_sample_pick(hand, 6, temps[c], ks[c], ps[c], (i + 0.5) / N, ids, probs)]++;
        for (int32_t j = 0; j < 6; j++) {
            double p = 0;
            for (size_t i = 0; i < n; i++)
                if (sup[i] == j) p = sprob[i];
            CHECK_MSG(fabs((double)count[j] / N - p) <= 2.0 / N,
                      "case %d token %d: %zu of %d, p %g", c, (int)j, count[j], N, p);
        }
    }
    for (int i = 0; i < 10; i++) {
        int32_t ids[6];
        double probs[6];
        CHECK(ad_sample_pick(hand, 6, 0.0f, 0, 1.0f, i / 10.0, ids, probs) == 1);
        CHECK(ad_sample_pick(hand, 6, 1.0f, 1, 1.0f, i / 10.0, ids, probs) == 1);
    }
}

/* Brute-force ranking check on a larger vocabulary with many ties. */
static void test_pick_support_random(void) {
    enum { V = 300 };
    ad_rng r;
    ad_rng_seed(&r, 11);
    float l[V];
    for (size_t j = 0; j < V; j++)
        l[j] = (float)ad_rng_below(&r, 40) * 0.25f; /* many ties */
    int32_t rank[V];
    for (size_t j = 0; j < V; j++)
        rank[j] = (int32_t)j;
    for (size_t i = 1; i < V; i++) /* insertion sort: logit desc, id asc */
        for (size_t j = i; j > 0 && l[rank[j]] > l[rank[j - 1]]; j--) {
            int32_t t = rank[j];
            rank[j] = rank[j - 1];
            rank[j - 1] = t;
        }
    int32_t ids[V];
    double probs[V];
    size_t n = ad_sample_support(l, V, 1.0f, 50, 1.0f, ids, probs);
    CHECK(n == 50 && memcmp(ids, rank, 50 * sizeof *ids) == 0);
    /* top-p 0.7 over all: the shortest ranked prefix whose mass reaches 0.7 */
    double z = 0, before = 0;
    for (size_t j = 0; j < V; j++)
        z += exp(l[j] - l[rank[0]]);
    size_t want = 0;
    while (before < 0.7 * z)
        before += exp(l[rank[want++]] - l[rank[0]]);
    n = ad_sample_support(l, V, 1.0f, 0, 0.7f, ids, probs);
    CHECK_MSG(n == want, "kept %zu, want %zu", n, want);
    CHECK(memcmp(ids, rank, want * sizeof *ids) == 0);
    double s = 0;
    for (size_t j = 0; j < n; j++)
        s += probs[j];
    CHECK_CLOSE(s, 1.0, 1e-12, 0);
}

/* ---- generation ---- */

enum { NREQ = 9 };

/* NREQ requests with prompt lengths 1..12 (BOS first) and budgets 3..17. */
static void make_requests(ad_sample_request *q, int32_t prompts[][16], size_t V, uint64_t seed) {
    ad_rng r;
    ad_rng_seed(&r, seed);
    for (size_t i = 0; i < NREQ; i++) {
        size_t len = 1 + ad_rng_below(&r, 12);
        random_tokens(&r, prompts[i], len, V);
        prompts[i][0] = AD_TOK_BOS;
        q[i] = (ad_sample_request){prompts[i], len, 3 + ad_rng_below(&r, 15), 100 + i};
    }
}

/* Runs ad_sample_generate with the given settings; prints the error, if any,
 * unless quiet. */
static int generate_with(ad_model *m, const ad_sample_request *q, size_t n, float temp, size_t k,
                         float p, uint64_t seed, size_t max_batch, ad_sample_result *res,
                         int quiet) {
    ad_sample_params sp = ad_sample_default_params();
    sp.temperature = temp;
    sp.top_k = k;
    sp.top_p = p;
    sp.seed = seed;
    sp.max_batch = max_batch;
    ad_error err;
    int rc = ad_sample_generate(m, q, n, &sp, res, &err);
    if (rc && !quiet) fprintf(stderr, "generate: %s\n", err.msg);
    return rc;
}

static int generate(ad_model *m, const ad_sample_request *q, size_t n, float temp, size_t k,
                    float p, uint64_t seed, size_t max_batch, ad_sample_result *res) {
    return generate_with(m, q, n, temp, k, p, seed, max_batch, res, 0);
}

/* An invalid call: must fail and leave the result untouched. */
static int refused(ad_model *m, const ad_sample_request *q, float temp, float p) {
    ad_sample_result r;
    memset(&r, 0, sizeof r);
    return generate_with(m, q, 1, temp, 0, p, 0, 0, &r, 1) == AD_ERR && !r.tokens && !r.n;
}

static int same_result(const ad_sample_result *a, const ad_sample_result *b, double lp_tol) {
    if (a->n != b->n || a->hit_eos != b->hit_eos) return 0;
    if (memcmp(a->tokens, b->tokens, a->n * sizeof *a->tokens)) return 0;
    for (size_t t = 0; t < a->n; t++)
        if (fabs(a->logprobs[t] - b->logprobs[t]) > lp_tol) return 0;
    if (fabs(a->certainty_sum - b->certainty_sum) > lp_tol * (a->n + 1)) return 0;
    return fabs(a->logprob_sum - b->logprob_sum) <= lp_tol * (a->n + 1);
}

static void free_results(ad_sample_result *res, size_t n) {
    for (size_t i = 0; i < n; i++)
        ad_sample_result_free(&res[i]);
}

/* Each greedy token is the argmax of the full forward over prompt + the tokens
 * before it, and its log-prob is that forward's log-softmax. */
static void check_against_full_forward(ad_model *m, const ad_sample_request *q,
                                       const ad_sample_result *res, int greedy) {
    size_t V = m->cfg.vocab_size, T = q->prompt_len + res->n;
    int32_t seq[64];
    memcpy(seq, q->prompt, q->prompt_len * sizeof *seq);
    memcpy(seq + q->prompt_len, res->tokens, res->n * sizeof *seq);
    float *l = full_logits(m, seq, 1, T);
    for (size_t t = 0; t < res->n; t++) {
        const float *row = l + (q->prompt_len - 1 + t) * V;
        int32_t tok = res->tokens[t];
        if (greedy) {
            int32_t best = ad_sample_argmax(row, V);
            CHECK_MSG(tok == best || row[best] - row[tok] < 1e-5f, "step %zu: %d, argmax %d", t,
                      (int)tok, (int)best);
        }
        CHECK_CLOSE(res->logprobs[t], ad_sample_logprob(row, V, tok), 1e-5, 1e-5);
    }
    free(l);
}

static void test_greedy_batched_equals_one_by_one(void) {
    ad_pos_encoding encs[2] = {AD_POS_NONE, AD_POS_ROPE};
    for (int e = 0; e < 2; e++) {
        ad_model *m = tiny_model(encs[e], 13, 21);
        ad_sample_request q[NREQ];
        int32_t prompts[NREQ][16];
        make_requests(q, prompts, 13, 5);
        ad_sample_result batched[NREQ], again[NREQ], alone;
        CHECK(generate(m, q, NREQ, 0, 0, 1, 0, 4, batched) == AD_OK); /* refills slots */
        CHECK(generate(m, q, NREQ, 0, 0, 1, 0, 0, again) == AD_OK);   /* all at once */
        for (size_t i = 0; i < NREQ; i++) {
            CHECK(generate(m, &q[i], 1, 0, 0, 1, 0, 1, &alone) == AD_OK);
            CHECK_MSG(same_result(&batched[i], &alone, 1e-5), "request %zu", i);
            CHECK(same_result(&batched[i], &again[i], 1e-5));
            check_against_full_forward(m, &q[i], &batched[i], 1);
            ad_sample_result_free(&alone);
        }
        free_results(batched, NREQ);
        free_results(again, NREQ);
        ad_model_free(m);
    }
}

static void test_greedy_deterministic(void) {
    ad_model *m = tiny_model(AD_POS_ROPE, 13, 22);
    ad_sample_request q[NREQ];
    int32_t prompts[NREQ][16];
    make_requests(q, prompts, 13, 6);
    ad_sample_result a[NREQ], b[NREQ];
    CHECK(generate(m, q, NREQ, 0, 0, 1, 1, 3, a) == AD_OK);
    CHECK(generate(m, q, NREQ, 0, 0, 1, 2, 3, b) == AD_OK); /* the seed plays no part */
    for (size_t i = 0; i < NREQ; i++)
        CHECK(same_result(&a[i], &b[i], 0));
    free_results(a, NREQ);
    free_results(b, NREQ);
    ad_model_free(m);
}

/* A model of `layers` layers of width 256 (0.79M weights each) whose weights
 * can be too large for decoding's rows to run apart per thread (more than
 * 8 MB: 3 layers in fp32, 6 in bf16): then every kernel shares its own work. */
static ad_model *wide_model(size_t layers, uint64_t seed) {
    ad_model *m = NULL;
    ad_model_config c = ad_model_default_config();
    c.n_layers = layers, c.n_heads = 4, c.d_model = 256, c.d_ff = 1024, c.vocab_size = 13;
    c.max_seq_len = 32, c.init_std = 0.3f, c.seed = seed;
    ad_error err;
    CHECK(ad_model_create(&m, &c, &err) == AD_OK);
    return m;
}

/* Decoding gives the same bits on 1, 2 and 3 threads, greedy and sampled: on
 * a small model, whose decoding steps run each thread's rows apart
 * (ad_kernels_for_rows), and on one whose weights are too large for that
 * (more than 8 MB), where every kernel shares its own work. */
static void test_decoding_bits_across_threads(void) {
    if (!ad_kernels_use_avx512()) return; /* OpenBLAS's products are not bit-stable */
    ad_model *small = tiny_model(AD_POS_ROPE, 13, 24), *wide = wide_model(3, 25);
    ad_model *models[2] = {small, wide};
    ad_sample_request q[NREQ];
    int32_t prompts[NREQ][16];
    make_requests(q, prompts, 13, 8);
    int nt = ad_kernels_get_threads();
    for (int mi = 0; mi < 2; mi++)
        for (int temp = 0; temp < 2; temp++) {
            ad_sample_result r[3][NREQ];
            for (int t = 0; t < 3; t++) {
                ad_kernels_set_threads(t + 1);
                CHECK(generate(models[mi], q, NREQ, (float)temp, 0, 1, 5, 0, r[t]) == AD_OK);
            }
            ad_kernels_set_threads(nt);
            for (int t = 1; t < 3; t++)
                for (size_t i = 0; i < NREQ; i++)
                    CHECK_MSG(same_result(&r[0][i], &r[t][i], 0),
                              "model %d, temperature %d, %d threads, request %zu", mi, temp, t + 1,
                              i);
            for (int t = 0; t < 3; t++)
                free_results(r[t], NREQ);
        }
    ad_model_free(small);
    ad_model_free(wide);
}

/* Decoding with bf16 products (ad_model.decode_bf16): each request's tokens
 * and log-probs the same bits alone, in a batch that refills its slots, and on
 * 1, 2 and 3 threads, sampled, on a small model and a wide one (decoding steps
 * run rows apart per thread in bf16 whatever the size, prefills shared); its
 * first log-probs (same prefix) within bf16's rounding of fp32's, and not all
 * equal to them (the products did run in bf16). */
static void test_decoding_bf16(void) {
    if (!ad_kernels_have_bf16()) {
        printf("  (no AVX512-BF16 on this CPU: nothing to check)\n");
        return;
    }
    ad_model *small = tiny_model(AD_POS_ROPE, 13, 26), *wide = wide_model(6, 27);
    ad_model *models[2] = {small, wide};
    ad_sample_request q[NREQ];
    int32_t prompts[NREQ][16];
    make_requests(q, prompts, 13, 9);
    int nt = ad_kernels_get_threads();
    for (int mi = 0; mi < 2; mi++) {
        ad_sample_result r[3][NREQ], alone, fp[NREQ];
        models[mi]->decode_bf16 = 1;
        for (int t = 0; t < 3; t++) {
            ad_kernels_set_threads(t + 1);
            CHECK(generate(models[mi], q, NREQ, 1.0f, 0, 1, 5, t == 1 ? 3 : 0, r[t]) == AD_OK);
        }
        ad_kernels_set_threads(nt);
        for (size_t i = 0; i < NREQ; i++) {
            for (int t = 1; t < 3; t++)
                CHECK_MSG(same_result(&r[0][i], &r[t][i], 0), "model %d, %d threads, request %zu",
                          mi, t + 1, i);
            CHECK(generate(models[mi], &q[i], 1, 1.0f, 0, 1, 5, 1, &alone) == AD_OK);
            CHECK_MSG(same_result(&r[0][i], &alone, 0), "model %d, request %zu alone", mi, i);
            ad_sample_result_free(&alone);
        }
        models[mi]->decode_bf16 = 0;
        CHECK(generate(models[mi], q, NREQ, 1.0f, 0, 1, 5, 0, fp) == AD_OK);
        size_t differ = 0;
        for (size_t i = 0; i < NREQ; i++) {
            if (r[0][i].tokens[0] != fp[i].tokens[0]) continue; /* a draw at a boundary */
            CHECK_CLOSE(r[0][i].logprobs[0], fp[i].logprobs[0], 0.05, 0.1);
            differ += r[0][i].logprobs[0] != fp[i].logprobs[0];
        }
        CHECK_MSG(differ > 0, "model %d: bf16 decoding gave fp32's bits", mi);
        free_results(fp, NREQ);
        for (int t = 0; t < 3; t++)
            free_results(r[t], NREQ);
    }
    ad_model_free(small);
    ad_model_free(wide);
}

static void test_sampling_deterministic_and_batch_independent(void) {
    ad_model *m = tiny_model(AD_POS_NONE, 13, 23);
    ad_sample_request q[NREQ], rev[NREQ];
    int32_t prompts[NREQ][16];
    make_requests(q, prompts, 13, 7);
    for (size_t i = 0; i < NREQ; i++)
        rev[i] = q[NREQ - 1 - i];
    ad_sample_result a[NREQ], b[NREQ], c[NREQ], d[NREQ], alone;
    CHECK(generate(m, q, NREQ, 1.0f, 0, 1, 42, 0, a) == AD_OK);
    CHECK(generate(m, q, NREQ, 1.0f, 0, 1, 42, 0, b) == AD_OK);
    CHECK(generate(m, rev, NREQ, 1.0f, 0, 1, 42, 2, c) == AD_OK);
    CHECK(generate(m, q, NREQ, 1.0f, 0, 1, 43, 0, d) == AD_OK);
    size_t differ = 0;
    for (size_t i = 0; i < NREQ; i++) {
        CHECK(same_result(&a[i], &b[i], 0));
        CHECK_MSG(same_result(&a[i], &c[NREQ - 1 - i], 1e-5), "request %zu reordered", i);
        CHECK(generate(m, &q[i], 1, 1.0f, 0, 1, 42, 1, &alone) == AD_OK);
        CHECK_MSG(same_result(&a[i], &alone, 1e-5), "request %zu alone", i);
        check_against_full_forward(m, &q[i], &a[i], 0);
        differ += !same_result(&a[i], &d[i], 1e-5);
        ad_sample_result_free(&alone);
    }
    CHECK(differ > 0); /* another seed gives other samples */
    /* the stream, not the position in the batch, picks the randomness */
    q[0].stream = q[1].stream;
    q[0].prompt = q[1].prompt;
    q[0].prompt_len = q[1].prompt_len;
    q[0].max_new = q[1].max_new;
    ad_sample_result e[2];
    CHECK(generate(m, q, 2, 1.0f, 0, 1, 42, 0, e) == AD_OK);
    CHECK(same_result(&e[0], &e[1], 1e-5));
    free_results(e, 2);
    free_results(a, NREQ);
    free_results(b, NREQ);
    free_results(c, NREQ);
    free_results(d, NREQ);
    ad_model_free(m);
}

static void test_top_k1_and_tiny_top_p_equal_greedy(void) {
    ad_model *m = tiny_model(AD_POS_ROPE, 13, 24);
    ad_sample_request q[NREQ];
    int32_t prompts[NREQ][16];
    make_requests(q, prompts, 13, 8);
    ad_sample_result g[NREQ], k1[NREQ], p0[NREQ], t[NREQ];
    CHECK(generate(m, q, NREQ, 0, 0, 1, 0, 0, g) == AD_OK);
    CHECK(generate(m, q, NREQ, 1.7f, 1, 1, 9, 0, k1) == AD_OK);
    CHECK(generate(m, q, NREQ, 1.7f, 0, 1e-6f, 9, 0, p0) == AD_OK);
    CHECK(generate(m, q, NREQ, 1.7f, 0, 1, 9, 0, t) == AD_OK);
    size_t differ = 0;
    for (size_t i = 0; i < NREQ; i++) {
        CHECK(same_result(&g[i], &k1[i], 0));
        CHECK(same_result(&g[i], &p0[i], 0));
        differ += !same_result(&g[i], &t[i], 0);
    }
    CHECK(differ > 0); /* plain sampling at T = 1.7 does leave the greedy path */
    free_results(g, NREQ);
    free_results(k1, NREQ);
    free_results(p0, NREQ);
    free_results(t, NREQ);
    ad_model_free(m);
}

/* Pearson chi-square of counts against probabilities p (N draws). */
static double chi_square(const size_t *count, const double *p, size_t V, size_t N) {
    double x = 0;
    for (size_t j = 0; j < V; j++) {
        double e = p[j] * N;
        if (e > 0)
            x += (count[j] - e) * (count[j] - e) / e;
        else if (count[j])
            x = INFINITY;
    }
    return x;
}

/* First tokens of many requests with the same prompt and distinct streams:
 * their frequencies must match softmax(full-forward logits / T), restricted
 * by top-k, and must not match the untempered distribution (test power). */
static void test_sampling_frequencies(void) {
    enum { V = 7 };
    size_t N = test_quick() ? 2000 : 8000;
    ad_model *m = tiny_model(AD_POS_NONE, V, 25);
    int32_t prompt[3] = {AD_TOK_BOS, 5, 3};
    float *l = full_logits(m, prompt, 1, 3);
    const float *row = l + 2 * V;
    ad_sample_request *q = malloc(N * sizeof *q);
    ad_sample_result *res = malloc(N * sizeof *res);
    for (size_t i = 0; i < N; i++)
        q[i] = (ad_sample_request){prompt, 3, 1, i};
    const float temps[2] = {0.6f, 0.6f};
    const size_t ks[2] = {0, 3};
    for (int c = 0; c < 2; c++) {
        CHECK(generate(m, q, N, temps[c], ks[c], 1, 77, 256, res) == AD_OK);
        size_t count[V] = {0};
        for (size_t i = 0; i < N; i++) {
            count[res[i].tokens[0]]++;
            CHECK_CLOSE(res[i].logprobs[0], ad_sample_logprob(row, V, res[i].tokens[0]), 1e-5,
                        1e-5);
        }
        free_results(res, N);
        int32_t ids[V];
        double sp[V], p[V] = {0}, p_untempered[V] = {0};
        size_t n = ad_sample_support(row, V, temps[c], ks[c], 1, ids, sp);
        for (size_t j = 0; j < n; j++)
            p[ids[j]] = sp[j];
        n = ad_sample_support(row, V, 1.0f, ks[c], 1, ids, sp);
        for (size_t j = 0; j < n; j++)
            p_untempered[ids[j]] = sp[j];
        /* 99.99th percentile of chi-square with <= 6 degrees of freedom is 27.9 */
        double x = chi_square(count, p, V, N), wrong = chi_square(count, p_untempered, V, N);
        CHECK_MSG(x < 27.9, "case %d: chi2 %g", c, x);
        CHECK_MSG(wrong > 27.9, "case %d: untempered chi2 only %g", c, wrong);
    }
    free(q);
    free(res);
    free(l);
    ad_model_free(m);
}

/* With a 6-token vocabulary EOS (id 2) is often the argmax: rows stop right
 * after it; others run to their budget; a smaller budget gives a prefix. */
static void test_stopping(void) {
    enum { N = 40, V = 6 };
    ad_model *m = tiny_model(AD_POS_ROPE, V, 26);
    ad_rng r;
    ad_rng_seed(&r, 9);
    int32_t prompts[N][8];
    ad_sample_request q[N], q5[N];
    for (size_t i = 0; i < N; i++) {
        random_tokens(&r, prompts[i], 8, V);
        prompts[i][0] = AD_TOK_BOS;
        q[i] = (ad_sample_request){prompts[i], 2 + i % 7, 12, i};
        q5[i] = q[i];
        q5[i].max_new = 5;
    }
    for (int sampled = 0; sampled < 2; sampled++) {
        ad_sample_result a[N], b[N];
        float temp = sampled ? 1.0f : 0.0f;
        CHECK(generate(m, q, N, temp, 0, 1, 3, 16, a) == AD_OK);
        CHECK(generate(m, q5, N, temp, 0, 1, 3, 7, b) == AD_OK);
        size_t hits = 0, full = 0;
        for (size_t i = 0; i < N; i++) {
            size_t eos_at = a[i].n;
            for (size_t t = 0; t < a[i].n; t++)
                if (a[i].tokens[t] == AD_TOK_EOS && eos_at == a[i].n) eos_at = t;
            if (a[i].hit_eos) {
                hits++;
                CHECK(eos_at == a[i].n - 1 && a[i].n <= 12);
            } else {
                full++;
                CHECK(eos_at == a[i].n && a[i].n == 12);
            }
            CHECK(b[i].n == (a[i].n < 5 ? a[i].n : 5));
            CHECK(memcmp(b[i].tokens, a[i].tokens, b[i].n * sizeof *b[i].tokens) == 0);
            CHECK(b[i].hit_eos == (a[i].hit_eos && a[i].n <= 5));
        }
        CHECK_MSG(hits > 0 && full > 0, "sampled %d: %zu hit EOS, %zu ran full", sampled, hits,
                  full);
        free_results(a, N);
        free_results(b, N);
    }
    /* budgets are cut to fit max_seq_len (32): 30 prompt tokens leave 2 */
    int32_t longp[32] = {AD_TOK_BOS};
    for (size_t t = 1; t < 32; t++)
        longp[t] = 3 + t % 3;
    ad_sample_request edge[3] = {{longp, 30, 10, 0}, {longp, 32, 10, 1}, {longp, 4, 0, 2}};
    ad_sample_result e[3];
    CHECK(generate(m, edge, 3, 0, 0, 1, 0, 0, e) == AD_OK);
    CHECK(e[0].n >= 1 && e[0].n <= 2 && (e[0].n == 2 || e[0].hit_eos));
    CHECK(e[1].n == 0 && !e[1].hit_eos);
    CHECK(e[2].n == 0);
    free_results(e, 3);
    ad_model_free(m);
}

static void test_generate_rejects_bad_input(void) {
    ad_model *m = tiny_model(AD_POS_NONE, 9, 27);
    int32_t ok[3] = {AD_TOK_BOS, 4, 5}, bad[3] = {AD_TOK_BOS, 9, 5};
    ad_sample_request q = {ok, 3, 4, 0};
    CHECK(refused(m, &q, -1.0f, 1));
    CHECK(refused(m, &q, NAN, 1));
    CHECK(refused(m, &q, INFINITY, 1));
    CHECK(refused(m, &q, 1.0f, 0.0f));
    CHECK(refused(m, &q, 1.0f, 1.5f));
    q.prompt = bad;
    CHECK(refused(m, &q, 0, 1));
    q.prompt = ok;
    q.prompt_len = 0;
    CHECK(refused(m, &q, 0, 1));
    q.prompt_len = 33;
    CHECK(refused(m, &q, 0, 1));
    q.prompt_len = 3;
    ad_sample_result r; /* the valid request goes through */
    CHECK(generate(m, &q, 1, 0, 0, 1, 0, 0, &r) == AD_OK && r.n >= 1 && r.n <= 4);
    ad_sample_result_free(&r);
    ad_model_free(m);
}

/* ---- what RL reads: log-probs and self-certainty against teacher forcing ---- */

/* Self-certainty of one row, written the long way from the definition:
 * -log V - (1/V) sum_v log p(v), with log p the row's log-softmax. */
static double certainty_by_definition(const float *row, size_t V) {
    double mx = row[0];
    for (size_t v = 1; v < V; v++)
        mx = fmax(mx, row[v]);
    double z = exp(row[0] - mx);
    for (size_t v = 1; v < V; v++)
        z += exp(row[v] - mx);
    double lse = mx + log(z), sum_logp = 0;
    for (size_t v = 0; v < V; v++)
        sum_logp += row[v] - lse;
    return -log((double)V) - sum_logp / (double)V;
}

static void test_certainty_of_one_row(void) {
    /* hand: log p = hand - lz; KL(U || p) = lz - mean(hand) - log 6 */
    double lz = log(exp(1.0) + 2 * exp(3.0) + exp(2.0) + exp(-1.0) + exp(0.5));
    double want = lz - (1.0 + 3.0 + 2.0 + 3.0 - 1.0 + 0.5) / 6.0 - log(6.0);
    CHECK_CLOSE(ad_sample_certainty(hand, 6), want, 1e-12, 1e-12);
    CHECK_CLOSE(ad_sample_certainty(hand, 6), certainty_by_definition(hand, 6), 1e-12, 1e-12);
    const float flat[5] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f}; /* uniform: no certainty */
    CHECK(fabs(ad_sample_certainty(flat, 5)) < 1e-15);
    const float one[1] = {-3.0f}; /* a vocabulary of one: p = U */
    CHECK(fabs(ad_sample_certainty(one, 1)) < 1e-15);
    /* one id far ahead: p -> one-hot, KL(U || p) -> huge (it grows with the gap:
     * the other ids' log p ~ -gap), so it is not capped at log V */
    const float peaked[4] = {0.0f, 40.0f, 0.0f, 0.0f};
    CHECK_CLOSE(ad_sample_certainty(peaked, 4), 0.75 * 40.0 - log(4.0), 1e-12, 1e-9);
    /* shifting every logit changes nothing */
    float shifted[6];
    for (size_t v = 0; v < 6; v++)
        shifted[v] = hand[v] + 100.0f;
    CHECK_CLOSE(ad_sample_certainty(shifted, 6), want, 1e-9, 1e-9);
}

/* Sampler figures against one right-padded forward of every request's prompt +
 * generated tokens (ragged: prompts of 1..12 tokens, outputs of 1..17): per
 * token, log p from the forward's own log-softmax (ad_model_target_logprobs)
 * and from ad_score_sequences on the prefix ending at that token; per result,
 * the certainty sum from the forward's logits by the definition. */
static void check_teacher_forced(ad_model *m, const ad_sample_request *q,
                                 const ad_sample_result *res, size_t n, float temperature,
                                 const char *what) {
    size_t V = m->cfg.vocab_size, T = 0;
    for (size_t i = 0; i < n; i++)
        if (q[i].prompt_len + res[i].n > T) T = q[i].prompt_len + res[i].n;
    int32_t *tok = malloc(n * T * sizeof *tok), *tgt = malloc(n * T * sizeof *tgt);
    for (size_t i = 0; i < n; i++) {
        size_t P = q[i].prompt_len;
        for (size_t t = 0; t < T; t++) {
            tok[i * T + t] = t < P ? q[i].prompt[t] : t < P + res[i].n ? res[i].tokens[t - P] : 0;
            tgt[i * T + t] = t + 1 >= P && t + 1 < P + res[i].n ? res[i].tokens[t + 1 - P] : -1;
        }
    }
    ad_batch b = {.B = n, .T = T, .tokens = tok, .targets = tgt};
    double loss;
    size_t n_targets, tempered_differ = 0;
    ad_error err;
    CHECK(ad_model_forward(m, &b, &loss, &n_targets, &err) == AD_OK);
    const float *lp = ad_model_target_logprobs(m), *logits = ad_model_logits(m);
    double worst_lp = 0, worst_cert = 0;
    for (size_t i = 0; i < n; i++) {
        size_t P = q[i].prompt_len;
        double lp_sum = 0, cert = 0;
        for (size_t t = 0; t < res[i].n; t++) {
            size_t at = i * T + P - 1 + t; /* the position that predicts token t */
            worst_lp = fmax(worst_lp, fabs(res[i].logprobs[t] - lp[at]));
            lp_sum += lp[at];
            cert += certainty_by_definition(logits + at * V, V);
            if (temperature > 0 && temperature != 1.0f) { /* the tempered log-prob */
                float row[64];
                for (size_t v = 0; v < V; v++)
                    row[v] = logits[at * V + v] / temperature;
                tempered_differ +=
                    fabs(ad_sample_logprob(row, V, res[i].tokens[t]) - lp[at]) > 1e-3;
            }
        }
        CHECK_CLOSE(res[i].logprob_sum, lp_sum, 1e-6, 1e-5);
        worst_cert = fmax(worst_cert, fabs(res[i].certainty_sum - cert) / fmax(cert, 1e-30));
        CHECK_MSG(cert > 0.1 * (double)res[i].n, "%s: request %zu certainty %g over %zu tokens",
                  what, i, cert, res[i].n);
    }
    CHECK_MSG(worst_lp <= 1e-5, "%s: max |sampler - forward| log-prob %g", what, worst_lp);
    CHECK_MSG(worst_cert <= 1e-5, "%s: max relative certainty error %g", what, worst_cert);
    CHECK_MSG(temperature == 0 || temperature == 1.0f || tempered_differ > 0,
              "%s: the tempered log-probs equal the untempered ones; the test has no power", what);
    /* ad_score_sequences, one prefix per generated token */
    for (size_t i = 0; i < n; i++) {
        size_t P = q[i].prompt_len;
        const int32_t *rows[32];
        size_t lens[32], from[32], cnt[32];
        double got[32];
        for (size_t t = 0; t < res[i].n; t++) {
            rows[t] = tok + i * T;
            lens[t] = P + t + 1;
            from[t] = P + t;
        }
        CHECK(ad_score_sequences(m, rows, lens, from, res[i].n, got, cnt, &err) == AD_OK);
        for (size_t t = 0; t < res[i].n; t++) {
            CHECK_MSG(fabs(res[i].logprobs[t] - got[t]) <= 1e-5,
                      "%s: request %zu token %zu: %g vs %g", what, i, t, (double)res[i].logprobs[t],
                      got[t]);
            CHECK(cnt[t] == 1);
        }
    }
    free(tok);
    free(tgt);
}

static void test_logprobs_and_certainty_equal_teacher_forced(void) {
    const float temps[4] = {0.0f, 1.0f, 0.6f, 1.5f};
    const size_t ks[4] = {0, 0, 4, 0};
    const float ps[4] = {1.0f, 1.0f, 1.0f, 0.85f};
    const char *what[4] = {"greedy", "T=1", "T=0.6 top-k 4", "T=1.5 top-p 0.85"};
    ad_pos_encoding encs[2] = {AD_POS_NONE, AD_POS_ROPE};
    for (int e = 0; e < 2; e++) {
        ad_model *m = tiny_model(encs[e], 13, 30 + e);
        ad_sample_request q[NREQ];
        int32_t prompts[NREQ][16];
        make_requests(q, prompts, 13, 40 + e);
        for (int c = 0; c < 4; c++) {
            ad_sample_result res[NREQ];
            /* max_batch 4: slots are refilled while others are mid-output */
            CHECK(generate(m, q, NREQ, temps[c], ks[c], ps[c], 17, 4, res) == AD_OK);
            check_teacher_forced(m, q, res, NREQ, temps[c], what[c]);
            free_results(res, NREQ);
        }
        ad_model_free(m);
    }
}

/* ---- prefill and shared prompts: the bits of feeding one token per step ---- */

/* The sampler as it was before prompts were prefilled: one request alone in a
 * one-slot decoder, its prompt fed one token per step, then each picked token
 * fed back (the old path, kept here as the reference). */
static void generate_token_by_token(ad_model *m, const ad_sample_request *q,
                                    const ad_sample_params *p, ad_sample_result *out) {
    size_t V = m->cfg.vocab_size, room = m->cfg.max_seq_len - q->prompt_len;
    size_t budget = q->max_new < room ? q->max_new : room;
    memset(out, 0, sizeof *out);
    out->tokens = malloc((budget + 1) * sizeof *out->tokens);
    out->logprobs = malloc((budget + 1) * sizeof *out->logprobs);
    if (!budget) return;
    ad_kv_decoder *d = NULL;
    ad_error err;
    CHECK(ad_kv_decoder_create(&d, m, 1, q->prompt_len + budget - 1, 0, &err) == AD_OK);
    ad_rng rng;
    ad_rng_seed(&rng, ad_seed_derive(p->seed, AD_SEED_SAMPLE, q->stream, 0, 0));
    float *logits = malloc(V * sizeof *logits);
    int32_t *ids = malloc(V * sizeof *ids);
    double *probs = malloc(V * sizeof *probs);
    size_t want = 0;
    for (size_t pos = 0; d && out->n < budget && !out->hit_eos; pos++) {
        int32_t tok = pos < q->prompt_len ? q->prompt[pos] : out->tokens[out->n - 1];
        int pick = pos + 1 >= q->prompt_len;
        ad_kv_decoder_step(d, &tok, &pos, 1, &want, pick ? 1 : 0, logits);
        if (!pick) continue;
        double u = p->temperature > 0.0f ? ad_rng_uniform(&rng) : 0.0;
        int32_t t = ad_sample_pick(logits, V, p->temperature, p->top_k, p->top_p, u, ids, probs);
        double lp = ad_sample_logprob(logits, V, t);
        out->tokens[out->n] = t;
        out->logprobs[out->n++] = (float)lp;
        out->logprob_sum += lp;
        out->certainty_sum += ad_sample_certainty(logits, V);
        out->hit_eos = t == AD_TOK_EOS;
    }
    ad_kv_decoder_free(d);
    free(logits);
    free(ids);
    free(probs);
}

/* Bit for bit on the AVX-512 path, whose products sum each row alone; within
 * 1e-5 (same tokens) on the portable one, where OpenBLAS may sum a row
 * differently with other rows beside it. */
static int same_bits(const ad_sample_result *a, const ad_sample_result *b) {
    if (!ad_kernels_use_avx512()) return same_result(a, b, 1e-5);
    return a->n == b->n && a->hit_eos == b->hit_eos &&
           !memcmp(a->tokens, b->tokens, a->n * sizeof *a->tokens) &&
           !memcmp(a->logprobs, b->logprobs, a->n * sizeof *a->logprobs) &&
           a->logprob_sum == b->logprob_sum && a->certainty_sum == b->certainty_sum;
}

/* NREQ ragged requests, then each again twice: once with the same prompt
 * pointer (the k samples of one prompt) and once with a copy of its ids; in
 * every batching (slots refilled mid-way, all at once, one at a time) each
 * result has the old path's bits, greedy and sampled. */
static void test_prefill_and_shared_prompts_keep_bits(void) {
    enum { N = 3 * NREQ };
    const float temps[3] = {0.0f, 1.0f, 0.7f};
    const size_t batches[3] = {4, 0, 1};
    ad_pos_encoding encs[2] = {AD_POS_NONE, AD_POS_ROPE};
    for (int e = 0; e < 2; e++) {
        ad_model *m = tiny_model(encs[e], 13, 50 + e);
        ad_sample_request q[N];
        int32_t prompts[NREQ][16], copies[NREQ][16];
        make_requests(q, prompts, 13, 60 + e);
        for (size_t i = 0; i < NREQ; i++) {
            memcpy(copies[i], prompts[i], sizeof copies[i]);
            q[NREQ + i] = q[i];
            q[NREQ + i].stream = 500 + i;
            q[2 * NREQ + i] = q[i];
            q[2 * NREQ + i].prompt = copies[i];
            q[2 * NREQ + i].stream = 700 + i;
        }
        for (int c = 0; c < 3; c++) {
            ad_sample_params sp = ad_sample_default_params();
            sp.temperature = temps[c];
            sp.top_k = c == 2 ? 5 : 0;
            sp.top_p = c == 2 ? 0.9f : 1.0f;
            sp.seed = 77;
            ad_sample_result ref[N];
            for (size_t i = 0; i < N; i++)
                generate_token_by_token(m, &q[i], &sp, &ref[i]);
            for (int b = 0; b < 3; b++) {
                ad_sample_result res[N];
                CHECK(generate(m, q, N, sp.temperature, sp.top_k, sp.top_p, sp.seed, batches[b],
                               res) == AD_OK);
                for (size_t i = 0; i < N; i++)
                    CHECK_MSG(same_bits(&res[i], &ref[i]),
                              "%s, T=%g, max_batch %zu: request %zu differs from token-by-token",
                              e ? "rope" : "nope", (double)temps[c], batches[b], i);
                free_results(res, N);
            }
            free_results(ref, N);
        }
        ad_model_free(m);
    }
}

/* A prefill of more rows than one forward holds (40 slots x 30 positions,
 * position-major, so every forward mixes slots and positions), in fp32 and in
 * bf16: each slot's last-position logits have the bits of its sequence fed one
 * token per step (the last layer runs on the wanted rows only in both). */
static void test_prefill_in_chunks(void) {
    enum { S = 40, P = 30, V = 11 };
    ad_model *m = tiny_model(AD_POS_ROPE, V, 9);
    ad_rng r;
    ad_rng_seed(&r, 4);
    int32_t *seqs = malloc(S * P * sizeof *seqs), *tok = malloc(S * P * sizeof *tok);
    size_t *slot = malloc(S * P * sizeof *slot), *pos = malloc(S * P * sizeof *pos), want[S];
    random_tokens(&r, seqs, S * P, V);
    for (size_t t = 0; t < P; t++)
        for (size_t s = 0; s < S; s++) {
            size_t row = t * S + s;
            tok[row] = seqs[s * P + t];
            slot[row] = s;
            pos[row] = t;
            if (t == P - 1) want[s] = row;
        }
    float *got = malloc(S * V * sizeof *got), ref[V];
    for (int bf16 = 0; bf16 <= ad_kernels_have_bf16(); bf16++) {
        ad_kv_decoder *d = NULL, *one = NULL;
        ad_error err;
        CHECK(ad_kv_decoder_create(&d, m, S, P, bf16, &err) == AD_OK);
        CHECK(ad_kv_decoder_create(&one, m, 1, P, bf16, &err) == AD_OK);
        ad_kv_decoder_feed(d, tok, slot, pos, S * P, want, S, got);
        size_t zero = 0, bad = 0;
        for (size_t s = 0; s < S; s++) {
            for (size_t t = 0; t < P; t++)
                ad_kv_decoder_step(one, &seqs[s * P + t], &t, 1, &zero, t == P - 1, ref);
            for (size_t v = 0; v < V; v++)
                bad += ad_kernels_use_avx512() ? got[s * V + v] != ref[v]
                                               : fabsf(got[s * V + v] - ref[v]) > 1e-5f;
        }
        CHECK_MSG(bad == 0, "%zu logits of the chunked prefill differ from token-by-token (%s)",
                  bad, bf16 ? "bf16" : "fp32");
        ad_kv_decoder_free(d);
        ad_kv_decoder_free(one);
    }
    free(seqs), free(tok), free(slot), free(pos), free(got);
    ad_model_free(m);
}

/* ---- scoring ---- */

/* Sum of log p(seq[t]) for t in [from, len) from a single-row full forward. */
static double reference_score(ad_model *m, const int32_t *seq, size_t len, size_t from) {
    float *l = full_logits(m, seq, 1, len);
    double s = 0;
    for (size_t t = from; t < len; t++)
        s += ad_sample_logprob(l + (t - 1) * m->cfg.vocab_size, m->cfg.vocab_size, seq[t]);
    free(l);
    return s;
}

static void test_score_matches_forward_and_sampler(void) {
    ad_model *m = tiny_model(AD_POS_ROPE, 13, 28);
    ad_sample_request q[NREQ];
    int32_t prompts[NREQ][16];
    make_requests(q, prompts, 13, 10);
    ad_sample_result res[NREQ];
    CHECK(generate(m, q, NREQ, 1.0f, 0, 1, 5, 0, res) == AD_OK);
    int32_t seqs[NREQ][40];
    const int32_t *ptrs[NREQ];
    size_t lens[NREQ], from[NREQ], counts[NREQ];
    double lp[NREQ];
    for (size_t i = 0; i < NREQ; i++) {
        memcpy(seqs[i], q[i].prompt, q[i].prompt_len * sizeof(int32_t));
        memcpy(seqs[i] + q[i].prompt_len, res[i].tokens, res[i].n * sizeof(int32_t));
        ptrs[i] = seqs[i];
        lens[i] = q[i].prompt_len + res[i].n;
        from[i] = q[i].prompt_len;
    }
    ad_error err;
    CHECK(ad_score_sequences(m, ptrs, lens, from, NREQ, lp, counts, &err) == AD_OK);
    for (size_t i = 0; i < NREQ; i++) {
        CHECK_CLOSE(lp[i], res[i].logprob_sum, 1e-5, 1e-4);
        CHECK_CLOSE(lp[i], reference_score(m, seqs[i], lens[i], from[i]), 1e-6, 1e-5);
        CHECK(counts[i] == res[i].n);
    }
    free_results(res, NREQ);
    ad_model_free(m);
}

/* Many sequences of mixed lengths (several padded batches) against one-row
 * forwards; bad input is refused. */
static void test_score_many_and_errors(void) {
    enum { N = 150, V = 13 };
    ad_model *m = tiny_model(AD_POS_NONE, V, 29);
    ad_rng r;
    ad_rng_seed(&r, 12);
    static int32_t seqs[N][32];
    const int32_t *ptrs[N];
    size_t lens[N], from[N], counts[N];
    double lp[N];
    for (size_t i = 0; i < N; i++) {
        lens[i] = 1 + ad_rng_below(&r, 32);
        random_tokens(&r, seqs[i], lens[i], V);
        seqs[i][0] = AD_TOK_BOS;
        from[i] = 1 + ad_rng_below(&r, lens[i]);
        ptrs[i] = seqs[i];
    }
    ad_error err;
    CHECK(ad_score_sequences(m, ptrs, lens, from, N, lp, counts, &err) == AD_OK);
    for (size_t i = 0; i < N; i++) {
        CHECK_CLOSE(lp[i], reference_score(m, seqs[i], lens[i], from[i]), 1e-6, 1e-5);
        CHECK(counts[i] == lens[i] - from[i]);
    }
    size_t bad_from = 0, bad_len = 33;
    CHECK(ad_score_sequences(m, ptrs, lens, &bad_from, 1, lp, NULL, &err) == AD_ERR);
    CHECK(ad_score_sequences(m, ptrs, &bad_len, from, 1, lp, NULL, &err) == AD_ERR);
    seqs[0][0] = V;
    CHECK(ad_score_sequences(m, ptrs, lens, from, 1, lp, NULL, &err) == AD_ERR);
    ad_model_free(m);
}

int main(void) {
    RUN(test_kv_cache_nope);
    RUN(test_kv_cache_rope);
    RUN(test_pick_support_hand);
    RUN(test_pick_frequencies_hand);
    RUN(test_pick_support_random);
    RUN(test_greedy_batched_equals_one_by_one);
    RUN(test_greedy_deterministic);
    RUN(test_sampling_deterministic_and_batch_independent);
    RUN(test_decoding_bits_across_threads);
    RUN(test_decoding_bf16);
    RUN(test_top_k1_and_tiny_top_p_equal_greedy);
    RUN(test_sampling_frequencies);
    RUN(test_stopping);
    RUN(test_generate_rejects_bad_input);
    RUN(test_score_matches_forward_and_sampler);
    RUN(test_score_many_and_errors);
    RUN(test_certainty_of_one_row);
    RUN(test_logprobs_and_certainty_equal_teacher_forced);
    RUN(test_prefill_and_shared_prompts_keep_bits);
    RUN(test_prefill_in_chunks);
    return test_summary();
}
