/* model_params.c: model configuration, the flat parameter buffer with its table
 * of named views, initialisation, and lookup by Hugging Face tensor name.
 * The forward and backward passes live in model_forward.c / model_backward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"
#include "util/rng.h"

ad_model_config ad_model_default_config(void) {
    ad_model_config c = {0};
    c.n_layers = 3;
    c.n_heads = 4;
    c.d_model = 128;
    c.d_ff = 512;
    c.vocab_size = 0;
    c.max_seq_len = 256;
    c.rms_eps = 1e-6f;
    c.init_std = 0.02f;
    c.rope_theta = 10000.0f;
    c.pos = AD_POS_NONE;
    c.tie_embeddings = 0;
    c.seed = 1337;
    return c;
}

/* a*b without overflow past limit; returns 0 on overflow. */
static int mul_ok(size_t a, size_t b, size_t limit, size_t *out) {
    if (a != 0 && b > limit / a) return 0;
    *out = a * b;
    return 1;
}

/* Limits are generous (a 100M-parameter model or a 4096-token context is
 * fine) but keep every derived size, e.g. B*H*T*T attention buffers, far from
 * SIZE_MAX. */
#define LIMIT_DIM ((size_t)1 << 20)
#define LIMIT_PARAMS ((size_t)1 << 34)

int ad_model_config_validate(const ad_model_config *c, ad_error *err) {
    if (!c->n_layers || !c->n_heads || !c->d_model || !c->d_ff || !c->vocab_size || !c->max_seq_len)
        return ad_error_set(err, "model config: layers, heads, dim, ffn, vocab size and max "
                                 "sequence length must all be positive");
    if (c->n_layers > 4096 || c->n_heads > 4096 || c->d_model > LIMIT_DIM || c->d_ff > LIMIT_DIM ||
        c->vocab_size > LIMIT_DIM || c->max_seq_len > LIMIT_DIM)
        return ad_error_set(err, "model config: a size is beyond the supported range");
    if (c->d_model % c->n_heads)
        return ad_error_set(err, "model config: %zu heads do not divide d_model %zu", c->n_heads,
                            c->d_model);
    if (c->pos == AD_POS_ROPE && (c->d_model / c->n_heads) % 2)
        return ad_error_set(err, "model config: RoPE needs an even head size, got %zu",
                            c->d_model / c->n_heads);
    if (c->pos != AD_POS_NONE && c->pos != AD_POS_ROPE)
        return ad_error_set(err, "model config: unknown position encoding %d", (int)c->pos);
    if (!(c->rms_eps > 0) || !(c->init_std > 0) || !(c->rope_theta > 0))
        return ad_error_set(err, "model config: rms_eps, init_std and rope_theta must be > 0");
    size_t per_layer, ff, total;
    if (!mul_ok(c->d_model, c->d_model, LIMIT_PARAMS, &per_layer) ||
        !mul_ok(c->d_model, c->d_ff, LIMIT_PARAMS, &ff))
        return ad_error_set(err, "model config: parameter count overflows");
    per_layer = 4 * per_layer + 3 * ff + 2 * c->d_model;
    if (!mul_ok(per_layer, c->n_layers, LIMIT_PARAMS, &total))
        return ad_error_set(err, "model config: parameter count overflows");
    if (total + 2 * c->vocab_size * c->d_model + c->d_model > LIMIT_PARAMS)
        return ad_error_set(err, "model config: parameter count overflows");
    return AD_OK;
}

/* Appends one tensor to the table and returns its offset. */
static size_t add_tensor(ad_model *m, size_t *cursor, const char *name, size_t rows, size_t cols,
                         int is_norm) {
    ad_tensor_info *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = *cursor;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->numel = cols ? rows * cols : rows;
    t->is_norm = is_norm;
    *cursor += t->numel;
    return t->offset;
}

/* Lays out the tensors in Hugging Face order and records their offsets in
 * m->tensors; the views in w/g are set later by point_views. The forward and
 * backward rely on q/k/v_proj and on gate/up_proj lying one after another
 * (their products run as one, ad_matmul_forward_parts). */
static void layout_tensors(ad_model *m) {
    const ad_model_config *c = &m->cfg;
    size_t cur = 0, C = c->d_model, F = c->d_ff;
    char name[96];
    add_tensor(m, &cur, "model.embed_tokens.weight", c->vocab_size, C, 0);
    static const char *const names[9] = {
        "input_layernorm",  "self_attn.q_proj", "self_attn.k_proj",
        "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    const size_t rows[9] = {C, C, C, C, C, C, F, F, C};
    const size_t cols[9] = {0, C, C, C, C, 0, C, C, F};
    for (size_t l = 0; l < c->n_layers; l++)
        for (int i = 0; i < 9; i++) {
            snprintf(name, sizeof name, "model.layers.%zu.%s.weight", l, names[i]);
            add_tensor(m, &cur, name, rows[i], cols[i], cols[i] == 0);
        }
    add_tensor(m, &cur, "model.norm.weight", C, 0, 1);
    if (!c->tie_embeddings) add_tensor(m, &cur, "lm_head.weight", c->vocab_size, C, 0);
    m->n_params = cur;
}

/* Points the named views of one flat buffer (params or grads). */
static void point_views(const ad_model *m, float *base, ad_weights *w) {
    size_t i = 0;
    w->embed = base + m->tensors[i++].offset;
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        ad_layer_weights *lw = &w->layers[l];
        float **slots[9] = {&lw->attn_norm, &lw->wq,     &lw->wk,   &lw->wv,    &lw->wo,
                            &lw->mlp_norm,  &lw->w_gate, &lw->w_up, &lw->w_down};
        for (int k = 0; k < 9; k++)
            *slots[k] = base + m->tensors[i++].offset;
    }
    w->final_norm = base + m->tensors[i++].offset;
    w->lm_head = m->cfg.tie_embeddings ? w->embed : base + m->tensors[i++].offset;
}

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

/* Matrices ~ normal(0, init_std), norms = 1. Each tensor has its own stream
 * derived from (seed, tensor index) so initialisation does not depend on order. */
static void init_params(ad_model *m) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ad_tensor_info *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (t->is_norm) {
            for (size_t j = 0; j < t->numel; j++)
                p[j] = 1.0f;
            continue;
        }
        ad_rng rng;
        ad_rng_seed(&rng, ad_seed_derive(m->cfg.seed, AD_SEED_INIT, i, 0, 0));
        for (size_t j = 0; j < t->numel; j++)
            p[j] = (float)(ad_rng_normal(&rng) * m->cfg.init_std);
    }
}

int ad_model_create(ad_model **out, const ad_model_config *cfg, ad_error *err) {
    *out = NULL;
    if (ad_model_config_validate(cfg, err) != AD_OK) return AD_ERR;
    ad_model *m = calloc(1, sizeof *m);
    if (!m) return ad_error_set(err, "out of memory allocating the model");
    m->cfg = *cfg;
    m->tensors = calloc(cfg->n_layers * 9 + 3, sizeof *m->tensors);
    m->w.layers = calloc(cfg->n_layers, sizeof *m->w.layers);
    m->g.layers = calloc(cfg->n_layers, sizeof *m->g.layers);
    if (m->tensors && m->w.layers && m->g.layers) {
        layout_tensors(m);
        m->params = alloc_floats(m->n_params);
        m->grads = alloc_floats(m->n_params);
    }
    if (!m->params || !m->grads) {
        ad_model_free(m);
        return ad_error_set(err, "out of memory allocating the model's parameters");
    }
    point_views(m, m->params, &m->w);
    point_views(m, m->grads, &m->g);
    init_params(m);
    *out = m;
    return AD_OK;
}

void ad_model_free(ad_model *m) {
    if (!m) return;
    ad_activations_free(m->acts);
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m->w.layers);
    free(m->g.layers);
    free(m);
}

const ad_tensor_info *ad_model_find_tensor(const ad_model *m, const char *name) {
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void ad_model_zero_grad(ad_model *m) {
    memset(m->grads, 0, m->n_params * sizeof(float));
}
