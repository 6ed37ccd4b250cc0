/* Row statistics and RoPE: scalar references and AVX2 fast paths. */
#include "tendon_kernels.h"
#include <immintrin.h>

#define AVX __attribute__((target("avx2,fma")))

static inline AVX float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static AVX void mean_var_avx2(const float *x, int64_t n, float *mean, float *var) {
    __m256 a = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
    float s = hsum(a);
    for (; i < n; ++i) s += x[i];
    float m = s / (float)n;
    __m256 vm = _mm256_set1_ps(m), q = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 dv = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        q = _mm256_fmadd_ps(dv, dv, q);
    }
    float v = hsum(q);
    for (; i < n; ++i) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = v / (float)n;
}

/* Two passes (mean, then squared deviations) as torch's layer_norm does, avoiding E[x²]−E[x]² cancellation. */
void tk_mean_var_f32(int path, const float *x, int64_t n, float *mean, float *var) {
    if (path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2)) { mean_var_avx2(x, n, mean, var); return; }
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    float m = s / (float)n, v = 0;
    for (int64_t i = 0; i < n; ++i) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = v / (float)n;
}

static AVX void rope_row_avx2(float *x, int64_t half, const float *c, const float *s) {
    int64_t i = 0;
    for (; i + 8 <= half; i += 8) {
        __m256 x1 = _mm256_loadu_ps(x + i), x2 = _mm256_loadu_ps(x + half + i);
        __m256 c1 = _mm256_loadu_ps(c + i), c2 = _mm256_loadu_ps(c + half + i);
        __m256 s1 = _mm256_loadu_ps(s + i), s2 = _mm256_loadu_ps(s + half + i);
        /* No FMA: torch computes q·cos and rotate_half(q)·sin as separate rounded products. */
        _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_mul_ps(x1, c1), _mm256_mul_ps(x2, s1)));
        _mm256_storeu_ps(x + half + i, _mm256_add_ps(_mm256_mul_ps(x2, c2), _mm256_mul_ps(x1, s2)));
    }
    for (; i < half; ++i) {
        float a = x[i], b = x[half + i];
        x[i] = a * c[i] - b * s[i];
        x[half + i] = b * c[half + i] + a * s[half + i];
    }
}

void tk_rope_f32(int path, float *x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                 const float *cos_table, const float *sin_table) {
    int64_t half = rotary_dim / 2;
    int fast = path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2);
    for (int64_t t = 0; t < tokens; ++t) {
        const float *c = cos_table + t * rotary_dim, *s = sin_table + t * rotary_dim;
        for (int64_t h = 0; h < heads; ++h) {
            float *row = x + (t * heads + h) * head_dim;
            if (fast) { rope_row_avx2(row, half, c, s); continue; }
            for (int64_t i = 0; i < half; ++i) {
                float a = row[i], b = row[half + i];
                row[i] = a * c[i] - b * s[i];
                row[half + i] = b * c[half + i] + a * s[half + i];
            }
        }
    }
}

static AVX float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float r = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) r += a[i] * b[i];
    return r;
}

float tk_dot_f32(int path, const float *a, const float *b, int64_t n) {
    if (path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2)) return dot_avx2(a, b, n);
    float r = 0;
    for (int64_t i = 0; i < n; ++i) r += a[i] * b[i];
    return r;
}

static AVX void axpy_avx2(float alpha, const float *x, float *y, int64_t n) {
    __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += alpha * x[i];
}

void tk_axpy_f32(int path, float alpha, const float *x, float *y, int64_t n) {
    if (path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2)) { axpy_avx2(alpha, x, y, n); return; }
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
