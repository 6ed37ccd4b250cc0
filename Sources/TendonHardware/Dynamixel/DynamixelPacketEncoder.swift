/// Encodes Protocol 2.0 instruction and status packets exactly as ROBOTIS DynamixelSDK `txPacket` does:
/// header `FF FF FD 00`, id, length (LE, counts instruction … CRC after stuffing), instruction, [error],
/// parameters with byte stuffing (`FF FF FD` in the body gets an extra `FD`), CRC-16 (LE) over everything.
///
/// API (real-time, no allocation; returns the number of bytes written):
///   `DynamixelPacketEncoder.encodeInstruction(id:instruction:parameters:into:) throws(DynamixelEncodingError) -> Int`
///   `DynamixelPacketEncoder.encodeStatus(id:error:parameters:into:) throws(DynamixelEncodingError) -> Int`
///   `DynamixelPacketEncoder.maxEncodedSize(bodyCount:)` (worst case with stuffing)
///   `DynamixelFastStatusWriter` builds the single FAST SYNC / FAST BULK READ reply block by block.
/// Convenience for non-real-time code: `DynamixelPacketEncoder.instruction(id:_:parameters:) -> [UInt8]`,
///   `.status(id:error:parameters:) -> [UInt8]`, `.fastStatus(blocks:) -> [UInt8]`.
public enum DynamixelPacketEncoder {
    /// Stuffing adds at most one byte per three body bytes.
    public static func maxEncodedSize(bodyCount: Int) -> Int {
        Dynamixel.headerSize + bodyCount + bodyCount / 3 + 1 + 2
    }

    public static func encodeInstruction(
        id: UInt8, instruction: DynamixelInstruction, parameters: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) throws(DynamixelEncodingError) -> Int {
        try encode(id: id, instruction: instruction.rawValue, error: nil, parameters: parameters, into: out)
    }

    public static func encodeStatus(
        id: UInt8, error: UInt8, parameters: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(DynamixelEncodingError) -> Int {
        try encode(id: id, instruction: DynamixelInstruction.status.rawValue, error: error,
                   parameters: parameters, into: out)
    }

    /// One pass: bytes are stuffed as they are copied; the length field is patched at the end, which
    /// is safe because the SDK's stuffing test never looks back further than the instruction byte for
    /// any byte that could be `FD` (instructions are never `FF`).
    @usableFromInline
    static func encode(
        id: UInt8, instruction: UInt8, error: UInt8?, parameters: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) throws(DynamixelEncodingError) -> Int {
        let bodyCount = 1 + (error == nil ? 0 : 1) + parameters.count
        let worst = maxEncodedSize(bodyCount: bodyCount)
        // Exact size is only known after stuffing; demand the worst case only when it could matter.
        if out.count < Dynamixel.headerSize + bodyCount + 2 {
            throw DynamixelEncodingError(needed: Dynamixel.headerSize + bodyCount + 2, available: out.count)
        }
        var w = StuffingWriter(out: out)
        w.body(instruction)
        if let error { w.body(error) }
        for b in parameters { w.body(b) }
        let n = w.n
        guard !w.overflow, n + 2 <= out.count else {
            throw DynamixelEncodingError(needed: worst, available: out.count)
        }
        let length = n - Dynamixel.headerSize + 2
        guard length <= 0xFFFF else { throw DynamixelEncodingError(needed: length, available: 0xFFFF) }
        out[0] = 0xFF; out[1] = 0xFF; out[2] = 0xFD; out[3] = 0x00
        out[4] = id
        out[5] = UInt8(truncatingIfNeeded: length)
        out[6] = UInt8(truncatingIfNeeded: length >> 8)
        let crc = DynamixelCRC.update(0, UnsafeRawBufferPointer(rebasing: out[0..<n]))
        out[n] = UInt8(truncatingIfNeeded: crc)
        out[n + 1] = UInt8(truncatingIfNeeded: crc >> 8)
        return n + 2
    }

    // MARK: - Convenience (allocates; not for the real-time cycle)

    public static func instruction(id: UInt8, _ instruction: DynamixelInstruction, parameters: [UInt8] = []) -> [UInt8] {
        encodeToArray(bodyCount: 1 + parameters.count) { out in
            parameters.withUnsafeBytes { p in
                (try? encodeInstruction(id: id, instruction: instruction, parameters: p, into: out)) ?? 0
            }
        }
    }

    public static func status(id: UInt8, error: UInt8 = 0, parameters: [UInt8] = []) -> [UInt8] {
        encodeToArray(bodyCount: 2 + parameters.count) { out in
            parameters.withUnsafeBytes { p in
                (try? encodeStatus(id: id, error: error, parameters: p, into: out)) ?? 0
            }
        }
    }

    /// The combined reply to FAST SYNC READ / FAST BULK READ, blocks in the order the servos answer.
    public static func fastStatus(blocks: [(id: UInt8, error: UInt8, data: [UInt8])]) -> [UInt8] {
        let total = blocks.reduce(0) { $0 + $1.data.count }
        var result = [UInt8](repeating: 0, count: DynamixelFastStatusWriter.packetSize(
            blockCount: blocks.count, totalDataBytes: total))
        result.withUnsafeMutableBytes { buf in
            var w = DynamixelFastStatusWriter(buffer: buf)
            // Sizes were computed above, so these cannot fail.
            try? w.begin(blockCount: blocks.count, totalDataBytes: total)
            for b in blocks {
                b.data.withUnsafeBytes { d in try? w.appendBlock(id: b.id, error: b.error, data: d) }
            }
        }
        return result
    }

    /// Copies body bytes and inserts the stuffing `FD`; the look-behind uses the unstuffed bytes, as the
    /// SDK's `addStuffing` reads its input packet.
    @usableFromInline
    struct StuffingWriter {
        let out: UnsafeMutableRawBufferPointer
        var n = Dynamixel.headerSize
        var p1: UInt8 = 0
        var p2: UInt8 = 0
        var overflow = false

        @usableFromInline init(out: UnsafeMutableRawBufferPointer) { self.out = out }

        @inline(__always) mutating func put(_ b: UInt8) {
            if n < out.count { out[n] = b; n += 1 } else { overflow = true }
        }

        @inline(__always) mutating func body(_ b: UInt8) {
            put(b)
            if b == 0xFD && p1 == 0xFF && p2 == 0xFF { put(0xFD) }
            p2 = p1
            p1 = b
        }
    }

    private static func encodeToArray(
        bodyCount: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int
    ) -> [UInt8] {
        // Sized for the worst case, so encoding cannot fail here.
        var buffer = [UInt8](repeating: 0, count: maxEncodedSize(bodyCount: bodyCount))
        let n = buffer.withUnsafeMutableBytes { out in body(out) }
        buffer.removeSubrange(n...)
        return buffer
    }
}

/// The encoder's only failure: the caller's buffer is too small. POD, so it is thrown without allocation.
public struct DynamixelEncodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public var needed: Int
    public var available: Int
    public var description: String {
        "Dynamixel packet needs up to \(needed) bytes but the buffer holds \(available)"
    }
}

/// Writes the FAST SYNC READ / FAST BULK READ reply: one status packet with id 0xFE and no byte stuffing
/// (the SDK does not unstuff it), whose body is, per servo, `error id data… crcL crcH`; each block's
/// CRC is the CRC of the whole packet from its header up to that block's data, so the last block's CRC
/// is the packet CRC. On a real bus each servo transmits its own block, so the writer can be drained
/// between blocks (`bytes` grows; send `bytes[sent...]`).
public struct DynamixelFastStatusWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    public private(set) var count = 0
    private var crc: UInt16 = 0
    private var expectedEnd = 0

    public init(buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    public static func packetSize(blockCount: Int, totalDataBytes: Int) -> Int {
        Dynamixel.headerSize + 1 + totalDataBytes + 4 * blockCount
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<count]) }
    public var isComplete: Bool { count == expectedEnd && count > 0 }

    /// Writes header, id 0xFE, length and instruction 0x55; the length covers every block to come.
    public mutating func begin(blockCount: Int, totalDataBytes: Int) throws(DynamixelEncodingError) {
        let size = Self.packetSize(blockCount: blockCount, totalDataBytes: totalDataBytes)
        guard size <= buffer.count else { throw DynamixelEncodingError(needed: size, available: buffer.count) }
        let length = size - Dynamixel.headerSize
        buffer[0] = 0xFF; buffer[1] = 0xFF; buffer[2] = 0xFD; buffer[3] = 0x00
        buffer[4] = Dynamixel.broadcastID
        buffer[5] = UInt8(truncatingIfNeeded: length)
        buffer[6] = UInt8(truncatingIfNeeded: length >> 8)
        buffer[7] = DynamixelInstruction.status.rawValue
        count = 8
        expectedEnd = size
        crc = DynamixelCRC.update(0, UnsafeRawBufferPointer(rebasing: buffer[0..<8]))
    }

    public mutating func appendBlock(id: UInt8, error: UInt8, data: UnsafeRawBufferPointer) throws(DynamixelEncodingError) {
        let end = count + 4 + data.count
        guard end <= expectedEnd else { throw DynamixelEncodingError(needed: end, available: expectedEnd) }
        buffer[count] = error
        buffer[count + 1] = id
        if data.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[(count + 2)...]).copyMemory(from: data)
        }
        crc = DynamixelCRC.update(crc, UnsafeRawBufferPointer(rebasing: buffer[count..<(end - 2)]))
        buffer[end - 2] = UInt8(truncatingIfNeeded: crc)
        buffer[end - 1] = UInt8(truncatingIfNeeded: crc >> 8)
        // The CRC bytes are part of what the next servo's CRC covers.
        crc = DynamixelCRC.update(crc, UnsafeRawBufferPointer(rebasing: buffer[(end - 2)..<end]))
        count = end
    }
}
