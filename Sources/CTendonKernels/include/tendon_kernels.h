#ifndef TENDON_KERNELS_H
#define TENDON_KERNELS_H
/* Numeric kernels of TendonTensor (C so that AVX2/AVX-512 intrinsics can be used per function with
   target attributes; the package itself is built for baseline x86-64).

   API summary
   - Conversions: tk_f32_to_f16 / tk_f16_to_f32 / tk_f32_to_bf16 / tk_bf16_to_f32 (round-to-nearest-even,
     as numpy astype / torch .to) and row versions tk_*_row.
   - ggml blocks (layouts in DType.swift): tk_quantize_row_{q8_0,q4_0,q4_k,q5_k,q6_k}, tk_dequantize_row_*.
     Q8_0/Q4_0 follow gguf.quants (bit-identical); Q4_K/Q5_K/Q6_K follow llama.cpp's *_ref quantizers.
     Row lengths are validated by the Swift caller (whole blocks).
   - Activations for integer dots: tk_quantize_act (int8 per 32 values, f32 scale, int32 sum of the block).
   - Dot products of one weight row with quantized activations: tk_dot_<type>_<path>, path scalar | avx2 | vnni.
   - f32/f16/bf16 weight rows times f32 activations: tk_gemm_<wtype>_<path>.
   - tk_cpu_features: bit 0 avx2+fma+f16c, bit 1 avx512f+bw+vl+vnni (from cpuid + xgetbv). */
#include <stddef.h>
#include <stdint.h>

enum { TK_CPU_AVX2 = 1, TK_CPU_AVX512VNNI = 2 };
int tk_cpu_features(void);
/* Monotonic nanoseconds, for the ThreadPool's bounded spin-waits. */
uint64_t tk_monotonic_ns(void);

uint16_t tk_f32_to_f16(float x);
float tk_f16_to_f32(uint16_t h);
uint16_t tk_f32_to_bf16(float x);
float tk_bf16_to_f32(uint16_t h);
void tk_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void tk_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
void tk_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void tk_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n);
/* Same results as the plain row decoders, SIMD when path allows it. */
void tk_f16_to_f32_row_path(int path, const uint16_t *src, float *dst, int64_t n);
void tk_bf16_to_f32_row_path(int path, const uint16_t *src, float *dst, int64_t n);

void tk_quantize_row_q8_0(const float *x, void *dst, int64_t n);
void tk_quantize_row_q4_0(const float *x, void *dst, int64_t n);
void tk_quantize_row_q4_k(const float *x, void *dst, int64_t n);
void tk_quantize_row_q5_k(const float *x, void *dst, int64_t n);
void tk_quantize_row_q6_k(const float *x, void *dst, int64_t n);
void tk_dequantize_row_q8_0(const void *src, float *y, int64_t n);
void tk_dequantize_row_q4_0(const void *src, float *y, int64_t n);
void tk_dequantize_row_q4_k(const void *src, float *y, int64_t n);
void tk_dequantize_row_q5_k(const void *src, float *y, int64_t n);
void tk_dequantize_row_q6_k(const void *src, float *y, int64_t n);

/* Activations: q[n] int8, d[n/32] scales, s[n/32] block sums of q. n multiple of 32. */
void tk_quantize_act(const float *x, int64_t n, int8_t *q, float *d, int32_t *s);

/* Weight types for the dispatching entry points (values are ggml type ids, like Swift's DType). */
enum { TK_F32 = 0, TK_F16 = 1, TK_Q4_0 = 2, TK_Q8_0 = 8, TK_Q4_K = 12, TK_Q5_K = 13, TK_Q6_K = 14, TK_BF16 = 30 };
enum { TK_PATH_SCALAR = 0, TK_PATH_AVX2 = 1, TK_PATH_VNNI = 2 };

/* Quantized weights: y[t*ldy + o] = dot(W row o, activation row t) for o in [o0, o1), t in [0, T).
   w points at row 0, row_bytes apart; activations are T rows of n values (q: n apart, d/s: n/32 apart).
   Returns 0, or -1 for an unsupported type/path. */
int tk_gemm_q(int wtype, int path, int64_t n, const void *w, size_t row_bytes, int64_t o0, int64_t o1,
              int64_t T, const int8_t *q, const float *d, const int32_t *s, float *y, int64_t ldy);

/* Float weights (f32/f16/bf16): y[t*ldy + o] = dot(W row o, x row t). x rows ldx apart. */
int tk_gemm_f(int wtype, int path, int64_t n, const void *w, size_t row_bytes, int64_t o0, int64_t o1,
              int64_t T, const float *x, int64_t ldx, float *y, int64_t ldy);

/* Weights repacked for the int8 prefill GEMM (tk_gemm_packed.c: layout and arithmetic there).
   Q8_0, Q4_0, Q4_K and Q5_K (n a multiple of 256 for Q4_K/Q5_K). tk_pack_weights fills panels [p0, p1) of 16 rows
   (rows beyond `rows` are zero) into `out` of tk_packed_bytes(wtype, rows, n) bytes; returns 0 or -1. */
int tk_packed_supported(int wtype);
size_t tk_packed_bytes(int wtype, int64_t rows, int64_t n);
int tk_pack_weights(int wtype, int64_t n, const void *w, size_t row_bytes, int64_t rows, int64_t p0, int64_t p1,
                    void *out);
/* y[t*ldy + o] for o in [o0, min(o1, rows)), o0 a multiple of 16, t < T; activations as for tk_gemm_q.
   path scalar (the reference twin) or vnni; returns 0, or -1 for an unsupported type/path. */
int tk_gemm_packed(int wtype, int path, int64_t n, const void *packed, int64_t rows, int64_t o0, int64_t o1,
                   int64_t T, const int8_t *q, const float *d, const int32_t *s, float *y, int64_t ldy);
/* madvise(MADV_PAGEOUT) on the whole pages inside [p, p + n): lets the kernel drop a mapped file's pages
   that have been repacked (contents are never lost; touched pages come back). */
int tk_release_pages(const void *p, size_t n);
/* tk_quantize_act with a 512-bit twin (identical results) when path is vnni. */
void tk_quantize_act_path(int path, const float *x, int64_t n, int8_t *q, float *d, int32_t *s);
/* Wide activations for the packed GEMM: per 32 values a 15-bit integer a = round(x / d), |a| <= 16256,
   d = amax / 16256, held as two int8 planes a = 128*h + l (h in [-127, 127], l in [-64, 63]) so that
   vpdpbusd still does the products; s = the block's sum of a. Rounding error 1/128 of int8's. */
void tk_quantize_act_wide(const float *x, int64_t n, int8_t *h, int8_t *l, float *d, int32_t *s);
void tk_quantize_act_wide_path(int path, const float *x, int64_t n, int8_t *h, int8_t *l, float *d, int32_t *s);
/* tk_gemm_packed on wide activations (two vpdpbusd per weight vector instead of one). */
int tk_gemm_packed_wide(int wtype, int path, int64_t n, const void *packed, int64_t rows, int64_t o0, int64_t o1,
                        int64_t T, const int8_t *qh, const int8_t *ql, const float *d, const int32_t *s, float *y,
                        int64_t ldy);

/* Elementwise fast paths used by the Swift kernels. */
float tk_sum_squares_f32(int path, const float *x, int64_t n);
void tk_scale_mul_f32(int path, const float *x, const float *w, float s, float add, float *y, int64_t n);
/* y may equal x. */
void tk_silu_f32(int path, const float *x, float *y, int64_t n);
void tk_sigmoid_f32(int path, const float *x, float *y, int64_t n);
void tk_gelu_tanh_f32(int path, const float *x, float *y, int64_t n);
void tk_softplus_f32(const float *x, float *y, int64_t n);
void tk_mean_var_f32(int path, const float *x, int64_t n, float *mean, float *var);
/* In place: x [tokens, heads, head_dim]; the first rotary_dim dims of each head rotate (rotate-half
   convention); cos/sin tables are [tokens, rotary_dim]. */
void tk_rope_f32(int path, float *x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                 const float *cos_table, const float *sin_table);
float tk_dot_f32(int path, const float *a, const float *b, int64_t n);
/* y += alpha · x */
void tk_axpy_f32(int path, float alpha, const float *x, float *y, int64_t n);
/* In place over one row. */
void tk_softmax_f32(int path, float *x, int64_t n);

/* One unmasked attention head over two key/value segments (cached context tokens, then action tokens):
   out[t*ldo + i] = Σ_s p[t, s]·v_s[i], p[t, ·] = softmax(scale · q_t·k_s) for t < H, i < hd, with the T
   context keys transposed (kc_t[i*ldkc + s]), the A action keys as rows (ka[s*ldka + i]) and values as rows
   (vc[s*ldvc + i], va[s*ldva + i]). scratch holds tk_attn_scratch_floats(H, T, A, hd) floats. path scalar
   (the reference twin), avx2 or vnni (512-bit tiles); returns 0, or -1 for a path this CPU lacks. */
int64_t tk_attn_scratch_floats(int64_t H, int64_t T, int64_t A, int64_t hd);
int tk_attn_two_segment_f32(int path, int64_t H, int64_t hd, int64_t T, int64_t A, float scale, const float *q,
                            int64_t ldq, const float *kc_t, int64_t ldkc, const float *ka, int64_t ldka,
                            const float *vc, int64_t ldvc, const float *va, int64_t ldva, float *scratch, float *out,
                            int64_t ldo);

#endif
