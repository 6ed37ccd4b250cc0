import Foundation
import Testing
import TendonTensor
@testable import TendonTraining

/// Tests/Fixtures/gptq/gptq_fixture.safetensors, written by Tools/reference/gptq_reference.py (an independent
/// float64 PyTorch GPTQ whose group scales come from gguf's quantizer).
fileprivate struct GPTQFixture {
    static let rows = 48, columns = 256, samples = 600
    let weight: [Float]
    let hessian: [Double]
    let tensors: [String: (dtype: String, data: Data)]

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/gptq/gptq_fixture.safetensors")
        tensors = try Self.readSafetensors(Data(contentsOf: url))
        let w = try #require(tensors["weight"])
        #expect(w.dtype == "F16")
        weight = w.data.withUnsafeBytes { raw in
            (0..<(Self.rows * Self.columns)).map { Half.toFloat(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        }
        let x = try #require(tensors["inputs"])
        #expect(x.dtype == "I8" && x.data.count == Self.samples * Self.columns)
        let inputs = x.data.map { Double(Int8(bitPattern: $0)) }
        // Integer-valued X: every XᵀX entry is exact, so H matches the reference's bit for bit.
        let n = Self.columns
        var h = [Double](repeating: 0, count: n * n)
        for s in 0..<Self.samples {
            for i in 0..<n where inputs[s * n + i] != 0 {
                let xi = inputs[s * n + i]
                for j in 0..<n { h[i * n + j] += xi * inputs[s * n + j] }
            }
        }
        hessian = h.map { $0 / Double(Self.samples) }
    }

    func floats(_ name: String) throws -> [Float] {
        let t = try #require(tensors[name])
        #expect(t.dtype == "F32")
        return t.data.withUnsafeBytes { raw in (0..<(t.data.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    func scalar(_ name: String) throws -> Double {
        let t = try #require(tensors[name])
        #expect(t.dtype == "F64" && t.data.count == 8)
        return t.data.withUnsafeBytes { $0.loadUnaligned(as: Double.self) }
    }

    static func readSafetensors(_ file: Data) throws -> [String: (dtype: String, data: Data)] {
        let headerLength = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var out: [String: (dtype: String, data: Data)] = [:]
        for (name, value) in header where name != "__metadata__" {
            let info = try #require(value as? [String: Any])
            let offsets = try #require(info["data_offsets"] as? [Int])
            let start = 8 + headerLength + offsets[0], end = 8 + headerLength + offsets[1]
            out[name] = (try #require(info["dtype"] as? String), file.subdata(in: start..<end))
        }
        return out
    }
}

fileprivate func gptq(_ w: [Float], rows: Int, columns: Int, hessian: [Double], dtype: DType,
          pool: ThreadPool? = nil) throws(GPTQError) -> [UInt8] {
    let result: Result<[UInt8], GPTQError> = w.withUnsafeBufferPointer { wp in
        hessian.withUnsafeBufferPointer { hp in
            Result { () throws(GPTQError) in
                try GPTQ.quantize(wp.baseAddress!, rows: rows, columns: columns, hessian: hp.baseAddress!,
                                  dtype: dtype, pool: pool)
            }
        }
    }
    return try result.get()
}

/// The thrown GPTQError satisfies `check` (false when nothing or something else was thrown).
fileprivate func matches(_ body: () throws(GPTQError) -> [UInt8], _ check: (GPTQError) -> Bool) -> Bool {
    do {
        _ = try body()
        return false
    } catch {
        return check(error)
    }
}

fileprivate func proxy(_ w: [Float], rows: Int, columns: Int, hessian: [Double], blocks: [UInt8], dtype: DType) -> Double {
    w.withUnsafeBufferPointer { wp in
        hessian.withUnsafeBufferPointer { hp in
            GPTQ.proxyLoss(wp.baseAddress!, rows: rows, columns: columns, hessian: hp.baseAddress!, blocks: blocks, dtype: dtype)
        }
    }
}

/// Symmetric positive definite test Hessian: D·T·D with T[i, j] = ρ^|i−j| (Kac–Murdoch–Szegő, correlated
/// neighbours) and a spread of channel scales D, cheap to build at any size.
fileprivate func syntheticHessian(columns n: Int, rho: Double = 0.6) -> [Double] {
    let scale = (0..<n).map { 1 + 4 * Double(($0 * 37) % 11) / 10 }
    var h = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { h[i * n + j] = scale[i] * scale[j] * pow(rho, Double(abs(i - j))) } }
    return h
}

fileprivate func gaussianWeights(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Double(state >> 11) + 0.5) / Double(1 << 53)
    }
    return (0..<count).map { _ in Float((-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())) }
}

@Suite struct GPTQTests {
    let rows = GPTQFixture.rows, columns = GPTQFixture.columns

    @Test(arguments: [DType.q8_0, .q4_0]) func matchesPythonReference(dtype: DType) throws {
        let fixture = try GPTQFixture()
        let expected = try fixture.floats(dtype == .q8_0 ? "q8_0" : "q4_0")
        let pool = ThreadPool(threads: 2)
        let blocks = try gptq(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, dtype: dtype, pool: pool)
        #expect(blocks.count == rows * dtype.byteCount(elements: columns)!)
        // Rows are independent: the pool must not change a single byte.
        #expect(try gptq(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, dtype: dtype) == blocks)
        let decoded = try Quantization.dequantize(blocks, from: dtype, count: rows * columns, rowLength: columns)
        let same = zip(decoded, expected).filter { $0 == $1 }.count
        let agreement = Double(same) / Double(decoded.count)
        let loss = proxy(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, blocks: blocks, dtype: dtype)
        let referenceLoss = try fixture.scalar("proxy_\(dtype == .q8_0 ? "q8_0" : "q4_0")")
        let rtn = try Quantization.quantize(fixture.weight, to: dtype, rowLength: columns)
        let rtnLoss = proxy(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, blocks: rtn, dtype: dtype)
        print("GPTQ \(dtype): \(same)/\(decoded.count) values identical to the reference, proxy loss \(loss) "
              + "(reference \(referenceLoss)), RTN \(rtnLoss), ratio \(loss / rtnLoss)")
        #expect(agreement >= 0.99)
        #expect(abs(loss - referenceLoss) <= 0.005 * referenceLoss)
        // Our RTN bytes equal gguf's, so this pins proxyLoss itself against the reference's evaluation.
        let referenceRTN = try fixture.scalar("rtn_\(dtype == .q8_0 ? "q8_0" : "q4_0")")
        #expect(abs(rtnLoss - referenceRTN) <= 1e-9 * referenceRTN)
    }

    /// A diagonal H makes U diagonal: no error reaches another column, so GPTQ must reproduce the plain row
    /// quantizer byte for byte (this pins the parameter reuse, the code choice and the nibble packing).
    /// (Q5_K: the same, and the fifth bits in qh too.)
    @Test(arguments: [DType.q4_K, .q5_K]) func kQuantWithDiagonalHessianEqualsRowQuantizer(dtype: DType) throws {
        let n = 512, rows = 24
        // Row 3's sub-block 5 is all zeros: its scale is 0 and GPTQ must keep the row quantizer's codes there.
        let w = gaussianWeights(rows * n, seed: 7).enumerated().map { i, v in
            i / n == 3 && (i % n) / 32 == 5 ? 0 : v * (1 + Float(i % 5))
        }
        let plain = try Quantization.quantize(w, to: dtype, rowLength: n)
        var identity = [Double](repeating: 0, count: n * n)
        for i in 0..<n { identity[i * n + i] = 1 }
        #expect(try gptq(w, rows: rows, columns: n, hessian: identity, dtype: dtype) == plain)
        var diagonal = identity
        for i in 0..<n { diagonal[i * n + i] = 0.5 + Double(i % 13) }
        #expect(try gptq(w, rows: rows, columns: n, hessian: diagonal, dtype: dtype, pool: ThreadPool(threads: 2)) == plain)
    }

    @Test(arguments: [DType.q4_K, .q5_K]) func kQuantBeatsRowQuantizerOnCorrelatedHessian(dtype: DType) throws {
        let fixture = try GPTQFixture()
        let blocks = try gptq(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, dtype: dtype,
                              pool: ThreadPool(threads: 2))
        let rtn = try Quantization.quantize(fixture.weight, to: dtype, rowLength: columns)
        let loss = proxy(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, blocks: blocks, dtype: dtype)
        let rtnLoss = proxy(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, blocks: rtn, dtype: dtype)
        print("GPTQ \(dtype): proxy loss \(loss), RTN \(rtnLoss), ratio \(loss / rtnLoss)")
        #expect(loss.isFinite && loss > 0)
        #expect(loss <= 0.7 * rtnLoss)
    }

    @Test(arguments: [DType.q8_0, .q4_0, .q4_K, .q5_K]) func beatsRowQuantizerAcrossBatches(dtype: DType) throws {
        // 768 columns: several lazy batches and GEMM updates, unlike the 256-column fixture for Q4_K.
        let n = 768, rows = 16
        let w = gaussianWeights(rows * n, seed: 11)
        let h = syntheticHessian(columns: n)
        let blocks = try gptq(w, rows: rows, columns: n, hessian: h, dtype: dtype, pool: ThreadPool(threads: 2))
        let rtn = try Quantization.quantize(w, to: dtype, rowLength: n)
        let ratio = proxy(w, rows: rows, columns: n, hessian: h, blocks: blocks, dtype: dtype)
            / proxy(w, rows: rows, columns: n, hessian: h, blocks: rtn, dtype: dtype)
        print("GPTQ \(dtype) on a ρ=0.6 Toeplitz Hessian, 768 columns: proxy loss ratio to RTN \(ratio)")
        #expect(ratio < 0.9)
    }

    @Test func deadColumnsQuantizeToZero() throws {
        let fixture = try GPTQFixture()  // column 7 of X is never active
        for dtype in [DType.q8_0, .q4_0] {
            let blocks = try gptq(fixture.weight, rows: rows, columns: columns, hessian: fixture.hessian, dtype: dtype)
            let decoded = try Quantization.dequantize(blocks, from: dtype, count: rows * columns, rowLength: columns)
            #expect((0..<rows).allSatisfy { decoded[$0 * columns + 7] == 0 })
        }
    }

    @Test func rejectsBadInput() {
        let n = 64, rows = 2
        let w = gaussianWeights(rows * n, seed: 3)
        var h = syntheticHessian(columns: n)
        h[5 * n + 9] = .nan
        let nanError = #expect(throws: GPTQError.self) { try gptq(w, rows: rows, columns: n, hessian: h, dtype: .q8_0) }
        #expect(nanError == .nonFinite("hessian[5, 9] = nan"))
        var badW = w
        badW[70] = .infinity
        #expect(matches({ () throws(GPTQError) in
            try gptq(badW, rows: rows, columns: n, hessian: syntheticHessian(columns: n), dtype: .q4_0)
        }) { if case .nonFinite(let m) = $0 { m.contains("weight[1, 6]") } else { false } })
        var huge = w
        huge[n + 40] = 1e7  // finite in f32, but the Q8_0 scale 1e7/127 is beyond f16
        #expect(matches({ () throws(GPTQError) in
            try gptq(huge, rows: rows, columns: n, hessian: syntheticHessian(columns: n), dtype: .q8_0)
        }) { if case .nonFinite(let m) = $0 { m.contains("row 1 at column 32") } else { false } })
        let h40 = syntheticHessian(columns: 40)
        #expect(matches({ () throws(GPTQError) in
            try gptq(Array(w.prefix(80)), rows: 2, columns: 40, hessian: h40, dtype: .q8_0)
        }) { if case .shape(let m) = $0 { m.contains("multiples of 32") } else { false } })
        #expect(matches({ () throws(GPTQError) in
            try gptq(w, rows: rows, columns: n, hessian: syntheticHessian(columns: n), dtype: .q4_K)
        }) { if case .shape(let m) = $0 { m.contains("multiples of 256") } else { false } })
        #expect(matches({ () throws(GPTQError) in
            try gptq(w, rows: rows, columns: n, hessian: syntheticHessian(columns: n), dtype: .q6_K)
        }) { if case .shape = $0 { true } else { false } })
        var indefinite = [Double](repeating: 0, count: n * n)
        for i in 0..<n { indefinite[i * n + i] = i == 10 ? -50 : 1 }
        #expect(matches({ () throws(GPTQError) in
            try gptq(w, rows: rows, columns: n, hessian: indefinite, dtype: .q8_0)
        }) { if case .notPositiveDefinite(let m) = $0 { m.contains("leading minor 11") } else { false } })
    }

    /// Timing only (never asserted); run with GPTQ_TIMING=1, ideally in a release build.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["GPTQ_TIMING"] == "1"), .serialized,
          arguments: [(512, 2048), (1536, 512)])
    func timing(shape: (Int, Int)) throws {
        let (rows, n) = shape
        let w = gaussianWeights(rows * n, seed: 5)
        let h = syntheticHessian(columns: n)
        let pool = ThreadPool(threads: 2)
        var factor = h
        let factorStart = DispatchTime.now().uptimeNanoseconds
        try factor.withUnsafeMutableBufferPointer { (p) throws(GPTQError) in try GPTQ.upperCholeskyOfInverse(p.baseAddress!, n) }
        print("GPTQ timing: U = chol(H⁻¹) for \(n) columns \(Double(DispatchTime.now().uptimeNanoseconds - factorStart) / 1e6) ms")
        for dtype in [DType.q8_0, .q4_0, .q4_K] {
            let start = DispatchTime.now().uptimeNanoseconds
            let blocks = try gptq(w, rows: rows, columns: n, hessian: h, dtype: dtype, pool: pool)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let rtn = try Quantization.quantize(w, to: dtype, rowLength: n)
            let ratio = proxy(w, rows: rows, columns: n, hessian: h, blocks: blocks, dtype: dtype)
                / proxy(w, rows: rows, columns: n, hessian: h, blocks: rtn, dtype: dtype)
            print("GPTQ timing \(dtype) [\(rows), \(n)]: \(String(format: "%.3f", seconds)) s, proxy ratio to RTN \(ratio)")
        }
    }
}
