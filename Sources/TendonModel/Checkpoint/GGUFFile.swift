import TendonTensor

/// A GGUF v3 file (ggml's gguf.md; the layout gguf-py 0.19 `GGUFWriter` writes), memory-mapped; tensors are
/// views into the mapping. Layout: magic "GGUF", u32 version 3, u64 tensor count, u64 metadata count, metadata
/// (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims] in ggml order, u32 ggml type,
/// u64 offset in the data section), zero padding to `general.alignment` (default 32), data section with every
/// tensor at an aligned offset. Strings are u64 length + UTF-8 bytes; everything is little-endian.
///
/// API:
/// - `GGUFFile(path:)` — parses and checks the header (bounds, types, alignment, overlaps, sizes).
/// - `metadata[key]` → `GGUFValue`; `metadataKeys` in file order; `alignment`, `dataOffset`, `version`.
/// - `tensorInfos` (file order), `names`, `info(_:)`, `tensor(_:validate:)` → `Tensor` view (shape in PyTorch
///   order: the reverse of ne[]); `validate` (default true) runs `validateFinite` (block scales for quantized).
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensorInfos: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    public let file: MappedFile
    private let infoIndex: [String: Int]
    private let storage: TensorStorage

    public init(path: String) throws(CheckpointError) {
        self.path = path
        file = try MappedFile(path: path)
        storage = file.makeStorage()
        var cursor = GGUFCursor(bytes: file.bytes, path: path)

        let magic: UInt32 = try cursor.read("magic")
        guard magic == GGUFFormat.magic else {
            throw CheckpointError(.badMagic, file: path,
                                  "expected magic 'GGUF' (0x46554747), found 0x\(String(magic, radix: 16))")
        }
        version = try cursor.read("version")
        guard version == GGUFFormat.version else {
            let hint = version.byteSwapped == GGUFFormat.version ? " (a big-endian file; only little-endian is supported)" : ""
            throw CheckpointError(.badVersion, file: path, "expected GGUF version 3, found \(version)\(hint)")
        }
        let tensorCount: UInt64 = try cursor.read("tensor count")
        let metadataCount: UInt64 = try cursor.read("metadata count")
        // Every entry takes well over one byte, so a count beyond the file size is corruption, not a big file.
        guard tensorCount <= UInt64(file.byteCount), metadataCount <= UInt64(file.byteCount) else {
            throw CheckpointError(.truncated, file: path,
                                  "header claims \(tensorCount) tensors and \(metadataCount) metadata entries in a \(file.byteCount)-byte file")
        }

        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        for _ in 0..<metadataCount {
            let key = try cursor.readString("metadata key")
            let rawType: UInt32 = try cursor.read("type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw CheckpointError(.corruptHeader, file: path, "metadata '\(key)' has unknown value type \(rawType)")
            }
            let value = try cursor.readValue(type, key: key, depth: 0)
            guard values[key] == nil else {
                throw CheckpointError(.corruptHeader, file: path, "metadata key '\(key)' appears twice")
            }
            keys.append(key)
            values[key] = value
        }
        metadataKeys = keys
        metadata = values

        var alignment = GGUFFormat.defaultAlignment
        if let value = values[GGUFFormat.alignmentKey] {
            guard case .uint32(let declared) = value, declared > 0, declared & (declared - 1) == 0 else {
                throw CheckpointError(.corruptHeader, file: path,
                                      "\(GGUFFormat.alignmentKey) must be a uint32 power of two, found \(value)")
            }
            alignment = Int(declared)
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let info = try cursor.readTensorInfo()
            guard index[info.name] == nil else {
                throw CheckpointError(.corruptHeader, file: path, tensor: info.name, "tensor name appears twice")
            }
            index[info.name] = infos.count
            infos.append(info)
        }
        let headerEnd = cursor.position
        dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        let dataCount = file.byteCount - dataOffset

        for info in infos {
            guard info.offset % alignment == 0 else {
                throw CheckpointError(.badOffsets, file: path, tensor: info.name,
                                      "data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            guard dataCount >= 0, info.offset <= dataCount, info.byteCount <= dataCount - info.offset else {
                throw CheckpointError(.truncated, file: path, tensor: info.name,
                                      "data \(info.offset)..<\(info.offset + info.byteCount) extends beyond the data section "
                                      + "(\(max(dataCount, 0)) bytes from file offset \(dataOffset))")
            }
        }
        let ordered = infos.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (previous, next) in zip(ordered, ordered.dropFirst())
        where next.offset < previous.offset + previous.byteCount && next.byteCount > 0 {
            throw CheckpointError(.badOffsets, file: path, tensor: next.name,
                                  "data \(next.offset)..<\(next.offset + next.byteCount) overlaps tensor '\(previous.name)' "
                                  + "(\(previous.offset)..<\(previous.offset + previous.byteCount))")
        }
        tensorInfos = infos
        infoIndex = index
    }

    public var names: [String] { tensorInfos.map(\.name) }

    public func info(_ name: String) -> GGUFTensorInfo? { infoIndex[name].map { tensorInfos[$0] } }

    public func tensor(_ name: String, validate: Bool = true) throws(CheckpointError) -> Tensor {
        guard let info = info(name) else {
            throw CheckpointError(.missingTensor, file: path, tensor: name, "no such tensor in this file")
        }
        let tensor = Tensor(name: name, dtype: info.dtype, shape: info.shape, storage: storage,
                            offset: dataOffset + info.offset)
        if validate { try validateFinite(tensor, file: path) }
        return tensor
    }
}

/// Bounds-checked little-endian reads over the mapping; every overrun is a `.truncated` error saying what was
/// being read.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    mutating func read<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws(CheckpointError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw CheckpointError(.truncated, file: path,
                                  "file ends at byte \(bytes.count) while reading \(what()) (\(size) bytes at \(position))")
        }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += size
        return value
    }

    mutating func readString(_ what: @autoclosure () -> String) throws(CheckpointError) -> String {
        let length: UInt64 = try read("length of \(what())")
        guard length <= UInt64(remaining) else {
            throw CheckpointError(.truncated, file: path,
                                  "\(what()) of \(length) bytes at \(position) extends beyond the end of the file (\(bytes.count) bytes)")
        }
        let start = position
        position += Int(length)
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    mutating func readValue(_ type: GGUFValueType, key: String, depth: Int) throws(CheckpointError) -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try read(what))
        case .int8: return .int8(try read(what))
        case .uint16: return .uint16(try read(what))
        case .int16: return .int16(try read(what))
        case .uint32: return .uint32(try read(what))
        case .int32: return .int32(try read(what))
        case .uint64: return .uint64(try read(what))
        case .int64: return .int64(try read(what))
        case .float32: return .float32(Float(bitPattern: try read(what)))
        case .float64: return .float64(Double(bitPattern: try read(what)))
        case .bool:
            let byte: UInt8 = try read(what)
            guard byte <= 1 else {
                throw CheckpointError(.corruptHeader, file: path, "metadata '\(key)': bool byte is \(byte), expected 0 or 1")
            }
            return .bool(byte == 1)
        case .string: return .string(try readString(what))
        case .array:
            guard depth < 8 else {
                throw CheckpointError(.corruptHeader, file: path, "metadata '\(key)': arrays nested deeper than 8")
            }
            let rawType: UInt32 = try read("array type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw CheckpointError(.corruptHeader, file: path, "metadata '\(key)': unknown array element type \(rawType)")
            }
            let count: UInt64 = try read("array length of '\(key)'")
            let minimumSize: UInt64 = switch elementType {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64, .string: 8
            case .array: 12
            }
            guard count <= UInt64(remaining) / minimumSize else {
                throw CheckpointError(.truncated, file: path,
                                      "metadata '\(key)': array of \(count) elements extends beyond the end of the file")
            }
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(count))
            for _ in 0..<count { elements.append(try readValue(elementType, key: key, depth: depth + 1)) }
            return .array(elementType, elements)
        }
    }

    mutating func readTensorInfo() throws(CheckpointError) -> GGUFTensorInfo {
        let name = try readString("tensor name")
        let dimensions: UInt32 = try read("n_dims of tensor '\(name)'")
        guard dimensions <= GGUFFormat.maxDimensions else {
            throw CheckpointError(.corruptHeader, file: path, tensor: name,
                                  "n_dims is \(dimensions), at most \(GGUFFormat.maxDimensions) are allowed")
        }
        var ne: [Int] = []
        for axis in 0..<Int(dimensions) {
            let extent: UInt64 = try read("ne[\(axis)] of tensor '\(name)'")
            guard extent <= UInt64(Int.max) else {
                throw CheckpointError(.corruptHeader, file: path, tensor: name, "ne[\(axis)] = \(extent) is out of range")
            }
            ne.append(Int(extent))
        }
        let typeID: UInt32 = try read("type of tensor '\(name)'")
        guard let dtype = DType(rawValue: typeID) else {
            throw CheckpointError(.unsupportedDType, file: path, tensor: name,
                                  "ggml type \(typeID)\(ggmlTypeName(typeID).map { " (\($0))" } ?? "") is not supported "
                                  + "(F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)")
        }
        let offset: UInt64 = try read("offset of tensor '\(name)'")
        guard offset <= UInt64(bytes.count) else {
            throw CheckpointError(.truncated, file: path, tensor: name,
                                  "data offset \(offset) is beyond the end of the file (\(bytes.count) bytes)")
        }
        if let row = ne.first, row % dtype.blockSize != 0 {
            throw CheckpointError(.sizeMismatch, file: path, tensor: name,
                                  "row of \(row) elements is not a whole number of \(dtype) blocks (\(dtype.blockSize))")
        }
        let shape = Array(ne.reversed())
        guard let size = byteCount(shape: shape, dtype: dtype) else {
            throw CheckpointError(.sizeMismatch, file: path, tensor: name, "shape \(shape) of \(dtype) overflows")
        }
        return GGUFTensorInfo(name: name, dtype: dtype, shape: shape, offset: Int(offset), byteCount: size)
    }
}

/// ggml type names for ids we do not load, so the error says what the file holds.
func ggmlTypeName(_ id: UInt32) -> String? {
    let names: [UInt32: String] = [3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
                                   15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
                                   21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64",
                                   28: "F64", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4"]
    return names[id]
}
