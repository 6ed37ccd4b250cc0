/// Element types of weights and activations. Raw values are ggml's type ids, so GGUF tensor infos map
/// directly (ggml.h: GGML_TYPE_F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30).
public enum DType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q8_0 = 8
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case bf16 = 30

    /// Elements per block (1 for plain floats). Block layouts are ggml's (ggml-common.h):
    /// - Q8_0: { f16 d; int8 qs[32] }                                   34 bytes / 32 values
    /// - Q4_0: { f16 d; uint8 qs[16] } (low nibbles = values 0…15)       18 bytes / 32 values
    /// - Q4_K: { f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128] }     144 bytes / 256 values
    /// - Q5_K: { f16 d; f16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] }  176 bytes / 256 values
    /// - Q6_K: { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d }  210 bytes / 256 values
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q8_0, .q4_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q8_0: 34
        case .q4_0: 18
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }

    public var isQuantized: Bool { blockSize > 1 }

    /// Bytes for `count` elements; nil when `count` is not a whole number of blocks.
    public func byteCount(elements count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        return count / blockSize * blockBytes
    }

    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .q8_0: "Q8_0"
        case .q4_0: "Q4_0"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        }
    }
}
