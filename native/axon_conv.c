/* axon_fn C kernels: convolution: im2col / col2im and the direct kernels (see axon_kernels.h
 * for the contracts).
 *
 * Written once for a generic element type T and includes itself (see axon_template.h):
 *   - first pass (AXON_TEMPLATE_PASS undefined): the shared helpers (axon_common.h) and the
 *     conv-only geometry helpers, then the file again with T = float and T = double;
 *   - T pass: im2col / col2im and the direct convolutions' entry points of one element type;
 *     for the direct kernels it includes the file again per vector width (AXON_WPASS: 32
 *     bytes, and 64 bytes for AVX-512 CPUs);
 *   - W pass: the direct convolution kernels (incl. the one-input-channel "gray" ones) of one
 *     vector width.
 */
#ifndef AXON_TEMPLATE_PASS

#include "axon_common.h"

/* inv[i * k + j] = the output that reads input i through tap j along one dim, or -1 (the
 * inverse of axon_tap_table): NULL when out of memory */
static int64_t *axon_inverse_table(const axon_conv_geom *gm, int d)
{
    const int64_t S = gm->s[d], K = gm->k[d], O = gm->o[d], st = gm->stride[d];
    int64_t *inv = (int64_t *)malloc((size_t)(S * K > 0 ? S * K : 1) * sizeof(int64_t));
    if (inv == NULL)
        return NULL;
    for (int64_t i = 0; i < S; i++) {
        for (int64_t k = 0; k < K; k++) {
            const int64_t p = i * gm->lhs_dil[d] + gm->pad_lo[d] - k * gm->rhs_dil[d];
            inv[i * K + k] = p >= 0 && p % st == 0 && p / st < O ? p / st : -1;
        }
    }
    return inv;
}

static int axon_conv_tables(const axon_conv_geom *gm, axon_tables *tb)
{
    int ok = 1;
    for (int d = 0; d < 3; d++) {
        tb->t[d] = axon_tap_table(gm->o[d], gm->k[d], gm->s[d], gm->stride[d], gm->pad_lo[d],
                                  gm->lhs_dil[d], gm->rhs_dil[d]);
        ok = ok && tb->t[d] != NULL;
    }
    if (!ok)
        axon_free_tables(tb);
    return ok;
}

#define AXON_TEMPLATE "axon_conv.c"
#include "axon_template.h"

#elif !defined(AXON_WPASS) /* the kernels for one element type T */

/* ---- convolution: im2col / col2im ------------------------------------------------------- */

/* d[0:len] = s[0:len] and d[0:len] += s[0:len] for the short runs of im2col/col2im (K2 * C
 * elements, often 1 to 16): a switch to fixed-length loops, which the compiler unrolls, beats
 * both a memcpy call and a loop of unknown length. */
#define AXON_RUN_CASES(OP)                                                                     \
    switch (len) {                                                                             \
    case 1: OP(1) case 2: OP(2) case 3: OP(3) case 4: OP(4) case 5: OP(5) case 6: OP(6)        \
    case 7: OP(7) case 8: OP(8) case 9: OP(9) case 10: OP(10) case 11: OP(11) case 12: OP(12)   \
    case 13: OP(13) case 14: OP(14) case 15: OP(15) case 16: OP(16)                            \
    default: OP(len)                                                                           \
    }
#define AXON_COPY_N(L)                                                                         \
    for (int64_t j = 0; j < (L); j++)                                                          \
        d[j] = s[j];                                                                           \
    return;
#define AXON_ADD_N(L)                                                                          \
    for (int64_t j = 0; j < (L); j++)                                                          \
        d[j] += s[j];                                                                          \
    return;

static inline void SFX(axon_copy_run)(T *restrict d, const T *restrict s, int64_t len)
{
    AXON_RUN_CASES(AXON_COPY_N)
}

static inline void SFX(axon_add_run)(T *restrict d, const T *restrict s, int64_t len)
{
    AXON_RUN_CASES(AXON_ADD_N)
}

int SFX(axon_im2col)(const axon_conv_geom *gm, const T *x, T *cols)
{
    axon_tables tb;
    if (!axon_conv_tables(gm, &tb))
        return -1;
    const int64_t N = gm->n, C = gm->c, G = gm->g, Cg = C / G;
    const int64_t S0 = gm->s[0], S1 = gm->s[1], S2 = gm->s[2];
    const int64_t K0 = gm->k[0], K1 = gm->k[1], K2 = gm->k[2];
    const int64_t O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t O = O0 * O1 * O2, row = K0 * K1 * K2 * Cg, run_len = K2 * C;
    const int64_t *t0 = tb.t[0], *t1 = tb.t[1], *t2 = tb.t[2];
    /* along the last dim, consecutive taps read consecutive inputs: copy whole runs */
    const int runs = G == 1 && gm->lhs_dil[2] == 1 && gm->rhs_dil[2] == 1;

#pragma omp parallel for collapse(2) schedule(guided) if (N * O * row * G > AXON_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t a = 0; a < O0; a++) {
            for (int64_t b = 0; b < O1; b++) {
                for (int64_t g = 0; g < G; g++) {
                    T *dst_ab = cols + ((g * N + n) * O + (a * O1 + b) * O2) * row;
                    for (int64_t k0 = 0; k0 < K0; k0++) {
                        const int64_t i0 = t0[a * K0 + k0];
                        for (int64_t k1 = 0; k1 < K1; k1++) {
                            const int64_t i1 = t1[b * K1 + k1];
                            T *dst = dst_ab + (k0 * K1 + k1) * K2 * Cg;
                            if (i0 < 0 || i1 < 0) {
                                for (int64_t c = 0; c < O2; c++)
                                    for (int64_t j = 0; j < K2 * Cg; j++)
                                        dst[c * row + j] = 0;
                                continue;
                            }
                            const T *src = x + ((n * S0 + i0) * S1 + i1) * S2 * C + g * Cg;
                            for (int64_t c = 0; c < O2; c++) {
                                const int64_t *t2r = t2 + c * K2;
                                T *d = dst + c * row;
                                if (runs && t2r[0] >= 0 && t2r[K2 - 1] >= 0) {
                                    SFX(axon_copy_run)(d, src + t2r[0] * C, run_len);
                                    continue;
                                }
                                for (int64_t k2 = 0; k2 < K2; k2++) {
                                    const int64_t i2 = t2r[k2];
                                    if (i2 < 0) {
                                        for (int64_t j = 0; j < Cg; j++)
                                            d[k2 * Cg + j] = 0;
                                    } else {
                                        const T *s = src + i2 * C;
                                        for (int64_t j = 0; j < Cg; j++)
                                            d[k2 * Cg + j] = s[j];
                                    }
                                }
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

int SFX(axon_col2im)(const axon_conv_geom *gm, const T *cols, T *dx)
{
    axon_tables tb;
    if (!axon_conv_tables(gm, &tb))
        return -1;
    const int64_t N = gm->n, C = gm->c, G = gm->g, Cg = C / G;
    const int64_t S0 = gm->s[0], S1 = gm->s[1], S2 = gm->s[2];
    const int64_t K0 = gm->k[0], K1 = gm->k[1], K2 = gm->k[2];
    const int64_t O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t O = O0 * O1 * O2, row = K0 * K1 * K2 * Cg, image = S0 * S1 * S2 * C;
    const int64_t *t0 = tb.t[0], *t1 = tb.t[1];
    /* inv[i * K2 + k] = the output along the last dim that reads input i through tap k, or -1:
     * each input element of a row then gathers its sum instead of being added to K2 times */
    int64_t *inv = axon_inverse_table(gm, 2);
    if (inv == NULL) {
        axon_free_tables(&tb);
        return -1;
    }

    /* each image's gradient is written by one thread only */
#pragma omp parallel for schedule(guided) if (N * O * row * G > AXON_PAR_MIN && N > 1)
    for (int64_t n = 0; n < N; n++) {
        T *dxn = dx + n * image;
        memset(dxn, 0, (size_t)image * sizeof(T));
        for (int64_t a = 0; a < O0; a++) {
            for (int64_t b = 0; b < O1; b++) {
                for (int64_t g = 0; g < G; g++) {
                    const T *src_ab = cols + ((g * N + n) * O + (a * O1 + b) * O2) * row;
                    for (int64_t k0 = 0; k0 < K0; k0++) {
                        const int64_t i0 = t0[a * K0 + k0];
                        if (i0 < 0)
                            continue;
                        for (int64_t k1 = 0; k1 < K1; k1++) {
                            const int64_t i1 = t1[b * K1 + k1];
                            if (i1 < 0)
                                continue;
                            const T *src = src_ab + (k0 * K1 + k1) * K2 * Cg;
                            T *drow = dxn + (i0 * S1 + i1) * S2 * C + g * Cg;
                            for (int64_t i = 0; i < S2; i++) {
                                const int64_t *invr = inv + i * K2;
                                T *d = drow + i * C;
                                if (Cg == 1) {
                                    /* unconditional loads (output 0 stands in for a missing
                                     * one) and a select: no branch in the inner loop */
                                    T acc = d[0];
                                    for (int64_t k = 0; k < K2; k++) {
                                        const int64_t c = invr[k];
                                        const T v = src[(c < 0 ? 0 : c) * row + k];
                                        acc += c < 0 ? (T)0 : v;
                                    }
                                    d[0] = acc;
                                    continue;
                                }
                                for (int64_t k = 0; k < K2; k++) {
                                    if (invr[k] >= 0)
                                        SFX(axon_add_run)(d, src + invr[k] * row + k * Cg, Cg);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    free(inv);
    axon_free_tables(&tb);
    return 0;
}

#if AXON_HAVE_VECTORS

/* ---- convolution: direct kernels for few output channels --------------------------------- */

/* GCC/clang vector extensions, 32 bytes (8 floats or 4 doubles): one source that compiles to SSE2
 * pairs on baseline x86-64, AVX2 + FMA in the x86-64-v3 clone, AVX-512VL in the v4 clone and
 * NEON pairs on arm64; with the clones, a 64-byte copy for CPUs with AVX-512 as well (the
 * kernels below are compiled once per width, by including this file again). The accumulators stay in registers because every block loop has
 * compile-time bounds (the block functions are always inlined with constant NV, P, CB, U). Up
 * to 4 vectors of output channels (32 floats, 16 doubles); im2col + BLAS handles the rest. */
/* What the direct kernels read. wpad: the kernel as (K0*K1*K2*C, nvl), output channels padded
 * with zeros to nvl = NV * VL; gpad (kernel gradient): g as (N*O, nvl), likewise. */
typedef struct {
    const axon_conv_geom *gm;
    const int64_t *t0, *t1, *t2;
    const T *x, *wpad, *gpad;
    int64_t cout, nvl;
} SFX(axon_direct);

/* wpad for the direct kernels: NULL when out of memory */
static T *SFX(axon_pad_channels)(const T *src, int64_t rows, int64_t cout, int64_t nvl)
{
    T *dst = (T *)calloc((size_t)(rows > 0 ? rows : 1) * (size_t)nvl, sizeof(T));
    if (dst != NULL)
        for (int64_t r = 0; r < rows; r++)
            memcpy(dst + r * nvl, src + r * cout, (size_t)cout * sizeof(T));
    return dst;
}

#define AXON_WPASS 1
#define SFXW(name) AXON_CAT(SFX(name), AXON_WSUFFIX)
#define AXON_VBYTES 32
#define AXON_WSUFFIX w32
#define AXON_WATTR AXON_CLONES
#include "axon_conv.c"
#undef AXON_VBYTES
#undef AXON_WSUFFIX
#undef AXON_WATTR
#if AXON_HAVE_CLONES
#define AXON_VBYTES 64
#define AXON_WSUFFIX w64
#define AXON_WATTR __attribute__((target("arch=x86-64-v4")))
#include "axon_conv.c"
#undef AXON_VBYTES
#undef AXON_WSUFFIX
#undef AXON_WATTR
#endif
#undef SFXW
#undef AXON_WPASS

int SFX(axon_conv_direct_fwd)(const axon_conv_geom *gm, const T *x, const T *w, T *out,
                              int64_t cout)
{
#if AXON_HAVE_CLONES
    /* 64-byte vectors when they need fewer vectors per pixel than 32-byte ones */
    if (cout > 32 / (int64_t)sizeof(T) && axon_has_avx512())
        return AXON_CAT(SFX(axon_conv_direct_fwd_run), w64)(gm, x, w, out, cout);
#endif
    return AXON_CAT(SFX(axon_conv_direct_fwd_run), w32)(gm, x, w, out, cout);
}

int SFX(axon_conv_direct_igrad)(const axon_conv_geom *gm, const T *g, const T *w, T *dx,
                                int64_t cout)
{
    /* and a last-dim low padding of at most the dilated kernel extent - 1 (any 'valid' or
     * 'same' convolution), so that the transposed rows of g start at or before output 0 */
    if (gm->g != 1 || gm->stride[2] != 1 || gm->lhs_dil[2] != 1 ||
        gm->pad_lo[2] > (gm->k[2] - 1) * gm->rhs_dil[2])
        return -2;
#if AXON_HAVE_CLONES
    /* 64-byte vectors along the input rows when those are long enough to fill them */
    if (gm->s[2] > 32 / (int64_t)sizeof(T) && axon_has_avx512())
        return AXON_CAT(SFX(axon_conv_direct_igrad_run), w64)(gm, g, w, dx, cout);
#endif
    return AXON_CAT(SFX(axon_conv_direct_igrad_run), w32)(gm, g, w, dx, cout);
}

int SFX(axon_conv_direct_wgrad)(const axon_conv_geom *gm, const T *x, const T *g, T *dw,
                                int64_t cout)
{
#if AXON_HAVE_CLONES
    if (cout > 32 / (int64_t)sizeof(T) && axon_has_avx512())
        return AXON_CAT(SFX(axon_conv_direct_wgrad_run), w64)(gm, x, g, dw, cout);
#endif
    return AXON_CAT(SFX(axon_conv_direct_wgrad_run), w32)(gm, x, g, dw, cout);
}

#else /* no vector extensions: the direct convolutions decline every case */

int SFX(axon_conv_direct_fwd)(const axon_conv_geom *gm, const T *x, const T *w, T *out,
                              int64_t cout)
{
    (void)gm, (void)x, (void)w, (void)out, (void)cout;
    return -2;
}

int SFX(axon_conv_direct_igrad)(const axon_conv_geom *gm, const T *g, const T *w, T *dx,
                                int64_t cout)
{
    (void)gm, (void)g, (void)w, (void)dx, (void)cout;
    return -2;
}

int SFX(axon_conv_direct_wgrad)(const axon_conv_geom *gm, const T *x, const T *g, T *dw,
                                int64_t cout)
{
    (void)gm, (void)x, (void)g, (void)dw, (void)cout;
    return -2;
}

#endif /* AXON_HAVE_VECTORS */

#else /* AXON_WPASS: the direct convolution kernels of one vector width */

/* ---- direct convolution kernels of one vector width (AXON_VBYTES) -------------------- */

#define AXON_VL ((int64_t)(AXON_VBYTES / sizeof(T)))
typedef T SFXW(axon_vec) __attribute__((vector_size(AXON_VBYTES)));
#define VEC SFXW(axon_vec)
/* the same vector at any element address, for loads */
typedef T SFXW(axon_uvec) __attribute__((vector_size(AXON_VBYTES), aligned(sizeof(T)), may_alias));

/* an unaligned vector load (a macro: functions passing 32-byte vectors by value would change
 * the ABI between the clones). Not memcpy: GCC merges memcpys of adjacent vectors into one
 * copy through the stack, whose narrower stores then stall the wide loads that read them. */
#define AXON_VLOAD(v, p) ((v) = *(const SFXW(axon_uvec) *)(const void *)(p))

/* Forward, output pixels c0 .. c0+P-1 of output row (n, a, b), written to out[p * cout ...]. */
static inline __attribute__((always_inline)) void
SFXW(axon_conv_block)(const SFX(axon_direct) *dc, int64_t n, int64_t a, int64_t b, int64_t c0,
                     T *out, const int NV, const int P)
{
    const axon_conv_geom *gm = dc->gm;
    const int64_t C = gm->c, S0 = gm->s[0], S1 = gm->s[1], S2 = gm->s[2];
    const int64_t K0 = gm->k[0], K1 = gm->k[1], K2 = gm->k[2];
    const int64_t step = gm->stride[2] * C, nvl = dc->nvl;
    const int regular = gm->lhs_dil[2] == 1, dense = regular && gm->rhs_dil[2] == 1;
    VEC acc[8][4];
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++)
            acc[p][v] = (VEC){0};
    for (int64_t k0 = 0; k0 < K0; k0++) {
        const int64_t i0 = dc->t0[a * K0 + k0];
        if (i0 < 0)
            continue;
        for (int64_t k1 = 0; k1 < K1; k1++) {
            const int64_t i1 = dc->t1[b * K1 + k1];
            if (i1 < 0)
                continue;
            const T *xrow = dc->x + ((n * S0 + i0) * S1 + i1) * S2 * C;
            const T *wrow = dc->wpad + (k0 * K1 + k1) * K2 * C * nvl;
            if (dense && dc->t2[c0 * K2] >= 0 && dc->t2[(c0 + P - 1) * K2 + K2 - 1] >= 0) {
                /* interior block, undilated: each pixel reads K2 * C consecutive inputs */
                const T *xp = xrow + dc->t2[c0 * K2] * C;
                for (int64_t j = 0; j < K2 * C; j++) {
                    VEC wv[4];
                    for (int v = 0; v < NV; v++)
                        AXON_VLOAD(wv[v], wrow + j * nvl + v * AXON_VL);
                    for (int p = 0; p < P; p++) {
                        const T xs = xp[p * step + j];
                        for (int v = 0; v < NV; v++)
                            acc[p][v] += wv[v] * xs;
                    }
                }
                continue;
            }
            for (int64_t k2 = 0; k2 < K2; k2++) {
                const T *wt = wrow + k2 * C * nvl;
                const int64_t first = dc->t2[c0 * K2 + k2];
                const int64_t last = dc->t2[(c0 + P - 1) * K2 + k2];
                if (regular && first >= 0 && last >= 0) {
                    /* the whole block reads real inputs, s2 apart */
                    const T *xp = xrow + first * C;
                    for (int64_t ci = 0; ci < C; ci++) {
                        VEC wv[4];
                        for (int v = 0; v < NV; v++)
                            AXON_VLOAD(wv[v], wt + ci * nvl + v * AXON_VL);
                        for (int p = 0; p < P; p++) {
                            const T xs = xp[p * step + ci];
                            for (int v = 0; v < NV; v++)
                                acc[p][v] += wv[v] * xs;
                        }
                    }
                    continue;
                }
                for (int p = 0; p < P; p++) { /* block edges: padding or dilation holes */
                    const int64_t i2 = dc->t2[(c0 + p) * K2 + k2];
                    if (i2 < 0)
                        continue;
                    const T *xp = xrow + i2 * C;
                    for (int64_t ci = 0; ci < C; ci++) {
                        for (int v = 0; v < NV; v++) {
                            VEC wv;
                            AXON_VLOAD(wv, wt + ci * nvl + v * AXON_VL);
                            acc[p][v] += wv * xp[ci];
                        }
                    }
                }
            }
        }
    }
    for (int p = 0; p < P; p++) {
        T tmp[4 * AXON_VBYTES / sizeof(T)];
        memcpy(tmp, acc[p], (size_t)NV * sizeof(VEC));
        memcpy(out + p * dc->cout, tmp, (size_t)dc->cout * sizeof(T));
    }
}

#define AXON_CONV_ROW(NV, P)                                                                   \
    AXON_WATTR static void SFXW(axon_conv_row_##NV)(const SFX(axon_direct) *dc, int64_t n,     \
                                                    int64_t a, int64_t b, T *orow)             \
    {                                                                                          \
        const int64_t O2 = dc->gm->o[2];                                                       \
        int64_t c0 = 0;                                                                        \
        for (; c0 + (P) <= O2; c0 += (P))                                                      \
            SFXW(axon_conv_block)(dc, n, a, b, c0, orow + c0 * dc->cout, NV, P);                \
        for (; c0 < O2; c0++)                                                                  \
            SFXW(axon_conv_block)(dc, n, a, b, c0, orow + c0 * dc->cout, NV, 1);                \
    }
AXON_CONV_ROW(1, 8)
AXON_CONV_ROW(2, 4)
AXON_CONV_ROW(3, 4)
AXON_CONV_ROW(4, 3)
#undef AXON_CONV_ROW

/* ---- one input channel (a grayscale first layer) ----------------------------------------
 * With C == 1 an input row is contiguous along the last dim, so these kernels put output
 * columns in the vectors instead of the few output channels the kernels above vectorize
 * over. They need a unit stride and no dilation along the last dim (the other dims go through
 * the tap tables). Input rows are first copied into zero-padded rows (row r = (n, i0, i1) at
 * xp + r * XL, input i2 at i2 + pad_lo), so that every tap reads whole vectors. Blocks keep at
 * most 12 accumulators, which AVX2's 16 registers hold with the loads. */

/* What the single-channel kernels read. other: the kernel as (K0*K1*K2, coutp) (forward), or g
 * transposed to (output row, coutp, O2r), zero past O2 so that the tail adds nothing (kernel
 * gradient). */
typedef struct {
    const axon_conv_geom *gm;
    const int64_t *t0, *t1;
    const T *xp, *other;
    int64_t XL, cout, coutp, O2r;
} SFXW(axon_gray);

static int SFXW(axon_gray_fits)(const axon_conv_geom *gm, int64_t cout)
{
    return gm->c == 1 && gm->g == 1 && cout <= 8 && gm->stride[2] == 1 && gm->lhs_dil[2] == 1 &&
           gm->rhs_dil[2] == 1 && gm->pad_lo[2] >= 0;
}

/* the zero-padded input rows, XL long each: NULL when out of memory */
static T *SFXW(axon_gray_rows)(const axon_conv_geom *gm, const T *x, int64_t XL)
{
    const int64_t rows = gm->n * gm->s[0] * gm->s[1], S2 = gm->s[2];
    T *xp = (T *)calloc((size_t)(rows > 0 ? rows : 1) * (size_t)XL, sizeof(T));
    if (xp != NULL)
        for (int64_t r = 0; r < rows; r++)
            memcpy(xp + r * XL + gm->pad_lo[2], x + r * S2, (size_t)S2 * sizeof(T));
    return xp;
}

/* Forward: columns c0 .. c0 + VB*VL - 1 of output row (n, a, b), all CO = coutp channels, into
 * tmp[co * VB*VL + column - c0]. */
static inline __attribute__((always_inline)) void
SFXW(axon_gray_fwd_block)(const SFXW(axon_gray) *gr, int64_t n, int64_t a, int64_t b, int64_t c0,
                          T *tmp, VEC *acc, const int CO, const int VB)
{
    const axon_conv_geom *gm = gr->gm;
    const int64_t S0 = gm->s[0], S1 = gm->s[1], K0 = gm->k[0], K1 = gm->k[1], K2 = gm->k[2];
    for (int e = 0; e < CO * VB; e++)
        acc[e] = (VEC){0};
    for (int64_t k0 = 0; k0 < K0; k0++) {
        const int64_t i0 = gr->t0[a * K0 + k0];
        if (i0 < 0)
            continue;
        for (int64_t k1 = 0; k1 < K1; k1++) {
            const int64_t i1 = gr->t1[b * K1 + k1];
            if (i1 < 0)
                continue;
            const T *xr = gr->xp + ((n * S0 + i0) * S1 + i1) * gr->XL + c0;
            const T *wr = gr->other + (k0 * K1 + k1) * K2 * CO;
            for (int64_t k2 = 0; k2 < K2; k2++) {
                VEC xv[4];
                for (int v = 0; v < VB; v++)
                    AXON_VLOAD(xv[v], xr + k2 + v * AXON_VL);
                for (int co = 0; co < CO; co++) {
                    const T ws = wr[k2 * CO + co];
                    for (int v = 0; v < VB; v++)
                        acc[co * VB + v] += xv[v] * ws;
                }
            }
        }
    }
    memcpy(tmp, acc, (size_t)(CO * VB) * sizeof(VEC));
}

#define AXON_GRAY_FWD(CO, VB)                                                                  \
    AXON_WATTR static void SFXW(axon_gray_fwd_row_##CO)(const SFXW(axon_gray) *gr, int64_t n,  \
                                                        int64_t a, int64_t b, T *orow)         \
    {                                                                                          \
        const int64_t O2 = gr->gm->o[2], cout = gr->cout, width = (VB) * AXON_VL;              \
        T tmp[(CO) * (VB) * AXON_VBYTES / sizeof(T)];                                          \
        VEC acc[(CO) * (VB)];                                                                  \
        for (int64_t c0 = 0; c0 < O2; c0 += width) {                                           \
            SFXW(axon_gray_fwd_block)(gr, n, a, b, c0, tmp, acc, CO, VB);                      \
            for (int64_t c = c0; c < O2 && c < c0 + width; c++) /* channels-last store */      \
                for (int64_t co = 0; co < cout; co++)                                          \
                    orow[c * cout + co] = tmp[co * width + c - c0];                            \
        }                                                                                      \
    }
AXON_GRAY_FWD(1, 4)
AXON_GRAY_FWD(2, 4)
AXON_GRAY_FWD(4, 3)
AXON_GRAY_FWD(6, 2)
AXON_GRAY_FWD(8, 1)
#undef AXON_GRAY_FWD

static int SFXW(axon_gray_fwd_run)(const axon_conv_geom *gm, const T *x, const T *w, T *out,
                                   int64_t cout)
{
    static const int64_t padded_cout[9] = {1, 1, 2, 4, 4, 6, 6, 8, 8};
    static const int64_t vectors[9] = {4, 4, 4, 3, 3, 2, 2, 1, 1};
    const int64_t CO = padded_cout[cout], width = vectors[cout] * AXON_VL;
    const int64_t K = gm->k[0] * gm->k[1] * gm->k[2], O2 = gm->o[2];
    const int64_t O2r = (O2 + width - 1) / width * width;
    const int64_t need = O2r + gm->k[2] - 1, have = gm->pad_lo[2] + gm->s[2];
    const int64_t XL = need > have ? need : have;
    axon_tables tb;
    if (!axon_conv_tables(gm, &tb))
        return -1;
    T *wpad = SFX(axon_pad_channels)(w, K, cout, CO);
    T *xp = SFXW(axon_gray_rows)(gm, x, XL);
    if (wpad == NULL || xp == NULL) {
        free(wpad);
        free(xp);
        axon_free_tables(&tb);
        return -1;
    }
    const SFXW(axon_gray) gr = {gm, tb.t[0], tb.t[1], xp, wpad, XL, cout, CO, O2r};
    const int64_t N = gm->n, O0 = gm->o[0], O1 = gm->o[1];
    const int64_t work = N * O0 * O1 * O2r * K * CO;

#pragma omp parallel for collapse(2) schedule(guided) if (work > AXON_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t a = 0; a < O0; a++) {
            for (int64_t b = 0; b < O1; b++) {
                T *orow = out + ((n * O0 + a) * O1 + b) * O2 * cout;
                switch (CO) {
                case 1: SFXW(axon_gray_fwd_row_1)(&gr, n, a, b, orow); break;
                case 2: SFXW(axon_gray_fwd_row_2)(&gr, n, a, b, orow); break;
                case 4: SFXW(axon_gray_fwd_row_4)(&gr, n, a, b, orow); break;
                case 6: SFXW(axon_gray_fwd_row_6)(&gr, n, a, b, orow); break;
                default: SFXW(axon_gray_fwd_row_8)(&gr, n, a, b, orow); break;
                }
            }
        }
    }
    free(xp);
    free(wpad);
    axon_free_tables(&tb);
    return 0;
}

/* Kernel gradient of taps (k0, k1, k2b .. k2b+KB-1) and channels co0 .. co0+CB-1 over output
 * rows r0 .. r1-1 (flat (n, a, b)): the sums of x(row, column + k2) g(row, column, co), columns
 * in the vectors, into part[kk * CB + cc]. The caller declares acc[KB * CB]: arrays of exactly
 * the size used are what lets GCC keep them in registers with 16 of them (AVX2), where
 * larger ones stayed on the stack and ran 2.3x slower. */
static inline __attribute__((always_inline)) void
SFXW(axon_gray_wgrad_block)(const SFXW(axon_gray) *gr, int64_t r0, int64_t r1, int64_t k0,
                            int64_t k1, int64_t k2b, int64_t co0, T *part, VEC *acc,
                            const int KB, const int CB)
{
    const axon_conv_geom *gm = gr->gm;
    const int64_t S0 = gm->s[0], S1 = gm->s[1], K0 = gm->k[0], K1 = gm->k[1];
    const int64_t XL = gr->XL, coutp = gr->coutp, O2r = gr->O2r, O0 = gm->o[0], O1 = gm->o[1];
    for (int e = 0; e < KB * CB; e++)
        acc[e] = (VEC){0};
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r % O1, a = r / O1 % O0, n = r / (O1 * O0);
        const int64_t i0 = gr->t0[a * K0 + k0], i1 = gr->t1[b * K1 + k1];
        if (i0 < 0 || i1 < 0)
            continue;
        const T *xr = gr->xp + ((n * S0 + i0) * S1 + i1) * XL + k2b;
        const T *grow = gr->other + (r * coutp + co0) * O2r;
        for (int64_t c = 0; c < O2r; c += AXON_VL) {
            for (int cc = 0; cc < CB; cc++) {
                VEC gv;
                AXON_VLOAD(gv, grow + cc * O2r + c);
                for (int kk = 0; kk < KB; kk++) {
                    VEC xv;
                    AXON_VLOAD(xv, xr + c + kk);
                    acc[kk * CB + cc] += xv * gv;
                }
            }
        }
    }
    for (int e = 0; e < KB * CB; e++) {
        T lanes[AXON_VBYTES / sizeof(T)], sum = 0;
        memcpy(lanes, &acc[e], sizeof(VEC));
        for (int64_t l = 0; l < AXON_VL; l++)
            sum += lanes[l];
        part[e] = sum;
    }
}

#define AXON_GRAY_WGRAD(KB, CB)                                                                \
    AXON_WATTR static void SFXW(axon_gray_wgrad_##KB)(const SFXW(axon_gray) *gr, int64_t r0,   \
                                                      int64_t r1, int64_t k0, int64_t k1,      \
                                                      int64_t k2b, int64_t co0, T *part)       \
    {                                                                                          \
        VEC acc[(KB) * (CB)];                                                                  \
        SFXW(axon_gray_wgrad_block)(gr, r0, r1, k0, k1, k2b, co0, part, acc, KB, CB);          \
    }
AXON_GRAY_WGRAD(1, 8)
AXON_GRAY_WGRAD(2, 6)
AXON_GRAY_WGRAD(3, 4)
AXON_GRAY_WGRAD(4, 3)
AXON_GRAY_WGRAD(5, 2)
#undef AXON_GRAY_WGRAD

#ifndef AXON_GRAY_ITEM
#define AXON_GRAY_ITEM
/* the taps (k0, k1, k2b ..) and channels (co0 ..) of kernel-gradient block `item`, ordered
 * k0, k1, k2 block, channel block (nk2 blocks of KB taps, nco blocks of CB channels) */
static inline void axon_gray_item(int64_t item, int64_t K1, int64_t nk2, int64_t nco, int64_t KB,
                                  int64_t CB, int64_t *k0, int64_t *k1, int64_t *k2b,
                                  int64_t *co0)
{
    *co0 = item % nco * CB;
    *k2b = item / nco % nk2 * KB;
    *k1 = item / (nco * nk2) % K1;
    *k0 = item / (nco * nk2 * K1);
}
#endif

/* g (rows, O2, COUT) as gt (rows, coutp, O2r), zero past O2 and past COUT */
static inline __attribute__((always_inline)) void
SFXW(axon_gray_transpose)(const T *g, T *gt, int64_t rows, int64_t O2, int64_t coutp, int64_t O2r,
                          const int COUT)
{
    for (int64_t r = 0; r < rows; r++) {
        const T *src = g + r * O2 * COUT;
        T *dst = gt + r * coutp * O2r;
        for (int64_t c = 0; c < O2; c++)
            for (int co = 0; co < COUT; co++)
                dst[co * O2r + c] = src[c * COUT + co];
        for (int64_t co = 0; co < coutp; co++)
            for (int64_t c = co < COUT ? O2 : 0; c < O2r; c++)
                dst[co * O2r + c] = 0;
    }
}

static int SFXW(axon_gray_wgrad_run)(const axon_conv_geom *gm, const T *x, const T *g, T *dw,
                                     int64_t cout)
{
    static const int64_t channels_of[6] = {0, 8, 6, 4, 3, 2};
    const int64_t K2 = gm->k[2], KB = K2 < 5 ? K2 : 5, CB = channels_of[KB];
    const int64_t coutp = (cout + CB - 1) / CB * CB, O2 = gm->o[2];
    const int64_t O2r = (O2 + AXON_VL - 1) / AXON_VL * AXON_VL;
    const int64_t K2r = (K2 + KB - 1) / KB * KB;
    const int64_t need = O2r + K2r - 1, have = gm->pad_lo[2] + gm->s[2];
    const int64_t XL = need > have ? need : have;
    const int64_t rows = gm->n * gm->o[0] * gm->o[1];
    axon_tables tb;
    if (!axon_conv_tables(gm, &tb))
        return -1;
    T *xp = SFXW(axon_gray_rows)(gm, x, XL);
    T *gt = (T *)malloc((size_t)(rows > 0 ? rows : 1) * (size_t)(coutp * O2r) * sizeof(T));
    if (xp == NULL || gt == NULL) {
        free(xp);
        free(gt);
        axon_free_tables(&tb);
        return -1;
    }
    switch (cout) { /* a constant channel count lets the compiler unroll the transposition */
    case 1: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 1); break;
    case 2: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 2); break;
    case 3: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 3); break;
    case 4: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 4); break;
    case 5: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 5); break;
    case 6: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 6); break;
    case 7: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 7); break;
    default: SFXW(axon_gray_transpose)(g, gt, rows, O2, coutp, O2r, 8); break;
    }
    const SFXW(axon_gray) gr = {gm, tb.t[0], tb.t[1], xp, gt, XL, cout, coutp, O2r};
    /* rows in chunks that stay in the cache while every tap and channel block reads them;
     * each (chunk, block) sums into its own slot, added up in order at the end */
    const int64_t K0 = gm->k[0], K1 = gm->k[1], nk2 = K2r / KB, nco = coutp / CB;
    const int64_t items = K0 * K1 * nk2 * nco, per_item = KB * CB;
    const int64_t chunk = 128, chunks = (rows + chunk - 1) / chunk;
    const int64_t work = rows * O2r * K0 * K1 * K2r * coutp;
    T *parts = (T *)malloc((size_t)(chunks > 0 ? chunks : 1) * (size_t)(items * per_item) *
                           sizeof(T));
    if (parts == NULL) {
        free(xp);
        free(gt);
        axon_free_tables(&tb);
        return -1;
    }

#pragma omp parallel for schedule(dynamic, 1) if (work > AXON_PAR_MIN)
    for (int64_t q = 0; q < chunks; q++) {
        const int64_t r0 = q * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
        for (int64_t item = 0; item < items; item++) {
            int64_t k0, k1, k2b, co0;
            axon_gray_item(item, K1, nk2, nco, KB, CB, &k0, &k1, &k2b, &co0);
            T *part = parts + (q * items + item) * per_item;
            switch (KB) {
            case 1: SFXW(axon_gray_wgrad_1)(&gr, r0, r1, k0, k1, k2b, co0, part); break;
            case 2: SFXW(axon_gray_wgrad_2)(&gr, r0, r1, k0, k1, k2b, co0, part); break;
            case 3: SFXW(axon_gray_wgrad_3)(&gr, r0, r1, k0, k1, k2b, co0, part); break;
            case 4: SFXW(axon_gray_wgrad_4)(&gr, r0, r1, k0, k1, k2b, co0, part); break;
            default: SFXW(axon_gray_wgrad_5)(&gr, r0, r1, k0, k1, k2b, co0, part); break;
            }
        }
    }
    for (int64_t item = 0; item < items; item++) {
        int64_t k0, k1, k2b, co0;
        axon_gray_item(item, K1, nk2, nco, KB, CB, &k0, &k1, &k2b, &co0);
        for (int64_t kk = 0; kk < KB && k2b + kk < K2; kk++) {
            for (int64_t cc = 0; cc < CB && co0 + cc < cout; cc++) {
                T sum = 0;
                for (int64_t q = 0; q < chunks; q++)
                    sum += parts[(q * items + item) * per_item + kk * CB + cc];
                dw[((k0 * K1 + k1) * K2 + k2b + kk) * cout + co0 + cc] = sum;
            }
        }
    }
    free(parts);
    free(xp);
    free(gt);
    axon_free_tables(&tb);
    return 0;
}

static int SFXW(axon_conv_direct_fwd_run)(const axon_conv_geom *gm, const T *x, const T *w,
                                           T *out, int64_t cout)
{
    if (SFXW(axon_gray_fits)(gm, cout))
        return SFXW(axon_gray_fwd_run)(gm, x, w, out, cout);
    const int64_t nv = (cout + AXON_VL - 1) / AXON_VL;
    if (gm->g != 1 || nv < 1 || nv > 4)
        return -2;
    axon_tables tb;
    if (!axon_conv_tables(gm, &tb))
        return -1;
    const int64_t K = gm->k[0] * gm->k[1] * gm->k[2], nvl = nv * AXON_VL;
    T *wpad = SFX(axon_pad_channels)(w, K * gm->c, cout, nvl);
    if (wpad == NULL) {
        axon_free_tables(&tb);
        return -1;
    }
    const SFX(axon_direct) dc = {gm, tb.t[0], tb.t[1], tb.t[2], x, wpad, NULL, cout, nvl};
    const int64_t N = gm->n, O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t work = N * O0 * O1 * O2 * K * gm->c * nvl;

#pragma omp parallel for collapse(2) schedule(guided) if (work > AXON_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t a = 0; a < O0; a++) {
            for (int64_t b = 0; b < O1; b++) {
                T *orow = out + ((n * O0 + a) * O1 + b) * O2 * cout;
                switch (nv) {
                case 1: SFXW(axon_conv_row_1)(&dc, n, a, b, orow); break;
                case 2: SFXW(axon_conv_row_2)(&dc, n, a, b, orow); break;
                case 3: SFXW(axon_conv_row_3)(&dc, n, a, b, orow); break;
                default: SFXW(axon_conv_row_4)(&dc, n, a, b, orow); break;
                }
            }
        }
    }
    free(wpad);
    axon_free_tables(&tb);
    return 0;
}

/* Kernel gradient rows j0 .. j0+R-1 of kernel row (k0, k1): a kernel row holds K2 * C rows of
 * dw, (k2, ci) flattened, and for an undilated interior pixel they read K2 * C consecutive
 * inputs, so dw[rows] += x[those inputs] (outer) g[pixel] is a small register-blocked outer
 * product. U pixels in flight; interior pixels lie in [lo, hi) (none unless dense). */
static inline __attribute__((always_inline)) void
SFXW(axon_wgrad_block)(const SFX(axon_direct) *dc, int64_t k0, int64_t k1, int64_t j0, int64_t lo,
                      int64_t hi, T *dwr, const int NV, const int R, const int U)
{
    const axon_conv_geom *gm = dc->gm;
    const int64_t C = gm->c, S0 = gm->s[0], S1 = gm->s[1], S2 = gm->s[2];
    const int64_t K0 = gm->k[0], K1 = gm->k[1], K2 = gm->k[2];
    const int64_t N = gm->n, O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t step = gm->stride[2] * C, nvl = dc->nvl, J = K2 * C;
    const int64_t rows = J - j0 < R ? J - j0 : R;
    const int64_t *t2 = dc->t2;
    int64_t rk2[12], rci[12];
    for (int r = 0; r < R; r++) {
        rk2[r] = r < rows ? (j0 + r) / C : 0;
        rci[r] = r < rows ? (j0 + r) % C : 0;
    }
    VEC acc[4][12][4];
    for (int u = 0; u < U; u++)
        for (int r = 0; r < R; r++)
            for (int v = 0; v < NV; v++)
                acc[u][r][v] = (VEC){0};
    for (int64_t n = 0; n < N; n++) {
        for (int64_t a = 0; a < O0; a++) {
            const int64_t i0 = dc->t0[a * K0 + k0];
            if (i0 < 0)
                continue;
            for (int64_t b = 0; b < O1; b++) {
                const int64_t i1 = dc->t1[b * K1 + k1];
                if (i1 < 0)
                    continue;
                const T *xrow = dc->x + ((n * S0 + i0) * S1 + i1) * S2 * C;
                const T *grow = dc->gpad + ((n * O0 + a) * O1 + b) * O2 * nvl;
                int64_t c = 0;
                for (int pass = 0; pass < 2; pass++) {
                    /* pass 0: pixels before the interior, pass 1: after it */
                    const int64_t end = pass == 0 ? lo : O2;
                    for (; c < end; c++) {
                        VEC gv[4];
                        for (int v = 0; v < NV; v++)
                            AXON_VLOAD(gv[v], grow + c * nvl + v * AXON_VL);
                        for (int r = 0; r < R; r++) {
                            const int64_t i2 = r < rows ? t2[c * K2 + rk2[r]] : -1;
                            if (i2 < 0)
                                continue;
                            const T xs = xrow[i2 * C + rci[r]];
                            for (int v = 0; v < NV; v++)
                                acc[0][r][v] += gv[v] * xs;
                        }
                    }
                    if (pass == 1)
                        break;
                    if (c < hi) {
                        const T *xp = xrow + t2[c * K2] * C + j0;
                        for (; c + U <= hi; c += U, xp += U * step) {
                            for (int u = 0; u < U; u++) {
                                VEC gv[4];
                                for (int v = 0; v < NV; v++)
                                    AXON_VLOAD(gv[v], grow + (c + u) * nvl + v * AXON_VL);
                                for (int r = 0; r < R; r++) {
                                    if (r >= rows)
                                        break;
                                    const T xs = xp[u * step + r];
                                    for (int v = 0; v < NV; v++)
                                        acc[u][r][v] += gv[v] * xs;
                                }
                            }
                        }
                        for (; c < hi; c++, xp += step) {
                            VEC gv[4];
                            for (int v = 0; v < NV; v++)
                                AXON_VLOAD(gv[v], grow + c * nvl + v * AXON_VL);
                            for (int r = 0; r < R; r++) {
                                if (r >= rows)
                                    break;
                                const T xs = xp[r];
                                for (int v = 0; v < NV; v++)
                                    acc[0][r][v] += gv[v] * xs;
                            }
                        }
                    }
                }
            }
        }
    }
    for (int r = 0; r < R; r++) {
        if (r >= rows)
            break;
        T tmp[4 * AXON_VBYTES / sizeof(T)];
        for (int v = 0; v < NV; v++) {
            VEC sum = acc[0][r][v];
            for (int u = 1; u < U; u++)
                sum += acc[u][r][v];
            memcpy(tmp + v * AXON_VL, &sum, sizeof sum);
        }
        memcpy(dwr + r * dc->cout, tmp, (size_t)dc->cout * sizeof(T));
    }
}

#define AXON_WGRAD(NV, R, U)                                                                   \
    AXON_WATTR static void SFXW(axon_wgrad_##NV)(const SFX(axon_direct) *dc, int64_t k0,       \
                                                 int64_t k1, int64_t j0, int64_t lo,           \
                                                 int64_t hi, T *dwr)                           \
    {                                                                                          \
        SFXW(axon_wgrad_block)(dc, k0, k1, j0, lo, hi, dwr, NV, R, U);                          \
    }
#if AXON_VBYTES == 64 /* AVX-512: 32 registers */
#define AXON_WGRAD_ROWS {0, 12, 8, 6, 4}
AXON_WGRAD(1, 12, 2)
AXON_WGRAD(2, 8, 1)
AXON_WGRAD(3, 6, 1)
AXON_WGRAD(4, 4, 1)
#else
#define AXON_WGRAD_ROWS {0, 6, 6, 4, 3}
AXON_WGRAD(1, 6, 2)
AXON_WGRAD(2, 6, 1)
AXON_WGRAD(3, 4, 1)
AXON_WGRAD(4, 3, 1)
#endif
#undef AXON_WGRAD

static int SFXW(axon_conv_direct_wgrad_run)(const axon_conv_geom *gm, const T *x, const T *g,
                                             T *dw, int64_t cout)
{
    /* channels that fill whole vectors are summed faster across the channels (8 floats on
     * AVX2: 0.39 against 0.63 ms for a 64x28x28 image batch, 5x5 kernel) */
    if (SFXW(axon_gray_fits)(gm, cout) && cout % AXON_VL != 0)
        return SFXW(axon_gray_wgrad_run)(gm, x, g, dw, cout);
    const int64_t nv = (cout + AXON_VL - 1) / AXON_VL;
    if (gm->g != 1 || nv < 1 || nv > 4)
        return -2;
    axon_tables tb;
    if (!axon_conv_tables(gm, &tb))
        return -1;
    const int64_t C = gm->c, nvl = nv * AXON_VL, K1 = gm->k[1], K2 = gm->k[2], O2 = gm->o[2];
    const int64_t M = gm->n * gm->o[0] * gm->o[1] * O2;
    T *gpad = NULL;
    if (nvl != cout) {
        gpad = SFX(axon_pad_channels)(g, M, cout, nvl);
        if (gpad == NULL) {
            axon_free_tables(&tb);
            return -1;
        }
    }
    const SFX(axon_direct) dc = {gm, tb.t[0], tb.t[1], tb.t[2], x, NULL,
                                 gpad != NULL ? gpad : g, cout, nvl};
    /* interior pixels along the last dim: every tap reads a real input, K2 * C of them in a run */
    int64_t lo = 0, hi = 0;
    if (gm->lhs_dil[2] == 1 && gm->rhs_dil[2] == 1) {
        while (lo < O2 && (tb.t[2][lo * K2] < 0 || tb.t[2][lo * K2 + K2 - 1] < 0))
            lo++;
        hi = lo;
        while (hi < O2 && tb.t[2][hi * K2] >= 0 && tb.t[2][hi * K2 + K2 - 1] >= 0)
            hi++;
    }
    static const int64_t rows_of[5] = AXON_WGRAD_ROWS;
    const int64_t R = rows_of[nv], J = K2 * C, per_row = (J + R - 1) / R;
    const int64_t kernel_rows = gm->k[0] * K1;
    const int64_t work = M * kernel_rows * J * nvl;

#pragma omp parallel for schedule(dynamic, 1) if (work > AXON_PAR_MIN)
    for (int64_t item = 0; item < kernel_rows * per_row; item++) {
        const int64_t kr = item / per_row, j0 = (item % per_row) * R;
        const int64_t k0 = kr / K1, k1 = kr % K1;
        T *dwr = dw + (kr * J + j0) * cout;
        switch (nv) {
        case 1: SFXW(axon_wgrad_1)(&dc, k0, k1, j0, lo, hi, dwr); break;
        case 2: SFXW(axon_wgrad_2)(&dc, k0, k1, j0, lo, hi, dwr); break;
        case 3: SFXW(axon_wgrad_3)(&dc, k0, k1, j0, lo, hi, dwr); break;
        default: SFXW(axon_wgrad_4)(&dc, k0, k1, j0, lo, hi, dwr); break;
        }
    }
    free(gpad);
    axon_free_tables(&tb);
    return 0;
}

/* Input gradient, the transposed convolution, for a unit stride and no input dilation along the
 * last dim: input i2 then takes output i2 + lo2 - k2 * d2 through tap k2, consecutive inputs
 * consecutive outputs. g arrives transposed to channel-first rows padded with zeros (gt: row
 * (n, o0, o1), channel co at gt + co * L, output o2 at index o2 - omin), so a vector of IB*VL
 * consecutive inputs reads a vector of g at a fixed offset per tap, with no bounds checks.
 * Block: input channels ci0 .. ci0+CB-1 (those below C) and inputs i2 = v0 .. v0+IB*VL-1 of
 * input row (n, i0, i1); inv0/inv1 map an input and a tap to their output row, or -1. */
static inline __attribute__((always_inline)) void
SFXW(axon_igrad_block)(const axon_conv_geom *gm, const int64_t *inv0, const int64_t *inv1,
                       const T *gt, int64_t L, const T *w, int64_t cout, int64_t n, int64_t i0,
                       int64_t i1, int64_t ci0, int64_t v0, T *dxrow, const int CB, const int IB,
                       const int EXACT)
{
    const int64_t C = gm->c, S2 = gm->s[2], K0 = gm->k[0], K1 = gm->k[1], K2 = gm->k[2];
    const int64_t O0 = gm->o[0], O1 = gm->o[1], d2 = gm->rhs_dil[2];
    VEC acc[8][4];
    for (int c = 0; c < CB; c++)
        for (int b = 0; b < IB; b++)
            acc[c][b] = (VEC){0};
    for (int64_t k0 = 0; k0 < K0; k0++) {
        const int64_t o0 = inv0[i0 * K0 + k0];
        if (o0 < 0)
            continue;
        for (int64_t k1 = 0; k1 < K1; k1++) {
            const int64_t o1 = inv1[i1 * K1 + k1];
            if (o1 < 0)
                continue;
            const T *grow = gt + ((n * O0 + o0) * O1 + o1) * cout * L;
            const T *wrow = w + (k0 * K1 + k1) * K2 * C * cout;
            for (int64_t k2 = 0; k2 < K2; k2++) {
                const T *gp = grow + v0 + (K2 - 1 - k2) * d2;
                const T *wp = wrow + (k2 * C + ci0) * cout;
                for (int64_t co = 0; co < cout; co++) {
                    VEC gv[4];
                    for (int b = 0; b < IB; b++)
                        AXON_VLOAD(gv[b], gp + co * L + b * AXON_VL);
                    for (int c = 0; c < CB; c++) {
                        if (!EXACT && ci0 + c >= C)
                            break;
                        const T ws = wp[c * cout + co];
                        for (int b = 0; b < IB; b++)
                            acc[c][b] += gv[b] * ws;
                    }
                }
            }
        }
    }
    /* channels-last store of the inputs that exist */
    for (int c = 0; c < CB; c++) {
        if (ci0 + c >= C)
            break;
        T tmp[4 * AXON_VBYTES / sizeof(T)];
        memcpy(tmp, acc[c], (size_t)IB * sizeof(VEC));
        for (int64_t i = 0; i < IB * AXON_VL && v0 + i < S2; i++)
            dxrow[(v0 + i) * C + ci0 + c] = tmp[i];
    }
}

#define AXON_IGRAD(CB, IB)                                                                     \
    AXON_WATTR static void SFXW(axon_igrad_row_##CB##_##IB)(                                   \
        const axon_conv_geom *gm, const int64_t *inv0, const int64_t *inv1, const T *gt,       \
        int64_t L, const T *w, int64_t cout, int64_t n, int64_t i0, int64_t i1, T *dxrow)      \
    {                                                                                          \
        /* exact blocks when CB divides the channels */                                        \
        const int exact = gm->c % (CB) == 0;                                                   \
        for (int64_t ci0 = 0; ci0 < gm->c; ci0 += (CB))                                        \
            for (int64_t v0 = 0; v0 < gm->s[2]; v0 += (IB) * AXON_VL) {                        \
                if (exact)                                                                     \
                    SFXW(axon_igrad_block)(gm, inv0, inv1, gt, L, w, cout, n, i0, i1, ci0, v0, \
                                           dxrow, CB, IB, 1);                                  \
                else                                                                           \
                    SFXW(axon_igrad_block)(gm, inv0, inv1, gt, L, w, cout, n, i0, i1, ci0, v0, \
                                           dxrow, CB, IB, 0);                                  \
            }                                                                                  \
    }
#define AXON_IGRAD_IBS(CB) AXON_IGRAD(CB, 1) AXON_IGRAD(CB, 2) AXON_IGRAD(CB, 4)
AXON_IGRAD_IBS(1)
AXON_IGRAD_IBS(2)
AXON_IGRAD_IBS(4)
AXON_IGRAD_IBS(6)
AXON_IGRAD_IBS(8)
#undef AXON_IGRAD_IBS
#undef AXON_IGRAD

static int SFXW(axon_conv_direct_igrad_run)(const axon_conv_geom *gm, const T *g, const T *w,
                                            T *dx, int64_t cout)
{
    const int64_t C = gm->c, N = gm->n, S0 = gm->s[0], S1 = gm->s[1], S2 = gm->s[2];
    const int64_t K2 = gm->k[2], O0 = gm->o[0], O1 = gm->o[1], O2 = gm->o[2];
    const int64_t d2 = gm->rhs_dil[2], lo2 = gm->pad_lo[2];
    /* padded channel-first rows of g: index j holds output o2 = j + omin */
    const int64_t omin = lo2 - (K2 - 1) * d2;
    const int64_t L = (S2 + 4 * AXON_VL - 1) / (4 * AXON_VL) * (4 * AXON_VL) + (K2 - 1) * d2;
    int64_t *inv0 = axon_inverse_table(gm, 0), *inv1 = axon_inverse_table(gm, 1);
    T *gt = (T *)malloc((size_t)(N * O0 * O1 * cout * L > 0 ? N * O0 * O1 * cout * L : 1) *
                        sizeof(T));
    if (inv0 == NULL || inv1 == NULL || gt == NULL) {
        free(inv0);
        free(inv1);
        free(gt);
        return -1;
    }
    const int64_t rows = N * O0 * O1, work = N * S0 * S1 * S2 * C * cout * gm->k[0] * gm->k[1] * K2;
    /* channel block CB (exact when it divides C) and vectors per block IB: as many as the row
     * needs, within the accumulator registers (12 of 16 with AVX2, 24 of 32 with AVX-512) */
    const int64_t cb = C >= 8 ? 8 : C >= 6 ? 6 : C >= 4 ? 4 : C >= 2 ? 2 : 1;
    const int64_t regs = AXON_VBYTES == 64 ? 24 : 12, need = (S2 + AXON_VL - 1) / AXON_VL;
    int64_t ib = need >= 4 ? 4 : need >= 2 ? 2 : 1;
    while (ib > 1 && cb * ib > regs)
        ib /= 2;
    const int64_t variant = cb * 8 + ib;

#pragma omp parallel if (work > AXON_PAR_MIN)
    {
#pragma omp for schedule(guided)
        for (int64_t r = 0; r < rows; r++) {
            const T *src = g + r * O2 * cout;
            T *dst = gt + r * cout * L;
            /* outputs o2 in [0, O2) sit at j = o2 - omin; zeros around them */
            const int64_t j0 = -omin, j1 = -omin + O2;
            for (int64_t co = 0; co < cout; co++) {
                T *d = dst + co * L;
                for (int64_t j = 0; j < j0; j++)
                    d[j] = 0;
                for (int64_t j = j1; j < L; j++)
                    d[j] = 0;
            }
            for (int64_t o2 = 0; o2 < O2; o2++) {
                const T *sp = src + o2 * cout;
                T *d = dst + j0 + o2;
                for (int64_t co = 0; co < cout; co++)
                    d[co * L] = sp[co];
            }
        }
        /* the implicit barrier: gt is complete */
#pragma omp for collapse(2) schedule(guided)
        for (int64_t n = 0; n < N; n++) {
            for (int64_t i0 = 0; i0 < S0; i0++) {
                for (int64_t i1 = 0; i1 < S1; i1++) {
                    T *dxrow = dx + ((n * S0 + i0) * S1 + i1) * S2 * C;
                    switch (variant) {
#define AXON_IGRAD_CASE(CB, IB)                                                                \
    case CB * 8 + IB:                                                                          \
        SFXW(axon_igrad_row_##CB##_##IB)(gm, inv0, inv1, gt, L, w, cout, n, i0, i1, dxrow);    \
        break;
#define AXON_IGRAD_CASES(CB) AXON_IGRAD_CASE(CB, 1) AXON_IGRAD_CASE(CB, 2) AXON_IGRAD_CASE(CB, 4)
                    AXON_IGRAD_CASES(1)
                    AXON_IGRAD_CASES(2)
                    AXON_IGRAD_CASES(4)
                    AXON_IGRAD_CASES(6)
                    default: AXON_IGRAD_CASES(8)
#undef AXON_IGRAD_CASES
#undef AXON_IGRAD_CASE
                    }
                }
            }
        }
    }
    free(inv0);
    free(inv1);
    free(gt);
    return 0;
}

#undef VEC
#undef AXON_VL
#undef AXON_VLOAD
#undef AXON_WGRAD_ROWS

#endif /* AXON_TEMPLATE_PASS, AXON_WPASS */
