import Glibc

/// Host side of one Dynamixel Protocol 2.0 bus over a `SerialTransport`. Owned by one thread at a time
/// (not Sendable); every method is allocation-free after `init` except `broadcastPing`.
///
/// API:
///   `DynamixelBus(transport:configuration:)`; `Configuration` (retries, latencyMarginNanos,
///     returnDelayMicros, statusReturnLevel); `statistics` (`Statistics`), `lastErrorByte`
///   `ping(_ id:) throws(DynamixelError) -> DynamixelPingResult` (model number, firmware)
///   `read(_ id:address:into:)` (raw), `read1/read2/read4(_:address:)` → unsigned,
///   `write(_ id:address:bytes:)` (raw), `write1/write2/write4(_:address:value:)`, `reboot(_:)`
///   `broadcastPing(timeoutNanos:) -> [DynamixelPingResult]` (allocates; for scans)
///   `timeoutNanos(requestBytes:replyBytes:replies:)`, `wireTimeNanos(bytes:)`
///   Groups (see DynamixelGroups.swift): `DynamixelBus.SyncReadGroup`, `.SyncWriteGroup`,
///   `.BulkReadGroup`, `.BulkWriteGroup`.
///
/// Timeouts. The ROBOTIS SDK waits `packet_length · 10000/baud ms + 2·LATENCY_TIMER + 2 ms` with
/// LATENCY_TIMER = 16, i.e. ≥ 34 ms for every transaction, which a 500 Hz loop cannot afford. We wait
/// wire time of request + expected reply (10 bits per byte) + the servos' return delay (Return Delay
/// Time × 2 µs per reply) + `latencyMarginNanos` (USB latency timer, scheduling; default 3 ms, set the
/// FTDI latency timer to 1 ms). Stale input is discarded before each transaction; a timeout or corrupt
/// reply is retried `retries` times; a servo error is an answer and is not retried.
public final class DynamixelBus {
    public struct Configuration: Sendable, Equatable {
        /// Extra attempts after a timeout or corrupt reply.
        public var retries: Int
        /// Added to every deadline for adapter latency and scheduling.
        public var latencyMarginNanos: UInt64
        /// The servos' Return Delay Time in µs (register 9 × 2 µs; ALOHA sets 0).
        public var returnDelayMicros: Int
        /// Status Return Level of the servos (register 68): 0 replies to PING only, 1 also to READ, 2 to all.
        public var statusReturnLevel: UInt8

        public init(retries: Int = 2, latencyMarginNanos: UInt64 = 3_000_000, returnDelayMicros: Int = 0,
                    statusReturnLevel: UInt8 = 2) {
            self.retries = retries
            self.latencyMarginNanos = latencyMarginNanos
            self.returnDelayMicros = returnDelayMicros
            self.statusReturnLevel = statusReturnLevel
        }
    }

    /// Counters the real-time loop and `tendon doctor` report; never reset implicitly.
    public struct Statistics: Sendable, Equatable {
        public var transactions = 0
        public var retries = 0
        public var timeouts = 0
        public var corruptPackets = 0
        public var servoErrors = 0
        /// Well-formed packets nobody asked for (adapter echo, another servo's late reply).
        public var ignoredPackets = 0
        /// Stale bytes dropped before a transaction.
        public var staleBytes = 0
        public init() {}
    }

    public let transport: any SerialTransport
    public var configuration: Configuration
    public internal(set) var statistics = Statistics()
    /// Error byte of the last status packet a single-servo call accepted (0x80 alert is not an error).
    public private(set) var lastErrorByte: UInt8 = 0

    let parser: DynamixelStreamParser
    private let tx: UnsafeMutableRawBufferPointer
    private let params: UnsafeMutableRawBufferPointer
    static let maxParameters = Dynamixel.maxPacketSize - 12

    public init(transport: any SerialTransport, configuration: Configuration = Configuration()) {
        self.transport = transport
        self.configuration = configuration
        parser = DynamixelStreamParser(capacity: 4 * Dynamixel.maxPacketSize)
        tx = .allocate(byteCount: DynamixelPacketEncoder.maxEncodedSize(bodyCount: Dynamixel.maxPacketSize), alignment: 16)
        params = .allocate(byteCount: Dynamixel.maxPacketSize, alignment: 16)
        tx.initializeMemory(as: UInt8.self, repeating: 0)
        params.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        tx.deallocate()
        params.deallocate()
    }

    // MARK: Timing

    /// 8N1: ten bit times per byte.
    public func wireTimeNanos(bytes: Int) -> UInt64 {
        let baud = UInt64(max(transport.baudRate, 1))
        return (UInt64(max(bytes, 0)) * 10 * 1_000_000_000 + baud - 1) / baud
    }

    public func timeoutNanos(requestBytes: Int, replyBytes: Int, replies: Int) -> UInt64 {
        wireTimeNanos(bytes: requestBytes + replyBytes)
            + UInt64(max(replies, 0) * max(configuration.returnDelayMicros, 0)) * 1_000
            + configuration.latencyMarginNanos
    }

    // MARK: Wire primitives shared with the groups

    func discardStale() throws(DynamixelError) {
        do throws(SerialError) {
            try transport.discardInput()
        } catch {
            throw DynamixelError(kind: .transport, id: Dynamixel.broadcastID, serialError: error)
        }
        statistics.staleBytes += parser.bufferedCount
        parser.reset()
    }

    func send(_ bytes: UnsafeRawBufferPointer, id: UInt8) throws(DynamixelError) {
        do throws(SerialError) {
            try transport.write(bytes)
        } catch {
            throw DynamixelError(kind: .transport, id: id, serialError: error)
        }
    }

    /// Reads whatever arrives before `deadline` into the parser; 0 when the deadline passed.
    func pump(deadline: UInt64, id: UInt8) throws(DynamixelError) -> Int {
        let transport = self.transport
        do throws(SerialError) {
            return try parser.fill { (buffer) throws(SerialError) -> Int in
                try transport.read(into: buffer, deadlineNanos: deadline)
            }
        } catch {
            throw DynamixelError(kind: .transport, id: id, serialError: error)
        }
    }

    /// The next status packet from `id`; skips echoes and other servos' packets.
    func awaitStatus(from id: UInt8, expectedParameters: Int? = nil, deadline: UInt64) throws(DynamixelError) -> DynamixelPacketView {
        var mismatchedLength: Int?
        while true {
            while let event = parser.next() {
                switch event {
                case .corrupt:
                    statistics.corruptPackets += 1
                    throw DynamixelError(kind: .corrupt, id: id)
                case .packet(let view):
                    // A clean reply of the wrong length is a late answer to an earlier request that
                    // timed out: skip it and keep waiting for ours.
                    if view.isStatus && view.id == id {
                        if expectedParameters == nil || view.error & 0x7F != 0
                            || view.parameters.count == expectedParameters { return view }
                        mismatchedLength = view.parameters.count
                    }
                    statistics.ignoredPackets += 1
                }
            }
            if MonotonicClock.nowNanos() >= deadline {
                // Drain what already arrived before judging (see DynamixelReadGroup.receive).
                if try pump(deadline: 0, id: id) > 0 { continue }
                // Only wrong-length replies came: the servo answers, but not what was asked.
                if let found = mismatchedLength {
                    throw DynamixelError(kind: .wrongReply, id: id, expected: expectedParameters ?? 0, found: found)
                }
                // As the SDK: bytes of an unfinished packet make it corrupt, silence a timeout.
                if parser.bufferedCount > 0 {
                    statistics.corruptPackets += 1
                    throw DynamixelError(kind: .corrupt, id: id)
                }
                statistics.timeouts += 1
                throw DynamixelError(kind: .timeout, id: id)
            }
            _ = try pump(deadline: deadline, id: id)
        }
    }

    private func expectsReply(id: UInt8, instruction: DynamixelInstruction) -> Bool {
        if id == Dynamixel.broadcastID { return false }
        switch configuration.statusReturnLevel {
        case 0: return instruction == .ping
        case 1: return instruction == .ping || instruction == .read
        default: return true
        }
    }

    /// One request/reply with retries. Parameters are taken from `params[0..<parameterCount]`.
    /// Returns nil when no reply is expected.
    private func transact(id: UInt8, instruction: DynamixelInstruction, parameterCount: Int,
                          replyParameters: Int) throws(DynamixelError) -> DynamixelPacketView? {
        let count: Int
        do throws(DynamixelEncodingError) {
            count = try DynamixelPacketEncoder.encodeInstruction(
                id: id, instruction: instruction,
                parameters: UnsafeRawBufferPointer(rebasing: params[0..<parameterCount]), into: tx)
        } catch {
            throw DynamixelError(kind: .invalidRequest, id: id, expected: error.available, found: error.needed)
        }
        let request = UnsafeRawBufferPointer(rebasing: tx[0..<count])
        let waitForReply = expectsReply(id: id, instruction: instruction)
        var attempt = 0
        while true {
            statistics.transactions += 1
            try discardStale()
            try send(request, id: id)
            if !waitForReply { return nil }
            let deadline = MonotonicClock.nowNanos()
                + timeoutNanos(requestBytes: count, replyBytes: Dynamixel.minimumStatusSize + replyParameters, replies: 1)
            let view: DynamixelPacketView
            do throws(DynamixelError) {
                view = try awaitStatus(from: id, expectedParameters: replyParameters, deadline: deadline)
            } catch {
                if (error.kind == .timeout || error.kind == .corrupt) && attempt < configuration.retries {
                    attempt += 1
                    statistics.retries += 1
                    continue
                }
                throw error
            }
            lastErrorByte = view.error
            if view.error & 0x7F != 0 {
                statistics.servoErrors += 1
                throw DynamixelError(kind: .servoError, id: id, errorByte: view.error)
            }
            if view.parameters.count != replyParameters {
                throw DynamixelError(kind: .wrongReply, id: id, errorByte: view.error,
                                     expected: replyParameters, found: view.parameters.count)
            }
            return view
        }
    }

    private func checkID(_ id: UInt8, broadcastAllowed: Bool) throws(DynamixelError) {
        if id > Dynamixel.maxID && !(broadcastAllowed && id == Dynamixel.broadcastID) {
            throw DynamixelError(kind: .invalidRequest, id: id, expected: Int(Dynamixel.maxID), found: Int(id))
        }
    }

    @inline(__always) private func putAddressLength(_ address: UInt16, _ length: Int) {
        params[0] = UInt8(truncatingIfNeeded: address)
        params[1] = UInt8(truncatingIfNeeded: address >> 8)
        params[2] = UInt8(truncatingIfNeeded: length)
        params[3] = UInt8(truncatingIfNeeded: length >> 8)
    }

    // MARK: Single-servo instructions

    public func ping(_ id: UInt8) throws(DynamixelError) -> DynamixelPingResult {
        try checkID(id, broadcastAllowed: false)
        guard let view = try transact(id: id, instruction: .ping, parameterCount: 0, replyParameters: 3) else {
            throw DynamixelError(kind: .timeout, id: id)
        }
        let p = view.parameters
        return DynamixelPingResult(id: id, modelNumber: UInt16(p[0]) | UInt16(p[1]) << 8, firmwareVersion: p[2])
    }

    /// Reads `buffer.count` bytes starting at `address`.
    public func read(_ id: UInt8, address: UInt16, into buffer: UnsafeMutableRawBufferPointer) throws(DynamixelError) {
        try checkID(id, broadcastAllowed: false)
        if buffer.count == 0 || buffer.count > Self.maxParameters {
            throw DynamixelError(kind: .invalidRequest, id: id, expected: Self.maxParameters, found: buffer.count)
        }
        putAddressLength(address, buffer.count)
        guard let view = try transact(id: id, instruction: .read, parameterCount: 4, replyParameters: buffer.count) else {
            throw DynamixelError(kind: .timeout, id: id)
        }
        buffer.copyMemory(from: view.parameters)
    }

    /// Little-endian unsigned value of `size` (1, 2 or 4) bytes.
    public func read(_ id: UInt8, address: UInt16, size: Int) throws(DynamixelError) -> UInt32 {
        if size != 1 && size != 2 && size != 4 {
            throw DynamixelError(kind: .invalidRequest, id: id, expected: 4, found: size)
        }
        var word: UInt32 = 0
        try withUnsafeMutableBytes(of: &word) { (raw) throws(DynamixelError) in
            try read(id, address: address, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<size]))
        }
        return UInt32(littleEndian: word)
    }

    public func read1(_ id: UInt8, address: UInt16) throws(DynamixelError) -> UInt8 {
        UInt8(truncatingIfNeeded: try read(id, address: address, size: 1))
    }

    public func read2(_ id: UInt8, address: UInt16) throws(DynamixelError) -> UInt16 {
        UInt16(truncatingIfNeeded: try read(id, address: address, size: 2))
    }

    public func read4(_ id: UInt8, address: UInt16) throws(DynamixelError) -> UInt32 {
        try read(id, address: address, size: 4)
    }

    /// Writes raw bytes; to the broadcast id it returns without a reply.
    public func write(_ id: UInt8, address: UInt16, bytes: UnsafeRawBufferPointer) throws(DynamixelError) {
        try checkID(id, broadcastAllowed: true)
        if bytes.count == 0 || bytes.count + 2 > Self.maxParameters {
            throw DynamixelError(kind: .invalidRequest, id: id, expected: Self.maxParameters - 2, found: bytes.count)
        }
        params[0] = UInt8(truncatingIfNeeded: address)
        params[1] = UInt8(truncatingIfNeeded: address >> 8)
        UnsafeMutableRawBufferPointer(rebasing: params[2..<(2 + bytes.count)]).copyMemory(from: bytes)
        _ = try transact(id: id, instruction: .write, parameterCount: 2 + bytes.count, replyParameters: 0)
    }

    /// Writes the low `size` bytes of `value` little-endian (negative values as two's complement).
    public func write(_ id: UInt8, address: UInt16, value: Int64, size: Int) throws(DynamixelError) {
        if size != 1 && size != 2 && size != 4 {
            throw DynamixelError(kind: .invalidRequest, id: id, expected: 4, found: size)
        }
        var le = value.littleEndian
        try withUnsafeBytes(of: &le) { (raw) throws(DynamixelError) in
            try write(id, address: address, bytes: UnsafeRawBufferPointer(rebasing: raw[0..<size]))
        }
    }

    public func write1(_ id: UInt8, address: UInt16, value: UInt8) throws(DynamixelError) {
        try write(id, address: address, value: Int64(value), size: 1)
    }

    public func write2(_ id: UInt8, address: UInt16, value: Int64) throws(DynamixelError) {
        try write(id, address: address, value: value, size: 2)
    }

    public func write4(_ id: UInt8, address: UInt16, value: Int64) throws(DynamixelError) {
        try write(id, address: address, value: value, size: 4)
    }

    public func reboot(_ id: UInt8) throws(DynamixelError) {
        try checkID(id, broadcastAllowed: true)
        _ = try transact(id: id, instruction: .reboot, parameterCount: 0, replyParameters: 0)
    }

    /// Every servo answering a broadcast PING within the window (default: room for 253 replies).
    /// Allocates; for technicians' scans, not the control loop.
    public func broadcastPing(timeoutNanos: UInt64? = nil) throws(DynamixelError) -> [DynamixelPingResult] {
        let count: Int
        do throws(DynamixelEncodingError) {
            count = try DynamixelPacketEncoder.encodeInstruction(
                id: Dynamixel.broadcastID, instruction: .ping, parameters: UnsafeRawBufferPointer(start: nil, count: 0), into: tx)
        } catch {
            throw DynamixelError(kind: .invalidRequest, id: Dynamixel.broadcastID)
        }
        statistics.transactions += 1
        try discardStale()
        try send(UnsafeRawBufferPointer(rebasing: tx[0..<count]), id: Dynamixel.broadcastID)
        let window = timeoutNanos ?? self.timeoutNanos(requestBytes: count, replyBytes: 14 * 253, replies: 253)
        let deadline = MonotonicClock.nowNanos() + window
        var found: [DynamixelPingResult] = []
        while true {
            while let event = parser.next() {
                switch event {
                case .corrupt: statistics.corruptPackets += 1
                case .packet(let view):
                    let p = view.parameters
                    if view.isStatus && p.count == 3 {
                        found.append(DynamixelPingResult(id: view.id, modelNumber: UInt16(p[0]) | UInt16(p[1]) << 8,
                                                         firmwareVersion: p[2]))
                    } else {
                        statistics.ignoredPackets += 1
                    }
                }
            }
            if MonotonicClock.nowNanos() >= deadline { break }
            _ = try pump(deadline: deadline, id: Dynamixel.broadcastID)
        }
        return found.sorted { $0.id < $1.id }
    }
}

public struct DynamixelPingResult: Equatable, Sendable, CustomStringConvertible {
    public var id: UInt8
    public var modelNumber: UInt16
    public var firmwareVersion: UInt8
    public var model: DynamixelModel? { DynamixelModel.withNumber(modelNumber) }
    public var description: String {
        "id \(id): " + (model?.name ?? "model \(modelNumber)") + ", firmware \(firmwareVersion)"
    }
}
