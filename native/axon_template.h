/* axon_fn C kernels: instantiates one family file once per element type.
 *
 * A family file (native/axon_conv.c, axon_pool.c, ...) is written for a generic element type T
 * and includes itself through this header:
 *
 *     #ifndef AXON_TEMPLATE_PASS
 *     #include "axon_common.h"
 *     ... helpers that do not depend on T ...
 *     #define AXON_TEMPLATE "axon_pool.c"
 *     #include "axon_template.h"
 *     #else
 *     ... the kernels for one element type T, named SFX(axon_...) ...
 *     #endif
 *
 * This header includes AXON_TEMPLATE again with AXON_TEMPLATE_PASS defined, once with T = float
 * (suffix f32) and once with T = double (suffix f64), each with its exp, tanh, log and sqrt.
 * No include guard: every family file includes it once.
 */
#ifndef AXON_TEMPLATE
#error "define AXON_TEMPLATE (the family file to instantiate) before including axon_template.h"
#endif

#define AXON_TEMPLATE_PASS 1

#define T float
#define AXON_SUFFIX f32
#define AXON_EXP axon_sexp_f32
#define AXON_TANH axon_stanh_f32
#define AXON_LOG logf
#define AXON_SQRT sqrtf
#include AXON_TEMPLATE
#undef T
#undef AXON_SUFFIX
#undef AXON_EXP
#undef AXON_TANH
#undef AXON_LOG
#undef AXON_SQRT

#define T double
#define AXON_SUFFIX f64
#define AXON_EXP axon_sexp_f64
#define AXON_TANH axon_stanh_f64
#define AXON_LOG log
#define AXON_SQRT sqrt
#include AXON_TEMPLATE
#undef T
#undef AXON_SUFFIX
#undef AXON_EXP
#undef AXON_TANH
#undef AXON_LOG
#undef AXON_SQRT

#undef AXON_TEMPLATE_PASS
#undef AXON_TEMPLATE
