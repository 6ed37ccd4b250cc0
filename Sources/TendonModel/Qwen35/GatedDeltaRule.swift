// Port of transformers 5.23.0 models/qwen3_5/modeling_qwen3_5.py: torch_recurrent_gated_delta_rule and
// torch_chunk_gated_delta_rule (use_qk_l2norm_in_kernel=True, as Qwen3_5GatedDeltaNet calls them).
// Layouts are time-major: q, k [T, Hk, dk]; v [T, Hv, dv]; g, beta [T, Hv]; state [Hv, dk, dv].
// Value head h reads query/key head h / (Hv/Hk) (the reference's repeat_interleave).
import Foundation
import TendonTensor

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
                qv.withUnsafeMutableBufferPointer { Qwen35Ops.l2Normalize($0.baseAddress! + t * s.keyDim, count: s.keyDim, eps: 1e-6) }
                kv.withUnsafeMutableBufferPointer { Qwen35Ops.l2Normalize($0.baseAddress! + t * s.keyDim, count: s.keyDim, eps: 1e-6) }
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
                               state: inout [Float], chunkSize: Int = 64, pool: ThreadPool? = nil) -> [Float] {
        precondition(state.count == s.stateCount, "state holds \(state.count), expected \(s.stateCount)")
        let (qh, kh) = normalizedHeads(q, k, s)
        var out = [Float](repeating: 0, count: s.tokens * s.valueHeads * s.valueDim)
        out.withUnsafeMutableBufferPointer { op in
            state.withUnsafeMutableBufferPointer { sp in
                v.withUnsafeBufferPointer { vp in
                    g.withUnsafeBufferPointer { gp in
                        beta.withUnsafeBufferPointer { bp in
                            let io = HeadIO(out: op.baseAddress!, state: sp.baseAddress!, v: vp.baseAddress!,
                                            g: gp.baseAddress!, beta: bp.baseAddress!)
                            // Value heads are independent: each writes its own state slice and output columns.
                            let body = { (heads: Range<Int>) in
                                for h in heads {
                                    qh[h].withUnsafeBufferPointer { qp in
                                        kh[h].withUnsafeBufferPointer { kp in
                                            chunkedHead(h, q: qp.baseAddress!, k: kp.baseAddress!, io: io, shape: s, chunkSize: chunkSize)
                                        }
                                    }
                                }
                            }
                            if let pool, s.valueHeads > 1 { pool.parallelFor(s.valueHeads, body) } else { body(0..<s.valueHeads) }
                        }
                    }
                }
            }
        }
        return out
    }

    struct HeadIO {
        var out: UnsafeMutablePointer<Float>
        var state: UnsafeMutablePointer<Float>
        var v, g, beta: UnsafePointer<Float>
    }

    /// One value head of `chunked`; q, k are that head's normalized [T, dk].
    private static func chunkedHead(_ h: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, io: HeadIO,
                                    shape s: Shape, chunkSize C: Int) {
        let dk = s.keyDim, dv = s.valueDim, H = s.valueHeads
        let S = io.state + h * dk * dv
        let c = UnsafeMutablePointer<Float>.allocate(capacity: C)
        let A = UnsafeMutablePointer<Float>.allocate(capacity: C * C)
        let U = UnsafeMutablePointer<Float>.allocate(capacity: C * dv)
        let W = UnsafeMutablePointer<Float>.allocate(capacity: C * dk)
        defer { c.deallocate(); A.deallocate(); U.deallocate(); W.deallocate() }
        var start = 0
        while start < s.tokens {
            let n = min(C, s.tokens - start)
            let qc = q + start * dk, kc = k + start * dk
            var acc: Float = 0
            for i in 0..<n { acc += io.g[(start + i) * H + h]; c[i] = acc }
            // A[i, j] = k_i·k_j e^{c_i−c_j} (j ≤ i): β_i times it is the UT system, and the same decayed
            // products with q instead of k give the intra-chunk attention (computed below).
            for i in 0..<n {
                let bi = io.beta[(start + i) * H + h]
                for j in 0..<i { A[i * C + j] = bi * dot(kc + i * dk, kc + j * dk, dk) * expf(c[i] - c[j]) }
            }
            // Forward substitution through the unit lower-triangular system (I + A).
            for i in 0..<n {
                let vr = io.v + ((start + i) * H + h) * dv
                let bi = io.beta[(start + i) * H + h], ec = expf(c[i])
                let Ui = U + i * dv, Wi = W + i * dk
                for x in 0..<dv { Ui[x] = vr[x] * bi }
                for d in 0..<dk { Wi[d] = kc[i * dk + d] * bi * ec }
                for j in 0..<i {
                    let a = A[i * C + j]
                    axpy(-a, U + j * dv, Ui, dv)
                    axpy(-a, W + j * dk, Wi, dk)
                }
            }
            // V' = U − W·S (in U).
            for i in 0..<n {
                for d in 0..<dk { axpy(-W[i * dk + d], S + d * dv, U + i * dv, dv) }
            }
            // Outputs: the read of the previous state plus the causal within-chunk attention.
            for i in 0..<n {
                let o = io.out + ((start + i) * H + h) * dv
                let ec = expf(c[i])
                for d in 0..<dk { axpy(qc[i * dk + d] * ec, S + d * dv, o, dv) }
                for j in 0...i {
                    axpy(dot(qc + i * dk, kc + j * dk, dk) * expf(c[i] - c[j]), U + j * dv, o, dv)
                }
            }
            // State update.
            let last = c[n - 1]
            let chunkDecay = expf(last)
            for i in 0..<(dk * dv) { S[i] *= chunkDecay }
            for j in 0..<n {
                let e = expf(last - c[j])
                for d in 0..<dk { axpy(kc[j * dk + d] * e, U + j * dv, S + d * dv, dv) }
            }
            start += n
        }
    }

    @inline(__always) private static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s += a[i] * b[i] }
        return s
    }

    /// y += a·x
    @inline(__always) private static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += a * x[i] }
    }
}
