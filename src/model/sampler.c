/* sampler.c: batched generation: admits requests into the KV-cache decoder's
 * slots, picks each row's next token, and retires rows that are done.
 *
 * The story of one request: it is admitted into a free slot, and its prompt
 * but the last token is prefilled: the admitted requests' prompts go through
 * the model together, in one forward over all their positions (ragged prompts
 * simply contribute different numbers of rows), filling their slots' caches.
 * A request whose prompt equals that of a request already in a slot (the k
 * samples of one prompt) copies that slot's cache instead. From then on each
 * step feeds one token per active row, the prompt's last token first, yields
 * logits from which the row's next token is picked, and feeds that back. It
 * retires at EOS or when its budget is spent, and a pending request takes the
 * free slot (slots keep their caches in place; a step's rows name their
 * slots). The batch therefore stays full while requests remain.
 *
 * Every row's values are computed as if it were alone (sampler_decode.c), so
 * prefilling, sharing a prompt's cache and batching change no bit of a
 * result. A request's randomness comes from its own generator seeded with
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
    /* 64 rows: the decode attention reads each row's whole KV cache at every
     * step, and past ~64 rows of a small model those caches leave the cache
     * hierarchy; greedy evaluation of the 0.8M flagship ran 0.84x the time of
     * 256 rows, its best-of-8 sampling 0.96x, 14M evaluation the same. */
    p.max_batch = AD_SAMPLE_MAX_BATCH;
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
    size_t src; /* while being admitted: the slot whose cache it copies, or SIZE_MAX */
    ad_rng rng;
    int done;
} slot_state;

/* Slots keep their index (and cache) from admission to retirement: a step's
 * rows name their slots, so nothing moves when a row finishes. */
typedef struct gen_state {
    const ad_model *m;
    const ad_sample_request *reqs;
    const ad_sample_params *p;
    ad_sample_result *res;
    const size_t *budget; /* [n] new tokens allowed, cut to fit max_seq_len */
    uint64_t *key;        /* [n] hash of each request's prompt, to find shared prompts */
    size_t n, next;       /* requests, and the next one to admit */
    size_t slots, nb;     /* decoder slots, and how many are active */
    ad_kv_decoder *dec;
    slot_state *slot;   /* [slots] by slot index */
    size_t *act;        /* [slots] active slots, one per row of a step */
    size_t *free_slots; /* [slots] a stack of the n_free unused slots */
    size_t n_free;
    int32_t *tok;    /* [slots] token each row feeds this step */
    size_t *pos;     /* [slots] its position */
    size_t *want;    /* [slots] rows that pick a token: all of them */
    float *logits;   /* [slots, V] */
    int32_t *ids;    /* [V] picking scratch */
    double *probs;   /* [V] */
    int32_t *pf_tok; /* [pf_cap] prefill rows: token, slot, position */
    size_t *pf_slot, *pf_pos, pf_cap;
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

/* FNV-1a over a prompt's ids: equal prompts have equal keys. */
static uint64_t prompt_key(const int32_t *t, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)t[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* An active slot, other than slot k, whose cache already holds (or, once
 * this admission's prefill has run, will hold) the same prompt as slot k's
 * request: an older slot, or a new one that is prefilled itself. SIZE_MAX if
 * none. */
static size_t find_shared(const gen_state *g, size_t k) {
    const ad_sample_request *q = &g->reqs[g->slot[k].req];
    uint64_t key = g->key[g->slot[k].req];
    for (size_t i = 0; i < g->nb; i++) {
        const slot_state *o = &g->slot[g->act[i]];
        const ad_sample_request *oq = &g->reqs[o->req];
        if (g->act[i] == k || o->src != SIZE_MAX || g->key[o->req] != key ||
            oq->prompt_len != q->prompt_len)
            continue;
        if (oq->prompt == q->prompt ||
            !memcmp(oq->prompt, q->prompt, q->prompt_len * sizeof *q->prompt))
            return g->act[i];
    }
    return SIZE_MAX;
}

/* Fills free slots with pending requests (those with a zero budget are done at
 * once) and brings each new slot's cache to its prompt's last token: one
 * prefill forward over the positions of the prompts not seen before, then
 * copies for the prompts that are. */
static void admit(gen_state *g) {
    size_t first = g->nb, nr = 0;
    while (g->n_free && g->next < g->n) {
        size_t r = g->next++;
        if (!g->budget[r]) continue;
        size_t k = g->free_slots[--g->n_free];
        slot_state *s = &g->slot[k];
        s->req = r;
        s->pos = g->reqs[r].prompt_len - 1;
        s->done = 0;
        s->src = SIZE_MAX;
        ad_rng_seed(&s->rng, ad_seed_derive(g->p->seed, AD_SEED_SAMPLE, g->reqs[r].stream, 0, 0));
        s->src = find_shared(g, k);
        g->act[g->nb++] = k;
        if (s->src == SIZE_MAX)
            for (size_t t = 0; t < s->pos; t++, nr++) {
                g->pf_tok[nr] = g->reqs[r].prompt[t];
                g->pf_slot[nr] = k;
                g->pf_pos[nr] = t;
            }
    }
    if (nr) ad_kv_decoder_feed(g->dec, g->pf_tok, g->pf_slot, g->pf_pos, nr, NULL, 0, NULL);
    for (size_t i = first; i < g->nb; i++) {
        slot_state *s = &g->slot[g->act[i]];
        if (s->src == SIZE_MAX) continue;
        ad_kv_decoder_move(g->dec, g->act[i], s->src, s->pos);
        s->src = SIZE_MAX; /* from now on an ordinary slot, itself a source */
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

/* One decoding step over the active slots (each feeds the last token of its
 * sequence so far), then the picks. */
static void step(gen_state *g) {
    size_t V = g->m->cfg.vocab_size;
    for (size_t i = 0; i < g->nb; i++) {
        const slot_state *s = &g->slot[g->act[i]];
        const ad_sample_request *q = &g->reqs[s->req];
        const ad_sample_result *r = &g->res[s->req];
        g->tok[i] = s->pos < q->prompt_len ? q->prompt[s->pos] : r->tokens[r->n - 1];
        g->pos[i] = s->pos;
        g->want[i] = i;
    }
    ad_kv_decoder_feed(g->dec, g->tok, g->act, g->pos, g->nb, g->want, g->nb, g->logits);
    const ad_sample_params *p = g->p;
    for (size_t i = 0; i < g->nb; i++) {
        slot_state *s = &g->slot[g->act[i]];
        const float *row = g->logits + i * V;
        s->pos++;
        double u = p->temperature > 0.0f ? ad_rng_uniform(&s->rng) : 0.0;
        int32_t t = ad_sample_pick(row, V, p->temperature, p->top_k, p->top_p, u, g->ids, g->probs);
        append_token(g, s, row, t);
    }
}

/* Frees the slots of finished rows; the last row takes each one's place. */
static void retire(gen_state *g) {
    size_t i = 0;
    while (i < g->nb) {
        if (!g->slot[g->act[i]].done) {
            i++;
            continue;
        }
        g->free_slots[g->n_free++] = g->act[i];
        g->act[i] = g->act[--g->nb];
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
    free(g->key);
    free(g->act);
    free(g->free_slots);
    free(g->pf_tok);
    free(g->pf_slot);
    free(g->pf_pos);
    g->dec = NULL;
    g->slot = NULL;
    g->tok = g->pf_tok = NULL;
    g->pos = g->want = g->act = g->free_slots = g->pf_slot = g->pf_pos = NULL;
    g->logits = NULL;
    g->ids = NULL;
    g->probs = NULL;
    g->key = NULL;
}

/* Sizes the decoder for the longest request (max_len positions fed) and
 * allocates the step and prefill buffers (a prompt has at most max_prompt ids). */
static int gen_state_init(gen_state *g, size_t max_len, size_t max_prompt, ad_error *err) {
    size_t V = g->m->cfg.vocab_size, S = g->slots;
    if (ad_kv_decoder_create(&g->dec, g->m, S, max_len, g->m->decode_bf16, err)) return AD_ERR;
    g->slot = calloc(S, sizeof *g->slot);
    g->tok = calloc(S, sizeof *g->tok);
    g->pos = calloc(S, sizeof *g->pos);
    g->want = calloc(S, sizeof *g->want);
    g->logits = S > SIZE_MAX / sizeof(float) / V ? NULL : calloc(S * V, sizeof *g->logits);
    g->ids = calloc(V, sizeof *g->ids);
    g->probs = calloc(V, sizeof *g->probs);
    g->key = calloc(g->n, sizeof *g->key);
    g->act = calloc(S, sizeof *g->act);
    g->free_slots = calloc(S, sizeof *g->free_slots);
    /* one admission prefills at most every slot's prompt but its last id */
    g->pf_cap = S * (max_prompt - 1) + 1;
    g->pf_tok = calloc(g->pf_cap, sizeof *g->pf_tok);
    g->pf_slot = calloc(g->pf_cap, sizeof *g->pf_slot);
    g->pf_pos = calloc(g->pf_cap, sizeof *g->pf_pos);
    if (!g->slot || !g->tok || !g->pos || !g->want || !g->logits || !g->ids || !g->probs ||
        !g->key || !g->act || !g->free_slots || !g->pf_tok || !g->pf_slot || !g->pf_pos) {
        gen_state_free(g);
        ad_error_set(err, "sample: out of memory for %zu rows", S);
        return AD_ERR;
    }
    for (size_t i = 0; i < g->n; i++)
        g->key[i] = prompt_key(g->reqs[i].prompt, g->reqs[i].prompt_len);
    for (size_t k = 0; k < S; k++) /* slot 0 on top of the stack: taken first */
        g->free_slots[k] = S - 1 - k;
    g->n_free = S;
    return AD_OK;
}

int ad_sample_generate(ad_model *m, const ad_sample_request *reqs, size_t n,
                       const ad_sample_params *params, ad_sample_result *results, ad_error *err) {
    if (validate(m, reqs, n, params, err)) return AD_ERR;
    if (!n) return AD_OK;
    size_t *budget = calloc(n, sizeof *budget);
    if (!budget) return ad_error_set(err, "sample: out of memory for %zu requests", n);
    /* A request feeds prompt_len + budget - 1 positions (its last token is not fed). */
    size_t max_len = 0, max_prompt = 1, active = 0;
    for (size_t i = 0; i < n; i++) {
        size_t room = m->cfg.max_seq_len - reqs[i].prompt_len;
        budget[i] = reqs[i].max_new < room ? reqs[i].max_new : room;
        if (!budget[i]) continue;
        active++;
        size_t len = reqs[i].prompt_len + budget[i] - 1;
        if (len > max_len) max_len = len;
        if (reqs[i].prompt_len > max_prompt) max_prompt = reqs[i].prompt_len;
    }
    if (alloc_results(results, budget, n, err)) {
        free(budget);
        return AD_ERR;
    }
    size_t max_batch = params->max_batch ? params->max_batch : AD_SAMPLE_MAX_BATCH;
    gen_state g = {.m = m, .reqs = reqs, .p = params, .res = results, .budget = budget, .n = n};
    g.slots = active < max_batch ? active : max_batch;
    if (g.slots && gen_state_init(&g, max_len, max_prompt, err) != AD_OK) {
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
