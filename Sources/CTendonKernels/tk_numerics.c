/* Scalar conversions and ggml block (de)quantization. These are the reference definitions the
   fixtures check against gguf.quants; SIMD code elsewhere only has to agree with them. */
#include "tendon_kernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

uint16_t tk_f32_to_f16(float x) {
    /* _Float16 conversion is IEEE round-to-nearest-even, as numpy's astype(float16). */
    _Float16 h = (_Float16)x;
    uint16_t bits;
    memcpy(&bits, &h, 2);
    return bits;
}

float tk_f16_to_f32(uint16_t bits) {
    _Float16 h;
    memcpy(&h, &bits, 2);
    return (float)h;
}

uint16_t tk_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* torch: any NaN becomes the canonical quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float tk_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* F16C / AVX2 twins for the decoders that feed tiled sgemm; both conversions are exact, so they agree
   bit for bit with the scalar ones (checked by the tests on every path). */
__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

__attribute__((target("avx2"))) static void bf16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(v, 16));
    }
    for (; i < n; ++i) dst[i] = tk_bf16_to_f32(src[i]);
}

void tk_f16_to_f32_row_path(int path, const uint16_t *src, float *dst, int64_t n) {
    if (path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2)) { f16_to_f32_f16c(src, dst, n); return; }
    for (int64_t i = 0; i < n; ++i) dst[i] = tk_f16_to_f32(src[i]);
}

void tk_bf16_to_f32_row_path(int path, const uint16_t *src, float *dst, int64_t n) {
    if (path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2)) { bf16_to_f32_avx2(src, dst, n); return; }
    for (int64_t i = 0; i < n; ++i) dst[i] = tk_bf16_to_f32(src[i]);
}

void tk_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = tk_f16_to_f32(src[i]);
}
void tk_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = tk_f32_to_f16(src[i]);
}
void tk_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = tk_bf16_to_f32(src[i]);
}
void tk_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = tk_f32_to_bf16(src[i]);
}

static inline void put_f16(uint8_t *p, float x) { uint16_t h = tk_f32_to_f16(x); memcpy(p, &h, 2); }
static inline float get_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return tk_f16_to_f32(h); }

/* gguf np_roundf: round half away from zero, computed like numpy does (floor(a) + floor(2·frac)). */
static inline float np_roundf(float v) {
    float a = fabsf(v);
    float fl = floorf(a);
    float b = fl + floorf(2.0f * (a - fl));
    return v < 0 ? -b : (v > 0 ? b : 0.0f * b);
}

void tk_quantize_row_q8_0(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / 32; ++b, x += 32, out += 34) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) { float a = fabsf(x[i]); if (a > amax) amax = a; }
        float d = amax / 127.0f;
        float id = d == 0 ? 0.0f : 1.0f / d;
        put_f16(out, d);
        for (int i = 0; i < 32; ++i) out[2 + i] = (uint8_t)(int8_t)np_roundf(x[i] * id);
    }
}

void tk_quantize_row_q4_0(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / 32; ++b, x += 32, out += 18) {
        float amax = 0, max = 0;
        for (int i = 0; i < 32; ++i) {  /* first index of the largest magnitude, as numpy argmax */
            float a = fabsf(x[i]);
            if (a > amax) { amax = a; max = x[i]; }
        }
        float d = max / -8.0f;
        float id = d == 0 ? 0.0f : 1.0f / d;
        put_f16(out, d);
        for (int i = 0; i < 16; ++i) {
            float v0 = truncf(x[i] * id + 8.5f), v1 = truncf(x[16 + i] * id + 8.5f);
            uint8_t q0 = v0 > 15 ? 15 : (uint8_t)v0, q1 = v1 > 15 ? 15 : (uint8_t)v1;
            out[2 + i] = q0 | (uint8_t)(q1 << 4);
        }
    }
}

void tk_dequantize_row_q8_0(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / 32; ++b, p += 34, y += 32) {
        float d = get_f16(p);
        for (int i = 0; i < 32; ++i) y[i] = (float)(int8_t)p[2 + i] * d;
    }
}

void tk_dequantize_row_q4_0(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / 32; ++b, p += 18, y += 32) {
        float d = get_f16(p);
        for (int i = 0; i < 16; ++i) {
            y[i] = d * (float)((int)(p[2 + i] & 15) - 8);
            y[16 + i] = d * (float)((int)(p[2 + i] >> 4) - 8);
        }
    }
}

/* ---- K-quants (256 values per super-block) ---- */

static inline int nearest_int(float v) { return (int)lrintf(v); }

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63; *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

void tk_dequantize_row_q4_k(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / 256; ++b, p += 144) {
        float d = get_f16(p), dmin = get_f16(p + 2);
        const uint8_t *scales = p + 4, *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(j, scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(j + 1, scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: as Q4_K with a fifth bit per value in qh: for the 64 values of pair c, bit 2c of qh[l] tops
   value l and bit 2c + 1 tops value 32 + l. */
void tk_dequantize_row_q5_k(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / 256; ++b, p += 176) {
        float d = get_f16(p), dmin = get_f16(p + 2);
        const uint8_t *scales = p + 4, *qh = p + 16, *q = p + 48;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(j, scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(j + 1, scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            uint8_t u1 = (uint8_t)(1u << j), u2 = (uint8_t)(2u << j);
            for (int l = 0; l < 32; ++l) *y++ = d1 * (float)((q[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (float)((q[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void tk_dequantize_row_q6_k(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / 256; ++b, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        float d = get_f16(p + 208);
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

/* llama.cpp make_qkx2_quants: asymmetric (scale, min) fit of n values to [0, nmax] with a weighted
   least-squares refinement over nstep candidate scales. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * L[i] + min - x[i];
        best_mad += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) { this_min = 0; this_scale = sum_xl / sum_l2; }
            float mad = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                mad += weights[i] * (diff * diff);
            }
            if (mad < best_mad) {
                memcpy(L, Laux, (size_t)n);
                best_mad = mad; scale = this_scale; min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* The super-block parameters Q4_K and Q5_K share (llama.cpp's quantize_row_q{4,5}_K_ref): a weighted
   (scale, min) fit per 32-value sub-block to [0, nmax], both quantized to 6 bits against the block's largest;
   then every value's code on the decoded grid. Writes d, dmin and scales[12] to out[0..16) and codes to L. */
static void kquant_superblock(const float *x, int nmax, float rmin, int nstep, uint8_t *out, uint8_t L[256]) {
    uint8_t Laux[32], scales_q[12];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_q, 0, sizeof scales_q);
    for (int j = 0; j < 8; ++j) {
        int ls = nearest_int(inv_scale * scales[j]), lm = nearest_int(inv_min * mins[j]);
        ls = ls > 63 ? 63 : ls; lm = lm > 63 ? 63 : lm;
        if (j < 4) {
            scales_q[j] = (uint8_t)ls;
            scales_q[j + 4] = (uint8_t)lm;
        } else {
            scales_q[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_q[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_q[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    put_f16(out, max_scale / 63.f);
    put_f16(out + 2, max_min / 63.f);
    memcpy(out + 4, scales_q, 12);
    float dd = get_f16(out), dmin = get_f16(out + 2);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales_q, &sc, &m);
        float d = dd * sc;
        if (d == 0) continue;
        float dm = dmin * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

void tk_quantize_row_q4_k(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / 256; ++b, x += 256, out += 144) {
        uint8_t L[256];
        kquant_superblock(x, 15, -1.f, 20, out, L);
        uint8_t *q = out + 16;
        for (int j = 0; j < 256; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = L[j + l] | (uint8_t)(L[j + l + 32] << 4);
    }
}

void tk_quantize_row_q5_k(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / 256; ++b, x += 256, out += 176) {
        uint8_t L[256];
        kquant_superblock(x, 31, -0.5f, 15, out, L);
        uint8_t *qh = out + 16, *q = out + 48;
        memset(qh, 0, 32);
        for (int j = 0; j < 256; j += 64, q += 32) {
            uint8_t u1 = (uint8_t)(1u << (j / 32)), u2 = (uint8_t)(2u << (j / 32));
            for (int l = 0; l < 32; ++l) {
                uint8_t l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) { l1 -= 16; qh[l] |= u1; }
                if (l2 > 15) { l2 -= 16; qh[l] |= u2; }
                q[l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

#define GROUP_MAX_EPS 1e-15f

/* llama.cpp make_qx_quants with rmse_type 1 (weights x²): symmetric fit to [-nmax, nmax-1], L stored + nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void tk_quantize_row_q6_k(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / 256; ++b, x += 256, out += 210) {
        int8_t L[256];
        float scales[16];
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) { max_abs_scale = fabsf(scale); max_scale = scale; }
        }
        memset(out, 0, 210);
        if (max_abs_scale < GROUP_MAX_EPS) continue;
        float iscale = -128.f / max_scale;
        put_f16(out + 208, 1 / iscale);
        int8_t *sc = (int8_t *)(out + 192);
        for (int ib = 0; ib < 16; ++ib) {
            int v = nearest_int(iscale * scales[ib]);
            sc[ib] = (int8_t)(v > 127 ? 127 : v);
        }
        float dd = get_f16(out + 208);
        for (int j = 0; j < 16; ++j) {
            float d = dd * sc[j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                l = l < -32 ? -32 : l > 31 ? 31 : l;
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = out, *qh = out + 128;
        for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = q1 | (uint8_t)(q3 << 4);
                ql[l + 32] = q2 | (uint8_t)(q4 << 4);
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void tk_quantize_act(const float *x, int64_t n, int8_t *q, float *d, int32_t *s) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32, q += 32) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) { float a = fabsf(x[i]); if (a > amax) amax = a; }
        float db = amax / 127.0f, id = db == 0 ? 0.0f : 1.0f / db;
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) {
            int v = (int)lrintf(x[i] * id);
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            q[i] = (int8_t)v;
            sum += v;
        }
        d[b] = db;
        s[b] = sum;
    }
}
