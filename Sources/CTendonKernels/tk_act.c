/* Activations and softmax: scalar references (libm) and AVX2 fast paths built on a Cephes-style
   exp (≈2 ulp over the normal range). */
#include "tendon_kernels.h"
#include <immintrin.h>
#include <math.h>

#define AVX __attribute__((target("avx2,fma")))

static inline AVX __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.3762626647949f));
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

static int use_avx2(int path) { return path != TK_PATH_SCALAR && (tk_cpu_features() & TK_CPU_AVX2); }

static AVX void silu_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, v)))));
    }
    for (; i < n; ++i) y[i] = x[i] / (1.0f + expf(-x[i]));
}

static AVX void sigmoid_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, v)))));
    }
    for (; i < n; ++i) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* 0.5·x·(1 + tanh(u)) = x · e^{2u} / (e^{2u} + 1) = x / (1 + e^{-2u}), u = √(2/π)(x + 0.044715x³). */
static AVX void gelu_tanh_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), k = _mm256_set1_ps(-2.0f * 0.7978845608028654f),
                 c = _mm256_set1_ps(0.044715f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 u = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v));
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, exp256(u))));
    }
    for (; i < n; ++i) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

static AVX float softmax_avx2(float *x, int64_t n) {
    __m256 m8 = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i));
    float m[8], mx = -INFINITY;
    _mm256_storeu_ps(m, m8);
    for (int j = 0; j < 8; ++j) mx = m[j] > mx ? m[j] : mx;
    for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    __m256 s8 = _mm256_setzero_ps(), vm = _mm256_set1_ps(mx);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s8 = _mm256_add_ps(s8, e);
    }
    float s[8], sum = 0;
    _mm256_storeu_ps(s, s8);
    for (int j = 0; j < 8; ++j) sum += s[j];
    for (; i < n; ++i) { x[i] = expf(x[i] - mx); sum += x[i]; }
    return sum;
}

void tk_silu_f32(int path, const float *x, float *y, int64_t n) {
    if (use_avx2(path)) { silu_avx2(x, y, n); return; }
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + expf(-x[i]));
}

void tk_sigmoid_f32(int path, const float *x, float *y, int64_t n) {
    if (use_avx2(path)) { sigmoid_avx2(x, y, n); return; }
    for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void tk_gelu_tanh_f32(int path, const float *x, float *y, int64_t n) {
    if (use_avx2(path)) { gelu_tanh_avx2(x, y, n); return; }
    for (int64_t i = 0; i < n; ++i) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

void tk_softmax_f32(int path, float *x, int64_t n) {
    if (n <= 0) return;
    float sum;
    if (use_avx2(path)) {
        sum = softmax_avx2(x, n);
    } else {
        float mx = x[0];
        for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
        sum = 0;
        for (int64_t i = 0; i < n; ++i) { x[i] = expf(x[i] - mx); sum += x[i]; }
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

/* torch.nn.functional.softplus (beta 1, threshold 20). One implementation: it runs on a few values per
   token (gate heads), where a SIMD twin would buy nothing. */
void tk_softplus_f32(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
}
