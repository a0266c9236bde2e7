/* axon_fn C kernels: a float matrix product for the jit's compiled programs (see
 * axon_kernels.h for the contract). A program gets its address when it loads
 * (axon_fn/_compile/program.py) and runs its big float products on it while it holds the cores,
 * with the loop that follows a product in the program (its epilogue) on each block of C as soon
 * as the block is done. Compiled once here, not into every program: it is the biggest piece of
 * C a program would otherwise compile.
 *
 * Why not the BLAS split in blocks, one single-thread call a thread (what a program does
 * without this): every thread then packs the whole of the other operand, each call zeroes its
 * block of C before accumulating, the threads never share a packed block, and nothing can run
 * on a block of C while it is in cache. Here the threads pack each block of B once, between
 * them, and compute on the shared copy; A is read where it is (it takes products whose A has a
 * unit stride); the first block of k writes C, the others add to it. Same structure as BLIS /
 * GotoBLAS: a block of KC rows of B (all its columns, up to NC) packed in panels of NR columns,
 * blocks of MC rows of A, and a kernel that keeps an MR x NR tile of C in 24 vector registers
 * over the block's KC steps, each step one row of a B panel (4 vectors) against MR broadcast
 * elements of A.
 *
 * Every panel is read by the threads only after a barrier that follows its packing; packed
 * blocks alternate between two buffers, so the block after next is packed only once every
 * thread is past the barrier of the next one, and so done with the block it overwrites: one
 * barrier a block. The buffers are the calling thread's (thread-local, grown on demand), so
 * two Python threads running programs at once never share them.
 *
 * AVX-512 only (64-byte vectors, masked stores), compiled for it with a target attribute and
 * run only where the CPU has it; elsewhere, or without OpenMP, axon_own_sgemm_available() is 0
 * and programs keep the BLAS.
 */
#include "axon_common.h"

#if AXON_HAVE_CLONES && defined(_OPENMP)
#include <immintrin.h>

#define AXON_GEMM_TARGET __attribute__((target("arch=x86-64-v4")))
#define AXON_GEMM_INLINE static inline __attribute__((always_inline)) AXON_GEMM_TARGET

#define AXON_MR_OWN 6               /* rows of a tile */
#define AXON_NV_OWN 4               /* vectors of 16 floats in a tile row */
#define AXON_NR_OWN (16 * AXON_NV_OWN) /* columns of a tile: 64 */
/* Rows of B in a block (k split in even blocks of at most this): each block of k reads and
 * writes all of C once, so fewer, longer ones pay off while a panel (KC x 64 floats, 100 KiB)
 * stays in L2. At batch 1024 (K = 784) two blocks instead of seven made the forward 5-7 %
 * faster; at batch 128 it made no difference. */
#define AXON_KC_OWN 400
#define AXON_MC_OWN 144 /* rows of C in a block (a multiple of MR): its epilogue runs once done */
#define AXON_NC_OWN 1024 /* columns of B in a block (1.6 MiB at KC = 400, in L2) */

typedef float axon_own_v __attribute__((vector_size(64)));

/* C[0..mr, 0..nr) = (or +=) the sum over k of a[k * ka + r * ra] b[k][n], for an mr x 64
 * tile whose last nr - 64 columns are padding (masked off at the store). mr is a constant
 * wherever this is inlined, so the accumulators are registers. */
AXON_GEMM_INLINE void axon_own_tile(const int mr, int64_t kc, const float *restrict a,
                                    int64_t ra, int64_t ka, const float *restrict b,
                                    float *restrict c, int64_t ldc, int accumulate, int nr)
{
    axon_own_v acc[AXON_MR_OWN][AXON_NV_OWN];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < AXON_NV_OWN; v++)
            acc[r][v] = (axon_own_v){0};
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        axon_own_v bk[AXON_NV_OWN];
        for (int v = 0; v < AXON_NV_OWN; v++)
            bk[v] = *(const axon_own_v *)(b + k * AXON_NR_OWN + 16 * v);
        for (int r = 0; r < mr; r++) {
            const float ar = a[k * ka + r * ra];
            for (int v = 0; v < AXON_NV_OWN; v++)
                acc[r][v] += ar * bk[v];
        }
    }
    for (int v = 0; v < AXON_NV_OWN; v++) {
        const int left = nr - 16 * v;
        if (left <= 0)
            break;
        const __mmask16 mask = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (int r = 0; r < mr; r++) {
            float *at = c + r * ldc + 16 * v;
            __m512 sum = (__m512)acc[r][v];
            if (accumulate)
                sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, at));
            _mm512_mask_storeu_ps(at, mask, sum);
        }
    }
}

/* one tile of any height: a copy of the kernel for each, so each keeps its tile in registers */
AXON_GEMM_TARGET static void axon_own_tile_rows(int mr, int64_t kc, const float *a, int64_t ra,
                                                int64_t ka, const float *b, float *c,
                                                int64_t ldc, int accumulate, int nr)
{
    switch (mr) {
#define AXON_OWN_CASE(R)                                                                      \
    case R:                                                                                    \
        axon_own_tile(R, kc, a, ra, ka, b, c, ldc, accumulate, nr);                            \
        break;
        AXON_OWN_CASE(6)
        AXON_OWN_CASE(5)
        AXON_OWN_CASE(4)
        AXON_OWN_CASE(3)
        AXON_OWN_CASE(2)
        AXON_OWN_CASE(1)
#undef AXON_OWN_CASE
    }
}

/* dst[j][i] = src[i][j] for a 16 x 16 block (row strides ss and ds): three rounds of
 * shuffles, pairs of elements, then of pairs, then of 128-bit lanes twice. */
AXON_GEMM_INLINE void axon_own_transpose16(const float *src, int64_t ss, float *dst, int64_t ds)
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + i * ss);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(dst + i * ds, r[i]);
}

/* Panel of B's block (kc rows, nr <= NR columns): element (k, n) at p[k * NR + n], columns
 * past nr zero (they meet masked lanes only, but garbage could be a slow denormal). */
AXON_GEMM_INLINE void axon_own_pack_b(int64_t kc, int64_t nr, const float *B, int64_t sbk,
                                      int64_t sbn, float *restrict p)
{
    if (sbn == 1 && nr == AXON_NR_OWN) {
        for (int64_t k = 0; k < kc; k++)
            memcpy(p + k * AXON_NR_OWN, B + k * sbk, AXON_NR_OWN * sizeof(float));
        return;
    }
    if (nr < AXON_NR_OWN)
        memset(p, 0, (size_t)kc * AXON_NR_OWN * sizeof(float));
    if (sbn == 1) {
        for (int64_t k = 0; k < kc; k++)
            memcpy(p + k * AXON_NR_OWN, B + k * sbk, (size_t)nr * sizeof(float));
    } else if (sbk == 1) { /* B transposed: its rows, 16 x 16 blocks transposed in registers */
        int64_t n0 = 0;
        for (; n0 + 16 <= nr; n0 += 16) {
            int64_t k0 = 0;
            for (; k0 + 16 <= kc; k0 += 16)
                axon_own_transpose16(B + n0 * sbn + k0, sbn, p + k0 * AXON_NR_OWN + n0,
                                     AXON_NR_OWN);
            for (int64_t n = n0; n < n0 + 16; n++)
                for (int64_t k = k0; k < kc; k++)
                    p[k * AXON_NR_OWN + n] = B[n * sbn + k];
        }
        for (int64_t n = n0; n < nr; n++)
            for (int64_t k = 0; k < kc; k++)
                p[k * AXON_NR_OWN + n] = B[n * sbn + k];
    } else {
        for (int64_t k = 0; k < kc; k++)
            for (int64_t n = 0; n < nr; n++)
                p[k * AXON_NR_OWN + n] = B[k * sbk + n * sbn];
    }
}

/* the calling thread's packing buffers, grown on demand (64-byte aligned) */
static __thread float *axon_own_buffer;
static __thread size_t axon_own_buffer_floats;

AXON_GEMM_TARGET static float *axon_own_scratch(size_t floats)
{
    if (floats > axon_own_buffer_floats) {
        free(axon_own_buffer);
        axon_own_buffer = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        axon_own_buffer_floats = axon_own_buffer ? floats : 0;
    }
    return axon_own_buffer;
}

AXON_GEMM_INLINE int64_t axon_own_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* Blocks of n split evenly: the size of each of ceil(n / most) blocks, a multiple of align. */
AXON_GEMM_INLINE int64_t axon_own_even(int64_t n, int64_t most, int64_t align)
{
    const int64_t blocks = (n + most - 1) / most;
    return ((n + blocks - 1) / blocks + align - 1) / align * align;
}

/* C[M, N] (row-major, row stride scm) = A[M, K] B[K, N] (A with a unit stride, B of any
 * strides) on `threads` threads; then, when given, the loop that follows the product in the
 * program (emit.py's epilogue) on each block of C as soon as the block is done, while it is
 * in cache. Returns 0 (having done nothing) when it cannot get its buffers. */
AXON_GEMM_TARGET static int axon_own_sgemm_run(int64_t M, int64_t N, int64_t K, const float *A,
                                             int64_t sam, int64_t sak, const float *B,
                                             int64_t sbk, int64_t sbn, float *C, int64_t scm,
                                             int threads, axon_epilogue_fn epilogue,
                                             char *arena, void **io)
{
    const int64_t kc_max = axon_own_even(K, AXON_KC_OWN, 1);
    const int64_t mc_max = axon_own_even(M, AXON_MC_OWN, AXON_MR_OWN);
    const int64_t nc_max = axon_own_even(N, AXON_NC_OWN, AXON_NR_OWN);
    /* two buffers, each a whole number of vectors, so that both start aligned */
    const size_t b_floats = ((size_t)nc_max * kc_max + 15) / 16 * 16;
    float *const scratch = axon_own_scratch(2 * b_floats);
    if (!scratch)
        return 0;
    float *const b_buf[2] = {scratch, scratch + b_floats};
    _Pragma("omp parallel num_threads(threads)")
    {
        const int t = omp_get_thread_num(), n_threads = omp_get_num_threads();
        int64_t b_block = 0; /* blocks of B packed so far */
        for (int64_t jc = 0; jc < N; jc += nc_max) {
            const int64_t nc = axon_own_min(nc_max, N - jc);
            const int64_t n_panels = (nc + AXON_NR_OWN - 1) / AXON_NR_OWN;
            for (int64_t pc = 0; pc < K; pc += kc_max, b_block++) {
                const int64_t kc = axon_own_min(kc_max, K - pc);
                float *const bp = b_buf[b_block & 1];
                for (int64_t ic = 0; ic < M; ic += mc_max) {
                    const int64_t mc = axon_own_min(mc_max, M - ic);
                    const int64_t m_panels = (mc + AXON_MR_OWN - 1) / AXON_MR_OWN;
                    /* this thread's rectangle of tiles: its rows of the block when there are
                     * rows enough to share evenly (the epilogue then streams whole rows of
                     * C), else its columns */
                    const int by_rows = m_panels >= 4 * n_threads || n_panels < n_threads;
                    const int64_t i_lo = by_rows ? m_panels * t / n_threads : 0,
                                  i_hi = by_rows ? m_panels * (t + 1) / n_threads : m_panels,
                                  j_lo = by_rows ? 0 : n_panels * t / n_threads,
                                  j_hi = by_rows ? n_panels : n_panels * (t + 1) / n_threads;
                    /* pack this thread's share of B's panels when its block is new: those it
                     * reads itself when split by columns */
                    for (int64_t q = by_rows ? n_panels * t / n_threads : j_lo;
                         ic == 0 && q < (by_rows ? n_panels * (t + 1) / n_threads : j_hi); q++) {
                        const int64_t j = q * AXON_NR_OWN;
                        axon_own_pack_b(kc, axon_own_min(AXON_NR_OWN, nc - j),
                                        B + pc * sbk + (jc + j) * sbn, sbk, sbn, bp + j * kc);
                    }
                    if (ic == 0) { /* (the same test in every thread) */
                        _Pragma("omp barrier")
                    }
                    /* this thread's tiles, a column of them after another: a panel of B
                     * stays in cache while it meets A's panels */
                    for (int64_t jp = j_lo; jp < j_hi; jp++) {
                        const int64_t j = jp * AXON_NR_OWN;
                        for (int64_t ip = i_lo; ip < i_hi; ip++) {
                            const int64_t i = ip * AXON_MR_OWN;
                            axon_own_tile_rows((int)axon_own_min(AXON_MR_OWN, mc - i), kc,
                                               A + (ic + i) * sam + pc * sak, sam, sak,
                                               bp + j * kc,
                                               C + (ic + i) * scm + jc + j, scm, pc > 0,
                                               (int)axon_own_min(AXON_NR_OWN, nc - j));
                        }
                    }
                    /* the block of C this thread computed is done: its loop, while the block
                     * is in cache (rows of its columns: runs long enough to stream) */
                    if (epilogue && pc + kc == K && j_hi > j_lo && i_hi > i_lo)
                        epilogue(arena, io, ic + i_lo * AXON_MR_OWN,
                                 ic + axon_own_min(i_hi * AXON_MR_OWN, mc), jc + j_lo * AXON_NR_OWN,
                                 jc + axon_own_min(j_hi * AXON_NR_OWN, nc));
                }
            }
        }
    }
    return 1;
}

int axon_own_sgemm_available(void) { return axon_has_avx512(); }

int axon_own_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t sam, int64_t sak,
                   const float *B, int64_t sbk, int64_t sbn, float *C, int64_t scm, int threads,
                   axon_epilogue_fn epilogue, char *arena, void **io)
{
    /* The kernel broadcasts A's elements one at a time, so it reads A where it is (packing it
     * was 7 % of the time at batch 1024): the MR rows a tile reads stay in L1 while they meet
     * every panel of B, if either of A's strides is 1. */
    if (!axon_has_avx512() || M <= 0 || N <= 0 || K <= 0 || (sak != 1 && sam != 1))
        return 0;
    return axon_own_sgemm_run(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, threads > 0 ? threads : 1,
                              epilogue, arena, io);
}

#else /* no AVX-512 code here, or no OpenMP: programs keep the BLAS */

int axon_own_sgemm_available(void) { return 0; }

int axon_own_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t sam, int64_t sak,
                   const float *B, int64_t sbk, int64_t sbn, float *C, int64_t scm, int threads,
                   axon_epilogue_fn epilogue, char *arena, void **io)
{
    (void)M, (void)N, (void)K, (void)A, (void)sam, (void)sak, (void)B, (void)sbk, (void)sbn;
    (void)C, (void)scm, (void)threads, (void)epilogue, (void)arena, (void)io;
    return 0;
}
#endif
