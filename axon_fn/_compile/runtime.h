/* Runtime of axon_fn's native jit programs: included by every generated program (so each
 * call can be specialised for its constant sizes and strides), never by the kernels module.
 *
 * Small matrix products run here; products of at least AXON_BLAS_MIN multiply-adds go to the
 * BLAS that numpy loaded (its CBLAS gemm, whose address the program gets at load time through
 * axon_set_blas). Everything is C99 plus GCC/clang extensions; no -ffast-math, so NaN and inf
 * behave as in numpy.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define AXON_INLINE static inline __attribute__((always_inline))
#define AXON_BLAS_MIN ((int64_t)1 << 18)

enum { AXON_ROW_MAJOR = 101, AXON_NO_TRANS = 111, AXON_TRANS = 112 };
typedef void (*axon_sgemm_fn)(int, int, int, AXON_BLAS_INT, AXON_BLAS_INT, AXON_BLAS_INT, float,
                              const float *, AXON_BLAS_INT, const float *, AXON_BLAS_INT, float,
                              float *, AXON_BLAS_INT);
typedef void (*axon_dgemm_fn)(int, int, int, AXON_BLAS_INT, AXON_BLAS_INT, AXON_BLAS_INT,
                              double, const double *, AXON_BLAS_INT, const double *,
                              AXON_BLAS_INT, double, double *, AXON_BLAS_INT);
typedef void (*axon_sgemv_fn)(int, int, AXON_BLAS_INT, AXON_BLAS_INT, float, const float *,
                              AXON_BLAS_INT, const float *, AXON_BLAS_INT, float, float *,
                              AXON_BLAS_INT);
typedef void (*axon_dgemv_fn)(int, int, AXON_BLAS_INT, AXON_BLAS_INT, double, const double *,
                              AXON_BLAS_INT, const double *, AXON_BLAS_INT, double, double *,
                              AXON_BLAS_INT);
static axon_sgemm_fn axon_sgemm;
static axon_dgemm_fn axon_dgemm;
static axon_sgemv_fn axon_sgemv;
static axon_dgemv_fn axon_dgemv;

void axon_set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv)
{
    axon_sgemm = (axon_sgemm_fn)sgemm;
    axon_dgemm = (axon_dgemm_fn)dgemm;
    axon_sgemv = (axon_sgemv_fn)sgemv;
    axon_dgemv = (axon_dgemv_fn)dgemv;
}

AXON_INLINE float axon_sigmoid_float(float x)
{
    const float e = expf(-fabsf(x));
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
AXON_INLINE double axon_sigmoid_double(double x)
{
    const double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}
AXON_INLINE float axon_sign_float(float x) { return x != x ? x : (float)((x > 0) - (x < 0)); }
AXON_INLINE double axon_sign_double(double x) { return x != x ? x : (double)((x > 0) - (x < 0)); }

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
    typedef T axon_v_##T __attribute__((vector_size(AXON_VBYTES)));                           \
    typedef T axon_uv_##T                                                                      \
        __attribute__((vector_size(AXON_VBYTES), aligned(sizeof(T)), may_alias));             \
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
    /* rows M0..M of C, columns 0..N, as rows of B scaled by A's elements and summed: one  \
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
        const int64_t Mt = M - M % AXON_MR, Nt = N - N % AXON_NR_##T;                              \
        for (int64_t m = 0; m < Mt; m += AXON_MR)                                              \
            for (int64_t n = 0; n < Nt; n += AXON_NR_##T)                                          \
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
        if (scn == 1 && sbn == 1 && N >= AXON_NR_##T) {                                            \
            axon_tiled_##T(M, N, K, A, sam, sak, B, sbk, C, scm);                              \
        } else if (scn == 1 && sbk == 1 && N >= AXON_NR_##T && K * N <= 8192) {                    \
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

/* The same product through the BLAS when it is big enough to pay for the call and every
 * operand has a unit stride along one axis (row-major CBLAS, transposing A or B as needed). */
#define AXON_GEMM(T, BLAS, GEMV)                                                               \
    AXON_INLINE void axon_gemm_##T(int64_t M, int64_t N, int64_t K, const T *A, int64_t sam,   \
                                   int64_t sak, const T *B, int64_t sbk, int64_t sbn, T *C,    \
                                   int64_t scm, int64_t scn)                                   \
    {                                                                                          \
        /* one row times a big matrix: a matrix-vector product (numpy's choice too), which   \
         * streams the matrix once instead of packing it first */                              \
        if (GEMV && M == 1 && N * K >= AXON_BLAS_MIN && (sbn == 1 || sbk == 1)) {              \
            if (sbn == 1)                                                                      \
                GEMV(AXON_ROW_MAJOR, AXON_TRANS, K, N, 1, B, K > 1 ? sbk : N, A, sak, 0, C,    \
                     scn);                                                                     \
            else                                                                               \
                GEMV(AXON_ROW_MAJOR, AXON_NO_TRANS, N, K, 1, B, N > 1 ? sbn : K, A, sak, 0,    \
                     C, scn);                                                                  \
            return;                                                                            \
        }                                                                                      \
        if (BLAS && M * N * K >= AXON_BLAS_MIN && scn == 1 && (sak == 1 || sam == 1) &&        \
            (sbn == 1 || sbk == 1)) {                                                          \
            const int ta = sak == 1 ? AXON_NO_TRANS : AXON_TRANS;                              \
            const int tb = sbn == 1 ? AXON_NO_TRANS : AXON_TRANS;                              \
            const int64_t lda = sak == 1 ? (M > 1 ? sam : K) : (K > 1 ? sak : M);              \
            const int64_t ldb = sbn == 1 ? (K > 1 ? sbk : N) : (N > 1 ? sbn : K);              \
            const int64_t ldc = M > 1 ? scm : N;                                               \
            if (lda >= (sak == 1 ? K : M) && ldb >= (sbn == 1 ? N : K) && ldc >= N) {          \
                BLAS(AXON_ROW_MAJOR, ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, ldc);           \
                return;                                                                        \
            }                                                                                  \
        }                                                                                      \
        axon_small_gemm_##T(M, N, K, A, sam, sak, B, sbk, sbn, C, scm, scn);                   \
    }
AXON_GEMM(float, axon_sgemm, axon_sgemv)
AXON_GEMM(double, axon_dgemm, axon_dgemv)
