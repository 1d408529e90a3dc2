/* model_forward.c: the forward pass of the Llama-style decoder over a batch,
 * keeping what the backward pass needs (activations.h), and the cross-entropy
 * loss. Every computation goes through kernels.h; this file is the data flow.
 * Not here: the backward pass (model_backward.c), parameters (model_params.c). */
#include <string.h>

#include "model/activations.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/model_internal.h"

/* Checks sizes and ids before anything is touched. */
static int check_batch(const ad_model *m, const ad_batch *b, ad_error *err) {
    const ad_model_config *c = &m->cfg;
    if (!b || !b->tokens || !b->targets || b->B == 0 || b->T == 0)
        return ad_error_set(err, "model forward: empty batch");
    if (b->T > c->max_seq_len)
        return ad_error_set(err, "model forward: sequence length %zu exceeds max_seq_len %zu", b->T,
                            c->max_seq_len);
    size_t N = b->B * b->T;
    if (N / b->T != b->B) return ad_error_set(err, "model forward: batch size overflows");
    for (size_t n = 0; n < N; n++) {
        int32_t tok = b->tokens[n], tgt = b->targets[n];
        if (tok < 0 || (size_t)tok >= c->vocab_size)
            return ad_error_set(err,
                                "model forward: token %d at row %zu position %zu is outside "
                                "the vocabulary of %zu",
                                (int)tok, n / b->T, n % b->T, c->vocab_size);
        if (tgt < -1 || (tgt >= 0 && (size_t)tgt >= c->vocab_size))
            return ad_error_set(err,
                                "model forward: target %d at row %zu position %zu is "
                                "outside the vocabulary of %zu (use -1 for no target)",
                                (int)tgt, n / b->T, n % b->T, c->vocab_size);
        if (b->seg_start && (b->seg_start[n] < 0 || (size_t)b->seg_start[n] > n % b->T))
            return ad_error_set(err,
                                "model forward: sequence start %d at row %zu position %zu is "
                                "not within 0..%zu",
                                (int)b->seg_start[n], n / b->T, n % b->T, n % b->T);
        /* a sequence's tokens are consecutive: each starts one or continues the last */
        if (b->seg_start && n % b->T && (size_t)b->seg_start[n] != n % b->T &&
            b->seg_start[n] != b->seg_start[n - 1])
            return ad_error_set(err,
                                "model forward: sequence start %d at row %zu position %zu "
                                "neither starts a sequence there nor continues the one "
                                "before (start %d)",
                                (int)b->seg_start[n], n / b->T, n % b->T, (int)b->seg_start[n - 1]);
    }
    return AD_OK;
}

/* x[N,C] = embed[tokens] */
static void embed_tokens(float *x, const float *embed, const int32_t *tokens, size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        memcpy(x + n * C, embed + (size_t)tokens[n] * C, C * sizeof(float));
}

/* One block: x_out = x_mid + down(silu(gate(n2)) * up(n2)), with
 * x_mid = x + o(attention(q(n1), k(n1), v(n1))), n1 = norm(x), n2 = norm(x_mid). */
static void block_forward(const ad_model *m, ad_layer_acts *la, const ad_layer_weights *w,
                          float *x_out, size_t B, size_t T) {
    const ad_model_config *c = &m->cfg;
    size_t N = B * T, C = c->d_model, F = c->d_ff, H = c->n_heads, D = C / H;
    ad_rmsnorm_forward(la->xn1, la->rstd1, la->x, w->attn_norm, N, C, c->rms_eps);
    float *qkv[3] = {la->q, la->k, la->v};
    ad_matmul_forward_parts(qkv, la->xn1, w->wq, N, C, C, 3); /* wq, wk, wv are adjacent */
    const ad_activations *a = m->acts;
    const int32_t *seg = a->packed ? a->seg_start : NULL;
    if (c->pos == AD_POS_ROPE) {
        ad_rope_forward(la->q, seg, B, T, H, D, c->rope_theta);
        ad_rope_forward(la->k, seg, B, T, H, D, c->rope_theta);
    }
    ad_attention_forward(la->att, a->keep_probs ? la->probs : NULL, la->q, la->k, la->v, seg, B, T,
                         H, D, &a->att_work);
    memcpy(la->x_mid, la->x, N * C * sizeof(float));
    ad_matmul_forward(la->x_mid, la->att, w->wo, N, C, C, 1);
    ad_rmsnorm_forward(la->xn2, la->rstd2, la->x_mid, w->mlp_norm, N, C, c->rms_eps);
    memcpy(x_out, la->x_mid, N * C * sizeof(float));
    la->hid_bf16 =
        ad_mlp_forward(x_out, la->hid, la->gate, la->up, la->xn2, w->w_gate, w->w_down, N, C, F);
}

int ad_model_forward(ad_model *m, const ad_batch *b, double *loss_sum, size_t *n_targets,
                     ad_error *err) {
    if (check_batch(m, b, err) != AD_OK) return AD_ERR;
    if (ad_activations_reserve(m, b->B, b->T, err) != AD_OK) return AD_ERR;
    const ad_model_config *c = &m->cfg;
    ad_activations *a = m->acts;
    size_t L = c->n_layers, N = b->B * b->T, C = c->d_model, V = c->vocab_size;
    memcpy(a->tokens, b->tokens, N * sizeof(int32_t));
    memcpy(a->targets, b->targets, N * sizeof(int32_t));
    a->packed = b->seg_start != NULL;
    if (a->packed) memcpy(a->seg_start, b->seg_start, N * sizeof(int32_t));

    embed_tokens(a->layers[0].x, m->w.embed, a->tokens, N, C);
    for (size_t l = 0; l < L; l++) {
        float *x_out = l + 1 < L ? a->layers[l + 1].x : a->x_final;
        block_forward(m, &a->layers[l], &m->w.layers[l], x_out, b->B, b->T);
    }
    ad_rmsnorm_forward(a->xnf, a->rstdf, a->x_final, m->w.final_norm, N, C, c->rms_eps);
    ad_matmul_forward(a->logits, a->xnf, m->w.lm_head, N, C, V, 0);
    ad_xent_forward(a->logp, a->logits, a->targets, N, V);

    double sum = 0.0;
    size_t count = 0;
    for (size_t n = 0; n < N; n++)
        if (a->targets[n] >= 0) {
            sum -= (double)a->logp[n];
            count++;
        }
    a->valid = 1;
    if (loss_sum) *loss_sum = sum;
    if (n_targets) *n_targets = count;
    return AD_OK;
}

const float *ad_model_logits(const ad_model *m) {
    return m->acts && m->acts->valid ? m->acts->logits : NULL;
}

const float *ad_model_target_logprobs(const ad_model *m) {
    return m->acts && m->acts->valid ? m->acts->logp : NULL;
}
