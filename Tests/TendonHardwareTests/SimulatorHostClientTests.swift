import CAllocationCounter
import Foundation
import Testing
@testable import TendonHardware

/// Our host client (`DynamixelBus` on `TermiosSerialPort`) against the simulator with wire pacing: the
/// path `tendon run --sim` takes. The SDK interop test judges the simulator by the vendor's client;
/// this one checks the two halves of our stack agree end to end.
@Suite struct SimulatorHostClientTests {
    @Test func controlCycleOverThePty() throws {
        let config = alohaBus(positions: { 1800 + 20 * Int32($0) })
        let robot = try SimulatedRobot(config: SimulatedRobotConfig(buses: [config], pacing: true,
                                                                    timeConstantSeconds: 0.01))
        try robot.start()
        defer { robot.stop() }
        let port = try TermiosSerialPort(path: robot.buses[0].devicePath, baudRate: 1_000_000)
        // Generous margin: the machine is shared with parallel builds; timing is not under test here.
        let bus = DynamixelBus(transport: port, configuration: .init(latencyMarginNanos: 100_000_000))
        let ids: [UInt8] = Array(1...9)
        for id in ids {
            #expect(try bus.ping(id).modelNumber == (id <= 7 ? 1120 : 1020))
            try bus.write1(id, address: 64, value: 1)
        }
        #expect(Set(try bus.broadcastPing().map(\.id)) == Set(ids))

        let read = try DynamixelSyncReadGroup(address: 132, length: 4, ids: ids, fast: true)
        let write = try DynamixelSyncWriteGroup(address: 116, length: 4, ids: ids)
        try read.transact(on: bus)
        #expect((0..<9).map { read.value(index: $0) } == ids.map { 1800 + 20 * Int32($0) })

        // A control cycle: write goals, fast-sync-read positions. Steady cycles allocate nothing.
        let goals = ids.map { 2300 - 10 * Int32($0) }
        var cycleNanos: [UInt64] = []
        cycleNanos.reserveCapacity(400)
        var allocations: UInt64 = 0
        var converged = false
        for cycle in 0..<400 where !converged {
            let start = MonotonicClock.nowNanos()
            let before = tendon_thread_allocation_count()
            for i in 0..<9 { write.set(index: i, value: goals[i]) }
            try write.transmit(on: bus)
            try read.transact(on: bus)
            // Only the bus calls are counted: the test's own bookkeeping below may allocate.
            if cycle > 0 { allocations += tendon_thread_allocation_count() - before }
            converged = true
            for i in 0..<9 where abs(read.value(index: i) - goals[i]) > 1 { converged = false }
            cycleNanos.append(MonotonicClock.nowNanos() - start)
            usleep(2000)
        }
        #expect(converged)
        #expect(allocations == 0)
        #expect(bus.statistics.timeouts == 0 && bus.statistics.corruptPackets == 0)
        let sorted = cycleNanos.sorted()
        print("sim host cycle (sync write + fast sync read, 9 servos, paced 1 Mbps): median \(sorted[sorted.count / 2] / 1000) µs, max \(sorted.last! / 1000) µs over \(sorted.count) cycles")
    }

    @Test func hostClientSeesFaults() throws {
        let robot = try SimulatedRobot(config: SimulatedRobotConfig(buses: [alohaBus()], pacing: true))
        try robot.start()
        defer { robot.stop() }
        let sim = robot.buses[0]
        let port = try TermiosSerialPort(path: sim.devicePath, baudRate: 1_000_000)
        let bus = DynamixelBus(transport: port, configuration: .init(retries: 1, latencyMarginNanos: 50_000_000))
        sim.setSilent(id: 3)
        #expect(throws: DynamixelError.self) { _ = try bus.ping(3) }
        #expect(bus.statistics.timeouts >= 1)
        sim.setSilent(id: 3, false)
        #expect(try bus.ping(3).id == 3)
        sim.raiseHardwareError(id: 3, .overheating)
        _ = try bus.read1(3, address: 70)
        #expect(bus.lastErrorByte & 0x80 != 0)
        sim.disappear()
        let error = #expect(throws: DynamixelError.self) { _ = try bus.ping(1) }
        #expect(error?.kind == .transport)
    }
}
