/* kernels_internal.h: what the kernel files share among themselves (and with
 * their tests): the run-time instruction-set switch, the AVX-512 variants of
 * the kernels, and the AVX-512 matrix product. Not a public header: the model
 * code uses kernels.h only.
 *
 * Every kernel in kernels.h has a portable C body (compiled for AVX2/FMA by
 * the build flags) and, where it pays, an AVX-512 body compiled with a target
 * attribute; ad_kernels_use_avx512() picks one at run time. */
#ifndef AD_MODEL_KERNELS_INTERNAL_H
#define AD_MODEL_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 1 when the AVX-512 bodies are in use: the CPU has AVX-512F/DQ/BW/VL and no
 * override is active. This function can't fail. */
int ad_kernels_use_avx512(void);

/* Forces the portable bodies (on = 0) or, when the CPU has them, the AVX-512
 * bodies (on = 1); -1 restores detection. Returns the previous setting. For
 * tests that compare the two paths; not thread-safe against running kernels. */
int ad_kernels_force_avx512(int on);

/* Reusable scratch buffers (kernels_scratch.c), one per use so that buffers
 * needed at the same time never share a slot. */
enum {
    AD_SCRATCH_GEMM_A,
    AD_SCRATCH_GEMM_B,
    AD_SCRATCH_GEMM_PARTS,
    AD_SCRATCH_ATTENTION,
    AD_SCRATCH_ROWSUM,
    AD_SCRATCH_MLP,
    AD_SCRATCH_SLOTS
};
/* A 64-byte-aligned buffer of at least n floats, contents undefined; NULL when
 * out of memory. Give it back with ad_scratch_put(slot, p). Thread-safe. */
void *ad_scratch_get(int slot, size_t n);
void ad_scratch_put(int slot, void *p);

/* Rows per block of the column-sum reductions (RMSNorm weight gradients):
 * fixed, so reductions do not depend on the thread count. */
#define AD_ROW_BLOCK 64

/* Row-wise and element-wise kernels on at most this many floats run on the
 * calling thread: waking the team costs more than such work (decoding a small
 * model calls them on 64 rows of 96 floats, a few microseconds of work). Which
 * thread computes an element never changes its bits. */
#define AD_SERIAL_MAX ((size_t)16384)

/* C[M,N] (+)= A[M,K] B[K,N] with A(i,k) = A[i*ars + k*acs], B(k,j) = B[k*brs +
 * j*bcs], C row-major with leading dimension ldc; accumulate = 0 overwrites.
 * AVX-512 only (call when ad_kernels_use_avx512()). Each element of C is summed
 * over k in a fixed order by one thread, so the result does not depend on the
 * thread count. Returns 0, or -1 when scratch memory could not be allocated
 * (C is then unchanged). */
int ad_gemm_avx512(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                   const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate);

/* B packed once for many products with ad_gemm_avx512_packed: Bp holds
 * ad_gemm_avx512_packed_size(N, K) floats, 64-byte aligned, and gets B(k, j) =
 * B[k*brs + j*bcs] for k < K, j < N in the tiles' panel layout.
 * ad_gemm_avx512_packed is then ad_gemm_avx512 with A's rows contiguous (lda
 * floats apart), the same bits. AVX-512 only; same return value. */
size_t ad_gemm_avx512_packed_size(size_t N, size_t K);
void ad_gemm_avx512_pack_b(float *Bp, size_t N, size_t K, const float *B, size_t brs, size_t bcs);
int ad_gemm_avx512_packed(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *Bp,
                          float *C, size_t ldc, int accumulate);

/* ad_gemm_avx512's product with both operands rounded to bf16 (nearest even)
 * and every sum in fp32 (kernels_gemm_bf16_avx512.c): the same arguments,
 * return value and thread-count independence, not the same bits. Call only
 * when ad_kernels_have_bf16() (kernels.h). */
int ad_gemm_bf16(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                 const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate);
/* Work on rows of C once they are final, inside the product's parallel
 * region: fn(ctx, m0, m1) for rows [m0, m1), each row exactly once, by the
 * thread that just summed those rows when its unit holds all of their columns
 * (while they are still in its cache), else after the whole product. fn must
 * give each row the same bits whatever rows share its call. */
typedef struct ad_gemm_rows_done {
    void (*fn)(void *ctx, size_t m0, size_t m1);
    void *ctx;
} ad_gemm_rows_done;
/* ad_gemm_bf16 over an A and a C that come in parts, so that products sharing
 * an operand run as one (q/k/v, gate/up): A with contiguous rows is cut along
 * k, A(i, k) = A[k / a_part][i * ars + k % a_part] (a_part a multiple of 32);
 * A with contiguous columns along i, A(i, k) = A[i / a_part][i % a_part + k *
 * acs] (a multiple of 16); C along j, C(i, j) = C[j / c_part][i * ldc + j %
 * c_part] (a multiple of 32). A part as large as the whole takes any size.
 * Each element is summed as ad_gemm_bf16 sums it. -1 also for parts of other
 * sizes (nothing done, done->fn not called). done may be NULL. */
int ad_gemm_bf16_parts(size_t M, size_t N, size_t K, const float *const *A, size_t a_part,
                       size_t ars, size_t acs, const float *B, size_t brs, size_t bcs,
                       float *const *C, size_t c_part, size_t ldc, int accumulate,
                       const ad_gemm_rows_done *done);

/* ad_gemm_bf16 with A already rounded to bf16, A(i, k) = A[i * ars + k * acs]:
 * the bits of ad_gemm_bf16 on the floats that round to it. Rows (acs == 1)
 * are used in place, so ars and K must be even; columns (ars == 1) take any
 * size. -1 for other layouts (nothing done). */
int ad_gemm_bf16_a16(size_t M, size_t N, size_t K, const uint16_t *A, size_t ars, size_t acs,
                     const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate);
/* ad_gemm_bf16 with B already rounded to bf16, B(k, j) = B[k * brs + j * bcs]:
 * rows along j only (bcs == 1), else -1 (nothing done). */
int ad_gemm_bf16_b16(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                     const uint16_t *B, size_t brs, size_t bcs, float *C, size_t ldc,
                     int accumulate);
/* B packed once, rounded to bf16, for many products (ad_gemm_avx512_pack_b's
 * counterpart): Bp holds ad_gemm_bf16_packed_words(N, K) words, 64-byte
 * aligned, and gets B(k, j) = B[k*brs + j*bcs]. ad_gemm_bf16_packed is then
 * ad_gemm_bf16 with A's rows contiguous (lda floats apart), the same bits,
 * with C in parts as ad_gemm_bf16_parts takes it (c_part a multiple of 32, or
 * as large as N). */
size_t ad_gemm_bf16_packed_words(size_t N, size_t K);
void ad_gemm_bf16_pack_b(uint32_t *Bp, size_t N, size_t K, const float *B, size_t brs, size_t bcs);
int ad_gemm_bf16_packed(size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const uint32_t *Bp, float *const *C, size_t c_part, size_t ldc,
                        int accumulate, const ad_gemm_rows_done *done);
/* ad_gemm_bf16_packed with A's rows already in bf16, used in place (lda and K
 * even, else -1): the bits of the floats that round to them. Needs no scratch. */
int ad_gemm_bf16_packed_a16(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
                            const uint32_t *Bp, float *C, size_t ldc, int accumulate);
/* n bf16 values widened to the floats they stand for (exactly: a bf16 value
 * is the high half of its float). */
static inline void ad_bf16_widen(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, sizeof u);
    }
}
/* ad_bf16_from_floats by AVX512-BF16's conversion (the products' rounding). */
void ad_bf16_from_floats_avx512(uint16_t *dst, const float *src, size_t n);
/* SwiGLU and its backward (kernels.h) on n elements with bf16 results, the
 * roundings of what the fp32 bodies below compute. */
void ad_swiglu_forward_bf16(uint16_t *h, const float *gate, const float *up, size_t n);
void ad_swiglu_backward_bf16(uint16_t *dgate, uint16_t *dup, const float *dh, const float *gate,
                             const float *up, size_t n);

/* AVX-512 bodies of the kernels.h functions of the same names (same contracts). */
void ad_rmsnorm_forward_avx512(float *out, float *rstd, const float *in, const float *w, size_t N,
                               size_t C, float eps);
void ad_rmsnorm_backward_rows_avx512(float *din, float *dw_part, const float *dout, const float *in,
                                     const float *w, const float *rstd, size_t n, size_t C);
void ad_swiglu_forward_avx512(float *h, const float *gate, const float *up, size_t n);
void ad_swiglu_backward_avx512(float *dgate, float *dup, const float *dh, const float *gate,
                               const float *up, size_t n);
void ad_xent_row_avx512(float *logp_target, float *dlogits, const float *logits, int32_t target,
                        float weight, size_t V);
double ad_sum_squares_avx512(const float *x, size_t n);
/* AdamW on n elements with the step's constants precomputed by ad_adamw_update:
 * step = lr / bc1, decay = 1 - lr wd, one_b = 1 - b, bc2_sqrt = sqrt(bc2). */
void ad_adamw_update_avx512(float *p, const float *g, float *m, float *v, size_t n, float step,
                            float b1, float b2, float eps, float decay, float one_b1, float one_b2,
                            float bc2_sqrt);

/* AVX-512 attention for one (batch row, head) (kernels_avx512_attention.c):
 * rows of q, k, v, out (and their gradients) are `ld` floats apart; P is the
 * sequence's [T, T] weights (one sequence: the caller cuts packed rows);
 * scratch holds ad_attention_scratch(T, D) floats, 64-byte aligned. Same
 * contracts as ad_attention_*. */
#define AD_ATT_CHUNK 64 /* query rows per backward chunk */
static inline size_t ad_attention_scratch(size_t T, size_t D) {
    size_t Tp = (T + 15) & ~(size_t)15;
    return (D + 4 + AD_ATT_CHUNK) * Tp; /* transposed K or V, 4 score rows, dS chunk */
}
void ad_attention_head_forward_avx512(float *out, float *P, const float *q, const float *k,
                                      const float *v, size_t T, size_t D, size_t ld,
                                      float *scratch);
/* One decoding query against n cached keys (rows ld floats apart); out [D]. */
void ad_attention_head_decode_avx512(float *out, const float *q, const float *kc, const float *vc,
                                     size_t n, size_t D, size_t ld);
/* One decoding query row against n cached keys, all H <= 16 heads of head
 * size D >= 16 at once (rows of q's cache ld floats apart); out [H*D]. The
 * same bits as ad_attention_head_decode_avx512 on each head
 * (kernels_avx512_decode.c). */
void ad_attention_row_decode_avx512(float *out, const float *q, const float *kc, const float *vc,
                                    size_t n, size_t H, size_t D, size_t ld);
/* The same over keys and values cached in bf16: the bits of the fp32 body on
 * the floats they widen to. nk and nv: the cache of the row to come next
 * (nn positions), fetched into L2 while this row computes (0: none). */
void ad_attention_row_decode_bf16_avx512(float *out, const float *q, const uint16_t *kc,
                                         const uint16_t *vc, size_t n, size_t H, size_t D,
                                         size_t ld, const uint16_t *nk, const uint16_t *nv,
                                         size_t nn);
void ad_attention_head_backward_avx512(float *dq, float *dk, float *dv, const float *dout,
                                       const float *P, const float *q, const float *k,
                                       const float *v, size_t T, size_t D, size_t ld,
                                       float *scratch);

#endif
