/* axon_fn C kernels: elementwise activations (ReLU, sigmoid, tanh) and a dense layer's
 * bias + ReLU (see axon_kernels.h for the contracts).
 *
 * Written once for a generic element type T (see axon_template.h): the first pass includes
 * the shared helpers (axon_common.h), then this file again per element type.
 */
#ifndef AXON_TEMPLATE_PASS

#include "axon_common.h"

#define AXON_TEMPLATE "axon_elementwise.c"
#include "axon_template.h"

#else /* the kernels for one element type T */

/* ---- elementwise activations ------------------------------------------------------------ */

AXON_CLONES static void SFX(axon_relu_span)(const T *restrict x, T *restrict out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] < 0 ? (T)0 : x[i]; /* NaN passes through, as np.maximum */
}

AXON_CLONES static void SFX(axon_relu_grad_span)(const T *restrict g, const T *restrict ans,
                                                  T *restrict out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const T gi = g[i]; /* loaded unconditionally so that the select vectorizes */
        out[i] = ans[i] > 0 ? gi : (T)0;
    }
}

AXON_CLONES static void SFX(axon_sigmoid_span)(const T *restrict x, T *restrict out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        const T e = AXON_EXP(v < 0 ? v : -v);
        const T d = 1 + e;
        out[i] = v >= 0 ? 1 / d : e / d;
    }
}

AXON_CLONES static void SFX(axon_sigmoid_grad_span)(const T *restrict g, const T *restrict ans,
                                                     T *restrict out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = g[i] * ans[i] * (1 - ans[i]);
}

AXON_CLONES static void SFX(axon_tanh_span)(const T *restrict x, T *restrict out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = AXON_TANH(x[i]);
}

AXON_CLONES static void SFX(axon_tanh_grad_span)(const T *restrict g, const T *restrict ans,
                                                  T *restrict out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = g[i] * (1 - ans[i] * ans[i]);
}

/* memory-bound kernels go parallel later than the ones that compute exp */
#define AXON_PAR_MIN_CHEAP (4 * AXON_PAR_MIN)

/* rows lo..hi of a dense layer's product, in place: the bias added, then ReLU when relu != 0 */
AXON_CLONES static void SFX(axon_bias_act_rows)(T *restrict y, const T *restrict bias, int64_t lo,
                                                 int64_t hi, int64_t cols, int relu)
{
    for (int64_t r = lo; r < hi; r++) {
        T *restrict row = y + r * cols;
        if (bias != NULL && relu) {
            for (int64_t j = 0; j < cols; j++) {
                const T v = row[j] + bias[j];
                row[j] = v < 0 ? (T)0 : v; /* NaN passes through, as np.maximum */
            }
        } else if (bias != NULL) {
            for (int64_t j = 0; j < cols; j++)
                row[j] += bias[j];
        } else if (relu) {
            for (int64_t j = 0; j < cols; j++)
                row[j] = row[j] < 0 ? (T)0 : row[j];
        }
    }
}

void SFX(axon_bias_act)(T *y, const T *bias, int64_t rows, int64_t cols, int relu)
{
    const int axon_cond_ = rows * cols > AXON_PAR_MIN_CHEAP;
    AXON_SPLIT(rows, 1, SFX(axon_bias_act_rows)(y, bias, lo_, hi_, cols, relu));
}

/* The public elementwise kernels: a forward (x -> out) and a gradient ((g, ans) -> out), each
 * its _span loop split over threads once n passes `threshold`. */
#define AXON_ELEMENTWISE(name, threshold)                                                      \
    void SFX(name)(const T *x, T *out, int64_t n)                                            \
    {                                                                                        \
        const int axon_cond_ = n > (threshold);                                              \
        AXON_SPLIT(n, 64, SFX(name##_span)(x + lo_, out + lo_, hi_ - lo_));                  \
    }
#define AXON_ELEMENTWISE_GRAD(name, threshold)                                                 \
    void SFX(name)(const T *g, const T *ans, T *out, int64_t n)                              \
    {                                                                                        \
        const int axon_cond_ = n > (threshold);                                              \
        AXON_SPLIT(n, 64, SFX(name##_span)(g + lo_, ans + lo_, out + lo_, hi_ - lo_));       \
    }

AXON_ELEMENTWISE(axon_relu, AXON_PAR_MIN_CHEAP)
AXON_ELEMENTWISE_GRAD(axon_relu_grad, AXON_PAR_MIN_CHEAP)
AXON_ELEMENTWISE(axon_sigmoid, AXON_PAR_MIN)
AXON_ELEMENTWISE_GRAD(axon_sigmoid_grad, AXON_PAR_MIN_CHEAP)
AXON_ELEMENTWISE(axon_tanh, AXON_PAR_MIN)
AXON_ELEMENTWISE_GRAD(axon_tanh_grad, AXON_PAR_MIN_CHEAP)

#undef AXON_ELEMENTWISE
#undef AXON_ELEMENTWISE_GRAD

#undef AXON_PAR_MIN_CHEAP

#endif /* AXON_TEMPLATE_PASS */
