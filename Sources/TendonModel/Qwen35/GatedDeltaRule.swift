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
    /// The products and the triangular solve are small sgemm/strsm calls (`SmallMatrix`); heads go to `pool`.
    public static func chunked(q: [Float], k: [Float], v: [Float], g: [Float], beta: [Float], shape s: Shape,
                               state: inout [Float], chunkSize: Int = 64, pool: ThreadPool? = nil) -> [Float] {
        precondition(state.count == s.stateCount, "state holds \(state.count), expected \(s.stateCount)")
        precondition(q.count == s.tokens * s.keyHeads * s.keyDim && k.count == q.count,
                     "q/k hold \(q.count)/\(k.count), expected \(s.tokens * s.keyHeads * s.keyDim)")
        var out = [Float](repeating: 0, count: s.tokens * s.valueHeads * s.valueDim)
        guard s.tokens > 0 else { return out }
        let layout = Workspace(shape: s, chunkSize: chunkSize)
        // One block for every head's scratch: heads run concurrently, each in its own slice.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: layout.count * s.valueHeads)
        defer { scratch.deallocate() }
        SmallMatrix.useSingleThreadedBLAS()
        out.withUnsafeMutableBufferPointer { op in
            state.withUnsafeMutableBufferPointer { sp in
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in
                        v.withUnsafeBufferPointer { vp in
                            g.withUnsafeBufferPointer { gp in
                                beta.withUnsafeBufferPointer { bp in
                                    let io = HeadIO(out: op.baseAddress!, state: sp.baseAddress!, q: qp.baseAddress!,
                                                    k: kp.baseAddress!, v: vp.baseAddress!, g: gp.baseAddress!,
                                                    beta: bp.baseAddress!)
                                    // Value heads are independent: each writes its own state slice and output columns.
                                    let body = { (heads: Range<Int>) in
                                        for h in heads {
                                            chunkedHead(h, io: io, shape: s, chunkSize: chunkSize, layout: layout,
                                                        scratch: scratch + h * layout.count)
                                        }
                                    }
                                    if let pool, s.valueHeads > 1 { pool.parallelFor(s.valueHeads, body) } else { body(0..<s.valueHeads) }
                                }
                            }
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
        var q, k, v, g, beta: UnsafePointer<Float>
    }

    /// Offsets (in floats) of one head's scratch: normalized q, k [T, dk]; A and the masked, decayed Q·Kᵀ
    /// [C, C]; U [C, dv]; W [C, dk]; c and e^c [C].
    struct Workspace {
        var q, k, a, m, u, w, c, ec, count: Int
        init(shape s: Shape, chunkSize C: Int) {
            q = 0
            k = s.tokens * s.keyDim
            a = 2 * s.tokens * s.keyDim
            m = a + C * C
            u = m + C * C
            w = u + C * s.valueDim
            c = w + C * s.keyDim
            ec = c + C
            count = ec + C
        }
    }

    /// One value head of `chunked`. V' is solved as (I + A)⁻¹·(βV − βK e^c·S), the reference's
    /// (I + A)⁻¹βV − ((I + A)⁻¹βK e^c)·S regrouped, so the triangular solve has dv columns instead of dv + dk.
    private static func chunkedHead(_ h: Int, io: HeadIO, shape s: Shape, chunkSize C: Int, layout: Workspace,
                                    scratch: UnsafeMutablePointer<Float>) {
        let dk = s.keyDim, dv = s.valueDim, H = s.valueHeads, T = s.tokens
        let S = io.state + h * dk * dv
        let q = scratch + layout.q, k = scratch + layout.k
        let A = scratch + layout.a, M = scratch + layout.m, c = scratch + layout.c, ec = scratch + layout.ec
        let U = scratch + layout.u, W = scratch + layout.w

        // Queries and keys of this head's key head, L2-normalized (x·rsqrt(Σx² + 1e-6), the reference's l2norm),
        // queries then scaled by dk^-½.
        let src = h / (H / s.keyHeads)
        let scale = 1 / Float(dk).squareRoot()
        for t in 0..<T {
            let from = (t * s.keyHeads + src) * dk
            let qt = q + t * dk, kt = k + t * dk
            qt.update(from: io.q + from, count: dk)
            kt.update(from: io.k + from, count: dk)
            let qInv = 1 / (Kernels.dot(qt, qt, count: dk) + 1e-6).squareRoot()
            let kInv = 1 / (Kernels.dot(kt, kt, count: dk) + 1e-6).squareRoot()
            for i in 0..<dk { qt[i] = qt[i] * qInv * scale; kt[i] *= kInv }
        }

        var start = 0
        while start < T {
            let n = min(C, T - start)
            let qc = q + start * dk, kc = k + start * dk
            var acc: Float = 0
            for i in 0..<n { acc += io.g[(start + i) * H + h]; c[i] = acc; ec[i] = expf(acc) }
            // K·Kᵀ (lower triangle) and Q·Kᵀ, then in one pass over the lower triangle:
            // A[i,j] = β_i k_i·k_j e^{c_i−c_j} (j < i) and M = Q·Kᵀ ⊙ e^{c_i−c_j} on and below the diagonal,
            // zero above (the causal mask).
            SmallMatrix.gramLower(n: n, k: dk, a: kc, lda: dk, c: A, ldc: C)
            SmallMatrix.gemm(transB: true, m: n, n: n, k: dk, a: qc, lda: dk, b: kc, ldb: dk, c: M, ldc: C)
            for i in 0..<n {
                let bi = io.beta[(start + i) * H + h], ci = c[i]
                let Ai = A + i * C, Mi = M + i * C
                for j in 0..<i {
                    let e = expf(ci - c[j])
                    Ai[j] = bi * Ai[j] * e
                    Mi[j] *= e
                }
                for j in (i + 1)..<n { Mi[j] = 0 }
            }
            // U = βV − (βK e^c)·S, then forward substitution through the unit lower-triangular (I + A): U = V'.
            for i in 0..<n {
                let vr = io.v + ((start + i) * H + h) * dv
                let bi = io.beta[(start + i) * H + h], e = ec[i]
                let Ui = U + i * dv, Wi = W + i * dk, ki = kc + i * dk
                for x in 0..<dv { Ui[x] = vr[x] * bi }
                for d in 0..<dk { Wi[d] = ki[d] * bi * e }
            }
            SmallMatrix.gemm(m: n, n: dv, k: dk, alpha: -1, a: W, lda: dk, b: S, ldb: dv, beta: 1, c: U, ldc: dv)
            SmallMatrix.solveUnitLower(n: n, columns: dv, a: A, lda: C, b: U, ldb: dv)
            // Outputs: (Q e^c)·S, the read of the previous state, plus M·V', the causal within-chunk attention.
            // W holds Q e^c, then K e^{c_last−c}.
            for i in 0..<n {
                let Wi = W + i * dk, qi = qc + i * dk, e = ec[i]
                for d in 0..<dk { Wi[d] = qi[d] * e }
            }
            let o = io.out + (start * H + h) * dv
            SmallMatrix.gemm(m: n, n: dv, k: dk, a: W, lda: dk, b: S, ldb: dv, c: o, ldc: H * dv)
            SmallMatrix.gemm(m: n, n: dv, k: n, a: M, lda: C, b: U, ldb: dv, beta: 1, c: o, ldc: H * dv)
            // State update: S ← S·e^{c_last} + (K e^{c_last−c})ᵀ·V'.
            let last = c[n - 1]
            for j in 0..<n {
                let Wj = W + j * dk, kj = kc + j * dk, e = expf(last - c[j])
                for d in 0..<dk { Wj[d] = kj[d] * e }
            }
            SmallMatrix.gemm(transA: true, m: dk, n: dv, k: n, a: W, lda: dk, b: U, ldb: dv, beta: ec[n - 1],
                             c: S, ldc: dv)
            start += n
        }
    }
}
