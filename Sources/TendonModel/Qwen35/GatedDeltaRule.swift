// Port of transformers 5.23.0 models/qwen3_5/modeling_qwen3_5.py: torch_recurrent_gated_delta_rule and
// torch_chunk_gated_delta_rule (use_qk_l2norm_in_kernel=True, as Qwen3_5GatedDeltaNet calls them).
// Layouts are time-major: q, k [T, Hk, dk]; v [T, Hv, dv]; g, beta [T, Hv]; state [Hv, dk, dv].
// Value head h reads query/key head h / (Hv/Hk) (the reference's repeat_interleave).
import Foundation

public enum GatedDeltaRule {
    /// Shapes of one call.
    public struct Shape: Sendable, Equatable {
        public var tokens: Int
        public var keyHeads: Int
        public var valueHeads: Int
        public var keyDim: Int
        public var valueDim: Int
        public init(tokens: Int, keyHeads: Int, valueHeads: Int, keyDim: Int, valueDim: Int) {
            self.tokens = tokens; self.keyHeads = keyHeads; self.valueHeads = valueHeads
            self.keyDim = keyDim; self.valueDim = valueDim
        }
        var stateCount: Int { valueHeads * keyDim * valueDim }
    }

    /// Queries and keys per value head, L2-normalized (eps 1e-6), queries scaled by dk^-½: [Hv][T·dk].
    static func normalizedHeads(_ q: [Float], _ k: [Float], _ s: Shape) -> (q: [[Float]], k: [[Float]]) {
        let group = s.valueHeads / s.keyHeads
        let scale = 1 / Float(s.keyDim).squareRoot()
        var qh = [[Float]](), kh = [[Float]]()
        for h in 0..<s.valueHeads {
            let src = h / group
            var qv = [Float](repeating: 0, count: s.tokens * s.keyDim)
            var kv = qv
            for t in 0..<s.tokens {
                let base = (t * s.keyHeads + src) * s.keyDim
                for i in 0..<s.keyDim { qv[t * s.keyDim + i] = q[base + i]; kv[t * s.keyDim + i] = k[base + i] }
                qv.withUnsafeMutableBufferPointer { Kernels.l2Normalize($0.baseAddress! + t * s.keyDim, count: s.keyDim, eps: 1e-6) }
                kv.withUnsafeMutableBufferPointer { Kernels.l2Normalize($0.baseAddress! + t * s.keyDim, count: s.keyDim, eps: 1e-6) }
                for i in 0..<s.keyDim { qv[t * s.keyDim + i] *= scale }
            }
            qh.append(qv); kh.append(kv)
        }
        return (qh, kh)
    }

    /// Token by token: S ← S·e^g; S ← S + k ⊗ β(v − kᵀS); o = qᵀS. Updates `state`; returns [T, Hv, dv].
    public static func recurrent(q: [Float], k: [Float], v: [Float], g: [Float], beta: [Float], shape s: Shape,
                                 state: inout [Float]) -> [Float] {
        precondition(state.count == s.stateCount, "state holds \(state.count), expected \(s.stateCount)")
        let (qh, kh) = normalizedHeads(q, k, s)
        let dk = s.keyDim, dv = s.valueDim
        var out = [Float](repeating: 0, count: s.tokens * s.valueHeads * dv)
        var kvMem = [Float](repeating: 0, count: dv)
        for h in 0..<s.valueHeads {
            let S0 = h * dk * dv
            for t in 0..<s.tokens {
                let decay = expf(g[t * s.valueHeads + h])
                let b = beta[t * s.valueHeads + h]
                for i in 0..<(dk * dv) { state[S0 + i] *= decay }
                for j in 0..<dv { kvMem[j] = 0 }
                for i in 0..<dk {
                    let ki = kh[h][t * dk + i]
                    for j in 0..<dv { kvMem[j] += state[S0 + i * dv + j] * ki }
                }
                let vBase = (t * s.valueHeads + h) * dv
                for j in 0..<dv { kvMem[j] = (v[vBase + j] - kvMem[j]) * b }  // delta
                for i in 0..<dk {
                    let ki = kh[h][t * dk + i]
                    for j in 0..<dv { state[S0 + i * dv + j] += ki * kvMem[j] }
                }
                for i in 0..<dk {
                    let qi = qh[h][t * dk + i]
                    for j in 0..<dv { out[vBase + j] += state[S0 + i * dv + j] * qi }
                }
            }
        }
        return out
    }

    /// The chunked (UT-transform) form, `chunkSize` tokens at a time as the reference (64). Within a chunk
    /// with cumulative log-decay c: (I + A)·U = βV and (I + A)·W = βK·e^c where A[i,j] = β_i k_i·k_j e^{c_i−c_j}
    /// (j < i); then V' = U − W·S, O = (Q e^c)·S + tril(Q Kᵀ ⊙ e^{c_i−c_j})·V', S ← S·e^{c_last} + (K e^{c_last−c})ᵀ·V'.
    /// A final partial chunk is the reference's zero padding without the padded rows (they contribute nothing).
    public static func chunked(q: [Float], k: [Float], v: [Float], g: [Float], beta: [Float], shape s: Shape,
                               state: inout [Float], chunkSize: Int = 64) -> [Float] {
        precondition(state.count == s.stateCount, "state holds \(state.count), expected \(s.stateCount)")
        let (qh, kh) = normalizedHeads(q, k, s)
        let dk = s.keyDim, dv = s.valueDim, H = s.valueHeads
        var out = [Float](repeating: 0, count: s.tokens * H * dv)
        let C = chunkSize
        var c = [Float](repeating: 0, count: C)
        var A = [Float](repeating: 0, count: C * C)
        var U = [Float](repeating: 0, count: C * dv)
        var W = [Float](repeating: 0, count: C * dk)
        for h in 0..<H {
            let S0 = h * dk * dv
            var start = 0
            while start < s.tokens {
                let n = min(C, s.tokens - start)
                var acc: Float = 0
                for i in 0..<n { acc += g[(start + i) * H + h]; c[i] = acc }
                @inline(__always) func kRow(_ i: Int) -> Int { (start + i) * dk }
                @inline(__always) func betaAt(_ i: Int) -> Float { beta[(start + i) * H + h] }
                for i in 0..<n {
                    for j in 0..<i {
                        var dot: Float = 0
                        for d in 0..<dk { dot += kh[h][kRow(i) + d] * kh[h][kRow(j) + d] }
                        A[i * C + j] = betaAt(i) * dot * expf(c[i] - c[j])
                    }
                }
                // Forward substitution through the unit lower-triangular system (I + A).
                for i in 0..<n {
                    let vBase = ((start + i) * H + h) * dv
                    let bi = betaAt(i), ec = expf(c[i])
                    for j in 0..<dv { U[i * dv + j] = v[vBase + j] * bi }
                    for d in 0..<dk { W[i * dk + d] = kh[h][kRow(i) + d] * bi * ec }
                    for j in 0..<i {
                        let a = A[i * C + j]
                        if a == 0 { continue }
                        for x in 0..<dv { U[i * dv + x] -= a * U[j * dv + x] }
                        for d in 0..<dk { W[i * dk + d] -= a * W[j * dk + d] }
                    }
                }
                // V' = U − W·S (reuses U).
                for i in 0..<n {
                    for d in 0..<dk {
                        let w = W[i * dk + d]
                        for x in 0..<dv { U[i * dv + x] -= w * state[S0 + d * dv + x] }
                    }
                }
                // Outputs: the read of the previous state plus the causal within-chunk attention.
                for i in 0..<n {
                    let oBase = ((start + i) * H + h) * dv
                    let ec = expf(c[i])
                    for d in 0..<dk {
                        let qd = qh[h][kRow(i) + d] * ec
                        for x in 0..<dv { out[oBase + x] += qd * state[S0 + d * dv + x] }
                    }
                    for j in 0...i {
                        var dot: Float = 0
                        for d in 0..<dk { dot += qh[h][kRow(i) + d] * kh[h][kRow(j) + d] }
                        let a = dot * expf(c[i] - c[j])
                        for x in 0..<dv { out[oBase + x] += a * U[j * dv + x] }
                    }
                }
                // State update.
                let last = c[n - 1]
                let chunkDecay = expf(last)
                for i in 0..<(dk * dv) { state[S0 + i] *= chunkDecay }
                for j in 0..<n {
                    let e = expf(last - c[j])
                    for d in 0..<dk {
                        let kd = kh[h][kRow(j) + d] * e
                        for x in 0..<dv { state[S0 + d * dv + x] += kd * U[j * dv + x] }
                    }
                }
                start += n
            }
        }
        return out
    }
}
