import Testing
@testable import TendonTensor

/// Kernels against torch outputs (Tools/reference/tensor_fixtures.py), every path of this CPU.
@Suite struct KernelTests {
    let f: Fixture
    init() throws { f = try Fixture("kernels.json") }

    /// Runs `body` for each available path on a copy of `input` and returns the outputs by path.
    func eachPath(_ input: [Float], _ body: (UnsafeMutablePointer<Float>, KernelPath) -> Void) -> [(KernelPath, [Float])] {
        KernelPath.available.map { path in
            var buffer = input
            buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, path) }
            return (path, buffer)
        }
    }

    @Test func rmsNormBothFormsMatchTorch() {
        let x = f.floats("rms_x"), w = f.floats("rms_w"), T = f.int("rms_T"), D = f.int("rms_D")
        #expect(x.count == T * D && w.count == D)
        for (form, key) in [(RMSNormForm.multiply, "rms_mul"), (.onePlus, "rms_one_plus")] {
            let want = f.floats(key)
            for (path, got) in eachPath(x, { p, path in
                w.withUnsafeBufferPointer { Kernels.rmsNorm(p, weight: $0.baseAddress, rows: T, dim: D, eps: 1e-6, form: form, into: p, path: path) }
            }) {
                #expect(maxRelativeError(got, want, floor: 1e-3) < 1e-5, "\(form) \(path)")
            }
        }
    }

    @Test func layerNormL2AndSoftmaxMatchTorch() {
        let x = f.floats("rms_x"), T = f.int("rms_T"), D = f.int("rms_D")
        for (path, got) in eachPath(x, { p, path in Kernels.layerNorm(p, rows: T, dim: D, eps: 1e-6, into: p, path: path) }) {
            #expect(maxRelativeError(got, f.floats("layernorm")) < 1e-5, "layernorm \(path)")
        }
        for (path, got) in eachPath(x, { p, path in Kernels.l2Normalize(p, rows: T, dim: D, eps: 1e-6, into: p, path: path) }) {
            #expect(maxRelativeError(got, f.floats("l2norm")) < 1e-5, "l2 \(path)")
        }
        for (path, got) in eachPath(x.map { $0 * 3 }, { p, path in Kernels.softmax(p, rows: T, dim: D, path: path) }) {
            #expect(maxRelativeError(got, f.floats("softmax"), floor: 1e-6) < 1e-5, "softmax \(path)")
        }
    }

    @Test func activationsMatchTorch() {
        let x = f.floats("act_x")
        #expect(x.count == 97)
        let cases: [(String, (UnsafeMutablePointer<Float>, KernelPath) -> Void)] = [
            ("silu", { p, path in Kernels.silu(p, count: 97, into: p, path: path) }),
            ("sigmoid", { p, path in Kernels.sigmoid(p, count: 97, into: p, path: path) }),
            ("gelu_tanh", { p, path in Kernels.geluTanh(p, count: 97, into: p, path: path) }),
            ("softplus", { p, _ in Kernels.softplus(p, count: 97, into: p) }),
        ]
        for (name, run) in cases {
            for (path, got) in eachPath(x, run) {
                // torch evaluates 0.5·x·(1+tanh u), which cancels in the negative tail (its own absolute error
                // there is ~|x|·2⁻²⁴); our SIMD GELU uses x/(1+e^{−2u}) without the cancellation, so GELU is
                // compared with an absolute floor of 1e-6, the others relative down to 1e-4.
                let floor: Float = name == "gelu_tanh" ? 0.1 : 1e-4
                #expect(maxRelativeError(got, f.floats(name), floor: floor) < 1e-5, "\(name) \(path) \(maxRelativeError(got, f.floats(name), floor: floor))")
            }
        }
    }

    /// SIMD twins against the scalar reference over a wider range than the torch fixture.
    @Test func fastPathsMatchScalarTwins() {
        var rng = SplitMix(seed: 5)
        let x = (0..<1003).map { _ in rng.gaussian() * 6 }
        let runs: [(String, Float, (UnsafeMutablePointer<Float>, KernelPath) -> Void)] = [
            ("silu", 1e-4, { p, path in Kernels.silu(p, count: 1003, into: p, path: path) }),
            ("sigmoid", 1e-4, { p, path in Kernels.sigmoid(p, count: 1003, into: p, path: path) }),
            ("gelu", 0.1, { p, path in Kernels.geluTanh(p, count: 1003, into: p, path: path) }),
            ("softmax", 1e-6, { p, path in Kernels.softmax(p, rows: 1, dim: 1003, path: path) }),
            ("rms", 1e-3, { p, path in Kernels.rmsNorm(p, weight: nil, rows: 1, dim: 1003, eps: 1e-6, into: p, path: path) }),
            ("layernorm", 1e-3, { p, path in Kernels.layerNorm(p, rows: 1, dim: 1003, eps: 1e-6, into: p, path: path) }),
        ]
        for (name, floor, run) in runs {
            let outs = eachPath(x, run)
            for (path, got) in outs.dropFirst() {
                #expect(maxRelativeError(got, outs[0].1, floor: floor) < 1e-5, "\(name) \(path)")
            }
        }
    }

    @Test func dotAxpyAndStridedRowsMatchDoubleSums() {
        var rng = SplitMix(seed: 9)
        let n = 77, keys = 13, stride = 3 * n, T = 3
        let a = (0..<(T * n)).map { _ in rng.gaussian() }, cache = (0..<(keys * stride)).map { _ in rng.gaussian() }
        for path in KernelPath.available {
            let want = zip(a[0..<n], cache[0..<n]).map { Double($0) * Double($1) }.reduce(0, +)
            #expect(abs(Double(Kernels.dot(a, cache, count: n, path: path)) - want) < 1e-4, "dot \(path)")
            var y = [Float](repeating: 0, count: T * keys)
            Kernels.dotRows(a, rows: T, cache, count: keys, stride: stride, inFeatures: n, into: &y, ldy: keys, path: path)
            for t in 0..<T {
                for j in 0..<keys {
                    let w = (0..<n).map { Double(a[t * n + $0]) * Double(cache[j * stride + $0]) }.reduce(0, +)
                    #expect(abs(Double(y[t * keys + j]) - w) < 1e-4, "dotRows \(path) t \(t) key \(j)")
                }
            }
            var acc = [Float](repeating: 1, count: n)
            Kernels.axpy(0.5, a, into: &acc, count: n, path: path)
            #expect(acc == a[0..<n].map { 1 + 0.5 * $0 }, "axpy \(path)")
        }
    }

    @Test func partialInterleavedMRoPEMatchesTransformers() {
        let H = f.int("rope_heads"), hd = f.int("rope_head_dim"), T = f.int("rope_T"), rd = f.int("rope_rotary_dim")
        let rope = RotaryEmbedding(rotaryDim: rd, theta: f.double("rope_theta"), mropeSection: f.ints("rope_mrope_section"))
        let torchInvFreq = f.floats("rope_inv_freq")
        #expect(rope.invFreq.count == torchInvFreq.count)
        #expect(maxRelativeError(rope.invFreq, torchInvFreq, floor: 0) < 1e-6)
        #expect((0..<4).map(rope.axis(ofFrequency:)) == [0, 1, 2, 0])
        let positions = f.intRows("rope_positions").flatMap { $0 }.map(Int32.init)
        #expect(positions.count == 3 * T)
        var cos = [Float](repeating: 0, count: T * rd), sin = cos
        rope.tables(positions: positions, axes: 3, tokens: T, cos: &cos, sin: &sin)
        let q = f.floats("rope_q")
        for (path, got) in eachPath(q, { p, path in rope.apply(p, tokens: T, heads: H, headDim: hd, cos: cos, sin: sin, path: path) }) {
            #expect(maxRelativeError(got, f.floats("rope_mrope_out")) < 1e-5, "mrope \(path)")
            // Dims past rotaryDim pass through untouched.
            #expect((0..<(T * H)).allSatisfy { r in (rd..<hd).allSatisfy { got[r * hd + $0] == q[r * hd + $0] } })
        }
    }

    @Test func fullHeadRoPEMatchesTorch() {
        let H = f.int("rope_heads"), hd = f.int("rope_head_dim"), T = f.int("rope_T")
        let rope = RotaryEmbedding(rotaryDim: hd, theta: 10000)
        let positions = f.ints("rope_full_positions").map(Int32.init)
        var cos = [Float](repeating: 0, count: T * hd), sin = cos
        rope.tables(positions: positions, axes: 1, tokens: T, cos: &cos, sin: &sin)
        for (path, got) in eachPath(f.floats("rope_q"), { p, path in rope.apply(p, tokens: T, heads: H, headDim: hd, cos: cos, sin: sin, path: path) }) {
            // Position 5000 magnifies one-ulp differences of inv_freq in the angle; 1e-4 there.
            #expect(maxRelativeError(got, f.floats("rope_full_out"), floor: 1e-2) < 1e-4, "rope \(path)")
        }
    }

    @Test func causalConvMatchesTorchInPrefillAndDecode() {
        let C = f.int("conv_C"), k = f.int("conv_k"), T = f.int("conv_T")
        let x = f.floats("conv_x"), w = f.floats("conv_w"), want = f.floats("conv_y")
        var y = [Float](repeating: 0, count: T * C)
        CausalConv1d.forward(x, tokens: T, channels: C, kernel: k, weight: w, state: nil, into: &y)
        #expect(maxRelativeError(y, want) < 1e-5)
        // Prefill 4 tokens, then decode one at a time with the state: same outputs.
        var state = [Float](repeating: 0, count: (k - 1) * C)
        var out = [Float](repeating: 0, count: T * C)
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { xs in
                CausalConv1d.forward(xs.baseAddress!, tokens: 4, channels: C, kernel: k, weight: w, state: &state, into: o.baseAddress!)
                for t in 4..<T {
                    CausalConv1d.forward(xs.baseAddress! + t * C, tokens: 1, channels: C, kernel: k, weight: w,
                                         state: &state, into: o.baseAddress! + t * C)
                }
            }
        }
        #expect(maxRelativeError(out, want) < 1e-5)
        #expect(Array(state) == Array(x[((T - k + 1) * C)...]))
    }

    /// The 8-channel SIMD form gives exactly the scalar twin's outputs and state: prefill without and with
    /// a state, a decode step, a channel count with a scalar tail, and more taps than the SIMD form holds.
    @Test(arguments: [(1027, 4, 37), (16, 2, 5), (24, 9, 11), (40, 4, 2)])
    func causalConvSIMDEqualsScalar(_ C: Int, _ k: Int, _ T: Int) {
        var seed: UInt32 = 12345
        func next() -> Float { seed = seed &* 1_664_525 &+ 1_013_904_223; return Float(seed >> 8) / Float(1 << 24) - 0.5 }
        let x = (0..<(T * C)).map { _ in next() }, w = (0..<(C * k)).map { _ in next() }
        let start = (0..<((k - 1) * C)).map { _ in next() }
        for withState in [false, true] {
            for tokens in [T, 1] {
                var s1 = start, s2 = start
                var y1 = [Float](repeating: .nan, count: tokens * C), y2 = y1
                if withState {
                    CausalConv1d.forward(x, tokens: tokens, channels: C, kernel: k, weight: w, state: &s1, into: &y1)
                    CausalConv1d.forwardScalar(x, tokens: tokens, channels: C, kernel: k, weight: w, state: &s2, into: &y2)
                } else {
                    CausalConv1d.forward(x, tokens: tokens, channels: C, kernel: k, weight: w, state: nil, into: &y1)
                    CausalConv1d.forwardScalar(x, tokens: tokens, channels: C, kernel: k, weight: w, state: nil, into: &y2)
                }
                #expect(y1 == y2, "C=\(C) k=\(k) T=\(tokens) state \(withState)")
                #expect(s1 == s2)
                #expect(!y1.contains { $0.isNaN })
            }
        }
    }
}
