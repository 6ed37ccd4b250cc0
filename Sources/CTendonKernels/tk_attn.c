/* One attention head whose keys/values come in two segments (the action expert's cached context tokens,
   then this step's action tokens). The fast paths are broadcast-form NN GEMMs (a row of A broadcast
   against contiguous columns of B) so no dot product needs a horizontal sum: that is why the context
   keys arrive transposed. The scalar twin is the plain dot-product formulation, kept as the reference. */
#include "tendon_kernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

int64_t tk_attn_scratch_floats(int64_t H, int64_t T, int64_t A, int64_t hd) {
    return H + hd * A + H * (T + A);
}

/* ---- scalar reference ---- */

static void attn_scalar(int64_t H, int64_t hd, int64_t T, int64_t A, float scale, const float *q, int64_t ldq,
                        const float *kct, int64_t ldkc, const float *ka, int64_t ldka, const float *vc, int64_t ldvc,
                        const float *va, int64_t ldva, float *scores, float *out, int64_t ldo) {
    int64_t S = T + A;
    for (int64_t t = 0; t < H; ++t) {
        float *p = scores + t * S;
        const float *qt = q + t * ldq;
        for (int64_t s = 0; s < T; ++s) {
            float sum = 0;
            for (int64_t i = 0; i < hd; ++i) sum += qt[i] * kct[i * ldkc + s];
            p[s] = sum * scale;
        }
        for (int64_t s = 0; s < A; ++s) {
            float sum = 0;
            for (int64_t i = 0; i < hd; ++i) sum += qt[i] * ka[s * ldka + i];
            p[T + s] = sum * scale;
        }
        tk_softmax_f32(0, p, S);
        for (int64_t i = 0; i < hd; ++i) {
            float sum = 0;
            for (int64_t s = 0; s < T; ++s) sum += p[s] * vc[s * ldvc + i];
            for (int64_t s = 0; s < A; ++s) sum += p[T + s] * va[s * ldva + i];
            out[t * ldo + i] = sum;
        }
    }
}

/* ---- C[M, N] (+)= diag(rowscale or alpha) · A[M, K] · B[K, N] in register tiles ---- */

#define T256 __attribute__((target("avx2,fma")))

/* The 256-bit twin of tile512 below: 6 rows × up to 2 vectors (12 accumulators of 16 registers). */
static inline T256 __attribute__((always_inline)) void tile256(const int mr, const int nv, int64_t K, const float *a,
                                                               int64_t lda, const float *b, int64_t ldb, float *c,
                                                               int64_t ldc, __m256i last, float alpha, const float *rowscale,
                                                               int accumulate) {
    __m256 acc[6][2];
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < nv; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
        __m256 bv[2];
        for (int j = 0; j < nv; ++j)
            bv[j] = j == nv - 1 ? _mm256_maskload_ps(b + k * ldb + 8 * j, last) : _mm256_loadu_ps(b + k * ldb + 8 * j);
        for (int r = 0; r < mr; ++r) {
            __m256 av = _mm256_broadcast_ss(a + r * lda + k);
            for (int j = 0; j < nv; ++j) acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
        }
    }
    for (int r = 0; r < mr; ++r) {
        __m256 va = _mm256_set1_ps(rowscale ? rowscale[r] : alpha);
        for (int j = 0; j < nv; ++j) {
            float *cp = c + r * ldc + 8 * j;
            __m256 v = _mm256_mul_ps(acc[r][j], va);
            if (j < nv - 1) { /* masked stores are slow on some cores: only the last vector takes one */
                if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(cp), v);
                _mm256_storeu_ps(cp, v);
            } else {
                if (accumulate) v = _mm256_add_ps(_mm256_maskload_ps(cp, last), v);
                _mm256_maskstore_ps(cp, last, v);
            }
        }
    }
}

#define TILE_CASE(MR, NV) \
    case (MR) * 8 + (NV): tile256((MR), (NV), K, a + m * lda, lda, b + n, ldb, c + m * ldc + n, ldc, last, alpha, rowscale ? rowscale + m : 0, accumulate); break;
#define TILE_ROW(MR) TILE_CASE(MR, 1) TILE_CASE(MR, 2)

/* C[M, N] (+)= diag(rowscale or alpha) · A[M, K] · B[K, N], row-major with leading dimensions. */
static T256 void gemm_nn_avx2(int64_t M, int64_t N, int64_t K, const float *a, int64_t lda, const float *b, int64_t ldb,
                              float *c, int64_t ldc, float alpha, const float *rowscale, int accumulate) {
    for (int64_t n = 0; n < N; n += 16) {
        int64_t cols = N - n < 16 ? N - n : 16;
        int nv = (int)((cols + 7) / 8);
        int rem = (int)(cols - 8 * (nv - 1));
        __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int64_t m = 0; m < M; m += 6) {
            int mr = M - m < 6 ? (int)(M - m) : 6;
            switch (mr * 8 + nv) {
                TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6)
            default: break;
            }
        }
    }
}
#undef TILE_ROW
#undef TILE_CASE

#define T512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

/* An mr × (16·nv) tile of C held in registers over the whole K loop; `last` masks the columns of the
   final vector. mr and nv are constants at every call site, so the loops unroll into registers. */
static inline T512 __attribute__((always_inline)) void tile512(const int mr, const int nv, int64_t K, const float *a,
                                                               int64_t lda, const float *b, int64_t ldb, float *c,
                                                               int64_t ldc, __mmask16 last, float alpha, const float *rowscale,
                                                               int accumulate) {
    __m512 acc[6][4];
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < nv; ++j) acc[r][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
        __m512 bv[4];
        for (int j = 0; j < nv; ++j) {
            __mmask16 m = j == nv - 1 ? last : (__mmask16)0xFFFF;
            bv[j] = _mm512_maskz_loadu_ps(m, b + k * ldb + 16 * j);
        }
        for (int r = 0; r < mr; ++r) {
            __m512 av = _mm512_set1_ps(a[r * lda + k]);
            for (int j = 0; j < nv; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
        }
    }
    /* Scaling after the sum, as the unfused q·k then ·scale; accumulate adds the finished product to C. */
    for (int r = 0; r < mr; ++r) {
        __m512 va = _mm512_set1_ps(rowscale ? rowscale[r] : alpha);
        for (int j = 0; j < nv; ++j) {
            __mmask16 m = j == nv - 1 ? last : (__mmask16)0xFFFF;
            float *cp = c + r * ldc + 16 * j;
            __m512 v = _mm512_mul_ps(acc[r][j], va);
            if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, cp), v);
            _mm512_mask_storeu_ps(cp, m, v);
        }
    }
}

/* exp256 of tk_act.c on 16 lanes (same Cephes polynomial and operations). */
static inline T512 __attribute__((always_inline)) __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.3762626647949f));
    __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i n = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(n));
}

/* x ← exp(x − max x) in place; returns 1 / Σ (the normalization is left to the P·V product's row scale). */
static T512 float softmax_exp_512(float *x, int64_t n) {
    __m512 m16 = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) m16 = _mm512_max_ps(m16, _mm512_loadu_ps(x + i));
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    m16 = _mm512_mask_max_ps(m16, tail, m16, _mm512_maskz_loadu_ps(tail, x + i));
    __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(m16)), s16 = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        s16 = _mm512_add_ps(s16, e);
    }
    if (tail) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), vm));
        _mm512_mask_storeu_ps(x + i, tail, e);
        s16 = _mm512_mask_add_ps(s16, tail, s16, e);
    }
    return 1.0f / _mm512_reduce_add_ps(s16);
}

#define TILE_CASE(MR, NV) \
    case (MR) * 8 + (NV): tile512((MR), (NV), K, a + m * lda, lda, b + n, ldb, c + m * ldc + n, ldc, last, alpha, rowscale ? rowscale + m : 0, accumulate); break;
#define TILE_ROW(MR) TILE_CASE(MR, 1) TILE_CASE(MR, 2) TILE_CASE(MR, 3) TILE_CASE(MR, 4)

static T512 void gemm_nn_512(int64_t M, int64_t N, int64_t K, const float *a, int64_t lda, const float *b, int64_t ldb,
                             float *c, int64_t ldc, float alpha, const float *rowscale, int accumulate) {
    /* Column blocks of 64 outermost: that K × 64 slice of B stays in L1 while every row tile passes. */
    for (int64_t n = 0; n < N; n += 64) {
        int64_t cols = N - n < 64 ? N - n : 64;
        int nv = (int)((cols + 15) / 16);
        int rem = (int)(cols - 16 * (nv - 1));
        __mmask16 last = (__mmask16)((1u << rem) - 1u);
        for (int64_t m = 0; m < M; m += 6) {
            int mr = M - m < 6 ? (int)(M - m) : 6;
            switch (mr * 8 + nv) {
                TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6)
            default: break;
            }
        }
    }
}
#undef TILE_ROW
#undef TILE_CASE

/* dst[i*rows + s] = src[s*ld + i]: 16 rows at a time, one gather per column (the scalar loop's strided
   stores showed up at ~15 % of the kernel). */
static T512 void transpose_512(const float *src, int64_t ld, int64_t rows, int64_t cols, float *dst) {
    int64_t s = 0;
    if (ld <= INT32_MAX / 16) {
        __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32((int)ld));
        for (; s + 16 <= rows; s += 16)
            for (int64_t i = 0; i < cols; ++i)
                _mm512_storeu_ps(dst + i * rows + s, _mm512_i32gather_ps(idx, src + s * ld + i, 4));
    }
    for (; s < rows; ++s)
        for (int64_t i = 0; i < cols; ++i) dst[i * rows + s] = src[s * ld + i];
}

int tk_attn_two_segment_f32(int path, int64_t H, int64_t hd, int64_t T, int64_t A, float scale, const float *q,
                            int64_t ldq, const float *kc_t, int64_t ldkc, const float *ka, int64_t ldka,
                            const float *vc, int64_t ldvc, const float *va, int64_t ldva, float *scratch, float *out,
                            int64_t ldo) {
    int features = tk_cpu_features();
    if (path == TK_PATH_AVX2 && !(features & TK_CPU_AVX2)) return -1;
    if (path == TK_PATH_VNNI && !(features & TK_CPU_AVX512VNNI)) return -1;
    if (path != TK_PATH_SCALAR && path != TK_PATH_AVX2 && path != TK_PATH_VNNI) return -1;
    if (H <= 0 || hd <= 0) return 0;
    int64_t S = T + A;
    float *inv = scratch, *kat = inv + H, *scores = kat + hd * A;
    if (path == TK_PATH_SCALAR) {
        attn_scalar(H, hd, T, A, scale, q, ldq, kc_t, ldkc, ka, ldka, vc, ldvc, va, ldva, scores, out, ldo);
        return 0;
    }
    void (*gemm)(int64_t, int64_t, int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t, float,
                 const float *, int) = path == TK_PATH_VNNI ? gemm_nn_512 : gemm_nn_avx2;
    if (path == TK_PATH_VNNI) {
        transpose_512(ka, ldka, A, hd, kat);
    } else {
        for (int64_t s = 0; s < A; ++s)
            for (int64_t i = 0; i < hd; ++i) kat[i * A + s] = ka[s * ldka + i];
    }
    if (T > 0) gemm(H, T, hd, q, ldq, kc_t, ldkc, scores, S, scale, 0, 0);
    if (A > 0) gemm(H, A, hd, q, ldq, kat, A, scores + T, S, scale, 0, 0);
    const float *rowscale = 0;
    if (path == TK_PATH_VNNI) {
        for (int64_t t = 0; t < H; ++t) inv[t] = softmax_exp_512(scores + t * S, S);
        rowscale = inv;
    } else {
        for (int64_t t = 0; t < H; ++t) tk_softmax_f32(path, scores + t * S, S);
    }
    if (T > 0) gemm(H, hd, T, scores, S, vc, ldvc, out, ldo, 1, rowscale, 0);
    if (A > 0) gemm(H, hd, A, scores + T, S, va, ldva, out, ldo, 1, rowscale, T > 0);
    if (S == 0)
        for (int64_t t = 0; t < H; ++t) memset(out + t * ldo, 0, (size_t)hd * sizeof(float));
    return 0;
}
