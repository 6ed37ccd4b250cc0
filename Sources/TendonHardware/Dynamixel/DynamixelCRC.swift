/// CRC-16 of Dynamixel Protocol 2.0 (polynomial 0x8005, initial value 0, no reflection, no final XOR;
/// the "CRC-16/BUYPASS" parameters), computed with the same 256-entry table walk as the ROBOTIS SDK.
///
/// API: `DynamixelCRC.update(_:_:)` over an `UnsafeRawBufferPointer` (no allocation), `DynamixelCRC.update(_:byte:)`,
/// `DynamixelCRC.checksum(_ bytes: [UInt8])` for non-real-time code, `DynamixelCRC.bitwise(_:)` (the
/// table-free twin the tests compare against).
public enum DynamixelCRC {
    /// Built once from the polynomial rather than pasted, so a typo cannot hide in 256 constants;
    /// the tests check it against the bit-by-bit definition and the SDK's fixtures.
    @usableFromInline
    nonisolated(unsafe) static let table: UnsafeMutablePointer<UInt16> = {
        let t = UnsafeMutablePointer<UInt16>.allocate(capacity: 256)
        for i in 0..<256 {
            var crc = UInt16(i) << 8
            for _ in 0..<8 {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x8005 : crc << 1
            }
            t[i] = crc
        }
        return t
    }()

    @inlinable
    public static func update(_ crc: UInt16, byte: UInt8) -> UInt16 {
        let i = Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)
        return (crc << 8) ^ table[i]
    }

    @inlinable
    public static func update(_ crc: UInt16, _ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var c = crc
        let t = table
        for b in bytes {
            c = (c << 8) ^ t[Int(UInt8(truncatingIfNeeded: c >> 8) ^ b)]
        }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt16 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    /// The defining shift-register form, one bit at a time (reference for the table walk).
    public static func bitwise(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes {
            crc ^= UInt16(b) << 8
            for _ in 0..<8 {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x8005 : crc << 1
            }
        }
        return crc
    }
}
