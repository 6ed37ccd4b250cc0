/// Dynamixel Protocol 2.0 instruction codes and wire constants (ROBOTIS DynamixelSDK `robotis_def.py`).
///
/// API: `DynamixelInstruction` (raw `UInt8` values), `Dynamixel.broadcastID`, `Dynamixel.maxID`,
/// `Dynamixel.header`, `Dynamixel.headerSize` (7 bytes before the instruction), `Dynamixel.minimumStatusSize`.
public enum DynamixelInstruction: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ping = 0x01
    case read = 0x02
    case write = 0x03
    case regWrite = 0x04
    case action = 0x05
    case factoryReset = 0x06
    case reboot = 0x08
    case clear = 0x10
    case status = 0x55
    case syncRead = 0x82
    case syncWrite = 0x83
    case fastSyncRead = 0x8A
    case bulkRead = 0x92
    case bulkWrite = 0x93
    case fastBulkRead = 0x9A

    public var description: String {
        switch self {
        case .ping: return "PING"
        case .read: return "READ"
        case .write: return "WRITE"
        case .regWrite: return "REG WRITE"
        case .action: return "ACTION"
        case .factoryReset: return "FACTORY RESET"
        case .reboot: return "REBOOT"
        case .clear: return "CLEAR"
        case .status: return "STATUS"
        case .syncRead: return "SYNC READ"
        case .syncWrite: return "SYNC WRITE"
        case .fastSyncRead: return "FAST SYNC READ"
        case .bulkRead: return "BULK READ"
        case .bulkWrite: return "BULK WRITE"
        case .fastBulkRead: return "FAST BULK READ"
        }
    }
}

public enum Dynamixel {
    /// Every servo acts on a packet sent to this id; only PING and the read group instructions get replies.
    public static let broadcastID: UInt8 = 0xFE
    /// Highest id a servo may have (0xFD is reserved, 0xFE broadcast, 0xFF invalid).
    public static let maxID: UInt8 = 0xFC
    /// `FF FF FD 00`: the reserved byte 00 distinguishes a header from the stuffed sequence `FF FF FD FD`.
    public static let header: (UInt8, UInt8, UInt8, UInt8) = (0xFF, 0xFF, 0xFD, 0x00)
    /// Header (4) + id (1) + length (2): the bytes not counted by the length field.
    public static let headerSize = 7
    /// Header + instruction 0x55 + error + CRC.
    public static let minimumStatusSize = 11
    /// The SDK's TXPACKET_MAX_LEN / RXPACKET_MAX_LEN.
    public static let maxPacketSize = 1024
}
