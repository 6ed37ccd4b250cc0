/* Dot products and small GEMMs: scalar references and AVX2 / AVX-512-VNNI fast paths, chosen by the
   Swift side from tk_cpu_features(). The package is compiled for baseline x86-64, so every SIMD
   function carries its own target attribute and is only called after the cpuid check. */
#include "tendon_kernels.h"
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>
#include <time.h>

uint64_t tk_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline float f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return tk_f16_to_f32(h); }
static inline uint16_t u16(const uint8_t *p, int64_t i) { uint16_t h; memcpy(&h, p + 2 * i, 2); return h; }

static int cpu_features_uncached(void);

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63; *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

int tk_cpu_features(void) {
    /* cpuid traps to the hypervisor in a VM (microseconds), so the answer is computed once. */
    static int cached = -1;
    int known = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (known >= 0) return known;
    known = cpu_features_uncached();
    __atomic_store_n(&cached, known, __ATOMIC_RELAXED);
    return known;
}

static int cpu_features_uncached(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1, osxsave = (c >> 27) & 1;
    if (!osxsave) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x6) != 0x6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    int features = (avx2 && fma && f16c) ? TK_CPU_AVX2 : 0;
    int avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && ((c >> 11) & 1);
    if (features && avx512 && (lo & 0xE0) == 0xE0) features |= TK_CPU_AVX512VNNI;
    return features;
}

/* ---- scalar references ---- */

static float dot_q8_0_scalar(int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s) {
    (void)s;
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b, w += 34) {
        int32_t isum = 0;
        for (int i = 0; i < 32; ++i) isum += (int32_t)(int8_t)w[2 + i] * q[32 * b + i];
        sum += (float)isum * (f16(w) * d[b]);
    }
    return sum;
}

static float dot_q4_0_scalar(int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s) {
    (void)s;
    float sum = 0;
    for (int64_t b = 0; b < n / 32; ++b, w += 18) {
        int32_t isum = 0;
        for (int i = 0; i < 16; ++i) {
            isum += ((int32_t)(w[2 + i] & 15) - 8) * q[32 * b + i];
            isum += ((int32_t)(w[2 + i] >> 4) - 8) * q[32 * b + 16 + i];
        }
        sum += (float)isum * (f16(w) * d[b]);
    }
    return sum;
}

/* Q4_K (five = 0) and Q5_K (five = 1: qh[32] before the nibbles, bit j of qh[l] tops value l of sub-block j). */
static float dot_kquant_scalar(int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s, int five) {
    float sum = 0;
    for (int64_t b = 0; b < n / 256; ++b, w += five ? 176 : 144, q += 256, d += 8, s += 8) {
        float dd = f16(w), dmin = f16(w + 2);
        const uint8_t *qh = w + 16, *qs = w + (five ? 48 : 16);
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, w + 4, &sc, &m);
            int32_t isum = 0;
            for (int l = 0; l < 32; ++l) {
                int v = (j & 1) ? (qs[32 * (j / 2) + l] >> 4) : (qs[32 * (j / 2) + l] & 15);
                if (five) v |= ((qh[l] >> j) & 1) << 4;
                isum += v * q[32 * j + l];
            }
            sum += d[j] * (dd * sc * (float)isum - dmin * m * (float)s[j]);
        }
    }
    return sum;
}

static float dot_q4_k_scalar(int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s) {
    return dot_kquant_scalar(n, w, q, d, s, 0);
}

static float dot_q5_k_scalar(int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s) {
    return dot_kquant_scalar(n, w, q, d, s, 1);
}

static float dot_q6_k_scalar(int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s) {
    (void)s;
    float sum = 0;
    for (int64_t b = 0; b < n / 256; ++b, w += 210) {
        int8_t v[256];
        const uint8_t *ql = w, *qh = w + 128;
        for (int h = 0; h < 2; ++h, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                v[128 * h + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                v[128 * h + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                v[128 * h + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                v[128 * h + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        const int8_t *sc = (const int8_t *)(w + 192);
        float dd = f16(w + 208);
        for (int j = 0; j < 8; ++j) {
            int32_t i0 = 0, i1 = 0;
            for (int l = 0; l < 16; ++l) {
                i0 += v[32 * j + l] * q[256 * b + 32 * j + l];
                i1 += v[32 * j + 16 + l] * q[256 * b + 32 * j + 16 + l];
            }
            sum += dd * d[8 * b + j] * (float)(sc[2 * j] * i0 + sc[2 * j + 1] * i1);
        }
    }
    return sum;
}

#define W_F32(r, i) (((const float *)(r))[i])
#define W_F16(r, i) tk_f16_to_f32(u16((r), (i)))
#define W_BF16(r, i) tk_bf16_to_f32(u16((r), (i)))

#define GEMM_F_SCALAR(NAME, SCALARW)                                                                  \
    static void NAME(int64_t n, const uint8_t *w, size_t row_bytes, int64_t o0, int64_t o1, int64_t T, \
                     const float *x, int64_t ldx, float *y, int64_t ldy) {                            \
        for (int64_t o = o0; o < o1; ++o) {                                                           \
            const uint8_t *r = w + (size_t)o * row_bytes;                                             \
            for (int64_t t = 0; t < T; ++t) {                                                         \
                float sum = 0;                                                                        \
                for (int64_t i = 0; i < n; ++i) sum += SCALARW(r, i) * x[t * ldx + i];                \
                y[t * ldy + o] = sum;                                                                 \
            }                                                                                         \
        }                                                                                             \
    }
GEMM_F_SCALAR(gemm_f32_scalar, W_F32)
GEMM_F_SCALAR(gemm_f16_scalar, W_F16)
GEMM_F_SCALAR(gemm_bf16_scalar, W_BF16)

typedef float (*dot_fn_t)(int64_t, const uint8_t *, const int8_t *, const float *, const int32_t *);

/* ---- SIMD instantiations ---- */
#define SFX _avx2
#define TGT "avx2,fma,f16c"
#define DP(acc, u, s) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "tk_dot_simd.inc"
#undef SFX
#undef TGT
#undef DP

#define SFX _vnni
#define TGT "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define DP(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "tk_dot_simd.inc"
#undef SFX
#undef TGT
#undef DP

/* ---- 512-bit VNNI for the two most used weight types: two 32-value blocks per instruction ---- */
#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"), always_inline)) static inline
#define F16B(p) _cvtsh_ss((unsigned short)((p)[0] | ((p)[1] << 8)))

T512 __m512 pair_ps(float a, float b) { return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1); }

T512 void dotn512_q8_0(int R, int64_t n, const uint8_t *w, const int8_t *q, const float *d, float *out) {
    int64_t nb = n / 32, b = 0;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    float tail[4] = {0, 0, 0, 0};
    for (; b + 2 <= nb; b += 2, w += 68) {
        __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 2))),
                                        _mm256_loadu_si256((const __m256i *)(w + 36)), 1);
        __mmask64 neg = _mm512_movepi8_mask(wq);
        __m512i u = _mm512_abs_epi8(wq);
        float w0 = F16B(w), w1 = F16B(w + 34);
        for (int r = 0; r < R; ++r) {
            __m512i xq = _mm512_loadu_si512((const void *)(q + r * n + 32 * b));
            __m512i sx = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq); /* x · sign(w) */
            __m512i i = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, sx);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), pair_ps(w0 * d[r * nb + b], w1 * d[r * nb + b + 1]), acc[r]);
        }
    }
    for (; b < nb; ++b, w += 34) { /* odd block count */
        for (int r = 0; r < R; ++r) {
            int32_t isum = 0;
            for (int i = 0; i < 32; ++i) isum += (int32_t)(int8_t)w[2 + i] * q[r * n + 32 * b + i];
            tail[r] += (float)isum * (F16B(w) * d[r * nb + b]);
        }
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + tail[r];
}

T512 void dotn512_q4_k(int R, int64_t n, const uint8_t *w, const int8_t *q, const float *d, const int32_t *s, float *out) {
    int64_t nb = n / 32;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    __m256 corr[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / 256; ++b, w += 144) {
        float dd = F16B(w), dmin = F16B(w + 2);
        /* The 12 scale bytes → 8 six-bit scales and 8 six-bit mins in two passes of 32-bit masks. */
        uint32_t u[4];
        memcpy(u, w + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
        uint32_t mins_lo = u[1] & 0x3f3f3f3fu;
        u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
        u[2] = mins_lo;
        u[0] &= 0x3f3f3f3fu;
        const uint8_t *sc = (const uint8_t *)&u[0], *mn = (const uint8_t *)&u[2];
        __m256 mins = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mn))),
                                    _mm256_set1_ps(dmin));
        for (int r = 0; r < R; ++r) {
            /* Σ_j dmin·m_j · d_j · sum(q_j): the min term for all 8 sub-blocks at once. */
            __m256 ds = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(s + r * nb + 8 * b))),
                                      _mm256_loadu_ps(d + r * nb + 8 * b));
            corr[r] = _mm256_fmadd_ps(mins, ds, corr[r]);
        }
        const uint8_t *qs = w + 16;
        for (int c = 0; c < 4; ++c) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1);
            __m512i u8 = _mm512_and_si512(both, m4); /* low nibbles: block 2c, high nibbles: block 2c+1 */
            int64_t j0 = 8 * b + 2 * c, j1 = j0 + 1;
            float s0 = dd * sc[2 * c], s1 = dd * sc[2 * c + 1];
            for (int r = 0; r < R; ++r) {
                const float *dr = d + r * nb;
                __m512i xq = _mm512_loadu_si512((const void *)(q + r * n + 32 * j0));
                __m512i i = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u8, xq);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), pair_ps(s0 * dr[j0], s1 * dr[j1]), acc[r]);
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        __m128 c4 = _mm_add_ps(_mm256_castps256_ps128(corr[r]), _mm256_extractf128_ps(corr[r], 1));
        c4 = _mm_add_ps(c4, _mm_movehl_ps(c4, c4));
        c4 = _mm_add_ss(c4, _mm_movehdup_ps(c4));
        out[r] = _mm512_reduce_add_ps(acc[r]) - _mm_cvtss_f32(c4);
    }
}

#define GEMM512(TYPE, CALL)                                                                                 \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c"))) static void      \
    gemm512_##TYPE(int64_t n, const uint8_t *w, size_t row_bytes, int64_t o0, int64_t o1, int64_t T,        \
                   const int8_t *q, const float *d, const int32_t *s, float *y, int64_t ldy) {              \
        (void)s;                                                                                            \
        int64_t nb = n / 32;                                                                                \
        float out[4];                                                                                       \
        for (int64_t ot = o0; ot < o1; ot += 16) {                                                          \
            int64_t oe = ot + 16 < o1 ? ot + 16 : o1, t = 0;                                                \
            for (; t + 4 <= T; t += 4)                                                                      \
                for (int64_t o = ot; o < oe; ++o) {                                                         \
                    const uint8_t *row = w + (size_t)o * row_bytes;                                         \
                    const int8_t *qt = q + t * n; const float *dt = d + t * nb; const int32_t *st = s + t * nb; \
                    (void)st; CALL(4);                                                                      \
                    for (int r = 0; r < 4; ++r) y[(t + r) * ldy + o] = out[r];                               \
                }                                                                                           \
            for (; t < T; ++t)                                                                              \
                for (int64_t o = ot; o < oe; ++o) {                                                         \
                    const uint8_t *row = w + (size_t)o * row_bytes;                                         \
                    const int8_t *qt = q + t * n; const float *dt = d + t * nb; const int32_t *st = s + t * nb; \
                    (void)st; CALL(1);                                                                      \
                    y[t * ldy + o] = out[0];                                                                \
                }                                                                                           \
        }                                                                                                   \
    }
#define CALL_Q8(R) dotn512_q8_0((R), n, row, qt, dt, out)
#define CALL_Q4K(R) dotn512_q4_k((R), n, row, qt, dt, st, out)
GEMM512(q8_0, CALL_Q8)
GEMM512(q4_k, CALL_Q4K)

static int available(int path) {
    int features = tk_cpu_features();
    if (path == TK_PATH_AVX2) return features & TK_CPU_AVX2;
    if (path == TK_PATH_VNNI) return features & TK_CPU_AVX512VNNI;
    return path == TK_PATH_SCALAR;
}

int tk_gemm_q(int wtype, int path, int64_t n, const void *w, size_t row_bytes, int64_t o0, int64_t o1,
              int64_t T, const int8_t *q, const float *d, const int32_t *s, float *y, int64_t ldy) {
    if (wtype != TK_Q8_0 && wtype != TK_Q4_0 && wtype != TK_Q4_K && wtype != TK_Q5_K && wtype != TK_Q6_K) return -1;
    if (!available(path)) return -1;
    if (path == TK_PATH_AVX2) { gemm_q_avx2(wtype, n, w, row_bytes, o0, o1, T, q, d, s, y, ldy); return 0; }
    if (path == TK_PATH_VNNI && wtype == TK_Q8_0) { gemm512_q8_0(n, w, row_bytes, o0, o1, T, q, d, s, y, ldy); return 0; }
    if (path == TK_PATH_VNNI && wtype == TK_Q4_K) { gemm512_q4_k(n, w, row_bytes, o0, o1, T, q, d, s, y, ldy); return 0; }
    if (path == TK_PATH_VNNI) { gemm_q_vnni(wtype, n, w, row_bytes, o0, o1, T, q, d, s, y, ldy); return 0; }
    dot_fn_t dot = wtype == TK_Q8_0 ? dot_q8_0_scalar : wtype == TK_Q4_0 ? dot_q4_0_scalar
                 : wtype == TK_Q4_K ? dot_q4_k_scalar : wtype == TK_Q5_K ? dot_q5_k_scalar : dot_q6_k_scalar;
    int64_t nb = n / 32;
    for (int64_t o = o0; o < o1; ++o) {
        const uint8_t *row = (const uint8_t *)w + (size_t)o * row_bytes;
        for (int64_t t = 0; t < T; ++t) y[t * ldy + o] = dot(n, row, q + t * n, d + t * nb, s + t * nb);
    }
    return 0;
}

int tk_gemm_f(int wtype, int path, int64_t n, const void *w, size_t row_bytes, int64_t o0, int64_t o1,
              int64_t T, const float *x, int64_t ldx, float *y, int64_t ldy) {
    if (!available(path)) return -1;
    if (path == TK_PATH_SCALAR) {
        switch (wtype) {
        case TK_F32: gemm_f32_scalar(n, w, row_bytes, o0, o1, T, x, ldx, y, ldy); return 0;
        case TK_F16: gemm_f16_scalar(n, w, row_bytes, o0, o1, T, x, ldx, y, ldy); return 0;
        case TK_BF16: gemm_bf16_scalar(n, w, row_bytes, o0, o1, T, x, ldx, y, ldy); return 0;
        default: return -1;
        }
    }
    /* The float kernels gain nothing from VNNI; both SIMD paths use the AVX2 + FMA code. */
    switch (wtype) {
    case TK_F32: gemm_f32_avx2(n, w, row_bytes, o0, o1, T, x, ldx, y, ldy); return 0;
    case TK_F16: gemm_f16_avx2(n, w, row_bytes, o0, o1, T, x, ldx, y, ldy); return 0;
    case TK_BF16: gemm_bf16_avx2(n, w, row_bytes, o0, o1, T, x, ldx, y, ldy); return 0;
    default: return -1;
    }
}

float tk_sum_squares_f32(int path, const float *x, int64_t n) {
    if (path != TK_PATH_SCALAR && available(TK_PATH_AVX2)) return sum_squares_avx2(x, n);
    float r = 0;
    for (int64_t i = 0; i < n; ++i) r += x[i] * x[i];
    return r;
}

void tk_scale_mul_f32(int path, const float *x, const float *w, float s, float add, float *y, int64_t n) {
    if (path != TK_PATH_SCALAR && available(TK_PATH_AVX2)) { scale_mul_avx2(x, w, s, add, y, n); return; }
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * s) * (w ? w[i] + add : add);
}
