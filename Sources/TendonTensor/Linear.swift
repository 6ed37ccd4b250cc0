/// Matrix products of activations with weights stored in any `DType`.
///
/// API summary
/// - `KernelPath` (.scalar / .avx2 / .avx512vnni), `KernelPath.best` (cpuid at start-up), `.available`.
/// - `Linear.forward(_:rows:weight:bias:into:pool:path:blas:)`: y[T, out] = x[T, in] · Wᵀ (+ bias) on raw
///   pointers; W is a Tensor [out, in] (F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q5_K/Q6_K), bias f32 [out] or nil.
///   Output rows are split over `pool`. Which code runs (path ≠ .scalar, `blas: .automatic`):
///   - F32: our AVX2 kernel for T < `blasMinRows` (32), OpenBLAS sgemm from there.
///   - F16/BF16: our kernel converting in registers (F16C / shifts, no copy of W) for
///     T < `tiledMinRows(for:path:)`, then ~1 MB tiles widened to f32 and multiplied by sgemm.
///   - Quantized: activations quantized per 32 values (f32 scale) and dotted with integer SIMD (AVX2
///     maddubs, or VNNI vpdpbusd — 512-bit for Q8_0/Q4_K). Q8_0/Q4_0/Q4_K/Q5_K on the VNNI path (any T ≥
///     `packedMinRows`, 1): the weight is repacked once (`PackedWeight`, held by its storage) for a
///     register-blocked int8 GEMM (~700–800 GOP/s per core vs ~130 for the row dots), with activations
///     as `ActivationQuantization.preferred(for:)` picks: 15-bit for Q8_0 (two vpdpbusd per weight
///     vector; activation rounding ≈ 0.003 % of the RMS), int8 for 4-bit weights (≈ 0.5–1 %, like ggml's
///     Q8_0 activations). Without VNNI: int8 activations and row dots, and from
///     `tiledMinRows(for:path:)` rows tiles dequantized (bit-identical to gguf) for sgemm (exact activations).
///   OpenBLAS is always called single-threaded, on per-thread slices of the pool. `blas: .never` forces
///   our kernels, `.always` the sgemm variants (measurements).
/// - `linear(_:_:bias:pool:path:blas:) -> Tensor`: the same for an f32 Tensor [..., in] → [..., out].
/// - `BLASInfo.coreName`, `.isGenericCore`, `.threads`, `.setThreads(_:)`, `.sgemmNT(...)`: which OpenBLAS
///   kernel is active (0.3.21 can fall back to a slow generic one unless OPENBLAS_CORETYPE is set;
///   on this machine it reports Cooperlake without it).
import CBLAS
import CTendonKernels

public enum KernelPath: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case scalar = 0
    case avx2 = 1
    case avx512vnni = 2

    /// Paths this CPU can run (cpuid + xgetbv).
    public static let available: [KernelPath] = {
        let f = tk_cpu_features()
        var paths: [KernelPath] = [.scalar]
        if f & Int32(TK_CPU_AVX2) != 0 { paths.append(.avx2) }
        if f & Int32(TK_CPU_AVX512VNNI) != 0 { paths.append(.avx512vnni) }
        return paths
    }()

    /// The fastest available path.
    public static let best: KernelPath = available.last ?? .scalar

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "avx2"
        case .avx512vnni: "avx512-vnni"
        }
    }
}

public enum BLASInfo {
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
    /// OpenBLAS 0.3.21 reports "Prescott" (a generic SSE3 kernel) on CPUs it does not recognise.
    public static var isGenericCore: Bool {
        let name = coreName.lowercased()
        return name == "prescott" || name == "generic" || name == "unknown" || name == "core2" || name == "atom"
    }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

    /// C[m, n] = A[m, k] · B[n, k]ᵀ with OpenBLAS (row-major), for benchmarks and callers that want it directly.
    public static func sgemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                               c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(k),
                    0, c, Int32(n))
    }
}

/// When `Linear` hands work to OpenBLAS.
public enum BLASUse: Sendable {
    /// By row count: `Linear.blasMinRows` (f32), `Linear.tiledMinRows(for:path:)` (other dtypes).
    case automatic
    /// Our kernels only (f32 included).
    case never
    /// sgemm (after widening/dequantizing tiles) at every row count; for measurements.
    case always
}

public enum Linear {
    /// Row count from which f32 weights go to OpenBLAS sgemm instead of our kernel.
    public static let blasMinRows = 32
    /// Row count from which f16/bf16/quantized weights are widened or dequantized tile by tile (≈1 MB of
    /// f32) and multiplied by sgemm instead of our kernels. `tendon bench gemm` on this machine (1 thread,
    /// 1024→1024/3072): f16 kernel vs tiles cross near T≈40; the 512-bit VNNI int8 kernels (Q8_0/Q4_K,
    /// ~120–130 GOP/s; Q5_K is the Q4_K loop plus its fifth bits) keep up with tiles+sgemm to T≈64-80, the 256-bit ones (~75–90) to T≈40.
    /// Automatic use of OpenBLAS is skipped when it runs a generic core.
    public static func tiledMinRows(for dtype: DType, path: KernelPath = .best) -> Int {
        switch dtype {
        case .q8_0 where path == .avx512vnni, .q4_K where path == .avx512vnni, .q5_K where path == .avx512vnni: 80
        default: 48
        }
    }

    public static func forward(_ x: UnsafePointer<Float>, rows T: Int, weight: Tensor, bias: UnsafePointer<Float>?,
                               into y: UnsafeMutablePointer<Float>, pool: ThreadPool? = nil,
                               path: KernelPath = .best, blas: BLASUse = .automatic) throws(TensorError) {
        guard weight.rank == 2 else { throw .shapeMismatch("\(weight.name): linear weight must be [out, in], found \(weight.shape)") }
        let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
        guard let rowBytes = weight.dtype.byteCount(elements: inFeatures) else {
            throw .rowNotWholeBlocks(dtype: weight.dtype, rowLength: inFeatures)
        }
        guard weight.storage.byteCount - weight.offset >= rowBytes * outFeatures else {
            throw .shapeMismatch("\(weight.name): \(outFeatures)×\(inFeatures) \(weight.dtype) needs \(rowBytes * outFeatures) bytes, storage has \(weight.storage.byteCount - weight.offset)")
        }
        guard KernelPath.available.contains(path) else { throw .unsupported("kernel path \(path) on this CPU") }
        guard T > 0, outFeatures > 0 else { return }
        if let observer { observer.observe(weight: weight, input: x, rows: T) }
        let w = UnsafeRawPointer(weight.rawPointer)
        let cpath = path.rawValue

        // (A `where` clause binds only to the last pattern of a case, hence the precomputed flags.)
        let allowed = blas != .never && path != .scalar
        let goodBLAS = blas == .always || !BLASInfo.isGenericCore
        let f32Rows = blas == .always ? 1 : blasMinRows
        let tileRows = blas == .always ? 1 : tiledMinRows(for: weight.dtype, path: path)
        let tiles = allowed && goodBLAS && T >= tileRows && weight.dtype != .f32
        if usesPackedGEMM(weight.dtype, rows: T, path: path, blas: blas),
           let packed = PackedWeight.cached(for: weight, pool: pool) {
            try packed.multiply(x, rows: T, into: y, pool: pool, path: path)
            addBias(bias, to: y, rows: T, outFeatures: outFeatures)
            return
        }
        switch weight.dtype {
        case _ where tiles:
            tiledSGEMM(x, rows: T, weight: weight, rowBytes: rowBytes, into: y, pool: pool, path: path)
        case .f32 where allowed && goodBLAS && T >= f32Rows:
            singleThreadedBLAS()
            let wf = w.assumingMemoryBound(to: Float.self)
            split(outFeatures, pool) { range in
                sgemm(x, rows: T, inFeatures: inFeatures, weightRows: wf + range.lowerBound * inFeatures, count: range.count,
                      into: y + range.lowerBound, ldy: outFeatures)
            }
        case .f32, .f16, .bf16:
            let wtype = Int32(weight.dtype.rawValue)
            split(outFeatures, pool) { range in
                _ = tk_gemm_f(wtype, cpath, Int64(inFeatures), w, rowBytes, Int64(range.lowerBound), Int64(range.upperBound),
                              Int64(T), x, Int64(inFeatures), y, Int64(outFeatures))
            }
        case .q8_0, .q4_0, .q4_K, .q5_K, .q6_K:
            let blocks = inFeatures / 32
            let q = UnsafeMutablePointer<Int8>.allocate(capacity: T * inFeatures)
            let d = UnsafeMutablePointer<Float>.allocate(capacity: T * blocks)
            let s = UnsafeMutablePointer<Int32>.allocate(capacity: T * blocks)
            defer { q.deallocate(); d.deallocate(); s.deallocate() }
            let quantizeRows = { (range: Range<Int>) in
                for t in range { tk_quantize_act(x + t * inFeatures, Int64(inFeatures), q + t * inFeatures, d + t * blocks, s + t * blocks) }
            }
            if T >= 8, let pool { pool.parallelFor(T, quantizeRows) } else { quantizeRows(0..<T) }
            let wtype = Int32(weight.dtype.rawValue)
            split(outFeatures, pool) { range in
                _ = tk_gemm_q(wtype, cpath, Int64(inFeatures), w, rowBytes, Int64(range.lowerBound), Int64(range.upperBound),
                              Int64(T), q, d, s, y, Int64(outFeatures))
            }
        }
        addBias(bias, to: y, rows: T, outFeatures: outFeatures)
    }

    /// Row count from which Q8_0/Q4_0/Q4_K/Q5_K weights on the VNNI path are repacked once (`PackedWeight`,
    /// cached per weight) and multiplied by the register-blocked int8 GEMM instead of the row-dot kernels
    /// or tiles+sgemm. Every count: `bench forward` decode (T = 1) was faster on the packed weights too
    /// (Q8_0 570 vs 460 tok/s, Q4_0 557 vs 247, Q4_K 509 vs 434), and so the original weights are not
    /// read again once packed.
    public static let packedMinRows = 1

    /// Whether `forward` takes the packed int8 GEMM for this weight type, row count and path.
    public static func usesPackedGEMM(_ dtype: DType, rows T: Int, path: KernelPath, blas: BLASUse = .automatic) -> Bool {
        path == .avx512vnni && blas != .always && T >= packedMinRows && tk_packed_supported(Int32(dtype.rawValue)) != 0
    }

    private static func addBias(_ bias: UnsafePointer<Float>?, to y: UnsafeMutablePointer<Float>, rows T: Int, outFeatures: Int) {
        guard let bias else { return }
        for t in 0..<T {
            let row = y + t * outFeatures
            for o in 0..<outFeatures { row[o] += bias[o] }
        }
    }

    /// Decodes W in tiles of rows (≈1 MB of f32 each) and multiplies each with sgemm straight into its
    /// columns of y; the pool's threads take contiguous slices of output rows, each with its own tile.
    private static func tiledSGEMM(_ x: UnsafePointer<Float>, rows T: Int, weight: Tensor, rowBytes: Int,
                                   into y: UnsafeMutablePointer<Float>, pool: ThreadPool?, path: KernelPath) {
        singleThreadedBLAS()
        let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
        let tileRows = min(outFeatures, max(16, (1 << 18) / max(inFeatures, 1) / 16 * 16))
        let w = UnsafeRawPointer(weight.rawPointer), dtype = weight.dtype
        split(outFeatures, pool) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: min(tileRows, range.count) * inFeatures)
            defer { scratch.deallocate() }
            for o0 in stride(from: range.lowerBound, to: range.upperBound, by: tileRows) {
                let n = min(tileRows, range.upperBound - o0)
                for r in 0..<n {
                    let src = w + (o0 + r) * rowBytes, dst = scratch + r * inFeatures
                    switch dtype {
                    case .f16: tk_f16_to_f32_row_path(path.rawValue, src.assumingMemoryBound(to: UInt16.self), dst, Int64(inFeatures))
                    case .bf16: tk_bf16_to_f32_row_path(path.rawValue, src.assumingMemoryBound(to: UInt16.self), dst, Int64(inFeatures))
                    default: Quantization.decode(src, dtype, inFeatures, dst)
                    }
                }
                sgemm(x, rows: T, inFeatures: inFeatures, weightRows: scratch, count: n, into: y + o0, ldy: outFeatures)
            }
        }
    }

    /// y[t, 0..<count] (row stride ldy) = x[T, in] · rowsᵀ for `count` f32 weight rows.
    private static func sgemm(_ x: UnsafePointer<Float>, rows T: Int, inFeatures: Int, weightRows: UnsafePointer<Float>,
                              count: Int, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard count > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(count), Int32(inFeatures), 1, x,
                    Int32(inFeatures), weightRows, Int32(inFeatures), 0, y, Int32(ldy))
    }

    /// Parallelism comes from our pool only: OpenBLAS's own threads would spin against the pool's on the
    /// same cores (measured: 2-thread tiles+sgemm slower than 1 thread). Concurrent single-threaded calls
    /// are safe in OpenBLAS's pthread build.
    private static func singleThreadedBLAS() {
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    /// Output rows in chunks of 16 so every thread's first row keeps the 4-row kernels aligned.
    private static func split(_ count: Int, _ pool: ThreadPool?, _ body: (Range<Int>) -> Void) {
        if let pool, count >= 32 { pool.parallelFor(count, grain: 16, body) } else { body(0..<count) }
    }
}

/// y = x · Wᵀ (+ bias) for an f32 tensor x [..., in]; returns f32 [..., out].
public func linear(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil, pool: ThreadPool? = nil,
                   path: KernelPath = .best, blas: BLASUse = .automatic) throws(TensorError) -> Tensor {
    guard x.dtype == .f32 else { throw .unsupported("\(x.name): linear input must be F32, found \(x.dtype)") }
    guard weight.rank == 2, x.rank >= 1, x.rowLength == weight.shape[1] else {
        throw .shapeMismatch("\(x.name) \(x.shape) · \(weight.name) \(weight.shape)ᵀ")
    }
    let outFeatures = weight.shape[0]
    var biasF32: Tensor?
    if let bias {
        guard bias.elementCount == outFeatures else {
            throw .shapeMismatch("\(bias.name): bias of \(outFeatures) values expected, found \(bias.shape)")
        }
        biasF32 = bias.dtype == .f32 ? bias : try bias.dequantized()
    }
    var shape = x.shape
    shape[shape.count - 1] = outFeatures
    let y = Tensor(zeros: shape, name: x.name)
    try Linear.forward(x.rawPointer.assumingMemoryBound(to: Float.self), rows: x.rowCount, weight: weight,
                       bias: biasF32.map { UnsafePointer($0.rawPointer.assumingMemoryBound(to: Float.self)) },
                       into: y.rawPointer.assumingMemoryBound(to: Float.self), pool: pool, path: path, blas: blas)
    return y
}
