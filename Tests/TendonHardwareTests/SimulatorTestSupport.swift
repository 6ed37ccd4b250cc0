import Glibc
import TendonHardware

/// A host-side test client for the simulator: raw packets in, raw bytes or parsed packets out.
final class SimClient {
    let port: TermiosSerialPort
    let parser = DynamixelStreamParser()

    init(_ path: String, baud: Int = 1_000_000) throws {
        port = try TermiosSerialPort(path: path, baudRate: baud)
    }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try port.write($0) }
    }

    func send(id: UInt8, _ instruction: DynamixelInstruction, _ params: [UInt8] = []) throws {
        try send(DynamixelPacketEncoder.instruction(id: id, instruction, parameters: params))
    }

    /// Reads until `count` bytes arrived, or until nothing arrives for `quietMs` (default: a generous
    /// timeout that only bounds a hang).
    func receiveBytes(count: Int, timeoutMs: UInt64 = 2000) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        let end = MonotonicClock.nowNanos() + timeoutMs * 1_000_000
        while out.count < count {
            let n = try buffer.withUnsafeMutableBytes { try port.read(into: $0, deadlineNanos: end) }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    /// Collects complete packets until `count` arrived or the wait passes.
    func receive(count: Int, timeoutMs: UInt64 = 2000) throws -> [DynamixelDecodedPacket] {
        var packets: [DynamixelDecodedPacket] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        let end = MonotonicClock.nowNanos() + timeoutMs * 1_000_000
        while packets.count < count {
            let n = try buffer.withUnsafeMutableBytes { try port.read(into: $0, deadlineNanos: end) }
            if n == 0 { break }
            buffer.withUnsafeBytes { raw in
                parser.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n])) { event in
                    if case .packet(let view) = event { packets.append(view.decoded()) }
                }
            }
        }
        return packets
    }

    /// Proves silence: nothing arrives within `ms` (used after instructions that must not be answered).
    func expectSilence(ms: UInt64 = 30) throws -> [UInt8] {
        try receiveBytes(count: 1, timeoutMs: ms)
    }

    func transact(id: UInt8, _ instruction: DynamixelInstruction, _ params: [UInt8] = []) throws -> DynamixelDecodedPacket? {
        try send(id: id, instruction, params)
        return try receive(count: 1).first
    }
}

func le32(_ v: Int32) -> [UInt8] {
    let u = UInt32(bitPattern: v)
    return [UInt8(u & 0xFF), UInt8(u >> 8 & 0xFF), UInt8(u >> 16 & 0xFF), UInt8(u >> 24)]
}

func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }

func int32(_ b: [UInt8], _ offset: Int = 0) -> Int32 {
    Int32(bitPattern: UInt32(b[offset]) | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]) << 16 | UInt32(b[offset + 3]) << 24)
}

/// ALOHA-style arm bus: XM540-W270 on ids 1–7, XM430-W350 on 8–9.
func alohaBus(name: String = "arm", positions: (UInt8) -> Int32 = { _ in 2048 },
              configure: (inout SimulatedServoConfig) -> Void = { _ in }) -> SimulatedBusConfig {
    SimulatedBusConfig(name: name, baudRate: 1_000_000, servos: (1...9).map { id in
        var s = SimulatedServoConfig(id: UInt8(id), model: id <= 7 ? "XM540-W270" : "XM430-W350",
                                     initialPosition: positions(UInt8(id)), returnDelayTime: 0, firmwareVersion: 46)
        configure(&s)
        return s
    })
}

/// A started single-bus robot and a connected client; `stop()` when done.
struct SimHarness {
    let robot: SimulatedRobot
    let bus: SimulatedBus
    let client: SimClient

    init(_ config: SimulatedBusConfig, pacing: Bool = false, timeConstant: Double = 0.05) throws {
        robot = try SimulatedRobot(config: SimulatedRobotConfig(buses: [config], pacing: pacing,
                                                                timeConstantSeconds: timeConstant))
        try robot.start()
        bus = robot.buses[0]
        client = try SimClient(bus.devicePath)
    }

    func stop() {
        client.port.close()
        robot.stop()
    }
}
