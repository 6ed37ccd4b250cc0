/// Device-side view of an instruction packet (what the simulator does with what the host sent):
/// parameters split into typed fields without copying or allocating.
///
/// API: `DynamixelRequest.parse(_ view: DynamixelPacketView) -> Result<DynamixelRequest, DynamixelRequestError>`
///   cases: ping, read(address:length:), write/regWrite(address:data:), action, factoryReset(option:),
///   reboot, clear(parameters:), syncRead(address:length:ids:fast:), syncWrite(address:length:records:),
///   bulkRead(entries:fast:), bulkWrite(records:).
/// `DynamixelSyncWriteRecords.data(for:)`, `DynamixelBulkReadEntries` (Sequence of `DynamixelBulkEntry`,
/// `entry(for:)`, `position(of:)`), `DynamixelBulkWriteRecords` (Sequence, `record(for:)`).
/// `DynamixelRequestError.statusErrorCode`: the error byte a servo answers with (2 instruction, 5 length).
/// The views point into the parser and are valid until its next call.
public enum DynamixelRequest {
    case ping
    case read(address: UInt16, length: Int)
    case write(address: UInt16, data: UnsafeRawBufferPointer)
    case regWrite(address: UInt16, data: UnsafeRawBufferPointer)
    case action
    case factoryReset(option: UInt8)
    case reboot
    case clear(parameters: UnsafeRawBufferPointer)
    /// `ids` in request order; for FAST SYNC READ a servo's position decides where its block goes.
    case syncRead(address: UInt16, length: Int, ids: UnsafeRawBufferPointer, fast: Bool)
    case syncWrite(address: UInt16, length: Int, records: DynamixelSyncWriteRecords)
    case bulkRead(entries: DynamixelBulkReadEntries, fast: Bool)
    case bulkWrite(records: DynamixelBulkWriteRecords)

    @inline(__always)
    static func u16(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt16 { UInt16(p[i]) | UInt16(p[i + 1]) << 8 }

    public static func parse(_ view: DynamixelPacketView) -> Result<DynamixelRequest, DynamixelRequestError> {
        let p = view.parameters
        func need(_ n: Int, exact: Bool = true) -> DynamixelRequestError? {
            (exact ? p.count == n : p.count >= n) ? nil
                : DynamixelRequestError(kind: .badParameterLength, instruction: view.instruction, expected: n, found: p.count)
        }
        guard let instruction = DynamixelInstruction(rawValue: view.instruction), !view.isStatus else {
            return .failure(DynamixelRequestError(kind: .unknownInstruction, instruction: view.instruction,
                                                  expected: 0, found: 0))
        }
        switch instruction {
        case .ping:
            return .success(.ping)
        case .read:
            if let e = need(4) { return .failure(e) }
            return .success(.read(address: u16(p, 0), length: Int(u16(p, 2))))
        case .write, .regWrite:
            if let e = need(3, exact: false) { return .failure(e) }
            let data = UnsafeRawBufferPointer(rebasing: p[2...])
            return .success(instruction == .write ? .write(address: u16(p, 0), data: data)
                                                  : .regWrite(address: u16(p, 0), data: data))
        case .action:
            return .success(.action)
        case .factoryReset:
            if let e = need(1) { return .failure(e) }
            return .success(.factoryReset(option: p[0]))
        case .reboot:
            return .success(.reboot)
        case .clear:
            return .success(.clear(parameters: p))
        case .syncRead, .fastSyncRead:
            if let e = need(5, exact: false) { return .failure(e) }
            return .success(.syncRead(address: u16(p, 0), length: Int(u16(p, 2)),
                                      ids: UnsafeRawBufferPointer(rebasing: p[4...]), fast: instruction == .fastSyncRead))
        case .syncWrite:
            if let e = need(4, exact: false) { return .failure(e) }
            let length = Int(u16(p, 2))
            let records = UnsafeRawBufferPointer(rebasing: p[4...])
            if length == 0 || records.count % (length + 1) != 0 {
                return .failure(DynamixelRequestError(kind: .badParameterLength, instruction: view.instruction,
                                                      expected: (records.count / (length + 1) + 1) * (length + 1) + 4,
                                                      found: p.count))
            }
            return .success(.syncWrite(address: u16(p, 0), length: length,
                                       records: DynamixelSyncWriteRecords(raw: records, length: length)))
        case .bulkRead, .fastBulkRead:
            if p.count == 0 || p.count % 5 != 0 {
                return .failure(DynamixelRequestError(kind: .badParameterLength, instruction: view.instruction,
                                                      expected: (p.count / 5 + 1) * 5, found: p.count))
            }
            return .success(.bulkRead(entries: DynamixelBulkReadEntries(raw: p), fast: instruction == .fastBulkRead))
        case .bulkWrite:
            let records = DynamixelBulkWriteRecords(raw: p)
            if p.count == 0 || !records.isWellFormed {
                return .failure(DynamixelRequestError(kind: .badParameterLength, instruction: view.instruction,
                                                      expected: 6, found: p.count))
            }
            return .success(.bulkWrite(records: records))
        case .status:
            return .failure(DynamixelRequestError(kind: .unknownInstruction, instruction: view.instruction,
                                                  expected: 0, found: 0))
        }
    }
}

public struct DynamixelRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case unknownInstruction, badParameterLength }
    public var kind: Kind
    public var instruction: UInt8
    public var expected: Int
    public var found: Int

    /// What a servo puts in its status error byte for this request.
    public var statusErrorCode: UInt8 {
        kind == .unknownInstruction ? DynamixelStatusError.Code.instructionError.rawValue
                                    : DynamixelStatusError.Code.dataLength.rawValue
    }

    public var description: String {
        switch kind {
        case .unknownInstruction:
            return "instruction 0x\(String(instruction, radix: 16)) is not a Protocol 2.0 request"
        case .badParameterLength:
            let name = DynamixelInstruction(rawValue: instruction)?.description ?? "0x\(String(instruction, radix: 16))"
            return "\(name) with \(found) parameter bytes; expected \(expected)"
        }
    }
}

/// SYNC WRITE body after address and length: `id data[length]` repeated.
public struct DynamixelSyncWriteRecords {
    public let raw: UnsafeRawBufferPointer
    public let length: Int
    public var count: Int { raw.count / (length + 1) }

    public func id(at index: Int) -> UInt8 { raw[index * (length + 1)] }

    public func data(at index: Int) -> UnsafeRawBufferPointer {
        let start = index * (length + 1) + 1
        return UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
    }

    /// The data addressed to `id`, nil when the packet does not mention it.
    public func data(for id: UInt8) -> UnsafeRawBufferPointer? {
        for i in 0..<count where self.id(at: i) == id { return data(at: i) }
        return nil
    }
}

/// BULK READ / FAST BULK READ body: `id addrL addrH lenL lenH` repeated.
public struct DynamixelBulkReadEntries: Sequence {
    public let raw: UnsafeRawBufferPointer
    public var count: Int { raw.count / 5 }

    public func entry(at index: Int) -> DynamixelBulkEntry {
        let b = index * 5
        return DynamixelBulkEntry(id: raw[b], address: DynamixelRequest.u16(raw, b + 1),
                                  length: Int(DynamixelRequest.u16(raw, b + 3)))
    }

    public func position(of id: UInt8) -> Int? {
        for i in 0..<count where raw[i * 5] == id { return i }
        return nil
    }

    public func entry(for id: UInt8) -> DynamixelBulkEntry? { position(of: id).map(entry(at:)) }

    public struct Iterator: IteratorProtocol {
        let entries: DynamixelBulkReadEntries
        var index = 0
        public mutating func next() -> DynamixelBulkEntry? {
            guard index < entries.count else { return nil }
            defer { index += 1 }
            return entries.entry(at: index)
        }
    }

    public func makeIterator() -> Iterator { Iterator(entries: self) }
}

/// BULK WRITE body: `id addrL addrH lenL lenH data[len]` repeated.
public struct DynamixelBulkWriteRecords: Sequence {
    public struct Record {
        public let id: UInt8
        public let address: UInt16
        public let data: UnsafeRawBufferPointer
    }
    public let raw: UnsafeRawBufferPointer

    /// Every record's length fits and the records end exactly at the end of the body.
    public var isWellFormed: Bool {
        var offset = 0
        while offset < raw.count {
            guard offset + 5 <= raw.count else { return false }
            let length = Int(DynamixelRequest.u16(raw, offset + 3))
            offset += 5 + length
        }
        return offset == raw.count
    }

    public func record(for id: UInt8) -> Record? {
        for r in self where r.id == id { return r }
        return nil
    }

    public struct Iterator: IteratorProtocol {
        let raw: UnsafeRawBufferPointer
        var offset = 0
        public mutating func next() -> Record? {
            guard offset + 5 <= raw.count else { return nil }
            let length = Int(DynamixelRequest.u16(raw, offset + 3))
            guard offset + 5 + length <= raw.count else { return nil }
            let r = Record(id: raw[offset], address: DynamixelRequest.u16(raw, offset + 1),
                           data: UnsafeRawBufferPointer(rebasing: raw[(offset + 5)..<(offset + 5 + length)]))
            offset += 5 + length
            return r
        }
    }

    public func makeIterator() -> Iterator { Iterator(raw: raw) }
}
