/// Instruction handling of `SimulatedBus` on top of PROTO's `DynamixelRequest` decoding; runs under
/// the bus lock.
extension SimulatedBus {
    static func handle(_ view: DynamixelPacketView, state s: inout State, nowNanos now: UInt64, baud: Int) -> [Reply] {
        var h = Handler(state: s, now: now, baud: baud, packetID: view.id)
        // The instruction finished arriving on a real wire this long after its first byte.
        h.offset = wireNanos(bytes: view.body.count + 10, baud: baud)
        h.run(view)
        return h.replies
    }

    struct Handler {
        let state: State
        let now: UInt64
        let baud: Int
        let packetID: UInt8
        var offset: UInt64 = 0
        var replies: [Reply] = []

        init(state: State, now: UInt64, baud: Int, packetID: UInt8) {
            self.state = state
            self.now = now
            self.baud = baud
            self.packetID = packetID
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

        mutating func run(_ view: DynamixelPacketView) {
            for servo in state.servos where state.hears(servo) { servo.noteInstruction(nowNanos: now) }
            let owner = primary(packetID)
            let request: DynamixelRequest
            switch DynamixelRequest.parse(view) {
            case .success(let parsed): request = parsed
            case .failure(let error):
                acknowledge(owner, code: error.statusErrorCode)
                return
            }
            switch request {
            case .ping:
                let servos = isBroadcast ? state.servos.filter { state.hears($0) } : (owner.map { [$0] } ?? [])
                for servo in servos {
                    let number = servo.model.modelNumber
                    let firmware = UInt8(truncatingIfNeeded: servo.value(servo.addr.firmwareVersion))
                    reply(servo, code: 0, data: [UInt8(number & 0xFF), UInt8(number >> 8), firmware])
                }
            case .read(let address, let length):
                guard !isBroadcast, let servo = owner, servo.statusReturnLevel >= 1 else { return }
                read(servo, address: Int(address), length: length)
            case .write(let address, let data), .regWrite(let address, let data):
                var code: UInt8 = 0
                let staged = if case .regWrite = request { true } else { false }
                for servo in targets(packetID) {
                    let c = staged ? servo.registerWrite(address: Int(address), data: data)
                                   : servo.write(address: Int(address), data: data, nowNanos: now)
                    if servo.id == packetID { code = c }
                }
                acknowledge(owner, code: code)
            case .action:
                var code: UInt8 = 0
                for servo in targets(packetID) where !servo.action(nowNanos: now) && servo.id == packetID {
                    code = DynamixelStatusError.Code.instructionError.rawValue
                }
                acknowledge(owner, code: code)
            case .reboot:
                acknowledge(owner, code: 0)
                for servo in targets(packetID) { servo.reboot(nowNanos: now) }
            case .factoryReset(let option):
                let code = option == 0xFF || option == 0x01 || option == 0x02
                    ? 0 : DynamixelStatusError.Code.dataRange.rawValue
                acknowledge(owner, code: code)
                if code == 0 { for servo in targets(packetID) { _ = servo.factoryReset(option: option, nowNanos: now) } }
            case .clear:
                acknowledge(owner, code: 0)
            case .syncRead(let address, let length, let ids, let fast):
                guard isBroadcast else { return }
                if fast {
                    fastRead(ids.map { (id: $0, address: Int(address), length: length) })
                } else {
                    for id in ids {
                        guard let servo = primary(id), servo.statusReturnLevel >= 1 else { continue }
                        read(servo, address: Int(address), length: length)
                    }
                }
            case .bulkRead(let entries, let fast):
                guard isBroadcast else { return }
                if fast {
                    fastRead(entries.map { (id: $0.id, address: Int($0.address), length: $0.length) })
                } else {
                    for entry in entries {
                        guard let servo = primary(entry.id), servo.statusReturnLevel >= 1 else { continue }
                        read(servo, address: Int(entry.address), length: entry.length)
                    }
                }
            case .syncWrite(let address, _, let records):
                guard isBroadcast else { return }
                for i in 0..<records.count where records.id(at: i) != Dynamixel.broadcastID {
                    for servo in targets(records.id(at: i)) {
                        _ = servo.write(address: Int(address), data: records.data(at: i), nowNanos: now)
                    }
                }
            case .bulkWrite(let records):
                guard isBroadcast else { return }
                for record in records where record.id != Dynamixel.broadcastID {
                    for servo in targets(record.id) {
                        _ = servo.write(address: Int(record.address), data: record.data, nowNanos: now)
                    }
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
