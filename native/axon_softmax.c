/* axon_fn C kernels: softmax, log-softmax and softmax cross-entropy, reduced axis last (see
 * axon_kernels.h for the contracts).
 *
 * Written once for a generic element type T (see axon_template.h): the first pass includes
 * the shared helpers (axon_common.h), then this file again per element type.
 */
#ifndef AXON_TEMPLATE_PASS

#include "axon_common.h"

#define AXON_TEMPLATE "axon_softmax.c"
#include "axon_template.h"

#else /* the kernels for one element type T */

/* ---- softmax family (reduced axis last) ------------------------------------------------- */

/* The shift subtracted from a row before exp: its maximum, or 0 when that is not finite (as the
 * numpy path: a row holding +inf, or only -inf, is left unshifted). NaN needs no care (and the
 * vectorized max may or may not return it): it makes the row's sum, hence every output, NaN. */
static inline T SFX(axon_row_shift)(const T *x, int64_t cols)
{
    T m = x[0];
#pragma omp simd reduction(max : m)
    for (int64_t j = 1; j < cols; j++)
        m = x[j] > m ? x[j] : m;
    return isfinite(m) ? m : (T)0;
}

/* sum(exp(x - m)), optionally storing the exponentials in e */
static inline T SFX(axon_row_expsum)(const T *x, T m, T *e, int64_t cols)
{
    T s = 0;
    if (e != NULL) {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < cols; j++) {
            const T v = AXON_EXP(x[j] - m);
            e[j] = v;
            s += v;
        }
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < cols; j++)
            s += AXON_EXP(x[j] - m);
    }
    return s;
}

/* Each kernel below is a span function over a range of rows (or elements), compiled for several
 * instruction sets (AXON_CLONES), and an exported function that splits the range between the
 * OpenMP threads. */

AXON_CLONES static void SFX(axon_softmax_rows)(const T *x, T *out, int64_t r0, int64_t r1,
                                                int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = x + r * cols;
        T *orow = out + r * cols;
        const T s = SFX(axon_row_expsum)(xr, SFX(axon_row_shift)(xr, cols), orow, cols);
        for (int64_t j = 0; j < cols; j++)
            orow[j] = orow[j] / s;
    }
}

AXON_CLONES static void SFX(axon_log_softmax_rows)(const T *x, T *out, int64_t r0, int64_t r1,
                                                    int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = x + r * cols;
        T *orow = out + r * cols;
        const T m = SFX(axon_row_shift)(xr, cols);
        const T ls = AXON_LOG(SFX(axon_row_expsum)(xr, m, NULL, cols));
        for (int64_t j = 0; j < cols; j++)
            orow[j] = (xr[j] - m) - ls;
    }
}

AXON_CLONES static void SFX(axon_softmax_grad_rows)(const T *g, const T *ans, T *out, int64_t r0,
                                                     int64_t r1, int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *gr = g + r * cols, *ar = ans + r * cols;
        T *orow = out + r * cols;
        T d = 0;
#pragma omp simd reduction(+ : d)
        for (int64_t j = 0; j < cols; j++)
            d += gr[j] * ar[j];
        for (int64_t j = 0; j < cols; j++)
            orow[j] = ar[j] * (gr[j] - d);
    }
}

AXON_CLONES static void SFX(axon_log_softmax_grad_rows)(const T *g, const T *ans, T *out,
                                                         int64_t r0, int64_t r1, int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *gr = g + r * cols, *ar = ans + r * cols;
        T *orow = out + r * cols;
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < cols; j++)
            s += gr[j];
        for (int64_t j = 0; j < cols; j++)
            orow[j] = gr[j] - AXON_EXP(ar[j]) * s;
    }
}

AXON_CLONES static void SFX(axon_xent_int_rows)(const T *logits, const int64_t *labels, T *loss,
                                                 int64_t r0, int64_t r1, int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = logits + r * cols;
        const T m = SFX(axon_row_shift)(xr, cols);
        const T ls = AXON_LOG(SFX(axon_row_expsum)(xr, m, NULL, cols));
        loss[r] = ls - (xr[labels[r]] - m);
    }
}

AXON_CLONES static void SFX(axon_xent_int_grad_rows)(const T *logits, const int64_t *labels,
                                                      const T *g, T *out, int64_t r0, int64_t r1,
                                                      int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = logits + r * cols;
        T *orow = out + r * cols;
        const T s = SFX(axon_row_expsum)(xr, SFX(axon_row_shift)(xr, cols), orow, cols);
        const T gr = g[r];
        const int64_t label = labels[r];
        for (int64_t j = 0; j < cols; j++)
            orow[j] = (orow[j] / s - (j == label ? (T)1 : (T)0)) * gr;
    }
}

AXON_CLONES static void SFX(axon_xent_dense_rows)(const T *logits, const T *labels, T *loss,
                                                   int64_t r0, int64_t r1, int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = logits + r * cols, *pr = labels + r * cols;
        const T m = SFX(axon_row_shift)(xr, cols);
        const T ls = AXON_LOG(SFX(axon_row_expsum)(xr, m, NULL, cols));
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < cols; j++) {
            const T term = pr[j] * ((xr[j] - m) - ls);
            acc += pr[j] == 0 ? (T)0 : term; /* 0 * log(0) counts as 0 */
        }
        loss[r] = (T)0 - acc; /* not -acc: no -0.0 for a perfect prediction */
    }
}

AXON_CLONES static void SFX(axon_xent_dense_grad_rows)(const T *logits, const T *labels,
                                                        const T *g, T *out, int64_t r0,
                                                        int64_t r1, int64_t cols)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = logits + r * cols, *pr = labels + r * cols;
        T *orow = out + r * cols;
        const T s = SFX(axon_row_expsum)(xr, SFX(axon_row_shift)(xr, cols), orow, cols);
        const T gr = g[r];
        /* d/dz of -sum(y log softmax(z)) is softmax(z) sum(y) - y: labels need not sum to 1 */
        T ys = (T)0;
        for (int64_t j = 0; j < cols; j++)
            ys += pr[j];
        for (int64_t j = 0; j < cols; j++)
            orow[j] = (orow[j] / s * ys - pr[j]) * gr;
    }
}

void SFX(axon_softmax)(const T *x, T *out, int64_t rows, int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1, SFX(axon_softmax_rows)(x, out, lo_, hi_, cols));
}

void SFX(axon_log_softmax)(const T *x, T *out, int64_t rows, int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1, SFX(axon_log_softmax_rows)(x, out, lo_, hi_, cols));
}

void SFX(axon_softmax_grad)(const T *g, const T *ans, T *out, int64_t rows, int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1, SFX(axon_softmax_grad_rows)(g, ans, out, lo_, hi_, cols));
}

void SFX(axon_log_softmax_grad)(const T *g, const T *ans, T *out, int64_t rows, int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1,
               SFX(axon_log_softmax_grad_rows)(g, ans, out, lo_, hi_, cols));
}

void SFX(axon_softmax_xent_int)(const T *logits, const int64_t *labels, T *loss, int64_t rows,
                                int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1, SFX(axon_xent_int_rows)(logits, labels, loss, lo_, hi_, cols));
}

void SFX(axon_softmax_xent_int_grad)(const T *logits, const int64_t *labels, const T *g, T *out,
                                     int64_t rows, int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1,
               SFX(axon_xent_int_grad_rows)(logits, labels, g, out, lo_, hi_, cols));
}

void SFX(axon_softmax_xent_dense)(const T *logits, const T *labels, T *loss, int64_t rows,
                                  int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1,
               SFX(axon_xent_dense_rows)(logits, labels, loss, lo_, hi_, cols));
}

void SFX(axon_softmax_xent_dense_grad)(const T *logits, const T *labels, const T *g, T *out,
                                       int64_t rows, int64_t cols)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN;
    AXON_SPLIT(rows, 1,
               SFX(axon_xent_dense_grad_rows)(logits, labels, g, out, lo_, hi_, cols));
}

#endif /* AXON_TEMPLATE_PASS */
