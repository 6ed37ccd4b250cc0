import CTendonKernels
import Foundation
import Testing
@testable import TendonTensor

@Suite struct PackedWeightTests {
    static let types: [DType] = [.q8_0, .q4_0, .q4_K, .q5_K]

    /// The VNNI kernel against its scalar twin (bit-identical: exact int32 sums, same float ops) and both
    /// against x·Wᵀ with W as its dtype decodes it (activation rounding only). Shapes cover the 4-row
    /// micro-kernel and its 1–3 row tails, 32- and 16-wide output tiles and a partial last panel.
    @Test(arguments: types)
    func vnniMatchesScalarTwinAndReference(_ dtype: DType) throws {
        let inF = 512
        var rng = SplitMix(seed: 77 + UInt64(dtype.rawValue))
        for outF in [37, 64, 80] {
            let wValues = (0..<(outF * inF)).map { _ in rng.gaussian() * 0.1 }
            let weight = try Tensor(wValues, shape: [outF, inF], name: "w").converted(to: dtype)
            let decoded = try weight.dequantized().toArray()
            let packed = try #require(PackedWeight(weight: weight))
            #expect(packed.byteCount == (outF + 15) / 16 * 16 * inF / 32 * (dtype == .q8_0 ? 40 : dtype == .q5_K ? 28 : 24))
            for T in [1, 5, 18, 23] {
                // A few large values make the activation block scales differ from block to block.
                let x = (0..<(T * inF)).map { i in rng.gaussian() * (i % 97 == 0 ? 8 : 1) }
                let want = LinearTests.reference(x, decoded, [Float](repeating: 0, count: outF), T: T, inF: inF, outF: outF)
                let scalar = try Self.run(packed, x, T: T, path: .scalar)
                // The outliers coarsen their blocks' rounding step: ~1 % instead of LinearTests' ~0.4 %.
                #expect(LinearTests.relativeRMS(scalar, want) < 0.02, "\(dtype) \(outF) T=\(T) \(LinearTests.relativeRMS(scalar, want))")
                #expect(LinearTests.relativeRMS(scalar, want) > 1e-4, "\(dtype): activations were not quantized")
                guard KernelPath.available.contains(.avx512vnni) else { continue }
                let fast = try Self.run(packed, x, T: T, path: .avx512vnni)
                #expect(fast == scalar, "\(dtype) out=\(outF) T=\(T): VNNI differs from the scalar twin")
                let pool = ThreadPool(threads: 2)
                let threaded = try Self.run(packed, x, T: T, path: .avx512vnni, pool: pool)
                #expect(threaded == scalar, "\(dtype) out=\(outF) T=\(T): threaded result differs")
            }
        }
    }

    static func run(_ packed: PackedWeight, _ x: [Float], T: Int, path: KernelPath, pool: ThreadPool? = nil,
                    activations: ActivationQuantization = .int8) throws -> [Float] {
        var y = [Float](repeating: .nan, count: T * packed.outFeatures)
        try x.withUnsafeBufferPointer { xp in
            try y.withUnsafeMutableBufferPointer { yp in
                try packed.multiply(xp.baseAddress!, rows: T, into: yp.baseAddress!, pool: pool, path: path,
                                    activations: activations)
            }
        }
        return y
    }

    /// Wide (15-bit) activations: the VNNI kernel equals its scalar twin bit for bit, and against x·Wᵀ in
    /// double with W as its dtype decodes it (so only activation rounding remains) the error is ~100× below
    /// int8 activations' on the same inputs. Outliers make neighbouring blocks' scales differ; values at
    /// ±16256 and at the split's boundaries (l = −64 / 63) are exercised by the scaled ramps.
    @Test(arguments: types)
    func wideActivationsMatchTwinAndAreExact(_ dtype: DType) throws {
        let inF = 512
        var rng = SplitMix(seed: 101 + UInt64(dtype.rawValue))
        for outF in [37, 80] {
            let weight = try Tensor((0..<(outF * inF)).map { _ in rng.gaussian() * 0.1 }, shape: [outF, inF], name: "w")
                .converted(to: dtype)
            let decoded = try weight.dequantized().toArray()
            let packed = try #require(PackedWeight(weight: weight))
            for T in [1, 6, 23] {
                var x = (0..<(T * inF)).map { i in rng.gaussian() * (i % 97 == 0 ? 8 : 1) }
                for i in 0..<min(64, x.count) { x[i] = Float(i - 32) * 0.37 }  // a ramp: every low-plane value
                var want = [Float](repeating: 0, count: T * outF)
                for t in 0..<T {
                    for o in 0..<outF {
                        var acc = 0.0
                        for i in 0..<inF { acc += Double(x[t * inF + i]) * Double(decoded[o * inF + i]) }
                        want[t * outF + o] = Float(acc)
                    }
                }
                let wide = try Self.run(packed, x, T: T, path: .scalar, activations: .wide)
                let narrow = try Self.run(packed, x, T: T, path: .scalar, activations: .int8)
                let eWide = LinearTests.relativeRMS(wide, want), eNarrow = LinearTests.relativeRMS(narrow, want)
                #expect(eWide < 2e-4, "\(dtype) out=\(outF) T=\(T): wide error \(eWide)")
                #expect(eWide * 30 < eNarrow, "\(dtype) out=\(outF) T=\(T): wide \(eWide) vs int8 \(eNarrow)")
                guard KernelPath.available.contains(.avx512vnni) else { continue }
                let fast = try Self.run(packed, x, T: T, path: .avx512vnni, activations: .wide)
                #expect(fast == wide, "\(dtype) out=\(outF) T=\(T): VNNI differs from the scalar twin")
                let threaded = try Self.run(packed, x, T: T, path: .avx512vnni, pool: ThreadPool(threads: 2), activations: .wide)
                #expect(threaded == wide, "\(dtype) out=\(outF) T=\(T): threaded result differs")
            }
        }
    }

    /// The wide quantizer: a = 128·h + l reproduces round(x/d) clamped to ±16256 with h, l in range, the
    /// block sum is Σa, and the 512-bit twin gives the same bytes.
    @Test func wideActivationQuantizerSplitsExactly() throws {
        var rng = SplitMix(seed: 6)
        let n = 256
        var x = (0..<n).map { _ in rng.gaussian() * 3 }
        for i in 32..<64 { x[i] = 0 }  // an all-zero block
        for i in 64..<96 { x[i] = Float(i - 80) * (16256 / 16) / 16256 * 5 }  // a ramp reaching ±amax exactly
        var h = [Int8](repeating: 0, count: n), l = h
        var d = [Float](repeating: 0, count: n / 32)
        var s = [Int32](repeating: 0, count: n / 32)
        tk_quantize_act_wide(x, Int64(n), &h, &l, &d, &s)
        for b in 0..<(n / 32) {
            var sum: Int32 = 0
            let amax = x[(32 * b)..<(32 * b + 32)].map(abs).max()!
            #expect(d[b] == amax / 16256)
            for i in (32 * b)..<(32 * b + 32) {
                let a = Int32(h[i]) * 128 + Int32(l[i])
                #expect((-127...127).contains(h[i]) && (-64...63).contains(l[i]))
                let want = d[b] == 0 ? 0 : Int32(max(-16256, min(16256, (x[i] * (1 / d[b])).rounded(.toNearestOrEven))))
                #expect(a == want, "x[\(i)] = \(x[i]): \(a) vs \(want)")
                sum += a
            }
            #expect(s[b] == sum)
        }
        guard KernelPath.available.contains(.avx512vnni) else { return }
        var h1 = h, l1 = l, d1 = d, s1 = s
        tk_quantize_act_wide_path(Int32(TK_PATH_VNNI), x, Int64(n), &h1, &l1, &d1, &s1)
        #expect(h1 == h && l1 == l && d1 == d && s1 == s)
    }

    @Test func activationQuantizationFollowsTheWeightType() {
        #expect(ActivationQuantization.preferred(for: .q8_0) == .wide)
        #expect(ActivationQuantization.preferred(for: .q4_0) == .int8)
        #expect(ActivationQuantization.preferred(for: .q4_K) == .int8)
        #expect(ActivationQuantization.preferred(for: .q5_K) == .int8)
    }

    /// The 512-bit activation quantizer gives the scalar one's bytes, scales and sums.
    @Test func activationQuantizerTwinIsExact() throws {
        guard KernelPath.available.contains(.avx512vnni) else { return }
        var rng = SplitMix(seed: 5)
        let n = 256
        var x = (0..<n).map { _ in rng.gaussian() * 3 }
        x[0] = 0; for i in 32..<64 { x[i] = 0 }  // an all-zero block
        x[70] = 127.5 / 127  // ties and values at the clamp
        var q0 = [Int8](repeating: 0, count: n), q1 = q0
        var d0 = [Float](repeating: 0, count: n / 32), d1 = d0
        var s0 = [Int32](repeating: 0, count: n / 32), s1 = s0
        tk_quantize_act(x, Int64(n), &q0, &d0, &s0)
        tk_quantize_act_path(Int32(TK_PATH_VNNI), x, Int64(n), &q1, &d1, &s1)
        #expect(q0 == q1 && d0 == d1 && s0 == s1)
    }

    @Test func cacheFollowsTheStorage() throws {
        var rng = SplitMix(seed: 9)
        let weight = try Tensor((0..<(32 * 64)).map { _ in rng.gaussian() }, shape: [32, 64]).converted(to: .q8_0)
        let a = try #require(PackedWeight.cached(for: weight))
        #expect(PackedWeight.cached(for: weight) === a)
        // Another view of the same storage (another offset) is another weight.
        var view = weight
        view.shape = [16, 64]
        view.offset = 16 * 68
        let b = try #require(PackedWeight.cached(for: view))
        #expect(b !== a && b.outFeatures == 16)
        #expect(PackedWeight.cached(for: try weight.dequantized()) == nil)  // f32 is not packed
        #expect(PackedWeight.cachedBytes(in: weight.storage) == a.byteCount + b.byteCount)
        // The packed copies go with the storage.
        weak var released: PackedWeight?
        do {
            let other = try Tensor((0..<(16 * 64)).map { _ in rng.gaussian() }, shape: [16, 64]).converted(to: .q4_0)
            released = PackedWeight.cached(for: other)
            #expect(released != nil)
        }
        #expect(released == nil)
    }

    @Test func linearTakesThePackedPathForPrefill() throws {
        guard KernelPath.available.contains(.avx512vnni) else { return }
        var rng = SplitMix(seed: 11)
        let inF = 256, outF = 48, T = 20
        let weight = try Tensor((0..<(outF * inF)).map { _ in rng.gaussian() }, shape: [outF, inF]).converted(to: .q4_0)
        let x = (0..<(T * inF)).map { _ in rng.gaussian() }
        #expect(Linear.usesPackedGEMM(.q4_0, rows: T, path: .avx512vnni))
        #expect(!Linear.usesPackedGEMM(.q4_0, rows: T, path: .avx512vnni, blas: .always))
        #expect(!Linear.usesPackedGEMM(.q6_K, rows: T, path: .avx512vnni))
        let viaLinear = try linear(Tensor(x, shape: [T, inF]), weight, path: .avx512vnni).toArray()
        let direct = try Self.run(try #require(PackedWeight(weight: weight)), x, T: T, path: .scalar)
        #expect(viaLinear == direct)
    }

    /// Packing hands a borrowed weight's pages back to the kernel; the original must read the same after
    /// that, whether it lives in a read-only file mapping or in memory owned by another storage.
    @Test func releasedPagesKeepTheirContents() throws {
        var rng = SplitMix(seed: 21)
        let outF = 64, inF = 1024  // 64 · 1088 bytes: several whole pages
        let weight = try Tensor((0..<(outF * inF)).map { _ in rng.gaussian() }, shape: [outF, inF]).converted(to: .q8_0)
        let bytes = weight.storage.byteCount
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("packed-\(getpid()).bin")
        try Data(bytes: weight.storage.base, count: bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let fd = open(url.path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let map = try #require(mmap(nil, bytes, PROT_READ, MAP_PRIVATE, fd, 0))
        try #require(map != MAP_FAILED)
        defer { munmap(map, bytes) }
        final class Mapping {}
        let owner = TensorStorage(byteCount: bytes)
        owner.base.copyMemory(from: weight.storage.base, byteCount: bytes)
        let views = [
            Tensor(name: "mapped", dtype: .q8_0, shape: [outF, inF],
                   storage: TensorStorage(borrowing: map, byteCount: bytes, owner: Mapping())),
            Tensor(name: "borrowed", dtype: .q8_0, shape: [outF, inF],
                   storage: TensorStorage(borrowing: owner.base, byteCount: bytes, owner: owner)),
        ]
        let want = try weight.dequantized().toArray()
        for view in views {
            #expect(PackedWeight.cached(for: view) != nil)
            #expect(try view.dequantized().toArray() == want, "\(view.name)")
        }
    }
}
