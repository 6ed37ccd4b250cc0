/// The error byte of a status packet and the Hardware Error Status register (address 70).
///
/// API: `DynamixelStatusError(rawValue:)` with `.hardwareAlert` (bit 0x80), `.code` (`Code?`: resultFail 1,
/// instructionError 2, crcError 3, dataRange 4, dataLength 5, dataLimit 6, access 7; `.unknown` otherwise),
/// `.isOK`, `description`. `DynamixelHardwareErrorStatus` (OptionSet: inputVoltage, overheating,
/// motorEncoder, electricalShock, overload) with `description`.
public struct DynamixelStatusError: RawRepresentable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Code: UInt8, Sendable {
        case resultFail = 1, instructionError = 2, crcError = 3, dataRange = 4
        case dataLength = 5, dataLimit = 6, access = 7
        /// A value the protocol does not define (8…127).
        case unknown = 0xFF
    }

    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Bit 7: the servo has latched a hardware fault; the Hardware Error Status register says which.
    public var hardwareAlert: Bool { rawValue & 0x80 != 0 }

    public var code: Code? {
        let c = rawValue & 0x7F
        if c == 0 { return nil }
        return Code(rawValue: c) ?? .unknown
    }

    public var isOK: Bool { rawValue == 0 }

    public var description: String {
        var parts: [String] = []
        if let code {
            switch code {
            case .resultFail: parts.append("failed to process the instruction (result fail)")
            case .instructionError: parts.append("undefined or incorrect instruction")
            case .crcError: parts.append("servo saw a CRC mismatch in our packet")
            case .dataRange: parts.append("data out of range (address/length outside the control table)")
            case .dataLength: parts.append("data length shorter than the register")
            case .dataLimit: parts.append("value exceeds the register's limit")
            case .access: parts.append("access error (read-only register, EEPROM with torque on, or reserved)")
            case .unknown: parts.append("unknown error code \(rawValue & 0x7F)")
            }
        }
        if hardwareAlert {
            parts.append("hardware alert: check Hardware Error Status (address 70)")
        }
        return parts.isEmpty ? "no error" : parts.joined(separator: "; ")
    }
}

/// Register 70 of the X series. The servo turns torque off when one of these latches (per Shutdown,
/// register 63); only a REBOOT clears it.
public struct DynamixelHardwareErrorStatus: OptionSet, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let inputVoltage = DynamixelHardwareErrorStatus(rawValue: 1 << 0)
    public static let overheating = DynamixelHardwareErrorStatus(rawValue: 1 << 2)
    public static let motorEncoder = DynamixelHardwareErrorStatus(rawValue: 1 << 3)
    public static let electricalShock = DynamixelHardwareErrorStatus(rawValue: 1 << 4)
    public static let overload = DynamixelHardwareErrorStatus(rawValue: 1 << 5)

    public var description: String {
        var parts: [String] = []
        if contains(.inputVoltage) { parts.append("input voltage out of range") }
        if contains(.overheating) { parts.append("overheating") }
        if contains(.motorEncoder) { parts.append("motor encoder fault") }
        if contains(.electricalShock) { parts.append("electrical shock or circuit fault") }
        if contains(.overload) { parts.append("persistent overload") }
        let unknown = rawValue & ~0b0011_1101
        if unknown != 0 { parts.append("undefined bits 0x\(String(unknown, radix: 16))") }
        return parts.isEmpty ? "no hardware error" : parts.joined(separator: ", ")
    }
}
