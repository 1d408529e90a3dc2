/* kernels_gemm_bf16_avx512.c: matrix product with bf16 operands and fp32
 * accumulation, for CPUs with AVX512-BF16 (AMD Zen 4/5, Intel Cooper Lake and
 * Sapphire Rapids).
 *
 * Why it exists: VDPBF16PS multiplies 32 pairs of bf16 values and adds them to
 * 16 fp32 sums per instruction, twice the multiplications of an fp32 FMA at
 * the same rate (measured 2.0x on the Zen 5 VMs), and the model's small shapes
 * are bound by their products. It serves mixed-precision training only (off by
 * default, see kernels.h): the operands are rounded to bf16 (8 bits of
 * mantissa), every sum stays fp32, and the weights the optimizer updates stay
 * fp32.
 *
 * Both operands are converted once per product, with round-to-nearest-even,
 * into pairs of consecutive k (the low half holds the even k, as VDPBF16PS
 * pairs them):
 *   - A with contiguous rows (activations; the output gradient in the input
 *     gradient) into rows of K/2 pairs;
 *   - A with contiguous columns (the output gradient, transposed, in the weight
 *     gradient) into [K/2][M] pairs, so a tile's rows are adjacent;
 *   - the larger operand, when it has blocks enough (48 rows of A, 64 columns
 *     of B), a block at a time by the thread whose unit of work it is, into a
 *     buffer of its own, so its pairs are used from cache instead of going out
 *     to memory and back (A's rows and columns each about 2-3% of a bf16
 *     training step, flagship and 14M; B's columns about 1% at 14M);
 *   - B into panels of NR columns, [K/2][NR] pairs each, from rows along j
 *     (weights in the input gradient, activations in the weight gradient) or
 *     from columns along k (weights in the forward, by 16x16 transposes).
 * A product then runs MR x NR register tiles over slices of k, in units of
 * rows and columns handed out dynamically; every element of C is summed over k
 * in one fixed order by one thread, so the bits do not depend on the thread
 * count. Zero pairs pad odd K, and zero columns pad the last panel. On
 * weights packed beforehand and few rows (decoding), the weights stream from
 * memory: each tile then prefetches its share of the next panel while it
 * computes (AD_TILE_STEPS), so no panel's first tile waits on memory. */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

#define AD_BF16 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")))

#define MR 12
#define NR 32
#define KC2 192                       /* pairs of k per slice: a B panel slice is 24 KB */
#define ROW_UNIT 48                   /* rows per unit of work (4 tiles) */
#define COL_UNIT 2                    /* column panels per unit of work */
#define SERIAL_MACS ((size_t)1 << 20) /* products this small run on the calling thread */

/* 16 floats to 16 bf16 in the low halves of 32-bit lanes (round to nearest even). */
AD_BF16 static inline __m512i bf16_lanes(__m512 x) {
    return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x));
}

/* Pairs of two rows of 16 values: lane t = (lo[t], hi[t]). One conversion of
 * both rows (lo in words 0-15, hi in 16-31) and one interleave, in place of a
 * conversion, widening and shift per row: the same rounding. */
AD_BF16 static inline __m512i bf16_pairs(__m512 lo, __m512 hi) {
    const __m512i interleave =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* One float to bf16 with the vector conversion's rounding (scalar paths). */
AD_BF16 static inline uint32_t bf16_one(float x) {
    return (uint32_t)_mm_cvtsi128_si32(_mm512_castsi512_si128(bf16_lanes(_mm512_set1_ps(x))));
}

/* ---- packing ---------------------------------------------------------------------------- */

/* Rows [i0, i1) of A (contiguous along k) into dst[(i - i0) * K2 + k2]. A's
 * columns come in parts of `part` (a multiple of 32 unless there is one part):
 * A(i, k) = A[k / part][i * ars + k % part]. */
AD_BF16 static void pack_a_rows(uint32_t *dst0, const float *const *A, size_t part, size_t ars,
                                size_t K, size_t K2, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) {
        uint32_t *dst = dst0 + (i - i0) * K2;
        const float *src = A[0] + i * ars;
        for (size_t k = 0, next = part; k < K; k += 32, src += 32) {
            if (k == next) { /* the next part begins */
                src = A[k / part] + i * ars;
                next += part;
            }
            if (K - k >= 32) { /* a whole chunk: plain loads and store, faster than masked */
                _mm512_storeu_si512(
                    dst + k / 2,
                    (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + 16), _mm512_loadu_ps(src)));
                continue;
            }
            __mmask16 m0 = ad_tail_mask(K - k), m1 = K - k > 16 ? ad_tail_mask(K - k - 16) : 0;
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + 16),
                                                     _mm512_maskz_loadu_ps(m0, src));
            size_t pairs = (K - k + 1) / 2;
            _mm512_mask_storeu_epi32(dst + k / 2, ad_tail_mask(pairs), v);
        }
    }
}

/* Pairs k2 in [p0, p1) of rows [i0, i0 + ROW_UNIT) of A with contiguous
 * columns into dst[k2 * width + i - i0], zero for rows from M on. A's rows
 * come in parts of `part` (a multiple of 16 unless there is one part):
 * A(i, k) = A[i / part][i % part + k * acs]; i0 is a multiple of ROW_UNIT, so
 * each 16 rows lie in one part. */
AD_BF16 static void pack_a_cols_block(uint32_t *dst, size_t width, const float *const *A,
                                      size_t part, size_t acs, size_t M, size_t K, size_t i0,
                                      size_t p0, size_t p1) {
    enum { G = ROW_UNIT / 16 };
    const float *base[G];
    __mmask16 m[G];
    for (size_t g = 0; g < G; g++) {
        size_t i = i0 + 16 * g;
        m[g] = i < M ? ad_tail_mask(M - i) : 0; /* rows past M read nothing */
        base[g] = i < M ? A[i / part] + i % part : A[0];
    }
    for (size_t k2 = p0; k2 < p1; k2++) {
        int odd_end = 2 * k2 + 1 >= K;
        for (size_t g = 0; g < G; g++) {
            const float *r0 = base[g] + 2 * k2 * acs;
            __m512 lo = _mm512_maskz_loadu_ps(m[g], r0);
            __m512 hi = odd_end ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[g], r0 + acs);
            _mm512_storeu_si512(dst + k2 * width + 16 * g, bf16_pairs(lo, hi));
        }
    }
}

/* pack_a_cols_block for an A already in bf16, A(i, k) = A[i + k * acs]: the
 * same pairs, by interleaving two rows of 16 values. */
AD_BF16 static void pack_a_cols_block16(uint32_t *dst, size_t width, const uint16_t *A, size_t acs,
                                        size_t M, size_t K, size_t i0, size_t p0, size_t p1) {
    enum { G = ROW_UNIT / 16 };
    __mmask16 m[G];
    for (size_t g = 0; g < G; g++) {
        size_t i = i0 + 16 * g;
        m[g] = i < M ? ad_tail_mask(M - i) : 0;
    }
    for (size_t k2 = p0; k2 < p1; k2++) {
        const uint16_t *r0 = A + 2 * k2 * acs + i0;
        int odd_end = 2 * k2 + 1 >= K;
        for (size_t g = 0; g < G; g++) {
            __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m[g], r0 + 16 * g));
            __m512i hi =
                odd_end ? _mm512_setzero_si512()
                        : _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m[g], r0 + acs + 16 * g));
            _mm512_storeu_si512(dst + k2 * width + 16 * g,
                                _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* Pairs k2 in [p0, p1) of all of A with contiguous columns into
 * Ap[k2 * Mp + i] (Mp: M rounded up to ROW_UNIT), zero for M <= i < Mp. */
AD_BF16 static void pack_a_cols(uint32_t *Ap, const float *const *A, size_t part, size_t acs,
                                size_t M, size_t Mp, size_t K, size_t p0, size_t p1) {
    for (size_t i0 = 0; i0 < Mp; i0 += ROW_UNIT)
        pack_a_cols_block(Ap + i0, Mp, A, part, acs, M, K, i0, p0, p1);
}

/* A with other strides into rows (scalar; the model never needs it). */
AD_BF16 static void pack_a_strided(uint32_t *Ap, const float *A, size_t ars, size_t acs, size_t K,
                                   size_t K2, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++)
        for (size_t k2 = 0; k2 < K2; k2++) {
            uint32_t lo = bf16_one(A[i * ars + 2 * k2 * acs]);
            uint32_t hi = 2 * k2 + 1 < K ? bf16_one(A[i * ars + (2 * k2 + 1) * acs]) : 0;
            Ap[i * K2 + k2] = lo | hi << 16;
        }
}

/* Panel p of B into dst ([K2][NR] pairs, zero past column N; 64-byte aligned). */
AD_BF16 static void pack_b_panel(uint32_t *dst, const float *B, size_t brs, size_t bcs, size_t N,
                                 size_t K, size_t K2, size_t p) {
    size_t j = p * NR, nr = N - j < NR ? N - j : NR;
    if (bcs == 1) { /* rows along j: two rows of k make one row of pairs */
        __mmask16 m0 = ad_tail_mask(nr), m1 = nr > 16 ? ad_tail_mask(nr - 16) : 0;
        for (size_t k2 = 0; k2 < K2; k2++) {
            const float *r0 = B + 2 * k2 * brs + j, *r1 = r0 + brs;
            int odd_end = 2 * k2 + 1 >= K;
            for (int h = 0; h < 2; h++) {
                __mmask16 m = h ? m1 : m0;
                __m512 lo = _mm512_maskz_loadu_ps(m, r0 + 16 * h);
                __m512 hi = odd_end ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, r1 + 16 * h);
                _mm512_store_si512(dst + k2 * NR + 16 * h, bf16_pairs(lo, hi));
            }
        }
    } else if (brs == 1) { /* columns along k: pairs are adjacent; transpose 16 x 16 */
        for (size_t h = 0; h < 2; h++)
            for (size_t k2 = 0; k2 < K2; k2 += 16) {
                __m512 r[16];
                size_t k = 2 * k2;
                __mmask16 m0 = ad_tail_mask(K - k), m1 = K - k > 16 ? ad_tail_mask(K - k - 16) : 0;
                for (size_t c = 0; c < 16; c++) {
                    const float *src = B + (j + 16 * h + c) * bcs + k;
                    r[c] = 16 * h + c < nr
                               ? (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + 16),
                                                             _mm512_maskz_loadu_ps(m0, src))
                               : _mm512_setzero_ps();
                }
                ad_transpose16(r);
                for (size_t t = 0; t < 16 && k2 + t < K2; t++)
                    _mm512_store_si512(dst + (k2 + t) * NR + 16 * h, _mm512_castps_si512(r[t]));
            }
    } else {
        memset(dst, 0, K2 * NR * sizeof(uint32_t));
        for (size_t jj = 0; jj < nr; jj++)
            for (size_t k2 = 0; k2 < K2; k2++) {
                uint32_t lo = bf16_one(B[2 * k2 * brs + (j + jj) * bcs]);
                uint32_t hi = 2 * k2 + 1 < K ? bf16_one(B[(2 * k2 + 1) * brs + (j + jj) * bcs]) : 0;
                dst[k2 * NR + jj] = lo | hi << 16;
            }
    }
}

/* pack_b_panel's rows-along-j case for a B already in bf16, B(k, j) =
 * B[k * brs + j]: the same pairs, by interleaving two rows of 16 values. */
AD_BF16 static void pack_b_panel16(uint32_t *dst, const uint16_t *B, size_t brs, size_t N, size_t K,
                                   size_t K2, size_t p) {
    size_t j = p * NR, nr = N - j < NR ? N - j : NR;
    __mmask16 m[2] = {ad_tail_mask(nr), nr > 16 ? ad_tail_mask(nr - 16) : 0};
    for (size_t k2 = 0; k2 < K2; k2++) {
        const uint16_t *r0 = B + 2 * k2 * brs + j, *r1 = r0 + brs;
        int odd_end = 2 * k2 + 1 >= K;
        for (int h = 0; h < 2; h++) {
            __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m[h], r0 + 16 * h));
            __m512i hi = odd_end
                             ? _mm512_setzero_si512()
                             : _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m[h], r1 + 16 * h));
            _mm512_store_si512(dst + k2 * NR + 16 * h,
                               _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* ---- the register tile ------------------------------------------------------------------ */

/* C[mr, nr] (+)= sum over n2 pairs of A(i, k2) . B(k2, j), computing NROW (>=
 * mr) rows. ROWS: A(i, k2) = a[i * ai + k2] (rows past mr read row 0, never
 * stored); otherwise A(i, k2) = a[k2 * ak + i] (padded with zeros). b: one
 * panel slice, [n2][NR] pairs. The first pf_lines steps each prefetch one
 * 64-byte line from pf on into L1 (the next panel, when B streams from memory). */
AD_BF16 static inline __attribute__((always_inline)) void
tile(size_t n2, const uint32_t *a, size_t ai, size_t ak, const uint32_t *b, float *c, size_t ldc,
     size_t mr, size_t nr, int accumulate, const char *pf, size_t pf_lines, const int ROWS,
     const int NROW, const int PF) {
    __m512 c0[MR], c1[MR];
    const uint32_t *r[MR];
#pragma GCC unroll 12
    for (int i = 0; i < NROW; i++) {
        c0[i] = c1[i] = _mm512_setzero_ps();
        r[i] = a + ((size_t)i < mr ? (size_t)i : 0) * ai;
    }
#define TILE_K2                                                                                    \
    do {                                                                                           \
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);    \
        _Pragma("GCC unroll 12") for (int i = 0; i < NROW; i++) {                                  \
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)(ROWS ? r[i][k2] : a[i]));              \
            c0[i] = _mm512_dpbf16_ps(c0[i], av, b0);                                               \
            c1[i] = _mm512_dpbf16_ps(c1[i], av, b1);                                               \
        }                                                                                          \
        if (!ROWS) a += ak;                                                                        \
        b += NR;                                                                                   \
    } while (0)
    AD_TILE_STEPS(TILE_K2, k2, n2, PF, pf, pf_lines);
#undef TILE_K2
    ad_store_tile(c, ldc, c0, c1, mr, nr, accumulate, NROW);
}

/* The fewest computed rows (12, 8 or 4) that cover mr. */
AD_BF16 static inline __attribute__((always_inline)) void
tile_fit(size_t n2, const uint32_t *a, size_t ai, size_t ak, const uint32_t *b, float *c,
         size_t ldc, size_t mr, size_t nr, int accumulate, const char *pf, size_t pf_lines,
         const int ROWS) {
#define TILE(NROW, PF)                                                                             \
    tile(n2, a, ai, ak, b, c, ldc, mr, nr, accumulate, pf, pf_lines, ROWS, NROW, PF)
    if (mr > 8)
        pf_lines ? TILE(MR, 1) : TILE(MR, 0);
    else if (mr > 4)
        pf_lines ? TILE(8, 1) : TILE(8, 0);
    else
        pf_lines ? TILE(4, 1) : TILE(4, 0);
#undef TILE
}

/* The instantiations, A by rows (with the prefetch of decoding) or by
 * columns: functions of their own, so that the products' drivers stay small
 * (inlined into them, the sanitizer build of this file took 5 minutes). */
AD_BF16 static __attribute__((noinline)) void tile_a_rows(size_t n2, const uint32_t *a, size_t ai,
                                                          const uint32_t *b, float *c, size_t ldc,
                                                          size_t mr, size_t nr, int accumulate,
                                                          const char *pf, size_t pf_lines) {
    tile_fit(n2, a, ai, 0, b, c, ldc, mr, nr, accumulate, pf, pf_lines, 1);
}

AD_BF16 static __attribute__((noinline)) void tile_a_cols(size_t n2, const uint32_t *a, size_t ak,
                                                          const uint32_t *b, float *c, size_t ldc,
                                                          size_t mr, size_t nr, int accumulate) {
    tile_fit(n2, a, 0, ak, b, c, ldc, mr, nr, accumulate, NULL, 0, 0);
}

/* ---- the product ------------------------------------------------------------------------ */

typedef struct bf16_gemm {
    size_t M, N, K, K2, Mp, panels;
    size_t row_block; /* rows of a unit of rows x columns (compute_unit) */
    const uint32_t *Ap, *Bp;
    int a_rows;      /* Ap is [M][a_ld] (else [K2][Mp]) */
    size_t a_ld;     /* pairs between rows of Ap when a_rows */
    float *const *C; /* C(i, j) = C[j / c_part][i * ldc + j % c_part] */
    size_t c_part, ldc;
    int accumulate;
    int prefetch_b; /* prefetch each next panel (B packed beforehand, one row block) */
    int serial; /* one thread runs every unit, in order: the next panel may be the next unit's */
} bf16_gemm;

/* Rows [m0, m1) x panels [q0, q1) of C, all of k, from A packed at `a` from
 * row a0 on (by rows `aw` pairs apart when a_rows, else by columns `aw` rows
 * wide) and B's panels packed at `b` from panel b0 on. */
AD_BF16 static void compute_block(const bf16_gemm *g, const uint32_t *a, size_t a0, size_t aw,
                                  const uint32_t *bp, size_t b0, size_t m0, size_t m1, size_t q0,
                                  size_t q1) {
    for (size_t s = 0; s < g->K2; s += KC2) {
        size_t n2 = g->K2 - s < KC2 ? g->K2 - s : KC2;
        int acc = g->accumulate || s > 0;
        for (size_t q = q0; q < q1; q++) {
            size_t j = q * NR, nr = g->N - j < NR ? g->N - j : NR;
            const uint32_t *b = bp + ((q - b0) * g->K2 + s) * NR;
            /* the next panel's slice, a share per tile, when B streams from memory */
            const char *next = (const char *)(b + g->K2 * NR);
            size_t tiles = m1 > m0 ? (m1 - m0 + MR - 1) / MR : 1, lines = n2 * NR * sizeof *b / 64;
            int ahead = g->prefetch_b && q + 1 < (g->serial ? g->panels : q1);
            for (size_t i = m0; i < m1; i += MR) {
                size_t mr = m1 - i < MR ? m1 - i : MR, t = (i - m0) / MR;
                size_t l0 = t * lines / tiles, l1 = ahead ? (t + 1) * lines / tiles : l0;
                const char *pf = next + 64 * l0;
                float *c = g->C[j / g->c_part] + i * g->ldc + j % g->c_part;
                if (g->a_rows)
                    tile_a_rows(n2, a + (i - a0) * aw + s, aw, b, c, g->ldc, mr, nr, acc, pf,
                                l1 - l0);
                else
                    tile_a_cols(n2, a + s * aw + i - a0, aw, b, c, g->ldc, mr, nr, acc);
            }
        }
    }
}

/* Unit u: rows [m0, m0 + row_block) x panels [q0, q0 + COL_UNIT). */
AD_BF16 static void compute_unit(const bf16_gemm *g, size_t u) {
    size_t col_units = (g->panels + COL_UNIT - 1) / COL_UNIT, rb = g->row_block;
    size_t m0 = u / col_units * rb, q0 = u % col_units * COL_UNIT;
    size_t m1 = g->M - m0 < rb ? g->M : m0 + rb;
    size_t q1 = g->panels - q0 < COL_UNIT ? g->panels : q0 + COL_UNIT;
    compute_block(g, g->Ap, 0, g->a_rows ? g->a_ld : g->Mp, g->Bp, 0, m0, m1, q0, q1);
}

/* A as the product gets it: fp32 in parts (ad_gemm_bf16_parts), or already
 * rounded to bf16 (h; ad_gemm_bf16_a16), A(i, k) at i * rs + k * cs. */
typedef struct a_source {
    const float *const *A;
    size_t part;
    const uint16_t *h;
    size_t rs, cs;
} a_source;

/* Whether the product takes A as given: bf16 rows are used in place, so they
 * must hold whole pairs; fp32 parts must not split a packed block. */
static int a_layout_ok(const a_source *a, int a_rows, size_t M, size_t K) {
    if (a->h) return !a_rows || (a->cs == 1 && a->rs % 2 == 0 && K % 2 == 0);
    if (a_rows) return a->part >= K || (a->part % 32 == 0 && a->cs == 1);
    return a->part >= M || a->part % 16 == 0;
}

/* B likewise: fp32, or bf16 (h) with rows along j, B(k, j) at k * rs + j * cs;
 * or all of its panels packed beforehand (ad_gemm_bf16_pack_b). */
typedef struct b_source {
    const float *B;
    const uint16_t *h;
    size_t rs, cs;
    const uint32_t *panels;
} b_source;

AD_BF16 static void pack_b(const b_source *b, uint32_t *dst, size_t N, size_t K, size_t K2,
                           size_t p) {
    if (b->h)
        pack_b_panel16(dst, b->h, b->rs, N, K, K2, p);
    else
        pack_b_panel(dst, b->B, b->rs, b->cs, N, K, K2, p);
}

static int gemm_bf16(size_t M, size_t N, size_t K, const a_source *a, const b_source *b,
                     float *const *C, size_t c_part, size_t ldc, int accumulate,
                     const ad_gemm_rows_done *done) {
    const float *const *A = a->A;
    size_t a_part = a->part, ars = a->rs, acs = a->cs;
    if (M == 0 || N == 0) return 0;
    int a_rows = !(ars == 1 && acs != 1);
    if (!a_layout_ok(a, a_rows, M, K) || (b->h && b->cs != 1)) return -1;
    if (c_part < N && c_part % NR) return -1; /* parts that would split a panel */
    if (K == 0) {
        if (!accumulate)
            for (size_t i = 0; i < M; i++)
                for (size_t j = 0; j < N; j += c_part) {
                    size_t n = N - j < c_part ? N - j : c_part;
                    memset(C[j / c_part] + i * ldc, 0, n * sizeof(float));
                }
        if (done) done->fn(done->ctx, 0, M);
        return 0;
    }
    size_t K2 = (K + 1) / 2, panels = (N + NR - 1) / NR,
           Mp = (M + ROW_UNIT - 1) / ROW_UNIT * ROW_UNIT;
    size_t nt = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    if (M * N * K <= SERIAL_MACS) nt = 1;
    size_t blocks = (M + ROW_UNIT - 1) / ROW_UNIT, col_blocks = (panels + COL_UNIT - 1) / COL_UNIT;
    /* With blocks enough for every thread, each unit is a block of the larger
     * operand's rows (A) or columns (B) against all of the other, and its
     * thread converts that block itself, into a buffer of its own that stays
     * in cache, instead of the whole operand being converted first into one
     * buffer that the units then read back; the other operand is converted
     * first and shared (as both are when blocks are few: then units are
     * blocks of rows x columns). Rows of A given in bf16 need no conversion,
     * but still go a block at a time against all of B, so that each is read
     * once. */
    int own_b = !b->panels && N > M && col_blocks >= 4 * nt;
    int in_place = a->h && a_rows; /* bf16 rows are pairs already */
    int row_units = !own_b && (!a_rows || acs == 1) && blocks >= 4 * nt;
    int own_a = row_units && !in_place;
    size_t a_words = own_a ? nt * ROW_UNIT * K2 : a_rows ? M * K2 : K2 * Mp;
    size_t b_words = (own_b ? nt * COL_UNIT : panels) * K2 * NR;
    uint32_t *Ap = in_place ? NULL : ad_scratch_get(AD_SCRATCH_GEMM_A, a_words);
    uint32_t *Bp = b->panels ? NULL : ad_scratch_get(AD_SCRATCH_GEMM_B, b_words);
    if ((!Ap && !in_place) || (!Bp && !b->panels)) {
        ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
        ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
        return -1;
    }
    const uint32_t *Bpc = b->panels ? b->panels : Bp;
    const uint32_t *Apc = in_place ? (const uint32_t *)a->h : Ap;
    /* Weights packed beforehand (decoding) stream from memory once per block
     * of rows: a step's few rows (at most two blocks) go as one block */
    size_t row_block = b->panels && M <= 2 * ROW_UNIT ? M : ROW_UNIT;
    bf16_gemm g = {.M = M,
                   .row_block = row_block,
                   .N = N,
                   .K = K,
                   .K2 = K2,
                   .Mp = Mp,
                   .panels = panels,
                   .Ap = Apc,
                   .Bp = Bpc,
                   .a_rows = a_rows,
                   .a_ld = in_place ? ars / 2 : K2,
                   .C = C,
                   .c_part = c_part,
                   .ldc = ldc,
                   .accumulate = accumulate,
                   .prefetch_b = b->panels && row_block == M};
    size_t units = row_units ? blocks
                   : own_b   ? col_blocks
                             : (M + row_block - 1) / row_block * col_blocks;
    if (nt > units) nt = units;
    g.serial = nt == 1;
    size_t a_chunks = own_a || in_place ? 0 : a_rows ? (M + 15) / 16 : (K2 + 15) / 16;
    size_t b_shared = own_b || b->panels ? 0 : panels;
#pragma omp parallel num_threads((int)nt)
    {
        /* B's panels do not read A's packed form: no barrier between them */
#pragma omp for schedule(static) nowait
        for (size_t w = 0; w < a_chunks; w++) {
            size_t lo = 16 * w, hi = lo + 16;
            if (a->h)
                for (size_t i0 = 0; i0 < Mp; i0 += ROW_UNIT)
                    pack_a_cols_block16(Ap + i0, Mp, a->h, acs, M, K, i0, lo, hi < K2 ? hi : K2);
            else if (!a_rows)
                pack_a_cols(Ap, A, a_part, acs, M, Mp, K, lo, hi < K2 ? hi : K2);
            else if (acs == 1)
                pack_a_rows(Ap + lo * K2, A, a_part, ars, K, K2, lo, hi < M ? hi : M);
            else
                pack_a_strided(Ap, A[0], ars, acs, K, K2, lo, hi < M ? hi : M);
        }
#pragma omp for schedule(static) nowait
        for (size_t p = 0; p < b_shared; p++)
            pack_b(b, Bp + p * K2 * NR, N, K, K2, p);
#pragma omp barrier
        size_t tid = (size_t)omp_get_thread_num();
        uint32_t *mine_a = own_a ? Ap + tid * ROW_UNIT * K2 : NULL;
        uint32_t *mine_b = own_b ? Bp + tid * COL_UNIT * K2 * NR : NULL;
#pragma omp for schedule(dynamic)
        for (size_t u = 0; u < units; u++) {
            if (row_units && in_place) {
                size_t m0 = u * ROW_UNIT, m1 = M - m0 < ROW_UNIT ? M : m0 + ROW_UNIT;
                compute_block(&g, Apc + m0 * g.a_ld, m0, g.a_ld, Bpc, 0, m0, m1, 0, panels);
                if (done) done->fn(done->ctx, m0, m1);
            } else if (own_a) {
                size_t m0 = u * ROW_UNIT, m1 = M - m0 < ROW_UNIT ? M : m0 + ROW_UNIT;
                if (a->h)
                    pack_a_cols_block16(mine_a, ROW_UNIT, a->h, acs, M, K, m0, 0, K2);
                else if (a_rows)
                    pack_a_rows(mine_a, A, a_part, ars, K, K2, m0, m1);
                else
                    pack_a_cols_block(mine_a, ROW_UNIT, A, a_part, acs, M, K, m0, 0, K2);
                compute_block(&g, mine_a, m0, a_rows ? K2 : ROW_UNIT, Bpc, 0, m0, m1, 0, panels);
                if (done) done->fn(done->ctx, m0, m1); /* its rows are whole and in cache */
            } else if (own_b) {
                size_t q0 = u * COL_UNIT, q1 = panels - q0 < COL_UNIT ? panels : q0 + COL_UNIT;
                for (size_t q = q0; q < q1; q++)
                    pack_b(b, mine_b + (q - q0) * K2 * NR, N, K, K2, q);
                compute_block(&g, Apc, 0, a_rows ? g.a_ld : Mp, mine_b, q0, 0, M, q0, q1);
            } else {
                compute_unit(&g, u);
            }
        }
        if (done && !row_units) { /* past the loop's barrier every row is whole */
#pragma omp for schedule(dynamic)
            for (size_t m0 = 0; m0 < M; m0 += ROW_UNIT)
                done->fn(done->ctx, m0, M - m0 < ROW_UNIT ? M : m0 + ROW_UNIT);
        }
    }
    ad_scratch_put(AD_SCRATCH_GEMM_A, Ap); /* NULL (in place, pre-packed) is fine */
    ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
    return 0;
}

int ad_gemm_bf16_parts(size_t M, size_t N, size_t K, const float *const *A, size_t a_part,
                       size_t ars, size_t acs, const float *B, size_t brs, size_t bcs,
                       float *const *C, size_t c_part, size_t ldc, int accumulate,
                       const ad_gemm_rows_done *done) {
    a_source a = {A, a_part, NULL, ars, acs};
    b_source b = {B, NULL, brs, bcs, NULL};
    return gemm_bf16(M, N, K, &a, &b, C, c_part, ldc, accumulate, done);
}

int ad_gemm_bf16_a16(size_t M, size_t N, size_t K, const uint16_t *A, size_t ars, size_t acs,
                     const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate) {
    a_source a = {NULL, SIZE_MAX, A, ars, acs};
    b_source b = {B, NULL, brs, bcs, NULL};
    return gemm_bf16(M, N, K, &a, &b, &C, SIZE_MAX, ldc, accumulate, NULL);
}

int ad_gemm_bf16_b16(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                     const uint16_t *B, size_t brs, size_t bcs, float *C, size_t ldc,
                     int accumulate) {
    const float *const parts[1] = {A};
    a_source a = {parts, SIZE_MAX, NULL, ars, acs};
    b_source b = {NULL, B, brs, bcs, NULL};
    return gemm_bf16(M, N, K, &a, &b, &C, SIZE_MAX, ldc, accumulate, NULL);
}

size_t ad_gemm_bf16_packed_words(size_t N, size_t K) {
    return (N + NR - 1) / NR * ((K + 1) / 2) * NR;
}

AD_BF16 void ad_gemm_bf16_pack_b(uint32_t *Bp, size_t N, size_t K, const float *B, size_t brs,
                                 size_t bcs) {
    size_t K2 = (K + 1) / 2, panels = (N + NR - 1) / NR;
    /* decoders pack every weight at creation: 14M's 28 MB took 5 ms on one thread */
#pragma omp parallel for schedule(static) if (panels * K2 * NR > SERIAL_MACS / 16)
    for (size_t p = 0; p < panels; p++)
        pack_b_panel(Bp + p * K2 * NR, B, brs, bcs, N, K, K2, p);
}

int ad_gemm_bf16_packed(size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const uint32_t *Bp, float *const *C, size_t c_part, size_t ldc,
                        int accumulate, const ad_gemm_rows_done *done) {
    const float *const parts[1] = {A};
    a_source a = {parts, SIZE_MAX, NULL, lda, 1};
    b_source b = {NULL, NULL, 0, 0, Bp};
    return gemm_bf16(M, N, K, &a, &b, C, c_part, ldc, accumulate, done);
}

int ad_gemm_bf16_packed_a16(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
                            const uint32_t *Bp, float *C, size_t ldc, int accumulate) {
    a_source a = {NULL, SIZE_MAX, A, lda, 1};
    b_source b = {NULL, NULL, 0, 0, Bp};
    return gemm_bf16(M, N, K, &a, &b, &C, SIZE_MAX, ldc, accumulate, NULL);
}

/* 16 floats rounded to bf16 into dst: a plain store for all 16 (masked
 * stores of words are slow on AMD's cores), a masked one for a tail. */
AD_BF16 static inline __attribute__((always_inline)) void store_bf16(uint16_t *dst, __m512 x,
                                                                     __mmask16 m, const int full) {
    __m256i v = (__m256i)_mm512_cvtneps_pbh(x);
    if (full)
        _mm256_storeu_si256((__m256i *)dst, v);
    else
        _mm256_mask_storeu_epi16(dst, m, v);
}

AD_BF16 void ad_bf16_from_floats_avx512(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        store_bf16(dst + i, _mm512_loadu_ps(src + i), 0xFFFF, 1);
    if (i < n) {
        __mmask16 m = ad_tail_mask(n - i);
        store_bf16(dst + i, _mm512_maskz_loadu_ps(m, src + i), m, 0);
    }
}

AD_BF16 static inline __attribute__((always_inline)) void
swiglu_fwd16_bf16(uint16_t *h, const float *gate, const float *up, __mmask16 m, const int full) {
    store_bf16(h, ad_swiglu512(ad_ld(gate, m, full), ad_ld(up, m, full)), m, full);
}

AD_BF16 static inline __attribute__((always_inline)) void
swiglu_bwd16_bf16(uint16_t *dgate, uint16_t *dup, const float *dh, const float *gate,
                  const float *up, __mmask16 m, const int full) {
    __m512 dg, du;
    ad_swiglu_grad512(ad_ld(dh, m, full), ad_ld(gate, m, full), ad_ld(up, m, full), &dg, &du);
    store_bf16(dgate, dg, m, full);
    store_bf16(dup, du, m, full);
}

/* ad_swiglu_forward_avx512 and ad_swiglu_backward_avx512 with their results
 * rounded to bf16 as they leave the registers. */
AD_BF16 void ad_swiglu_forward_bf16(uint16_t *h, const float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        swiglu_fwd16_bf16(h + i, gate + i, up + i, 0xFFFF, 1);
    if (i < n) swiglu_fwd16_bf16(h + i, gate + i, up + i, ad_tail_mask(n - i), 0);
}

AD_BF16 void ad_swiglu_backward_bf16(uint16_t *dgate, uint16_t *dup, const float *dh,
                                     const float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        swiglu_bwd16_bf16(dgate + i, dup + i, dh + i, gate + i, up + i, 0xFFFF, 1);
    if (i < n)
        swiglu_bwd16_bf16(dgate + i, dup + i, dh + i, gate + i, up + i, ad_tail_mask(n - i), 0);
}

/* One part of A and of C: parts of SIZE_MAX, as large as any whole. */
int ad_gemm_bf16(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                 const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate) {
    return ad_gemm_bf16_parts(M, N, K, &A, SIZE_MAX, ars, acs, B, brs, bcs, &C, SIZE_MAX, ldc,
                              accumulate, NULL);
}
