import TendonTensor

/// Streams a GGUF v3 file that gguf-py 0.19 `GGUFReader` (and `GGUFFile`) read back with identical metadata
/// and tensor bytes. The header (metadata + every tensor's name, shape, type and offset) is written when the
/// writer is created, then tensors' bytes are appended one by one in the declared order, so a converter holds
/// one tensor at a time, never the whole model. Output goes to `<path>.partial` and is renamed by `finish()`.
///
/// API:
/// - `GGUFWriter(path:metadata:tensors:alignment:)` — `tensors` are `GGUFTensorDeclaration`s (name, dtype,
///   PyTorch-order shape); writes the header. A non-default alignment adds `general.alignment` (uint32).
/// - `write(_ name:bytes:)` — the next declared tensor's bytes (exactly its ggml byte size).
/// - `append(_ name:bytes:)` — part of the next tensor's bytes (it completes when its size is reached).
/// - `write(_ tensor:)` — same, from a `Tensor`.
/// - `finish()` — checks every tensor was written, renames into place.
/// - `GGUFWriter.write(path:metadata:tensors:alignment:)` — all at once from `Tensor`s.
public final class GGUFWriter {
    public struct TensorDeclaration: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]

        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    public let path: String
    public let alignment: Int
    private let output: OutputFile
    private let infos: [GGUFTensorInfo]
    private var next = 0
    /// Bytes of tensor `next` appended so far.
    private var written = 0
    private let dataStart: Int

    public init(path: String, metadata: [(key: String, value: GGUFValue)], tensors: [TensorDeclaration],
                alignment: Int = GGUFFormat.defaultAlignment) throws(CheckpointError)
    {
        self.path = path
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= Int(UInt32.max) else {
            throw CheckpointError(.invalidArgument, file: path, "alignment \(alignment) is not a power of two")
        }
        self.alignment = alignment
        var entries = metadata
        var seen = Set<String>()
        for (key, value) in entries {
            guard seen.insert(key).inserted else {
                throw CheckpointError(.invalidArgument, file: path, "metadata key '\(key)' given twice")
            }
            try Self.check(value, key: key, path: path)
        }
        if let declared = entries.first(where: { $0.key == GGUFFormat.alignmentKey })?.value {
            guard declared == .uint32(UInt32(alignment)) else {
                throw CheckpointError(.invalidArgument, file: path,
                                      "metadata \(GGUFFormat.alignmentKey) = \(declared) disagrees with alignment \(alignment)")
            }
        } else if alignment != GGUFFormat.defaultAlignment {
            entries.append((GGUFFormat.alignmentKey, .uint32(UInt32(alignment))))
        }

        var infos: [GGUFTensorInfo] = []
        var names = Set<String>()
        var offset = 0
        for tensor in tensors {
            guard names.insert(tensor.name).inserted else {
                throw CheckpointError(.invalidArgument, file: path, tensor: tensor.name, "tensor declared twice")
            }
            guard tensor.shape.count <= GGUFFormat.maxDimensions, tensor.shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError(.invalidArgument, file: path, tensor: tensor.name,
                                      "shape \(tensor.shape): at most \(GGUFFormat.maxDimensions) non-negative dimensions")
            }
            guard tensor.shape.last.map({ $0 % tensor.dtype.blockSize == 0 }) ?? (tensor.dtype.blockSize == 1),
                  let size = byteCount(shape: tensor.shape, dtype: tensor.dtype) else {
                throw CheckpointError(.invalidArgument, file: path, tensor: tensor.name,
                                      "shape \(tensor.shape): rows must be whole \(tensor.dtype) blocks of \(tensor.dtype.blockSize)")
            }
            infos.append(GGUFTensorInfo(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape,
                                        offset: offset, byteCount: size))
            offset += (size + alignment - 1) / alignment * alignment
        }
        self.infos = infos

        var header = ByteBuilder()
        header.append(GGUFFormat.magic)
        header.append(GGUFFormat.version)
        header.append(UInt64(infos.count))
        header.append(UInt64(entries.count))
        for (key, value) in entries {
            Self.appendString(key, to: &header)
            header.append(value.type.rawValue)
            Self.append(value, to: &header)
        }
        for info in infos {
            Self.appendString(info.name, to: &header)
            header.append(UInt32(info.shape.count))
            for extent in info.ne { header.append(UInt64(extent)) }
            header.append(info.dtype.rawValue)
            header.append(UInt64(info.offset))
        }
        dataStart = (header.bytes.count + alignment - 1) / alignment * alignment
        header.append([UInt8](repeating: 0, count: dataStart - header.bytes.count))
        output = try OutputFile(path: path)
        try output.write(header.bytes)
    }

    /// Appends the next declared tensor's bytes (all of them at once).
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard next < infos.count, written == 0, bytes.count == infos[next].byteCount else {
            try checkNext(name)
            throw CheckpointError(.invalidArgument, file: path, tensor: name,
                                  "\(infos[next].dtype) \(infos[next].shape) needs \(infos[next].byteCount) bytes, got \(bytes.count)"
                                  + (written > 0 ? " after \(written) bytes already appended" : ""))
        }
        try append(name, bytes: bytes)
    }

    /// Appends part of the next declared tensor's bytes; the tensor is complete (and padded) when its
    /// byte count is reached, so a converter can stream a large tensor a few rows at a time.
    public func append(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        try checkNext(name)
        let info = infos[next]
        guard bytes.count <= info.byteCount - written else {
            throw CheckpointError(.invalidArgument, file: path, tensor: name,
                                  "\(info.dtype) \(info.shape) needs \(info.byteCount) bytes, got \(written + bytes.count)")
        }
        try output.write(bytes)
        written += bytes.count
        if written == info.byteCount {
            let padded = (info.byteCount + alignment - 1) / alignment * alignment
            try output.writeZeros(padded - info.byteCount)
            next += 1
            written = 0
        }
    }

    private func checkNext(_ name: String) throws(CheckpointError) {
        guard next < infos.count else {
            throw CheckpointError(.invalidArgument, file: path, tensor: name, "all \(infos.count) declared tensors are written")
        }
        guard infos[next].name == name else {
            throw CheckpointError(.invalidArgument, file: path, tensor: name,
                                  "tensors must be written in declared order; expected '\(infos[next].name)'")
        }
    }

    public func write(_ tensor: Tensor) throws(CheckpointError) {
        guard next < infos.count, infos[next].dtype == tensor.dtype, infos[next].shape == tensor.shape else {
            throw CheckpointError(.invalidArgument, file: path, tensor: tensor.name,
                                  "\(tensor.dtype) \(tensor.shape) does not match the declaration")
        }
        try write(tensor.name, bytes: UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount))
    }

    public func finish() throws(CheckpointError) {
        guard next == infos.count, written == 0 else {
            throw CheckpointError(.invalidArgument, file: path, tensor: infos[next].name,
                                  "finished after \(next) of \(infos.count) tensors")
        }
        try output.commit()
    }

    public static func write(path: String, metadata: [(key: String, value: GGUFValue)], tensors: [Tensor],
                             alignment: Int = GGUFFormat.defaultAlignment) throws(CheckpointError)
    {
        let writer = try GGUFWriter(path: path, metadata: metadata,
                                    tensors: tensors.map { TensorDeclaration(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
                                    alignment: alignment)
        for tensor in tensors { try writer.write(tensor) }
        try writer.finish()
    }

    private static func check(_ value: GGUFValue, key: String, path: String) throws(CheckpointError) {
        guard case .array(let elementType, let elements) = value else { return }
        for element in elements {
            guard element.type == elementType else {
                throw CheckpointError(.invalidArgument, file: path,
                                      "metadata '\(key)': array of \(elementType) holds a \(element.type)")
            }
            try check(element, key: key, path: path)
        }
    }

    private static func appendString(_ text: String, to builder: inout ByteBuilder) {
        let utf8 = Array(text.utf8)
        builder.append(UInt64(utf8.count))
        builder.append(utf8)
    }

    private static func append(_ value: GGUFValue, to builder: inout ByteBuilder) {
        switch value {
        case .uint8(let v): builder.append(v)
        case .int8(let v): builder.append(v)
        case .uint16(let v): builder.append(v)
        case .int16(let v): builder.append(v)
        case .uint32(let v): builder.append(v)
        case .int32(let v): builder.append(v)
        case .uint64(let v): builder.append(v)
        case .int64(let v): builder.append(v)
        case .float32(let v): builder.append(v.bitPattern)
        case .float64(let v): builder.append(v.bitPattern)
        case .bool(let v): builder.append(UInt8(v ? 1 : 0))
        case .string(let v): appendString(v, to: &builder)
        case .array(let elementType, let elements):
            builder.append(elementType.rawValue)
            builder.append(UInt64(elements.count))
            for element in elements { append(element, to: &builder) }
        }
    }
}
