/* axon_fn C kernels: optimizer updates: Adam (see axon_kernels.h for the contracts).
 *
 * Written once for a generic element type T (see axon_template.h): the first pass includes
 * the shared helpers (axon_common.h), then this file again per element type.
 */
#ifndef AXON_TEMPLATE_PASS

#include "axon_common.h"

#define AXON_TEMPLATE "axon_optim.c"
#include "axon_template.h"

#else /* the kernels for one element type T */

/* ---- optimizer updates -------------------------------------------------------------------- */

/* One pass of Adam over n parameters, in Optax's order of operations (see the header). */
AXON_CLONES static void SFX(axon_adam_span)(const T *restrict g, const T *restrict mu,
                                             const T *restrict nu, T *restrict mu_out,
                                             T *restrict nu_out, T *restrict upd, int64_t n,
                                             const T *restrict k)
{
    const T c1 = k[0], b1 = k[1], c2 = k[2], b2 = k[3], bc1 = k[4], bc2 = k[5];
    const T eps_root = k[6], eps = k[7], scale = k[8];
    for (int64_t i = 0; i < n; i++) {
        const T gi = g[i];
        const T m = gi * c1 + mu[i] * b1;
        const T v = gi * gi * c2 + nu[i] * b2;
        mu_out[i] = m;
        nu_out[i] = v;
        upd[i] = (m / bc1) / (AXON_SQRT(v / bc2 + eps_root) + eps) * scale;
    }
}

void SFX(axon_adam)(const T *g, const T *mu, const T *nu, T *mu_out, T *nu_out, T *upd,
                    int64_t n, const T *k)
{
    const int axon_cond_ = n > AXON_PAR_MIN;
    AXON_SPLIT(n, 64, SFX(axon_adam_span)(g + lo_, mu + lo_, nu + lo_, mu_out + lo_,
                                          nu_out + lo_, upd + lo_, hi_ - lo_, k));
}

#endif /* AXON_TEMPLATE_PASS */
