/// The one error type of the Dynamixel host client. A POD struct, so the real-time cycle can throw it
/// (typed throws) without allocating; `description` builds the message off that path.
///
/// API: `DynamixelError(kind:id:errorByte:serialError:)`, `.kind` (timeout, corrupt, servoError,
/// wrongReply, transport, invalidRequest), `.id`, `.errorByte`, `.serialError`, `.statusError`, `description`.
public struct DynamixelError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No (complete) reply before the deadline.
        case timeout
        /// A reply arrived damaged: CRC mismatch, impossible length, or cut short at the deadline.
        case corrupt
        /// The servo answered with an error code in its status error byte (`errorByte & 0x7F != 0`).
        case servoError
        /// A well-formed reply that does not answer the request (wrong parameter count or id).
        case wrongReply
        /// The serial port failed; `serialError` says how.
        case transport
        /// The request itself is impossible (id out of range, packet larger than the buffers).
        case invalidRequest
    }

    public var kind: Kind
    /// The servo the transaction addressed (0xFE for broadcast).
    public var id: UInt8
    /// The status error byte when the servo answered (alert bit 0x80 included).
    public var errorByte: UInt8
    public var serialError: SerialError?
    /// For `.wrongReply`/`.invalidRequest`: what was expected and found (counts or sizes).
    public var expected: Int
    public var found: Int

    public init(kind: Kind, id: UInt8, errorByte: UInt8 = 0, serialError: SerialError? = nil,
                expected: Int = 0, found: Int = 0) {
        self.kind = kind
        self.id = id
        self.errorByte = errorByte
        self.serialError = serialError
        self.expected = expected
        self.found = found
    }

    public var statusError: DynamixelStatusError { DynamixelStatusError(rawValue: errorByte) }

    public var description: String {
        let who = id == Dynamixel.broadcastID ? "broadcast" : "servo \(id)"
        switch kind {
        case .timeout: return "\(who): no status packet before the deadline (timeout)"
        case .corrupt: return "\(who): corrupt status packet (CRC mismatch, bad length or truncated)"
        case .servoError: return "\(who): servo reported an error: \(statusError) (error byte 0x\(String(errorByte, radix: 16)))"
        case .wrongReply: return "\(who): reply does not match the request: expected \(expected) data bytes, found \(found)"
        case .transport: return "\(who): " + (serialError.map { $0.description } ?? "serial transport failed")
        case .invalidRequest: return "\(who): invalid request: expected at most \(expected), found \(found)"
        }
    }
}
