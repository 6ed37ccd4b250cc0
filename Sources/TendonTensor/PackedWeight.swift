/// Quantized weights repacked for the int8 prefill GEMM (layout: CTendonKernels/tk_gemm_packed.c).
///
/// API summary
/// - `PackedWeight(weight:pool:)`: repacks a Q8_0 / Q4_0 / Q4_K / Q5_K tensor [out, in] (nil for other dtypes)
///   into panels of 16 output rows × 4-byte k groups with f32 per-(row, block) scale and offset: 1.25
///   bytes per weight for Q8_0, 0.75 for Q4_0/Q4_K (codes stay 4-bit; unpacked in registers), 0.875 for Q5_K
///   (nibbles plus a bit plane of fifth bits).
/// - `PackedWeight.multiply(_:rows:into:ldy:pool:path:activations:)`: y[T, out] = x[T, in] · Wᵀ with
///   activations quantized per 32 values, to int8 or to 15 bits (`ActivationQuantization`; default: the
///   weight type's `preferred`); `.avx512vnni` runs the vpdpbusd kernel, `.scalar` its twin (same integer
///   sums, same float operations in the same order: bit-identical results).
/// - `ActivationQuantization` (.int8, .wide) and `.preferred(for:)`: wide for Q8_0, int8 for 4-bit weights.
/// - `PackedWeight.cached(for:pool:)`: the packed form of a weight, built on first use and held by the
///   weight's `TensorStorage` (by offset), so it lives exactly as long as the weights. When that storage
///   borrows memory (a mapped file), the original's pages are handed back (MADV_PAGEOUT), so the packed
///   copy replaces rather than adds to them in RSS;
///   `PackedWeight.cachedBytes(in:)`, `PackedWeight.removeCached(in:)`.
import CTendonKernels
#if canImport(Glibc)
import Glibc
#endif

/// How activations are quantized for the integer GEMM.
public enum ActivationQuantization: Sendable, CaseIterable {
    /// int8 per 32 values (ggml's Q8_0 activations): one vpdpbusd per weight vector; rounding error
    /// ≈ 0.3 % of a block's largest value.
    case int8
    /// A 15-bit integer per value (two int8 planes, a = 128·h + l): two vpdpbusd per weight vector, rounding
    /// error 1/128 of int8's. What Q8_0 weights need: with int8 activations the activation rounding, not
    /// the weights, was most of Q8_0's chunk error on the reference config (Tools/reference/quant_sensitivity.py: weights
    /// alone 0.017, activations alone 0.025, both 0.026 max |Δa'|).
    case wide

    /// Wide for Q8_0, whose weight error is below int8 activation rounding; int8 for 4-bit weights, whose
    /// own error is ~15× larger and hides it (llama.cpp's choice for all types).
    public static func preferred(for dtype: DType) -> ActivationQuantization {
        dtype == .q8_0 ? .wide : .int8
    }
}

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
        byteCount = tk_packed_bytes(wtype, Int64(outF), Int64(inF))
        // Its own mapping, so the memory goes back to the system when the weight dies (glibc keeps large freed
        // heap blocks once its mmap threshold has grown, which showed up as +40–60 MB of peak RSS).
        guard let mapped = mmap(nil, max(byteCount, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else { return nil }
        base = mapped
        let w = UnsafeRawPointer(weight.rawPointer), out = base
        let panels = (outF + 15) / 16
        var failed = false
        let body = { (range: Range<Int>) in
            if tk_pack_weights(wtype, Int64(inF), w, rowBytes, Int64(outF), Int64(range.lowerBound),
                               Int64(range.upperBound), out) != 0 { failed = true }
        }
        if let pool, panels >= 8 { pool.parallelFor(panels, body) } else { body(0..<panels) }
        if failed { munmap(base, max(byteCount, 1)); return nil }
    }

    deinit { munmap(base, max(byteCount, 1)) }

    /// Paths `multiply` runs.
    public static func supports(_ path: KernelPath) -> Bool { path == .scalar || path == .avx512vnni }

    /// y[t·ldy + o] = Σ_i x[t·in + i] · W[o, i] for t < rows, o < out.
    public func multiply(_ x: UnsafePointer<Float>, rows T: Int, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
                         pool: ThreadPool? = nil, path: KernelPath = .best,
                         activations: ActivationQuantization? = nil) throws(TensorError) {
        guard Self.supports(path), KernelPath.available.contains(path) else {
            throw .unsupported("packed int8 GEMM on path \(path)")
        }
        guard T > 0 else { return }
        let wide = (activations ?? .preferred(for: dtype)) == .wide
        let n = inFeatures, blocks = n / 32, ldy = ldy ?? outFeatures
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: T * n * (wide ? 2 : 1))
        let d = UnsafeMutablePointer<Float>.allocate(capacity: T * blocks)
        let s = UnsafeMutablePointer<Int32>.allocate(capacity: T * blocks)
        defer { q.deallocate(); d.deallocate(); s.deallocate() }
        let ql = q + T * n  // the low plane of wide activations
        let cpath = path.rawValue
        let quantizeRows = { (range: Range<Int>) in
            for t in range {
                if wide {
                    tk_quantize_act_wide_path(cpath, x + t * n, Int64(n), q + t * n, ql + t * n, d + t * blocks, s + t * blocks)
                } else {
                    tk_quantize_act_path(cpath, x + t * n, Int64(n), q + t * n, d + t * blocks, s + t * blocks)
                }
            }
        }
        if T >= 8, let pool { pool.parallelFor(T, quantizeRows) } else { quantizeRows(0..<T) }
        let wtype = Int32(dtype.rawValue), packed = UnsafeRawPointer(base), outF = outFeatures
        let body = { (range: Range<Int>) in
            if wide {
                _ = tk_gemm_packed_wide(wtype, cpath, Int64(n), packed, Int64(outF), Int64(range.lowerBound),
                                        Int64(range.upperBound), Int64(T), q, ql, d, s, y, Int64(ldy))
            } else {
                _ = tk_gemm_packed(wtype, cpath, Int64(n), packed, Int64(outF), Int64(range.lowerBound),
                                   Int64(range.upperBound), Int64(T), q, d, s, y, Int64(ldy))
            }
        }
        // Slices of 32 outputs: the kernel's widest tile.
        if let pool, outF >= 64 { pool.parallelFor(outF, grain: 32, body) } else { body(0..<outF) }
    }

    /// The packed form of `weight`, built on first use and stored with the weight's `TensorStorage` (by
    /// offset), so it is released together with the weights it came from.
    public static func cached(for weight: Tensor, pool: ThreadPool? = nil) -> PackedWeight? {
        let storage = weight.storage, offset = weight.offset
        let hit: PackedWeight? = storage.packedWeights.withLock { entries in
            guard let entry = entries[offset], entry.dtype == weight.dtype,
                  entry.outFeatures == weight.shape.first, entry.inFeatures == weight.shape.last else { return nil }
            return entry
        }
        if let hit { return hit }
        guard let packed = PackedWeight(weight: weight, pool: pool) else { return nil }
        storage.packedWeights.withLock { $0[offset] = packed }
        // Linear reads only the packed copy from now on; a mapped file's original pages need not stay resident.
        if storage.owner != nil, let rowBytes = weight.rowBytes {
            _ = tk_release_pages(weight.rawPointer, rowBytes * packed.outFeatures)
        }
        return packed
    }

    /// Bytes of the packed weights held by `storage`.
    public static func cachedBytes(in storage: TensorStorage) -> Int {
        storage.packedWeights.withLock { $0.values.reduce(0) { $0 + $1.byteCount } }
    }

    /// Drops the packed weights held by `storage` (they are rebuilt on next use).
    public static func removeCached(in storage: TensorStorage) {
        storage.packedWeights.withLock { $0.removeAll() }
    }
}
