/* model.h: a Llama-style decoder-only transformer, trained and run on CPU.
 *
 * Architecture: token embedding; n_layers blocks of
 *   x += o_proj(causal_attention(q_proj(rmsnorm(x)), k_proj(..), v_proj(..)))
 *   x += down_proj(silu(gate_proj(rmsnorm(x))) * up_proj(rmsnorm(x)))
 * final RMSNorm, LM head (untied by default). No biases, no dropout.
 * Positions: none (NoPE, the default for algorithmic tasks) or RoPE in the
 * Hugging Face Llama convention (rotate-half, theta configurable).
 *
 * All parameters live in one float allocation (`params`) with a table of named
 * views (`tensors`, `w`); gradients mirror it exactly (`grads`, `g`). Matrices
 * use PyTorch's Linear layout [out_features, in_features], row-major, so the
 * flat buffers can be written to safetensors as they are.
 *
 * Shapes in comments use B batch, T time, C d_model, F d_ff, H heads, D = C/H
 * head size, V vocab, L layers. Every size is size_t.
 *
 * What this module is not: it knows nothing of tasks, vocabularies on disk, or
 * the self-improvement loop. */
#ifndef AD_MODEL_MODEL_H
#define AD_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef enum ad_pos_encoding { AD_POS_NONE = 0, AD_POS_ROPE = 1 } ad_pos_encoding;

typedef struct ad_model_config {
    size_t n_layers;    /* L */
    size_t n_heads;     /* H; must divide d_model */
    size_t d_model;     /* C */
    size_t d_ff;        /* F, SwiGLU hidden size */
    size_t vocab_size;  /* V */
    size_t max_seq_len; /* longest sequence the model accepts (BOS..EOS) */
    float rms_eps;      /* 1e-6 */
    float init_std;     /* 0.02 */
    float rope_theta;   /* 10000; used only when pos == AD_POS_ROPE */
    ad_pos_encoding pos;
    int tie_embeddings; /* lm_head shares embed's storage when 1 */
    uint64_t seed;      /* weight initialisation seed */
} ad_model_config;

/* A small model that trains on a laptop: 3 layers, 4 heads, d_model 128, d_ff 512,
 * NoPE, max_seq_len 256; vocab_size 0 (the caller sets it from its vocabulary). */
ad_model_config ad_model_default_config(void);

/* Checks a config for consistency (non-zero sizes, heads divide d_model, even head
 * size for RoPE, sizes that do not overflow). Returns AD_OK or AD_ERR with a message. */
int ad_model_config_validate(const ad_model_config *cfg, ad_error *err);

/* Views of one block's weights (or gradients) inside the flat buffer. */
typedef struct ad_layer_weights {
    float *attn_norm;         /* [C]    input_layernorm */
    float *wq, *wk, *wv, *wo; /* [C, C] self_attn.{q,k,v,o}_proj */
    float *mlp_norm;          /* [C]    post_attention_layernorm */
    float *w_gate, *w_up;     /* [F, C] mlp.{gate,up}_proj */
    float *w_down;            /* [C, F] mlp.down_proj */
} ad_layer_weights;

typedef struct ad_weights {
    float *embed;             /* [V, C] model.embed_tokens */
    ad_layer_weights *layers; /* [L] */
    float *final_norm;        /* [C]    model.norm */
    float *lm_head;           /* [V, C] lm_head (== embed when tied) */
} ad_weights;

/* One named tensor of the flat buffer, with its Hugging Face name. When embeddings
 * are tied there is no lm_head.weight entry (as in Hugging Face checkpoints). */
typedef struct ad_tensor_info {
    char name[96]; /* e.g. "model.layers.0.self_attn.q_proj.weight" */
    size_t offset; /* in floats, into params / grads */
    size_t ndim;   /* 1 or 2 */
    size_t shape[2];
    size_t numel;
    int is_norm; /* 1 for RMSNorm weights: no weight decay */
} ad_tensor_info;

typedef struct ad_activations ad_activations; /* private to model.c */

/* Whether the forward keeps each layer's attention weights (B*H*T*T floats)
 * for the backward, or the backward recomputes them head by head (kernels.h:
 * the same bits, one more attention forward, memory independent of B and L).
 * Auto keeps them while all layers' weights take at most
 * AD_ATTENTION_KEEP_MAX_BYTES, which covers short sequences (where keeping is
 * cheaper) and recomputes for long ones (where keeping dominates memory). */
typedef enum ad_attention_mode {
    AD_ATTENTION_AUTO = 0,
    AD_ATTENTION_KEEP = 1,
    AD_ATTENTION_RECOMPUTE = 2,
} ad_attention_mode;
#define AD_ATTENTION_KEEP_MAX_BYTES ((size_t)256 << 20)

typedef struct ad_model {
    ad_model_config cfg;
    size_t n_params;
    float *params; /* [n_params], 64-byte aligned */
    float *grads;  /* [n_params], same layout */
    ad_weights w;  /* views into params */
    ad_weights g;  /* views into grads */
    size_t n_tensors;
    ad_tensor_info *tensors;
    ad_activations *acts;        /* forward state kept for backward; grown on demand */
    ad_attention_mode attention; /* AD_ATTENTION_AUTO unless set */
    /* 1: decoding (ad_sample_generate) runs the matrix products in bf16, with
     * the weights packed in bf16 and fp32 sums (ad_matmul_pack_bf16), and
     * caches keys and values in bf16, where the CPU has AVX512-BF16
     * (ad_kernels_have_bf16); all other arithmetic stays fp32.
     * Tokens can differ from fp32's (bf16's rounding), the same whatever the
     * batch or thread count. 0 (default): fp32. Training is not affected. */
    int decode_bf16;
} ad_model;

/* A training / scoring batch: B right-padded rows of T tokens. Right padding with
 * a causal mask means valid positions never see padding, so no attention mask is
 * needed; padded positions simply carry target -1. */
typedef struct ad_batch {
    size_t B, T;
    const int32_t *tokens;  /* [B, T] input ids (padding: any valid id) */
    const int32_t *targets; /* [B, T] id to predict at each position; -1 = no loss */
    /* [B, T] or NULL: packed rows (kernels.h), where each token attends only
     * within its own sequence, which starts at seg_start in its row; a
     * sequence's tokens are consecutive (ad_model_forward refuses others) */
    const int32_t *seg_start;
} ad_batch;

/* Allocates a model and initialises it: normal(0, init_std) for matrices, 1 for
 * norm weights, from cfg->seed alone. On error *out is NULL. */
int ad_model_create(ad_model **out, const ad_model_config *cfg, ad_error *err);

/* Frees the model and its buffers; NULL is fine. */
void ad_model_free(ad_model *m);

/* Finds a tensor by its Hugging Face name; NULL when absent. */
const ad_tensor_info *ad_model_find_tensor(const ad_model *m, const char *name);

/* Forward pass over a batch. Keeps what backward needs. Writes the sum over
 * positions with target >= 0 of -log p(target) to *loss_sum and the number of
 * such positions to *n_targets. Returns AD_ERR when T > max_seq_len or a token
 * is out of range (nothing is changed then). */
int ad_model_forward(ad_model *m, const ad_batch *b, double *loss_sum, size_t *n_targets,
                     ad_error *err);

/* Logits [B, T, V] of the last forward. */
const float *ad_model_logits(const ad_model *m);

/* log p(target) [B, T] of the last forward; 0 where target == -1. */
const float *ad_model_target_logprobs(const ad_model *m);

/* Backward pass of the objective  -sum_{b,t} weight[b,t] * log p(target[b,t])
 * for the batch of the last forward; accumulates into m->grads. With
 * token_weights NULL every position with a target gets weight `scale` (so SFT
 * passes scale = 1 / number of target tokens in the whole accumulated batch).
 * With token_weights ([B, T]) position (b,t) gets token_weights[b*T+t] * scale.
 * Per-token weights serve DPO and GRPO. */
void ad_model_backward(ad_model *m, const float *token_weights, float scale);

/* Sets all gradients to zero. */
void ad_model_zero_grad(ad_model *m);

#endif
