/* kernels.h: the narrow compute interface under the model.
 *
 * Everything heavy the model does goes through these functions: matrix
 * products, causal attention, RMSNorm, SwiGLU, RoPE, softmax cross-entropy and
 * the AdamW update. model.c, sampler.c and optimizer.c call nothing else for
 * compute, so that another backend (CUDA) can replace this file's
 * implementation without touching the model code.
 *
 * The CPU implementation uses OpenBLAS's cblas_sgemm for matrix products and
 * OpenMP for the rest, with AVX-512 / AVX2 paths chosen at run time. Results
 * are deterministic for a given thread count: no floating-point reduction
 * depends on scheduling. Backward functions ACCUMULATE (+=) into gradients
 * (ad_matmul_backward_into overwrites its input gradient).
 *
 * Shapes: N rows (= B*T), I in, O out, C channels, F hidden, H heads, D head size. */
#ifndef AD_MODEL_KERNELS_H
#define AD_MODEL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Sets the number of threads for OpenMP and OpenBLAS (0 = leave as is). */
void ad_kernels_set_threads(int n_threads);
int ad_kernels_get_threads(void);
/* "avx512", "avx2" or "scalar": the path chosen at run time. */
const char *ad_kernels_isa(void);
/* Runs fn(ctx, r0, r1) over rows [0, n) cut into one contiguous range per
 * thread, each range on its own thread, with the kernels that fn calls running
 * on that thread alone: one parallel region for a whole forward instead of one
 * per kernel. That pays when every kernel's share is a few microseconds, as
 * in decoding a small model, where forking and joining cost as much as the
 * work. weight_bytes is what every range reads of the weights: past what the
 * caches hold, each thread would stream fp32 weights from memory for its own
 * rows, so then (and with one thread, or on the AVX2 path, whose products are
 * OpenBLAS's) fn runs once, fn(ctx, 0, n), and each kernel shares its work as
 * usual. With bf16_weights (fn's products run on weights packed by
 * ad_matmul_pack_bf16, which stream well on one thread) the rows go apart at
 * any size. The rows must be independent: fn may write only its own rows' state
 * and read nothing another range writes. Every kernel computes a row the same
 * way whatever rows share its call, so the bits do not depend on the cut. */
void ad_kernels_for_rows(size_t n, size_t weight_bytes, int bf16_weights,
                         void (*fn)(void *ctx, size_t r0, size_t r1), void *ctx);

/* Mixed precision for training's matrix products, off by default. With it on,
 * ad_matmul_forward and ad_matmul_backward(_into) round both operands to bf16
 * (nearest even) and keep every sum in fp32: twice the multiply rate on CPUs
 * with AVX512-BF16, and results within bf16's rounding of the fp32 ones,
 * still independent of the thread count. Packed products (decoding) and every
 * other kernel stay fp32. ad_kernels_set_bf16 returns the previous setting;
 * on a CPU without AVX512-BF16 (ad_kernels_have_bf16() == 0) it stays off.
 * Not thread-safe against running kernels. */
int ad_kernels_have_bf16(void);
int ad_kernels_set_bf16(int on);

/* out[N,O] = in[N,I] @ W[O,I]^T  (accumulate into out when accumulate != 0) */
void ad_matmul_forward(float *out, const float *in, const float *W, size_t N, size_t I, size_t O,
                       int accumulate);
/* Products that share their input, as the attention's q/k/v and the MLP's
 * gate/up do: out[p][N,O] = in @ W_p^T for p < parts, where W_p = W + p*O*I
 * (the weights lie one after another). The same bits as `parts` calls of
 * ad_matmul_forward; with bf16 products on, one product whose input is
 * converted once. */
void ad_matmul_forward_parts(float *const *out, const float *in, const float *W, size_t N, size_t I,
                             size_t O, size_t parts);
/* Their backward: din[N,I] = sum_p dout[p] @ W_p (overwritten), dW_p += dout[p]^T @ in
 * with dW_p = dW + p*O*I. Either may be NULL. In fp32 the bits of
 * ad_matmul_backward_into for p = 0 then ad_matmul_backward for the others;
 * with bf16 products on, din is one sum over all parts (other bits). */
void ad_matmul_backward_parts_into(float *din, float *dW, const float *const *dout, const float *in,
                                   const float *W, size_t N, size_t I, size_t O, size_t parts);
/* The MLP: out[N,C] += hid @ W_down^T (W_down [C,F]), hid = silu(gate) *
 * up, [gate | up] = xn @ [W_gate; W_up]^T (W_up right after W_gate, both
 * [F,C]). gate and up are kept for the backward; hid ([N,F] floats of room)
 * holds what the backward needs of it, in the products' precision: the
 * floats (returns 0), or with bf16 products on their bf16 rounding in its
 * first half (returns 1), which is all a bf16 product would use. The bits of
 * ad_matmul_forward_parts(.., 2), ad_swiglu_forward, then
 * ad_matmul_forward(out, hid, .., 1); with bf16 products on, each block of
 * rows goes through SwiGLU as soon as its gate and up are summed, while they
 * are in cache, instead of in a pass of its own. */
int ad_mlp_forward(float *out, float *hid, float *gate, float *up, const float *xn,
                   const float *W_gate, const float *W_down, size_t N, size_t C, size_t F);
/* Its backward from dout = d(loss)/d(out): dxn [N,C] (overwritten), dW_gate
 * (and dW_up after it) and dW_down (accumulated); hid and hid_bf16 as the
 * forward left them. dhid, dgate and dup [N,F] are working space. The bits
 * of ad_matmul_backward_into (dhid, dW_down), ad_swiglu_backward, then
 * ad_matmul_backward_parts_into(.., 2); with bf16 products on, SwiGLU's
 * backward runs on each block of dhid's rows as the product sums them, and
 * dgate and dup go from it to the two products in bf16 (as the products would
 * round them), never in fp32. */
void ad_mlp_backward_into(float *dxn, float *dW_gate, float *dW_down, float *dhid, float *dgate,
                          float *dup, const float *dout, const float *xn, const float *hid,
                          int hid_bf16, const float *gate, const float *up, const float *W_gate,
                          const float *W_down, size_t N, size_t C, size_t F);
/* A weight matrix W[O,I] prepared once for many products out = in @ W^T
 * (decoding multiplies by each weight at every step; packing it anew each time
 * cost about half as much as the product). It refers to W, which must stay
 * unchanged and alive while the packed form is used. */
typedef struct ad_packed_matrix ad_packed_matrix;
/* Packs W. On error (out of memory) *out is NULL and err says why. */
int ad_matmul_pack(ad_packed_matrix **out, const float *W, size_t I, size_t O, ad_error *err);
/* Packs W rounded to bf16, for products with bf16 operands and fp32 sums
 * (inference in bf16: half the weight memory to read, twice the products per
 * instruction). On a CPU without AVX512-BF16 it is ad_matmul_pack (fp32);
 * ad_packed_matrix_is_bf16 says which form was made. */
int ad_matmul_pack_bf16(ad_packed_matrix **out, const float *W, size_t I, size_t O, ad_error *err);
int ad_packed_matrix_is_bf16(const ad_packed_matrix *p);
void ad_packed_matrix_free(ad_packed_matrix *p); /* NULL is fine */
/* out[N,O] (+)= in[N,I] @ W^T with W's packed form: the same bits as
 * ad_matmul_forward(out, in, W, N, I, O, accumulate), with bf16 products on
 * (ad_kernels_set_bf16) when W was packed in bf16, else off. */
void ad_matmul_forward_packed(float *out, const float *in, const ad_packed_matrix *W, size_t N,
                              int accumulate);
/* out[p][N,O] = in[N,I] @ W_p^T for the parts p < parts of W, a matrix of
 * parts x O rows packed as one (matrices of one shape stored back to back:
 * q/k/v, gate/up), so they run as one product. Each part gets the bits of
 * its own packed product (ad_matmul_forward_packed); only packed in bf16 with
 * O a multiple of 32 do they run as one, else they run one by one from W. */
void ad_matmul_forward_packed_parts(float *const *out, const float *in, const ad_packed_matrix *W,
                                    size_t N, size_t parts);
/* The MLP on packed weights (decoding): out[N,C] += down(silu(gate(xn)) *
 * up(xn)), gate and up packed as one matrix of 2F rows (W_gate_up, run as
 * parts), the down projection W_down [C, F]; gate, up and hid are [N, F]. The
 * bits of those steps one by one (ad_matmul_forward_packed_parts,
 * ad_swiglu_forward, ad_matmul_forward_packed). Packed in bf16 with F a
 * multiple of 32, SwiGLU runs inside the gate/up product on rows still in
 * cache and hands its rows to the down product already rounded to bf16 (in
 * hid's first half), as ad_mlp_forward does in training. */
void ad_mlp_forward_packed(float *out, float *hid, float *gate, float *up, const float *xn,
                           const ad_packed_matrix *W_gate_up, const ad_packed_matrix *W_down,
                           size_t N);
/* din[N,I] += dout[N,O] @ W[O,I];  dW[O,I] += dout^T @ in. Either may be NULL. */
void ad_matmul_backward(float *din, float *dW, const float *dout, const float *in, const float *W,
                        size_t N, size_t I, size_t O);
/* The same, but din = dout @ W (overwritten, so it needs no zeroing first). */
void ad_matmul_backward_into(float *din, float *dW, const float *dout, const float *in,
                             const float *W, size_t N, size_t I, size_t O);

/* out[N,C] = in * rstd * w, rstd[N] = 1/sqrt(mean(in^2) + eps) (rstd may be NULL) */
void ad_rmsnorm_forward(float *out, float *rstd, const float *in, const float *w, size_t N,
                        size_t C, float eps);
/* din[N,C] += ..., dw[C] += ... given the saved rstd. */
void ad_rmsnorm_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                         const float *rstd, size_t N, size_t C);

/* Packed rows: a row of T tokens may hold several sequences one after another.
 * seg_start[B, T] gives, for each token, the index in its row where its own
 * sequence starts (a sequence's tokens are consecutive, so seg_start[t] is t
 * or seg_start[t-1]); it then attends only to keys from there to itself, and its
 * RoPE position is t - seg_start. NULL: each row is one sequence (start 0). */

/* In-place rotate-half RoPE on x[B,T,H,D] (positions t - seg_start), HF Llama
 * convention: for i < D/2, freq = theta^(-2i/D); (x_i, x_{i+D/2}) rotated by pos*freq. */
void ad_rope_forward(float *x, const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                     float theta);
/* The inverse rotation applied to a gradient in place. */
void ad_rope_backward(float *dx, const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                      float theta);
/* Rotates one row x[H,D] at position pos (for decoding with a KV cache). */
void ad_rope_one(float *x, size_t H, size_t D, size_t pos, float theta);

/* Causal self-attention. q,k,v,out: [B,T,H*D]; probs: [B,H,T,T] softmax weights
 * saved for backward. Scale 1/sqrt(D). Token t attends to keys seg_start[t]..t:
 * a row holding several sequences (seg_start non-NULL) is cut into them, and
 * the sequence [a, e) of a row keeps its [e-a, e-a] weights (row t-a: keys
 * a..t, zero beyond) at offset a*T of its head's block; the rest of the block
 * is not written. No score is computed between two sequences of a row.
 *
 * Without probs (probs == NULL) nothing of size T^2 per head is kept: the
 * forward puts each head's weights in a per-thread buffer of `work`, and the
 * backward recomputes them there, head by head, with the same code, so the
 * gradients are bit-identical to the stored path's; the price is one more
 * attention forward per backward. Memory: work->threads x
 * ad_attention_work_floats(T, H*D) floats in all, instead of B*H*T*T per layer.
 * work is ignored when probs is given. */
typedef struct ad_attention_work {
    float *buf;     /* threads x ad_attention_work_floats(T, H*D) floats */
    size_t threads; /* the OpenMP threads the kernel runs with (each owns a slice) */
} ad_attention_work;
size_t ad_attention_work_floats(size_t T, size_t C);
void ad_attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                          const int32_t *seg_start, size_t B, size_t T, size_t H, size_t D,
                          const ad_attention_work *work);
void ad_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                           const float *q, const float *k, const float *v, const int32_t *seg_start,
                           size_t B, size_t T, size_t H, size_t D, const ad_attention_work *work);

/* One decoding step: for each of nb rows, query q[nb,H*D] attends over that row's
 * first len[i] cached keys/values; k_cache/v_cache rows are laid out
 * [row][t][H*D] with row stride `row_stride` floats. out: [nb, H*D]. */
void ad_attention_decode(float *out, const float *q, const float *k_cache, const float *v_cache,
                         const size_t *len, size_t nb, size_t row_stride, size_t H, size_t D);
/* The same for query rows that name their cache row: row i attends over the
 * first len[i] keys/values of cache row slot[i] (slot NULL: row i). Several
 * rows may share a cache row, e.g. the positions of one prompt in a prefill. */
void ad_attention_decode_slots(float *out, const float *q, const float *k_cache,
                               const float *v_cache, const size_t *slot, const size_t *len,
                               size_t nb, size_t row_stride, size_t H, size_t D);
/* ad_attention_decode_slots over keys and values cached in bf16 (half the
 * bytes to read; row_stride counts values): the bits it gives on the floats
 * they widen to. All else is fp32. */
void ad_attention_decode_slots_bf16(float *out, const float *q, const uint16_t *k_cache,
                                    const uint16_t *v_cache, const size_t *slot, const size_t *len,
                                    size_t nb, size_t row_stride, size_t H, size_t D);
/* dst[i] = src[i] rounded to bf16 (nearest even), n values. */
void ad_bf16_from_floats(uint16_t *dst, const float *src, size_t n);

/* h[N,F] = silu(gate) * up */
void ad_swiglu_forward(float *h, const float *gate, const float *up, size_t N, size_t F);
/* dgate, dup [N,F] are overwritten (not accumulated) from dh. */
void ad_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate,
                        const float *up, size_t N, size_t F);

/* Row-wise log-softmax cross-entropy. logits[N,V]; targets[N] (-1 = skip).
 * Writes logp_target[N] (0 where skipped). Returns nothing; losses are -logp. */
void ad_xent_forward(float *logp_target, const float *logits, const int32_t *targets, size_t N,
                     size_t V);
/* dlogits[N,V] = weight[n] * (softmax(logits) - onehot(target)) for rows with a
 * target, 0 elsewhere. This is d(-sum weight*logp)/dlogits. Overwrites dlogits. */
void ad_xent_backward(float *dlogits, const float *logits, const int32_t *targets,
                      const float *weights, size_t N, size_t V);

/* Sum of squares of x[n] in double, deterministic (for global-norm clipping). */
double ad_sum_squares(const float *x, size_t n);
/* x[n] *= s */
void ad_scale(float *x, size_t n, float s);

/* One AdamW step on n parameters (bias-corrected with step t >= 1):
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p). */
void ad_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                     float b2, float eps, float wd, uint64_t t);
/* The same update over n_seg segments of one flat buffer in a single pass:
 * segment i covers [off[i], off[i] + len[i]) and uses weight decay wd[i]
 * (0 for norm weights). */
void ad_adamw_update_segments(float *p, const float *g, float *m, float *v, const size_t *off,
                              const size_t *len, const float *wd, size_t n_seg, float lr, float b1,
                              float b2, float eps, uint64_t t);

#endif
