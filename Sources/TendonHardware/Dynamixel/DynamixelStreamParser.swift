/// Incremental Protocol 2.0 packet parser for both ends of the bus: the host reads status packets,
/// the simulator reads instruction packets. Fixed capacity, allocates only in `init`.
///
/// API:
///   `DynamixelStreamParser(capacity:)`
///   `append(_ bytes: UnsafeRawBufferPointer) -> Int` (bytes taken; drain with `next()` when it takes fewer)
///   `fill(_ read: (UnsafeMutableRawBufferPointer) throws(E) -> Int) throws(E) -> Int` (read straight into it)
///   `next() -> DynamixelParseEvent?` — `.packet(DynamixelPacketView)` or `.corrupt(DynamixelCorruption)`
///   `feed(_ bytes:, _ handler:)`, `reset()`, counters `discardedBytes`, `crcErrors`, `lengthErrors`,
///   `bufferedCount` (a non-zero value at a deadline means a truncated packet).
/// `DynamixelPacketView`: id, instruction, `body` (unstuffed, after the instruction, without CRC),
///   `error` and `parameters` for status packets, `fastBlocks(dataLength:)` for FAST SYNC READ replies.
///   Its pointers stay valid until the next call on the parser.
/// `DynamixelDecodedPacket`: an owned copy (`[UInt8]` parameters) for non-real-time code and tests.
///
/// Matches the SDK's `rxPacket`: header `FF FF FD 00` (the reserved byte must be 0, so `FF FF FD FD`
/// never starts a packet), CRC over header … last body byte, stuffing removed from ordinary packets,
/// but not from status packets with id 0xFE (FAST replies), which the SDK passes through raw.
public final class DynamixelStreamParser {
    public let capacity: Int
    private let raw: UnsafeMutableRawBufferPointer
    private let unstuffed: UnsafeMutableRawBufferPointer
    private var head = 0
    private var tail = 0

    /// Bytes dropped while hunting for a header (line noise, stale halves of packets).
    public private(set) var discardedBytes = 0
    public private(set) var crcErrors = 0
    public private(set) var lengthErrors = 0

    /// `capacity` bounds the largest packet accepted; the SDK's limit is 1024 bytes.
    public init(capacity: Int = 2 * Dynamixel.maxPacketSize) {
        precondition(capacity >= Dynamixel.minimumStatusSize, "parser capacity below one minimal packet")
        self.capacity = capacity
        raw = .allocate(byteCount: capacity, alignment: 16)
        unstuffed = .allocate(byteCount: capacity, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        unstuffed.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        raw.deallocate()
        unstuffed.deallocate()
    }

    public var bufferedCount: Int { tail - head }

    public func reset() {
        head = 0
        tail = 0
    }

    public func resetCounters() {
        discardedBytes = 0
        crcErrors = 0
        lengthErrors = 0
    }

    private func compact() {
        if head == 0 { return }
        let n = tail - head
        if n > 0 {
            UnsafeMutableRawBufferPointer(rebasing: raw[0..<n])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[head..<tail]))
        }
        head = 0
        tail = n
    }

    /// Copies as many bytes as fit; returns how many were taken.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        if capacity - tail < bytes.count { compact() }
        let n = min(bytes.count, capacity - tail)
        if n > 0 {
            UnsafeMutableRawBufferPointer(rebasing: raw[tail..<(tail + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            tail += n
        }
        return n
    }

    /// Lets a transport read directly into the free space; `read` returns the byte count it wrote.
    public func fill<E: Error>(_ read: (UnsafeMutableRawBufferPointer) throws(E) -> Int) throws(E) -> Int {
        compact()
        let free = UnsafeMutableRawBufferPointer(rebasing: raw[tail..<capacity])
        if free.count == 0 { return 0 }
        let n = try read(free)
        tail += max(0, min(n, free.count))
        return n
    }

    /// Appends everything, handing each event to `handler` as soon as it is complete.
    public func feed(_ bytes: UnsafeRawBufferPointer, _ handler: (DynamixelParseEvent) -> Void) {
        var offset = 0
        while offset < bytes.count {
            let taken = append(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            offset += taken
            while let event = next() { handler(event) }
            if taken == 0 && bufferedCount == capacity {
                // A full buffer that yields nothing cannot become a packet: drop it and resynchronise.
                discardedBytes += bufferedCount
                reset()
            }
        }
    }

    @inline(__always) private func byte(_ i: Int) -> UInt8 { raw[i] }

    private func isHeader(at i: Int) -> Bool {
        raw[i] == 0xFF && raw[i + 1] == 0xFF && raw[i + 2] == 0xFD && raw[i + 3] == 0x00
    }

    /// Drops bytes up to the next header; keeps a trailing partial header. True when a header is at `head`.
    private func seekHeader() -> Bool {
        var i = head
        while i + 4 <= tail {
            if isHeader(at: i) {
                discardedBytes += i - head
                head = i
                return true
            }
            i += 1
        }
        // Keep the longest suffix that could still grow into a header.
        var keep = min(3, tail - head)
        while keep > 0 {
            let s = tail - keep
            var match = true
            for k in 0..<keep where raw[s + k] != (k == 2 ? 0xFD : 0xFF) { match = false; break }
            if match { break }
            keep -= 1
        }
        discardedBytes += (tail - keep) - head
        head = tail - keep
        return false
    }

    public func next() -> DynamixelParseEvent? {
        guard seekHeader() else { return nil }
        if tail - head < Dynamixel.headerSize { return nil }
        let id = raw[head + 4]
        let length = Int(raw[head + 5]) | Int(raw[head + 6]) << 8
        let total = Dynamixel.headerSize + length
        // Shortest legal packet: instruction + CRC. Longer than our buffer can never complete.
        if length < 3 || total > capacity || id == 0xFF {
            lengthErrors += 1
            let event = DynamixelCorruption(kind: id == 0xFF ? .badID : .badLength, id: id,
                                            length: length, expectedCRC: 0, receivedCRC: 0)
            head += 1
            return .corrupt(event)
        }
        if tail - head < total { return nil }
        let computed = DynamixelCRC.update(0, UnsafeRawBufferPointer(rebasing: raw[head..<(head + total - 2)]))
        let received = UInt16(raw[head + total - 2]) | UInt16(raw[head + total - 1]) << 8
        if computed != received {
            crcErrors += 1
            // Skip only the header: a real packet may start inside a packet whose length byte was hit.
            head += 4
            return .corrupt(DynamixelCorruption(kind: .crcMismatch, id: id, length: length,
                                                expectedCRC: computed, receivedCRC: received))
        }
        let instruction = raw[head + 7]
        let isStatus = instruction == DynamixelInstruction.status.rawValue
        if isStatus && length < 4 {
            lengthErrors += 1
            head += total
            return .corrupt(DynamixelCorruption(kind: .badLength, id: id, length: length,
                                                expectedCRC: computed, receivedCRC: received))
        }
        let bodyStart = head + 8
        let bodyEnd = head + total - 2
        let body: UnsafeRawBufferPointer
        if isStatus && id == Dynamixel.broadcastID {
            body = UnsafeRawBufferPointer(rebasing: raw[bodyStart..<bodyEnd])
        } else {
            var n = 0
            var j = bodyStart
            while j < bodyEnd {
                let b = raw[j]
                // The second FD of FF FF FD FD is the stuffing byte.
                if !(b == 0xFD && raw[j - 1] == 0xFD && raw[j - 2] == 0xFF && raw[j - 3] == 0xFF) {
                    unstuffed[n] = b
                    n += 1
                }
                j += 1
            }
            body = UnsafeRawBufferPointer(rebasing: unstuffed[0..<n])
        }
        head += total
        return .packet(DynamixelPacketView(id: id, instruction: instruction, body: body))
    }
}

public enum DynamixelParseEvent {
    case packet(DynamixelPacketView)
    case corrupt(DynamixelCorruption)
}

/// A packet the parser rejected. The caller counts these; the parser has already resynchronised.
public struct DynamixelCorruption: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Complete packet whose CRC does not match (line noise, collision, wrong baud rate).
        case crcMismatch
        /// Length field below 3 (or below 4 for a status packet) or beyond the parser's capacity.
        case badLength
        /// Id 0xFF, which no device may use.
        case badID
    }
    public var kind: Kind
    public var id: UInt8
    public var length: Int
    public var expectedCRC: UInt16
    public var receivedCRC: UInt16

    public var description: String {
        switch kind {
        case .crcMismatch:
            return "corrupt packet from id \(id): CRC expected 0x\(String(expectedCRC, radix: 16)), "
                + "received 0x\(String(receivedCRC, radix: 16))"
        case .badLength:
            return "corrupt packet from id \(id): length field \(length) is impossible"
        case .badID:
            return "corrupt packet: id 0xFF is not a valid device id"
        }
    }
}

/// One parsed packet; `body` points into the parser and is valid until the parser's next call.
public struct DynamixelPacketView {
    public let id: UInt8
    /// Raw instruction byte (0x55 for status packets); `DynamixelInstruction(rawValue:)` names it.
    public let instruction: UInt8
    /// Bytes after the instruction up to the CRC, stuffing removed (except in FAST replies).
    public let body: UnsafeRawBufferPointer

    public var isStatus: Bool { instruction == DynamixelInstruction.status.rawValue }
    /// The combined reply to FAST SYNC READ / FAST BULK READ.
    public var isFastStatus: Bool { isStatus && id == Dynamixel.broadcastID }
    /// Status error byte (0 for instruction packets and empty bodies).
    public var error: UInt8 { isStatus && body.count > 0 ? body[0] : 0 }
    /// Status packets: after the error byte. Instruction packets: the whole body.
    public var parameters: UnsafeRawBufferPointer {
        isStatus && body.count > 0 ? UnsafeRawBufferPointer(rebasing: body[1...]) : body
    }

    /// Blocks of a FAST SYNC READ reply whose servos each returned `dataLength` bytes (for FAST BULK
    /// READ pass any length and call `next(dataLength:)` per block).
    public func fastBlocks(dataLength: Int) -> DynamixelFastBlocks {
        DynamixelFastBlocks(body: body, dataLength: dataLength)
    }

    public func decoded() -> DynamixelDecodedPacket {
        DynamixelDecodedPacket(id: id, instruction: instruction, error: error, parameters: Array(parameters))
    }
}

/// Walks `error id data… crc crc` blocks of a FAST reply (the last block's CRC is the packet's and is
/// not part of the body). Yields nil at a block that does not fit, so a short reply cannot overrun.
public struct DynamixelFastBlocks: Sequence, IteratorProtocol {
    public struct Block {
        public let id: UInt8
        public let error: UInt8
        public let data: UnsafeRawBufferPointer
    }
    let body: UnsafeRawBufferPointer
    let dataLength: Int
    var offset = 0

    init(body: UnsafeRawBufferPointer, dataLength: Int) {
        self.body = body
        self.dataLength = dataLength
    }

    /// Number of whole blocks in the body.
    public var count: Int { dataLength < 0 ? 0 : (body.count + 2) / (dataLength + 4) }

    public mutating func next() -> Block? { next(dataLength: dataLength) }

    /// FAST BULK READ: each servo's block has its own length, in request order.
    public mutating func next(dataLength: Int) -> Block? {
        let end = offset + 2 + dataLength
        guard dataLength >= 0, end <= body.count else { return nil }
        let block = Block(id: body[offset + 1], error: body[offset],
                          data: UnsafeRawBufferPointer(rebasing: body[(offset + 2)..<end]))
        offset = end + 2
        return block
    }
}

/// An owned copy of a packet, for tests and non-real-time callers.
public struct DynamixelDecodedPacket: Equatable, Sendable, CustomStringConvertible {
    public var id: UInt8
    public var instruction: UInt8
    public var error: UInt8
    public var parameters: [UInt8]

    public init(id: UInt8, instruction: UInt8, error: UInt8 = 0, parameters: [UInt8]) {
        self.id = id
        self.instruction = instruction
        self.error = error
        self.parameters = parameters
    }

    public var description: String {
        let name = DynamixelInstruction(rawValue: instruction)?.description ?? "0x\(String(instruction, radix: 16))"
        return "\(name) id \(id) error \(error) params \(parameters)"
    }
}
