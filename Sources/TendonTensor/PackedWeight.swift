/// Quantized weights repacked for the int8 prefill GEMM (layout: CTendonKernels/tk_gemm_packed.c).
///
/// API summary
/// - `PackedWeight(weight:pool:)`: repacks a Q8_0 / Q4_0 / Q4_K tensor [out, in] (nil for other dtypes)
///   into panels of 16 output rows × 4-byte k groups with f32 per-(row, block) scales; 4-bit codes are
///   widened to bytes (1.25 bytes per weight for every type).
/// - `PackedWeight.multiply(_:rows:into:ldy:pool:path:)`: y[T, out] = x[T, in] · Wᵀ with activations
///   quantized to int8 per 32 values; `.avx512vnni` runs the vpdpbusd kernel, `.scalar` its twin
///   (same integer sums, same float operations in the same order: bit-identical results).
/// - `PackedWeight.cached(for:pool:)`: the packed form of a weight, built on first use and kept while the
///   weight's storage lives (keyed by storage identity and offset); `PackedWeight.cachedBytes`,
///   `PackedWeight.removeCached()`.
import CTendonKernels
import Synchronization

public final class PackedWeight: @unchecked Sendable {
    public let dtype: DType
    public let outFeatures: Int
    public let inFeatures: Int
    public let byteCount: Int
    let base: UnsafeMutableRawPointer

    public init?(weight: Tensor, pool: ThreadPool? = nil) {
        let wtype = Int32(weight.dtype.rawValue)
        guard weight.rank == 2, tk_packed_supported(wtype) != 0, let rowBytes = weight.rowBytes else { return nil }
        let outF = weight.shape[0], inF = weight.shape[1]
        guard outF > 0, inF > 0, weight.storage.byteCount - weight.offset >= rowBytes * outF else { return nil }
        dtype = weight.dtype
        outFeatures = outF
        inFeatures = inF
        byteCount = tk_packed_bytes(Int64(outF), Int64(inF))
        base = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        let w = UnsafeRawPointer(weight.rawPointer), out = base
        let panels = (outF + 15) / 16
        var failed = false
        let body = { (range: Range<Int>) in
            if tk_pack_weights(wtype, Int64(inF), w, rowBytes, Int64(outF), Int64(range.lowerBound),
                               Int64(range.upperBound), out) != 0 { failed = true }
        }
        if let pool, panels >= 8 { pool.parallelFor(panels, body) } else { body(0..<panels) }
        if failed { base.deallocate(); return nil }
    }

    deinit { base.deallocate() }

    /// Paths `multiply` runs.
    public static func supports(_ path: KernelPath) -> Bool { path == .scalar || path == .avx512vnni }

    /// y[t·ldy + o] = Σ_i x[t·in + i] · W[o, i] for t < rows, o < out.
    public func multiply(_ x: UnsafePointer<Float>, rows T: Int, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
                         pool: ThreadPool? = nil, path: KernelPath = .best) throws(TensorError) {
        guard Self.supports(path), KernelPath.available.contains(path) else {
            throw .unsupported("packed int8 GEMM on path \(path)")
        }
        guard T > 0 else { return }
        let n = inFeatures, blocks = n / 32, ldy = ldy ?? outFeatures
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: T * n)
        let d = UnsafeMutablePointer<Float>.allocate(capacity: T * blocks)
        let s = UnsafeMutablePointer<Int32>.allocate(capacity: T * blocks)
        defer { q.deallocate(); d.deallocate(); s.deallocate() }
        let cpath = path.rawValue
        let quantizeRows = { (range: Range<Int>) in
            for t in range { tk_quantize_act_path(cpath, x + t * n, Int64(n), q + t * n, d + t * blocks, s + t * blocks) }
        }
        if T >= 8, let pool { pool.parallelFor(T, quantizeRows) } else { quantizeRows(0..<T) }
        let wtype = Int32(dtype.rawValue), packed = UnsafeRawPointer(base), outF = outFeatures
        let body = { (range: Range<Int>) in
            _ = tk_gemm_packed(wtype, cpath, Int64(n), packed, Int64(outF), Int64(range.lowerBound), Int64(range.upperBound),
                               Int64(T), q, d, s, y, Int64(ldy))
        }
        // Slices of 32 outputs: the kernel's widest tile.
        if let pool, outF >= 64 { pool.parallelFor(outF, grain: 32, body) } else { body(0..<outF) }
    }

    // MARK: cache

    private struct Key: Hashable {
        let storage: ObjectIdentifier
        let offset: Int
    }

    private final class Entry: @unchecked Sendable {
        weak var storage: TensorStorage?
        let dtype: DType
        let shape: [Int]
        let packed: PackedWeight
        init(storage: TensorStorage, dtype: DType, shape: [Int], packed: PackedWeight) {
            self.storage = storage
            self.dtype = dtype
            self.shape = shape
            self.packed = packed
        }
    }

    private static let cache = Mutex<[Key: Entry]>([:])

    /// The packed form of `weight`, built on first use. An entry whose storage has been released is never
    /// returned (the weak reference no longer matches) and is dropped at the next insertion.
    public static func cached(for weight: Tensor, pool: ThreadPool? = nil) -> PackedWeight? {
        let key = Key(storage: ObjectIdentifier(weight.storage), offset: weight.offset)
        let hit: PackedWeight? = cache.withLock { entries in
            guard let entry = entries[key], entry.storage === weight.storage, entry.dtype == weight.dtype,
                  entry.shape == weight.shape else { return nil }
            return entry.packed
        }
        if let hit { return hit }
        guard let packed = PackedWeight(weight: weight, pool: pool) else { return nil }
        let entry = Entry(storage: weight.storage, dtype: weight.dtype, shape: weight.shape, packed: packed)
        cache.withLock { entries in
            entries = entries.filter { $0.value.storage != nil }
            entries[key] = entry
        }
        return packed
    }

    /// Bytes held by live cache entries.
    public static var cachedBytes: Int {
        cache.withLock { entries in entries.values.reduce(0) { $0 + ($1.storage == nil ? 0 : $1.packed.byteCount) } }
    }

    public static func removeCached() {
        cache.withLock { $0.removeAll() }
    }
}
