/* Runtime of axon_fn's native jit programs: included by every generated program (so each
 * call can be specialised for its constant sizes and strides), never by the kernels module.
 *
 * Small matrix products run here; products of at least AXON_BLAS_MIN multiply-adds go to the
 * BLAS that numpy loaded (its CBLAS gemm), or the biggest float ones to axon_fn's own product
 * (native/axon_gemm.c), whose addresses the program gets at load time (axon_set_runtime).
 * Everything is C99 plus GCC/clang extensions; no -ffast-math, so NaN and inf behave as in
 * numpy.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "scalar.h" /* the helpers elementwise expressions call (sigmoid, sign) */

#define AXON_INLINE static inline __attribute__((always_inline))
#define AXON_BLAS_MIN ((int64_t)1 << 18)

enum { AXON_ROW_MAJOR = 101, AXON_NO_TRANS = 111, AXON_TRANS = 112 };
typedef void (*axon_sgemm_fn)(int, int, int, AXON_BLAS_INT, AXON_BLAS_INT, AXON_BLAS_INT, float,
                              const float *, AXON_BLAS_INT, const float *, AXON_BLAS_INT, float,
                              float *, AXON_BLAS_INT);
typedef void (*axon_dgemm_fn)(int, int, int, AXON_BLAS_INT, AXON_BLAS_INT, AXON_BLAS_INT,
                              double, const double *, AXON_BLAS_INT, const double *,
                              AXON_BLAS_INT, double, double *, AXON_BLAS_INT);
static axon_sgemm_fn axon_sgemm;
static axon_dgemm_fn axon_dgemm;
static int axon_threads = 1;
static int axon_team = 1; /* the threads the running segment splits its work between */

/* In a segment that may split its work (axon_team > 1: see emit.py), loops of at least 2^15
 * elements (emit.py's PAR_MIN) are split between the threads, in AXON_CHUNKS chunks per thread
 * handed out dynamically (a thread another process keeps busy then delays only its own chunk),
 * and matrix-vector products of at least AXON_GEMV_PAR_MIN multiply-adds too. Below that,
 * waking the threads costs more than it saves. */
#define AXON_GEMV_PAR_MIN ((int64_t)1 << 16)
/* Products of at least this many multiply-adds are split between the threads by rows (or
 * columns) when the BLAS is held to one thread (emit.py's "held", which makes sure that each
 * share is at least 64 wide), one BLAS call a share. */
#define AXON_SPLIT_MIN ((int64_t)1 << 22)
#define AXON_CHUNKS 4
#ifdef _OPENMP
#include <omp.h>
AXON_INLINE int axon_thread_num(void) { return omp_get_thread_num(); }
AXON_INLINE int axon_team_size(void) { return omp_get_num_threads(); }
#else
AXON_INLINE int axon_thread_num(void) { return 0; }
AXON_INLINE int axon_team_size(void) { return 1; }
#endif
/* Where thread t's share of n rows (or columns) starts when n_threads split them: at a
 * multiple of 16, so every share but the last fills whole vectors. */
AXON_INLINE int64_t axon_block(int64_t n, int t, int n_threads)
{
    const int64_t at = (n * t / n_threads + 8) / 16 * 16;
    return t == n_threads ? n : (at < n ? at : n);
}
/* axon_fn's own float product (native/axon_gemm.c, in axon_fn's C kernels; AVX-512 only): its
 * address, or NULL where it cannot run or AXON_FN_JIT_OWN_GEMM=0 (program.py). It takes a big
 * product when the program has every core it may use (held; or one thread in all), with at most
 * 1/8 of its tiles' columns (AXON_OWN_NR wide) padding; and then runs the loop that follows the
 * product (its epilogue, emit.py) on each block of C as soon as the block is done. */
typedef void (*axon_epilogue_fn)(char *, void **, int64_t, int64_t, int64_t, int64_t);
typedef int (*axon_own_sgemm_fn)(int64_t, int64_t, int64_t, const float *, int64_t, int64_t,
                                 const float *, int64_t, int64_t, float *, int64_t, int,
                                 axon_epilogue_fn, char *, void **);
static axon_own_sgemm_fn axon_own_sgemm;
#define AXON_OWN_NR 64
AXON_INLINE int axon_own_fits(int64_t M, int64_t N, int64_t K)
{
    return axon_own_sgemm && axon_team == axon_threads && M > 1 && M * N * K >= AXON_SPLIT_MIN &&
           (N + AXON_OWN_NR - 1) / AXON_OWN_NR * AXON_OWN_NR * 8 <= N * 9;
}
#define axon_gemm_epilogue_float(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn, fn, arena, io) \
    (scn == 1 && axon_own_fits(M, N, K) &&                                                     \
     axon_own_sgemm(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, axon_team, fn, arena, io))
#define AXON_OWN_float(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn)                        \
    axon_gemm_epilogue_float(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn, NULL, NULL, NULL)
#define AXON_OWN_double(...) 0

/* The BLAS's gemm, axon_fn's own product (or NULL), and the threads this program may use. */
void axon_set_runtime(void *sgemm, void *dgemm, void *own_sgemm, int threads)
{
    axon_sgemm = (axon_sgemm_fn)sgemm;
    axon_dgemm = (axon_dgemm_fn)dgemm;
    axon_own_sgemm = (axon_own_sgemm_fn)own_sgemm;
    axon_threads = threads > 0 ? threads : 1;
}
AXON_INLINE int64_t axon_chunk(int64_t n, int64_t align)
{
    const int64_t parts = AXON_CHUNKS * (int64_t)axon_team;
    const int64_t chunk = ((n + parts - 1) / parts + align - 1) / align * align;
    return chunk > align ? chunk : align;
}

/* C[m, n] = sum_k A[m, k] B[k, n] for one matrix of a (batched) product, every operand given by
 * its element strides, for products too small to pay for a BLAS call.
 *
 * When B is contiguous along n, tiles of AXON_MR rows by two vectors of C are summed in
 * registers over the whole of k (the compiler keeps the tile's accumulators in vector
 * registers: fixed sizes, fully unrolled), each step broadcasting one element of A against a
 * row of B. When B is contiguous along k instead (a product with a transposed matrix) and
 * small, it is first copied transposed onto the stack so the same tiles apply; otherwise dot
 * products vectorized along k. Edges of C that do not fill a tile take a plain loop. */
#define AXON_MR 4
#if defined(__AVX512F__) /* full-width vectors: the small MLP step's products take 30 % less */
#define AXON_VBYTES 64
#else
#define AXON_VBYTES 32
#endif
#define AXON_SMALL_GEMM(T)                                                                     \
    typedef T axon_v_##T __attribute__((vector_size(AXON_VBYTES)));                            \
    typedef T axon_uv_##T                                                                      \
        __attribute__((vector_size(AXON_VBYTES), aligned(sizeof(T)), may_alias));              \
    enum { AXON_NR_##T = 2 * AXON_VBYTES / (int)sizeof(T) };                                   \
    AXON_INLINE void axon_tile_##T(int64_t K, const T *A, int64_t sam, int64_t sak,            \
                                   const T *B, int64_t sbk, T *C, int64_t scm)                 \
    {                                                                                          \
        axon_v_##T acc[AXON_MR][2] = {{{0}}};                                                  \
        for (int64_t k = 0; k < K; k++) {                                                      \
            const axon_v_##T b0 = *(const axon_uv_##T *)(B + k * sbk);                         \
            const axon_v_##T b1 = *(const axon_uv_##T *)(B + k * sbk + AXON_NR_##T / 2);       \
            for (int r = 0; r < AXON_MR; r++) {                                                \
                const T a = A[r * sam + k * sak];                                              \
                acc[r][0] += a * b0;                                                           \
                acc[r][1] += a * b1;                                                           \
            }                                                                                  \
        }                                                                                      \
        for (int r = 0; r < AXON_MR; r++) {                                                    \
            *(axon_uv_##T *)(C + r * scm) = acc[r][0];                                         \
            *(axon_uv_##T *)(C + r * scm + AXON_NR_##T / 2) = acc[r][1];                       \
        }                                                                                      \
    }                                                                                          \
    AXON_INLINE void axon_rows_##T(int64_t M0, int64_t M, int64_t N0, int64_t N, int64_t K,    \
                                   const T *A, int64_t sam, int64_t sak, const T *B,           \
                                   int64_t sbk, int64_t sbn, T *C, int64_t scm, int64_t scn)   \
    {                                                                                          \
        for (int64_t m = M0; m < M; m++)                                                       \
            for (int64_t n = N0; n < N; n++) {                                                 \
                T s = 0;                                                                       \
                for (int64_t k = 0; k < K; k++)                                                \
                    s += A[m * sam + k * sak] * B[k * sbk + n * sbn];                          \
                C[m * scm + n * scn] = s;                                                      \
            }                                                                                  \
    }                                                                                          \
    /* rows M0..M of C, columns 0..N, as rows of B scaled by A's elements and summed: one      \
     * vectorized pass over a row of C per k (B and C contiguous along n) */                   \
    AXON_INLINE void axon_scaled_rows_##T(int64_t M0, int64_t M, int64_t N, int64_t K,         \
                                          const T *A, int64_t sam, int64_t sak, const T *B,    \
                                          int64_t sbk, T *C, int64_t scm)                      \
    {                                                                                          \
        for (int64_t m = M0; m < M; m++) {                                                     \
            T *restrict c = C + m * scm;                                                       \
            for (int64_t n = 0; n < N; n++)                                                    \
                c[n] = 0;                                                                      \
            for (int64_t k = 0; k < K; k++) {                                                  \
                const T a = A[m * sam + k * sak];                                              \
                const T *restrict b = B + k * sbk;                                             \
                for (int64_t n = 0; n < N; n++)                                                \
                    c[n] += a * b[n];                                                          \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    AXON_INLINE void axon_tiled_##T(int64_t M, int64_t N, int64_t K, const T *A, int64_t sam,  \
                                    int64_t sak, const T *B, int64_t sbk, T *C, int64_t scm)   \
    {                                                                                          \
        const int64_t Mt = M - M % AXON_MR, Nt = N - N % AXON_NR_##T;                          \
        for (int64_t m = 0; m < Mt; m += AXON_MR)                                              \
            for (int64_t n = 0; n < Nt; n += AXON_NR_##T)                                      \
                axon_tile_##T(K, A + m * sam, sam, sak, B + n, sbk, C + m * scm + n, scm);     \
        if (Nt < N) /* the right edge, every row */                                            \
            axon_rows_##T(0, M, Nt, N, K, A, sam, sak, B, sbk, 1, C, scm, 1);                  \
        /* the bottom edge, the tiled columns */                                               \
        axon_scaled_rows_##T(Mt, M, Nt, K, A, sam, sak, B, sbk, C, scm);                       \
    }                                                                                          \
    AXON_INLINE void axon_small_gemm_##T(int64_t M, int64_t N, int64_t K, const T *A,          \
                                         int64_t sam, int64_t sak, const T *B, int64_t sbk,    \
                                         int64_t sbn, T *C, int64_t scm, int64_t scn)          \
    {                                                                                          \
        if (scn == 1 && sbn == 1 && N >= AXON_NR_##T) {                                        \
            axon_tiled_##T(M, N, K, A, sam, sak, B, sbk, C, scm);                              \
        } else if (scn == 1 && sbk == 1 && N >= AXON_NR_##T && K * N <= 8192) {                \
            T Bt[K * N]; /* B transposed into rows: at most 64 KiB of stack */                 \
            for (int64_t n = 0; n < N; n++)                                                    \
                for (int64_t k = 0; k < K; k++)                                                \
                    Bt[k * N + n] = B[n * sbn + k];                                            \
            axon_tiled_##T(M, N, K, A, sam, sak, Bt, N, C, scm);                               \
        } else if (sak == 1 && sbk == 1) {                                                     \
            for (int64_t m = 0; m < M; m++)                                                    \
                for (int64_t n = 0; n < N; n++) {                                              \
                    const T *restrict a = A + m * sam;                                         \
                    const T *restrict b = B + n * sbn;                                         \
                    T s = 0;                                                                   \
                    _Pragma("omp simd reduction(+ : s)") for (int64_t k = 0; k < K; k++)       \
                        s += a[k] * b[k];                                                      \
                    C[m * scm + n * scn] = s;                                                  \
                }                                                                              \
        } else if (sbn == 1 && scn == 1) {                                                     \
            axon_scaled_rows_##T(0, M, N, K, A, sam, sak, B, sbk, C, scm);                     \
        } else {                                                                               \
            axon_rows_##T(0, M, 0, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn);               \
        }                                                                                      \
    }
AXON_SMALL_GEMM(float)
AXON_SMALL_GEMM(double)

/* y = x B for one row x. B contiguous along n: y[lo..hi) of the rows k0..k1 of B, scaled by
 * x's elements and summed, four rows a pass so y stays in L1. B contiguous along k: a dot
 * product per column. */
#define AXON_GEMV(T)                                                                           \
    AXON_INLINE void axon_gemv_rows_##T(int64_t k0, int64_t k1, int64_t lo, int64_t hi,        \
                                        const T *x, int64_t sx, const T *B, int64_t sbk,       \
                                        T *restrict y)                                         \
    {                                                                                          \
        for (int64_t n = lo; n < hi; n++)                                                      \
            y[n] = 0;                                                                          \
        int64_t k = k0;                                                                        \
        for (; k + 4 <= k1; k += 4) {                                                          \
            const T x0 = x[k * sx], x1 = x[(k + 1) * sx], x2 = x[(k + 2) * sx],                \
                    x3 = x[(k + 3) * sx];                                                      \
            const T *restrict b0 = B + k * sbk, *restrict b1 = b0 + sbk,                       \
                              *restrict b2 = b1 + sbk, *restrict b3 = b2 + sbk;                \
            for (int64_t n = lo; n < hi; n++)                                                  \
                y[n] += x0 * b0[n] + x1 * b1[n] + x2 * b2[n] + x3 * b3[n];                     \
        }                                                                                      \
        for (; k < k1; k++) {                                                                  \
            const T xk = x[k * sx];                                                            \
            const T *restrict b = B + k * sbk;                                                 \
            for (int64_t n = lo; n < hi; n++)                                                  \
                y[n] += xk * b[n];                                                             \
        }                                                                                      \
    }                                                                                          \
    AXON_INLINE void axon_gemv_dots_##T(int64_t lo, int64_t hi, int64_t K, const T *x,         \
                                        int64_t sx, const T *B, int64_t sbk, int64_t sbn,      \
                                        T *y, int64_t sy)                                      \
    {                                                                                          \
        for (int64_t n = lo; n < hi; n++) {                                                    \
            const T *restrict b = B + n * sbn;                                                 \
            T s = 0;                                                                           \
            _Pragma("omp simd reduction(+ : s)") for (int64_t k = 0; k < K; k++)               \
                s += x[k * sx] * b[k * sbk];                                                   \
            y[n * sy] = s;                                                                     \
        }                                                                                      \
    }                                                                                          \
    /* Split between the threads so that each reads one contiguous block of B, the same one    \
     * every call (a block that fits its core's cache stays there): B contiguous along n by    \
     * rows, each thread summing its rows' share of y, added up after a barrier; else by       \
     * columns. */                                                                             \
    AXON_INLINE void axon_gemv_##T(int64_t N, int64_t K, const T *x, int64_t sx, const T *B,   \
                                   int64_t sbk, int64_t sbn, T *y, int64_t sy)                 \
    {                                                                                          \
        int parts = N * K >= AXON_GEMV_PAR_MIN ? axon_team : 1;                                \
        const int by_rows = sbn == 1 && sy == 1;                                               \
        if (by_rows && (int64_t)(parts - 1) * N * (int64_t)sizeof(T) > ((int64_t)1 << 18))     \
            parts = 1; /* no room on the stack for the partial sums */                         \
        if (parts == 1) {                                                                      \
            if (by_rows)                                                                       \
                axon_gemv_rows_##T(0, K, 0, N, x, sx, B, sbk, y);                              \
            else                                                                               \
                axon_gemv_dots_##T(0, N, K, x, sx, B, sbk, sbn, y, sy);                        \
            return;                                                                            \
        }                                                                                      \
        T partial[by_rows ? (parts - 1) * N : 1];                                              \
        _Pragma("omp parallel num_threads(parts)")                                             \
        {                                                                                      \
            const int t = axon_thread_num(), n_threads = axon_team_size();                     \
            if (by_rows) {                                                                     \
                const int64_t k0 = K * t / n_threads, k1 = K * (t + 1) / n_threads;            \
                axon_gemv_rows_##T(k0, k1, 0, N, x, sx, B, sbk,                                \
                                   t == 0 ? y : partial + (t - 1) * N);                        \
                _Pragma("omp barrier")                                                         \
                const int64_t lo = N * t / n_threads, hi = N * (t + 1) / n_threads;            \
                for (int u = 1; u < n_threads; u++)                                            \
                    for (int64_t n = lo; n < hi; n++)                                          \
                        y[n] += partial[(u - 1) * N + n];                                      \
            } else {                                                                           \
                axon_gemv_dots_##T(N * t / n_threads, N * (t + 1) / n_threads, K, x, sx, B,    \
                                   sbk, sbn, y, sy);                                           \
            }                                                                                  \
        }                                                                                      \
    }
AXON_GEMV(float)
AXON_GEMV(double)

/* The same product through the BLAS when it is big enough to pay for the call and every
 * operand has a unit stride along one axis (row-major CBLAS, transposing A or B as needed). */
#define AXON_GEMM(T, BLAS)                                                                     \
    AXON_INLINE void axon_gemm_##T(int64_t M, int64_t N, int64_t K, const T *A, int64_t sam,   \
                                   int64_t sak, const T *B, int64_t sbk, int64_t sbn, T *C,    \
                                   int64_t scm, int64_t scn)                                   \
    {                                                                                          \
        /* one row times a matrix: streams the matrix once, split between the threads */       \
        if (M == 1) {                                                                          \
            axon_gemv_##T(N, K, A, sak, B, sbk, sbn, C, scn);                                  \
            return;                                                                            \
        }                                                                                      \
        if (AXON_OWN_##T(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn))                      \
            return;                                                                            \
        if (BLAS && M * N * K >= AXON_BLAS_MIN && scn == 1 && (sak == 1 || sam == 1) &&        \
            (sbn == 1 || sbk == 1)) {                                                          \
            const int ta = sak == 1 ? AXON_NO_TRANS : AXON_TRANS;                              \
            const int tb = sbn == 1 ? AXON_NO_TRANS : AXON_TRANS;                              \
            const int64_t lda = sak == 1 ? (M > 1 ? sam : K) : (K > 1 ? sak : M);              \
            const int64_t ldb = sbn == 1 ? (K > 1 ? sbk : N) : (N > 1 ? sbn : K);              \
            const int64_t ldc = M > 1 ? scm : N;                                               \
            if (lda >= (sak == 1 ? K : M) && ldb >= (sbn == 1 ? N : K) && ldc >= N) {          \
                if (axon_team == 1 || M * N * K < AXON_SPLIT_MIN) {                            \
                    BLAS(AXON_ROW_MAJOR, ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, ldc);       \
                    return;                                                                    \
                }                                                                              \
                /* the BLAS is held to one thread (emit.py's "held"): a block each of the      \
                 * longer side, so each thread reads only its share of the bigger operand      \
                 * (by rows when M < N, each read all of a weight that the last training step  \
                 * wrote: the step took 8 % longer) */                                         \
                const int by_rows = M >= N;                                                    \
                const int64_t L = by_rows ? M : N;                                             \
                _Pragma("omp parallel num_threads(axon_team)")                                 \
                {                                                                              \
                    const int t = axon_thread_num(), n_threads = axon_team_size();             \
                    const int64_t lo = axon_block(L, t, n_threads),                            \
                                  hi = axon_block(L, t + 1, n_threads);                        \
                    if (hi > lo) {                                                             \
                        if (by_rows)                                                           \
                            BLAS(AXON_ROW_MAJOR, ta, tb, hi - lo, N, K, 1, A + lo * sam, lda,  \
                                 B, ldb, 0, C + lo * scm, ldc);                                \
                        else                                                                   \
                            BLAS(AXON_ROW_MAJOR, ta, tb, M, hi - lo, K, 1, A, lda,             \
                                 B + lo * sbn, ldb, 0, C + lo, ldc);                           \
                    }                                                                          \
                }                                                                              \
                return;                                                                        \
            }                                                                                  \
        }                                                                                      \
        axon_small_gemm_##T(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn);                   \
    }
AXON_GEMM(float, axon_sgemm)
AXON_GEMM(double, axon_dgemm)
