/// Instruction handling of `SimulatedBus`: pure functions of the bus state, run under its lock.
extension SimulatedBus {
    static func handle(_ view: DynamixelPacketView, state s: inout State, nowNanos now: UInt64, baud: Int) -> [Reply] {
        var h = Handler(state: s, now: now, baud: baud, packetID: view.id, params: view.parameters)
        // The instruction finished arriving on a real wire this long after its first byte.
        h.offset = wireNanos(bytes: view.body.count + 10, baud: baud)
        h.run(instruction: view.instruction)
        return h.replies
    }

    struct Handler {
        let state: State
        let now: UInt64
        let baud: Int
        let packetID: UInt8
        let params: UnsafeRawBufferPointer
        var offset: UInt64 = 0
        var replies: [Reply] = []

        init(state: State, now: UInt64, baud: Int, packetID: UInt8, params: UnsafeRawBufferPointer) {
            self.state = state
            self.now = now
            self.baud = baud
            self.packetID = packetID
            self.params = params
        }

        var isBroadcast: Bool { packetID == Dynamixel.broadcastID }

        /// The servo that owns `id` as its primary id and is answering.
        func primary(_ id: UInt8) -> SimulatedServo? {
            guard let servo = state.servos.first(where: { $0.id == id }), state.hears(servo) else { return nil }
            return servo
        }

        /// Every servo that acts on a packet for `id`: its owner and the shadows listening on it.
        func targets(_ id: UInt8) -> [SimulatedServo] {
            state.servos.filter { servo in
                state.hears(servo) && (id == Dynamixel.broadcastID || servo.id == id || servo.secondaryID == id)
            }
        }

        func u16(_ i: Int) -> Int { Int(params[i]) | Int(params[i + 1]) << 8 }

        mutating func reply(_ servo: SimulatedServo, code: UInt8, data: [UInt8] = []) {
            let bytes = DynamixelPacketEncoder.status(id: servo.id, error: servo.statusError(code), parameters: data)
            offset += servo.returnDelayNanos + SimulatedBus.wireNanos(bytes: bytes.count, baud: baud)
            replies.append(Reply(bytes: bytes, offsetNanos: offset))
        }

        /// Unicast replies to instructions other than PING and reads need Status Return Level 2.
        /// `owner` is resolved before the instruction runs: a servo that just changed its Baud Rate
        /// still answers at the rate the instruction came in at.
        mutating func acknowledge(_ owner: SimulatedServo?, code: UInt8) {
            guard !isBroadcast, let servo = owner, servo.statusReturnLevel >= 2 else { return }
            reply(servo, code: code)
        }

        mutating func run(instruction raw: UInt8) {
            for servo in state.servos where state.hears(servo) { servo.noteInstruction(nowNanos: now) }
            let owner = primary(packetID)
            guard let instruction = DynamixelInstruction(rawValue: raw) else {
                acknowledge(owner, code: DynamixelStatusError.Code.instructionError.rawValue)
                return
            }
            let malformed = DynamixelStatusError.Code.instructionError.rawValue
            switch instruction {
            case .ping:
                let servos = isBroadcast ? state.servos.filter { state.hears($0) }
                                         : (primary(packetID).map { [$0] } ?? [])
                for servo in servos {
                    let number = servo.model.modelNumber
                    let firmware = UInt8(truncatingIfNeeded: servo.value(servo.addr.firmwareVersion))
                    reply(servo, code: 0, data: [UInt8(number & 0xFF), UInt8(number >> 8), firmware])
                }
            case .read:
                guard !isBroadcast, let servo = primary(packetID), servo.statusReturnLevel >= 1 else { return }
                guard params.count == 4 else { reply(servo, code: malformed); return }
                read(servo, address: u16(0), length: u16(2))
            case .write, .regWrite:
                guard params.count > 2 else { acknowledge(owner, code: malformed); return }
                let address = u16(0)
                let data = UnsafeRawBufferPointer(rebasing: params[2...])
                var code: UInt8 = 0
                for servo in targets(packetID) {
                    let c = instruction == .write ? servo.write(address: address, data: data, nowNanos: now)
                                                  : servo.registerWrite(address: address, data: data)
                    if servo.id == packetID { code = c }
                }
                acknowledge(owner, code: code)
            case .action:
                var code: UInt8 = 0
                for servo in targets(packetID) where !servo.action(nowNanos: now) && servo.id == packetID {
                    code = malformed
                }
                acknowledge(owner, code: code)
            case .reboot:
                acknowledge(owner, code: 0)
                for servo in targets(packetID) { servo.reboot(nowNanos: now) }
            case .factoryReset:
                let option = params.count > 0 ? params[0] : 0xFF
                acknowledge(owner, code: 0)
                for servo in targets(packetID) { _ = servo.factoryReset(option: option, nowNanos: now) }
            case .clear:
                acknowledge(owner, code: 0)
            case .status:
                return
            case .syncRead, .fastSyncRead:
                guard isBroadcast, params.count >= 4 else { return }
                let address = u16(0), length = u16(2)
                let ids = Array(params[4...])
                if instruction == .syncRead {
                    for id in ids {
                        guard let servo = primary(id), servo.statusReturnLevel >= 1 else { continue }
                        read(servo, address: address, length: length)
                    }
                } else {
                    fastRead(ids.map { ($0, address, length) })
                }
            case .bulkRead, .fastBulkRead:
                guard isBroadcast, params.count % 5 == 0 else { return }
                var entries: [(UInt8, Int, Int)] = []
                var i = 0
                while i + 5 <= params.count {
                    entries.append((params[i], u16(i + 1), u16(i + 3)))
                    i += 5
                }
                if instruction == .bulkRead {
                    for (id, address, length) in entries {
                        guard let servo = primary(id), servo.statusReturnLevel >= 1 else { continue }
                        read(servo, address: address, length: length)
                    }
                } else {
                    fastRead(entries)
                }
            case .syncWrite:
                guard isBroadcast, params.count >= 4 else { return }
                let address = u16(0), length = u16(2)
                guard length > 0 else { return }
                var i = 4
                while i + 1 + length <= params.count {
                    let data = UnsafeRawBufferPointer(rebasing: params[(i + 1)..<(i + 1 + length)])
                    for servo in targets(params[i]) where params[i] != Dynamixel.broadcastID {
                        _ = servo.write(address: address, data: data, nowNanos: now)
                    }
                    i += 1 + length
                }
            case .bulkWrite:
                guard isBroadcast else { return }
                var i = 0
                while i + 5 <= params.count {
                    let id = params[i], address = u16(i + 1), length = u16(i + 3)
                    guard i + 5 + length <= params.count else { break }
                    let data = UnsafeRawBufferPointer(rebasing: params[(i + 5)..<(i + 5 + length)])
                    for servo in targets(id) where id != Dynamixel.broadcastID {
                        _ = servo.write(address: address, data: data, nowNanos: now)
                    }
                    i += 5 + length
                }
            }
        }

        mutating func read(_ servo: SimulatedServo, address: Int, length: Int) {
            var data: [UInt8] = []
            let code = servo.read(address: address, length: length, into: &data, nowNanos: now)
            reply(servo, code: code, data: code == 0 ? data : [])
        }

        /// One combined status packet. Each servo transmits its own block in turn; a silent one leaves
        /// its slot empty, so the packet is shorter than its length field says (as on a real bus).
        mutating func fastRead(_ entries: [(id: UInt8, address: Int, length: Int)]) {
            let total = entries.reduce(0) { $0 + $1.length }
            var buffer = [UInt8](repeating: 0, count: DynamixelFastStatusWriter.packetSize(
                blockCount: entries.count, totalDataBytes: total))
            var written = 0
            var answered = false
            buffer.withUnsafeMutableBytes { out in
                var writer = DynamixelFastStatusWriter(buffer: out)
                guard (try? writer.begin(blockCount: entries.count, totalDataBytes: total)) != nil else { return }
                var gap = false
                for entry in entries {
                    guard !gap, let servo = primary(entry.id), servo.statusReturnLevel >= 1 else {
                        gap = true
                        continue
                    }
                    var data: [UInt8] = []
                    let code = servo.read(address: entry.address, length: entry.length, into: &data, nowNanos: now)
                    if code != 0 { data = [UInt8](repeating: 0, count: entry.length) }
                    let before = writer.count
                    data.withUnsafeBytes { d in try? writer.appendBlock(id: servo.id, error: servo.statusError(code), data: d) }
                    offset += servo.returnDelayNanos + SimulatedBus.wireNanos(bytes: writer.count - before, baud: baud)
                    answered = true
                }
                written = writer.count
            }
            guard answered else { return }
            offset += SimulatedBus.wireNanos(bytes: 8, baud: baud)
            replies.append(Reply(bytes: Array(buffer[0..<written]), offsetNanos: offset))
        }
    }
}
