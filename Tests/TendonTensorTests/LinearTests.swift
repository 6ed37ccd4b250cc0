import CTendonKernels
import Testing
@testable import TendonTensor

@Suite struct LinearTests {
    /// x·Wᵀ+b in double with the weight as its dtype decodes it: the exact answer for float weights,
    /// and the answer up to activation rounding for quantized ones.
    static func reference(_ x: [Float], _ w: [Float], _ b: [Float], T: Int, inF: Int, outF: Int) -> [Float] {
        var y = [Float](repeating: 0, count: T * outF)
        for t in 0..<T {
            for o in 0..<outF {
                var acc = Double(b[o])
                for i in 0..<inF { acc += Double(x[t * inF + i]) * Double(w[o * inF + i]) }
                y[t * outF + o] = Float(acc)
            }
        }
        return y
    }

    static func maxErrorOverRMS(_ a: [Float], _ b: [Float]) -> Float {
        let rms = (b.map { Double($0) * Double($0) }.reduce(0, +) / Double(max(b.count, 1))).squareRoot()
        return Float(zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0) / Float(max(rms, 1e-30))
    }

    static func relativeRMS(_ a: [Float], _ b: [Float]) -> Float {
        let err = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        let norm = b.map { Double($0) * Double($0) }.reduce(0, +)
        return Float((err / max(norm, 1e-30)).squareRoot())
    }

    /// Every dtype × every path of this CPU × T ∈ {1, 3, 40}; out = 37 exercises the 4-row tails.
    @Test(arguments: DType.allCases)
    func everyPathMatchesTheReference(_ dtype: DType) throws {
        let inF = dtype.blockSize == 256 ? 512 : 96, outF = 37
        var rng = SplitMix(seed: UInt64(dtype.rawValue) + 1)
        let wValues = (0..<(outF * inF)).map { _ in rng.gaussian() * 0.1 }
        let bias = (0..<outF).map { _ in rng.gaussian() }
        let weight = try Tensor(wValues, shape: [outF, inF], name: "w").converted(to: dtype)
        let decoded = try weight.dequantized().toArray()
        let pool = ThreadPool(threads: 2)
        for T in [1, 3, 40, 84] {
            let x = Tensor((0..<(T * inF)).map { _ in rng.gaussian() }, shape: [T, inF])
            let want = Self.reference(x.toArray(), decoded, bias, T: T, inF: inF, outF: outF)
            let scalar = try linear(x, weight, bias: Tensor(bias, shape: [outF]), path: .scalar).toArray()
            // Quantized weights see int8 activations: ~0.4 % RMS error from rounding x per 32-block.
            let tolerance: Float = dtype.isQuantized ? 0.01 : 1e-5
            #expect(Self.relativeRMS(scalar, want) < tolerance, "\(dtype) T=\(T) scalar \(Self.relativeRMS(scalar, want))")
            if dtype.isQuantized {
                // The scalar twin really is the int8 path: rounded activations leave a visible error.
                #expect(Self.relativeRMS(scalar, want) > 1e-4, "\(dtype) T=\(T): scalar path did not quantize activations")
            }
            for path in KernelPath.available where path != .scalar {
                let fast = try linear(x, weight, bias: Tensor(bias, shape: [outF]), path: path).toArray()
                // Same integer dots, different float summation order (or OpenBLAS for f32, T ≥ 32); Q4_K's
                // min term cancels, so errors are measured against the output's scale. From
                // tiledMinRows(for:path:) rows quantized weights are dequantized for sgemm: exact activations.
                let packed = Linear.usesPackedGEMM(dtype, rows: T, path: path)
                let tiled = dtype.isQuantized && !packed && T >= Linear.tiledMinRows(for: dtype, path: path) && !BLASInfo.isGenericCore
                // The packed GEMM gives Q8_0 15-bit activations (PackedWeightTests checks them bit for bit
                // against their own twin): here they must be near-exact, far closer than the int8 twin.
                let wide = packed && ActivationQuantization.preferred(for: dtype) == .wide
                let twin = tiled || wide ? want : scalar
                let bound: Float = wide ? 1e-3 : 1e-5
                #expect(Self.maxErrorOverRMS(fast, twin) < bound, "\(dtype) T=\(T) \(path) \(Self.maxErrorOverRMS(fast, twin))")
                if wide { #expect(Self.maxErrorOverRMS(fast, want) * 10 < Self.maxErrorOverRMS(scalar, want)) }
                let ours = try linear(x, weight, bias: Tensor(bias, shape: [outF]), pool: pool, path: path, blas: .never).toArray()
                #expect(Self.maxErrorOverRMS(ours, wide ? want : scalar) < bound, "\(dtype) T=\(T) \(path) without BLAS")
                let threaded = try linear(x, weight, bias: Tensor(bias, shape: [outF]), pool: pool, path: path).toArray()
                // Our kernels split output rows, so each value is computed identically; OpenBLAS on a slice of
                // columns may block (and so round) differently.
                let usesBLAS = !packed && T >= (dtype == .f32 ? Linear.blasMinRows : Linear.tiledMinRows(for: dtype, path: path))
                let same = usesBLAS ? Self.maxErrorOverRMS(threaded, fast) < 1e-5 : threaded == fast
                #expect(same, "\(dtype) T=\(T) \(path) threaded differs by \(Self.maxErrorOverRMS(threaded, fast))")
            }
        }
    }

    /// The unpacked row-dot kernels (tk_gemm_q) on every SIMD path against their scalar twin. On a VNNI CPU
    /// `Linear` packs Q8_0/Q4_0/Q4_K/Q5_K, so these paths run only where packing does not (or on AVX2): this
    /// calls them directly, with the same int8 activations, T with and without the 4-row tails.
    @Test(arguments: DType.allCases.filter(\.isQuantized))
    func rowDotKernelsMatchScalarTwin(_ dtype: DType) throws {
        let inF = 512, outF = 37
        var rng = SplitMix(seed: 500 + UInt64(dtype.rawValue))
        let weight = try Tensor((0..<(outF * inF)).map { _ in rng.gaussian() * 0.1 }, shape: [outF, inF]).converted(to: dtype)
        let rowBytes = try #require(weight.rowBytes)
        for T in [1, 6] {
            let x = (0..<(T * inF)).map { _ in rng.gaussian() }
            var q = [Int8](repeating: 0, count: T * inF), d = [Float](repeating: 0, count: T * inF / 32)
            var s = [Int32](repeating: 0, count: T * inF / 32)
            for t in 0..<T { tk_quantize_act(Array(x[(t * inF)..<((t + 1) * inF)]), Int64(inF), &q[t * inF], &d[t * inF / 32], &s[t * inF / 32]) }
            func run(_ path: KernelPath) -> [Float] {
                var y = [Float](repeating: .nan, count: T * outF)
                let status = tk_gemm_q(Int32(dtype.rawValue), path.rawValue, Int64(inF), weight.rawPointer, rowBytes, 0, Int64(outF),
                                       Int64(T), q, d, s, &y, Int64(outF))
                #expect(status == 0)
                return y
            }
            let scalar = run(.scalar)
            #expect(Self.relativeRMS(scalar, Self.reference(x, try weight.dequantized().toArray(), [Float](repeating: 0, count: outF),
                                                            T: T, inF: inF, outF: outF)) < 0.01)
            for path in KernelPath.available where path != .scalar {
                #expect(Self.maxErrorOverRMS(run(path), scalar) < 1e-5, "\(dtype) T=\(T) \(path)")
            }
        }
    }

    @Test func badShapesAreRejected() throws {
        let w = Tensor([Float](repeating: 0, count: 12), shape: [3, 4])
        let x = Tensor([Float](repeating: 0, count: 10), shape: [2, 5])
        #expect(throws: TensorError.self) { _ = try linear(x, w) }
        let x4 = Tensor([Float](repeating: 1, count: 8), shape: [2, 4])
        #expect(throws: TensorError.self) { _ = try linear(x4, w, bias: Tensor([1, 2], shape: [2])) }
        let y = try linear(x4, w, bias: Tensor([1, 2, 3], shape: [3]))
        #expect(y.shape == [2, 3] && y.toArray() == [1, 2, 3, 1, 2, 3])
        // A weight whose storage is too small (e.g. a truncated file) is an error, not a read past the end.
        let short = Tensor(name: "short", dtype: .q8_0, shape: [4, 32], storage: TensorStorage(byteCount: 34 * 3))
        #expect(throws: TensorError.self) { _ = try linear(Tensor([Float](repeating: 1, count: 32), shape: [1, 32]), short) }
    }
}

@Suite struct ThreadPoolTests {
    @Test func everyIndexRunsExactlyOnce() {
        let pool = ThreadPool(threads: 3)
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
        defer { counts.deallocate() }
        for round in 0..<200 {
            let n = 1 + (round * 37) % 1000
            counts.initialize(repeating: 0)
            pool.parallelFor(n, grain: round % 5 + 1) { range in
                for i in range { counts[i] += 1 }
            }
            #expect(counts[0..<n].allSatisfy { $0 == 1 }, "round \(round) n \(n)")
            #expect(counts[n...].allSatisfy { $0 == 0 })
        }
    }

    @Test func poolsAreReleasedAndTheirThreadsEnd() {
        for _ in 0..<20 {
            let pool = ThreadPool(threads: 2)
            var hits = 0
            pool.parallelFor(1) { _ in hits += 1 }
            #expect(hits == 1)
        }
    }
}
