/* kernels_gemm_avx512.c: single-precision matrix product for AVX-512 CPUs.
 *
 * Why it exists: OpenBLAS may be pinned to an AVX2 kernel (OPENBLAS_CORETYPE),
 * which leaves half of an AVX-512 machine's floating-point width unused, and
 * its worker threads spin beside our OpenMP threads. The model's products are
 * few and large (N = B*T rows), so a plain register-tiled product reaches most
 * of the peak.
 *
 * C is computed in MR x NR register tiles over slices of KC values of k. The
 * operands are read in place whenever their layout allows it, which covers all
 * three products of a linear layer:
 *   - A with contiguous rows (activations, forward and input gradient): the
 *     tile broadcasts from MR row pointers;
 *   - A with contiguous columns (dout^T in the weight gradient): the MR values
 *     of one k are adjacent;
 *   - B with contiguous rows (weights in the input gradient, activations in the
 *     weight gradient): the tile loads 2 x 16 floats of row k, masked at the
 *     right edge.
 * Only B = W^T (forward) is packed, into [kc][NR] panels by 16x16 transposes,
 * once per product and shared by the threads, or once for many products
 * (ad_gemm_avx512_pack_b: decoding reuses each weight at every step, and
 * repacking it per step cost about half as much as the product itself). Work is handed out
 * dynamically in units: whole row blocks when there are enough for every thread, else column
 * panels (decoding's 64 rows) or smaller row blocks; a small model's weight gradient (long k,
 * small C) is cut along k into fixed parts whose partial products are added in order
 * (gemm_ksplit). Every element of C is summed over k in one fixed order, whatever the thread
 * count. Decoding's tiles on packed weights prefetch their share of the next panel while they
 * compute, as the bf16 products do. Not here: the choice between this and OpenBLAS
 * (kernels.c). */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "model/kernels_avx512_math.h"
#include "model/kernels_internal.h"

#define MR 12
#define NR 32
#define KC 384
#define ROW_UNIT (8 * MR)               /* rows per dynamically scheduled unit */
#define COL_UNIT 4                      /* column panels per unit when rows are few */
#define BPACK_MAX ((size_t)4 << 20)     /* most floats of packed B at once (16 MB) */
#define SERIAL_MACS ((size_t)1 << 20)   /* products this small run on the calling thread */
#define KSPLIT 512                      /* k per part of a split weight gradient */
#define KSPLIT_MAX_MN ((size_t)1 << 17) /* the most elements of C a k-split computes */

/* Register tile: C[mr, nr] (+)= sum over kc values of k of A(i, k) B(k, j),
 * computing NROW (>= mr) rows: MR, or 8 or 4 for a last, partial row block
 * (decoding's 64 rows are 5 tiles of 12 and one of 4, which at MR rows would
 * spend a third of a tile's FMAs on rows that are never stored). Every element
 * is summed over k in the same order whatever NROW is.
 * B(k, j) = b[k*ldb + j], read under masks (so B may end at column nr).
 * ROWS: A(i, k) = a[i*ai + k], rows past mr read row 0 (never stored).
 * otherwise: A(i, k) = a[k*ak + i] for the first NROW rows (the caller packs a
 * partial panel so that nothing past the matrix is read).
 * The first pf_lines steps each prefetch one 64-byte line from pf on into L1
 * (the next weight panel, when packed weights stream from memory). */
AD_AVX512 static inline __attribute__((always_inline)) void
tile(size_t kc, const float *a, size_t ai, size_t ak, const float *b, size_t ldb, float *c,
     size_t ldc, size_t mr, size_t nr, int accumulate, const char *pf, size_t pf_lines,
     const int ROWS, const int FULL_B, const int NROW, const int PF) {
    __m512 c0[MR], c1[MR];
    const float *r[MR];
    __mmask16 bm0 = ad_tail_mask(nr), bm1 = nr > 16 ? ad_tail_mask(nr - 16) : 0;
#pragma GCC unroll 12
    for (int i = 0; i < NROW; i++) {
        c0[i] = c1[i] = _mm512_setzero_ps();
        r[i] = a + ((size_t)i < mr ? (size_t)i : 0) * ai;
    }
    if (accumulate) /* C is read at the end: start fetching it now */
        for (size_t i = 0; i < mr; i++) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        }
#define TILE_K                                                                                     \
    do {                                                                                           \
        __m512 b0 = FULL_B ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(bm0, b);                   \
        __m512 b1 = FULL_B ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(bm1, b + 16);         \
        _Pragma("GCC unroll 12") for (int i = 0; i < NROW; i++) {                                  \
            __m512 av = _mm512_set1_ps(ROWS ? r[i][k] : a[i]);                                     \
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);                                                \
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);                                                \
        }                                                                                          \
        if (!ROWS) a += ak;                                                                        \
        b += ldb;                                                                                  \
    } while (0)
    AD_TILE_STEPS(TILE_K, k, kc, PF, pf, pf_lines);
#undef TILE_K
    ad_store_tile(c, ldc, c0, c1, mr, nr, accumulate, NROW);
}

/* One tile of 12, 8 or 4 computed rows, the fewest that cover mr. */
AD_AVX512 static inline __attribute__((always_inline)) void
tile_fit(size_t kc, const float *a, size_t ai, size_t ak, const float *b, size_t ldb, float *c,
         size_t ldc, size_t mr, size_t nr, int accumulate, const char *pf, size_t pf_lines,
         const int ROWS, const int FULL_B, const int PF) {
    if (mr > 8)
        tile(kc, a, ai, ak, b, ldb, c, ldc, mr, nr, accumulate, pf, pf_lines, ROWS, FULL_B, MR, PF);
    else if (mr > 4)
        tile(kc, a, ai, ak, b, ldb, c, ldc, mr, nr, accumulate, pf, pf_lines, ROWS, FULL_B, 8, PF);
    else
        tile(kc, a, ai, ak, b, ldb, c, ldc, mr, nr, accumulate, pf, pf_lines, ROWS, FULL_B, 4, PF);
}

/* The instantiations: A by rows or columns; B with 32 readable columns
 * (packed panels are zero padded; in place, any panel but the last) read with
 * plain loads, or under masks (masked loads are markedly slower here). */
AD_AVX512 static void tile_rows(size_t kc, const float *a, size_t lda, const float *b, size_t ldb,
                                float *c, size_t ldc, size_t mr, size_t nr, int accumulate,
                                int full_b, const char *pf, size_t pf_lines) {
    if (pf_lines) /* decoding on packed weights: B is always full */
        tile_fit(kc, a, lda, 0, b, ldb, c, ldc, mr, nr, accumulate, pf, pf_lines, 1, 1, 1);
    else if (full_b)
        tile_fit(kc, a, lda, 0, b, ldb, c, ldc, mr, nr, accumulate, pf, 0, 1, 1, 0);
    else
        tile_fit(kc, a, lda, 0, b, ldb, c, ldc, mr, nr, accumulate, pf, 0, 1, 0, 0);
}

AD_AVX512 static void tile_cols(size_t kc, const float *a, size_t ak, const float *b, size_t ldb,
                                float *c, size_t ldc, size_t mr, size_t nr, int accumulate,
                                int full_b) {
    if (full_b)
        tile_fit(kc, a, 0, ak, b, ldb, c, ldc, mr, nr, accumulate, NULL, 0, 0, 1, 0);
    else
        tile_fit(kc, a, 0, ak, b, ldb, c, ldc, mr, nr, accumulate, NULL, 0, 0, 0, 0);
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
        ad_transpose16(r);
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
            /* rows of B are contiguous: copy 2 x 16 floats per k */
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

/* Packs one A panel, rows i..i+mr (mr <= MR) and k0..k0+kc, into [kc][MR],
 * zero beyond mr: for the last, partial panel of a column-contiguous A and for
 * general strides. */
AD_AVX512 static void pack_a_panel(float *dst, const float *A, size_t ars, size_t acs, size_t i,
                                   size_t mr, size_t k0, size_t kc) {
    if (ars == 1) {
        /* the panel's values for one k are adjacent: one masked copy per k */
        __mmask16 m = ad_tail_mask(mr), keep = (__mmask16)((1u << MR) - 1u);
        for (size_t k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(dst + k * MR, keep,
                                  _mm512_maskz_loadu_ps(m, A + i + (k0 + k) * acs));
        return;
    }
    if (mr < MR) memset(dst, 0, kc * MR * sizeof(float));
    for (size_t ii = 0; ii < mr; ii++) {
        const float *src = A + (i + ii) * ars + k0 * acs;
        for (size_t k = 0; k < kc; k++)
            dst[k * MR + ii] = src[k * acs];
    }
}

/* The operands of one product, as ad_gemm_avx512 takes them. B is read from
 * Bp (packed panels, slice pc of the column block at Bp + pc * npan * NR) when
 * Bp is not NULL, in place otherwise. */
typedef struct gemm_args {
    size_t M, N, K;
    const float *A, *B;
    size_t ars, acs, brs, bcs;
    float *C;
    size_t ldc;
    int accumulate;
    const float *Bpre; /* B packed beforehand (ad_gemm_avx512_pack_b), or NULL */
    int prefetch_b;    /* Bpre in one block of rows: each next panel fetched ahead */
    int serial; /* one thread runs every unit, in order: the next panel may be the next unit's */
} gemm_args;

/* Packs work items [w0, w1) of the column block at jc (npan panels): item w is
 * (K slice w / npan, panel w % npan). */
AD_AVX512 static void pack_b_block(float *Bp, const gemm_args *g, size_t jc, size_t npan, size_t w0,
                                   size_t w1) {
    for (size_t w = w0; w < w1; w++) {
        size_t pc = w / npan * KC, p = w % npan;
        size_t kc = g->K - pc < KC ? g->K - pc : KC;
        pack_b(Bp + pc * npan * NR, g->B, g->brs, g->bcs, pc, kc, jc, g->N, p, p + 1);
    }
}

/* How the tiles read A. */
enum { A_ROWS, A_COLS, A_PACKED };

static int l1_aliases(size_t stride);

/* Rows [m0, m1) (at most ROW_UNIT) x columns [jc, jc + ncur) of C. Ap holds
 * ROW_UNIT x KC floats for packed A panels ([panel][kc][MR]). Packed B holds
 * P panels per K slice; this block's columns start at its panel p0. */
AD_AVX512 static void compute_block(const gemm_args *g, const float *Bp, size_t P, size_t p0,
                                    float *Ap, size_t m0, size_t m1, size_t jc, size_t ncur) {
    size_t npan = (ncur + NR - 1) / NR;
    /* A read by columns in place unless its stride aliases in L1 over a long k:
     * over at most KSPLIT values of k (every part of a split weight gradient)
     * the strided lines stream from L2 faster than packing them costs
     * (bench_gemm, weight gradients of the 0.8M model: +4-26%) */
    int cols = g->ars == 1 && (g->K <= KSPLIT || !l1_aliases(g->acs));
    int mode = g->acs == 1 ? A_ROWS : cols ? A_COLS : A_PACKED;
    for (size_t pc = 0; pc < g->K; pc += KC) {
        size_t kc = g->K - pc < KC ? g->K - pc : KC;
        int acc = g->accumulate || pc > 0;
        for (size_t i = m0; i < m1; i += MR) /* pack what cannot be read in place */
            if (mode == A_PACKED || (mode == A_COLS && m1 - i < MR))
                pack_a_panel(Ap + (i - m0) * kc, g->A, g->ars, g->acs, i, m1 - i < MR ? m1 - i : MR,
                             pc, kc);
        for (size_t jr = 0; jr < npan; jr++) {
            size_t j = jc + jr * NR, nr = ncur - jr * NR < NR ? ncur - jr * NR : NR;
            const float *b = Bp ? Bp + pc * P * NR + (p0 + jr) * kc * NR : g->B + pc * g->brs + j;
            size_t ldb = Bp ? NR : g->brs;
            int full = Bp != NULL || nr == NR;
            /* the next panel's slice, a share per tile, when packed weights stream from memory */
            size_t tiles = m1 > m0 ? (m1 - m0 + MR - 1) / MR : 1, lines = kc * NR * sizeof *b / 64;
            int ahead =
                g->prefetch_b && Bp == g->Bpre && (g->serial ? p0 + jr + 1 < P : jr + 1 < npan);
            for (size_t i = m0; i < m1; i += MR) {
                size_t mr = m1 - i < MR ? m1 - i : MR, t = (i - m0) / MR;
                size_t l0 = t * lines / tiles, l1 = ahead ? (t + 1) * lines / tiles : l0;
                const char *pf = (const char *)(b + kc * NR) + 64 * l0;
                float *c = g->C + i * g->ldc + j;
                if (mode == A_ROWS)
                    tile_rows(kc, g->A + i * g->ars + pc, g->ars, b, ldb, c, g->ldc, mr, nr, acc,
                              full, pf, l1 - l0);
                else if (mode == A_COLS && mr == MR)
                    tile_cols(kc, g->A + i + pc * g->acs, g->acs, b, ldb, c, g->ldc, mr, nr, acc,
                              full);
                else
                    tile_cols(kc, Ap + (i - m0) * kc, MR, b, ldb, c, g->ldc, mr, nr, acc, full);
            }
        }
    }
}

/* Many rows: units of ru (<= ROW_UNIT) rows. When B must be packed, the
 * threads first pack each column block together (one barrier), then share out
 * the rows. */
static void gemm_split_rows(const gemm_args *g, float *Bp, float *Ap, size_t nt, size_t nc,
                            size_t ru) {
    size_t nslices = (g->K + KC - 1) / KC, nunits = (g->M + ru - 1) / ru;
    size_t panels = (g->N + NR - 1) / NR;
    if (!Bp && !g->Bpre) nc = g->N;
#pragma omp parallel num_threads((int)nt)
    {
        float *myA = Ap + (size_t)omp_get_thread_num() * ROW_UNIT * KC;
        for (size_t jc = 0; jc < g->N; jc += nc) {
            size_t ncur = g->N - jc < nc ? g->N - jc : nc, npan = (ncur + NR - 1) / NR;
            if (Bp) {
#pragma omp for schedule(dynamic)
                for (size_t w = 0; w < nslices * npan; w++)
                    pack_b_block(Bp, g, jc, npan, w, w + 1);
            }
#pragma omp for schedule(dynamic)
            for (size_t u = 0; u < nunits; u++) {
                size_t m1 = (u + 1) * ru < g->M ? (u + 1) * ru : g->M;
                if (g->Bpre)
                    compute_block(g, g->Bpre, panels, jc / NR, myA, u * ru, m1, jc, ncur);
                else
                    compute_block(g, Bp, npan, 0, myA, u * ru, m1, jc, ncur);
            }
        }
    }
}

/* Few rows (decoding, narrow weight gradients): units of cu (<= COL_UNIT)
 * column panels, each packed (when needed) by the thread that computes it. */
static void gemm_split_cols(const gemm_args *g, float *Bp, float *Ap, size_t nt, size_t cu) {
    size_t panels = (g->N + NR - 1) / NR, nunits = (panels + cu - 1) / cu;
    size_t nslices = (g->K + KC - 1) / KC;
#pragma omp parallel num_threads((int)nt)
    {
        size_t tid = (size_t)omp_get_thread_num();
        float *myB = Bp ? Bp + tid * g->K * COL_UNIT * NR : NULL, *myA = Ap + tid * ROW_UNIT * KC;
#pragma omp for schedule(dynamic)
        for (size_t u = 0; u < nunits; u++) {
            size_t jc = u * cu * NR;
            size_t ncur = g->N - jc < cu * NR ? g->N - jc : cu * NR;
            size_t npan = (ncur + NR - 1) / NR;
            if (myB) pack_b_block(myB, g, jc, npan, 0, nslices * npan);
            for (size_t m0 = 0; m0 < g->M; m0 += ROW_UNIT) {
                size_t m1 = g->M - m0 < ROW_UNIT ? g->M : m0 + ROW_UNIT;
                if (g->Bpre)
                    compute_block(g, g->Bpre, panels, u * cu, myA, m0, m1, jc, ncur);
                else
                    compute_block(g, myB, npan, 0, myA, m0, m1, jc, ncur);
            }
        }
    }
}

/* A weight gradient of a small model (A read transposed, ars == 1: C is
 * dW[O, I] = dout^T x, with k running over the batch's thousands of tokens):
 * few rows and columns, so split by rows each unit streamed all of B (x, MBs)
 * again, and split by columns all of A. Here k is cut into fixed parts of
 * KSPLIT values; each part is one unit (all of C's rows and columns, its A and
 * B slices read once, B packed by the unit's thread), written to its own
 * partial C; the partials are then added in part order. The cut does not
 * depend on the thread count, so neither do the bits. */
static int use_ksplit(const gemm_args *g) {
    return g->ars == 1 && !g->Bpre && g->K >= 2 * KSPLIT && g->M * g->N <= KSPLIT_MAX_MN;
}

static int gemm_ksplit(const gemm_args *g, int pack, size_t nt) {
    size_t parts = (g->K + KSPLIT - 1) / KSPLIT, MN = g->M * g->N;
    size_t npan = (g->N + NR - 1) / NR;
    /* Parts that do not share out evenly (9 parts on 2 threads: 5 against 4)
     * are cut into nt column slices too; a column slice sums the same terms in
     * the same order, so the bits stay as they are. */
    size_t cs = parts % nt != 0 && npan >= nt ? nt : 1, spp = (npan + cs - 1) / cs;
    cs = (npan + spp - 1) / spp; /* 4 panels in 3 slices: 2 + 2 */
    if (nt > parts * cs) nt = parts * cs;
    float *P = ad_scratch_get(AD_SCRATCH_GEMM_PARTS, parts * MN);
    float *Bp = pack ? ad_scratch_get(AD_SCRATCH_GEMM_B, nt * KSPLIT * npan * NR) : NULL;
    float *Ap = ad_scratch_get(AD_SCRATCH_GEMM_A, nt * ROW_UNIT * KC);
    if (!P || !Ap || (pack && !Bp)) {
        ad_scratch_put(AD_SCRATCH_GEMM_PARTS, P);
        ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
        ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
        return -1;
    }
#pragma omp parallel num_threads((int)nt)
    {
        size_t tid = (size_t)omp_get_thread_num();
        float *myB = Bp ? Bp + tid * KSPLIT * npan * NR : NULL, *myA = Ap + tid * ROW_UNIT * KC;
#pragma omp for schedule(dynamic)
        for (size_t u = 0; u < parts * cs; u++) {
            size_t q = u / cs, p0 = u % cs * spp, k0 = q * KSPLIT;
            size_t np = npan - p0 < spp ? npan - p0 : spp, jc = p0 * NR;
            size_t ncur = g->N - jc < np * NR ? g->N - jc : np * NR;
            gemm_args s = *g;
            s.K = g->K - k0 < KSPLIT ? g->K - k0 : KSPLIT;
            s.A = g->A + k0 * g->acs;
            s.B = g->B + k0 * g->brs;
            s.C = P + q * MN;
            s.ldc = g->N;
            s.accumulate = 0;
            if (myB) pack_b_block(myB, &s, jc, np, 0, (s.K + KC - 1) / KC * np);
            for (size_t m0 = 0; m0 < g->M; m0 += ROW_UNIT)
                compute_block(&s, myB, np, 0, myA, m0, g->M - m0 < ROW_UNIT ? g->M : m0 + ROW_UNIT,
                              jc, ncur);
        }
        /* one pass over the row per part, so that the adds run along j in
         * vectors; each element still adds the parts in part order */
#pragma omp for schedule(static)
        for (size_t i = 0; i < g->M; i++) {
            float *c = g->C + i * g->ldc;
            const float *p0 = P + i * g->N;
            if (g->accumulate)
                for (size_t j = 0; j < g->N; j++)
                    c[j] += p0[j];
            else
                memcpy(c, p0, g->N * sizeof(float));
            for (size_t q = 1; q < parts; q++) {
                const float *pq = P + q * MN + i * g->N;
                for (size_t j = 0; j < g->N; j++)
                    c[j] += pq[j];
            }
        }
    }
    ad_scratch_put(AD_SCRATCH_GEMM_PARTS, P);
    ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
    ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
    return 0;
}

/* 1 when rows `stride` floats apart map onto fewer than half of the L1's 64
 * sets (lines of 64 bytes): reading a B panel in place would then thrash L1,
 * so it is packed instead (e.g. strides of 384 or 1536 floats, not 96 or 288). */
static int l1_aliases(size_t stride) {
    size_t bytes = stride * sizeof(float);
    if (bytes % 64) return 0;
    size_t lines = bytes / 64, a = lines, b = 64;
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return 64 / a < 32; /* a = gcd(lines, 64): the rows use 64 / a sets */
}

/* Rows per unit when a product is shared out by rows: of ROW_UNIT down to
 * ROW_UNIT / 2 (multiples of MR, so the tiles and the bits stay the same), the
 * one whose units, handed to the least loaded thread in turn, leave the
 * busiest thread the fewest rows (ties: the larger unit). 1216 rows on 2
 * threads: units of 96 leave one thread 640 rows against 576; units of 48
 * 624 against 592. */
static size_t balanced_row_unit(size_t M, size_t nt) {
    size_t best = ROW_UNIT, best_max = 0;
    for (size_t ru = ROW_UNIT; ru >= ROW_UNIT / 2; ru -= MR) {
        size_t load[64] = {0}, n = nt < 64 ? nt : 64, busiest = 0;
        for (size_t m0 = 0; m0 < M; m0 += ru) {
            size_t t = 0;
            for (size_t i = 1; i < n; i++)
                if (load[i] < load[t]) t = i;
            load[t] += M - m0 < ru ? M - m0 : ru;
        }
        for (size_t i = 0; i < n; i++)
            busiest = load[i] > busiest ? load[i] : busiest;
        if (ru == ROW_UNIT || busiest * 100 < best_max * 99) best = ru, best_max = busiest;
    }
    return best;
}

/* Runs the product g (M, N, K > 0) on up to nt threads, packing B into
 * scratch first when `pack` and g->Bpre is NULL. Returns 0, or -1 when
 * scratch memory could not be allocated (C is then unchanged). */
static int gemm_run(gemm_args *g, int pack) {
    size_t nt = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    if (g->M * g->N * g->K <= SERIAL_MACS) nt = 1;
    if (use_ksplit(g)) return gemm_ksplit(g, pack, nt);
    size_t col_panels = (g->N + NR - 1) / NR, row_units = (g->M + ROW_UNIT - 1) / ROW_UNIT;
    /* Enough whole row units for every thread: by rows, as training's products.
     * Otherwise by column panels when there are enough of them (decoding: each
     * thread then streams its own part of the weights), else by smaller row
     * units (at least MR rows), so that no thread idles for lack of work. */
    int by_rows = row_units >= 2 * nt || col_panels < 2 * nt;
    size_t ru = ROW_UNIT, cu = COL_UNIT;
    if (by_rows && row_units < 2 * nt) {
        size_t want = (g->M + 2 * nt - 1) / (2 * nt);
        ru = (want + MR - 1) / MR * MR;
    } else if (by_rows && nt > 1) {
        ru = balanced_row_unit(g->M, nt);
    }
    if (!by_rows && col_panels < 2 * nt * COL_UNIT) {
        cu = col_panels / (2 * nt);
        if (cu < 1) cu = 1;
    }
    size_t units = by_rows ? (g->M + ru - 1) / ru : (col_panels + cu - 1) / cu;
    if (nt > units) nt = units;
    if (g->Bpre) pack = 0;
    g->prefetch_b = g->Bpre && g->M <= ROW_UNIT;
    g->serial = nt == 1;
    /* Columns per block: all of them if K x nc fits in BPACK_MAX. */
    size_t nc = col_panels * NR, cap = BPACK_MAX / g->K / NR * NR;
    if (cap < NR) cap = NR;
    if (nc > cap) nc = cap;
    size_t bfloats = !pack ? 0 : by_rows ? g->K * nc : nt * g->K * COL_UNIT * NR;
    float *Bp = pack ? ad_scratch_get(AD_SCRATCH_GEMM_B, bfloats) : NULL;
    float *Ap = ad_scratch_get(AD_SCRATCH_GEMM_A, nt * ROW_UNIT * KC);
    if ((pack && !Bp) || !Ap) {
        ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
        ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
        return -1;
    }
    if (by_rows)
        gemm_split_rows(g, Bp, Ap, nt, nc, ru);
    else
        gemm_split_cols(g, Bp, Ap, nt, cu);
    ad_scratch_put(AD_SCRATCH_GEMM_B, Bp);
    ad_scratch_put(AD_SCRATCH_GEMM_A, Ap);
    return 0;
}

/* C rows are zeroed (or kept) when K == 0; returns 1 when there is nothing
 * else to do. */
static int gemm_trivial(size_t M, size_t N, size_t K, float *C, size_t ldc, int accumulate) {
    if (M == 0 || N == 0) return 1;
    if (K > 0) return 0;
    if (!accumulate)
        for (size_t i = 0; i < M; i++)
            memset(C + i * ldc, 0, N * sizeof(float));
    return 1;
}

int ad_gemm_avx512(size_t M, size_t N, size_t K, const float *A, size_t ars, size_t acs,
                   const float *B, size_t brs, size_t bcs, float *C, size_t ldc, int accumulate) {
    if (gemm_trivial(M, N, K, C, ldc, accumulate)) return 0;
    gemm_args g = {M, N, K, A, B, ars, acs, brs, bcs, C, ldc, accumulate, NULL, 0, 0};
    return gemm_run(&g, bcs != 1 || l1_aliases(brs));
}

size_t ad_gemm_avx512_packed_size(size_t N, size_t K) {
    return (N + NR - 1) / NR * NR * K;
}

void ad_gemm_avx512_pack_b(float *Bp, size_t N, size_t K, const float *B, size_t brs, size_t bcs) {
    if (N == 0 || K == 0) return;
    gemm_args g = {0, N, K, NULL, B, 0, 0, brs, bcs, NULL, 0, 0, NULL, 0, 0};
    size_t panels = (N + NR - 1) / NR, nslices = (K + KC - 1) / KC;
#pragma omp parallel for schedule(dynamic)
    for (size_t w = 0; w < nslices * panels; w++)
        pack_b_block(Bp, &g, 0, panels, w, w + 1);
}

int ad_gemm_avx512_packed(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *Bp,
                          float *C, size_t ldc, int accumulate) {
    if (gemm_trivial(M, N, K, C, ldc, accumulate)) return 0;
    gemm_args g = {M, N, K, A, NULL, lda, 1, 0, 0, C, ldc, accumulate, Bp, 0, 0};
    return gemm_run(&g, 0);
}
