/* axon_fn C kernels: the CPU hot paths that numpy does slowly.
 *
 * Every kernel exists for float32 (suffix _f32) and float64 (suffix _f64). Arrays are
 * C-contiguous and channels-last; the Python wrappers (axon_fn/_native_ops.py) allocate every
 * output and check every shape, so the kernels do no validation. The conv and pool kernels return
 * 0, or -1 when a small scratch allocation failed (the wrapper then takes the numpy path).
 * Matrix products stay on numpy's BLAS: the convolution kernels only build (im2col) and scatter
 * back (col2im) column buffers. The one product here (axon_gemm.c) is for the jit's compiled
 * programs, which call it by its address.
 *
 * Convolutions and pools of 1 or 2 spatial dims are passed as 3-d ones whose leading spatial
 * dims have size 1 (kernel/window 1, stride 1, no padding, dilation 1).
 *
 * The declarations between the CDEF markers are read by native/build_native.py and handed to
 * cffi's cdef(): keep them free of preprocessor directives.
 *
 * The definitions live in one C file per kernel family (axon_conv.c, axon_pool.c,
 * axon_softmax.c, axon_elementwise.c, axon_optim.c, axon_gemm.c; the thread count in
 * axon_kernels.c), all listed in build_native.py's SOURCES.
 */
#ifndef AXON_KERNELS_H
#define AXON_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */

/* Geometry of an n-d grouped, dilated convolution (x: (n, s0, s1, s2, c), kernel
 * (k0, k1, k2, c/g, cout), output (n, o0, o1, o2, cout)). An input position i of dim d sits at
 * i*lhs_dil[d] in the dilated input, which is padded by pad_lo[d] before the first element;
 * output o, kernel tap k read dilated position o*stride[d] + k*rhs_dil[d] - pad_lo[d]. */
typedef struct {
    int64_t n, c, g;
    int64_t s[3], k[3], o[3];
    int64_t stride[3], pad_lo[3], lhs_dil[3], rhs_dil[3];
} axon_conv_geom;

/* Geometry of an n-d pool over x: (n, s0, s1, s2, c) with window w, giving (n, o0, o1, o2, c).
 * Window position k of output o reads input o*stride[d] + k - pad_lo[d]. */
typedef struct {
    int64_t n, c;
    int64_t s[3], w[3], o[3];
    int64_t stride[3], pad_lo[3];
} axon_pool_geom;

/* OpenMP threads the kernels use (1 when built without OpenMP), and setting them. */
int axon_num_threads(void);
void axon_set_num_threads(int n);

/* cols: (g, n*o0*o1*o2, k0*k1*k2*(c/g)); positions outside the input (padding, holes of the
 * lhs dilation) are zero. */
int axon_im2col_f32(const axon_conv_geom *geom, const float *x, float *cols);
int axon_im2col_f64(const axon_conv_geom *geom, const double *x, double *cols);
/* The adjoint of im2col: dx (overwritten) = the sum of every column entry read from it. */
int axon_col2im_f32(const axon_conv_geom *geom, const float *cols, float *dx);
int axon_col2im_f64(const axon_conv_geom *geom, const double *cols, double *dx);

/* Direct convolutions (no column buffer) for groups == 1 and at most 32 float / 16 double
 * output channels (cout); they return -2, doing nothing, for any other case. out: (n, o0, o1,
 * o2, cout); w and dw: (k0, k1, k2, c, cout); g: like out. */
int axon_conv_direct_fwd_f32(const axon_conv_geom *geom, const float *x, const float *w, float *out, int64_t cout);
int axon_conv_direct_fwd_f64(const axon_conv_geom *geom, const double *x, const double *w, double *out, int64_t cout);
/* dx: (n, s0, s1, s2, c); also for a unit stride and no input dilation along the last dim only. */
int axon_conv_direct_igrad_f32(const axon_conv_geom *geom, const float *g, const float *w, float *dx, int64_t cout);
int axon_conv_direct_igrad_f64(const axon_conv_geom *geom, const double *g, const double *w, double *dx, int64_t cout);
int axon_conv_direct_wgrad_f32(const axon_conv_geom *geom, const float *x, const float *g, float *dw, int64_t cout);
int axon_conv_direct_wgrad_f64(const axon_conv_geom *geom, const double *x, const double *g, double *dw, int64_t cout);

/* Max pool with -inf padding. argmax (may be NULL) receives, per output element, the flat
 * spatial index (o0*s1*s2 + ...) within its image of the first maximum in row-major window
 * order, or -1 when that maximum is padding. NaN counts as the largest value. */
int axon_maxpool_fwd_f32(const axon_pool_geom *geom, const float *x, float *out, int64_t *argmax);
int axon_maxpool_fwd_f64(const axon_pool_geom *geom, const double *x, double *out, int64_t *argmax);
/* dx (overwritten): each g routed to the first maximum of its window; overlaps accumulate. */
int axon_maxpool_bwd_f32(const axon_pool_geom *geom, const float *x, const float *g, float *dx);
int axon_maxpool_bwd_f64(const axon_pool_geom *geom, const double *x, const double *g, double *dx);
/* Average pool: divisor = window size (count_include_pad) or the number of real inputs. */
int axon_avgpool_fwd_f32(const axon_pool_geom *geom, const float *x, float *out, int count_include_pad);
int axon_avgpool_fwd_f64(const axon_pool_geom *geom, const double *x, double *out, int count_include_pad);
int axon_avgpool_bwd_f32(const axon_pool_geom *geom, const float *g, float *dx, int count_include_pad);
int axon_avgpool_bwd_f64(const axon_pool_geom *geom, const double *g, double *dx, int count_include_pad);

/* Row-wise kernels over (rows, cols) arrays, the reduced axis last. Rows are shifted by their
 * maximum before exp, or by 0 when that maximum is not finite (as the numpy path). */
void axon_softmax_f32(const float *x, float *out, int64_t rows, int64_t cols);
void axon_softmax_f64(const double *x, double *out, int64_t rows, int64_t cols);
void axon_log_softmax_f32(const float *x, float *out, int64_t rows, int64_t cols);
void axon_log_softmax_f64(const double *x, double *out, int64_t rows, int64_t cols);
/* out = ans * (g - sum(g * ans)) */
void axon_softmax_grad_f32(const float *g, const float *ans, float *out, int64_t rows, int64_t cols);
void axon_softmax_grad_f64(const double *g, const double *ans, double *out, int64_t rows, int64_t cols);
/* out = g - exp(ans) * sum(g) */
void axon_log_softmax_grad_f32(const float *g, const float *ans, float *out, int64_t rows, int64_t cols);
void axon_log_softmax_grad_f64(const double *g, const double *ans, double *out, int64_t rows, int64_t cols);
/* loss[r] = -log_softmax(logits[r])[labels[r]]; labels must lie in [0, cols). */
void axon_softmax_xent_int_f32(const float *logits, const int64_t *labels, float *loss, int64_t rows, int64_t cols);
void axon_softmax_xent_int_f64(const double *logits, const int64_t *labels, double *loss, int64_t rows, int64_t cols);
/* out[r] = (softmax(logits[r]) - onehot(labels[r])) * g[r] */
void axon_softmax_xent_int_grad_f32(const float *logits, const int64_t *labels, const float *g, float *out, int64_t rows, int64_t cols);
void axon_softmax_xent_int_grad_f64(const double *logits, const int64_t *labels, const double *g, double *out, int64_t rows, int64_t cols);
/* Dense labels (probabilities of the logits' shape): loss[r] = -sum(labels[r] * log_softmax),
 * a zero label contributing 0 even where log_softmax is -inf. */
void axon_softmax_xent_dense_f32(const float *logits, const float *labels, float *loss, int64_t rows, int64_t cols);
void axon_softmax_xent_dense_f64(const double *logits, const double *labels, double *loss, int64_t rows, int64_t cols);
void axon_softmax_xent_dense_grad_f32(const float *logits, const float *labels, const float *g, float *out, int64_t rows, int64_t cols);
void axon_softmax_xent_dense_grad_f64(const double *logits, const double *labels, const double *g, double *out, int64_t rows, int64_t cols);

/* Elementwise activations over n elements, and their VJPs given the forward output ans. */
void axon_relu_f32(const float *x, float *out, int64_t n);
void axon_relu_f64(const double *x, double *out, int64_t n);
void axon_relu_grad_f32(const float *g, const float *ans, float *out, int64_t n);
void axon_relu_grad_f64(const double *g, const double *ans, double *out, int64_t n);
void axon_sigmoid_f32(const float *x, float *out, int64_t n);
void axon_sigmoid_f64(const double *x, double *out, int64_t n);
void axon_sigmoid_grad_f32(const float *g, const float *ans, float *out, int64_t n);
void axon_sigmoid_grad_f64(const double *g, const double *ans, double *out, int64_t n);
void axon_tanh_f32(const float *x, float *out, int64_t n);
void axon_tanh_f64(const double *x, double *out, int64_t n);
void axon_tanh_grad_f32(const float *g, const float *ans, float *out, int64_t n);
void axon_tanh_grad_f64(const double *g, const double *ans, double *out, int64_t n);

/* A dense layer's epilogue in place over its product y (rows x cols, C order): y += bias (bias
 * NULL: none), then y = max(y, 0) when relu != 0 (NaN passing through). */
void axon_bias_act_f32(float *y, const float *bias, int64_t rows, int64_t cols, int relu);
void axon_bias_act_f64(double *y, const double *bias, int64_t rows, int64_t cols, int relu);

/* Adam over n elements, Optax's formulas in Optax's order: with the constants
 * k = (1 - b1, b1, 1 - b2, b2, 1 - b1^t, 1 - b2^t, eps_root, eps, scale),
 *   mu_out = g * k0 + mu * k1;  nu_out = g * g * k2 + nu * k3;
 *   upd = (mu_out / k4) / (sqrt(nu_out / k5 + k6) + k7) * k8.
 * scale is 1 for scale_by_adam and -learning_rate when the step size is fused in. */
void axon_adam_f32(const float *g, const float *mu, const float *nu, float *mu_out, float *nu_out, float *upd, int64_t n, const float *k);
void axon_adam_f64(const double *g, const double *mu, const double *nu, double *mu_out, double *nu_out, double *upd, int64_t n, const double *k);

/* axon_fn's float matrix product for the jit's compiled programs (axon_gemm.c): C[M, N] (row
 * stride scm, unit column stride) = A[M, K] B[K, N], given by their element strides (A's unit
 * along one of its axes), on `threads` OpenMP threads; then, when epilogue is not NULL,
 * epilogue(arena, io, r0, r1, c0, c1) on each block of rows r0..r1 and columns c0..c1 of C as
 * soon as it is done (the program's loop after the product). Returns 1, or 0 having done
 * nothing (no AVX-512 on this CPU, no unit stride in A, no memory for its buffers): the caller
 * then takes another path. axon_own_sgemm_available() says whether it can run here at all. */
typedef void (*axon_epilogue_fn)(char *arena, void **io, int64_t r0, int64_t r1, int64_t c0, int64_t c1);
int axon_own_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t sam, int64_t sak, const float *B, int64_t sbk, int64_t sbn, float *C, int64_t scm, int threads, axon_epilogue_fn epilogue, char *arena, void **io);
int axon_own_sgemm_available(void);

/* CDEF END */

#ifdef __cplusplus
}
#endif

#endif /* AXON_KERNELS_H */
