/* kernels_gemm_avx512.c: single-precision matrix product for AVX-512 CPUs.
 *
 * Why it exists: OpenBLAS may be pinned to an AVX2 kernel (OPENBLAS_CORETYPE),
 * which leaves half of an AVX-512 machine's floating-point width unused, and
 * the model's products are few and large (N = B*T rows), so a plain blocked
 * product reaches most of the peak.
 *
 * The method is the classic Goto/BLIS one: C is computed in MR x NR register
 * tiles from packed panels of A (MR rows, k-major) and B (NR columns, k-major);
 * K is cut in KC slices so a B micro-panel stays in L1 while the A block (MC
 * rows) streams from L2. The threads of one OpenMP region pack B slices
 * together and split the rows of C; every element of C is summed over k in one
 * fixed order by one thread, whatever the thread count.
 * Not here: the choice between this and OpenBLAS (kernels.c). */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

#define MR 12
#define NR 32
#define KC 256
#define MC (MR * 16)
#define NC 3072

/* Register tile: C[mr, nr] (+)= Ap[kc][MR]^T . Bp[kc][NR]; the packed panels
 * are zero beyond mr rows / nr columns, so only the stores need masks. */
AD_AVX512 static void micro_kernel(size_t kc, const float *restrict a, const float *restrict b,
                                   float *c, size_t ldc, size_t mr, size_t nr, int accumulate) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
        c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
        b += NR;
    }
    __mmask16 m0 = ad_tail_mask(nr), m1 = nr > 16 ? ad_tail_mask(nr - 16) : 0;
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if ((size_t)i >= mr) break;
        float *r = c + (size_t)i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, r));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, r + 16));
        }
        _mm512_mask_storeu_ps(r, m0, c0[i]);
        _mm512_mask_storeu_ps(r + 16, m1, c1[i]);
    }
}

/* Packs B(k0..k0+kc, j0..j0+nc) into NR-column panels [kc][NR], panels
 * [p0, p1) only (the caller's share), zero beyond column N. */
AD_AVX512 static void pack_b(float *Bp, const float *B, size_t brs, size_t bcs, size_t k0,
                             size_t kc, size_t j0, size_t N, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        float *dst = Bp + p * kc * NR;
        size_t j = j0 + p * NR, nr = N - j < NR ? N - j : NR;
        if (bcs == 1) {
            __mmask16 m0 = ad_tail_mask(nr), m1 = nr > 16 ? ad_tail_mask(nr - 16) : 0;
            for (size_t k = 0; k < kc; k++) {
                const float *src = B + (k0 + k) * brs + j;
                _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else {
            if (nr < NR) memset(dst, 0, kc * NR * sizeof(float));
            for (size_t jj = 0; jj < nr; jj++) {
                const float *src = B + (j + jj) * bcs + k0 * brs;
                for (size_t k = 0; k < kc; k++)
                    dst[k * NR + jj] = src[k * brs];
            }
        }
    }
}

/* Packs A(i0..i0+mc, k0..k0+kc) into MR-row panels [kc][MR], zero beyond mc. */
AD_AVX512 static void pack_a(float *Ap, const float *A, size_t ars, size_t acs, size_t i0,
                             size_t mc, size_t k0, size_t kc) {
    for (size_t p = 0; p * MR < mc; p++) {
        float *dst = Ap + p * kc * MR;
        size_t i = i0 + p * MR, mr = mc - p * MR < MR ? mc - p * MR : MR;
        if (ars == 1) {
            __mmask16 m = ad_tail_mask(mr);
            for (size_t k = 0; k < kc; k++) {
                __m512 x = _mm512_maskz_loadu_ps(m, A + i + (k0 + k) * acs);
                _mm512_mask_storeu_ps(dst + k * MR, (__mmask16)((1u << MR) - 1u), x);
            }
        } else {
            if (mr < MR) memset(dst, 0, kc * MR * sizeof(float));
            for (size_t ii = 0; ii < mr; ii++) {
                const float *src = A + (i + ii) * ars + k0 * acs;
                for (size_t k = 0; k < kc; k++)
                    dst[k * MR + ii] = src[k * acs];
            }
        }
    }
}

/* One thread's part of the product for one (jc, pc) slice: rows [m0, m1). */
AD_AVX512 static void compute_rows(float *Ap, const float *Bp, const float *A, size_t ars,
                                   size_t acs, float *C, size_t ldc, size_t m0, size_t m1,
                                   size_t pc, size_t kc, size_t jc, size_t ncur, int accumulate) {
    size_t npan = (ncur + NR - 1) / NR;
    for (size_t ic = m0; ic < m1; ic += MC) {
        size_t mc = m1 - ic < MC ? m1 - ic : MC;
        pack_a(Ap, A, ars, acs, ic, mc, pc, kc);
        for (size_t jr = 0; jr < npan; jr++) {
            size_t nr = ncur - jr * NR < NR ? ncur - jr * NR : NR;
            for (size_t ir = 0; ir * MR < mc; ir++) {
                size_t mr = mc - ir * MR < MR ? mc - ir * MR : MR;
                micro_kernel(kc, Ap + ir * MR * kc, Bp + jr * NR * kc,
                             C + (ic + ir * MR) * ldc + jc + jr * NR, ldc, mr, nr, accumulate);
            }
        }
    }
}

int ad_gemm_avx512(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                   const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate) {
    if (M == 0 || N == 0) return 0;
    if (K == 0) {
        if (!accumulate)
            for (size_t i = 0; i < M; i++)
                memset(C + i * ldc, 0, N * sizeof(float));
        return 0;
    }
    size_t panels = (M + MR - 1) / MR;
    size_t nt = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    if (nt > panels) nt = panels;
    size_t nc = (N + NR - 1) / NR * NR;
    if (nc > NC) nc = NC;
    size_t kcmax = K < KC ? K : KC;
    float *Bp = aligned_alloc(64, kcmax * nc * sizeof(float));
    float *Ap = aligned_alloc(64, nt * MC * kcmax * sizeof(float));
    if (!Bp || !Ap) {
        free(Bp);
        free(Ap);
        return -1;
    }
    size_t per = (panels + nt - 1) / nt * MR;
#pragma omp parallel num_threads((int)nt)
    {
        size_t tid = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        size_t m0 = tid * per < M ? tid * per : M, m1 = m0 + per < M ? m0 + per : M;
        if (nth != nt) m0 = 0, m1 = tid == 0 ? M : 0; /* fewer threads than asked */
        float *myA = Ap + tid * MC * kcmax;
        for (size_t jc = 0; jc < N; jc += nc) {
            size_t ncur = N - jc < nc ? N - jc : nc, npan = (ncur + NR - 1) / NR;
            for (size_t pc = 0; pc < K; pc += KC) {
                size_t kc = K - pc < KC ? K - pc : KC;
#pragma omp barrier
                pack_b(Bp, B, brs, bcs, pc, kc, jc, N, npan * tid / nth, npan * (tid + 1) / nth);
#pragma omp barrier
                compute_rows(myA, Bp, A, ars, acs, C, ldc, m0, m1, pc, kc, jc, ncur,
                             accumulate || pc > 0);
            }
        }
    }
    free(Bp);
    free(Ap);
    return 0;
}
