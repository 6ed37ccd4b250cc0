import Foundation
import TendonHardware

/// `tendon bench bus`: the cost of one control cycle's bus traffic (SYNC WRITE of 9 goal positions + SYNC
/// READ of current, velocity and position from 9 servos) against the simulated servo chain, which paces its
/// replies at the line rate, next to the wire time of the same bytes at that rate: the floor no driver can
/// beat. The ratio is our overhead (syscalls, parsing, scheduling) on top of the wire.
public struct BusBenchmarkResult: Codable, Sendable {
    public var variant: String
    public var servos: Int
    public var baudRate: Int
    public var iterations: Int
    public var wireMicros: Double
    public var medianMicros: Double
    public var p90Micros: Double
    public var p99Micros: Double
    public var maxMicros: Double
    public var failures: Int
    public var ratioMedian: Double { medianMicros / wireMicros }
    public var ratioP99: Double { p99Micros / wireMicros }
}

public enum BusBenchmark {
    public static func run(robot: RobotConfig, busName: String? = nil, iterations: Int = 2000,
                           fast: Bool) throws -> BusBenchmarkResult {
        guard let bus = busName.flatMap({ robot.bus(named: $0) }) ?? robot.followerBuses.first else {
            throw StartupError("no follower bus in \(robot.file)")
        }
        var single = robot
        single.buses = [bus]
        let sim = try SimulatedRobot(config: SimulatedAloha.configuration(robot: single, calibration: nil, pacing: true))
        try sim.start()
        defer { sim.stop() }
        guard let path = sim.ports[bus.name] else { throw StartupError("simulator has no \(bus.name)") }
        let port = try TermiosSerialPort(path: path, baudRate: bus.baudRate)
        defer { port.close() }
        let client = DynamixelBus(transport: port, configuration: .init(retries: 0, latencyMarginNanos: 2_000_000))
        let ids = bus.servos.map(\.id)
        let read = try DynamixelSyncReadGroup(address: 126, length: 10, ids: ids, fast: fast)
        let write = try DynamixelSyncWriteGroup(address: 116, length: 4, ids: ids)
        for i in ids.indices { write.set(index: i, value: 2048) }

        // Wire bytes of one cycle: the write, the read request, and the replies as the servos send them.
        try write.transmit(on: client)
        let writeBytes = write.lastPacket.count
        let requestBytes = read.requestBytes.count
        let replyBytes = fast ? 8 + ids.count * (4 + 10) : ids.count * (11 + 10)
        let wire = Double((writeBytes + requestBytes + replyBytes) * 10) / Double(bus.baudRate) * 1e6

        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        var failures = 0
        for _ in 0..<(iterations + 50) {
            let t0 = MonotonicClock.nowNanos()
            do {
                try write.transmit(on: client)
                try read.transmit(on: client)
                try read.receive(on: client)
            } catch {
                failures += 1
            }
            let t1 = MonotonicClock.nowNanos()
            samples.append(Double(t1 - t0) / 1000)
        }
        samples.removeFirst(50)  // warm-up
        samples.sort()
        func pct(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
        return BusBenchmarkResult(variant: fast ? "sync write + FAST SYNC READ" : "sync write + SYNC READ",
                                  servos: ids.count, baudRate: bus.baudRate, iterations: iterations,
                                  wireMicros: wire, medianMicros: pct(0.5), p90Micros: pct(0.9), p99Micros: pct(0.99),
                                  maxMicros: samples.last ?? 0, failures: failures)
    }
}
