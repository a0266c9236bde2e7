/* axon_fn C kernels: what every family file (native/axon_*.c) shares. Static inline helpers
 * and macros only, so that a family which does not use one gets no code and no warning for it.
 *
 * C99 plus GCC/clang vector extensions, no -ffast-math: NaN and inf behave as in numpy.
 * (build_native.py adds -fno-trapping-math, which only lets the compiler evaluate both arms of a
 * select so that those loops vectorize; results, NaN and inf included, are unchanged.)
 *
 * Instruction sets: with GCC on x86-64 glibc the hot loops are target_clones (AVX-512, AVX2+FMA,
 * baseline), picked for the running CPU when the module loads; no -march=native anywhere.
 *
 * exp is a branch-free polynomial (Cephes' coefficients, about 1 ulp, denormals, overflow to inf
 * and NaN handled) so that loops calling it vectorize; libm's exp is a scalar call.
 *
 * OpenMP parallelizes over the batch (conv, pool), rows (softmax) or elements, only above
 * AXON_PAR_MIN elements of work so that small calls do not pay for waking threads, and hands the
 * work out dynamically (see axon_chunk and AXON_SPLIT).
 *
 * Element types: the kernels are written once for a generic T and instantiated for float and
 * double by axon_template.h; SFX(name) appends the type's suffix (_f32, _f64).
 */
#ifndef AXON_COMMON_H
#define AXON_COMMON_H

#include "axon_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define AXON_PAR_MIN ((int64_t)1 << 15)

#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict
#endif

/* The direct convolutions use GCC/clang vector extensions; other compilers build everything
 * else, and the wrappers then run those convolutions on im2col + BLAS. */
#if defined(__GNUC__)
#define AXON_HAVE_VECTORS 1
#else
#define AXON_HAVE_VECTORS 0
#endif

/* ---- exp -------------------------------------------------------------------------------- */

static inline int32_t axon_bits_f32(float f) { int32_t i; memcpy(&i, &f, sizeof i); return i; }
static inline float axon_from_bits_f32(int32_t i) { float f; memcpy(&f, &i, sizeof f); return f; }
static inline int64_t axon_bits_f64(double f) { int64_t i; memcpy(&i, &f, sizeof i); return i; }
static inline double axon_from_bits_f64(int64_t i) { double f; memcpy(&f, &i, sizeof f); return f; }

static inline float axon_sexp_f32(float x)
{
    /* exp(x) = 2^n exp(r), |r| <= ln2/2; 2^n applied as two factors so that results in the
     * denormal range and overflow to inf come out right. */
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float xc = x > 88.8f ? 88.8f : x;
    xc = xc < -104.0f ? -104.0f : xc;
    xc = x != x ? 0.0f : xc;
    float t = xc * 1.44269504088896341f + magic;
    float fn = t - magic;
    int32_t n = axon_bits_f32(t) - axon_bits_f32(magic);
    float t1 = fn * 0.5f + magic;
    int32_t n1 = axon_bits_f32(t1) - axon_bits_f32(magic);
    int32_t n2 = n - n1;
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    y = y * axon_from_bits_f32((n1 + 127) << 23);
    y = y * axon_from_bits_f32((n2 + 127) << 23);
    return x != x ? x : y;
}

static inline double axon_sexp_f64(double x)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double xc = x > 709.79 ? 709.79 : x;
    xc = xc < -745.2 ? -745.2 : xc;
    xc = x != x ? 0.0 : xc;
    double t = xc * 1.4426950408889634073599 + magic;
    double fn = t - magic;
    int64_t n = axon_bits_f64(t) - axon_bits_f64(magic);
    double t1 = fn * 0.5 + magic;
    int64_t n1 = axon_bits_f64(t1) - axon_bits_f64(magic);
    int64_t n2 = n - n1;
    double r = xc - fn * 6.93145751953125e-1;
    r = r - fn * 1.42860682030941723212e-6;
    double rr = r * r;
    double p = 1.26177193074810590878e-4;
    p = p * rr + 3.02994407707441961300e-2;
    p = p * rr + 9.99999999999999999910e-1;
    p = p * r;
    double q = 3.00198505138664455042e-6;
    q = q * rr + 2.52448340349684104192e-3;
    q = q * rr + 2.27265548208155028766e-1;
    q = q * rr + 2.00000000000000000009e0;
    double y = 1.0 + 2.0 * (p / (q - p));
    y = y * axon_from_bits_f64((n1 + 1023) << 52);
    y = y * axon_from_bits_f64((n2 + 1023) << 52);
    return x != x ? x : y;
}

/* tanh: odd polynomial / rational function below |x| = 0.625, 1 - 2/(exp(2|x|) + 1) above. */
static inline float axon_stanh_f32(float x)
{
    float a = x < 0.0f ? -x : x;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float big = 1.0f - 2.0f / (axon_sexp_f32(a + a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

static inline double axon_stanh_f64(double x)
{
    double a = x < 0.0 ? -x : x;
    double z = x * x;
    double p = -9.64399179425052238628e-1;
    p = p * z - 9.92877231001918586564e1;
    p = p * z - 1.61468768441708447952e3;
    double q = z + 1.12811678491632931402e2;
    q = q * z + 2.23548839060100448583e3;
    q = q * z + 4.84406305325125486048e3;
    double small = x + x * z * (p / q);
    double big = 1.0 - 2.0 / (axon_sexp_f64(a + a) + 1.0);
    big = x < 0.0 ? -big : big;
    return a < 0.625 ? small : big;
}

/* ---- instruction sets and thread shares --------------------------------------------------- */

/* With GCC on x86-64 glibc systems the hot span functions are compiled three times (AVX-512,
 * AVX2 + FMA, baseline x86-64) and the best one for the running CPU is picked when the module
 * loads: one binary that runs everywhere, fast on recent CPUs. Elsewhere: baseline only. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) &&        \
    defined(__linux__) && defined(__GLIBC__) && !defined(AXON_NO_CLONES)
#define AXON_HAVE_CLONES 1
#define AXON_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AXON_HAVE_CLONES 0
#define AXON_CLONES
#endif

#if AXON_HAVE_CLONES
/* whether the 64-byte (x86-64-v4) direct convolution kernels can run here */
static inline int axon_has_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd");
}
#endif

/* The chunk length for splitting n items between the threads: about 8 chunks per thread, a
 * multiple of align. Work is handed out dynamically (schedule(dynamic) or guided) everywhere: a
 * thread that is not running (numpy's BLAS threads spin for a while after each product, other
 * processes...) then delays nothing but its own first chunk. */
static inline int64_t axon_chunk(int64_t n, int64_t align)
{
    const int64_t parts = 8 * (int64_t)axon_num_threads();
    int64_t chunk = (n + parts - 1) / parts;
    chunk = (chunk + align - 1) / align * align;
    return chunk > align ? chunk : align;
}

/* ---- geometry helpers ------------------------------------------------------------------- */

/* table[o*k + j] = the input index read by output o through tap j along one dim, or -1 when
 * that position is padding or a hole of the input dilation. */
static inline int64_t *axon_tap_table(int64_t o_size, int64_t k_size, int64_t s_size,
                                      int64_t stride, int64_t pad_lo, int64_t lhs_dil,
                                      int64_t rhs_dil)
{
    int64_t *table = (int64_t *)malloc((size_t)(o_size * k_size > 0 ? o_size * k_size : 1)
                                       * sizeof(int64_t));
    if (table == NULL)
        return NULL;
    for (int64_t o = 0; o < o_size; o++) {
        for (int64_t k = 0; k < k_size; k++) {
            int64_t p = o * stride + k * rhs_dil - pad_lo;
            int64_t i = -1;
            if (p >= 0 && p % lhs_dil == 0 && p / lhs_dil < s_size)
                i = p / lhs_dil;
            table[o * k_size + k] = i;
        }
    }
    return table;
}

typedef struct {
    int64_t *t[3];
} axon_tables;

static inline void axon_free_tables(axon_tables *tb)
{
    for (int d = 0; d < 3; d++) {
        free(tb->t[d]);
        tb->t[d] = NULL;
    }
}

/* ---- the two element types (instantiated by axon_template.h) ------------------------- */

#define AXON_CAT_(a, b) a##_##b
#define AXON_CAT(a, b) AXON_CAT_(a, b)
#define SFX(name) AXON_CAT(name, AXON_SUFFIX)

/* ---- splitting a range between the threads ------------------------------------------- */

/* Run CALL (which uses lo_ and hi_) on chunks [lo_, hi_) of [0, n), in parallel when the
 * variable axon_cond_ holds. */
#define AXON_SPLIT(n, align, CALL)                                                             \
    do {                                                                                       \
        const int64_t n_ = (n), chunk_ = axon_chunk(n_, (align));                              \
        _Pragma("omp parallel for schedule(dynamic, 1) if (axon_cond_)")                       \
        for (int64_t lo_ = 0; lo_ < n_; lo_ += chunk_) {                                       \
            const int64_t hi_ = lo_ + chunk_ < n_ ? lo_ + chunk_ : n_;                         \
            CALL;                                                                              \
        }                                                                                      \
    } while (0)

#endif /* AXON_COMMON_H */
