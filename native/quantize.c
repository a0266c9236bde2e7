/* axon_fn int8 weight-only matrix product (see quantize.h for the contract).
 *
 * y = (x @ q) * scale + bias with x float32 (rows x k), q int8 (k x n, C order), one scale per
 * column. The product is tiled into blocks of MR rows by NB columns; a tile keeps its MR x NB
 * float sums in registers for the whole of k. For each i of k it widens one row segment of q
 * (NB int8, contiguous) to float in registers (sign extension, then int -> float conversion)
 * and adds x[r, i] * q[i, j0:j0+NB] into every row's sums with fused multiply-adds, so the
 * widening is paid once per MR rows and the weights are only ever read as int8 (a quarter of
 * the bytes of float32: a batch-1 product, which reads every weight once and is limited by
 * memory traffic, moves four times fewer bytes). The scale, bias and ReLU are applied to the
 * sums once, at the end.
 *
 * Instruction sets, picked at run time for the running CPU (never -march=native at build time):
 *   - AVX-512 (F, BW, DQ, VL): NB = 64 columns (4 zmm), MR = 6 rows: 24 accumulators, 4 weight
 *     vectors and a broadcast fill 29 of the 32 registers; partial tiles use masked loads.
 *   - AVX2 + FMA: NB = 16 columns (2 ymm), MR = 6 rows: 12 accumulators + 2 + 1 = 15 of 16;
 *     a single row (batch 1) takes 64 columns at a time, 8 sums, to hide the FMA latency (two
 *     sums left the FMA units idle: batch 1 ran at half the speed). A last panel of fewer than
 *     16 columns is copied zero-padded first (AVX2 has no byte-masked load).
 *   - portable C (any compiler and architecture): NB = 16, MR = 4, plain loops the compiler may
 *     vectorize for the baseline instruction set.
 * The x86 paths are functions with GCC/clang target attributes, compiled even when the build
 * targets baseline x86-64, and called only when __builtin_cpu_supports says the CPU (and OS)
 * has the instructions.
 *
 * OpenMP splits the tiles between threads (column blocks outermost, so a thread reuses one
 * panel of q across its row blocks) above Q8_PAR_MIN multiply-adds; below that one thread
 * does the work, as waking a team costs more than a small product.
 */
#include "quantize.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(AXON_NO_Q8_SIMD)
#define Q8_X86 1
#include <immintrin.h>
#else
#define Q8_X86 0
#endif

#define Q8_PAR_MIN ((int64_t)1 << 22)

typedef void (*q8_tile_fn)(const float *x, const int8_t *q, const float *scale,
                           const float *bias, float *y, int64_t k, int64_t n, int64_t r0, int mr,
                           int64_t j0, int w, int relu);

/* ---- portable C ------------------------------------------------------------------------- */

#define P_NB 16
#define P_MR 4

static void q8_tile_portable(const float *x, const int8_t *q, const float *scale,
                             const float *bias, float *y, int64_t k, int64_t n, int64_t r0, int mr,
                             int64_t j0, int w, int relu)
{
    float acc[P_MR][P_NB];
    float wf[P_NB];
    memset(acc, 0, sizeof acc);
    for (int64_t i = 0; i < k; i++) {
        const int8_t *qi = q + i * n + j0;
        for (int c = 0; c < w; c++)
            wf[c] = (float)qi[c];
        for (int r = 0; r < mr; r++) {
            const float xv = x[(r0 + r) * k + i];
            for (int c = 0; c < w; c++)
                acc[r][c] += xv * wf[c];
        }
    }
    for (int r = 0; r < mr; r++) {
        float *yr = y + (r0 + r) * n + j0;
        for (int c = 0; c < w; c++) {
            float v = acc[r][c] * scale[j0 + c] + (bias ? bias[j0 + c] : 0.0f);
            yr[c] = (relu && v < 0.0f) ? 0.0f : v; /* NaN < 0 is false: NaN passes */
        }
    }
}

#if Q8_X86

/* ---- AVX-512 ---------------------------------------------------------------------------- */

#define Q8_T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define Q8_T256 __attribute__((target("avx2,fma")))
#define Q8_INLINE static inline __attribute__((always_inline))

Q8_INLINE Q8_T512 __mmask16 q8_mask16(int w)
{
    return w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (w > 0 ? w : 0)) - 1u);
}

Q8_INLINE Q8_T512 void q8_tile512_body(const float *x, const int8_t *q, const float *scale,
                                       const float *bias, float *y, int64_t k, int64_t n,
                                       int64_t r0, const int mr, int64_t j0, int w, int relu)
{
    __m512 acc[6][4];
    for (int r = 0; r < 6; r++)
        for (int v = 0; v < 4; v++)
            acc[r][v] = _mm512_setzero_ps();
    const int8_t *qp = q + j0;
    const float *xp = x + r0 * k;
    if (w == 64) {
        for (int64_t i = 0; i < k; i++, qp += n) {
            __m512 wv[4];
            for (int v = 0; v < 4; v++)
                wv[v] = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qp + 16 * v))));
            for (int r = 0; r < mr; r++) {
                const __m512 xb = _mm512_set1_ps(xp[r * k + i]);
                for (int v = 0; v < 4; v++)
                    acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
            }
        }
    } else { /* a partial tile: masked loads (masked-off bytes are never read) */
        __mmask16 m[4];
        for (int v = 0; v < 4; v++)
            m[v] = q8_mask16(w - 16 * v);
        for (int64_t i = 0; i < k; i++, qp += n) {
            __m512 wv[4];
            for (int v = 0; v < 4; v++)
                wv[v] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m[v],
                                                                                 qp + 16 * v)));
            for (int r = 0; r < mr; r++) {
                const __m512 xb = _mm512_set1_ps(xp[r * k + i]);
                for (int v = 0; v < 4; v++)
                    acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int v = 0; v < 4; v++) {
        if (16 * v >= w)
            break;
        const __mmask16 m = q8_mask16(w - 16 * v);
        const __m512 s = _mm512_maskz_loadu_ps(m, scale + j0 + 16 * v);
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + j0 + 16 * v) : zero;
        for (int r = 0; r < mr; r++) {
            __m512 o = _mm512_fmadd_ps(acc[r][v], s, b);
            if (relu)
                o = _mm512_max_ps(zero, o); /* the second operand is returned for NaN */
            _mm512_mask_storeu_ps(y + (r0 + r) * n + j0 + 16 * v, m, o);
        }
    }
}

static Q8_T512 void q8_tile_avx512(const float *x, const int8_t *q, const float *scale,
                                   const float *bias, float *y, int64_t k, int64_t n, int64_t r0,
                                   int mr, int64_t j0, int w, int relu)
{
    switch (mr) { /* each case a copy specialized for its row count */
    case 6: q8_tile512_body(x, q, scale, bias, y, k, n, r0, 6, j0, w, relu); break;
    case 5: q8_tile512_body(x, q, scale, bias, y, k, n, r0, 5, j0, w, relu); break;
    case 4: q8_tile512_body(x, q, scale, bias, y, k, n, r0, 4, j0, w, relu); break;
    case 3: q8_tile512_body(x, q, scale, bias, y, k, n, r0, 3, j0, w, relu); break;
    case 2: q8_tile512_body(x, q, scale, bias, y, k, n, r0, 2, j0, w, relu); break;
    default: q8_tile512_body(x, q, scale, bias, y, k, n, r0, 1, j0, w, relu); break;
    }
}

/* ---- AVX2 + FMA ------------------------------------------------------------------------- */

/* The sums of rows r0..r0+mr of 16 columns, reading q with row stride ldq. */
Q8_INLINE Q8_T256 void q8_tile256_body(const float *x, const int8_t *q, int64_t ldq,
                                       const float *scale, const float *bias, float *y, int64_t k,
                                       int64_t n, int64_t r0, const int mr, int64_t j0, int w,
                                       int relu)
{
    __m256 acc[6][2];
    for (int r = 0; r < 6; r++)
        for (int v = 0; v < 2; v++)
            acc[r][v] = _mm256_setzero_ps();
    const float *xp = x + r0 * k;
    for (int64_t i = 0; i < k; i++, q += ldq) {
        __m256 wv[2];
        for (int v = 0; v < 2; v++)
            wv[v] = _mm256_cvtepi32_ps(
                _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8 * v))));
        for (int r = 0; r < mr; r++) {
            const __m256 xb = _mm256_set1_ps(xp[r * k + i]);
            for (int v = 0; v < 2; v++)
                acc[r][v] = _mm256_fmadd_ps(xb, wv[v], acc[r][v]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    float s_buf[16] = {0}, b_buf[16] = {0}, o_buf[16];
    for (int c = 0; c < w; c++) {
        s_buf[c] = scale[j0 + c];
        b_buf[c] = bias ? bias[j0 + c] : 0.0f;
    }
    for (int r = 0; r < mr; r++) {
        for (int v = 0; v < 2; v++) {
            __m256 o = _mm256_fmadd_ps(acc[r][v], _mm256_loadu_ps(s_buf + 8 * v),
                                       _mm256_loadu_ps(b_buf + 8 * v));
            if (relu)
                o = _mm256_max_ps(zero, o); /* the second operand is returned for NaN */
            _mm256_storeu_ps(o_buf + 8 * v, o);
        }
        float *dst = y + (r0 + r) * n + j0;
        for (int c = 0; c < w; c++)
            dst[c] = o_buf[c];
    }
}

static Q8_T256 void q8_tile256(const float *x, const int8_t *q, int64_t ldq, const float *scale,
                               const float *bias, float *y, int64_t k, int64_t n, int64_t r0,
                               int mr, int64_t j0, int w, int relu)
{
    switch (mr) { /* each case a copy specialized for its row count */
    case 6: q8_tile256_body(x, q, ldq, scale, bias, y, k, n, r0, 6, j0, w, relu); break;
    case 5: q8_tile256_body(x, q, ldq, scale, bias, y, k, n, r0, 5, j0, w, relu); break;
    case 4: q8_tile256_body(x, q, ldq, scale, bias, y, k, n, r0, 4, j0, w, relu); break;
    case 3: q8_tile256_body(x, q, ldq, scale, bias, y, k, n, r0, 3, j0, w, relu); break;
    case 2: q8_tile256_body(x, q, ldq, scale, bias, y, k, n, r0, 2, j0, w, relu); break;
    default: q8_tile256_body(x, q, ldq, scale, bias, y, k, n, r0, 1, j0, w, relu); break;
    }
}

/* One row by 64 columns: 8 independent sums hide the latency of the multiply-adds (two sums,
 * as in a 16-column tile of one row, leave the FMA units idle most of the time). */
static Q8_T256 void q8_row64_avx2(const float *x, const int8_t *q, const float *scale,
                                  const float *bias, float *y, int64_t k, int64_t n, int64_t r0,
                                  int64_t j0, int relu)
{
    __m256 acc[8];
    for (int v = 0; v < 8; v++)
        acc[v] = _mm256_setzero_ps();
    const float *xp = x + r0 * k;
    const int8_t *qp = q + j0;
    for (int64_t i = 0; i < k; i++, qp += n) {
        const __m256 xb = _mm256_set1_ps(xp[i]);
        for (int v = 0; v < 8; v++)
            acc[v] = _mm256_fmadd_ps(xb, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                              _mm_loadl_epi64((const __m128i *)(qp + 8 * v)))),
                                     acc[v]);
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int v = 0; v < 8; v++) {
        const __m256 b = bias ? _mm256_loadu_ps(bias + j0 + 8 * v) : zero;
        __m256 o = _mm256_fmadd_ps(acc[v], _mm256_loadu_ps(scale + j0 + 8 * v), b);
        if (relu)
            o = _mm256_max_ps(zero, o);
        _mm256_storeu_ps(y + r0 * n + j0 + 8 * v, o);
    }
}

/* A tile of up to 6 rows by up to 64 columns: 16-column tiles (64-column rows for a single
 * row); a last panel of fewer than 16 columns is first copied, zero-padded to 16, into a
 * buffer (AVX2 has no byte-masked load), or runs on the portable tile if that buffer cannot
 * be allocated. */
static Q8_T256 void q8_tile_avx2(const float *x, const int8_t *q, const float *scale,
                                 const float *bias, float *y, int64_t k, int64_t n, int64_t r0,
                                 int mr, int64_t j0, int w, int relu)
{
    int c = 0;
    if (mr == 1)
        for (; c + 64 <= w; c += 64)
            q8_row64_avx2(x, q, scale, bias, y, k, n, r0, j0 + c, relu);
    for (; c + 16 <= w; c += 16)
        q8_tile256(x, q + j0 + c, n, scale, bias, y, k, n, r0, mr, j0 + c, 16, relu);
    if (c < w) {
        const int tail = w - c;
        int8_t *panel = k > 0 ? calloc((size_t)k, 16) : NULL;
        if (panel == NULL) {
            q8_tile_portable(x, q, scale, bias, y, k, n, r0, mr, j0 + c, tail, relu);
            return;
        }
        for (int64_t i = 0; i < k; i++)
            memcpy(panel + 16 * i, q + i * n + j0 + c, (size_t)tail);
        q8_tile256(x, panel, 16, scale, bias, y, k, n, r0, mr, j0 + c, tail, relu);
        free(panel);
    }
}

#endif /* Q8_X86 */

/* ---- dispatch --------------------------------------------------------------------------- */

static int q8_best = -1;   /* what the CPU supports, found on first use */
static int q8_active = -1; /* what is used: q8_best unless axon_q8_set_isa lowered it */

static int q8_detect(void)
{
#if Q8_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 1;
#endif
    return 0;
}

int axon_q8_isa(void)
{
    if (q8_best < 0) {
        q8_best = q8_detect();
        if (q8_active < 0)
            q8_active = q8_best;
    }
    return q8_active;
}

int axon_q8_set_isa(int isa)
{
    axon_q8_isa();
    q8_active = (isa < 0 || isa > q8_best) ? q8_best : isa;
    return q8_active;
}

int axon_q8_matmul_f32(const float *x, const int8_t *q, const float *scale, const float *bias,
                       float *y, int64_t rows, int64_t k, int64_t n, int relu)
{
    const int isa = axon_q8_isa();
    q8_tile_fn tile = q8_tile_portable;
    int nb = P_NB, mr = P_MR;
#if Q8_X86
    if (isa == 2) {
        tile = q8_tile_avx512;
        nb = 64;
        mr = 6;
    } else if (isa == 1) {
        tile = q8_tile_avx2;
        nb = 64;
        mr = 6;
    }
#endif
    if (rows <= 0 || n <= 0)
        return isa;
    const int64_t col_blocks = (n + nb - 1) / nb, row_blocks = (rows + mr - 1) / mr;
    const int64_t tiles = col_blocks * row_blocks;
    const int parallel = rows * k * n >= Q8_PAR_MIN && tiles > 1;
    (void)parallel;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (parallel)
#endif
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t cb = t / row_blocks, rb = t % row_blocks;
        const int64_t r0 = rb * mr, j0 = cb * nb;
        const int64_t mr_here = rows - r0 < mr ? rows - r0 : mr;
        const int64_t w_here = n - j0 < nb ? n - j0 : nb;
        tile(x, q, scale, bias, y, k, n, r0, (int)mr_here, j0, (int)w_here, relu);
    }
    return isa;
}
