/* axon_fn C kernels: pooling, max and average, forward and backward (see axon_kernels.h for
 * the contracts).
 *
 * Written once for a generic element type T (see axon_template.h): the first pass includes
 * the shared helpers (axon_common.h), then this file again per element type.
 */
#ifndef AXON_TEMPLATE_PASS

#include "axon_common.h"

static int axon_pool_tables(const axon_pool_geom *gm, axon_tables *tb)
{
    int ok = 1;
    for (int d = 0; d < 3; d++) {
        tb->t[d] = axon_tap_table(gm->o[d], gm->w[d], gm->s[d], gm->stride[d], gm->pad_lo[d], 1, 1);
        ok = ok && tb->t[d] != NULL;
    }
    if (!ok)
        axon_free_tables(tb);
    return ok;
}

/* Spatial flat indices are int32 inside the pooling kernels; larger images are refused. */
static int axon_pool_fits(const axon_pool_geom *gm)
{
    return gm->s[0] * gm->s[1] * gm->s[2] < ((int64_t)1 << 31);
}

#define AXON_TEMPLATE "axon_pool.c"
#include "axon_template.h"

#else /* the kernels for one element type T */

/* ---- pooling ---------------------------------------------------------------------------- */

/* The first maximum (NaN beating everything) of the window of output (a, b, c) of image xn, per
 * channel, into best[] and, when idx is not NULL, idx[] (flat spatial index in the image, -1 for
 * padding): the exact, slow path, taken only for output rows that hold a NaN. */
static void SFX(axon_window_max)(const axon_pool_geom *gm, const axon_tables *tb, const T *xn,
                                 int64_t a, int64_t b, int64_t c, T *best, int32_t *idx)
{
    const int64_t C = gm->c, S1 = gm->s[1], S2 = gm->s[2];
    const int64_t W0 = gm->w[0], W1 = gm->w[1], W2 = gm->w[2];
    const int64_t *t0 = tb->t[0] + a * W0, *t1 = tb->t[1] + b * W1, *t2 = tb->t[2] + c * W2;
    int first = 1;
    for (int64_t k0 = 0; k0 < W0; k0++) {
        for (int64_t k1 = 0; k1 < W1; k1++) {
            for (int64_t k2 = 0; k2 < W2; k2++) {
                const int64_t i0 = t0[k0], i1 = t1[k1], i2 = t2[k2];
                const int pad = i0 < 0 || i1 < 0 || i2 < 0;
                const int32_t flat = pad ? -1 : (int32_t)((i0 * S1 + i1) * S2 + i2);
                for (int64_t j = 0; j < C; j++) {
                    /* -inf padding can only be the maximum as the first element */
                    const T v = pad ? -(T)INFINITY : xn[(int64_t)flat * C + j], m = best[j];
                    if (first || (m == m && (v > m || v != v))) {
                        best[j] = v;
                        if (idx != NULL)
                            idx[j] = flat;
                    }
                }
                first = 0;
            }
        }
    }
}

/* Max pool of output row (n, a, b) into best[O2 * C] and, when idx is not NULL, idx[O2 * C]
 * (as axon_window_max), window tap by window tap across the whole row. The update takes v where
 * v > best, with selects and masks that vectorize over the channels (branches on random data
 * are mispredicted half of the time) and does not order NaNs: it returns nonzero when it saw
 * one, and the caller then redoes the row exactly. */
static inline int SFX(axon_maxpool_row)(const axon_pool_geom *gm, const axon_tables *tb,
                                        const T *restrict xn, int64_t a, int64_t b,
                                        T *restrict best, int32_t *restrict idx)
{
    const int64_t C = gm->c, S1 = gm->s[1], S2 = gm->s[2], O2 = gm->o[2];
    const int64_t W0 = gm->w[0], W1 = gm->w[1], W2 = gm->w[2];
    const int64_t *t0 = tb->t[0] + a * W0, *t1 = tb->t[1] + b * W1, *t2 = tb->t[2];
    int nan = 0, first = 1;
    for (int64_t k0 = 0; k0 < W0; k0++) {
        for (int64_t k1 = 0; k1 < W1; k1++) {
            const int64_t i0 = t0[k0], i1 = t1[k1];
            const int row_ok = i0 >= 0 && i1 >= 0;
            const int64_t row_flat = row_ok ? (i0 * S1 + i1) * S2 : 0;
            const T *restrict xrow = xn + row_flat * C;
            for (int64_t k2 = 0; k2 < W2; k2++) {
                if (first) {
                    /* the first tap initializes, padding as -inf */
                    for (int64_t c = 0; c < O2; c++) {
                        const int64_t i2 = t2[c * W2 + k2];
                        T *restrict bp = best + c * C;
                        if (!row_ok || i2 < 0) {
                            for (int64_t j = 0; j < C; j++)
                                bp[j] = -(T)INFINITY;
                            if (idx != NULL)
                                for (int64_t j = 0; j < C; j++)
                                    idx[c * C + j] = -1;
                            continue;
                        }
                        const T *restrict xp = xrow + i2 * C;
                        for (int64_t j = 0; j < C; j++) {
                            bp[j] = xp[j];
                            nan |= xp[j] != xp[j];
                        }
                        if (idx != NULL)
                            for (int64_t j = 0; j < C; j++)
                                idx[c * C + j] = (int32_t)(row_flat + i2);
                    }
                    first = 0;
                    continue;
                }
                if (!row_ok) /* padding after the first tap never wins */
                    continue;
                for (int64_t c = 0; c < O2; c++) {
                    const int64_t i2 = t2[c * W2 + k2];
                    if (i2 < 0)
                        continue;
                    const T *restrict xp = xrow + i2 * C;
                    T *restrict bp = best + c * C;
                    if (idx == NULL) {
                        for (int64_t j = 0; j < C; j++) {
                            const T v = xp[j], m = bp[j];
                            nan |= v != v;
                            bp[j] = v > m ? v : m;
                        }
                    } else {
                        int32_t *restrict ip = idx + c * C;
                        const int32_t flat = (int32_t)(row_flat + i2);
                        for (int64_t j = 0; j < C; j++) {
                            const T v = xp[j], m = bp[j];
                            const int32_t take = -(int32_t)(v > m);
                            nan |= v != v;
                            bp[j] = v > m ? v : m;
                            ip[j] = (ip[j] & ~take) | (flat & take);
                        }
                    }
                }
            }
        }
    }
    return nan;
}

/* best/idx of a whole output row, exact with NaNs */
static void SFX(axon_maxpool_row_exact)(const axon_pool_geom *gm, const axon_tables *tb,
                                        const T *xn, int64_t a, int64_t b, T *best, int32_t *idx)
{
    const int64_t C = gm->c;
    if (SFX(axon_maxpool_row)(gm, tb, xn, a, b, best, idx))
        for (int64_t c = 0; c < gm->o[2]; c++)
            SFX(axon_window_max)(gm, tb, xn, a, b, c, best + c * C, idx ? idx + c * C : NULL);
}

/* Max pool values of output row (n, a, b) in two steps: the elementwise maximum of the window's
 * input rows (long vectorized loops into rmax[S2 * C]), then the maximum along the last dim.
 * Padding is skipped: every window holds a real input (padding < window, as the wrapper
 * guarantees; otherwise -inf). Returns nonzero when it saw a NaN (then the row is redone). */
static inline int SFX(axon_maxpool_row_values)(const axon_pool_geom *gm, const axon_tables *tb,
                                               const T *restrict xn, int64_t a, int64_t b,
                                               T *restrict rmax, T *restrict out)
{
    const int64_t C = gm->c, S1 = gm->s[1], S2 = gm->s[2], O2 = gm->o[2], RL = S2 * C;
    const int64_t W0 = gm->w[0], W1 = gm->w[1], W2 = gm->w[2];
    const int64_t *t0 = tb->t[0] + a * W0, *t1 = tb->t[1] + b * W1, *t2 = tb->t[2];
    int nan = 0, first = 1;
    for (int64_t k0 = 0; k0 < W0; k0++) {
        for (int64_t k1 = 0; k1 < W1; k1++) {
            const int64_t i0 = t0[k0], i1 = t1[k1];
            if (i0 < 0 || i1 < 0)
                continue;
            const T *restrict xr = xn + (i0 * S1 + i1) * RL;
            if (first) {
                for (int64_t e = 0; e < RL; e++) {
                    rmax[e] = xr[e];
                    nan |= xr[e] != xr[e];
                }
                first = 0;
                continue;
            }
            for (int64_t e = 0; e < RL; e++) {
                const T v = xr[e], m = rmax[e];
                nan |= v != v;
                rmax[e] = v > m ? v : m;
            }
        }
    }
    if (first) { /* no real row: all padding */
        for (int64_t e = 0; e < O2 * C; e++)
            out[e] = -(T)INFINITY;
        return 0;
    }
    for (int64_t c = 0; c < O2; c++) {
        T *restrict op = out + c * C;
        for (int64_t j = 0; j < C; j++)
            op[j] = -(T)INFINITY;
        for (int64_t k2 = 0; k2 < W2; k2++) {
            const int64_t i2 = t2[c * W2 + k2];
            if (i2 < 0)
                continue;
            const T *restrict rp = rmax + i2 * C;
            for (int64_t j = 0; j < C; j++)
                op[j] = rp[j] > op[j] ? rp[j] : op[j];
        }
    }
    return nan;
}

int SFX(axon_maxpool_fwd)(const axon_pool_geom *gm, const T *x, T *out, int64_t *argmax)
{
    axon_tables tb;
    if (!axon_pool_fits(gm) || !axon_pool_tables(gm, &tb))
        return -1;
    const int64_t N = gm->n, C = gm->c;
    const int64_t O0 = gm->o[0], O1 = gm->o[1], L = gm->o[2] * C;
    const int64_t image = gm->s[0] * gm->s[1] * gm->s[2] * C;
    const int64_t work = N * O0 * O1 * L * gm->w[0] * gm->w[1] * gm->w[2];
    int failed = 0;

#pragma omp parallel if (work > AXON_PAR_MIN)
    {
        /* scratch: argmax indices, or the row maxima of the values-only path */
        int32_t *idx = argmax != NULL ? (int32_t *)malloc((size_t)L * sizeof(int32_t)) : NULL;
        T *rmax = argmax == NULL ? (T *)malloc((size_t)(gm->s[2] * C) * sizeof(T)) : NULL;
        const int ok = argmax != NULL ? idx != NULL : rmax != NULL;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for collapse(2) schedule(guided)
        for (int64_t n = 0; n < N; n++) {
            for (int64_t a = 0; a < O0; a++) {
                if (!ok)
                    continue;
                for (int64_t b = 0; b < O1; b++) {
                    const int64_t o = ((n * O0 + a) * O1 + b) * L;
                    if (argmax == NULL &&
                        !SFX(axon_maxpool_row_values)(gm, &tb, x + n * image, a, b, rmax, out + o))
                        continue;
                    SFX(axon_maxpool_row_exact)(gm, &tb, x + n * image, a, b, out + o, idx);
                    if (argmax != NULL)
                        for (int64_t j = 0; j < L; j++)
                            argmax[o + j] = idx[j];
                }
            }
        }
        free(idx);
        free(rmax);
    }
    axon_free_tables(&tb);
    return failed ? -1 : 0;
}

int SFX(axon_maxpool_bwd)(const axon_pool_geom *gm, const T *x, const T *g, T *dx)
{
    axon_tables tb;
    if (!axon_pool_fits(gm) || !axon_pool_tables(gm, &tb))
        return -1;
    const int64_t N = gm->n, C = gm->c;
    const int64_t O0 = gm->o[0], O1 = gm->o[1], L = gm->o[2] * C;
    const int64_t image = gm->s[0] * gm->s[1] * gm->s[2] * C;
    const int64_t work = N * O0 * O1 * L * gm->w[0] * gm->w[1] * gm->w[2];
    int failed = 0;

    /* each image's gradient is written by one thread only */
#pragma omp parallel if (work > AXON_PAR_MIN && N > 1)
    {
        T *best = (T *)malloc((size_t)L * sizeof(T));
        int32_t *idx = (int32_t *)malloc((size_t)L * sizeof(int32_t));
        if (best == NULL || idx == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(guided)
        for (int64_t n = 0; n < N; n++) {
            if (best == NULL || idx == NULL)
                continue;
            T *dxn = dx + n * image;
            memset(dxn, 0, (size_t)image * sizeof(T));
            for (int64_t a = 0; a < O0; a++) {
                for (int64_t b = 0; b < O1; b++) {
                    const T *gp = g + ((n * O0 + a) * O1 + b) * L;
                    SFX(axon_maxpool_row_exact)(gm, &tb, x + n * image, a, b, best, idx);
                    for (int64_t e = 0; e < L; e += C) {
                        for (int64_t j = 0; j < C; j++) {
                            const int64_t i = idx[e + j];
                            if (i >= 0)
                                dxn[i * C + j] += gp[e + j];
                        }
                    }
                }
            }
        }
        free(best);
        free(idx);
    }
    axon_free_tables(&tb);
    return failed ? -1 : 0;
}

int SFX(axon_avgpool_fwd)(const axon_pool_geom *gm, const T *x, T *out, int count_include_pad)
{
    axon_tables tb;
    if (!axon_pool_tables(gm, &tb))
        return -1;
    const int64_t N = gm->n, C = gm->c, S1 = gm->s[1], S2 = gm->s[2];
    const int64_t W0 = gm->w[0], W1 = gm->w[1], W2 = gm->w[2];
    const int64_t O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t image = gm->s[0] * S1 * S2 * C;
    const int64_t work = N * O0 * O1 * O2 * C * W0 * W1 * W2;
    const int64_t *t0 = tb.t[0], *t1 = tb.t[1], *t2 = tb.t[2];

#pragma omp parallel for collapse(2) schedule(guided) if (work > AXON_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t a = 0; a < O0; a++) {
            const T *xn = x + n * image;
            for (int64_t b = 0; b < O1; b++) {
                for (int64_t c = 0; c < O2; c++) {
                    T *op = out + (((n * O0 + a) * O1 + b) * O2 + c) * C;
                    int64_t count = 0;
                    for (int64_t j = 0; j < C; j++)
                        op[j] = 0;
                    for (int64_t k0 = 0; k0 < W0; k0++) {
                        const int64_t i0 = t0[a * W0 + k0];
                        for (int64_t k1 = 0; k1 < W1; k1++) {
                            const int64_t i1 = t1[b * W1 + k1];
                            for (int64_t k2 = 0; k2 < W2; k2++) {
                                const int64_t i2 = t2[c * W2 + k2];
                                if (i0 < 0 || i1 < 0 || i2 < 0)
                                    continue;
                                count++;
                                const T *xp = xn + ((i0 * S1 + i1) * S2 + i2) * C;
                                for (int64_t j = 0; j < C; j++)
                                    op[j] += xp[j];
                            }
                        }
                    }
                    const T div = (T)(count_include_pad ? W0 * W1 * W2 : count);
                    for (int64_t j = 0; j < C; j++)
                        op[j] = op[j] / div;
                }
            }
        }
    }
    axon_free_tables(&tb);
    return 0;
}

int SFX(axon_avgpool_bwd)(const axon_pool_geom *gm, const T *g, T *dx, int count_include_pad)
{
    axon_tables tb;
    if (!axon_pool_tables(gm, &tb))
        return -1;
    const int64_t N = gm->n, C = gm->c, S1 = gm->s[1], S2 = gm->s[2];
    const int64_t W0 = gm->w[0], W1 = gm->w[1], W2 = gm->w[2];
    const int64_t O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t image = gm->s[0] * S1 * S2 * C;
    const int64_t work = N * O0 * O1 * O2 * C * W0 * W1 * W2;
    const int64_t *t0 = tb.t[0], *t1 = tb.t[1], *t2 = tb.t[2];

#pragma omp parallel for schedule(guided) if (work > AXON_PAR_MIN && N > 1)
    for (int64_t n = 0; n < N; n++) {
        T *dxn = dx + n * image;
        memset(dxn, 0, (size_t)image * sizeof(T));
        for (int64_t a = 0; a < O0; a++) {
            for (int64_t b = 0; b < O1; b++) {
                for (int64_t c = 0; c < O2; c++) {
                    const T *gp = g + (((n * O0 + a) * O1 + b) * O2 + c) * C;
                    int64_t count = W0 * W1 * W2;
                    if (!count_include_pad) {
                        count = 0;
                        for (int64_t k0 = 0; k0 < W0; k0++)
                            for (int64_t k1 = 0; k1 < W1; k1++)
                                for (int64_t k2 = 0; k2 < W2; k2++)
                                    count += t0[a * W0 + k0] >= 0 && t1[b * W1 + k1] >= 0
                                             && t2[c * W2 + k2] >= 0;
                    }
                    const T div = (T)count;
                    for (int64_t k0 = 0; k0 < W0; k0++) {
                        const int64_t i0 = t0[a * W0 + k0];
                        for (int64_t k1 = 0; k1 < W1; k1++) {
                            const int64_t i1 = t1[b * W1 + k1];
                            for (int64_t k2 = 0; k2 < W2; k2++) {
                                const int64_t i2 = t2[c * W2 + k2];
                                if (i0 < 0 || i1 < 0 || i2 < 0)
                                    continue;
                                T *dp = dxn + ((i0 * S1 + i1) * S2 + i2) * C;
                                for (int64_t j = 0; j < C; j++)
                                    dp[j] += gp[j] / div;
                            }
                        }
                    }
                }
            }
        }
    }
    axon_free_tables(&tb);
    return 0;
}

#endif /* AXON_TEMPLATE_PASS */
