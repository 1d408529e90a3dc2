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
 * rows) streams from L2. The threads of one OpenMP region pack a block of B's
 * columns (all of K) together, meet at one barrier, then split the rows of C; every element of C is
 * summed over k in one fixed order by one thread, whatever the thread count. Not here: the choice
 * between this and OpenBLAS (kernels.c). */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

#define MR 12
#define NR 32
#define KC 384
#define MC (MR * 16)

/* Writes (or adds) the first mr rows and nr columns of a register tile to C. */
AD_AVX512 static inline __attribute__((always_inline)) void
store_tile(float *c, size_t ldc, __m512 *c0, __m512 *c1, size_t mr, size_t nr, int accumulate) {
    __mmask16 m0 = ad_tail_mask(nr), m1 = nr > 16 ? ad_tail_mask(nr - 16) : 0;
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if ((size_t)i >= mr) break;
        float *row = c + (size_t)i * ldc;
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, row));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, row + 16));
        }
        _mm512_mask_storeu_ps(row, m0, c0[i]);
        _mm512_mask_storeu_ps(row + 16, m1, c1[i]);
    }
}

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
    store_tile(c, ldc, c0, c1, mr, nr, accumulate);
}

/* The same tile with A read in place: row i of the tile is a + i*lda,
 * contiguous along k (row-major activations), so A needs no packing. Rows at
 * and beyond mr read row 0 again; their sums are never stored. */
AD_AVX512 static void micro_kernel_direct(size_t kc, const float *a, size_t lda,
                                          const float *restrict b, float *c, size_t ldc, size_t mr,
                                          size_t nr, int accumulate) {
    __m512 c0[MR], c1[MR];
    const float *r[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        c0[i] = c1[i] = _mm512_setzero_ps();
        r[i] = a + ((size_t)i < mr ? (size_t)i : 0) * lda;
    }
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(r[i][k]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
        b += NR;
    }
    store_tile(c, ldc, c0, c1, mr, nr, accumulate);
}

/* Transposes the 16x16 block held in r[0..16) in place (r[i][j] -> r[j][i]):
 * pairs, then quads within 128-bit lanes, then the lanes themselves. */
AD_AVX512 static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    for (int q = 0; q < 4; q++) {
        u[4 * q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
    /* u[4q + c] holds, in 128-bit lane L, rows 4q..4q+3 of column 4L + c */
    for (int c = 0; c < 4; c++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 y0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

/* dst[k * ld_dst + i] = src_i[k] for k < kc and i < n (n <= 16 rows src_i =
 * src + i * lds, contiguous along k), zero for n <= i < 16; `lanes` masks
 * what is stored of each transposed row. */
AD_AVX512 static void pack_transposed(float *dst, size_t ld_dst, __mmask16 lanes, const float *src,
                                      size_t lds, size_t n, size_t kc) {
    __m512 r[16];
    for (size_t k0 = 0; k0 < kc; k0 += 16) {
        size_t kk = kc - k0 < 16 ? kc - k0 : 16;
        __mmask16 m = ad_tail_mask(kk);
        for (size_t i = 0; i < 16; i++)
            r[i] = i < n ? _mm512_maskz_loadu_ps(m, src + i * lds + k0) : _mm512_setzero_ps();
        transpose16(r);
        for (size_t k = 0; k < kk; k++)
            _mm512_mask_storeu_ps(dst + (k0 + k) * ld_dst, lanes, r[k]);
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
        } else if (brs == 1) {
            /* columns of B are contiguous along k (W rows): transpose 16 at a time */
            const float *src = B + j * bcs + k0;
            pack_transposed(dst, NR, 0xFFFF, src, bcs, nr < 16 ? nr : 16, kc);
            pack_transposed(dst + 16, NR, 0xFFFF, src + 16 * bcs, bcs, nr > 16 ? nr - 16 : 0, kc);
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
        } else if (acs == 1) {
            /* rows of A are contiguous along k: transpose */
            pack_transposed(dst, MR, (__mmask16)((1u << MR) - 1u), A + i * ars + k0, ars, mr, kc);
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

/* One thread's part of the product for one (jc, pc) slice: rows [m0, m1).
 * A with contiguous rows (acs == 1) is read in place; otherwise packed. */
AD_AVX512 static void compute_rows(float *Ap, const float *Bp, const float *A, size_t ars,
                                   size_t acs, float *C, size_t ldc, size_t m0, size_t m1,
                                   size_t pc, size_t kc, size_t jc, size_t ncur, int accumulate) {
    size_t npan = (ncur + NR - 1) / NR;
    for (size_t ic = m0; ic < m1; ic += MC) {
        size_t mc = m1 - ic < MC ? m1 - ic : MC;
        if (acs != 1) pack_a(Ap, A, ars, acs, ic, mc, pc, kc);
        for (size_t jr = 0; jr < npan; jr++) {
            size_t nr = ncur - jr * NR < NR ? ncur - jr * NR : NR;
            for (size_t ir = 0; ir * MR < mc; ir++) {
                size_t mr = mc - ir * MR < MR ? mc - ir * MR : MR;
                float *ct = C + (ic + ir * MR) * ldc + jc + jr * NR;
                const float *bt = Bp + jr * NR * kc;
                if (acs == 1)
                    micro_kernel_direct(kc, A + (ic + ir * MR) * ars + pc, ars, bt, ct, ldc, mr, nr,
                                        accumulate);
                else
                    micro_kernel(kc, Ap + ir * MR * kc, bt, ct, ldc, mr, nr, accumulate);
            }
        }
    }
}

/* Most floats of packed B held at once (16 MB): bounds the column block nc. */
#define BPACK_MAX ((size_t)4 << 20)

/* The operands of one product, as ad_gemm_avx512 takes them. */
typedef struct gemm_args {
    size_t M, N, K;
    const float *A, *B;
    size_t ars, acs, brs, bcs;
    float *C;
    size_t ldc;
    int accumulate;
} gemm_args;

/* Packs the panels [p0, p1) of every K slice of the column block starting at
 * jc (npan panels); slice pc starts at Bp + pc * npan * NR. Work item w is
 * (slice w / npan, panel w % npan). */
AD_AVX512 static void pack_b_block(float *Bp, const gemm_args *g, size_t jc, size_t npan, size_t w0,
                                   size_t w1) {
    for (size_t w = w0; w < w1; w++) {
        size_t pc = w / npan * KC, p = w % npan;
        size_t kc = g->K - pc < KC ? g->K - pc : KC;
        pack_b(Bp + pc * npan * NR, g->B, g->brs, g->bcs, pc, kc, jc, g->N, p, p + 1);
    }
}

/* Rows [m0, m1) of the column block [jc, jc + ncur) from packed B. */
AD_AVX512 static void compute_block(float *Ap, const float *Bp, const gemm_args *g, size_t m0,
                                    size_t m1, size_t jc, size_t ncur) {
    size_t npan = (ncur + NR - 1) / NR;
    for (size_t pc = 0; pc < g->K; pc += KC) {
        size_t kc = g->K - pc < KC ? g->K - pc : KC;
        compute_rows(Ap, Bp + pc * npan * NR, g->A, g->ars, g->acs, g->C, g->ldc, m0, m1, pc, kc,
                     jc, ncur, g->accumulate || pc > 0);
    }
}

/* Work is handed out dynamically in these units (rows, or column panels), so
 * a preempted thread does not hold the others up; which thread computes a tile
 * never changes its value. */
#define ROW_UNIT (8 * MR)
#define COL_UNIT 4

/* Many rows: the threads pack each column block of B together, then share out
 * blocks of ROW_UNIT rows. */
static void gemm_split_rows(const gemm_args *g, float *Bp, float *Ap, size_t nt, size_t nc,
                            size_t kcmax) {
    size_t nslices = (g->K + KC - 1) / KC, nblk = (g->M + ROW_UNIT - 1) / ROW_UNIT;
#pragma omp parallel num_threads((int)nt)
    {
        float *myA = Ap + (size_t)omp_get_thread_num() * MC * kcmax;
        for (size_t jc = 0; jc < g->N; jc += nc) {
            size_t ncur = g->N - jc < nc ? g->N - jc : nc, npan = (ncur + NR - 1) / NR;
#pragma omp for schedule(dynamic)
            for (size_t w = 0; w < nslices * npan; w++)
                pack_b_block(Bp, g, jc, npan, w, w + 1);
#pragma omp for schedule(dynamic)
            for (size_t b = 0; b < nblk; b++) {
                size_t m1 = (b + 1) * ROW_UNIT < g->M ? (b + 1) * ROW_UNIT : g->M;
                compute_block(myA, Bp, g, b * ROW_UNIT, m1, jc, ncur);
            }
        }
    }
}

/* Few rows (decoding, narrow weight gradients): units of COL_UNIT column
 * panels, each packed by the thread that computes it; no barrier at all. */
static void gemm_split_cols(const gemm_args *g, float *Bp, float *Ap, size_t nt, size_t kcmax) {
    size_t panels = (g->N + NR - 1) / NR, nunits = (panels + COL_UNIT - 1) / COL_UNIT;
    size_t nslices = (g->K + KC - 1) / KC;
#pragma omp parallel num_threads((int)nt)
    {
        size_t tid = (size_t)omp_get_thread_num();
        float *myB = Bp + tid * g->K * COL_UNIT * NR, *myA = Ap + tid * MC * kcmax;
#pragma omp for schedule(dynamic)
        for (size_t u = 0; u < nunits; u++) {
            size_t jc = u * COL_UNIT * NR,
                   ncur = g->N - jc < COL_UNIT * NR ? g->N - jc : COL_UNIT * NR;
            size_t npan = (ncur + NR - 1) / NR;
            pack_b_block(myB, g, jc, npan, 0, nslices * npan);
            compute_block(myA, myB, g, 0, g->M, jc, ncur);
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
    gemm_args g = {M, N, K, A, B, ars, acs, brs, bcs, C, ldc, accumulate};
    size_t nt = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    size_t row_panels = (M + MR - 1) / MR, col_panels = (N + NR - 1) / NR;
    int by_rows = row_panels >= 2 * nt || col_panels < 2 * nt;
    size_t units = by_rows ? row_panels : (col_panels + COL_UNIT - 1) / COL_UNIT;
    if (nt > units) nt = units;
    /* Columns per block: all of them when packed B (K x nc) fits in BPACK_MAX. */
    size_t nc = col_panels * NR, cap = BPACK_MAX / K / NR * NR;
    if (cap < NR) cap = NR;
    if (nc > cap) nc = cap;
    size_t kcmax = K < KC ? K : KC;
    float *Bp = ad_scratch_get(AD_SCRATCH_GEMM_B, by_rows ? K * nc : nt * K * COL_UNIT * NR);
    float *Ap = ad_scratch_get(AD_SCRATCH_GEMM_A, nt * MC * kcmax);
    if (!Bp || !Ap) {
        ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
        ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
        return -1;
    }
    if (by_rows)
        gemm_split_rows(&g, Bp, Ap, nt, nc, kcmax);
    else
        gemm_split_cols(&g, Bp, Ap, nt, kcmax);
    ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
    ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
    return 0;
}
