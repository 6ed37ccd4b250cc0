// The DiT action expert of DESIGN §3 (`action_expert.*`), ported from Tools/reference/qwen_vla.py. The
// context keys/values do not depend on the noisy chunk or τ, so `context(_:tokens:)` computes them once per
// observation (after k_norm and RoPE) and every Euler step reuses them.
import Foundation
import Synchronization
import TendonTensor

/// A Linear with bias: weight [out, in] in any dtype (quantized GGUF weights run through `Linear`).
struct DiTLinear: Sendable {
    var weight: Tensor
    var bias: [Float]
    var outFeatures: Int { weight.shape[0] }
}

struct DiTBlockWeights: Sendable {
    var modulation, qProj, kProj, vProj, oProj, fc1, fc2: DiTLinear
    var qNorm, kNorm: [Float]
    /// q_proj, k_proj, v_proj rows stacked [3·h·hd, d] (one activation quantization and one dispatch per
    /// step instead of three); nil when their dtypes differ.
    var qkv: DiTLinear?
}

extension ActionExpert {
    static let stackedQKV = "attn.qkv"

    /// The checkpoint weights behind a weight this runtime built by stacking (its q_proj/k_proj/v_proj rows,
    /// which all see the stacked weight's input), or nil for a checkpoint weight. Calibration tools map what
    /// `Linear` saw back to file tensors with it.
    public static func sourceWeights(ofStacked name: String) -> [String]? {
        guard name.hasPrefix("action_expert.blocks."), name.hasSuffix("." + stackedQKV) else { return nil }
        let prefix = name.dropLast(stackedQKV.count)
        return ["q_proj", "k_proj", "v_proj"].map { prefix + "attn.\($0).weight" }
    }
}

extension DiTLinear {
    /// The rows of several same-dtype, same-width weights stacked into one owned tensor.
    static func stacked(_ parts: [DiTLinear], name: String) -> DiTLinear? {
        guard let first = parts.first, let rowBytes = first.weight.rowBytes,
              parts.allSatisfy({ $0.weight.dtype == first.weight.dtype && $0.weight.shape[1] == first.weight.shape[1] })
        else { return nil }
        let rows = parts.reduce(0) { $0 + $1.outFeatures }
        let storage = TensorStorage(byteCount: rows * rowBytes)
        var offset = 0
        for p in parts {
            let bytes = p.outFeatures * rowBytes
            (storage.base + offset).copyMemory(from: p.weight.rawPointer, byteCount: bytes)
            offset += bytes
        }
        return DiTLinear(weight: Tensor(name: name, dtype: first.weight.dtype, shape: [rows, first.weight.shape[1]], storage: storage),
                         bias: parts.flatMap(\.bias))
    }
}

/// What one observation contributes to every step: C and each block's context keys and values.
public struct ActionExpertContext: Sendable {
    /// T, the number of prefix tokens.
    public let tokens: Int
    /// C = context_proj(V) [T, d].
    public let context: [Float]
    /// Per block: k_norm(k_proj(LN(C))) with RoPE at positions 0…T−1, transposed per head [h, hd, T] (the
    /// attention kernel broadcasts q against contiguous key columns).
    let keysT: [[Float]]
    /// Per block: v_proj(LN(C)) [T, h·hd].
    let values: [[Float]]
}

public final class ActionExpert: Sendable {
    public let config: ActionExpertConfig
    let contextProj, timeFC1, timeFC2, actionFC1, actionFC2, finalModulation, finalProj: DiTLinear
    let blocks: [DiTBlockWeights]
    let rotary: RotaryEmbedding
    let pool: ThreadPool?
    static let normEps: Float = 1e-6
    /// silu(c) → every block's modulation and the final one depend on τ only, so they are computed once per
    /// τ (bit pattern) and reused by every observation: 6·d·d weights per block are otherwise read per step.
    let timeCache = Mutex<[UInt32: TimeConditioning]>([:])

    struct TimeConditioning: Sendable {
        /// Per block [6d]: shift_a, scale_a, gate_a, shift_m, scale_m, gate_m.
        var blocks: [[Float]]
        /// [2d]: shift, scale.
        var final: [Float]
    }

    /// `lookup` returns nil for a name the checkpoint does not hold; names are `action_expert.*`.
    public init(config: ActionExpertConfig, pool: ThreadPool? = nil,
                lookup: (String) throws(VLAError) -> Tensor?) throws(VLAError) {
        try config.validate()
        self.config = config
        self.pool = pool
        let d = config.hiddenSize, K = config.actionDim, hh = config.numHeads * config.headDim
        func tensor(_ name: String, _ shape: [Int]) throws(VLAError) -> Tensor {
            let full = "action_expert." + name
            guard let t = try lookup(full) else { throw .weights("missing tensor \(full) (expected shape \(shape))") }
            guard t.shape == shape else { throw .weights("\(full): shape \(t.shape), expected \(shape)") }
            guard t.rowBytes != nil else {
                throw .weights("\(full): rows of \(t.rowLength) are not whole \(t.dtype) blocks of \(t.dtype.blockSize)")
            }
            return t
        }
        func linear(_ name: String, _ out: Int, _ inF: Int) throws(VLAError) -> DiTLinear {
            DiTLinear(weight: try tensor(name + ".weight", [out, inF]),
                      bias: Qwen35Ops.floats(try tensor(name + ".bias", [out])))
        }
        contextProj = try linear("context_proj", d, config.contextDim)
        timeFC1 = try linear("time_embed.fc1", d, 256)
        timeFC2 = try linear("time_embed.fc2", d, d)
        actionFC1 = try linear("action_in.fc1", d, K)
        actionFC2 = try linear("action_in.fc2", d, d)
        var blocks: [DiTBlockWeights] = []
        for l in 0..<config.numLayers {
            let p = "blocks.\(l)."
            var block = DiTBlockWeights(
                modulation: try linear(p + "modulation", 6 * d, d),
                qProj: try linear(p + "attn.q_proj", hh, d), kProj: try linear(p + "attn.k_proj", hh, d),
                vProj: try linear(p + "attn.v_proj", hh, d), oProj: try linear(p + "attn.o_proj", d, hh),
                fc1: try linear(p + "mlp.fc1", config.intermediateSize, d),
                fc2: try linear(p + "mlp.fc2", d, config.intermediateSize),
                qNorm: Qwen35Ops.floats(try tensor(p + "attn.q_norm.weight", [config.headDim])),
                kNorm: Qwen35Ops.floats(try tensor(p + "attn.k_norm.weight", [config.headDim])))
            block.qkv = DiTLinear.stacked([block.qProj, block.kProj, block.vProj], name: "action_expert.\(p)\(Self.stackedQKV)")
            blocks.append(block)
        }
        self.blocks = blocks
        finalModulation = try linear("final.modulation", 2 * d, d)
        finalProj = try linear("final.proj", K, d)
        rotary = RotaryEmbedding(rotaryDim: config.headDim, theta: config.ropeTheta)
    }

    // MARK: - Per observation

    /// C and the per-block context keys/values from the backbone's final hidden states V [T, d_v].
    public func context(_ hidden: [Float], tokens T: Int) throws(VLAError) -> ActionExpertContext {
        guard T > 0, hidden.count == T * config.contextDim else {
            throw .input("context holds \(hidden.count) values, expected \(T) tokens × context_dim \(config.contextDim)")
        }
        let C = apply(contextProj, hidden, rows: T)
        let ln = layerNorm(C, rows: T)
        let (cos, sin) = ropeTables(first: 0, count: T)
        var keys: [[Float]] = [], values: [[Float]] = []
        for b in blocks {
            var k = apply(b.kProj, ln, rows: T)
            Qwen35Ops.rmsNorm(&k, dim: config.headDim, weight: b.kNorm, eps: Self.normEps, form: .multiply)
            rope(&k, tokens: T, cos: cos, sin: sin)
            let width = k.count / T
            var kT = [Float](repeating: 0, count: k.count)
            for t in 0..<T { for j in 0..<width { kT[j * T + t] = k[t * width + j] } }
            keys.append(kT)
            values.append(apply(b.vProj, ln, rows: T))
        }
        return ActionExpertContext(tokens: T, context: C, keysT: keys, values: values)
    }

    // MARK: - Per step

    /// The velocity v(Y, τ) [H, K] for a noisy chunk Y [H, K].
    public func velocity(_ y: [Float], tau: Float, context ctx: ActionExpertContext) throws(VLAError) -> [Float] {
        let K = config.actionDim, d = config.hiddenSize, q0Width = config.numHeads * config.headDim
        guard !y.isEmpty, y.count % K == 0 else { throw .input("chunk holds \(y.count) values, expected rows of action_dim \(K)") }
        let H = y.count / K, T = ctx.tokens
        guard ctx.keysT.count == blocks.count else { throw .input("context from another expert (\(ctx.keysT.count) blocks)") }

        let time = timeConditioning(tau)
        var x = apply(actionFC2, silu(apply(actionFC1, y, rows: H)), rows: H)
        let (cos, sin) = ropeTables(first: T, count: H)
        for (l, b) in blocks.enumerated() {
            let m = time.blocks[l]
            let shiftA = m[0..<d], scaleA = m[d..<(2 * d)], gateA = m[(2 * d)..<(3 * d)]
            let shiftM = m[(3 * d)..<(4 * d)], scaleM = m[(4 * d)..<(5 * d)], gateM = m[(5 * d)..<(6 * d)]
            let u = modulate(layerNorm(x, rows: H), shift: shiftA, scale: scaleA)
            var q: [Float], k: [Float], v: [Float]
            if let qkv = b.qkv {
                let all = apply(qkv, u, rows: H), hh = q0Width
                q = Self.columns(all, rows: H, stride: 3 * hh, from: 0, count: hh)
                k = Self.columns(all, rows: H, stride: 3 * hh, from: hh, count: hh)
                v = Self.columns(all, rows: H, stride: 3 * hh, from: 2 * hh, count: hh)
            } else {
                q = apply(b.qProj, u, rows: H); k = apply(b.kProj, u, rows: H); v = apply(b.vProj, u, rows: H)
            }
            Qwen35Ops.rmsNorm(&q, dim: config.headDim, weight: b.qNorm, eps: Self.normEps, form: .multiply)
            Qwen35Ops.rmsNorm(&k, dim: config.headDim, weight: b.kNorm, eps: Self.normEps, form: .multiply)
            rope(&q, tokens: H, cos: cos, sin: sin)
            rope(&k, tokens: H, cos: cos, sin: sin)
            let attn = attention(q: q, keys: (ctx.keysT[l], k), values: (ctx.values[l], v), contextTokens: T, actionTokens: H)
            addGated(&x, apply(b.oProj, attn, rows: H), gate: gateA)
            var h = apply(b.fc1, modulate(layerNorm(x, rows: H), shift: shiftM, scale: scaleM), rows: H)
            let n = h.count
            h.withUnsafeMutableBufferPointer { Kernels.geluTanh($0.baseAddress!, count: n, into: $0.baseAddress!) }
            addGated(&x, apply(b.fc2, h, rows: H), gate: gateM)
        }
        let f = time.final
        return apply(finalProj, modulate(layerNorm(x, rows: H), shift: f[0..<d], scale: f[d..<(2 * d)]), rows: H)
    }

    func timeConditioning(_ tau: Float) -> TimeConditioning {
        if let hit = timeCache.withLock({ $0[tau.bitPattern] }) { return hit }
        // silu(c): every modulation reads it.
        let c = silu(apply(timeFC2, silu(apply(timeFC1, Self.timeEmbedding(tau), rows: 1)), rows: 1))
        let value = TimeConditioning(blocks: blocks.map { apply($0.modulation, c, rows: 1) },
                                     final: apply(finalModulation, c, rows: 1))
        timeCache.withLock { cache in
            if cache.count > 4096 { cache.removeAll() }  // bounded: grids of a few step counts in practice
            cache[tau.bitPattern] = value
        }
        return value
    }

    /// Euler from noise at τ=1 to τ=0 on τ_k = 1 − k/N: Y ← Y − v(Y, τ_k)/N. Channels ≥ `activeChannels`
    /// are zero in the noise and after every step. `onStep` sees (k, velocity) for debugging.
    public func sample(noise: [Float], activeChannels c: Int, steps N: Int, context: ActionExpertContext,
                       onStep: ((Int, [Float]) -> Void)? = nil) throws(VLAError) -> [Float] {
        let K = config.actionDim
        guard N > 0 else { throw .input("steps must be positive, found \(N)") }
        guard c > 0, c <= K else { throw .input("active channels \(c) outside 1…\(K)") }
        guard !noise.isEmpty, noise.count % K == 0 else { throw .input("noise holds \(noise.count) values, expected rows of \(K)") }
        var y = noise
        Self.zeroPadding(&y, active: c, width: K)
        let n = Float(N)
        for k in 0..<N {
            let tau = Self.tau(step: k, of: N)
            let v = try velocity(y, tau: tau, context: context)
            onStep?(k, v)
            for i in 0..<y.count { y[i] -= v[i] / n }
            Self.zeroPadding(&y, active: c, width: K)
        }
        return y
    }

    /// τ_k = float32(1 − k/N).
    public static func tau(step k: Int, of N: Int) -> Float { Float(1.0 - Double(k) / Double(N)) }

    /// [cos(1000τ·f_i), sin(1000τ·f_i)], i < 128, f_i = exp(−ln(10000)·i/128): evaluated in Double from the
    /// f32 τ and rounded once (the reference does the same, so the phases at 1000τ agree to the last bit).
    public static func timeEmbedding(_ tau: Float) -> [Float] {
        let t = Double(tau)
        var e = [Float](repeating: 0, count: 256)
        for i in 0..<128 {
            let arg = 1000.0 * t * Foundation.exp(-Foundation.log(10000.0) * Double(i) / 128)
            e[i] = Float(Foundation.cos(arg))
            e[128 + i] = Float(Foundation.sin(arg))
        }
        return e
    }

    static func zeroPadding(_ y: inout [Float], active c: Int, width K: Int) {
        guard c < K else { return }
        for row in stride(from: 0, to: y.count, by: K) { for j in c..<K { y[row + j] = 0 } }
    }

    // MARK: - Pieces

    func apply(_ l: DiTLinear, _ x: [Float], rows: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * l.outFeatures)
        x.withUnsafeBufferPointer { xp in
            l.bias.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    do {
                        try Linear.forward(xp.baseAddress!, rows: rows, weight: l.weight, bias: bp.baseAddress!,
                                           into: yp.baseAddress!, pool: pool)
                    } catch {
                        // Loading checked every shape and block layout; this is a programming error.
                        preconditionFailure("linear \(l.weight.name): \(error)")
                    }
                }
            }
        }
        return y
    }

    /// Columns from..<from+count of each row of a row-major [rows, stride] matrix (row copies: the indexed
    /// element loop this replaces was a visible share of every step).
    static func columns(_ x: [Float], rows: Int, stride: Int, from: Int, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * count) { buffer, initialized in
            x.withUnsafeBufferPointer { xp in
                for r in 0..<rows {
                    (buffer.baseAddress! + r * count).initialize(from: xp.baseAddress! + r * stride + from, count: count)
                }
            }
            initialized = rows * count
        }
    }

    func silu(_ x: [Float]) -> [Float] {
        var y = x
        let n = y.count
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { Kernels.silu(xp.baseAddress!, count: n, into: $0.baseAddress!) } }
        return y
    }

    /// LayerNorm without affine, eps 1e-6, over rows of d.
    func layerNorm(_ x: [Float], rows: Int) -> [Float] {
        var y = x
        let d = x.count / rows
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer {
                Kernels.layerNorm(xp.baseAddress!, rows: rows, dim: d, eps: Self.normEps, into: $0.baseAddress!)
            }
        }
        return y
    }

    /// x·(1+scale)+shift per row. Raw pointers: indexing the slices kept per-element uniqueness checks in
    /// the loop and it did not vectorize (a few % of every step).
    func modulate(_ x: [Float], shift: ArraySlice<Float>, scale: ArraySlice<Float>) -> [Float] {
        var y = x
        let d = shift.count
        y.withUnsafeMutableBufferPointer { yp in
            shift.withUnsafeBufferPointer { shp in
                scale.withUnsafeBufferPointer { scp in
                    let yb = yp.baseAddress!, sh = shp.baseAddress!, sc = scp.baseAddress!
                    for r in stride(from: 0, to: yp.count, by: d) {
                        let row = yb + r
                        for i in 0..<d { row[i] = row[i] * (1 + sc[i]) + sh[i] }
                    }
                }
            }
        }
        return y
    }

    /// x += gate ⊙ y per row.
    func addGated(_ x: inout [Float], _ y: [Float], gate: ArraySlice<Float>) {
        let d = gate.count
        x.withUnsafeMutableBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                gate.withUnsafeBufferPointer { gp in
                    let xb = xp.baseAddress!, yb = yp.baseAddress!, g = gp.baseAddress!
                    for r in stride(from: 0, to: xp.count, by: d) {
                        let xr = xb + r, yr = yb + r
                        for i in 0..<d { xr[i] += g[i] * yr[i] }
                    }
                }
            }
        }
    }

    func ropeTables(first: Int, count: Int) -> (cos: [Float], sin: [Float]) {
        let positions = (first..<(first + count)).map { Int32(truncatingIfNeeded: $0) }
        var cos = [Float](repeating: 0, count: count * config.headDim), sin = cos
        positions.withUnsafeBufferPointer { p in
            cos.withUnsafeMutableBufferPointer { c in
                sin.withUnsafeMutableBufferPointer { s in
                    rotary.tables(positions: p.baseAddress!, axes: 1, tokens: count, cos: c.baseAddress!, sin: s.baseAddress!)
                }
            }
        }
        return (cos, sin)
    }

    func rope(_ x: inout [Float], tokens: Int, cos: [Float], sin: [Float]) {
        let heads = config.numHeads, hd = config.headDim
        cos.withUnsafeBufferPointer { cp in
            sin.withUnsafeBufferPointer { sp in
                x.withUnsafeMutableBufferPointer {
                    rotary.apply($0.baseAddress!, tokens: tokens, heads: heads, headDim: hd, cos: cp.baseAddress!, sin: sp.baseAddress!)
                }
            }
        }
    }

    /// softmax(q·[Kc; Ka]ᵀ·hd^−½)·[Vc; Va] per head, no mask. q [H, h·hd]; context keys transposed
    /// [h, hd, T], context values [T, h·hd]; action keys and values [H, h·hd]; result [H, h·hd].
    func attention(q: [Float], keys: (contextT: [Float], action: [Float]), values: (context: [Float], action: [Float]),
                   contextTokens T: Int, actionTokens H: Int) -> [Float] {
        let nh = config.numHeads, hd = config.headDim, width = nh * hd
        let scale = 1 / Float(hd).squareRoot()
        var out = [Float](repeating: 0, count: H * width)
        q.withUnsafeBufferPointer { qb in
            keys.contextT.withUnsafeBufferPointer { kc in
                keys.action.withUnsafeBufferPointer { ka in
                    values.context.withUnsafeBufferPointer { vc in
                        values.action.withUnsafeBufferPointer { va in
                            out.withUnsafeMutableBufferPointer { ob in
                                let qp = qb.baseAddress!, op = ob.baseAddress!
                                let kcp = kc.baseAddress!, kap = ka.baseAddress!, vcp = vc.baseAddress!, vap = va.baseAddress!
                                let scratchCount = Kernels.attentionScratchCount(queries: H, contextTokens: T, actionTokens: H, headDim: hd)
                                // Heads are independent and write their own output columns; one scratch per slice.
                                let body = { (heads: Range<Int>) in
                                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
                                    defer { scratch.deallocate() }
                                    for h in heads {
                                        let c = h * hd
                                        Kernels.attentionHead(queries: H, headDim: hd, scale: scale, q: qp + c, ldq: width,
                                                              contextTokens: T, contextKeysT: kcp + c * T, ldkc: T,
                                                              contextValues: vcp + c, ldvc: width,
                                                              actionTokens: H, actionKeys: kap + c, ldka: width,
                                                              actionValues: vap + c, ldva: width,
                                                              scratch: scratch, into: op + c, ldo: width)
                                    }
                                }
                                if let pool, nh > 1 { pool.parallelFor(nh, body) } else { body(0..<nh) }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
