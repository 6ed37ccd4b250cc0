/// Preallocated group transactions for the real-time cycle. Nothing allocates after `init`.
///
/// API:
///   `DynamixelBus.SyncReadGroup(address:length:ids:fast:)` and `DynamixelBus.BulkReadGroup(entries:fast:)`
///     (both `DynamixelReadGroup`): `transmit(on:)`, `receive(on:deadlineNanos:)` — split so a cycle can
///     transmit on every bus first and then collect — and `transact(on:)` (both, with the bus's retries).
///     Results per index (order of `ids`/`entries`): `status(index:)` (`.ok`, `.timeout`, `.corrupt`,
///     `.servoError`, `.wrongReply`), `errorByte(index:)` (alert 0x80 still `.ok`), `value(index:offset:size:)`
///     (little-endian, sign-extended Int32), `data(index:)`, `okCount`.
///     `receive` fills everything it got, then throws the first failure (partial data stays readable).
///   `DynamixelBus.SyncWriteGroup(address:length:ids:)` and `DynamixelBus.BulkWriteGroup(entries:)`
///     (both `DynamixelWriteGroup`): `set(index:value:)`, `set(index:bytes:)`, `transmit(on:)`.
///   `DynamixelBulkEntry(id:address:length:)`.
///
/// SYNC READ and BULK READ collect one status packet per servo; FAST SYNC READ and FAST BULK READ one
/// combined packet (id 0xFE) whose blocks are matched to ids in request order.
public struct DynamixelBulkEntry: Equatable, Sendable {
    public var id: UInt8
    public var address: UInt16
    public var length: Int
    public init(id: UInt8, address: UInt16, length: Int) {
        self.id = id
        self.address = address
        self.length = length
    }
}

extension DynamixelBus {
    public typealias SyncReadGroup = DynamixelSyncReadGroup
    public typealias BulkReadGroup = DynamixelBulkReadGroup
    public typealias SyncWriteGroup = DynamixelSyncWriteGroup
    public typealias BulkWriteGroup = DynamixelBulkWriteGroup
}

/// Shared machinery of SYNC READ and BULK READ (plain and FAST).
public class DynamixelReadGroup {
    public enum Status: UInt8, Sendable {
        case pending, ok, timeout, corrupt, servoError, wrongReply
    }

    public let entries: [DynamixelBulkEntry]
    public let fast: Bool
    public let instruction: DynamixelInstruction
    public var count: Int { entries.count }
    /// Bytes of every reply together (what the bus must carry back).
    public let expectedReplyBytes: Int

    private let packet: UnsafeMutableRawBufferPointer
    private let packetCount: Int
    private let data: UnsafeMutableRawBufferPointer
    private let offsets: UnsafeMutablePointer<Int>
    private let lengths: UnsafeMutablePointer<Int>
    private let statuses: UnsafeMutablePointer<Status>
    private let errors: UnsafeMutablePointer<UInt8>
    /// id → index, -1 when the id is not in the group.
    private let indexOfID: UnsafeMutablePointer<Int16>
    private var deadline: UInt64 = 0
    public private(set) var okCount = 0

    init(instruction: DynamixelInstruction, fast: Bool, entries: [DynamixelBulkEntry],
         parameters: [UInt8]) throws(DynamixelError) {
        if entries.isEmpty { throw DynamixelError(kind: .invalidRequest, id: Dynamixel.broadcastID, expected: 1, found: 0) }
        var seen = Set<UInt8>()
        for e in entries {
            if e.id > Dynamixel.maxID || !seen.insert(e.id).inserted {
                throw DynamixelError(kind: .invalidRequest, id: e.id, expected: Int(Dynamixel.maxID), found: Int(e.id))
            }
            if e.length < 1 || e.length > DynamixelBus.maxParameters {
                throw DynamixelError(kind: .invalidRequest, id: e.id, expected: DynamixelBus.maxParameters, found: e.length)
            }
        }
        self.entries = entries
        self.fast = fast
        self.instruction = instruction
        let n = entries.count
        let totalData = entries.reduce(0) { $0 + $1.length }
        expectedReplyBytes = fast
            ? DynamixelFastStatusWriter.packetSize(blockCount: n, totalDataBytes: totalData)
            : entries.reduce(0) { $0 + Dynamixel.minimumStatusSize + $1.length }
        let capacity = DynamixelPacketEncoder.maxEncodedSize(bodyCount: 1 + parameters.count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let encoded: Int? = parameters.withUnsafeBytes { p in
            try? DynamixelPacketEncoder.encodeInstruction(id: Dynamixel.broadcastID, instruction: instruction,
                                                          parameters: p, into: buffer)
        }
        packet = buffer
        packetCount = encoded ?? 0
        data = .allocate(byteCount: totalData, alignment: 16)
        data.initializeMemory(as: UInt8.self, repeating: 0)
        offsets = .allocate(capacity: n)
        lengths = .allocate(capacity: n)
        statuses = .allocate(capacity: n)
        errors = .allocate(capacity: n)
        indexOfID = .allocate(capacity: 256)
        indexOfID.initialize(repeating: -1, count: 256)
        var offset = 0
        for (i, e) in entries.enumerated() {
            offsets[i] = offset
            lengths[i] = e.length
            offset += e.length
            indexOfID[Int(e.id)] = Int16(i)
        }
        statuses.initialize(repeating: .pending, count: n)
        errors.initialize(repeating: 0, count: n)
        if packetCount == 0 || packetCount > Dynamixel.maxPacketSize {
            throw DynamixelError(kind: .invalidRequest, id: Dynamixel.broadcastID,
                                 expected: Dynamixel.maxPacketSize, found: packetCount)
        }
    }

    deinit {
        packet.deallocate()
        data.deallocate()
        offsets.deallocate()
        lengths.deallocate()
        statuses.deallocate()
        errors.deallocate()
        indexOfID.deallocate()
    }

    /// The instruction packet, encoded once at `init`.
    public var requestBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: packet[0..<packetCount]) }

    /// Discards stale input, sends the request and arms the default deadline. Marks every entry pending.
    public func transmit(on bus: DynamixelBus) throws(DynamixelError) {
        for i in 0..<entries.count {
            statuses[i] = .pending
            errors[i] = 0
        }
        okCount = 0
        bus.statistics.transactions += 1
        try bus.discardStale()
        try bus.send(requestBytes, id: Dynamixel.broadcastID)
        deadline = MonotonicClock.nowNanos()
            + bus.timeoutNanos(requestBytes: packetCount, replyBytes: expectedReplyBytes,
                               replies: fast ? 1 : entries.count)
    }

    /// Collects replies until every entry is settled or the deadline passes (default: armed by `transmit`)
    /// and returns how many arrived intact. Per-entry outcomes are in `status(index:)`. Throws only when
    /// the transport fails: on the real-time path a late or corrupt reply is data, not an exception
    /// (throwing is cheap in Swift, but test harnesses and debuggers hook every throw).
    @discardableResult
    public func collect(on bus: DynamixelBus, deadlineNanos: UInt64? = nil) throws(DynamixelError) -> Int {
        let deadline = deadlineNanos ?? self.deadline
        var pending = 0
        for i in 0..<entries.count where statuses[i] == .pending { pending += 1 }
        var sawCorruption = false
        var fastDone = false
        while pending > 0 && !fastDone {
            while pending > 0 && !fastDone, let event = bus.parser.next() {
                switch event {
                case .corrupt:
                    bus.statistics.corruptPackets += 1
                    sawCorruption = true
                case .packet(let view):
                    if !view.isStatus {
                        bus.statistics.ignoredPackets += 1
                    } else if fast {
                        if view.id == Dynamixel.broadcastID {
                            pending -= acceptFast(view, bus: bus)
                            fastDone = true
                        } else {
                            bus.statistics.ignoredPackets += 1
                        }
                    } else {
                        let index = Int(indexOfID[Int(view.id)])
                        // A reply of the wrong length is a late answer to an earlier request (a retry
                        // that crossed it on the wire): skip it and keep waiting for the real one.
                        if index >= 0 && statuses[index] == .pending
                            && (view.error & 0x7F != 0 || view.parameters.count == lengths[index]) {
                            accept(index: index, error: view.error, data: view.parameters, bus: bus)
                            pending -= 1
                        } else {
                            bus.statistics.ignoredPackets += 1
                        }
                    }
                }
            }
            if pending == 0 || fastDone { break }
            if MonotonicClock.nowNanos() >= deadline {
                // Replies can sit in the driver's buffer while this thread was busy elsewhere (another
                // bus's receive, a preemption): drain without waiting before calling anything missing.
                if try bus.pump(deadline: 0, id: Dynamixel.broadcastID) == 0 { break }
                continue
            }
            _ = try bus.pump(deadline: deadline, id: Dynamixel.broadcastID)
        }
        if pending > 0 {
            let truncated = bus.parser.bufferedCount > 0
            let missing: Status = (sawCorruption || truncated || fastDone) ? .corrupt : .timeout
            if missing == .timeout { bus.statistics.timeouts += 1 } else if truncated { bus.statistics.corruptPackets += 1 }
            for i in 0..<entries.count where statuses[i] == .pending { statuses[i] = missing }
        }
        return okCount
    }

    /// `collect`, then throws the first entry that did not arrive intact.
    public func receive(on bus: DynamixelBus, deadlineNanos: UInt64? = nil) throws(DynamixelError) {
        try collect(on: bus, deadlineNanos: deadlineNanos)
        for i in 0..<entries.count where statuses[i] != .ok {
            let kind: DynamixelError.Kind
            switch statuses[i] {
            case .timeout, .pending: kind = .timeout
            case .corrupt: kind = .corrupt
            case .servoError: kind = .servoError
            case .wrongReply: kind = .wrongReply
            case .ok: continue
            }
            throw DynamixelError(kind: kind, id: entries[i].id, errorByte: errors[i], expected: lengths[i],
                                 found: kind == .wrongReply ? 0 : lengths[i])
        }
    }

    /// `transmit` + `receive`, repeating the whole exchange after a timeout or corruption.
    public func transact(on bus: DynamixelBus) throws(DynamixelError) {
        var attempt = 0
        while true {
            do throws(DynamixelError) {
                try transmit(on: bus)
                try receive(on: bus)
                return
            } catch {
                if (error.kind == .timeout || error.kind == .corrupt) && attempt < bus.configuration.retries {
                    attempt += 1
                    bus.statistics.retries += 1
                    continue
                }
                throw error
            }
        }
    }

    private func accept(index: Int, error: UInt8, data source: UnsafeRawBufferPointer, bus: DynamixelBus) {
        errors[index] = error
        if error & 0x7F != 0 {
            statuses[index] = .servoError
            bus.statistics.servoErrors += 1
            return
        }
        if source.count != lengths[index] {
            statuses[index] = .wrongReply
            return
        }
        UnsafeMutableRawBufferPointer(rebasing: data[offsets[index]..<(offsets[index] + lengths[index])])
            .copyMemory(from: source)
        statuses[index] = .ok
        okCount += 1
    }

    /// Blocks come in request order; an id out of order or a short packet ends the walk.
    private func acceptFast(_ view: DynamixelPacketView, bus: DynamixelBus) -> Int {
        var blocks = view.fastBlocks(dataLength: 0)
        var settled = 0
        for i in 0..<entries.count {
            guard let block = blocks.next(dataLength: lengths[i]), block.id == entries[i].id else { break }
            accept(index: i, error: block.error, data: block.data, bus: bus)
            settled += 1
        }
        return settled
    }

    public func status(index: Int) -> Status { statuses[index] }
    public func errorByte(index: Int) -> UInt8 { errors[index] }
    public func data(index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: data[offsets[index]..<(offsets[index] + lengths[index])])
    }

    /// Little-endian value of `size` bytes (1, 2 or 4; default the entry's length when that is one of
    /// them) at `offset` within the entry's data, sign-extended. Out-of-range requests return 0.
    public func value(index: Int, offset: Int = 0, size: Int? = nil) -> Int32 {
        let size = size ?? lengths[index]
        guard index >= 0, index < entries.count, size == 1 || size == 2 || size == 4,
              offset >= 0, offset + size <= lengths[index] else { return 0 }
        let base = offsets[index] + offset
        var raw: UInt32 = 0
        for k in 0..<size { raw |= UInt32(data[base + k]) << (8 * UInt32(k)) }
        switch size {
        case 1: return Int32(Int8(truncatingIfNeeded: raw))
        case 2: return Int32(Int16(truncatingIfNeeded: raw))
        default: return Int32(bitPattern: raw)
        }
    }

    /// As `value(index:offset:size:)` with the offset given as a control-table address.
    public func value(index: Int, address: UInt16, size: Int) -> Int32 {
        value(index: index, offset: Int(address) - Int(entries[index].address), size: size)
    }
}

public final class DynamixelSyncReadGroup: DynamixelReadGroup {
    public let address: UInt16
    public let length: Int
    public let ids: [UInt8]

    public init(address: UInt16, length: Int, ids: [UInt8], fast: Bool = false) throws(DynamixelError) {
        self.address = address
        self.length = length
        self.ids = ids
        let params = [UInt8(truncatingIfNeeded: address), UInt8(truncatingIfNeeded: address >> 8),
                      UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8)] + ids
        try super.init(instruction: fast ? .fastSyncRead : .syncRead, fast: fast,
                       entries: ids.map { DynamixelBulkEntry(id: $0, address: address, length: length) },
                       parameters: params)
    }
}

public final class DynamixelBulkReadGroup: DynamixelReadGroup {
    public init(entries: [DynamixelBulkEntry], fast: Bool = false) throws(DynamixelError) {
        var params: [UInt8] = []
        for e in entries {
            params += [e.id, UInt8(truncatingIfNeeded: e.address), UInt8(truncatingIfNeeded: e.address >> 8),
                       UInt8(truncatingIfNeeded: e.length), UInt8(truncatingIfNeeded: e.length >> 8)]
        }
        try super.init(instruction: fast ? .fastBulkRead : .bulkRead, fast: fast, entries: entries, parameters: params)
    }
}

/// Shared machinery of SYNC WRITE and BULK WRITE: a parameter image with each entry's data slot;
/// `transmit` encodes it (stuffing depends on the values) into a preallocated packet buffer.
public class DynamixelWriteGroup {
    public let entries: [DynamixelBulkEntry]
    public let instruction: DynamixelInstruction
    public var count: Int { entries.count }
    private let parameters: UnsafeMutableRawBufferPointer
    private let slots: UnsafeMutablePointer<Int>
    private let packet: UnsafeMutableRawBufferPointer
    public private(set) var lastPacketCount = 0

    init(instruction: DynamixelInstruction, entries: [DynamixelBulkEntry], layout: [UInt8],
         slots slotOffsets: [Int]) throws(DynamixelError) {
        if entries.isEmpty { throw DynamixelError(kind: .invalidRequest, id: Dynamixel.broadcastID, expected: 1, found: 0) }
        var seen = Set<UInt8>()
        for e in entries where e.id > Dynamixel.maxID || !seen.insert(e.id).inserted || e.length < 1 {
            throw DynamixelError(kind: .invalidRequest, id: e.id, expected: Int(Dynamixel.maxID), found: Int(e.id))
        }
        let worst = DynamixelPacketEncoder.maxEncodedSize(bodyCount: 1 + layout.count)
        if Dynamixel.headerSize + 3 + layout.count > Dynamixel.maxPacketSize {
            throw DynamixelError(kind: .invalidRequest, id: Dynamixel.broadcastID,
                                 expected: Dynamixel.maxPacketSize, found: Dynamixel.headerSize + 3 + layout.count)
        }
        self.entries = entries
        self.instruction = instruction
        parameters = .allocate(byteCount: layout.count, alignment: 16)
        parameters.copyBytes(from: layout)
        slots = .allocate(capacity: slotOffsets.count)
        slots.initialize(from: slotOffsets, count: slotOffsets.count)
        packet = .allocate(byteCount: worst, alignment: 16)
        packet.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        parameters.deallocate()
        slots.deallocate()
        packet.deallocate()
    }

    /// Stores the low `length` bytes of `value` (two's complement) for entry `index`; ignores bad indices.
    public func set(index: Int, value: Int32) {
        guard index >= 0, index < entries.count else { return }
        let raw = UInt32(bitPattern: value)
        let base = slots[index]
        for k in 0..<entries[index].length {
            parameters[base + k] = k < 4 ? UInt8(truncatingIfNeeded: raw >> (8 * UInt32(k))) : 0
        }
    }

    /// Copies raw bytes (at most the entry's length) into entry `index`'s slot.
    public func set(index: Int, bytes: UnsafeRawBufferPointer) {
        guard index >= 0, index < entries.count else { return }
        let n = min(bytes.count, entries[index].length)
        for k in 0..<n { parameters[slots[index] + k] = bytes[k] }
    }

    public func transmit(on bus: DynamixelBus) throws(DynamixelError) {
        do throws(DynamixelEncodingError) {
            lastPacketCount = try DynamixelPacketEncoder.encodeInstruction(
                id: Dynamixel.broadcastID, instruction: instruction,
                parameters: UnsafeRawBufferPointer(parameters), into: packet)
        } catch {
            throw DynamixelError(kind: .invalidRequest, id: Dynamixel.broadcastID, expected: error.available, found: error.needed)
        }
        bus.statistics.transactions += 1
        try bus.send(UnsafeRawBufferPointer(rebasing: packet[0..<lastPacketCount]), id: Dynamixel.broadcastID)
    }

    /// The packet last sent.
    public var lastPacket: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: packet[0..<lastPacketCount]) }
}

public final class DynamixelSyncWriteGroup: DynamixelWriteGroup {
    public let address: UInt16
    public let length: Int
    public let ids: [UInt8]

    public init(address: UInt16, length: Int, ids: [UInt8]) throws(DynamixelError) {
        self.address = address
        self.length = length
        self.ids = ids
        var layout: [UInt8] = [UInt8(truncatingIfNeeded: address), UInt8(truncatingIfNeeded: address >> 8),
                               UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8)]
        var slots: [Int] = []
        for id in ids {
            layout.append(id)
            slots.append(layout.count)
            layout += [UInt8](repeating: 0, count: max(length, 0))
        }
        try super.init(instruction: .syncWrite,
                       entries: ids.map { DynamixelBulkEntry(id: $0, address: address, length: length) },
                       layout: layout, slots: slots)
    }
}

public final class DynamixelBulkWriteGroup: DynamixelWriteGroup {
    public init(entries: [DynamixelBulkEntry]) throws(DynamixelError) {
        var layout: [UInt8] = []
        var slots: [Int] = []
        for e in entries {
            layout += [e.id, UInt8(truncatingIfNeeded: e.address), UInt8(truncatingIfNeeded: e.address >> 8),
                       UInt8(truncatingIfNeeded: e.length), UInt8(truncatingIfNeeded: e.length >> 8)]
            slots.append(layout.count)
            layout += [UInt8](repeating: 0, count: max(e.length, 0))
        }
        try super.init(instruction: .bulkWrite, entries: entries, layout: layout, slots: slots)
    }
}
