import TendonTensor

/// NaN/Inf detection for weights as stored, without converting them: a float is non-finite exactly when its
/// exponent bits are all ones, so f16/bf16 are checked on their bit patterns. Quantized blocks are checked
/// on their f16 scales (a NaN scale poisons every value of the block; the integer quants cannot be NaN).
///
/// API:
/// - `validateFinite(_ tensor:file:)` throws `CheckpointError(.nonFinite)` naming file, tensor and first bad index.
/// - `firstNonFiniteIndex(_ tensor:)` → flat element index (for quantized: the bad block's first element).
public func validateFinite(_ tensor: Tensor, file: String) throws(CheckpointError) {
    guard let index = firstNonFiniteIndex(tensor) else { return }
    let what = tensor.dtype.isQuantized ? "block scale of element" : "element"
    throw CheckpointError(.nonFinite, file: file, tensor: tensor.name,
                          "NaN or Inf at \(what) \(index) (flat index, shape \(tensor.shape), \(tensor.dtype))")
}

public func firstNonFiniteIndex(_ tensor: Tensor) -> Int? {
    let count = tensor.elementCount
    let raw = UnsafeRawPointer(tensor.rawPointer)
    switch tensor.dtype {
    case .f32:
        return firstAllOnes(raw, count: count, as: UInt32.self, mask: 0x7F80_0000)
    case .f16:
        return firstAllOnes(raw, count: count, as: UInt16.self, mask: 0x7C00)
    case .bf16:
        return firstAllOnes(raw, count: count, as: UInt16.self, mask: 0x7F80)
    case .q8_0, .q4_0:
        return firstBadScale(raw, tensor: tensor, scaleOffsets: [0])
    case .q4_K, .q5_K:
        return firstBadScale(raw, tensor: tensor, scaleOffsets: [0, 2])
    case .q6_K:
        return firstBadScale(raw, tensor: tensor, scaleOffsets: [208])
    }
}

// Unaligned loads: safetensors only guarantees 8-byte alignment of the data section, not of each tensor.
private func firstAllOnes<T: FixedWidthInteger>(_ raw: UnsafeRawPointer, count: Int, as: T.Type, mask: T) -> Int? {
    let stride = MemoryLayout<T>.size
    // Whole chunks first with an OR-reduction the compiler vectorizes; only a hit is rescanned.
    let chunk = 4096
    var start = 0
    while start < count {
        let end = min(start + chunk, count)
        var hits = 0
        for i in start..<end {
            let bits = T(littleEndian: raw.loadUnaligned(fromByteOffset: i * stride, as: T.self))
            hits &+= (bits & mask) == mask ? 1 : 0
        }
        if hits != 0 {
            for i in start..<end {
                let bits = T(littleEndian: raw.loadUnaligned(fromByteOffset: i * stride, as: T.self))
                if (bits & mask) == mask { return i }
            }
        }
        start = end
    }
    return nil
}

private func firstBadScale(_ raw: UnsafeRawPointer, tensor: Tensor, scaleOffsets: [Int]) -> Int? {
    let blocks = tensor.elementCount / tensor.dtype.blockSize
    let blockBytes = tensor.dtype.blockBytes
    for block in 0..<blocks {
        for offset in scaleOffsets {
            let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: block * blockBytes + offset, as: UInt16.self))
            if (bits & 0x7C00) == 0x7C00 { return block * tensor.dtype.blockSize }
        }
    }
    return nil
}
