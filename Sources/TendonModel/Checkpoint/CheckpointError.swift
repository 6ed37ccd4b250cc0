/// Every failure reading or writing a checkpoint file. The description always names the file and, when one is
/// involved, the tensor, so a bad multi-gigabyte download is diagnosed from one line.
public struct CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// open/mmap/write failed (errno text in the message).
        case io
        /// The file ends before a header, a value or a tensor's bytes do.
        case truncated
        /// Header JSON or GGUF metadata that is not what the format requires.
        case corruptHeader
        /// Wrong magic number or unsupported version.
        case badMagic
        case badVersion
        /// Tensor data outside the data section, misaligned, or overlapping another tensor.
        case badOffsets
        /// Shape × dtype size disagrees with the stored byte range.
        case sizeMismatch
        case unsupportedDType
        /// NaN or ±Inf in a weight.
        case nonFinite
        case missingTensor
        /// Caller misuse of the writer (tensors out of order, wrong byte count, duplicate names).
        case invalidArgument
    }

    public var kind: Kind
    public var file: String
    public var tensor: String?
    public var message: String

    public init(_ kind: Kind, file: String, tensor: String? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        if let tensor { return "\(file): tensor '\(tensor)': \(message)" }
        return "\(file): \(message)"
    }
}
