import Foundation
import Synchronization

/// One simulated bus: servos behind a pseudo-terminal, served by a thread that parses instruction
/// packets (in pieces of any size, with PROTO's stream parser) and answers like the servos would.
/// Clients open `devicePath` like a serial adapter.
///
/// Bus behaviour (ROBOTIS Protocol 2.0 e-Manual):
/// - Status Return Level 0 answers PING only, 1 adds the read instructions, 2 answers everything.
/// - Broadcast packets get no reply, except PING and the read-group instructions.
/// - SYNC READ / BULK READ: one status packet per servo, in the order the packet lists them; a servo
///   that does not answer leaves a gap. FAST SYNC/BULK READ: one combined packet (id 0xFE); a silent
///   servo breaks it, as its slot is missing on the wire.
/// - A packet whose CRC fails is answered with CRC Error (3) only by the servo it is addressed to
///   (never for broadcast, never by a shadow); everyone else ignores it.
/// - Secondary (Shadow) ID: a servo acts on writes sent to its secondary id but never replies to them.
/// - Each servo hears only the line rate its Baud Rate register selects: a client at another rate
///   (a technician's scan, or after writing Baud Rate) gets silence, as on a real bus.
/// - Pacing (on by default): each reply is delayed by the instruction's and the reply's time on the
///   wire (10 bits per byte at the bus baud rate) plus the servo's Return Delay Time, so a client sees
///   round trips of the size a real bus has. Broadcast PING answers come in id order, each after the
///   previous one plus its own return delay.
public final class SimulatedBus: Sendable {
    public let name: String
    public let baudRate: Int
    /// The pseudo-terminal slave clients open.
    public let devicePath: String

    private let state: Locked<State>
    /// 0 running, 1 stop requested, 2 disappear requested.
    private let command = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)
    private let exited = DispatchSemaphore(value: 0)
    private let launched = Atomic<Bool>(false)
    private let server: Box<Server>

    struct State {
        var servos: [SimulatedServo]
        var silent: Set<UInt8> = []
        /// The client's line rate when the batch being handled arrived (nil: unknown, hear everything).
        var lineRate: Int?
        var corruptionRate: Double = 0
        var rng = SplitMix64(seed: 1)
        var pacing: Bool
        var repliesSent = 0
        var crcErrorsSeen = 0
    }

    /// Creates the pty and servos; call `start()` to begin answering.
    public init(config: SimulatedBusConfig, pacing: Bool = true, timeConstantSeconds: Double = 0.05,
                symlink: String? = nil) throws(SimulatorError) {
        name = config.name
        baudRate = config.baudRate
        guard let baudRegister = DynamixelBaudRate.register(bitsPerSecond: config.baudRate) else {
            throw .unsupportedBaudRate(bus: config.name, config.baudRate)
        }
        var servos: [SimulatedServo] = []
        var seen: Set<UInt8> = []
        let now = MonotonicClock.nowNanos()
        for s in config.servos {
            guard let model = DynamixelModel.named(s.model) else {
                throw .unknownModel(bus: config.name, id: s.id, model: s.model,
                                    known: DynamixelModel.all.map(\.name))
            }
            guard s.id <= Dynamixel.maxID else { throw .invalidID(bus: config.name, id: s.id) }
            guard seen.insert(s.id).inserted else { throw .duplicateID(bus: config.name, id: s.id) }
            let servo = SimulatedServo(model: model, config: s, timeConstantSeconds: timeConstantSeconds, nowNanos: now)
            servo.forceEEPROM(.baudRate, Int64(baudRegister))
            servos.append(servo)
        }
        servos.sort { $0.id < $1.id }
        let pty: PseudoTerminal
        do {
            pty = try PseudoTerminal(symlink: symlink, lineRate: config.baudRate)
        } catch {
            throw .pseudoTerminal(bus: config.name, error)
        }
        devicePath = symlink ?? pty.slavePath
        state = Locked(State(servos: servos, pacing: pacing))
        server = Box(Server(pty: pty, baudRate: config.baudRate))
    }

    deinit { stop() }

    /// Starts the serving thread. The pty already buffers bytes written before this.
    public func start() {
        guard command.load(ordering: .acquiring) == 0,
              launched.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let thread = Thread { [self] in
            self.serve()
            self.finished.store(true, ordering: .releasing)
            self.exited.signal()
        }
        thread.name = "sim-bus-" + name
        thread.start()
    }

    /// Stops serving and closes the pty (clients see a disconnect). Idempotent; waits for the thread.
    public func stop() {
        request(1)
    }

    /// Fault: the bus vanishes (USB adapter unplugged): the pty master closes, clients read EIO/HUP.
    public func disappear() {
        request(2)
    }

    private func request(_ code: Int) {
        let (exchanged, _) = command.compareExchange(expected: 0, desired: code, ordering: .acquiringAndReleasing)
        guard exchanged else { return }
        if launched.load(ordering: .acquiring) {
            exited.wait()
        } else {
            server.value.shutdown()
        }
    }

    public var isRunning: Bool { launched.load(ordering: .acquiring) && !finished.load(ordering: .acquiring) }

    // MARK: - Faults and inspection (any thread)

    /// Fault: the servo neither acts on nor answers any packet (cable cut after it).
    public func setSilent(id: UInt8, _ silent: Bool = true) {
        state.withLock { s in
            if silent { s.silent.insert(id) } else { s.silent.remove(id) }
        }
    }

    /// Fault: every byte the servos send is replaced by a random byte with probability `rate`.
    public func setCorruption(rate: Double, seed: UInt64 = 1) {
        state.withLock { s in
            s.corruptionRate = max(0, min(1, rate))
            s.rng = SplitMix64(seed: seed)
        }
    }

    /// Fault: latches Hardware Error Status bits (see `DynamixelHardwareErrorStatus`).
    public func raiseHardwareError(id: UInt8, _ bits: DynamixelHardwareErrorStatus) {
        state.withLock { s in
            s.servos.first { $0.id == id }?.raiseHardwareError(bits.rawValue, nowNanos: MonotonicClock.nowNanos())
        }
    }

    /// Scenario: a person moves servo `id` by hand to `ticks` (leaders, or pushing a follower).
    public func moveShaft(id: UInt8, to ticks: Int32, shortWay: Bool = false) {
        state.withLock { s in
            s.servos.first { $0.id == id }?.moveShaft(to: Double(ticks), shortWay: shortWay, nowNanos: MonotonicClock.nowNanos())
        }
    }

    public func setPacing(_ on: Bool) { state.withLock { $0.pacing = on } }

    /// Runs `body` on the servo with `id` (advanced to now) under the bus lock.
    public func withServo<R>(id: UInt8, _ body: (SimulatedServo) -> R) -> R? {
        state.withLock { s in
            guard let servo = s.servos.first(where: { $0.id == id }) else { return nil }
            servo.advance(to: MonotonicClock.nowNanos())
            return body(servo)
        }
    }

    public var servoIDs: [UInt8] { state.withLock { $0.servos.map(\.id) } }
    public var repliesSent: Int { state.withLock { $0.repliesSent } }
    public var crcErrorsSeen: Int { state.withLock { $0.crcErrorsSeen } }

    // MARK: - Serving thread

    /// Thread-confined I/O state, created with the bus and used only by the serving thread.
    final class Server {
        let pty: PseudoTerminal
        var port: TermiosSerialPort?
        let parser = DynamixelStreamParser()
        let baudRate: Int

        init(pty: PseudoTerminal, baudRate: Int) {
            self.pty = pty
            self.baudRate = baudRate
        }

        func shutdown() {
            port?.close()
            port = nil
            pty.close()
        }
    }

    /// A reply and when it may be sent, relative to the instruction's arrival.
    struct Reply {
        var bytes: [UInt8]
        var offsetNanos: UInt64
    }

    private func serve() {
        let server = self.server.value
        do {
            server.port = try TermiosSerialPort(adoptingDescriptor: server.pty.takeMaster(), name: name,
                                                baudRate: baudRate, configureLine: false)
        } catch {
            server.shutdown()
            return
        }
        guard let port = server.port else { return }
        let parser = server.parser
        // The wire is half duplex: replies to a packet that arrived while earlier replies were still
        // "on the wire" start after them.
        var busFreeAt: UInt64 = 0
        var lastByteAt = MonotonicClock.nowNanos()
        while command.load(ordering: .acquiring) == 0 {
            let n: Int
            do {
                n = try parser.fill { (buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int in
                    try port.read(into: buffer, deadlineNanos: MonotonicClock.nowNanos() + 10_000_000)
                }
            } catch {
                break
            }
            if n == 0 {
                // A servo drops a packet whose bytes stop coming (and a buffer that can never parse),
                // so one truncated packet cannot swallow the next good one.
                let idle = MonotonicClock.nowNanos() - lastByteAt > Self.partialPacketTimeoutNanos
                if parser.bufferedCount == parser.capacity || (parser.bufferedCount > 0 && idle) { parser.reset() }
                continue
            }
            let arrival = MonotonicClock.nowNanos()
            lastByteAt = arrival
            let lineRate = server.pty.slaveLineRate()
            while let event = parser.next() {
                var replies: [Reply] = []
                var pacing = false
                var corruption = 0.0
                state.withLock { s in
                    s.lineRate = lineRate
                    pacing = s.pacing
                    corruption = s.corruptionRate
                    switch event {
                    case .packet(let view):
                        if !view.isStatus { replies = Self.handle(view, state: &s, nowNanos: arrival, baud: baudRate) }
                    case .corrupt(let c):
                        if c.kind == .crcMismatch { s.crcErrorsSeen += 1 }
                        replies = Self.handleCorrupt(c, state: &s, baud: baudRate)
                    }
                    if corruption > 0 {
                        for r in replies.indices {
                            for b in replies[r].bytes.indices where s.rng.nextUnit() < corruption {
                                replies[r].bytes[b] = UInt8(truncatingIfNeeded: s.rng.next())
                            }
                        }
                    }
                    s.repliesSent += replies.count
                }
                let base = max(arrival, busFreeAt)
                if replies.isEmpty, case .packet(let view) = event {
                    // A packet nobody answers (SYNC WRITE) still occupies the wire; a reply to the next
                    // request cannot start before it has passed.
                    busFreeAt = base + Self.wireNanos(bytes: view.body.count + 10, baud: baudRate)
                }
                for reply in replies {
                    busFreeAt = base + reply.offsetNanos
                    if pacing { Self.sleep(until: busFreeAt) }
                    do {
                        try reply.bytes.withUnsafeBytes { try port.write($0) }
                    } catch {
                        break
                    }
                }
            }
        }
        server.shutdown()
    }

    /// How long a partial packet may wait for its remaining bytes.
    static let partialPacketTimeoutNanos: UInt64 = 100_000_000

    static func sleep(until deadline: UInt64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    @inline(__always)
    static func wireNanos(bytes: Int, baud: Int) -> UInt64 {
        UInt64(bytes) * 10 * 1_000_000_000 / UInt64(max(baud, 1))
    }

    static func handleCorrupt(_ c: DynamixelCorruption, state s: inout State, baud: Int) -> [Reply] {
        guard c.kind == .crcMismatch, c.id != Dynamixel.broadcastID, !s.silent.contains(c.id),
              let servo = s.servos.first(where: { $0.id == c.id }), s.hears(servo),
              servo.statusReturnLevel == 2 else { return [] }
        let bytes = DynamixelPacketEncoder.status(id: servo.id, error: servo.statusError(DynamixelStatusError.Code.crcError.rawValue))
        let offset = wireNanos(bytes: c.length + Dynamixel.headerSize, baud: baud) + servo.returnDelayNanos
            + wireNanos(bytes: bytes.count, baud: baud)
        return [Reply(bytes: bytes, offsetNanos: offset)]
    }
}

extension SimulatedBus.State {
    /// A silenced servo, or one configured for another line rate, neither acts nor answers.
    func hears(_ servo: SimulatedServo) -> Bool {
        guard !silent.contains(servo.id) else { return false }
        guard let lineRate else { return true }
        return servo.baudRateBitsPerSecond == lineRate
    }
}

/// The bus's plain description (the robot config loader maps YAML onto this).
public struct SimulatedBusConfig: Sendable, Equatable {
    public var name: String
    public var baudRate: Int
    public var servos: [SimulatedServoConfig]

    public init(name: String, baudRate: Int = 1_000_000, servos: [SimulatedServoConfig]) {
        self.name = name
        self.baudRate = baudRate
        self.servos = servos
    }
}

public enum SimulatorError: Error, Equatable, CustomStringConvertible {
    case unknownModel(bus: String, id: UInt8, model: String, known: [String])
    case duplicateID(bus: String, id: UInt8)
    case invalidID(bus: String, id: UInt8)
    case duplicateBus(String)
    case unsupportedBaudRate(bus: String, Int)
    case pseudoTerminal(bus: String, SerialError)
    case portsFile(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .unknownModel(let bus, let id, let model, let known):
            return "bus \(bus) id \(id): unknown servo model '\(model)', expected one of \(known.joined(separator: ", "))"
        case .duplicateID(let bus, let id):
            return "bus \(bus): id \(id) is used by two servos"
        case .invalidID(let bus, let id):
            return "bus \(bus): id \(id) is outside 0…\(Dynamixel.maxID)"
        case .unsupportedBaudRate(let bus, let baud):
            let rates = DynamixelBaudRate.table.map { String($0.bitsPerSecond) }.joined(separator: ", ")
            return "bus \(bus): \(baud) baud is not a Dynamixel rate, expected one of \(rates)"
        case .duplicateBus(let name):
            return "bus name '\(name)' is used twice"
        case .pseudoTerminal(let bus, let error):
            return "bus \(bus): cannot create a pseudo-terminal: \(error)"
        case .portsFile(let path, let code):
            return "cannot write ports file \(path): " + String(cString: strerror(code))
        }
    }
}

/// Hands a non-Sendable object to the serving thread. Safe because only that thread touches `value`
/// once `start()` has launched it; before that, only `request` touches it, on the calling thread.
final class Box<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The bus state behind a plain lock. Not `Mutex`: its `sending` rules reject handing the
/// non-Sendable servos and packet views to closures, though they never leave the locked region
/// except through `withServo`, whose caller runs under the lock too.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Small seeded generator so fault runs are reproducible.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D4_9BB1_3311_11EB
        return z ^ (z >> 31)
    }
    mutating func nextUnit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}
