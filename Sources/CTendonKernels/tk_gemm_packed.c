/* Int8 GEMM on weights repacked once for the prefill shapes (many activation rows).

   Packed layout: output rows in panels of 16; per panel, for every 32-value block b, PB bytes:
     codes            Q8_0: [8][16][4] bytes, k-group g (4 values) of row r at g*64 + r*4 (one zmm = 16
                      rows × 4 k), 512 bytes. Q4_0/Q4_K: [4][16][4] bytes holding two groups each, group g
                      in the low nibbles and group g + 4 in the high ones, 256 bytes (unpacked in registers
                      with one and / one shift + and per zmm; half the bytes of Q8-style codes). Q5_K: the
                      Q4 nibbles of its codes, then [8][16][4] fifth bits as eight u64 masks (group g's mask
                      has bit 4r + j for row r, value 4g + j), 64 bytes: one masked move of 16s per zmm puts
                      them back, so Q5_K streams 0.875 bytes per weight instead of Q8_0's 1.25.
     wscale[16]       f32 per-row block scale
     wmin[16]         f32 per-row block offset (Q4_K/Q5_K's −dmin·m; 0 for the others)
   A weight value is wscale·(code − off) + wmin, with off = 128 (Q8_0: code = w + 128), 8 (Q4_0: the
   nibble) or 0 (Q4_K: the nibble; Q5_K: nibble + 16·high bit). Codes are unsigned so that vpdpbusd can take them as its u8 operand
   and the int8 activations as the broadcast s8 operand; the offset is removed with the activation
   block sums (−off·Σa starts the int32 accumulator), so the integer part is exact.

   Per block and activation row the result is, in this order (the scalar twin does the same float ops):
     i = −off·s + Σ code·a                     (int32, exact)
     f = has_min ? fma(float(i), wscale, wmin·float(s)) : float(i)·wscale
     acc = fma(f, d, acc)                      (d: the activation block scale)
   Wide activations (tk_gemm_packed_wide) hold a = 128·h + l in two int8 planes; the kernel dots the codes
   with h and with l separately (two vpdpbusd) and forms i = −off·s + 128·Σ code·h + Σ code·l, which is the
   same exact integer as Σ code·a (|i| < 2^28), so everything after it is unchanged. */
#include "tendon_kernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Bytes of codes and of a whole (panel, block) record. */
/* nib: 0 byte codes, 1 nibbles, 2 nibbles + fifth-bit masks. */
#define CB(nib) ((nib) == 0 ? 512 : (nib) == 1 ? 256 : 320)
#define PB(nib) (CB(nib) + 128)

static inline float f16p(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return tk_f16_to_f32(h); }

static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63; *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static int code_offset(int wtype) { return wtype == TK_Q8_0 ? 128 : wtype == TK_Q4_0 ? 8 : 0; }

int tk_packed_supported(int wtype) {
    return wtype == TK_Q8_0 || wtype == TK_Q4_0 || wtype == TK_Q4_K || wtype == TK_Q5_K;
}

static int nibbles(int wtype) { return wtype == TK_Q5_K ? 2 : wtype == TK_Q4_0 || wtype == TK_Q4_K; }
static int has_min(int wtype) { return wtype == TK_Q4_K || wtype == TK_Q5_K; }

size_t tk_packed_bytes(int wtype, int64_t rows, int64_t n) {
    return (size_t)((rows + 15) / 16) * (size_t)(n / 32) * PB(nibbles(wtype));
}

/* Codes, scale and min of one 32-value block of one weight row. */
static void unpack_block(int wtype, const uint8_t *row, int64_t b, uint8_t code[32], float *scale, float *min) {
    if (wtype == TK_Q8_0) {
        const uint8_t *p = row + 34 * b;
        for (int i = 0; i < 32; ++i) code[i] = (uint8_t)((int)(int8_t)p[2 + i] + 128);
        *scale = f16p(p); *min = 0;
    } else if (wtype == TK_Q4_0) {
        const uint8_t *p = row + 18 * b;
        for (int i = 0; i < 16; ++i) { code[i] = p[2 + i] & 15; code[16 + i] = p[2 + i] >> 4; }
        *scale = f16p(p); *min = 0;
    } else { /* Q4_K (144-byte) / Q5_K (176-byte, qh[32] before the nibbles) super-block of 256 = 8 blocks;
                block j uses the low (even j) or high nibbles, and Q5_K's bit j of qh[l] */
        int five = wtype == TK_Q5_K;
        const uint8_t *p = row + (five ? 176 : 144) * (b / 8);
        int j = (int)(b % 8);
        uint8_t sc, m;
        scale_min_k4(j, p + 4, &sc, &m);
        const uint8_t *qh = p + 16, *qs = p + (five ? 48 : 16) + 32 * (j / 2);
        for (int l = 0; l < 32; ++l)
            code[l] = (uint8_t)(((j & 1) ? (qs[l] >> 4) : (qs[l] & 15)) | (five ? ((qh[l] >> j) & 1) << 4 : 0));
        /* Same products as the dequantizer: d·sc and dmin·m. */
        *scale = f16p(p) * (float)sc;
        *min = -(f16p(p + 2) * (float)m);
    }
}

int tk_pack_weights(int wtype, int64_t n, const void *w, size_t row_bytes, int64_t rows, int64_t p0, int64_t p1,
                    void *out) {
    if (!tk_packed_supported(wtype) || n % 32 != 0 || ((wtype == TK_Q4_K || wtype == TK_Q5_K) && n % 256 != 0))
        return -1;
    int64_t nb = n / 32;
    int nib = nibbles(wtype);
    for (int64_t p = p0; p < p1; ++p) {
        uint8_t *panel = (uint8_t *)out + (size_t)p * (size_t)nb * PB(nib);
        for (int64_t b = 0; b < nb; ++b) {
            uint8_t *blk = panel + (size_t)b * PB(nib);
            float scale[16], min[16];
            for (int r = 0; r < 16; ++r) {
                int64_t o = 16 * p + r;
                uint8_t code[32];
                if (o < rows) {
                    unpack_block(wtype, (const uint8_t *)w + (size_t)o * row_bytes, b, code, &scale[r], &min[r]);
                } else {
                    memset(code, 0, 32); scale[r] = 0; min[r] = 0;
                }
                if (nib) {
                    for (int g = 0; g < 4; ++g)
                        for (int j = 0; j < 4; ++j)
                            blk[64 * g + 4 * r + j] = (uint8_t)((code[4 * g + j] & 15) | ((code[16 + 4 * g + j] & 15) << 4));
                    if (nib == 2) {
                        if (r == 0) memset(blk + 256, 0, 64);
                        for (int k = 0; k < 32; ++k)
                            if (code[k] >> 4) blk[256 + 8 * (k / 4) + (4 * r + k % 4) / 8] |= (uint8_t)(1u << ((4 * r + k % 4) % 8));
                    }
                } else {
                    for (int g = 0; g < 8; ++g) memcpy(blk + 64 * g + 4 * r, code + 4 * g, 4);
                }
            }
            memcpy(blk + CB(nib), scale, 64);
            memcpy(blk + CB(nib) + 64, min, 64);
        }
    }
    return 0;
}

/* ---- scalar twin ---- */

/* ql == NULL: int8 activations q; otherwise wide activations a = 128·q + ql. */
static void gemm_packed_scalar(int wtype, int64_t n, const uint8_t *pk, int64_t rows, int64_t o0, int64_t o1,
                               int64_t T, const int8_t *q, const int8_t *ql, const float *d, const int32_t *s,
                               float *y, int64_t ldy) {
    int64_t nb = n / 32;
    int off = code_offset(wtype), hm = has_min(wtype), nib = nibbles(wtype);
    if (o1 > rows) o1 = rows;
    for (int64_t o = o0; o < o1; ++o) {
        const uint8_t *panel = pk + (size_t)(o / 16) * (size_t)nb * PB(nib);
        int r = (int)(o % 16);
        for (int64_t t = 0; t < T; ++t) {
            float acc = 0;
            for (int64_t b = 0; b < nb; ++b) {
                const uint8_t *blk = panel + (size_t)b * PB(nib);
                const int8_t *a = q + t * n + 32 * b, *al = ql ? ql + t * n + 32 * b : NULL;
                int32_t sa = s[t * nb + b];
                int32_t i = -off * sa;
                for (int k = 0; k < 32; ++k) {
                    int code = !nib ? blk[64 * (k / 4) + 4 * r + k % 4]
                             : k < 16 ? blk[64 * (k / 4) + 4 * r + k % 4] & 15
                                      : blk[64 * ((k - 16) / 4) + 4 * r + k % 4] >> 4;
                    if (nib == 2) code |= ((blk[256 + 8 * (k / 4) + (4 * r + k % 4) / 8] >> ((4 * r + k % 4) % 8)) & 1) << 4;
                    i += code * (al ? 128 * (int32_t)a[k] + al[k] : (int32_t)a[k]);
                }
                float ws, wm;
                memcpy(&ws, blk + CB(nib) + 4 * r, 4);
                memcpy(&wm, blk + CB(nib) + 64 + 4 * r, 4);
                float f = hm ? fmaf((float)i, ws, wm * (float)sa) : (float)i * ws;
                acc = fmaf(f, d[t * nb + b], acc);
            }
            y[t * ldy + o] = acc;
        }
    }
}

/* ---- AVX-512 VNNI: R activation rows × NP panels of 16 outputs per micro-kernel call ---- */

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INL T512 static inline __attribute__((always_inline))

INL void micro(int R, int NP, int has_min, int off, int nib, int wide, int64_t nb, int64_t n, const uint8_t *pa,
               const uint8_t *pb, const int8_t *q, const int8_t *ql, const float *d, const int32_t *s, float *y,
               int64_t ldy, __mmask16 lastMask) {
    __m512 acc[6][2];
    for (int r = 0; r < R; ++r)
        for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
    const uint8_t *pp[2] = {pa, pb};
    for (int64_t b = 0; b < nb; ++b) {
        /* Wide: is[] collects Σ code·h, il[] starts at the offset term and collects Σ code·l. */
        __m512i is[6][2], il[6][2];
        for (int r = 0; r < R; ++r) {
            __m512i init = has_min ? _mm512_setzero_si512() : _mm512_set1_epi32(-off * s[r * nb + b]);
            for (int p = 0; p < NP; ++p) {
                if (wide) { is[r][p] = _mm512_setzero_si512(); il[r][p] = init; }
                else is[r][p] = init;
            }
        }
        const int8_t *qb = q + 32 * b, *qlb = wide ? ql + 32 * b : NULL;
        const size_t at = (size_t)b * PB(nib);
        if (nib) {
            const __m512i m4 = _mm512_set1_epi8(0x0F);
            for (int g = 0; g < 4; ++g) {
                __m512i lo[2], hi[2];
                for (int p = 0; p < NP; ++p) {
                    __m512i v = _mm512_loadu_si512((const void *)(pp[p] + at + 64 * g));
                    lo[p] = _mm512_and_si512(v, m4);
                    hi[p] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                    if (nib == 2) {
                        uint64_t ml, mh;
                        memcpy(&ml, pp[p] + at + 256 + 8 * g, 8);
                        memcpy(&mh, pp[p] + at + 256 + 8 * (g + 4), 8);
                        const __m512i k16 = _mm512_set1_epi8(16);
                        lo[p] = _mm512_or_si512(lo[p], _mm512_maskz_mov_epi8((__mmask64)ml, k16));
                        hi[p] = _mm512_or_si512(hi[p], _mm512_maskz_mov_epi8((__mmask64)mh, k16));
                    }
                }
                for (int r = 0; r < R; ++r) {
                    int32_t a4, b4;
                    memcpy(&a4, qb + r * n + 4 * g, 4);
                    memcpy(&b4, qb + r * n + 16 + 4 * g, 4);
                    __m512i av = _mm512_set1_epi32(a4), bv = _mm512_set1_epi32(b4);
                    for (int p = 0; p < NP; ++p) {
                        is[r][p] = _mm512_dpbusd_epi32(is[r][p], lo[p], av);
                        is[r][p] = _mm512_dpbusd_epi32(is[r][p], hi[p], bv);
                    }
                    if (wide) {
                        memcpy(&a4, qlb + r * n + 4 * g, 4);
                        memcpy(&b4, qlb + r * n + 16 + 4 * g, 4);
                        __m512i al = _mm512_set1_epi32(a4), bl = _mm512_set1_epi32(b4);
                        for (int p = 0; p < NP; ++p) {
                            il[r][p] = _mm512_dpbusd_epi32(il[r][p], lo[p], al);
                            il[r][p] = _mm512_dpbusd_epi32(il[r][p], hi[p], bl);
                        }
                    }
                }
            }
        } else {
            for (int g = 0; g < 8; ++g) {
                __m512i w[2];
                for (int p = 0; p < NP; ++p) w[p] = _mm512_loadu_si512((const void *)(pp[p] + at + 64 * g));
                for (int r = 0; r < R; ++r) {
                    int32_t a4;
                    memcpy(&a4, qb + r * n + 4 * g, 4);
                    __m512i av = _mm512_set1_epi32(a4);
                    for (int p = 0; p < NP; ++p) is[r][p] = _mm512_dpbusd_epi32(is[r][p], w[p], av);
                    if (wide) {
                        memcpy(&a4, qlb + r * n + 4 * g, 4);
                        __m512i al = _mm512_set1_epi32(a4);
                        for (int p = 0; p < NP; ++p) il[r][p] = _mm512_dpbusd_epi32(il[r][p], w[p], al);
                    }
                }
            }
        }
        if (wide)
            for (int r = 0; r < R; ++r)
                for (int p = 0; p < NP; ++p) is[r][p] = _mm512_add_epi32(il[r][p], _mm512_slli_epi32(is[r][p], 7));
        __m512 ws[2], wm[2];
        for (int p = 0; p < NP; ++p) {
            ws[p] = _mm512_loadu_ps((const float *)(pp[p] + at + CB(nib)));
            if (has_min) wm[p] = _mm512_loadu_ps((const float *)(pp[p] + at + CB(nib) + 64));
        }
        for (int r = 0; r < R; ++r) {
            __m512 da = _mm512_set1_ps(d[r * nb + b]);
            __m512 sa = has_min ? _mm512_set1_ps((float)s[r * nb + b]) : da;
            for (int p = 0; p < NP; ++p) {
                __m512 fi = _mm512_cvtepi32_ps(is[r][p]);
                __m512 f = has_min ? _mm512_fmadd_ps(fi, ws[p], _mm512_mul_ps(wm[p], sa)) : _mm512_mul_ps(fi, ws[p]);
                acc[r][p] = _mm512_fmadd_ps(f, da, acc[r][p]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int p = 0; p < NP; ++p) {
            float *dst = y + r * ldy + 16 * p;
            if (p == NP - 1) _mm512_mask_storeu_ps(dst, lastMask, acc[r][p]);
            else _mm512_storeu_ps(dst, acc[r][p]);
        }
}

#define MR 4

/* All activation rows for NP panels starting at panel pa (pb = the next one). */
/* All activation rows for NP panels starting at panel pa (pb = the next one). */
#define MICRO(R, HM, OFF, NIB, W, NP)                                                                          \
    micro(R, NP, HM, OFF, NIB, W, nb, n, pa, pb, q + t * n, (W) ? ql + t * n : NULL, d + t * nb, s + t * nb,  \
          y + t * ldy + o, ldy, mask)
#define ROWS(HM, OFF, NIB, W, NP)                                                                           \
    do {                                                                                                    \
        int64_t t = 0;                                                                                      \
        for (; t + MR <= T; t += MR) MICRO(MR, HM, OFF, NIB, W, NP);                                        \
        switch (T - t) {                                                                                    \
        case 3: MICRO(3, HM, OFF, NIB, W, NP); break;                                                       \
        case 2: MICRO(2, HM, OFF, NIB, W, NP); break;                                                       \
        case 1: MICRO(1, HM, OFF, NIB, W, NP); break;                                                       \
        default: break;                                                                                     \
        }                                                                                                   \
    } while (0)

#define GEMM_VNNI(NAME, HM, OFF, NIB, W)                                                                    \
    T512 static void NAME(int64_t n, const uint8_t *pk, int64_t rows, int64_t o0, int64_t o1, int64_t T,   \
                          const int8_t *q, const int8_t *ql, const float *d, const int32_t *s, float *y,   \
                          int64_t ldy) {                                                                    \
        int64_t nb = n / 32;                                                                                \
        size_t stride = (size_t)nb * PB(NIB);                                                               \
        if (o1 > rows) o1 = rows;                                                                           \
        int64_t o = o0;                                                                                     \
        for (; o + 32 <= o1; o += 32) {                                                                     \
            const uint8_t *pa = pk + (size_t)(o / 16) * stride, *pb = pa + stride;                          \
            __mmask16 mask = 0xFFFF;                                                                        \
            ROWS(HM, OFF, NIB, W, 2);                                                                       \
        }                                                                                                   \
        for (; o < o1; o += 16) {                                                                           \
            const uint8_t *pa = pk + (size_t)(o / 16) * stride, *pb = pa;                                   \
            int64_t left = o1 - o;                                                                          \
            __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);                 \
            ROWS(HM, OFF, NIB, W, 1);                                                                       \
        }                                                                                                   \
    }
GEMM_VNNI(gemm_packed_q8_0_vnni, 0, 128, 0, 0)
GEMM_VNNI(gemm_packed_q4_0_vnni, 0, 8, 1, 0)
GEMM_VNNI(gemm_packed_q4_k_vnni, 1, 0, 1, 0)
GEMM_VNNI(gemm_packed_q5_k_vnni, 1, 0, 2, 0)
GEMM_VNNI(gemm_packed_q8_0_wide_vnni, 0, 128, 0, 1)
GEMM_VNNI(gemm_packed_q4_0_wide_vnni, 0, 8, 1, 1)
GEMM_VNNI(gemm_packed_q4_k_wide_vnni, 1, 0, 1, 1)
GEMM_VNNI(gemm_packed_q5_k_wide_vnni, 1, 0, 2, 1)

int tk_gemm_packed(int wtype, int path, int64_t n, const void *packed, int64_t rows, int64_t o0, int64_t o1,
                   int64_t T, const int8_t *q, const float *d, const int32_t *s, float *y, int64_t ldy) {
    if (!tk_packed_supported(wtype) || o0 % 16 != 0) return -1;
    const uint8_t *pk = packed;
    if (path == TK_PATH_SCALAR) { gemm_packed_scalar(wtype, n, pk, rows, o0, o1, T, q, NULL, d, s, y, ldy); return 0; }
    if (path != TK_PATH_VNNI || !(tk_cpu_features() & TK_CPU_AVX512VNNI)) return -1;
    switch (wtype) {
    case TK_Q8_0: gemm_packed_q8_0_vnni(n, pk, rows, o0, o1, T, q, NULL, d, s, y, ldy); break;
    case TK_Q4_0: gemm_packed_q4_0_vnni(n, pk, rows, o0, o1, T, q, NULL, d, s, y, ldy); break;
    case TK_Q5_K: gemm_packed_q5_k_vnni(n, pk, rows, o0, o1, T, q, NULL, d, s, y, ldy); break;
    default: gemm_packed_q4_k_vnni(n, pk, rows, o0, o1, T, q, NULL, d, s, y, ldy); break;
    }
    return 0;
}

int tk_gemm_packed_wide(int wtype, int path, int64_t n, const void *packed, int64_t rows, int64_t o0, int64_t o1,
                        int64_t T, const int8_t *qh, const int8_t *ql, const float *d, const int32_t *s, float *y,
                        int64_t ldy) {
    if (!tk_packed_supported(wtype) || o0 % 16 != 0 || !ql) return -1;
    const uint8_t *pk = packed;
    if (path == TK_PATH_SCALAR) { gemm_packed_scalar(wtype, n, pk, rows, o0, o1, T, qh, ql, d, s, y, ldy); return 0; }
    if (path != TK_PATH_VNNI || !(tk_cpu_features() & TK_CPU_AVX512VNNI)) return -1;
    switch (wtype) {
    case TK_Q8_0: gemm_packed_q8_0_wide_vnni(n, pk, rows, o0, o1, T, qh, ql, d, s, y, ldy); break;
    case TK_Q4_0: gemm_packed_q4_0_wide_vnni(n, pk, rows, o0, o1, T, qh, ql, d, s, y, ldy); break;
    case TK_Q5_K: gemm_packed_q5_k_wide_vnni(n, pk, rows, o0, o1, T, qh, ql, d, s, y, ldy); break;
    default: gemm_packed_q4_k_wide_vnni(n, pk, rows, o0, o1, T, qh, ql, d, s, y, ldy); break;
    }
    return 0;
}

/* ---- activation quantization, 512-bit twin of tk_quantize_act (same results: the scale is computed
   the same way in scalar f32, and cvtps rounds to nearest even like lrintf in the default mode) ---- */

T512 static void quantize_act_vnni(const float *x, int64_t n, int8_t *q, float *d, int32_t *s) {
    const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / 32; ++b, x += 32, q += 32) {
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        __m512 m = _mm512_max_ps(_mm512_and_ps(x0, absMask), _mm512_and_ps(x1, absMask));
        float amax = _mm512_reduce_max_ps(m);
        float db = amax / 127.0f, id = db == 0 ? 0.0f : 1.0f / db;
        __m512 vid = _mm512_set1_ps(id);
        __m512i v0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)), v1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
        const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
        v0 = _mm512_min_epi32(_mm512_max_epi32(v0, lo), hi);
        v1 = _mm512_min_epi32(_mm512_max_epi32(v1, lo), hi);
        _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(v0));
        _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(v1));
        d[b] = db;
        s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(v0, v1));
    }
}

void tk_quantize_act_path(int path, const float *x, int64_t n, int8_t *q, float *d, int32_t *s) {
    if (path == TK_PATH_VNNI && (tk_cpu_features() & TK_CPU_AVX512VNNI)) { quantize_act_vnni(x, n, q, d, s); return; }
    tk_quantize_act(x, n, q, d, s);
}

/* ---- wide activations (tendon_kernels.h): scalar reference and its 512-bit twin ---- */

#define WIDE_MAX 16256 /* 127·128: h stays within int8 after the split */

static inline void split_wide(int32_t a, int8_t *h, int8_t *l) {
    int32_t lo = ((a + 64) & 127) - 64; /* a − lo is a multiple of 128 */
    *l = (int8_t)lo;
    *h = (int8_t)((a - lo) / 128);
}

void tk_quantize_act_wide(const float *x, int64_t n, int8_t *h, int8_t *l, float *d, int32_t *s) {
    for (int64_t b = 0; b < n / 32; ++b, x += 32, h += 32, l += 32) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) { float a = fabsf(x[i]); if (a > amax) amax = a; }
        float db = amax / (float)WIDE_MAX, id = db == 0 ? 0.0f : 1.0f / db;
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) {
            int32_t v = (int32_t)lrintf(x[i] * id);
            v = v > WIDE_MAX ? WIDE_MAX : v < -WIDE_MAX ? -WIDE_MAX : v;
            split_wide(v, &h[i], &l[i]);
            sum += v;
        }
        d[b] = db;
        s[b] = sum;
    }
}

T512 static void quantize_act_wide_vnni(const float *x, int64_t n, int8_t *h, int8_t *l, float *d, int32_t *s) {
    const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512i lo = _mm512_set1_epi32(-WIDE_MAX), hi = _mm512_set1_epi32(WIDE_MAX);
    const __m512i c64 = _mm512_set1_epi32(64), c127 = _mm512_set1_epi32(127);
    for (int64_t b = 0; b < n / 32; ++b, x += 32, h += 32, l += 32) {
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, absMask), _mm512_and_ps(x1, absMask)));
        float db = amax / (float)WIDE_MAX, id = db == 0 ? 0.0f : 1.0f / db;
        __m512 vid = _mm512_set1_ps(id);
        __m512i v[2] = {_mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)), _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid))};
        for (int k = 0; k < 2; ++k) {
            v[k] = _mm512_min_epi32(_mm512_max_epi32(v[k], lo), hi);
            __m512i vl = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(v[k], c64), c127), c64);
            __m512i vh = _mm512_srai_epi32(_mm512_sub_epi32(v[k], vl), 7); /* exact: a multiple of 128 */
            _mm_storeu_si128((__m128i *)(l + 16 * k), _mm512_cvtepi32_epi8(vl));
            _mm_storeu_si128((__m128i *)(h + 16 * k), _mm512_cvtepi32_epi8(vh));
        }
        d[b] = db;
        s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(v[0], v[1]));
    }
}

void tk_quantize_act_wide_path(int path, const float *x, int64_t n, int8_t *h, int8_t *l, float *d, int32_t *s) {
    if (path == TK_PATH_VNNI && (tk_cpu_features() & TK_CPU_AVX512VNNI)) { quantize_act_wide_vnni(x, n, h, l, d, s); return; }
    tk_quantize_act_wide(x, n, h, l, d, s);
}

/* Hands the whole pages inside [p, p + n) back to the kernel with MADV_PAGEOUT: clean pages of a
   read-only file mapping are dropped (and read again if touched), anonymous pages go to swap or stay.
   Contents are never lost, unlike MADV_DONTNEED on anonymous memory. Returns madvise's result. */
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
int tk_release_pages(const void *p, size_t n) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi <= lo) return 0;
    return madvise((void *)lo, hi - lo, MADV_PAGEOUT);
}
