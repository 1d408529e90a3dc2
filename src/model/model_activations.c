/* model_activations.c: allocation of the forward/backward buffers (see
 * activations.h): one block carved into named pieces, grown when a batch
 * larger than any before arrives. Not here: what the buffers hold. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/activations.h"
#include "model/model_internal.h"

/* a*b into *out unless it overflows; returns 1 on success. */
static int mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Hands out 64-byte-aligned pieces of a block; with base NULL it only counts.
 * Sizes are in floats; `ok` drops to 0 on overflow. */
typedef struct carver {
    float *base;
    size_t used;
    int ok;
} carver;

static float *carve(carver *cv, size_t n) {
    size_t rounded = (n + 15) & ~(size_t)15;
    if (rounded < n || cv->used > SIZE_MAX - rounded) {
        cv->ok = 0;
        return NULL;
    }
    float *p = cv->base ? cv->base + cv->used : NULL;
    cv->used += rounded;
    return p;
}

/* Lays out every buffer for N tokens and P probabilities per layer. */
static void layout(carver *cv, struct ad_activations *a, const ad_model_config *c, size_t N,
                   size_t P) {
    size_t C = c->d_model, F = c->d_ff, V = c->vocab_size, NC, NF, NV;
    if (!mul_ok(N, C, &NC) || !mul_ok(N, F, &NF) || !mul_ok(N, V, &NV)) {
        cv->ok = 0;
        return;
    }
    for (size_t l = 0; l < c->n_layers; l++) {
        ad_layer_acts *la = &a->layers[l];
        la->x = carve(cv, NC);
        la->xn1 = carve(cv, NC);
        la->rstd1 = carve(cv, N);
        la->q = carve(cv, NC);
        la->k = carve(cv, NC);
        la->v = carve(cv, NC);
        la->probs = P ? carve(cv, P) : NULL;
        la->att = carve(cv, NC);
        la->x_mid = carve(cv, NC);
        la->xn2 = carve(cv, NC);
        la->rstd2 = carve(cv, N);
        la->gate = carve(cv, NF);
        la->up = carve(cv, NF);
        la->hid = carve(cv, NF);
    }
    a->x_final = carve(cv, NC);
    a->xnf = carve(cv, NC);
    a->rstdf = carve(cv, N);
    a->logits = carve(cv, NV);
    a->logp = carve(cv, N);
    a->weights = carve(cv, N);
    a->dx = carve(cv, NC);
    a->dxn = carve(cv, NC);
    a->datt = carve(cv, NC);
    a->dq = carve(cv, NC);
    a->dk = carve(cv, NC);
    a->dv = carve(cv, NC);
    a->dgate = carve(cv, NF);
    a->dup = carve(cv, NF);
    a->dhid = carve(cv, NF);
    a->dlogits = carve(cv, NV);
}

void ad_activations_free(ad_activations *a) {
    if (!a) return;
    free(a->att_work.buf);
    free(a->block);
    free(a->tokens);
    free(a->targets);
    free(a->seg_start);
    free(a->layers);
    free(a);
}

/* Whether this shape keeps its attention weights (P floats per layer). */
static int keep_probs(const ad_model *m, size_t P) {
    if (m->attention != AD_ATTENTION_AUTO) return m->attention == AD_ATTENTION_KEEP;
    size_t per_layer, all;
    return mul_ok(P, sizeof(float), &per_layer) && mul_ok(per_layer, m->cfg.n_layers, &all) &&
           all <= AD_ATTENTION_KEEP_MAX_BYTES;
}

/* The recomputing attention's per-thread buffers for T, grown when needed. */
static int reserve_work(ad_activations *a, const ad_model_config *c, size_t T, ad_error *err) {
    size_t nt = (size_t)omp_get_max_threads(), n, bytes;
    if (!mul_ok(nt, ad_attention_work_floats(T, c->d_model), &n) ||
        !mul_ok(n, sizeof(float), &bytes))
        return ad_error_set(err, "model forward: attention buffers for %zu tokens overflow", T);
    if (n > a->cap_work) {
        float *buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!buf)
            return ad_error_set(err, "model forward: out of memory for %zu MB of attention buffers",
                                bytes >> 20);
        free(a->att_work.buf);
        a->att_work.buf = buf;
        a->cap_work = n;
    }
    a->att_work.threads = nt;
    return AD_OK;
}

int ad_activations_reserve(ad_model *m, size_t B, size_t T, ad_error *err) {
    const ad_model_config *c = &m->cfg;
    size_t N, BH, TT, P;
    if (!mul_ok(B, T, &N) || !mul_ok(B, c->n_heads, &BH) || !mul_ok(T, T, &TT) ||
        !mul_ok(BH, TT, &P))
        return ad_error_set(err, "model forward: batch of %zu x %zu tokens is too large", B, T);
    ad_activations *old = m->acts;
    /* weights already room for are kept (no cost); otherwise the mode decides */
    int keep = (old && P <= old->cap_probs) || keep_probs(m, P);
    if (m->attention == AD_ATTENTION_RECOMPUTE) keep = 0;
    size_t P_need = keep ? P : 0;
    if (old && N <= old->cap_tokens && P_need <= old->cap_probs) {
        if (!keep && reserve_work(old, c, T, err) != AD_OK) return AD_ERR;
        old->B = B;
        old->T = T;
        old->keep_probs = keep;
        return AD_OK;
    }
    P = P_need;
    /* Grow to at least the old capacities so alternating shapes do not thrash. */
    if (old) {
        N = N > old->cap_tokens ? N : old->cap_tokens;
        P = P > old->cap_probs ? P : old->cap_probs;
    }
    ad_activations *a = calloc(1, sizeof *a);
    if (!a) return ad_error_set(err, "model forward: out of memory for activations");
    a->layers = calloc(c->n_layers, sizeof *a->layers);
    carver cv = {NULL, 0, 1};
    if (a->layers) layout(&cv, a, c, N, P);
    size_t bytes;
    if (!a->layers || !cv.ok || !mul_ok(cv.used, sizeof(float), &bytes)) {
        ad_activations_free(a);
        return ad_error_set(err, "model forward: activations for %zu x %zu tokens overflow", B, T);
    }
    a->block = aligned_alloc(64, bytes ? bytes : 64);
    a->tokens = malloc(N * sizeof(int32_t));
    a->targets = malloc(N * sizeof(int32_t));
    a->seg_start = malloc(N * sizeof(int32_t));
    if (!a->block || !a->tokens || !a->targets || !a->seg_start) {
        ad_activations_free(a);
        return ad_error_set(err, "model forward: out of memory for %zu MB of activations",
                            bytes >> 20);
    }
    if (!keep && reserve_work(a, c, T, err) != AD_OK) {
        ad_activations_free(a);
        return AD_ERR;
    }
    cv = (carver){a->block, 0, 1};
    layout(&cv, a, c, N, P);
    a->cap_tokens = N;
    a->cap_probs = P;
    a->keep_probs = keep;
    a->B = B;
    a->T = T;
    ad_activations_free(old);
    m->acts = a;
    return AD_OK;
}
