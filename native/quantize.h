/* axon_fn int8 weight-only quantization kernels (native/quantize.c).
 *
 * A quantized dense layer stores its kernel as int8 q (k x n, the float kernel's (in, out)
 * layout, C order) with one float32 scale per output column: w[i, j] ~= q[i, j] * scale[j].
 * The kernel multiplies float32 activations by q directly (each int8 weight is widened to
 * float in registers), so no float copy of the weights is ever made.
 *
 * The declarations between the CDEF markers are read by native/build_native.py and handed to
 * cffi's cdef(): keep them free of preprocessor directives.
 */
#ifndef AXON_QUANTIZE_H
#define AXON_QUANTIZE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */

/* y (rows x n) = (x (rows x k) @ q (k x n)) * scale (n) + bias (n), then max(y, 0) when
 * relu != 0 (NaN passing through). bias may be NULL. All arrays C-contiguous; y is written,
 * never read. Sums are float32 (fused multiply-adds where the CPU has them), in order of k.
 * Returns the instruction set used (see axon_q8_isa). */
int axon_q8_matmul_f32(const float *x, const int8_t *q, const float *scale, const float *bias,
                       float *y, int64_t rows, int64_t k, int64_t n, int relu);

/* The instruction set axon_q8_matmul_f32 uses: 2 AVX-512 (F, BW, DQ, VL), 1 AVX2 + FMA,
 * 0 portable C. */
int axon_q8_isa(void);
/* Use at most instruction set `isa` from now on (clamped to what the CPU supports; a negative
 * value restores the best one). Returns the set now in use. For tests and benchmarks. */
int axon_q8_set_isa(int isa);

/* CDEF END */

#ifdef __cplusplus
}
#endif

#endif /* AXON_QUANTIZE_H */
