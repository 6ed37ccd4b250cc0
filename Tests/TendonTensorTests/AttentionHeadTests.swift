import Foundation
import Testing
@testable import TendonTensor

/// `Kernels.attentionHead` on every path of this CPU against a double-precision softmax(q·Kᵀ·scale)·V, on
/// strided layouts like the action expert's (heads interleaved in rows of `width`), including shapes whose
/// column counts leave partial vectors and an empty segment.
@Suite struct AttentionHeadTests {
    struct Case {
        var H, hd, T, A: Int
    }

    @Test(arguments: [Case(H: 50, hd: 64, T: 110, A: 50), Case(H: 7, hd: 24, T: 19, A: 5), Case(H: 13, hd: 16, T: 0, A: 9),
                      Case(H: 3, hd: 80, T: 70, A: 0), Case(H: 1, hd: 8, T: 1, A: 1)])
    func matchesDoubleReferenceOnEveryPath(_ c: Case) {
        var rng = SplitMix(seed: UInt64(c.H * 1000 + c.T * 10 + c.A))
        let heads = 2, width = heads * c.hd, h = 1, col = h * c.hd
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in rng.gaussian() * 1.5 } }
        let q = random(c.H * width), ka = random(c.A * width), va = random(c.A * width)
        let kc = random(c.T * width), vc = random(c.T * width)
        // Context keys transposed per head [heads, hd, T], as the action expert caches them.
        var kcT = [Float](repeating: 0, count: max(1, kc.count))
        for t in 0..<c.T { for j in 0..<width { kcT[j * c.T + t] = kc[t * width + j] } }
        let scale = 1 / Float(c.hd).squareRoot()

        var want = [Double](repeating: 0, count: c.H * c.hd)
        for t in 0..<c.H {
            var logits: [Double] = []
            for s in 0..<c.T { logits.append((0..<c.hd).map { Double(q[t * width + col + $0]) * Double(kc[s * width + col + $0]) }.reduce(0, +)) }
            for s in 0..<c.A { logits.append((0..<c.hd).map { Double(q[t * width + col + $0]) * Double(ka[s * width + col + $0]) }.reduce(0, +)) }
            let m = logits.map { $0 * Double(scale) }.max() ?? 0
            let e = logits.map { Foundation.exp($0 * Double(scale) - m) }, sum = e.reduce(0, +)
            for i in 0..<c.hd {
                var acc = 0.0
                for s in 0..<c.T { acc += e[s] / sum * Double(vc[s * width + col + i]) }
                for s in 0..<c.A { acc += e[c.T + s] / sum * Double(va[s * width + col + i]) }
                want[t * c.hd + i] = acc
            }
        }

        let sentinel: Float = 12345
        for path in KernelPath.available {
            var out = [Float](repeating: sentinel, count: c.H * width)
            var scratch = [Float](repeating: .nan, count: Kernels.attentionScratchCount(queries: c.H, contextTokens: c.T,
                                                                                       actionTokens: c.A, headDim: c.hd))
            q.withUnsafeBufferPointer { qp in
                kcT.withUnsafeBufferPointer { kp in
                    vc.withUnsafeBufferPointer { vcp in
                        ka.withUnsafeBufferPointer { kap in
                            va.withUnsafeBufferPointer { vap in
                                Kernels.attentionHead(queries: c.H, headDim: c.hd, scale: scale, q: qp.baseAddress! + col, ldq: width,
                                                      contextTokens: c.T, contextKeysT: kp.baseAddress! + col * c.T, ldkc: c.T,
                                                      contextValues: vcp.baseAddress! + col, ldvc: width,
                                                      actionTokens: c.A, actionKeys: kap.baseAddress! + col, ldka: width,
                                                      actionValues: vap.baseAddress! + col, ldva: width,
                                                      scratch: &scratch, into: &out + col, ldo: width, path: path)
                            }
                        }
                    }
                }
            }
            var worst = 0.0, untouched = true
            for t in 0..<c.H {
                for j in 0..<width {
                    let got = out[t * width + j]
                    if j < col || j >= col + c.hd {
                        untouched = untouched && got == sentinel
                    } else {
                        worst = max(worst, abs(Double(got) - want[t * c.hd + j - col]))
                    }
                }
            }
            #expect(untouched, "\(path) \(c): wrote outside its head's columns")
            #expect(worst < 2e-5, "\(path) \(c): max |Δ| \(worst)")
        }
    }
}
