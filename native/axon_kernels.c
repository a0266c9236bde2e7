/* axon_fn C kernels: the exported functions that belong to no kernel family (the OpenMP thread
 * count). axon_kernels.h declares every export; the kernels live in one file per family:
 *   axon_conv.c         convolution: im2col / col2im, direct kernels (incl. "gray", per width)
 *   axon_pool.c         max and average pooling
 *   axon_softmax.c      softmax, log-softmax, softmax cross-entropy
 *   axon_elementwise.c  activations and a dense layer's bias + ReLU
 *   axon_optim.c        optimizer updates (Adam)
 * with their shared static inline helpers and macros in axon_common.h and the per-element-type
 * instantiation in axon_template.h. build_native.py's SOURCES lists the .c files it compiles.
 */
#include "axon_common.h"

int axon_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void axon_set_num_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n > 0 ? n : 1);
#else
    (void)n;
#endif
}
