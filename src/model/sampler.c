/* sampler.c: batched generation: admits requests into the KV-cache decoder's
 * slots, picks each row's next token, and retires rows that are done.
 *
 * The story of one request: it is admitted into a free slot at position 0 and
 * feeds its prompt one token per step alongside every other active row
 * ("ragged prefill": rows at different positions share each step's matrix
 * products). From its last prompt token on, each step yields logits from which
 * its next token is picked and fed back. It retires at EOS or when its budget
 * is spent; the last active slot then moves into its place (cache included)
 * so the active rows stay contiguous, and a pending request takes the free
 * slot. The batch therefore stays full while requests remain.
 *
 * A request's randomness comes from its own generator seeded with
 * ad_seed_derive(seed, AD_SEED_SAMPLE, stream, 0, 0), one uniform draw per
 * sampled token, so its tokens do not depend on its batch companions.
 *
 * Not for: the model maths (sampler_decode.c), the picking rules
 * (sampler_pick.c), or teacher-forced scoring (sampler_score.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/sampler.h"
#include "model/sampler_internal.h"
#include "model/vocab.h"
#include "util/rng.h"

ad_sample_params ad_sample_default_params(void) {
    ad_sample_params p = {0};
    p.temperature = 0.0f; /* greedy */
    p.top_k = 0;
    p.top_p = 1.0f;
    p.seed = 0;
    p.max_batch = 256;
    return p;
}

void ad_sample_result_free(ad_sample_result *r) {
    if (!r) return;
    free(r->tokens);
    free(r->logprobs);
    memset(r, 0, sizeof *r);
}

/* One occupied slot of the decoder. */
typedef struct slot_state {
    size_t req; /* request index */
    size_t pos; /* positions fed so far = next position to feed */
    ad_rng rng;
    int done;
} slot_state;

typedef struct gen_state {
    const ad_model *m;
    const ad_sample_request *reqs;
    const ad_sample_params *p;
    ad_sample_result *res;
    const size_t *budget; /* [n] new tokens allowed, cut to fit max_seq_len */
    size_t n, next;       /* requests, and the next one to admit */
    size_t slots, nb;     /* decoder slots, and how many are active */
    ad_kv_decoder *dec;
    slot_state *slot; /* [slots] */
    int32_t *tok;     /* [slots] token each slot feeds this step */
    size_t *pos;      /* [slots] its position */
    size_t *want;     /* [slots] slots that pick a token this step */
    float *logits;    /* [slots, V] */
    int32_t *ids;     /* [V] picking scratch */
    double *probs;    /* [V] */
} gen_state;

static int validate(const ad_model *m, const ad_sample_request *reqs, size_t n,
                    const ad_sample_params *p, ad_error *err) {
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return ad_error_set(err, "sample: temperature must be >= 0 and finite, got %g",
                            (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return ad_error_set(err, "sample: top_p must be in (0, 1], got %g", (double)p->top_p);
    if (n && !reqs) return ad_error_set(err, "sample: %zu requests but no request array", n);
    size_t V = m->cfg.vocab_size;
    for (size_t i = 0; i < n; i++) {
        const ad_sample_request *r = &reqs[i];
        if (!r->prompt_len || !r->prompt)
            return ad_error_set(err, "sample: request %zu has an empty prompt (BOS needed)", i);
        if (r->prompt_len > m->cfg.max_seq_len)
            return ad_error_set(err,
                                "sample: request %zu prompt of %zu tokens exceeds "
                                "max_seq_len %zu",
                                i, r->prompt_len, m->cfg.max_seq_len);
        for (size_t t = 0; t < r->prompt_len; t++)
            if (r->prompt[t] < 0 || (size_t)r->prompt[t] >= V)
                return ad_error_set(err,
                                    "sample: request %zu token %zu has id %d, outside the "
                                    "vocabulary of %zu",
                                    i, t, (int)r->prompt[t], V);
    }
    return AD_OK;
}

/* Allocates every result's token and log-prob arrays; on failure frees them all. */
static int alloc_results(ad_sample_result *res, const size_t *budget, size_t n, ad_error *err) {
    memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n; i++) {
        size_t cap = budget[i] ? budget[i] : 1;
        res[i].tokens = malloc(cap * sizeof *res[i].tokens);
        res[i].logprobs = malloc(cap * sizeof *res[i].logprobs);
        if (!res[i].tokens || !res[i].logprobs) {
            for (size_t j = 0; j <= i; j++)
                ad_sample_result_free(&res[j]);
            return ad_error_set(err, "sample: out of memory for %zu results", n);
        }
    }
    return AD_OK;
}

/* Fills free slots with pending requests (those with a zero budget are done at once). */
static void admit(gen_state *g) {
    while (g->nb < g->slots && g->next < g->n) {
        size_t r = g->next++;
        if (!g->budget[r]) continue;
        slot_state *s = &g->slot[g->nb++];
        s->req = r;
        s->pos = 0;
        s->done = 0;
        ad_rng_seed(&s->rng, ad_seed_derive(g->p->seed, AD_SEED_SAMPLE, g->reqs[r].stream, 0, 0));
    }
}

/* Appends token t, picked from one row of logits, to slot s's result, with its
 * log-prob and the row's self-certainty (both of the untempered distribution). */
static void append_token(gen_state *g, slot_state *s, const float *logits, int32_t t) {
    ad_sample_result *r = &g->res[s->req];
    double lp = ad_sample_logprob(logits, g->m->cfg.vocab_size, t);
    r->tokens[r->n] = t;
    r->logprobs[r->n] = (float)lp;
    r->logprob_sum += lp;
    r->certainty_sum += ad_sample_certainty(logits, g->m->cfg.vocab_size);
    r->n++;
    if (t == AD_TOK_EOS) r->hit_eos = 1;
    s->done = r->hit_eos || r->n == g->budget[s->req];
}

/* One decoding step over the active slots, then the picks. */
static void step(gen_state *g) {
    size_t n_want = 0, V = g->m->cfg.vocab_size;
    for (size_t i = 0; i < g->nb; i++) {
        const slot_state *s = &g->slot[i];
        const ad_sample_request *q = &g->reqs[s->req];
        const ad_sample_result *r = &g->res[s->req];
        g->tok[i] = s->pos < q->prompt_len ? q->prompt[s->pos] : r->tokens[r->n - 1];
        g->pos[i] = s->pos;
        if (s->pos + 1 >= q->prompt_len) g->want[n_want++] = i;
    }
    ad_kv_decoder_step(g->dec, g->tok, g->pos, g->nb, g->want, n_want, g->logits);
    for (size_t i = 0; i < g->nb; i++)
        g->slot[i].pos++;
    const ad_sample_params *p = g->p;
    for (size_t j = 0; j < n_want; j++) {
        slot_state *s = &g->slot[g->want[j]];
        const float *row = g->logits + j * V;
        double u = p->temperature > 0.0f ? ad_rng_uniform(&s->rng) : 0.0;
        int32_t t = ad_sample_pick(row, V, p->temperature, p->top_k, p->top_p, u, g->ids, g->probs);
        append_token(g, s, row, t);
    }
}

/* Removes finished slots, moving the last active slot into each hole. */
static void retire(gen_state *g) {
    size_t i = 0;
    while (i < g->nb) {
        if (!g->slot[i].done) {
            i++;
            continue;
        }
        size_t last = --g->nb;
        if (i != last) {
            ad_kv_decoder_move(g->dec, i, last, g->slot[last].pos);
            g->slot[i] = g->slot[last];
        }
    }
}

static void gen_state_free(gen_state *g) {
    ad_kv_decoder_free(g->dec);
    free(g->slot);
    free(g->tok);
    free(g->pos);
    free(g->want);
    free(g->logits);
    free(g->ids);
    free(g->probs);
    g->dec = NULL;
    g->slot = NULL;
    g->tok = NULL;
    g->pos = g->want = NULL;
    g->logits = NULL;
    g->ids = NULL;
    g->probs = NULL;
}

/* Sizes the decoder for the longest request and allocates the step buffers. */
static int gen_state_init(gen_state *g, size_t max_len, ad_error *err) {
    size_t V = g->m->cfg.vocab_size, S = g->slots;
    if (ad_kv_decoder_create(&g->dec, g->m, S, max_len, err)) return AD_ERR;
    g->slot = calloc(S, sizeof *g->slot);
    g->tok = calloc(S, sizeof *g->tok);
    g->pos = calloc(S, sizeof *g->pos);
    g->want = calloc(S, sizeof *g->want);
    g->logits = S > SIZE_MAX / sizeof(float) / V ? NULL : calloc(S * V, sizeof *g->logits);
    g->ids = calloc(V, sizeof *g->ids);
    g->probs = calloc(V, sizeof *g->probs);
    if (!g->slot || !g->tok || !g->pos || !g->want || !g->logits || !g->ids || !g->probs) {
        gen_state_free(g);
        ad_error_set(err, "sample: out of memory for %zu rows", S);
        return AD_ERR;
    }
    return AD_OK;
}

int ad_sample_generate(ad_model *m, const ad_sample_request *reqs, size_t n,
                       const ad_sample_params *params, ad_sample_result *results, ad_error *err) {
    if (validate(m, reqs, n, params, err)) return AD_ERR;
    if (!n) return AD_OK;
    size_t *budget = calloc(n, sizeof *budget);
    if (!budget) return ad_error_set(err, "sample: out of memory for %zu requests", n);
    /* A request feeds prompt_len + budget - 1 positions (its last token is not fed). */
    size_t max_len = 0, active = 0;
    for (size_t i = 0; i < n; i++) {
        size_t room = m->cfg.max_seq_len - reqs[i].prompt_len;
        budget[i] = reqs[i].max_new < room ? reqs[i].max_new : room;
        if (!budget[i]) continue;
        active++;
        size_t len = reqs[i].prompt_len + budget[i] - 1;
        if (len > max_len) max_len = len;
    }
    if (alloc_results(results, budget, n, err)) {
        free(budget);
        return AD_ERR;
    }
    size_t max_batch = params->max_batch ? params->max_batch : 256;
    gen_state g = {.m = m, .reqs = reqs, .p = params, .res = results, .budget = budget, .n = n};
    g.slots = active < max_batch ? active : max_batch;
    if (g.slots && gen_state_init(&g, max_len, err) != AD_OK) {
        for (size_t i = 0; i < n; i++)
            ad_sample_result_free(&results[i]);
        free(budget);
        return AD_ERR;
    }
    for (admit(&g); g.nb; admit(&g)) {
        step(&g);
        retire(&g);
    }
    gen_state_free(&g);
    free(budget);
    return AD_OK;
}
