/// Row-wise and element-wise kernels on raw f32 buffers (the model layer owns its buffers, so nothing
/// here allocates). `path` selects the scalar reference or the SIMD twin (default `KernelPath.best`).
///
/// API summary (x, y: row-major [rows, dim]; y may be x for in-place use)
/// - `Kernels.rmsNorm(_:weight:rows:dim:eps:form:into:path:)`: x·rsqrt(mean(x²)+eps)·w with
///   `form` `.multiply` (w, Llama/Qwen3 and per-head q/k norms) or `.onePlus` (1+w, Qwen3.5); w nil → ·1.
/// - `Kernels.layerNorm(_:rows:dim:eps:into:path:)`: (x−mean)/sqrt(var+eps), no affine (DiT blocks).
/// - `Kernels.l2Normalize(_:rows:dim:eps:into:path:)`: x / max(‖x‖₂, eps) (torch F.normalize).
/// - `Kernels.softmax(_:rows:dim:path:)`: in place, per row, max-subtracted.
/// - `Kernels.silu`, `.sigmoid`, `.geluTanh` `(_:count:into:path:)`; `Kernels.softplus(_:count:into:)`
///   (torch threshold 20; one implementation — it runs on a handful of gate values per token).
/// - `Kernels.dot(_:_:count:path:)`, `Kernels.axpy(_:_:into:count:path:)` (y += α·x), and
///   `Kernels.dotRows(_:rows:_:count:stride:inFeatures:into:ldy:path:)`: y[t, j] = x_t · r_j for `count`
///   rows r_j that are `stride` floats apart (attention scores against a K cache laid out [s, heads, hd]).
/// - `Kernels.attentionHead(queries:headDim:scale:q:ldq:contextTokens:contextKeysT:ldkc:contextValues:ldvc:
///   actionTokens:actionKeys:ldka:actionValues:ldva:scratch:into:ldo:path:)`: one unmasked head over cached
///   (transposed) context keys plus per-step action keys; `attentionScratchCount(...)` sizes its scratch.
/// - `RotaryEmbedding`: inverse frequencies, cos/sin tables for 1-D or interleaved multimodal (t,h,w)
///   positions, and in-place rotation of [tokens, heads, headDim] with partial rotary.
/// - `CausalConv1d.forward` (8-channel SIMD; `forwardScalar` is its bit-identical twin): depthwise causal
///   conv over [tokens, channels] with a decode state; weight
///   [channels, k] (HF's [C, 1, k] Conv1d weight as stored).
import CTendonKernels
import Foundation

public enum RMSNormForm: Sendable {
    /// x̂ · w
    case multiply
    /// x̂ · (1 + w)
    case onePlus
}

public enum Kernels {
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, rows: Int, dim: Int,
                               eps: Float, form: RMSNormForm = .multiply, into y: UnsafeMutablePointer<Float>,
                               path: KernelPath = .best) {
        let add: Float = form == .onePlus ? 1 : (weight == nil ? 1 : 0)
        for r in 0..<rows {
            let xr = x + r * dim
            let ss = tk_sum_squares_f32(path.rawValue, xr, Int64(dim))
            let scale = 1 / (ss / Float(dim) + eps).squareRoot()
            tk_scale_mul_f32(path.rawValue, xr, weight, scale, add, y + r * dim, Int64(dim))
        }
    }

    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
                                 into y: UnsafeMutablePointer<Float>, path: KernelPath = .best) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = y + r * dim
            var mean: Float = 0, variance: Float = 0
            tk_mean_var_f32(path.rawValue, xr, Int64(dim), &mean, &variance)
            let inv = 1 / (variance + eps).squareRoot()
            for i in 0..<dim { yr[i] = (xr[i] - mean) * inv }
        }
    }

    public static func l2Normalize(_ x: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float = 1e-6,
                                   into y: UnsafeMutablePointer<Float>, path: KernelPath = .best) {
        for r in 0..<rows {
            let xr = x + r * dim
            let norm = tk_sum_squares_f32(path.rawValue, xr, Int64(dim)).squareRoot()
            tk_scale_mul_f32(path.rawValue, xr, nil, 1 / max(norm, eps), 1, y + r * dim, Int64(dim))
        }
    }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, dim: Int, path: KernelPath = .best) {
        for r in 0..<rows { tk_softmax_f32(path.rawValue, x + r * dim, Int64(dim)) }
    }

    public static func silu(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>, path: KernelPath = .best) {
        tk_silu_f32(path.rawValue, x, y, Int64(count))
    }

    public static func sigmoid(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>, path: KernelPath = .best) {
        tk_sigmoid_f32(path.rawValue, x, y, Int64(count))
    }

    /// GELU with the tanh approximation (torch `approximate="tanh"`).
    public static func geluTanh(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>, path: KernelPath = .best) {
        tk_gelu_tanh_f32(path.rawValue, x, y, Int64(count))
    }

    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, path: KernelPath = .best) -> Float {
        tk_dot_f32(path.rawValue, a, b, Int64(count))
    }

    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int,
                            path: KernelPath = .best) {
        tk_axpy_f32(path.rawValue, alpha, x, y, Int64(count))
    }

    /// y[t·ldy + j] = Σ_i x[t·inFeatures + i] · r[j·stride + i] for t < rows, j < count (the f32 linear kernel
    /// with strided weight rows).
    public static func dotRows(_ x: UnsafePointer<Float>, rows: Int, _ r: UnsafePointer<Float>, count: Int, stride: Int,
                               inFeatures: Int, into y: UnsafeMutablePointer<Float>, ldy: Int, path: KernelPath = .best) {
        _ = tk_gemm_f(Int32(TK_F32), path.rawValue, Int64(inFeatures), r, stride * 4, 0, Int64(count), Int64(rows), x,
                      Int64(inFeatures), y, Int64(ldy))
    }

    /// Floats of scratch `attentionHead` needs for these sizes.
    public static func attentionScratchCount(queries H: Int, contextTokens T: Int, actionTokens A: Int, headDim hd: Int) -> Int {
        Int(tk_attn_scratch_floats(Int64(H), Int64(T), Int64(A), Int64(hd)))
    }

    /// One unmasked attention head over two key/value segments: out[t·ldo + i] = Σ_s p[t, s]·v_s[i] with
    /// p[t, ·] = softmax(scale·q_t·k_s), s over T context keys given transposed (kcT[i·ldkc + s]) and then
    /// A action keys as rows (ka[s·ldka + i]); values as rows. A path this CPU lacks runs the scalar twin.
    public static func attentionHead(queries H: Int, headDim hd: Int, scale: Float, q: UnsafePointer<Float>, ldq: Int,
                                     contextTokens T: Int, contextKeysT kcT: UnsafePointer<Float>, ldkc: Int,
                                     contextValues vc: UnsafePointer<Float>, ldvc: Int,
                                     actionTokens A: Int, actionKeys ka: UnsafePointer<Float>, ldka: Int,
                                     actionValues va: UnsafePointer<Float>, ldva: Int,
                                     scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, ldo: Int,
                                     path: KernelPath = .best) {
        let run = { (p: KernelPath) in
            tk_attn_two_segment_f32(p.rawValue, Int64(H), Int64(hd), Int64(T), Int64(A), scale, q, Int64(ldq), kcT,
                                    Int64(ldkc), ka, Int64(ldka), vc, Int64(ldvc), va, Int64(ldva), scratch, out, Int64(ldo))
        }
        if run(path) != 0 { _ = run(.scalar) }
    }

    public static func softplus(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        tk_softplus_f32(x, y, Int64(count))
    }
}

/// Rotary position embedding, rotate-half convention (HF Llama/Qwen): for i < r/2,
/// x'[i] = x[i]·cos − x[i+r/2]·sin and x'[i+r/2] = x[i+r/2]·cos + x[i]·sin, with r = `rotaryDim` ≤ headDim
/// (dims ≥ r pass through). Frequency j (0 ≤ j < r/2) is inv_freq[j] = 1/θ^(2j/r). With `mropeSection`
/// [s_t, s_h, s_w] (Qwen3-VL / Qwen3.5 interleaved MRoPE) frequency j takes its position from axis h when
/// j % 3 == 1 and j < 3·s_h, from axis w when j % 3 == 2 and j < 3·s_w, and from axis t otherwise.
public struct RotaryEmbedding: Sendable {
    public let rotaryDim: Int
    public let invFreq: [Float]
    public let mropeSection: [Int]?

    /// `theta` in Double because configs carry e.g. 1e7; inv_freq is evaluated as torch does it in f32.
    public init(rotaryDim: Int, theta: Double, mropeSection: [Int]? = nil) {
        self.rotaryDim = rotaryDim
        invFreq = (0..<(rotaryDim / 2)).map { j in 1 / Foundation.pow(Float(theta), Float(2 * j) / Float(rotaryDim)) }
        self.mropeSection = mropeSection
    }

    public init(invFreq: [Float], mropeSection: [Int]? = nil) {
        rotaryDim = invFreq.count * 2
        self.invFreq = invFreq
        self.mropeSection = mropeSection
    }

    /// Which position axis (0 t, 1 h, 2 w) drives frequency j.
    public func axis(ofFrequency j: Int) -> Int {
        guard let s = mropeSection, s.count == 3 else { return 0 }
        if j % 3 == 1 && j < 3 * s[1] { return 1 }
        if j % 3 == 2 && j < 3 * s[2] { return 2 }
        return 0
    }

    /// Fills cos/sin [tokens, rotaryDim]. `positions` holds `axes` rows of `tokens` values (axes 1 for
    /// plain RoPE, 3 for t/h/w; with 1 axis every frequency uses it).
    public func tables(positions: UnsafePointer<Int32>, axes: Int, tokens: Int,
                       cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = rotaryDim / 2
        for t in 0..<tokens {
            for j in 0..<half {
                let a = axes == 3 ? axis(ofFrequency: j) : 0
                // f32 product then f32 cos/sin, as torch computes freqs.cos().
                let angle = Float(positions[a * tokens + t]) * invFreq[j]
                let c = Foundation.cos(angle), s = Foundation.sin(angle)
                cos[t * rotaryDim + j] = c; cos[t * rotaryDim + half + j] = c
                sin[t * rotaryDim + j] = s; sin[t * rotaryDim + half + j] = s
            }
        }
    }

    /// Rotates x [tokens, heads, headDim] in place with tables from `tables(...)`.
    public func apply(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int,
                      cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, path: KernelPath = .best) {
        tk_rope_f32(path.rawValue, x, Int64(tokens), Int64(heads), Int64(headDim), Int64(rotaryDim), cos, sin)
    }
}

/// Depthwise causal 1-D convolution (nn.Conv1d(C, C, k, groups=C, padding=k−1) cut to T outputs, no bias,
/// no activation): y[t, c] = Σ_j w[c, j] · x[t−(k−1)+j, c]. Inputs before t = 0 come from `state`
/// [k−1, channels] (time-major, oldest first; zeros at the start of a sequence), which is then replaced by
/// the last k−1 inputs, so prefill and token-by-token decode give the same outputs. y must not alias x.
/// One implementation: O(T·C·k) is memory-bound and negligible next to the projections around it.
public enum CausalConv1d {
    /// Eight channels at a time over all tokens (their k weights held in registers, loads contiguous along
    /// channels); per output the same products summed in the same order as `forwardScalar`, so bit-identical.
    public static func forward(_ x: UnsafePointer<Float>, tokens T: Int, channels C: Int, kernel k: Int,
                               weight: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>?,
                               into y: UnsafeMutablePointer<Float>) {
        let past = k - 1
        let blocks = k <= 8 ? C / 8 : 0  // the weight registers below hold up to 8 taps
        let zero = SIMD8<Float>(repeating: 0)
        for b in 0..<blocks {
            let c0 = b * 8
            var w = (zero, zero, zero, zero, zero, zero, zero, zero)
            withUnsafeMutableBytes(of: &w) { raw in
                let wt = raw.baseAddress!.assumingMemoryBound(to: SIMD8<Float>.self)
                for j in 0..<k { for l in 0..<8 { wt[j][l] = weight[(c0 + l) * k + j] } }
            }
            withUnsafeBytes(of: &w) { raw in
                let wt = raw.baseAddress!.assumingMemoryBound(to: SIMD8<Float>.self)
                for t in 0..<T {
                    var acc = zero
                    for j in 0..<k {
                        let tau = t - past + j
                        let row: UnsafePointer<Float>? = tau >= 0 ? x + tau * C : state.map { UnsafePointer($0 + (past + tau) * C) }
                        let v = row.map { UnsafeRawPointer($0 + c0).loadUnaligned(as: SIMD8<Float>.self) } ?? zero
                        acc += wt[j] * v
                    }
                    UnsafeMutableRawPointer(y + t * C + c0).storeBytes(of: acc, as: SIMD8<Float>.self)
                }
            }
        }
        convolve(x, tokens: T, channels: C, channelRange: (blocks * 8)..<C, kernel: k, weight: weight, state: state, into: y)
        advance(state, x, tokens: T, channels: C, kernel: k)
    }

    /// One channel and token at a time: the reference twin of `forward`.
    public static func forwardScalar(_ x: UnsafePointer<Float>, tokens T: Int, channels C: Int, kernel k: Int,
                                     weight: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>?,
                                     into y: UnsafeMutablePointer<Float>) {
        convolve(x, tokens: T, channels: C, channelRange: 0..<C, kernel: k, weight: weight, state: state, into: y)
        advance(state, x, tokens: T, channels: C, kernel: k)
    }

    private static func convolve(_ x: UnsafePointer<Float>, tokens T: Int, channels C: Int, channelRange: Range<Int>,
                                 kernel k: Int, weight: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>?,
                                 into y: UnsafeMutablePointer<Float>) {
        let past = k - 1
        for t in 0..<T {
            for c in channelRange {
                var acc: Float = 0
                for j in 0..<k {
                    let tau = t - past + j
                    let v: Float = tau >= 0 ? x[tau * C + c] : (state.map { $0[(past + tau) * C + c] } ?? 0)
                    acc += weight[c * k + j] * v
                }
                y[t * C + c] = acc
            }
        }
    }

    /// The last k − 1 inputs become the state.
    private static func advance(_ state: UnsafeMutablePointer<Float>?, _ x: UnsafePointer<Float>, tokens T: Int,
                                channels C: Int, kernel k: Int) {
        guard let state else { return }
        let past = k - 1
        // Ascending m reads state rows T+m ≥ m, so the update can run in place.
        for m in 0..<past {
            let tau = T - past + m
            for c in 0..<C { state[m * C + c] = tau >= 0 ? x[tau * C + c] : state[(past + tau) * C + c] }
        }
    }
}
