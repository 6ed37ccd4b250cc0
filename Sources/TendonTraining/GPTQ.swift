/// GPTQ post-training quantization (Frantar et al. 2023) into ggml blocks.
///
/// API summary
/// - `GPTQ.quantize(w, rows:, columns:, hessian:, dtype:, dampening:, pool:)`: W [rows, columns] row-major f32
///   and H [columns, columns] (mean of xᵀx over calibration inputs) → rows × dtype.byteCount(elements: columns)
///   bytes of .q8_0 / .q4_0 / .q4_K / .q5_K blocks that the ordinary dequantizers decode.
/// - `GPTQ.proxyLoss(...)`: tr((W − Q)·H·(W − Q)ᵀ) / rows, the layer-output error GPTQ minimises.
///
/// H must be symmetric; the factorisation reads its upper triangle only (proxyLoss uses all of it).
/// Variant: H is damped by `dampening`·mean(diag H), U is the upper Cholesky factor of H⁻¹, columns are
/// visited left to right in lazy batches (128, or one 256-column super-block for Q4_K/Q5_K). A quantization group
/// (one ggml block, 32 or 256 values) takes its parameters from the existing row quantizer applied to the
/// group's current, already error-compensated weights when its first column is reached; after that the
/// parameters stay fixed and every column picks the nearest code on that grid, so the q used for the error
/// is bit for bit what the dequantizer will produce.
///
/// Code choice per dtype (x = current weight, d, d₁, m₁ the decoded f32 parameters):
/// - Q8_0: round-half-away(x / d) clamped to −127…127 (value code·d). The row quantizer rounds x·(1/d) with
///   d before f16 rounding; GPTQ uses the decoded grid, which is never worse.
/// - Q4_0: round-half-away(x / d) + 8 clamped to 0…15 (value d·(code − 8)).
/// - Q4_K: lrintf((x + m₁) / d₁) clamped to 0…15 in f32, exactly the row quantizer's own final pass, so with
///   a diagonal H (no error propagation) the bytes equal the plain row quantizer's. A sub-block with d₁ = 0
///   keeps the row quantizer's nibbles (every code decodes to −m₁ there).
/// - Q5_K: the same with codes 0…31 (the fifth bit in qh, bit j of qh[l] for value l of sub-block j's
///   32 — ggml's layout).
import CBLAS
import CLAPACK
import TendonTensor

public enum GPTQError: Error, Equatable, CustomStringConvertible {
    case shape(String)
    case nonFinite(String)
    case notPositiveDefinite(String)

    public var description: String {
        switch self {
        case .shape(let message): "GPTQ shape error: \(message)"
        case .nonFinite(let message): "GPTQ non-finite input: \(message)"
        case .notPositiveDefinite(let message): "GPTQ Hessian not positive definite: \(message)"
        }
    }
}

public enum GPTQ {
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, columns: Int, hessian: UnsafePointer<Double>,
                                dtype: DType, dampening: Double = 0.01, pool: ThreadPool? = nil) throws(GPTQError) -> [UInt8] {
        let group = try checkShape(rows: rows, columns: columns, dtype: dtype)
        guard dampening.isFinite, dampening >= 0 else {
            throw .nonFinite("dampening must be finite and ≥ 0, found \(dampening)")
        }
        let n = columns
        for i in 0..<(n * n) where !hessian[i].isFinite {
            throw .nonFinite("hessian[\(i / n), \(i % n)] = \(hessian[i])")
        }
        for i in 0..<(rows * n) where !w[i].isFinite {
            throw .nonFinite("weight[\(i / n), \(i % n)] = \(w[i])")
        }

        let weights = UnsafeMutablePointer<Double>.allocate(capacity: rows * n)
        defer { weights.deallocate() }
        for i in 0..<(rows * n) { weights[i] = Double(w[i]) }
        let u = UnsafeMutablePointer<Double>.allocate(capacity: n * n)
        defer { u.deallocate() }
        u.update(from: hessian, count: n * n)

        // A column no calibration input ever touched carries no information: quantize it to 0 error-free.
        for i in 0..<n where u[i * n + i] == 0 {
            u[i * n + i] = 1
            for r in 0..<rows { weights[r * n + i] = 0 }
        }
        var diagonalSum = 0.0
        for i in 0..<n { diagonalSum += u[i * n + i] }
        let damp = dampening * diagonalSum / Double(n)
        for i in 0..<n { u[i * n + i] += damp }
        try upperCholeskyOfInverse(u, n)

        let rowBytes = n / dtype.blockSize * dtype.blockBytes
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        let batch = dtype.blockSize == 256 ? 256 : 128
        let errors = UnsafeMutablePointer<Double>.allocate(capacity: rows * batch)
        defer { errors.deallocate() }
        // Per-row failure column (−1: none): rows run concurrently, so nothing shared is written.
        let failedColumn = UnsafeMutablePointer<Int>.allocate(capacity: rows)
        defer { failedColumn.deallocate() }
        failedColumn.initialize(repeating: -1, count: rows)
        out.withUnsafeMutableBytes { raw in
            let dst = raw.baseAddress!
            for start in stride(from: 0, to: n, by: batch) {
                let end = min(start + batch, n)
                let width = end - start
                let sweep = { (range: Range<Int>) in
                    var scratch = GroupScratch(group: group)
                    defer { scratch.deallocate() }
                    for r in range where failedColumn[r] < 0 {
                        failedColumn[r] = quantizeBatch(row: weights + r * n, u: u, n: n, start: start, end: end, dtype: dtype,
                                                        group: group, errors: errors + r * width,
                                                        dst: dst + r * rowBytes, scratch: &scratch)
                    }
                }
                if let pool { pool.parallelFor(rows, sweep) } else { sweep(0..<rows) }
                // Lazy batch update: the columns right of the batch receive the batch's whole error at once.
                if end < n {
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n - end), Int32(width),
                                -1, errors, Int32(width), u + start * n + end, Int32(n),
                                1, weights + end, Int32(n))
                }
            }
        }
        if let r = (0..<rows).first(where: { failedColumn[$0] >= 0 }) {
            throw .nonFinite("the \(dtype) block scale of row \(r) at column \(failedColumn[r]) overflows f16 "
                             + "(error-compensated weights too large)")
        }
        return out
    }

    public static func proxyLoss(_ w: UnsafePointer<Float>, rows: Int, columns: Int, hessian: UnsafePointer<Double>,
                                 blocks: [UInt8], dtype: DType) -> Double {
        guard let rowBytes = dtype.byteCount(elements: columns), rows > 0, columns > 0,
              blocks.count == rows * rowBytes else { return .nan }
        let n = columns
        let diff = UnsafeMutablePointer<Double>.allocate(capacity: rows * n)
        defer { diff.deallocate() }
        let product = UnsafeMutablePointer<Double>.allocate(capacity: rows * n)
        defer { product.deallocate() }
        let decoded = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { decoded.deallocate() }
        var valid = true
        blocks.withUnsafeBytes { raw in
            for r in 0..<rows {
                do throws(TensorError) {
                    try Quantization.dequantizeRow(raw.baseAddress! + r * rowBytes, from: dtype, count: n, into: decoded)
                } catch {
                    valid = false
                    return
                }
                for c in 0..<n { diff[r * n + c] = Double(w[r * n + c]) - Double(decoded[c]) }
            }
        }
        guard valid else { return .nan }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(n),
                    1, diff, Int32(n), hessian, Int32(n), 0, product, Int32(n))
        var sum = 0.0
        for i in 0..<(rows * n) { sum += diff[i] * product[i] }
        return sum / Double(rows)
    }

    /// Weight types `quantize` writes.
    public static func supports(_ dtype: DType) -> Bool {
        dtype == .q8_0 || dtype == .q4_0 || dtype == .q4_K || dtype == .q5_K
    }

    /// Scalar values per quantization group (one ggml block).
    static func checkShape(rows: Int, columns: Int, dtype: DType) throws(GPTQError) -> Int {
        guard supports(dtype) else {
            throw .shape("dtype must be Q8_0, Q4_0, Q4_K or Q5_K, found \(dtype)")
        }
        guard rows > 0, columns > 0 else { throw .shape("weight must be non-empty, found [\(rows), \(columns)]") }
        guard columns % dtype.blockSize == 0 else {
            throw .shape("\(dtype) needs columns in multiples of \(dtype.blockSize), found \(columns)")
        }
        guard columns <= Int(Int32.max) / columns, rows <= Int(Int32.max) / columns else {
            throw .shape("[\(rows), \(columns)] is too large for 32-bit BLAS indices")
        }
        return dtype.blockSize
    }

    /// In place on a row-major symmetric positive definite `a`: leaves U (upper triangle, lower zeroed) with
    /// a⁻¹ = UᵀU, GPTQ's `cholesky(cholesky_inverse(cholesky(H)), upper=True)`. LAPACK is column-major, so
    /// its 'L' on this buffer is the row-major upper triangle: potrf('L') gives a = LLᵀ, potri('L') puts a⁻¹ in
    /// the same triangle, and potrf('L') again gives a⁻¹ = L'L'ᵀ whose row-major reading is U = L'ᵀ.
    static func upperCholeskyOfInverse(_ a: UnsafeMutablePointer<Double>, _ n: Int) throws(GPTQError) {
        var size = Int32(n), lda = Int32(n), info: Int32 = 0
        var uplo = CChar(UInt8(ascii: "L"))
        dpotrf_(&uplo, &size, a, &lda, &info, 1)
        if info > 0 {
            throw .notPositiveDefinite("Cholesky of the damped Hessian failed at leading minor \(info) of \(n)")
        }
        guard info == 0 else { throw .shape("dpotrf rejected argument \(-info)") }
        dpotri_(&uplo, &size, a, &lda, &info, 1)
        if info > 0 { throw .notPositiveDefinite("the damped Hessian is singular (Cholesky factor entry \(info) is 0)") }
        guard info == 0 else { throw .shape("dpotri rejected argument \(-info)") }
        for i in 0..<n where !a[i * n + i].isFinite {
            throw .notPositiveDefinite("the inverse of the damped Hessian is not finite at [\(i), \(i)]")
        }
        dpotrf_(&uplo, &size, a, &lda, &info, 1)
        if info > 0 {
            throw .notPositiveDefinite("Cholesky of the inverse Hessian failed at leading minor \(info) of \(n)")
        }
        guard info == 0 else { throw .shape("dpotrf rejected argument \(-info)") }
        for i in 0..<n {
            for j in 0..<i { a[i * n + j] = 0 }
            guard a[i * n + i] > 0, a[i * n + i].isFinite else {
                throw .notPositiveDefinite("inverse-Hessian Cholesky diagonal [\(i), \(i)] = \(a[i * n + i])")
            }
        }
    }

    /// Per-thread buffers for one group's parameters.
    struct GroupScratch {
        let values: UnsafeMutablePointer<Float>
        let block: UnsafeMutableRawPointer
        /// Q4_K per sub-block: decoded scale d₁ and offset m₁ (value = d₁·code − m₁).
        let scales: UnsafeMutablePointer<Float>
        let mins: UnsafeMutablePointer<Float>

        init(group: Int) {
            values = .allocate(capacity: group)
            block = .allocate(byteCount: 256, alignment: 16)
            scales = .allocate(capacity: 8)
            mins = .allocate(capacity: 8)
        }

        func deallocate() {
            values.deallocate()
            block.deallocate()
            scales.deallocate()
            mins.deallocate()
        }
    }

    /// Quantizes columns start..<end of one row, updating the row's later columns inside the batch and writing
    /// the scaled errors (w − q)/U[c, c] to `errors` for the batch GEMM. Returns −1, or the first column of a
    /// group whose block scale overflowed f16.
    static func quantizeBatch(row: UnsafeMutablePointer<Double>, u: UnsafePointer<Double>, n: Int, start: Int, end: Int,
                              dtype: DType, group: Int, errors: UnsafeMutablePointer<Double>,
                              dst: UnsafeMutableRawPointer, scratch: inout GroupScratch) -> Int {
        let bytes = dst.assumingMemoryBound(to: UInt8.self)
        var scale: Float = 0
        var blockOut = bytes
        for c in start..<end {
            let inGroup = c % group
            if inGroup == 0 {
                for k in 0..<group { scratch.values[k] = Float(row[c + k]) }
                blockOut = bytes + c / group * dtype.blockBytes
                switch dtype {
                case .q8_0, .q4_0:
                    try? Quantization.quantizeRow(scratch.values, to: dtype, count: group, into: scratch.block)
                    let bits = scratch.block.loadUnaligned(as: UInt16.self)
                    scale = Half.toFloat(bits)
                    guard scale.isFinite else { return c }
                    blockOut[0] = UInt8(truncatingIfNeeded: bits)
                    blockOut[1] = UInt8(truncatingIfNeeded: bits >> 8)
                default:
                    try? Quantization.quantizeRow(scratch.values, to: dtype, count: 256, into: blockOut)
                    let d = Half.toFloat(UInt16(blockOut[0]) | UInt16(blockOut[1]) << 8)
                    let dmin = Half.toFloat(UInt16(blockOut[2]) | UInt16(blockOut[3]) << 8)
                    guard d.isFinite, dmin.isFinite else { return c }
                    for j in 0..<8 {
                        let (sc, m) = scaleMinK4(j, blockOut + 4)
                        scratch.scales[j] = d * Float(sc)
                        scratch.mins[j] = dmin * Float(m)
                    }
                }
            }
            let x = row[c]
            let q: Float
            switch dtype {
            case .q8_0:
                let code = scale == 0 ? 0 : min(max((x / Double(scale)).rounded(.toNearestOrAwayFromZero), -127), 127)
                q = Float(code) * scale
                blockOut[2 + inGroup] = UInt8(bitPattern: Int8(code))
            case .q4_0:
                let t = scale == 0 ? 0 : (x / Double(scale)).rounded(.toNearestOrAwayFromZero)
                let code = Int(min(max(t + 8, 0), 15))
                q = scale * Float(code - 8)
                let at = 2 + inGroup % 16
                blockOut[at] = inGroup < 16 ? (blockOut[at] & 0xF0) | UInt8(code) : (blockOut[at] & 0x0F) | UInt8(code << 4)
            default:
                let j = inGroup / 32
                let d1 = scratch.scales[j], m1 = scratch.mins[j]
                // ggml's nibble order: 32 bytes per 64 values, low nibbles first 32, high nibbles next 32;
                // Q5_K puts qh[32] before them and the fifth bit of value l of sub-block j in bit j of qh[l].
                let five = dtype == .q5_K
                let at = (five ? 48 : 16) + inGroup / 64 * 32 + inGroup % 32
                let high = inGroup % 64 >= 32
                let bit = UInt8(1) << UInt8(j)
                let code: Int
                if d1 == 0 {
                    let nibble = Int(high ? blockOut[at] >> 4 : blockOut[at] & 0x0F)
                    code = five && blockOut[16 + inGroup % 32] & bit != 0 ? nibble + 16 : nibble
                } else {
                    let t = ((Float(x) + m1) / d1).rounded(.toNearestOrEven)
                    code = Int(min(max(t, 0), five ? 31 : 15))
                    let nibble = UInt8(code & 15)
                    blockOut[at] = high ? (blockOut[at] & 0x0F) | (nibble << 4) : (blockOut[at] & 0xF0) | nibble
                    if five {
                        let h = 16 + inGroup % 32
                        blockOut[h] = code > 15 ? blockOut[h] | bit : blockOut[h] & ~bit
                    }
                }
                q = d1 * Float(code) - m1
            }
            let e = (x - Double(q)) / u[c * n + c]
            errors[c - start] = e
            if e != 0 {
                let uRow = u + c * n
                for k in (c + 1)..<end { row[k] -= e * uRow[k] }
            }
        }
        return -1
    }

    /// ggml's get_scale_min_k4: 6-bit scale and min of sub-block j from the 12 packed bytes.
    @inline(__always)
    static func scaleMinK4(_ j: Int, _ q: UnsafeMutablePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}
