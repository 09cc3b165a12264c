/* One stage of trainlab's default cnn after its convolution: 2x2 max-pool, batch norm (training
 * statistics), ReLU, forward and backward, for channels-last tensors on the CPU.
 *
 * PyTorch runs these as three kernels each way, each a pass over memory, and the pool's backward
 * first zero-fills the whole input-sized gradient and then scatters into it. Here the forward
 * makes one pass over the convolution's output (the pool, with the sum for the mean) and two
 * over the pooled quarter; the backward makes one pass over the pooled quarter (the two sums
 * batch norm needs) and one that writes each input-sized gradient element once.
 *
 * Layout: x is N x H x W x C (channels last), the pooled tensors N x Ho x Wo x C with Ho = H/2,
 * Wo = W/2 (floor, as nn.MaxPool2d(2)). C is a multiple of 8. T is float or bfloat16 (stored as
 * uint16); the arithmetic is float. The max-pool keeps PyTorch's rules: the first maximum in
 * the window wins, and a NaN wins over any number. Work is split over the batch in fixed
 * slices, and the per-slice sums are added in slice order, so a run is repeatable.
 *
 * Built at first use by trainlab/models/fused.py with the system's C compiler and -fopenmp; it
 * then shares PyTorch's OpenMP threads (libgomp.so.1, already loaded by torch).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef int16_t i16x8 __attribute__((vector_size(16)));
typedef uint8_t u8x8 __attribute__((vector_size(8)));

static inline f8 as_f8(i8 v) { f8 f; memcpy(&f, &v, 32); return f; }
static inline i8 as_i8(f8 v) { i8 i; memcpy(&i, &v, 32); return i; }
static inline f8 splat(float v) { return (f8){v, v, v, v, v, v, v, v}; }
static inline i8 isplat(int v) { return (i8){v, v, v, v, v, v, v, v}; }
static inline f8 select8(i8 mask, f8 a, f8 b) { return as_f8((mask & as_i8(a)) | (~mask & as_i8(b))); }

/* Loads and stores of 8 channels, as float. */
static inline f8 load_f32(const float *p) { f8 v; memcpy(&v, p, 32); return v; }
static inline void store_f32(float *p, f8 v) { memcpy(p, &v, 32); }
static inline f8 load_bf16(const uint16_t *p) {
    u16x8 h; memcpy(&h, p, 16);
    return as_f8(__builtin_convertvector(h, i8) << 16);
}
static inline void store_bf16(uint16_t *p, f8 v) { /* round to nearest even; NaN stays NaN */
    i8 u = as_i8(v);
    i8 rounded = u + 0x7fff + ((u >> 16) & 1);
    i8 nan = v != v;
    i8 out = (nan & isplat(0x7fc00000)) | (~nan & rounded);
    u16x8 h = __builtin_convertvector((out >> 16) & 0xffff, u16x8);
    memcpy(p, &h, 16);
}

/* A value that is already a bfloat16 (the pool's maximum): its top half, no rounding. */
static inline void keep_bf16(uint16_t *p, f8 v) {
    u16x8 h = __builtin_convertvector((as_i8(v) >> 16) & 0xffff, u16x8);
    memcpy(p, &h, 16);
}

/* The pool's backward for 8 channels: dx to the window's winner (at: 0-3), zero to the rest.
 * The value is converted once and the four stores select its bits. */
static inline void scatter_f32(float *a, float *b, float *c, float *d, f8 dx, u8x8 at8) {
    i8 bits = as_i8(dx), at = __builtin_convertvector(at8, i8), o;
    o = (at == 0) & bits; memcpy(a, &o, 32);
    o = (at == 1) & bits; memcpy(b, &o, 32);
    o = (at == 2) & bits; memcpy(c, &o, 32);
    o = (at == 3) & bits; memcpy(d, &o, 32);
}
static inline void scatter_bf16(uint16_t *a, uint16_t *b, uint16_t *c, uint16_t *d, f8 dx,
                                u8x8 at8) {
    uint16_t h8[8];
    store_bf16(h8, dx);
    i16x8 h, at = __builtin_convertvector(at8, i16x8), o;
    memcpy(&h, h8, 16);
    o = (at == 0) & h; memcpy(a, &o, 16);
    o = (at == 1) & h; memcpy(b, &o, 16);
    o = (at == 2) & h; memcpy(c, &o, 16);
    o = (at == 3) & h; memcpy(d, &o, 16);
}

static inline int threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static inline int team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Forward. p (the pooled input of batch norm) and idx (which of the window's 4 won) are kept for
 * the backward; mean and invstd are the batch's; running_mean/var are updated in place with
 * `factor` (the momentum). Returns 0, or -1 if memory for the partial sums ran out. */
#define STAGE_FORWARD(NAME, T, LOAD, STORE, KEEP)                                                \
    int NAME(const T *x, T *p, uint8_t *idx, T *y, const float *w, const float *b, float *mean,  \
             float *invstd, float *running_mean, float *running_var, float factor, float eps,   \
             long N, long H, long W, long C) {                                                  \
        long Ho = H / 2, Wo = W / 2, count = N * Ho * Wo;                                       \
        int nt = threads();                                                                     \
        float *part = calloc((size_t)nt * C, sizeof(float));                                    \
        if (!part) return -1;                                                                   \
        _Pragma("omp parallel") {                                                               \
            int t = thread_id(), k = team_size();                                               \
            long n0 = N * t / k, n1 = N * (t + 1) / k;                                          \
            float *sum = part + (size_t)t * C;                                                  \
            for (long n = n0; n < n1; n++)                                                      \
                for (long oh = 0; oh < Ho; oh++) {                                              \
                    const T *r0 = x + ((n * H + 2 * oh) * W) * C, *r1 = r0 + W * C;             \
                    long o = ((n * Ho + oh) * Wo) * C;                                          \
                    for (long c = 0; c < C; c += 8) { /* the sum in a register, per row */    \
                        f8 acc = splat(0);                                                      \
                        for (long ow = 0; ow < Wo; ow++) {                                      \
                            long a = 2 * ow * C + c;                                            \
                            f8 m = LOAD(r0 + a), v;                                             \
                            i8 at = isplat(0), win;                                             \
                            v = LOAD(r0 + a + C); win = (v > m) | (v != v);                     \
                            m = select8(win, v, m); at = (win & 1) | (~win & at);               \
                            v = LOAD(r1 + a); win = (v > m) | (v != v);                         \
                            m = select8(win, v, m); at = (win & 2) | (~win & at);               \
                            v = LOAD(r1 + a + C); win = (v > m) | (v != v);                     \
                            m = select8(win, v, m); at = (win & 3) | (~win & at);               \
                            KEEP(p + o + ow * C + c, m);                                        \
                            u8x8 at8 = __builtin_convertvector(at, u8x8);                       \
                            memcpy(idx + o + ow * C + c, &at8, 8);                              \
                            acc += m;                                                           \
                        }                                                                       \
                        store_f32(sum + c, load_f32(sum + c) + acc);                            \
                    }                                                                           \
                }                                                                               \
        }                                                                                       \
        for (long c = 0; c < C; c++) {                                                          \
            float s = 0;                                                                        \
            for (int t = 0; t < nt; t++) s += part[(size_t)t * C + c];                          \
            mean[c] = s / count;                                                                \
        }                                                                                       \
        memset(part, 0, (size_t)nt * C * sizeof(float));                                        \
        _Pragma("omp parallel") { /* the variance, from the pooled values (two-pass) */          \
            int t = thread_id(), k = team_size();                                               \
            long rows = N * Ho, j0 = rows * t / k, j1 = rows * (t + 1) / k;                     \
            float *sq = part + (size_t)t * C;                                                   \
            for (long j = j0; j < j1; j++)                                                      \
                for (long c = 0; c < C; c += 8) {                                               \
                    f8 acc = splat(0), mu = load_f32(mean + c);                                 \
                    for (long ow = 0; ow < Wo; ow++) {                                          \
                        f8 d = LOAD(p + (j * Wo + ow) * C + c) - mu;                            \
                        acc += d * d;                                                           \
                    }                                                                           \
                    store_f32(sq + c, load_f32(sq + c) + acc);                                  \
                }                                                                               \
        }                                                                                       \
        for (long c = 0; c < C; c++) {                                                          \
            float s = 0;                                                                        \
            for (int t = 0; t < nt; t++) s += part[(size_t)t * C + c];                          \
            float var = s / count;                                                              \
            invstd[c] = 1.0f / sqrtf(var + eps);                                                \
            if (running_mean) {                                                                 \
                float unbiased = count > 1 ? s / (count - 1) : var;                             \
                running_mean[c] = (1 - factor) * running_mean[c] + factor * mean[c];            \
                running_var[c] = (1 - factor) * running_var[c] + factor * unbiased;             \
            }                                                                                   \
        }                                                                                       \
        free(part);                                                                             \
        _Pragma("omp parallel") {                                                               \
            int t = thread_id(), k = team_size();                                               \
            long r0 = count * t / k, r1 = count * (t + 1) / k;                                  \
            for (long r = r0; r < r1; r++)                                                      \
                for (long c = 0; c < C; c += 8) {                                               \
                    f8 z = (LOAD(p + r * C + c) - load_f32(mean + c)) * load_f32(invstd + c)    \
                           * load_f32(w + c) + load_f32(b + c);                                 \
                    STORE(y + r * C + c, select8((z > 0) | (z != z), z, splat(0)));             \
                }                                                                               \
        }                                                                                       \
        return 0;                                                                               \
    }

/* Backward: g is the gradient of y. Writes gx (N x H x W x C: every element, zeros included),
 * gw and gb (C floats). */
#define STAGE_BACKWARD(NAME, T, LOAD, SCATTER)                                                   \
    int NAME(const T *g, const T *p, const uint8_t *idx, const float *mean, const float *invstd, \
             const float *w, const float *b, T *gx, float *gw, float *gb, long N, long H,        \
             long W, long C) {                                                                  \
        long Ho = H / 2, Wo = W / 2, count = N * Ho * Wo;                                       \
        int nt = threads();                                                                     \
        float *part = calloc((size_t)nt * 2 * C, sizeof(float));                                \
        float *k1 = malloc(2 * C * sizeof(float));                                              \
        if (!part || !k1) { free(part); free(k1); return -1; }                                  \
        _Pragma("omp parallel") {                                                               \
            int t = thread_id(), k = team_size();                                               \
            long rows = N * Ho, j0 = rows * t / k, j1 = rows * (t + 1) / k;                     \
            float *sdy = part + (size_t)t * 2 * C, *sdx = sdy + C;                              \
            for (long j = j0; j < j1; j++)                                                      \
                for (long c = 0; c < C; c += 8) {                                               \
                    f8 mu = load_f32(mean + c), sc = load_f32(invstd + c);                      \
                    f8 wc = load_f32(w + c), bc = load_f32(b + c), a1 = splat(0), a2 = splat(0);\
                    for (long ow = 0; ow < Wo; ow++) {                                          \
                        long q = (j * Wo + ow) * C + c;                                         \
                        f8 xhat = (LOAD(p + q) - mu) * sc;                                      \
                        f8 dy = select8(xhat * wc + bc > 0, LOAD(g + q), splat(0));             \
                        a1 += dy;                                                               \
                        a2 += dy * xhat;                                                        \
                    }                                                                           \
                    store_f32(sdy + c, load_f32(sdy + c) + a1);                                 \
                    store_f32(sdx + c, load_f32(sdx + c) + a2);                                 \
                }                                                                               \
        }                                                                                       \
        for (long c = 0; c < C; c++) {                                                          \
            float s1 = 0, s2 = 0;                                                               \
            for (int t = 0; t < nt; t++) {                                                      \
                s1 += part[(size_t)t * 2 * C + c];                                              \
                s2 += part[(size_t)t * 2 * C + C + c];                                          \
            }                                                                                   \
            gb[c] = s1; gw[c] = s2;                                                             \
            k1[c] = s1 / count; k1[C + c] = s2 / count;                                         \
        }                                                                                       \
        free(part);                                                                             \
        _Pragma("omp parallel") {                                                               \
            int t = thread_id(), k = team_size();                                               \
            long n0 = N * t / k, n1 = N * (t + 1) / k;                                          \
            for (long n = n0; n < n1; n++) {                                                    \
                for (long oh = 0; oh < Ho; oh++) {                                              \
                    T *r0 = gx + ((n * H + 2 * oh) * W) * C, *r1 = r0 + W * C;                  \
                    long o = ((n * Ho + oh) * Wo) * C;                                          \
                    for (long ow = 0; ow < Wo; ow++)                                            \
                        for (long c = 0; c < C; c += 8) {                                       \
                            long q = o + ow * C + c, a = 2 * ow * C + c;                        \
                            f8 sc = load_f32(invstd + c);                                       \
                            f8 xhat = (LOAD(p + q) - load_f32(mean + c)) * sc;                  \
                            f8 z = xhat * load_f32(w + c) + load_f32(b + c);                    \
                            f8 dy = select8(z > 0, LOAD(g + q), splat(0));                      \
                            f8 dx = (dy - load_f32(k1 + c) - xhat * load_f32(k1 + C + c))       \
                                    * sc * load_f32(w + c);                                     \
                            u8x8 at8; memcpy(&at8, idx + q, 8);                                 \
                            SCATTER(r0 + a, r0 + a + C, r1 + a, r1 + a + C, dx, at8);           \
                        }                                                                       \
                    if (W & 1) {                                                                \
                        memset(r0 + (W - 1) * C, 0, C * sizeof(T));                             \
                        memset(r1 + (W - 1) * C, 0, C * sizeof(T));                             \
                    }                                                                           \
                }                                                                               \
                if (H & 1) memset(gx + ((n * H + H - 1) * W) * C, 0, W * C * sizeof(T));        \
            }                                                                                   \
        }                                                                                       \
        free(k1);                                                                               \
        return 0;                                                                               \
    }

STAGE_FORWARD(stage_forward_f32, float, load_f32, store_f32, store_f32)
STAGE_FORWARD(stage_forward_bf16, uint16_t, load_bf16, store_bf16, keep_bf16)
STAGE_BACKWARD(stage_backward_f32, float, load_f32, scatter_f32)
STAGE_BACKWARD(stage_backward_bf16, uint16_t, load_bf16, scatter_bf16)

int stage_abi(void) { return 1; }
