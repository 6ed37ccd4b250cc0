import Foundation
import Testing
@testable import TendonTensor

/// Block formats against gguf.quants (fixtures from Tools/reference/tensor_fixtures.py).
@Suite struct QuantizationTests {
    @Test func f16AndBF16EncodingMatchNumpyAndTorch() throws {
        let f = try Fixture("conversions.json")
        let x = f.floats("f32"), h = f.u16("f16_u16"), b = f.u16("bf16_u16")
        #expect(x.count > 3000 && x.count == h.count && x.count == b.count)
        var halfMismatches = 0, bfMismatches = 0
        for i in x.indices {
            if Half.fromFloat(x[i]) != h[i] { halfMismatches += 1 }
            // torch's vectorised cast turns NaN into 0xFFFF, its scalar cast into 0x7FC0: only NaN-ness is a contract.
            if x[i].isNaN {
                if !BFloat.toFloat(BFloat.fromFloat(x[i])).isNaN { bfMismatches += 1 }
            } else if BFloat.fromFloat(x[i]) != b[i] { bfMismatches += 1 }
        }
        #expect(halfMismatches == 0)
        #expect(bfMismatches == 0)
    }

    @Test func f16AndBF16DecodingMatchNumpyAndTorch() throws {
        let f = try Fixture("conversions.json")
        let hIn = f.u16("f16_in_u16"), hOut = f.floats("f16_out_f32")
        #expect(hIn.count > 1000 && hIn.count == hOut.count)
        for (bits, want) in zip(hIn, hOut) where !want.isNaN {
            #expect(Half.toFloat(bits).bitPattern == want.bitPattern, "f16 \(bits)")
        }
        let bIn = f.u16("bf16_in_u16"), bOut = f.floats("bf16_out_f32")
        for (bits, want) in zip(bIn, bOut) where !want.isNaN {
            #expect(BFloat.toFloat(bits).bitPattern == want.bitPattern, "bf16 \(bits)")
        }
        // Every finite f16 survives a round trip through f32.
        for bits in UInt16.min...UInt16.max where (bits & 0x7C00) != 0x7C00 {
            if Half.fromFloat(Half.toFloat(bits)) != bits { Issue.record("f16 round trip \(bits)"); break }
        }
    }

    @Test(arguments: [DType.q8_0, .q4_0])
    func quantizeIsBitIdenticalToGGUF(_ dtype: DType) throws {
        let f = try Fixture("quants_q8_0_q4_0.json")
        let x = f.floats("input_f32"), rowLength = f.int("row_length")
        let key = dtype == .q8_0 ? "q8_0" : "q4_0"
        let expected = f.bytes(key + "_u8")
        #expect(!expected.isEmpty)
        let ours = try Quantization.quantize(x, to: dtype, rowLength: rowLength)
        #expect(ours.count == expected.count)
        let blockBytes = dtype.blockBytes
        for b in 0..<(expected.count / blockBytes) {
            let range = (b * blockBytes)..<((b + 1) * blockBytes)
            #expect(Array(ours[range]) == Array(expected[range]), "\(dtype) block \(b)")
        }
        let decoded = try Quantization.dequantize(expected, from: dtype, count: x.count, rowLength: rowLength)
        #expect(decoded.map(\.bitPattern) == f.floats(key + "_dequant_f32").map(\.bitPattern))
    }

    @Test(arguments: [DType.q4_K, .q5_K, .q6_K])
    func kQuantDequantizationIsBitIdenticalToGGUF(_ dtype: DType) throws {
        let f = try Fixture("quants_k.json")
        let key = dtype.description.lowercased()
        let blocks = f.bytes(key + "_u8"), expected = f.floats(key + "_dequant_f32")
        #expect(expected.count == f.int("blocks") * 256 && expected.count > 0)
        let ours = try Quantization.dequantize(blocks, from: dtype, count: expected.count, rowLength: 512)
        #expect(ours.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    /// Our K-quantizers against ggml's own quantize_row_q{4,5,6}_K_ref (compiled from the pinned ggml-python
    /// sdist by Tools/reference/ggml_quantizer_fixtures.py): byte for byte, on weight-like rows, rows whose
    /// scale varies per value, all-positive and all-negative rows (the min clamps), outliers, and a zero and a
    /// constant super-block.
    @Test(arguments: [DType.q4_K, .q5_K, .q6_K])
    func kQuantizersAreBitIdenticalToGGML(_ dtype: DType) throws {
        let f = try Fixture("ggml_k_quantizers.json")
        let x = f.floats("input_f32"), rowLength = f.int("row_length")
        let expected = f.bytes(dtype.description.lowercased() + "_u8")
        #expect(x.count == f.int("rows") * rowLength && x.count > 0)
        #expect(expected.count == dtype.byteCount(elements: x.count))
        let ours = try Quantization.quantize(x, to: dtype, rowLength: rowLength)
        let blockBytes = dtype.blockBytes
        var differing: [Int] = []
        for b in 0..<(expected.count / blockBytes) where ours[(b * blockBytes)..<((b + 1) * blockBytes)] != expected[(b * blockBytes)..<((b + 1) * blockBytes)] {
            differing.append(b)
        }
        #expect(differing.isEmpty, "\(dtype): super-blocks \(differing) differ from ggml")
    }

    /// Our K-quantizers (llama.cpp reference logic) must decode back close to the input; typical
    /// relative RMS error: Q4_K ≈ 0.1, Q5_K ≈ 0.04, Q6_K ≈ 0.03 on Gaussian data.
    @Test(arguments: [(DType.q4_K, Float(0.12)), (.q5_K, 0.06), (.q6_K, 0.04), (.q8_0, 0.01), (.q4_0, 0.15)])
    func quantizersRoundTrip(_ dtype: DType, _ bound: Float) throws {
        var rng = SplitMix(seed: 11)
        let x = (0..<2048).map { _ in rng.gaussian() * 0.05 }
        let bytes = try Quantization.quantize(x, to: dtype, rowLength: 1024)
        #expect(bytes.count == dtype.byteCount(elements: 2048))
        let y = try Quantization.dequantize(bytes, from: dtype, count: 2048, rowLength: 1024)
        let err = zip(x, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +), norm = x.map { $0 * $0 }.reduce(0, +)
        #expect((err / norm).squareRoot() < bound, "\(dtype) relative RMS \((err / norm).squareRoot())")
        // A zero block must stay exactly zero.
        let zeros = try Quantization.dequantize(try Quantization.quantize([Float](repeating: 0, count: 256), to: dtype),
                                                from: dtype, count: 256)
        #expect(zeros.allSatisfy { $0 == 0 })
    }

    /// One more bit per value: Q5_K's 32 levels must roughly halve Q4_K's error on the same data (same
    /// super-block parameters, codes 0…31), and the fifth bits must really be used.
    @Test func q5KHalvesQ4KError() throws {
        var rng = SplitMix(seed: 29)
        let x = (0..<4096).map { _ in rng.gaussian() }
        func error(_ dtype: DType) throws -> Float {
            let y = try Quantization.dequantize(try Quantization.quantize(x, to: dtype, rowLength: 512), from: dtype,
                                                count: x.count, rowLength: 512)
            return (zip(x, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / x.map { $0 * $0 }.reduce(0, +)).squareRoot()
        }
        let q4 = try error(.q4_K), q5 = try error(.q5_K)
        #expect(q5 < 0.6 * q4 && q5 > 0.3 * q4, "Q5_K \(q5) vs Q4_K \(q4)")
        let blocks = try Quantization.quantize(x, to: .q5_K, rowLength: 512)
        let highBits = (0..<(blocks.count / 176)).map { b in blocks[(176 * b + 16)..<(176 * b + 48)].reduce(0) { $0 + $1.nonzeroBitCount } }
        #expect(highBits.allSatisfy { $0 > 40 && $0 < 216 }, "fifth bits per super-block: \(highBits)")
    }

    @Test func rowsThatAreNotWholeBlocksAreRejected() {
        #expect(throws: TensorError.rowNotWholeBlocks(dtype: .q4_K, rowLength: 100)) {
            _ = try Quantization.quantize([Float](repeating: 1, count: 100), to: .q4_K)
        }
        #expect(throws: TensorError.self) { _ = try Quantization.dequantize([1, 2, 3], from: .q8_0, count: 32) }
        let t = Tensor([Float](repeating: 1, count: 6), shape: [2, 3])
        #expect(throws: TensorError.rowNotWholeBlocks(dtype: .q8_0, rowLength: 3)) { _ = try t.converted(to: .q8_0) }
    }

    @Test func tensorConversionRoundTrips() throws {
        var rng = SplitMix(seed: 3)
        let t = Tensor((0..<(4 * 64)).map { _ in rng.gaussian() }, shape: [4, 64])
        for dtype in DType.allCases where dtype.blockSize <= 64 {
            let q = try t.converted(to: dtype)
            #expect(q.dtype == dtype && q.shape == [4, 64])
            let back = try q.dequantized().toArray()
            #expect(maxRelativeError(back, t.toArray(), floor: 0.5) < (dtype.isQuantized ? 0.5 : 0.01), "\(dtype)")
        }
    }
}

/// Deterministic test data (no Foundation randomness, same values on every run).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func gaussian() -> Float {
        let u = max(uniform(), 1e-7), v = uniform()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Float.pi * v)
    }
}
