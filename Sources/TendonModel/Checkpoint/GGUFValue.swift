/// GGUF metadata values (gguf-py `GGUFValueType`; ids are the on-disk type tags).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12
}

/// One metadata value. Strings are UTF-8 on disk (invalid sequences read as U+FFFD, so such a string does
/// not round-trip byte for byte); arrays hold values of one element type (nested arrays allowed).
///
/// Accessors: `type`, `string`, `int` (any integer type), `double` (any number), `bool`, `array`, `strings`.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Element type and elements; every element must have that type.
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    public var string: String? { if case .string(let value) = self { value } else { nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var array: [GGUFValue]? { if case .array(_, let values) = self { values } else { nil } }
    public var strings: [String]? { array?.compactMap(\.string) }

    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }
}

/// A tensor as the GGUF header describes it.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    /// PyTorch order (row-major, last dimension contiguous) = reversed `ne`.
    public var shape: [Int]
    /// Offset within the data section (a multiple of the alignment).
    public var offset: Int
    public var byteCount: Int

    /// ggml order: ne[0] is the contiguous dimension.
    public var ne: [Int] { shape.reversed() }

    public init(name: String, dtype: DType, shape: [Int], offset: Int = 0, byteCount: Int = 0) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.offset = offset
        self.byteCount = byteCount
    }
}

import TendonTensor

public enum GGUFFormat {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" read as a little-endian u32
    public static let version: UInt32 = 3
    public static let defaultAlignment = 32
    public static let alignmentKey = "general.alignment"
    /// ggml's GGML_MAX_DIMS is 4, but the vision tower's Conv3d patch weight is 5-D and DESIGN §3 keeps shapes
    /// as they are; gguf-py reads any n_dims, so Tendon files allow up to 8.
    public static let maxDimensions = 8
}
