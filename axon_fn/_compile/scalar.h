/* Scalar helpers of the generated elementwise code, one source for both backends: runtime.h
 * includes this file in every C program, and the CuPy backend (cupy_program.py) puts it in
 * the preamble of every CUDA kernel it makes. */
#ifndef AXON_SCALAR_H
#define AXON_SCALAR_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define AXON_SCALAR static __device__ __forceinline__
/* NVRTC has no math.h: the literals of generated code still name these */
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#else
#include <math.h>
#define AXON_SCALAR static inline __attribute__((always_inline))
#endif

AXON_SCALAR float axon_sigmoid_float(float x)
{
    const float e = expf(-fabsf(x));
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
AXON_SCALAR double axon_sigmoid_double(double x)
{
    const double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}
AXON_SCALAR float axon_sign_float(float x) { return x != x ? x : (float)((x > 0) - (x < 0)); }
AXON_SCALAR double axon_sign_double(double x) { return x != x ? x : (double)((x > 0) - (x < 0)); }

#endif
