import Foundation
import Testing
import TendonTensor
@testable import TendonModel

/// The chunked (prefill) and recurrent (decode) forms of the gated delta rule compute the same outputs and
/// final state, across chunk boundaries, partial last chunks, grouped value heads and a non-zero start state.
@Suite struct GatedDeltaRuleTests {
    struct Inputs {
        var q, k, v, g, beta, state: [Float]
        var shape: GatedDeltaRule.Shape
    }

    static func inputs(tokens: Int, keyHeads: Int, valueHeads: Int, keyDim: Int, valueDim: Int, seed: UInt64) -> Inputs {
        var rng = SplitMix(seed)
        func normals(_ n: Int, _ s: Float) -> [Float] { (0..<n).map { _ in rng.normal() * s } }
        let shape = GatedDeltaRule.Shape(tokens: tokens, keyHeads: keyHeads, valueHeads: valueHeads,
                                         keyDim: keyDim, valueDim: valueDim)
        return Inputs(q: normals(tokens * keyHeads * keyDim, 1), k: normals(tokens * keyHeads * keyDim, 1),
                      v: normals(tokens * valueHeads * valueDim, 1),
                      g: (0..<(tokens * valueHeads)).map { _ in -0.3 * rng.uniform() },
                      beta: (0..<(tokens * valueHeads)).map { _ in rng.uniform() },
                      state: normals(valueHeads * keyDim * valueDim, 0.5), shape: shape)
    }

    @Test(arguments: [(150, 64), (37, 16), (64, 64), (5, 64), (33, 8)])
    func chunkedEqualsRecurrent(_ tokens: Int, _ chunk: Int) {
        let x = Self.inputs(tokens: tokens, keyHeads: 2, valueHeads: 4, keyDim: 8, valueDim: 6, seed: UInt64(tokens * 100 + chunk))
        var s1 = x.state, s2 = x.state
        let r = GatedDeltaRule.recurrent(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &s1)
        let c = GatedDeltaRule.chunked(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &s2,
                                       chunkSize: chunk)
        let outErr = relativeError(c, r), stateErr = relativeError(s2, s1)
        print("gated delta rule T=\(tokens) chunk=\(chunk): output rel err \(outErr), state rel err \(stateErr)")
        #expect(outErr < 1e-5)
        #expect(stateErr < 1e-5)
        #expect(relativeError(s1, x.state) > 1e-2)  // the state did move
    }

    /// The reference model's head sizes (4 key / 8 value heads of 64, a full and a partial 64-token chunk),
    /// where the chunk products are real sgemm/strsm blocks rather than the tiny shapes above.
    @Test func chunkedEqualsRecurrentAtModelSizes() {
        var x = Self.inputs(tokens: 110, keyHeads: 4, valueHeads: 8, keyDim: 64, valueDim: 64, seed: 11)
        x.g = x.g.map { $0 * 0.2 }  // decays like the model's (−e^{A_log}·softplus), so the state keeps memory
        var s1 = x.state, s2 = x.state
        let r = GatedDeltaRule.recurrent(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &s1)
        let c = GatedDeltaRule.chunked(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &s2,
                                       pool: ThreadPool(threads: 2))
        let outErr = relativeError(c, r), stateErr = relativeError(s2, s1)
        print("gated delta rule T=110 dk=dv=64: output rel err \(outErr), state rel err \(stateErr)")
        #expect(outErr < 1e-5)
        #expect(stateErr < 1e-5)
    }

    /// Heads split over a thread pool give the single-thread result.
    @Test func chunkedOverAThreadPoolEqualsRecurrent() {
        let x = Self.inputs(tokens: 90, keyHeads: 2, valueHeads: 6, keyDim: 8, valueDim: 4, seed: 3)
        var s1 = x.state, s2 = x.state
        let r = GatedDeltaRule.recurrent(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &s1)
        let c = GatedDeltaRule.chunked(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &s2,
                                       chunkSize: 32, pool: ThreadPool(threads: 2))
        #expect(relativeError(c, r) < 1e-5)
        #expect(relativeError(s2, s1) < 1e-5)
    }

    /// One token at a time through the recurrent form equals one recurrent call over all tokens, and the
    /// chunked form continued from a state equals running it in one go.
    @Test func splittingTheSequenceKeepsTheResult() {
        let x = Self.inputs(tokens: 20, keyHeads: 1, valueHeads: 3, keyDim: 4, valueDim: 5, seed: 7)
        var whole = x.state
        let all = GatedDeltaRule.chunked(q: x.q, k: x.k, v: x.v, g: x.g, beta: x.beta, shape: x.shape, state: &whole,
                                         chunkSize: 8)
        var split = x.state
        var parts: [Float] = []
        let cut = 11
        for (lo, hi) in [(0, cut), (cut, 20)] {
            var s = x.shape; s.tokens = hi - lo
            let qk = x.shape.keyHeads * x.shape.keyDim, vv = x.shape.valueHeads * x.shape.valueDim, hv = x.shape.valueHeads
            parts += GatedDeltaRule.chunked(q: Array(x.q[(lo * qk)..<(hi * qk)]), k: Array(x.k[(lo * qk)..<(hi * qk)]),
                                            v: Array(x.v[(lo * vv)..<(hi * vv)]), g: Array(x.g[(lo * hv)..<(hi * hv)]),
                                            beta: Array(x.beta[(lo * hv)..<(hi * hv)]), shape: s, state: &split, chunkSize: 8)
        }
        #expect(relativeError(parts, all) < 1e-5)
        #expect(relativeError(split, whole) < 1e-5)
    }
}

/// Deterministic test randomness (SplitMix64 + Box–Muller).
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}
