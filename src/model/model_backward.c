/* model_backward.c: the backward pass of the decoder for the batch of the last
 * forward, accumulating parameter gradients into m->grads. Every computation
 * goes through kernels.h; this file is the data flow, mirror image of
 * model_forward.c. Not here: zeroing gradients, the optimizer. */
#include <omp.h>
#include <string.h>

#include "model/activations.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/model_internal.h"

static void zero(float *x, size_t n) {
    memset(x, 0, n * sizeof(float));
}

/* Backward through one block. On entry a->dx holds d(loss)/d(x_out); on exit
 * it holds d(loss)/d(x_in). Parameter gradients accumulate into g. */
static void block_backward(const ad_model *m, ad_activations *a, const ad_layer_acts *la,
                           const ad_layer_weights *w, const ad_layer_weights *g) {
    const ad_model_config *c = &m->cfg;
    size_t B = a->B, T = a->T, N = B * T, C = c->d_model, F = c->d_ff, H = c->n_heads, D = C / H;
    /* MLP: x_out = x_mid + hid @ w_down^T, hid = silu(gate) * up */
    ad_mlp_backward_into(a->dxn, g->w_gate, g->w_down, a->dhid, a->dgate, a->dup, a->dx, la->xn2,
                         la->hid, la->hid_bf16, la->gate, la->up, w->w_gate, w->w_down, N, C, F);
    const float *dqkv[3] = {a->dq, a->dk, a->dv};
    ad_rmsnorm_backward(a->dx, g->mlp_norm, a->dxn, la->x_mid, w->mlp_norm, la->rstd2, N, C);
    /* attention: x_mid = x + att @ wo^T */
    ad_matmul_backward_into(a->datt, g->wo, a->dx, la->att, w->wo, N, C, C);
    zero(a->dq, N * C);
    zero(a->dk, N * C);
    zero(a->dv, N * C);
    const int32_t *seg = a->packed ? a->seg_start : NULL;
    ad_attention_backward(a->dq, a->dk, a->dv, a->datt, a->keep_probs ? la->probs : NULL, la->q,
                          la->k, la->v, seg, B, T, H, D, &a->att_work);
    if (c->pos == AD_POS_ROPE) {
        ad_rope_backward(a->dq, seg, B, T, H, D, c->rope_theta);
        ad_rope_backward(a->dk, seg, B, T, H, D, c->rope_theta);
    }
    ad_matmul_backward_parts_into(a->dxn, g->wq, dqkv, la->xn1, w->wq, N, C, C, 3);
    ad_rmsnorm_backward(a->dx, g->attn_norm, a->dxn, la->x, w->attn_norm, la->rstd1, N, C);
}

/* g_embed[tokens[n]] += dx[n]. Each thread owns a slice of the C columns and
 * walks all rows in order, so repeated tokens sum in a fixed order. */
static void embed_backward(float *g_embed, const float *dx, const int32_t *tokens, size_t N,
                           size_t C) {
#pragma omp parallel
    {
        size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = C * t / nt, hi = C * (t + 1) / nt;
        for (size_t n = 0; n < N; n++) {
            float *gr = g_embed + (size_t)tokens[n] * C;
            const float *d = dx + n * C;
            for (size_t i = lo; i < hi; i++)
                gr[i] += d[i];
        }
    }
}

/* Position (b,t) gets weight token_weights[b*T+t] * scale (or scale alone when
 * token_weights is NULL) if it has a target, 0 otherwise. Does nothing when no
 * forward pass has run. */
void ad_model_backward(ad_model *m, const float *token_weights, float scale) {
    ad_activations *a = m->acts;
    if (!a || !a->valid) return;
    const ad_model_config *c = &m->cfg;
    size_t N = a->B * a->T, C = c->d_model, V = c->vocab_size, L = c->n_layers;
    for (size_t n = 0; n < N; n++)
        a->weights[n] =
            a->targets[n] >= 0 ? (token_weights ? token_weights[n] * scale : scale) : 0.0f;

    ad_xent_backward(a->dlogits, a->logits, a->targets, a->weights, N, V);
    ad_matmul_backward_into(a->dxn, m->g.lm_head, a->dlogits, a->xnf, m->w.lm_head, N, C, V);
    zero(a->dx, N * C);
    ad_rmsnorm_backward(a->dx, m->g.final_norm, a->dxn, a->x_final, m->w.final_norm, a->rstdf, N,
                        C);
    for (size_t l = L; l-- > 0;)
        block_backward(m, a, &a->layers[l], &m->w.layers[l], &m->g.layers[l]);
    embed_backward(m->g.embed, a->dx, a->tokens, N, C);
}
