/* activations.h: what the forward pass keeps for the backward pass, and the
 * backward pass's scratch. Private to model_activations.c, model_forward.c and
 * model_backward.c.
 *
 * Everything lives in one 64-byte-aligned block sized for the largest batch
 * seen so far (tokens N = B*T, attention probabilities B*H*T*T per layer), so
 * a training loop allocates once and never again. */
#ifndef AD_MODEL_ACTIVATIONS_H
#define AD_MODEL_ACTIVATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "model/kernels.h"
#include "model/model.h"

/* One block's saved tensors. [N,C] unless noted. */
typedef struct ad_layer_acts {
    float *x;               /* block input (the residual stream) */
    float *xn1, *rstd1;     /* attention RMSNorm output, and its 1/rms [N] */
    float *q, *k, *v;       /* projections (q, k after RoPE) */
    float *probs;           /* [B,H,T,T] softmax weights; NULL when recomputed */
    float *att;             /* attention output before o_proj */
    float *x_mid;           /* residual after attention */
    float *xn2, *rstd2;     /* MLP RMSNorm output, 1/rms [N] */
    float *gate, *up, *hid; /* [N,F]; hid = silu(gate) * up, as ad_mlp_forward keeps it */
    int hid_bf16;           /* hid holds its bf16 rounding (ad_mlp_forward's result) */
} ad_layer_acts;

struct ad_activations {
    size_t B, T;                /* shape of the last successful forward */
    int valid;                  /* 1 once a forward has filled the buffers */
    size_t cap_tokens;          /* N the block is sized for */
    size_t cap_probs;           /* B*H*T*T per layer the block is sized for */
    int keep_probs;             /* 1: layers[l].probs hold the last forward's weights */
    ad_attention_work att_work; /* per-thread buffers when the weights are recomputed */
    size_t cap_work;            /* floats in att_work.buf */
    float *block;               /* the one allocation holding every float buffer */
    int32_t *tokens;            /* [cap_tokens] inputs of the last forward */
    int32_t *targets;           /* [cap_tokens] targets of the last forward */
    int32_t *seg_start;         /* [cap_tokens] sequence starts of the last forward */
    int packed;                 /* 1: seg_start holds the last forward's (else all 0) */
    ad_layer_acts *layers;      /* [L] */
    float *x_final;             /* [N,C] last block's output */
    float *xnf, *rstdf;         /* final RMSNorm output [N,C], 1/rms [N] */
    float *logits;              /* [N,V] */
    float *logp;                /* [N] log p(target), 0 without target */
    float *weights;             /* [N] per-token loss weights of the backward pass */
    /* backward scratch */
    float *dx;                 /* [N,C] gradient of the residual stream */
    float *dxn;                /* [N,C] gradient of a norm output */
    float *datt;               /* [N,C] */
    float *dq, *dk, *dv;       /* [N,C] */
    float *dgate, *dup, *dhid; /* [N,F] */
    float *dlogits;            /* [N,V] */
};

/* Makes sure m->acts can hold a batch of B rows of T tokens (growing it when
 * needed) and records (B, T): the attention weights of every layer when
 * m->attention says keep them (or auto and they fit), else the per-thread
 * buffers that recompute them. On error the previous buffers are kept intact
 * and AD_ERR is returned with a message. */
int ad_activations_reserve(ad_model *m, size_t B, size_t T, ad_error *err);

#endif
