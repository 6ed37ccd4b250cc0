/* One attention head whose keys/values come in two segments (the action expert's cached context tokens,
   then this step's action tokens). The fast paths are broadcast-form NN GEMMs (a row of A broadcast
   against contiguous columns of B) so no dot product needs a horizontal sum: that is why the context
   keys arrive transposed. The scalar twin is the plain dot-product formulation, kept as the reference. */
#include "tendon_kernels.h"
#include <immintrin.h>
#include <string.h>

int64_t tk_attn_scratch_floats(int64_t H, int64_t T, int64_t A, int64_t hd) {
    return H * hd + hd * A + H * (T + A);
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

/* ---- C[M, N] (+)= A[M, K] · B[K, N], row-major with leading dimensions ---- */

/* AVX2: the compiler vectorizes the column loop; rows of C stay in L1 for these sizes. */
__attribute__((target("avx2,fma"))) static void gemm_nn_avx2(int64_t M, int64_t N, int64_t K, const float *a,
                                                             int64_t lda, const float *b, int64_t ldb, float *c,
                                                             int64_t ldc, int accumulate) {
    for (int64_t m = 0; m < M; ++m) {
        float *cm = c + m * ldc;
        if (!accumulate) memset(cm, 0, (size_t)N * sizeof(float));
        for (int64_t k = 0; k < K; ++k) {
            float av = a[m * lda + k];
            const float *bk = b + k * ldb;
            for (int64_t n = 0; n < N; ++n) cm[n] += av * bk[n];
        }
    }
}

#define T512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

/* An mr × (16·nv) tile of C held in registers over the whole K loop; `last` masks the columns of the
   final vector. mr and nv are constants at every call site, so the loops unroll into registers. */
static inline T512 __attribute__((always_inline)) void tile512(const int mr, const int nv, int64_t K, const float *a,
                                                               int64_t lda, const float *b, int64_t ldb, float *c,
                                                               int64_t ldc, __mmask16 last, int accumulate) {
    __m512 acc[6][4];
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < nv; ++j) {
            __mmask16 m = j == nv - 1 ? last : (__mmask16)0xFFFF;
            acc[r][j] = accumulate ? _mm512_maskz_loadu_ps(m, c + r * ldc + 16 * j) : _mm512_setzero_ps();
        }
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
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < nv; ++j) {
            __mmask16 m = j == nv - 1 ? last : (__mmask16)0xFFFF;
            _mm512_mask_storeu_ps(c + r * ldc + 16 * j, m, acc[r][j]);
        }
}

#define TILE_CASE(MR, NV) \
    case (MR) * 8 + (NV): tile512((MR), (NV), K, a + m * lda, lda, b + n, ldb, c + m * ldc + n, ldc, last, accumulate); break;
#define TILE_ROW(MR) TILE_CASE(MR, 1) TILE_CASE(MR, 2) TILE_CASE(MR, 3) TILE_CASE(MR, 4)

static T512 void gemm_nn_512(int64_t M, int64_t N, int64_t K, const float *a, int64_t lda, const float *b, int64_t ldb,
                             float *c, int64_t ldc, int accumulate) {
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
    float *qs = scratch, *kat = qs + H * hd, *scores = kat + hd * A;
    if (path == TK_PATH_SCALAR) {
        attn_scalar(H, hd, T, A, scale, q, ldq, kc_t, ldkc, ka, ldka, vc, ldvc, va, ldva, scores, out, ldo);
        return 0;
    }
    void (*gemm)(int64_t, int64_t, int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t, int) =
        path == TK_PATH_VNNI ? gemm_nn_512 : gemm_nn_avx2;
    /* The scale goes onto q (H·hd products instead of H·S); exact when it is a power of two (hd = 4^k). */
    for (int64_t t = 0; t < H; ++t)
        for (int64_t i = 0; i < hd; ++i) qs[t * hd + i] = q[t * ldq + i] * scale;
    for (int64_t s = 0; s < A; ++s)
        for (int64_t i = 0; i < hd; ++i) kat[i * A + s] = ka[s * ldka + i];
    if (T > 0) gemm(H, T, hd, qs, hd, kc_t, ldkc, scores, S, 0);
    if (A > 0) gemm(H, A, hd, qs, hd, kat, A, scores + T, S, 0);
    for (int64_t t = 0; t < H; ++t) tk_softmax_f32(path, scores + t * S, S);
    if (T > 0) gemm(H, hd, T, scores, S, vc, ldvc, out, ldo, 0);
    if (A > 0) gemm(H, hd, A, scores + T, S, va, ldva, out, ldo, T > 0);
    if (S == 0)
        for (int64_t t = 0; t < H; ++t) memset(out + t * ldo, 0, (size_t)hd * sizeof(float));
    return 0;
}
