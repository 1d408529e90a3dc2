/* sampler_decode.c: the KV-cache decoder: prompt prefill and decoding steps.
 *
 * Each slot owns, per layer, a key cache and a value cache of max_len
 * positions. A call feeds any number of rows, each one token of one slot at
 * that slot's own position: a decoding step has one row per slot, a prefill
 * all the positions of new prompts. The whole model runs on the rows at once,
 * each row's key and value go to its slot's cache, and each query attends over
 * its slot's cached prefix; the last layer goes past its keys and values only
 * for the rows that want logits (a prefill's rows want none). Every
 * computation is row by row (products sum over k in a fixed order for each
 * output element), so a row's values do not depend on which rows share its
 * call: feeding a prompt in one call gives the bits of feeding it one token
 * per step. When no two rows feed one slot (a decoding step), the rows are
 * independent, and the kernels may run each thread's share of them apart
 * (ad_kernels_for_rows: for a small model, or any in bf16, one parallel region
 * per forward instead of one per kernel). The weights are
 * packed for the matrix products once, when the decoder is created. All
 * compute goes through kernels.h, so a CUDA backend replaces it without
 * touching this file.
 *
 * Not for: choosing tokens, admitting or retiring requests (sampler.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/sampler_internal.h"

/* Rows per forward at most: enough for full-width matrix products; longer
 * prefills run in several forwards. */
#define PREFILL_ROWS ((size_t)1024)

/* The packed weights of one layer, in ad_layer_weights order. */
enum { W_Q, W_K, W_V, W_O, W_GATE, W_UP, W_DOWN, W_PER_LAYER };

struct ad_kv_decoder {
    const ad_model *m;
    size_t slots, max_len;
    size_t rows;           /* row capacity of one forward */
    size_t weight_bytes;   /* bytes of packed weights a forward reads (layers and head) */
    size_t row_stride;     /* max_len * C: values between two slots of one layer's cache */
    int bf16;              /* decoding in bf16: weights packed, keys and values cached in bf16 */
    int fused;             /* q/k/v and gate/up packed as one matrix each (bf16 only) */
    void *k_cache;         /* [L, slots, max_len, C] */
    void *v_cache;         /* [L, slots, max_len, C] */
    float *x, *xn;         /* [rows, C] residual stream and its normalised copy */
    float *q, *k, *v;      /* [rows, C] */
    float *att;            /* [rows, C] attention output before o_proj */
    float *gate, *up, *h;  /* [rows, F] */
    size_t *len;           /* [rows] keys visible to each row in this forward */
    size_t *ident;         /* [rows] 0, 1, 2, ...: slot of row i in a decoding step */
    size_t *want;          /* [rows] rows of one forward that need logits */
    size_t *wslot, *wpos;  /* [rows] slots and positions of those rows (last_layer_wanted) */
    uint64_t *seen, stamp; /* [slots] the last forward that fed each slot (slots_distinct) */
    ad_packed_matrix **pw; /* [L * W_PER_LAYER + 1] packed weights, the LM head last */
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
    free(d->ident);
    free(d->want);
    free(d->wslot);
    free(d->wpos);
    free(d->seen);
    if (d->pw)
        for (size_t i = 0; i < d->m->cfg.n_layers * W_PER_LAYER + 1; i++)
            ad_packed_matrix_free(d->pw[i]);
    free(d->pw);
    free(d);
}

/* calloc of a*b*c values of `size` bytes (all > 0) with overflow checks; NULL on failure. */
static void *alloc_values(size_t a, size_t b, size_t c, size_t size) {
    if (a > SIZE_MAX / b || a * b > SIZE_MAX / size / c) return NULL;
    return calloc(a * b * c, size);
}

static float *alloc_floats(size_t a, size_t b, size_t c) {
    return alloc_values(a, b, c, sizeof(float));
}

/* Bytes of one cached value. */
static size_t kv_size(const ad_kv_decoder *d) {
    return d->bf16 ? sizeof(uint16_t) : sizeof(float);
}

/* Packs every weight matrix of the model once for the decoder's products. */
static int pack_weights(ad_kv_decoder *d, ad_error *err) {
    int (*pack)(ad_packed_matrix **, const float *, size_t, size_t, ad_error *) =
        d->bf16 ? ad_matmul_pack_bf16 : ad_matmul_pack;
    const ad_model_config *c = &d->m->cfg;
    size_t C = c->d_model, F = c->d_ff, L = c->n_layers;
    d->pw = calloc(L * W_PER_LAYER + 1, sizeof *d->pw);
    if (!d->pw) return ad_error_set(err, "kv decoder: out of memory");
    for (size_t l = 0; l < L; l++) {
        const ad_layer_weights *w = &d->m->w.layers[l];
        const float *mat[W_PER_LAYER] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        const size_t in[W_PER_LAYER] = {C, C, C, C, C, C, F};
        const size_t out[W_PER_LAYER] = {C, C, C, C, F, F, C};
        for (size_t j = 0; j < W_PER_LAYER; j++) {
            size_t rows = out[j];
            if (d->fused && (j == W_K || j == W_V || j == W_UP)) continue; /* in W_Q, W_GATE */
            if (d->fused && (j == W_Q || j == W_GATE)) rows *= j == W_Q ? 3 : 2;
            if (pack(&d->pw[l * W_PER_LAYER + j], mat[j], in[j], rows, err)) return AD_ERR;
        }
    }
    return pack(&d->pw[L * W_PER_LAYER], d->m->w.lm_head, C, c->vocab_size, err);
}

int ad_kv_decoder_create(ad_kv_decoder **out, const ad_model *m, size_t slots, size_t max_len,
                         int bf16, ad_error *err) {
    *out = NULL;
    const ad_model_config *c = &m->cfg;
    if (!slots || !max_len || max_len > c->max_seq_len || slots > SIZE_MAX / c->n_layers)
        return ad_error_set(err, "kv decoder: %zu slots of %zu positions (max_seq_len %zu)", slots,
                            max_len, c->max_seq_len);
    ad_kv_decoder *d = calloc(1, sizeof *d);
    if (!d) return ad_error_set(err, "kv decoder: out of memory");
    size_t C = c->d_model, F = c->d_ff, R = slots;
    /* room for a prefill of PREFILL_ROWS rows, or of every slot's whole cache if less */
    if (R < PREFILL_ROWS) R = slots > PREFILL_ROWS / max_len ? PREFILL_ROWS : slots * max_len;
    d->m = m;
    d->slots = slots;
    d->max_len = max_len;
    d->rows = R;
    d->row_stride = max_len * C;
    /* in bf16 the keys and values are cached rounded too: the decode attention
     * reads every row's whole cache at each step (half the bytes: ~3.5% off a
     * 14M generation, and half the cache memory) */
    d->bf16 = bf16 && ad_kernels_have_bf16();
    d->weight_bytes =
        (c->n_layers * (4 * C * C + 3 * C * F) + C * c->vocab_size) * (d->bf16 ? 2 : 4);
    /* in bf16, products that share their input run as one (wq, wk, wv and
     * w_gate, w_up lie back to back in the model) when no panel straddles two */
    d->fused = d->bf16 && C % 32 == 0 && F % 32 == 0;
    d->k_cache = alloc_values(c->n_layers * slots, max_len, C, kv_size(d));
    d->v_cache = alloc_values(c->n_layers * slots, max_len, C, kv_size(d));
    d->x = alloc_floats(R, C, 1);
    d->xn = alloc_floats(R, C, 1);
    d->q = alloc_floats(R, C, 1);
    d->k = alloc_floats(R, C, 1);
    d->v = alloc_floats(R, C, 1);
    d->att = alloc_floats(R, C, 1);
    d->gate = alloc_floats(R, F, 1);
    d->up = alloc_floats(R, F, 1);
    d->h = alloc_floats(R, F, 1);
    d->len = calloc(R, sizeof *d->len);
    d->ident = calloc(R, sizeof *d->ident);
    d->want = calloc(R, sizeof *d->want);
    d->wslot = calloc(R, sizeof *d->wslot);
    d->wpos = calloc(R, sizeof *d->wpos);
    d->seen = calloc(slots, sizeof *d->seen);
    if (!d->k_cache || !d->v_cache || !d->x || !d->xn || !d->q || !d->k || !d->v || !d->att ||
        !d->gate || !d->up || !d->h || !d->len || !d->ident || !d->want || !d->wslot || !d->wpos ||
        !d->seen) {
        ad_kv_decoder_free(d);
        ad_error_set(err,
                     "kv decoder: out of memory for %zu slots x %zu positions x %zu "
                     "layers x %zu channels",
                     slots, max_len, c->n_layers, C);
        return AD_ERR;
    }
    for (size_t i = 0; i < R; i++)
        d->ident[i] = i;
    if (pack_weights(d, err) != AD_OK) {
        ad_kv_decoder_free(d);
        return AD_ERR;
    }
    *out = d;
    return AD_OK;
}

static const ad_packed_matrix *packed(const ad_kv_decoder *d, size_t l, size_t which) {
    return d->pw[l * W_PER_LAYER + which];
}

/* Layer l's queries, keys and values for rows [r0, r0 + nr) (from
 * rmsnorm(x)), each row's key and value stored in its slot's cache at its
 * position. Row i is position pos[i] of slot slot[i] (both arrays start at row r0). */
static void qkv_into_cache(ad_kv_decoder *d, size_t l, size_t r0, const size_t *slot,
                           const size_t *pos, size_t nr) {
    const ad_model_config *c = &d->m->cfg;
    const ad_layer_weights *w = &d->m->w.layers[l];
    size_t C = c->d_model, H = c->n_heads, D = C / H, es = kv_size(d);
    char *kc = (char *)d->k_cache + l * d->slots * d->row_stride * es;
    char *vc = (char *)d->v_cache + l * d->slots * d->row_stride * es;
    float *xn = d->xn + r0 * C, *q = d->q + r0 * C, *k = d->k + r0 * C, *v = d->v + r0 * C;
    ad_rmsnorm_forward(xn, NULL, d->x + r0 * C, w->attn_norm, nr, C, c->rms_eps);
    if (d->fused) {
        float *const qkv[3] = {q, k, v};
        ad_matmul_forward_packed_parts(qkv, xn, packed(d, l, W_Q), nr, 3);
    } else {
        ad_matmul_forward_packed(q, xn, packed(d, l, W_Q), nr, 0);
        ad_matmul_forward_packed(k, xn, packed(d, l, W_K), nr, 0);
        ad_matmul_forward_packed(v, xn, packed(d, l, W_V), nr, 0);
    }
    for (size_t i = 0; i < nr; i++) {
        if (c->pos == AD_POS_ROPE) {
            ad_rope_one(q + i * C, H, D, pos[i], c->rope_theta);
            ad_rope_one(k + i * C, H, D, pos[i], c->rope_theta);
        }
        size_t at = (slot[i] * d->row_stride + pos[i] * C) * es;
        if (d->bf16) {
            ad_bf16_from_floats((uint16_t *)(kc + at), k + i * C, C);
            ad_bf16_from_floats((uint16_t *)(vc + at), v + i * C, C);
        } else {
            memcpy(kc + at, k + i * C, C * sizeof(float));
            memcpy(vc + at, v + i * C, C * sizeof(float));
        }
    }
}

/* The rest of layer l's attention sub-block for rows [r0, r0 + nr), whose
 * queries and cached keys and values qkv_into_cache made:
 * x += o_proj(attn(q, cached keys and values up to each row's position)). */
static void attend(ad_kv_decoder *d, size_t l, size_t r0, const size_t *slot, const size_t *pos,
                   size_t nr) {
    const ad_model_config *c = &d->m->cfg;
    size_t C = c->d_model, H = c->n_heads, D = C / H, es = kv_size(d);
    void *kc = (char *)d->k_cache + l * d->slots * d->row_stride * es;
    void *vc = (char *)d->v_cache + l * d->slots * d->row_stride * es;
    float *q = d->q + r0 * C, *att = d->att + r0 * C;
    size_t *len = d->len + r0;
    for (size_t i = 0; i < nr; i++)
        len[i] = pos[i] + 1;
    if (d->bf16)
        ad_attention_decode_slots_bf16(att, q, kc, vc, slot, len, nr, d->row_stride, H, D);
    else
        ad_attention_decode_slots(att, q, kc, vc, slot, len, nr, d->row_stride, H, D);
    ad_matmul_forward_packed(d->x + r0 * C, att, packed(d, l, W_O), nr, 1);
}

/* MLP sub-block of layer l for rows [r0, r0 + nr):
 * x += down(silu(gate(rmsnorm(x))) * up(rmsnorm(x))). */
static void mlp_block(ad_kv_decoder *d, size_t l, size_t r0, size_t nr) {
    const ad_model_config *c = &d->m->cfg;
    const ad_layer_weights *w = &d->m->w.layers[l];
    size_t C = c->d_model, F = c->d_ff;
    float *x = d->x + r0 * C, *xn = d->xn + r0 * C;
    float *gate = d->gate + r0 * F, *up = d->up + r0 * F, *h = d->h + r0 * F;
    ad_rmsnorm_forward(xn, NULL, x, w->mlp_norm, nr, C, c->rms_eps);
    if (d->fused) {
        ad_mlp_forward_packed(x, h, gate, up, xn, packed(d, l, W_GATE), packed(d, l, W_DOWN), nr);
        return;
    }
    ad_matmul_forward_packed(gate, xn, packed(d, l, W_GATE), nr, 0);
    ad_matmul_forward_packed(up, xn, packed(d, l, W_UP), nr, 0);
    ad_swiglu_forward(h, gate, up, nr, F);
    ad_matmul_forward_packed(x, h, packed(d, l, W_DOWN), nr, 1);
}

/* The rows of one forward, for layers_on_rows. */
typedef struct rows_call {
    ad_kv_decoder *d;
    const int32_t *tok;
    const size_t *slot, *pos;
    size_t layers; /* layers to run whole */
} rows_call;

/* Embedding and the first rc->layers layers for rows [r0, r1) of a forward. */
static void layers_on_rows(void *ctx, size_t r0, size_t r1) {
    const rows_call *rc = ctx;
    ad_kv_decoder *d = rc->d;
    size_t C = d->m->cfg.d_model, nr = r1 - r0;
    for (size_t i = r0; i < r1; i++)
        memcpy(d->x + i * C, d->m->w.embed + (size_t)rc->tok[i] * C, C * sizeof(float));
    for (size_t l = 0; l < rc->layers; l++) {
        qkv_into_cache(d, l, r0, rc->slot + r0, rc->pos + r0, nr);
        attend(d, l, r0, rc->slot + r0, rc->pos + r0, nr);
        mlp_block(d, l, r0, nr);
    }
}

/* The last layer of a forward in which only the n_want < nr rows want[]
 * (ascending) need logits, as in a prefill (none): every row's keys and
 * values go to the cache, but only the wanted rows, gathered to the front
 * (rows 0..n_want-1), go on through the attention and the MLP. A prefill
 * of short prompts saves about 1/L of its products. */
static void last_layer_wanted(ad_kv_decoder *d, const size_t *slot, const size_t *pos, size_t nr,
                              const size_t *want, size_t n_want) {
    size_t l = d->m->cfg.n_layers - 1, C = d->m->cfg.d_model;
    qkv_into_cache(d, l, 0, slot, pos, nr);
    for (size_t j = 0; j < n_want; j++) {
        size_t r = want[j]; /* >= j: the rows move to the front without overlapping */
        if (r != j) {
            memcpy(d->x + j * C, d->x + r * C, C * sizeof(float));
            memcpy(d->q + j * C, d->q + r * C, C * sizeof(float));
        }
        d->wslot[j] = slot[r];
        d->wpos[j] = pos[r];
    }
    if (!n_want) return;
    attend(d, l, 0, d->wslot, d->wpos, n_want);
    mlp_block(d, l, 0, n_want);
}

/* 1 when no two of the nr rows feed the same slot. Then the rows are
 * independent (each reads only its own slot's cache, up to its own position),
 * as in a decoding step; the rows of one prompt in a prefill read each other's
 * keys, so they must run together. */
static int slots_distinct(ad_kv_decoder *d, const size_t *slot, size_t nr) {
    d->stamp++;
    for (size_t i = 0; i < nr; i++) {
        if (d->seen[slot[i]] == d->stamp) return 0;
        d->seen[slot[i]] = d->stamp;
    }
    return 1;
}

/* One forward over nr <= d->rows rows; logits of the n_want rows want[]
 * (indices < nr) go to logits[n_want, V]. Independent rows may run in separate
 * ranges, one per thread (ad_kernels_for_rows). */
static void forward_rows(ad_kv_decoder *d, const int32_t *tok, const size_t *slot,
                         const size_t *pos, size_t nr, const size_t *want, size_t n_want,
                         float *logits) {
    const ad_model_config *c = &d->m->cfg;
    size_t C = c->d_model;
    int gather = n_want < nr; /* the last layer on the wanted rows only */
    rows_call rc = {d, tok, slot, pos, c->n_layers - (size_t)gather};
    if (slots_distinct(d, slot, nr))
        ad_kernels_for_rows(nr, d->weight_bytes, d->bf16, layers_on_rows, &rc);
    else
        layers_on_rows(&rc, 0, nr);
    if (gather) last_layer_wanted(d, slot, pos, nr, want, n_want);
    if (!n_want) return;
    /* Only rows that pick a token need the head: gather them into q (free now). */
    for (size_t j = 0; j < n_want; j++)
        memcpy(d->q + j * C, d->x + (gather ? j : want[j]) * C, C * sizeof(float));
    ad_rmsnorm_forward(d->xn, NULL, d->q, d->m->w.final_norm, n_want, C, c->rms_eps);
    ad_matmul_forward_packed(logits, d->xn, d->pw[c->n_layers * W_PER_LAYER], n_want, 0);
}

void ad_kv_decoder_step(ad_kv_decoder *d, const int32_t *tok, const size_t *pos, size_t nb,
                        const size_t *want, size_t n_want, float *logits) {
    forward_rows(d, tok, d->ident, pos, nb, want, n_want, logits);
}

void ad_kv_decoder_feed(ad_kv_decoder *d, const int32_t *tok, const size_t *slot, const size_t *pos,
                        size_t nr, const size_t *want, size_t n_want, float *logits) {
    size_t V = d->m->cfg.vocab_size, j = 0;
    for (size_t r0 = 0; r0 < nr; r0 += d->rows) {
        size_t n = nr - r0 < d->rows ? nr - r0 : d->rows, j0 = j;
        /* want[] is ascending: this chunk's rows are want[j0..j), shifted to the chunk */
        while (j < n_want && want[j] < r0 + n)
            j++;
        for (size_t k = j0; k < j; k++)
            d->want[k - j0] = want[k] - r0;
        forward_rows(d, tok + r0, slot + r0, pos + r0, n, d->want, j - j0, logits + j0 * V);
    }
}

void ad_kv_decoder_move(ad_kv_decoder *d, size_t dst, size_t src, size_t len) {
    if (dst == src || !len) return;
    size_t C = d->m->cfg.d_model, es = kv_size(d);
    char *kc = d->k_cache, *vc = d->v_cache;
    for (size_t l = 0; l < d->m->cfg.n_layers; l++) {
        size_t base = l * d->slots * d->row_stride;
        memcpy(kc + (base + dst * d->row_stride) * es, kc + (base + src * d->row_stride) * es,
               len * C * es);
        memcpy(vc + (base + dst * d->row_stride) * es, vc + (base + src * d->row_stride) * es,
               len * C * es);
    }
}
