/* sampler_decode.c: the KV-cache decoder: one token per row per step.
 *
 * Each slot owns, per layer, a key cache and a value cache of max_len
 * positions; a step runs the whole model on nb rows at once (one token each,
 * at each row's own position), appends every row's key and value to its cache
 * and lets each query attend over its own cached prefix. All compute goes
 * through kernels.h, so a CUDA backend replaces it without touching this file.
 *
 * Not for: choosing tokens, admitting or retiring requests (sampler.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/sampler_internal.h"

struct ad_kv_decoder {
    const ad_model *m;
    size_t slots, max_len;
    size_t row_stride;    /* max_len * C: floats between two slots of one layer's cache */
    float *k_cache;       /* [L, slots, max_len, C] */
    float *v_cache;       /* [L, slots, max_len, C] */
    float *x, *xn;        /* [slots, C] residual stream and its normalised copy */
    float *q, *k, *v;     /* [slots, C] */
    float *att;           /* [slots, C] attention output before o_proj */
    float *gate, *up, *h; /* [slots, F] */
    size_t *len;          /* [slots] keys visible to each row in this step */
};

void ad_kv_decoder_free(ad_kv_decoder *d) {
    if (!d) return;
    free(d->k_cache);
    free(d->v_cache);
    free(d->x);
    free(d->xn);
    free(d->q);
    free(d->k);
    free(d->v);
    free(d->att);
    free(d->gate);
    free(d->up);
    free(d->h);
    free(d->len);
    free(d);
}

/* calloc of a*b*c floats (all > 0) with overflow checks; NULL on failure. */
static float *alloc_floats(size_t a, size_t b, size_t c) {
    if (a > SIZE_MAX / b || a * b > SIZE_MAX / sizeof(float) / c) return NULL;
    return calloc(a * b * c, sizeof(float));
}

int ad_kv_decoder_create(ad_kv_decoder **out, const ad_model *m, size_t slots, size_t max_len,
                         ad_error *err) {
    *out = NULL;
    const ad_model_config *c = &m->cfg;
    if (!slots || !max_len || max_len > c->max_seq_len || slots > SIZE_MAX / c->n_layers)
        return ad_error_set(err, "kv decoder: %zu slots of %zu positions (max_seq_len %zu)", slots,
                            max_len, c->max_seq_len);
    ad_kv_decoder *d = calloc(1, sizeof *d);
    if (!d) return ad_error_set(err, "kv decoder: out of memory");
    size_t C = c->d_model, F = c->d_ff;
    d->m = m;
    d->slots = slots;
    d->max_len = max_len;
    d->row_stride = max_len * C;
    d->k_cache = alloc_floats(c->n_layers * slots, max_len, C);
    d->v_cache = alloc_floats(c->n_layers * slots, max_len, C);
    d->x = alloc_floats(slots, C, 1);
    d->xn = alloc_floats(slots, C, 1);
    d->q = alloc_floats(slots, C, 1);
    d->k = alloc_floats(slots, C, 1);
    d->v = alloc_floats(slots, C, 1);
    d->att = alloc_floats(slots, C, 1);
    d->gate = alloc_floats(slots, F, 1);
    d->up = alloc_floats(slots, F, 1);
    d->h = alloc_floats(slots, F, 1);
    d->len = calloc(slots, sizeof *d->len);
    if (!d->k_cache || !d->v_cache || !d->x || !d->xn || !d->q || !d->k || !d->v || !d->att ||
        !d->gate || !d->up || !d->h || !d->len) {
        ad_kv_decoder_free(d);
        ad_error_set(err,
                     "kv decoder: out of memory for %zu slots x %zu positions x %zu "
                     "layers x %zu channels",
                     slots, max_len, c->n_layers, C);
        return AD_ERR;
    }
    *out = d;
    return AD_OK;
}

/* Attention sub-block of layer l for nb rows: x += o_proj(attn(rmsnorm(x))). */
static void attention_block(ad_kv_decoder *d, size_t l, const size_t *pos, size_t nb) {
    const ad_model_config *c = &d->m->cfg;
    const ad_layer_weights *w = &d->m->w.layers[l];
    size_t C = c->d_model, H = c->n_heads, D = C / H;
    float *kc = d->k_cache + l * d->slots * d->row_stride;
    float *vc = d->v_cache + l * d->slots * d->row_stride;
    ad_rmsnorm_forward(d->xn, NULL, d->x, w->attn_norm, nb, C, c->rms_eps);
    ad_matmul_forward(d->q, d->xn, w->wq, nb, C, C, 0);
    ad_matmul_forward(d->k, d->xn, w->wk, nb, C, C, 0);
    ad_matmul_forward(d->v, d->xn, w->wv, nb, C, C, 0);
    for (size_t i = 0; i < nb; i++) {
        if (c->pos == AD_POS_ROPE) {
            ad_rope_one(d->q + i * C, H, D, pos[i], c->rope_theta);
            ad_rope_one(d->k + i * C, H, D, pos[i], c->rope_theta);
        }
        memcpy(kc + i * d->row_stride + pos[i] * C, d->k + i * C, C * sizeof(float));
        memcpy(vc + i * d->row_stride + pos[i] * C, d->v + i * C, C * sizeof(float));
        d->len[i] = pos[i] + 1;
    }
    ad_attention_decode(d->att, d->q, kc, vc, d->len, nb, d->row_stride, H, D);
    ad_matmul_forward(d->x, d->att, w->wo, nb, C, C, 1);
}

/* MLP sub-block of layer l: x += down(silu(gate(rmsnorm(x))) * up(rmsnorm(x))). */
static void mlp_block(ad_kv_decoder *d, size_t l, size_t nb) {
    const ad_model_config *c = &d->m->cfg;
    const ad_layer_weights *w = &d->m->w.layers[l];
    size_t C = c->d_model, F = c->d_ff;
    ad_rmsnorm_forward(d->xn, NULL, d->x, w->mlp_norm, nb, C, c->rms_eps);
    ad_matmul_forward(d->gate, d->xn, w->w_gate, nb, C, F, 0);
    ad_matmul_forward(d->up, d->xn, w->w_up, nb, C, F, 0);
    ad_swiglu_forward(d->h, d->gate, d->up, nb, F);
    ad_matmul_forward(d->x, d->h, w->w_down, nb, F, C, 1);
}

void ad_kv_decoder_step(ad_kv_decoder *d, const int32_t *tok, const size_t *pos, size_t nb,
                        const size_t *want, size_t n_want, float *logits) {
    const ad_model_config *c = &d->m->cfg;
    size_t C = c->d_model;
    for (size_t i = 0; i < nb; i++)
        memcpy(d->x + i * C, d->m->w.embed + (size_t)tok[i] * C, C * sizeof(float));
    for (size_t l = 0; l < c->n_layers; l++) {
        attention_block(d, l, pos, nb);
        mlp_block(d, l, nb);
    }
    if (!n_want) return;
    /* Only rows that pick a token need the head: gather them into q (free now). */
    for (size_t j = 0; j < n_want; j++)
        memcpy(d->q + j * C, d->x + want[j] * C, C * sizeof(float));
    ad_rmsnorm_forward(d->xn, NULL, d->q, d->m->w.final_norm, n_want, C, c->rms_eps);
    ad_matmul_forward(logits, d->xn, d->m->w.lm_head, n_want, C, c->vocab_size, 0);
}

void ad_kv_decoder_move(ad_kv_decoder *d, size_t dst, size_t src, size_t len) {
    if (dst == src || !len) return;
    size_t C = d->m->cfg.d_model;
    for (size_t l = 0; l < d->m->cfg.n_layers; l++) {
        size_t base = l * d->slots * d->row_stride;
        memcpy(d->k_cache + base + dst * d->row_stride, d->k_cache + base + src * d->row_stride,
               len * C * sizeof(float));
        memcpy(d->v_cache + base + dst * d->row_stride, d->v_cache + base + src * d->row_stride,
               len * C * sizeof(float));
    }
}
