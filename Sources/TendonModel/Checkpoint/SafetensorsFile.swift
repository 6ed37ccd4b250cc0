import Foundation
import TendonTensor

/// One `.safetensors` file, memory-mapped; tensors are views into the mapping (never copied).
/// Format (huggingface/safetensors): u64 little-endian header length N, N bytes of JSON
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}`, then the data
/// section; offsets are relative to the data section's start (8 + N).
///
/// API:
/// - `SafetensorsFile(path:)` — parses and checks the whole header (bounds, overlaps, sizes, dtypes).
/// - `names` (file order), `metadata`, `entry(_:)` → `SafetensorsEntry` (dtype, shape, byte range).
/// - `tensor(_:validate:)` → `Tensor` view; `validate` (default true) runs `validateFinite`.
/// Supported dtypes: F32, F16, BF16; any other dtype is reported as `.unsupportedDType` when the header is read.
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let names: [String]
    public let metadata: [String: String]
    public let file: MappedFile
    private let entries: [String: SafetensorsEntry]
    private let storage: TensorStorage

    public init(path: String) throws(CheckpointError) {
        self.path = path
        file = try MappedFile(path: path)
        storage = file.makeStorage()
        let parsed = try SafetensorsHeader.parse(file.bytes, path: path)
        entries = parsed.entries
        names = parsed.names
        metadata = parsed.metadata
    }

    public func entry(_ name: String) -> SafetensorsEntry? { entries[name] }
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    public func tensor(_ name: String, validate: Bool = true) throws(CheckpointError) -> Tensor {
        guard let entry = entries[name] else {
            throw CheckpointError(.missingTensor, file: path, tensor: name, "no such tensor in this file")
        }
        let tensor = Tensor(name: name, dtype: entry.dtype, shape: entry.shape, storage: storage,
                            offset: entry.byteRange.lowerBound)
        if validate { try validateFinite(tensor, file: path) }
        return tensor
    }
}

public struct SafetensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Absolute byte range in the file.
    public var byteRange: Range<Int>
}

/// safetensors dtype names ↔ our dtypes.
enum SafetensorsDType {
    static func dtype(_ text: String) -> DType? {
        switch text {
        case "F32": .f32
        case "F16": .f16
        case "BF16": .bf16
        default: nil
        }
    }

    static func name(_ dtype: DType) -> String? {
        switch dtype {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        default: nil
        }
    }

    /// Every dtype the format defines, so an unsupported one is told apart from garbage.
    static let known: Set<String> = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64",
                                      "I64", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
                                      "C64"]
}

enum SafetensorsHeader {
    /// safetensors itself refuses headers over 100 MB; a larger length means a corrupt file, not a big model.
    static let maxHeaderBytes = 100_000_000

    struct Parsed {
        var entries: [String: SafetensorsEntry]
        var names: [String]
        var metadata: [String: String]
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(CheckpointError) -> Parsed {
        guard bytes.count >= 8 else {
            throw CheckpointError(.truncated, file: path,
                                  "file is \(bytes.count) bytes; a safetensors file starts with an 8-byte header length")
        }
        let length = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard length <= UInt64(maxHeaderBytes) else {
            throw CheckpointError(.corruptHeader, file: path, "header length \(length) exceeds the 100 MB limit")
        }
        guard Int(length) <= bytes.count - 8 else {
            throw CheckpointError(.truncated, file: path,
                                  "header of \(length) bytes extends beyond the end of the file (\(bytes.count) bytes)")
        }
        let dataStart = 8 + Int(length)
        let dataCount = bytes.count - dataStart
        let json = Data(bytes[8..<dataStart])
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json)
        } catch {
            throw CheckpointError(.corruptHeader, file: path, "header is not valid JSON (\(error.localizedDescription))")
        }
        guard let header = object as? [String: Any] else {
            throw CheckpointError(.corruptHeader, file: path, "header JSON is not an object")
        }

        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let values = raw as? [String: String] else {
                throw CheckpointError(.corruptHeader, file: path, "__metadata__ must map strings to strings")
            }
            metadata = values
        }

        var entries: [String: SafetensorsEntry] = [:]
        for (name, value) in header where name != "__metadata__" {
            entries[name] = try entry(name: name, value: value, path: path, dataStart: dataStart, dataCount: dataCount)
        }

        let ordered = entries.values.sorted {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name)
        }
        for (previous, next) in zip(ordered, ordered.dropFirst())
        where next.byteRange.lowerBound < previous.byteRange.upperBound && !next.byteRange.isEmpty {
            throw CheckpointError(.badOffsets, file: path, tensor: next.name,
                                  "data \(next.byteRange.lowerBound - dataStart)..<\(next.byteRange.upperBound - dataStart) "
                                  + "overlaps tensor '\(previous.name)' "
                                  + "(\(previous.byteRange.lowerBound - dataStart)..<\(previous.byteRange.upperBound - dataStart))")
        }
        return Parsed(entries: entries, names: ordered.map(\.name), metadata: metadata)
    }

    private static func entry(name: String, value: Any, path: String, dataStart: Int, dataCount: Int)
        throws(CheckpointError) -> SafetensorsEntry
    {
        guard let fields = value as? [String: Any] else {
            throw CheckpointError(.corruptHeader, file: path, tensor: name, "header entry is not an object")
        }
        guard let dtypeName = fields["dtype"] as? String else {
            throw CheckpointError(.corruptHeader, file: path, tensor: name, "missing string field 'dtype'")
        }
        guard let dtype = SafetensorsDType.dtype(dtypeName) else {
            let why = SafetensorsDType.known.contains(dtypeName) ? "is not supported" : "is not a safetensors dtype"
            throw CheckpointError(.unsupportedDType, file: path, tensor: name,
                                  "dtype '\(dtypeName)' \(why) (expected F32, F16 or BF16)")
        }
        guard let shape = integers(fields["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(.corruptHeader, file: path, tensor: name,
                                  "'shape' must be an array of non-negative integers, found \(fields["shape"] ?? "nothing")")
        }
        guard let offsets = integers(fields["data_offsets"]), offsets.count == 2 else {
            throw CheckpointError(.corruptHeader, file: path, tensor: name,
                                  "'data_offsets' must be [begin, end], found \(fields["data_offsets"] ?? "nothing")")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw CheckpointError(.badOffsets, file: path, tensor: name, "data_offsets [\(begin), \(end)] are not ordered")
        }
        guard end <= dataCount else {
            throw CheckpointError(.truncated, file: path, tensor: name,
                                  "data ends at byte \(end) of the data section, which has only \(dataCount) bytes")
        }
        guard let expected = byteCount(shape: shape, dtype: dtype), expected == end - begin else {
            throw CheckpointError(.sizeMismatch, file: path, tensor: name,
                                  "shape \(shape) of \(dtypeName) needs \(byteCount(shape: shape, dtype: dtype).map(String.init) ?? "too many") bytes "
                                  + "but data_offsets span \(end - begin)")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
    }

    /// JSON numbers that are exact non-fractional integers (1.5 or "3" are rejected).
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        for element in array {
            // NSNumber bridging to Int is exact: 1.5 does not convert.
            guard let integer = element as? Int else { return nil }
            result.append(integer)
        }
        return result
    }
}

/// Bytes for `shape` of `dtype`, nil on overflow or a partial block.
func byteCount(shape: [Int], dtype: DType) -> Int? {
    var count = 1
    for dimension in shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
        guard !overflow else { return nil }
        count = product
    }
    guard count % dtype.blockSize == 0 else { return nil }
    let (bytes, overflow) = (count / dtype.blockSize).multipliedReportingOverflow(by: dtype.blockBytes)
    return overflow ? nil : bytes
}
