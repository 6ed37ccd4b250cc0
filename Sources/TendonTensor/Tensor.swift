/// Bytes a tensor lives in: either owned (allocated, 64-byte aligned) or borrowed from a memory-mapped
/// file that `owner` keeps alive, so weights are never copied out of the file (model RSS ≈ file size).
import Synchronization

public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    /// Keeps a mapping (or another storage) alive while views into it exist; nil when we own `base`.
    public let owner: AnyObject?
    private let owned: Bool
    /// Repacked forms of weights that live in this storage, by byte offset (`PackedWeight.cached`); they
    /// are released with the storage.
    let packedWeights = Mutex<[Int: PackedWeight]>([:])

    /// Zero-filled, 64-byte aligned (cache line and AVX-512 friendly).
    public init(byteCount: Int) {
        self.byteCount = byteCount
        base = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        owner = nil
        owned = true
    }

    /// A view of memory owned by `owner` (e.g. a file mapping).
    public init(borrowing base: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.base = base
        self.byteCount = byteCount
        self.owner = owner
        owned = false
    }

    deinit { if owned { base.deallocate() } }
}

/// A named n-dimensional array, row-major, with the shape in PyTorch order (a Linear weight is
/// [out, in]; GGUF stores the reversed ne[] order and readers convert). Quantized tensors are blocks
/// along the last (contiguous) dimension.
public struct Tensor: @unchecked Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var storage: TensorStorage
    /// Byte offset of element 0 within `storage`.
    public var offset: Int

    public init(name: String, dtype: DType, shape: [Int], storage: TensorStorage, offset: Int = 0) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// A new zeroed f32 tensor.
    public init(zeros shape: [Int], name: String = "") {
        let count = shape.reduce(1, *)
        self.init(name: name, dtype: .f32, shape: shape, storage: TensorStorage(byteCount: count * 4))
    }

    /// A new f32 tensor holding `values` (row-major).
    public init(_ values: [Float], shape: [Int], name: String = "") {
        precondition(values.count == shape.reduce(1, *), "value count \(values.count) does not match shape \(shape)")
        self.init(zeros: shape, name: name)
        values.withUnsafeBytes { raw in storage.base.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var byteCount: Int { dtype.byteCount(elements: elementCount) ?? 0 }
    public var rawPointer: UnsafeMutableRawPointer { storage.base + offset }

    /// The f32 elements (dtype must be f32).
    public var floats: UnsafeMutableBufferPointer<Float> {
        precondition(dtype == .f32, "\(name): \(dtype) tensor read as f32")
        return UnsafeMutableBufferPointer(start: rawPointer.assumingMemoryBound(to: Float.self), count: elementCount)
    }

    /// Copies out as [Float] (f32 only; quantized tensors go through the dequantizers).
    public func toArray() -> [Float] { Array(floats) }
}
