import Foundation
import Testing
@testable import TendonHardware

/// The simulator driven by raw packets: those ROBOTIS dynamixel-sdk 4.1.0 produced (fixtures), whose
/// expected replies the SDK also produced, and packets from our encoder.
@Suite struct SimulatorSDKFixtureTests {
    let fixtures: DynamixelSDKFixtures
    init() throws { fixtures = try DynamixelSDKFixtures.load() }

    func bytes(_ instruction: String) throws -> [UInt8] { try #require(fixtures.instruction(instruction)).bytes }
    func reply(_ status: String) throws -> [UInt8] { try #require(fixtures.status(status)).bytes }

    @Test func pingAndReadRepliesAreTheSDKsBytes() throws {
        let h = try SimHarness(alohaBus(positions: { $0 == 3 ? 2100 : 2048 }))
        defer { h.stop() }
        try h.client.send(try bytes("ping"))
        let ping = try reply("ping_reply")
        #expect(try h.client.receiveBytes(count: ping.count) == ping)
        try h.client.send(try bytes("read4"))
        let read = try reply("read4_reply")
        #expect(try h.client.receiveBytes(count: read.count) == read)
        #expect(try h.client.expectSilence().isEmpty)
    }

    @Test func syncReadRepliesAreTheSDKsBytes() throws {
        let h = try SimHarness(alohaBus(positions: { 1000 + Int32($0) }))
        defer { h.stop() }
        // The SDK's capture has id 4 reporting the hardware alert bit.
        h.bus.raiseHardwareError(id: 4, .overheating)
        try h.client.send(try bytes("sync_read_132_4"))
        let expected = try reply("sync_read_132_4_replies")
        #expect(try h.client.receiveBytes(count: expected.count) == expected)
        #expect(try h.client.expectSilence().isEmpty)
    }

    @Test func fastSyncReadReplyIsTheSDKsBytes() throws {
        let h = try SimHarness(alohaBus(positions: { 2000 + Int32($0) }))
        defer { h.stop() }
        try h.client.send(try bytes("fast_sync_read_132_4"))
        let expected = try reply("fast_sync_read_reply")
        #expect(try h.client.receiveBytes(count: expected.count) == expected)
    }

    @Test func writesFromTheSDKAreApplied() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        // write1: torque on for id 1.
        try h.client.send(try bytes("write1"))
        #expect(try h.client.receive(count: 1) == [DynamixelDecodedPacket(id: 1, instruction: 0x55, parameters: [])])
        #expect(h.bus.withServo(id: 1) { $0.torqueEnabled } == true)
        // write4: Goal Position 0x12345678 on id 7 is outside Min/Max Position Limit in Position mode.
        try h.client.send(try bytes("write4"))
        #expect(try h.client.receive(count: 1).first?.error == DynamixelStatusError.Code.dataLimit.rawValue)
        // In Extended Position mode it is only range-checked (±1,048,575), and 0x12345678 is beyond it too.
        _ = try h.client.transact(id: 7, .write, [11, 0, 4])
        try h.client.send(try bytes("write4"))
        #expect(try h.client.receive(count: 1).first?.error == DynamixelStatusError.Code.dataLimit.rawValue)
        // The stuffed write (FF FF FD 00 as data) arrives unstuffed: Goal Position 0x00FDFFFF = 16,646,143, too.
        try h.client.send(try bytes("write_stuffed"))
        #expect(try h.client.receive(count: 1).first?.error == DynamixelStatusError.Code.dataLimit.rawValue)
        // write4_negative: Goal Velocity −300 on id 8 exceeds Velocity Limit 200 (XM430-W350).
        try h.client.send(try bytes("write4_negative"))
        #expect(try h.client.receive(count: 1).first?.error == DynamixelStatusError.Code.dataLimit.rawValue)
        // A write the firmware accepts gets exactly the SDK's ack bytes.
        try h.client.send(id: 7, .write, [116, 0] + le32(100_000))
        let ack = try reply("write_ack")
        #expect(try h.client.receiveBytes(count: ack.count) == ack)
        #expect(h.bus.withServo(id: 7) { $0.value(at: 116) } == 100_000)
    }

    @Test func syncWriteFromTheSDKMovesServos() throws {
        let h = try SimHarness(alohaBus(), timeConstant: 0.01)
        defer { h.stop() }
        let packet = try #require(fixtures.instruction("sync_write_116_4"))
        var goals: [UInt8: Int32] = [:]
        var i = 4
        while i + 5 <= packet.params.count {
            goals[packet.params[i]] = int32(Array(packet.params[(i + 1)..<(i + 5)]))
            i += 5
        }
        #expect(goals.count == 9)
        for id in goals.keys { _ = try h.client.transact(id: id, .write, [64, 0, 1]) }
        try h.client.send(packet.bytes)
        #expect(try h.client.expectSilence().isEmpty)
        // Id 9's goal is −1: outside Min Position Limit, so the firmware drops it (no reply to say so).
        #expect(goals[9] == -1)
        #expect(h.bus.withServo(id: 9) { $0.value(at: 116) } == 2048)
        goals[9] = nil
        for (id, goal) in goals { #expect(h.bus.withServo(id: id) { $0.value(at: 116) } == Int64(goal)) }
        // Positions converge (generous bound; only a hang guard).
        let deadline = MonotonicClock.nowNanos() + 3_000_000_000
        var converged = false
        while !converged && MonotonicClock.nowNanos() < deadline {
            try h.client.send(id: 0xFE, .syncRead, [132, 0, 4, 0] + goals.keys.sorted())
            let replies = try h.client.receive(count: goals.count)
            converged = replies.count == goals.count && replies.allSatisfy { abs(int32($0.parameters) - goals[$0.id]!) <= 1 }
            usleep(10_000)
        }
        #expect(converged)
    }

    @Test func bulkReadAndWriteFollowTheSDKLayout() throws {
        let h = try SimHarness(alohaBus(positions: { $0 == 1 ? 3000 : 2048 }))
        defer { h.stop() }
        try h.client.send(try bytes("bulk_read"))
        let replies = try h.client.receive(count: 3)
        #expect(replies.map(\.id) == [1, 2, 3])
        #expect(replies.map { $0.parameters.count } == [4, 1, 2])
        #expect(replies.first.map { int32($0.parameters) } == 3000)
        try h.client.send(try bytes("fast_bulk_read"))
        let fastExpected = try reply("fast_bulk_read_reply")
        let fast = try h.client.receiveBytes(count: fastExpected.count)
        #expect(fast.count == fastExpected.count)
        #expect(Array(fast.prefix(8)) == Array(fastExpected.prefix(8)))
        // bulk_write: Goal Position 1234 on id 1, LED on id 2, Goal Current on id 3 (torque off, all accepted).
        try h.client.send(try bytes("bulk_write"))
        #expect(try h.client.expectSilence().isEmpty)
        #expect(h.bus.withServo(id: 1) { $0.value(at: 116) } == 1234)
        #expect(h.bus.withServo(id: 2) { $0.value(at: 65) } == 1)
    }
}

@Suite struct SimulatorBehaviourTests {
    @Test func broadcastPingAnswersInIDOrder() throws {
        let h = try SimHarness(alohaBus(), pacing: true)
        defer { h.stop() }
        try h.client.send(id: 0xFE, .ping)
        let replies = try h.client.receive(count: 9)
        #expect(replies.map(\.id) == Array(1...9))
        #expect(replies.map { UInt16($0.parameters[0]) | UInt16($0.parameters[1]) << 8 } == [UInt16](repeating: 1120, count: 7) + [1020, 1020])
    }

    @Test func packetsArriveInAnyPieces() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        let packet = DynamixelPacketEncoder.instruction(id: 4, .read, parameters: [132, 0, 4, 0])
        for byte in packet {
            try h.client.send([byte])
            usleep(200)
        }
        let reply = try h.client.receive(count: 1)
        #expect(reply.first?.id == 4 && reply.first.map { int32($0.parameters) } == 2048)
    }

    @Test func eepromIsWriteProtectedWhileTorqueIsOn() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        #expect(try h.client.transact(id: 2, .write, [11, 0, 4])?.error == 0)
        #expect(try h.client.transact(id: 2, .write, [64, 0, 1])?.error == 0)
        #expect(try h.client.transact(id: 2, .write, [11, 0, 3])?.error == DynamixelStatusError.Code.access.rawValue)
        #expect(h.bus.withServo(id: 2) { $0.operatingMode } == 4)
        // Read-only register, partial register, beyond the table, undefined mode value.
        #expect(try h.client.transact(id: 2, .write, [132, 0, 0, 0, 0, 0])?.error == DynamixelStatusError.Code.access.rawValue)
        #expect(try h.client.transact(id: 2, .write, [116, 0, 1, 2])?.error == DynamixelStatusError.Code.dataLength.rawValue)
        #expect(try h.client.transact(id: 2, .read, [0xF0, 0x03, 4, 0])?.error == DynamixelStatusError.Code.dataRange.rawValue)
        _ = try h.client.transact(id: 2, .write, [64, 0, 0])
        #expect(try h.client.transact(id: 2, .write, [11, 0, 2])?.error == DynamixelStatusError.Code.dataLimit.rawValue)
        #expect(try h.client.transact(id: 2, .write, [11, 0, 5])?.error == 0)
    }

    @Test func statusReturnLevelDecidesWhoAnswers() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        // Whether this very write is acknowledged is not pinned down; drain it either way.
        try h.client.send(id: 5, .write, [68, 0, 1])
        _ = try h.client.receive(count: 1, timeoutMs: 50)
        #expect(h.bus.withServo(id: 5) { $0.statusReturnLevel } == 1)
        try h.client.send(id: 5, .write, [65, 0, 1])
        #expect(try h.client.expectSilence().isEmpty)
        #expect(h.bus.withServo(id: 5) { $0.value(at: 65) } == 1)
        #expect(try h.client.transact(id: 5, .read, [65, 0, 1, 0])?.parameters == [1])
        try h.client.send(id: 5, .write, [68, 0, 0])
        #expect(try h.client.expectSilence().isEmpty)
        try h.client.send(id: 5, .read, [65, 0, 1, 0])
        #expect(try h.client.expectSilence().isEmpty)
        #expect(try h.client.transact(id: 5, .ping)?.id == 5)
        // Broadcast writes are never answered.
        try h.client.send(id: 0xFE, .write, [65, 0, 0])
        #expect(try h.client.expectSilence().isEmpty)
    }

    @Test func crcErrorsAreAnsweredOnlyByTheAddressee() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        var packet = DynamixelPacketEncoder.instruction(id: 3, .read, parameters: [132, 0, 4, 0])
        packet[packet.count - 1] ^= 0x5A
        try h.client.send(packet)
        let reply = try h.client.receive(count: 1)
        #expect(reply == [DynamixelDecodedPacket(id: 3, instruction: 0x55, error: 3, parameters: [])])
        var broadcast = DynamixelPacketEncoder.instruction(id: 0xFE, .ping)
        broadcast[broadcast.count - 2] ^= 1
        try h.client.send(broadcast)
        var absent = DynamixelPacketEncoder.instruction(id: 42, .ping)
        absent[absent.count - 2] ^= 1
        try h.client.send(absent)
        #expect(try h.client.expectSilence().isEmpty)
        #expect(h.bus.crcErrorsSeen == 3)
    }

    @Test func shadowServoFollowsWritesToItsSecondaryID() throws {
        let h = try SimHarness(alohaBus(configure: { s in if s.id == 3 { s.secondaryID = 2 } }))
        defer { h.stop() }
        try h.client.send(id: 2, .write, [116, 0] + le32(3000))
        #expect(try h.client.receive(count: 2).count == 1)  // only the owner of id 2 answers
        #expect(h.bus.withServo(id: 3) { $0.value(at: 116) } == 3000)
        #expect(h.bus.withServo(id: 2) { $0.value(at: 116) } == 3000)
    }

    @Test func registeredWriteWaitsForAction() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        #expect(try h.client.transact(id: 6, .regWrite, [65, 0, 1])?.error == 0)
        #expect(try h.client.transact(id: 6, .read, [65, 0, 1, 0])?.parameters == [0])
        #expect(try h.client.transact(id: 6, .read, [69, 0, 1, 0])?.parameters == [1])
        try h.client.send(id: 0xFE, .action)
        #expect(try h.client.expectSilence().isEmpty)
        #expect(try h.client.transact(id: 6, .read, [65, 0, 1, 0])?.parameters == [1])
        #expect(try h.client.transact(id: 6, .action)?.error == DynamixelStatusError.Code.instructionError.rawValue)
    }

    @Test func hardwareErrorSetsAlertUntilReboot() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        _ = try h.client.transact(id: 4, .write, [64, 0, 1])
        h.bus.raiseHardwareError(id: 4, .overload)
        let status = try #require(try h.client.transact(id: 4, .read, [70, 0, 1, 0]))
        #expect(status.error == 0x80 && status.parameters == [DynamixelHardwareErrorStatus.overload.rawValue])
        #expect(h.bus.withServo(id: 4) { $0.torqueEnabled } == false)  // Overload is in Shutdown's default 52
        #expect(try h.client.transact(id: 4, .write, [64, 0, 1])?.error == 0x80 | DynamixelStatusError.Code.resultFail.rawValue)
        #expect(try h.client.transact(id: 4, .reboot)?.error == 0x80)
        #expect(try h.client.transact(id: 4, .read, [70, 0, 1, 0])?.error == 0)
        #expect(try h.client.transact(id: 4, .write, [64, 0, 1])?.error == 0)
    }

    @Test func silentServoAndBrokenFastReply() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        h.bus.setSilent(id: 5)
        try h.client.send(id: 5, .ping)
        #expect(try h.client.expectSilence().isEmpty)
        try h.client.send(id: 0xFE, .syncRead, [132, 0, 4, 0, 4, 5, 6])
        #expect(try h.client.receive(count: 3).map(\.id) == [4, 6])
        // FAST SYNC READ: the missing slot leaves a packet shorter than its length field.
        try h.client.send(id: 0xFE, .fastSyncRead, [132, 0, 4, 0, 4, 5, 6])
        let fullSize = DynamixelFastStatusWriter.packetSize(blockCount: 3, totalDataBytes: 12)
        let bytes = try h.client.receiveBytes(count: fullSize, timeoutMs: 100)
        #expect(bytes.count < fullSize)
        h.client.parser.reset()
        h.bus.setSilent(id: 5, false)
        #expect(try h.client.transact(id: 5, .ping)?.id == 5)
    }

    @Test func corruptionIsSeededAndSwitchable() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        h.bus.setCorruption(rate: 1.0, seed: 7)
        try h.client.send(id: 1, .ping)
        let garbage = try h.client.receiveBytes(count: 14, timeoutMs: 200)
        #expect(garbage.count == 14)
        #expect(garbage != DynamixelPacketEncoder.status(id: 1, parameters: [0x60, 0x04, 46]))
        h.bus.setCorruption(rate: 0)
        h.client.parser.reset()
        #expect(try h.client.transact(id: 1, .ping)?.parameters == [0x60, 0x04, 46])
    }

    @Test func disappearingBusIsADisconnect() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        #expect(try h.client.transact(id: 1, .ping)?.id == 1)
        h.bus.disappear()
        #expect(!h.bus.isRunning)
        let error = #expect(throws: SerialError.self) { _ = try h.client.receiveBytes(count: 1, timeoutMs: 1000) }
        #expect(error?.kind == .disconnected)
    }

    @Test func robotWritesPortsFileAtomically() throws {
        let dir = NSTemporaryDirectory() + "tendon-sim-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let robot = try SimulatedRobot(config: SimulatedRobotConfig(
            buses: [alohaBus(name: "left"), alohaBus(name: "right")], pacing: false), linkDirectory: dir)
        let path = dir + "/ports.json"
        #expect(!FileManager.default.fileExists(atPath: path))
        try robot.start(portsJSON: path)
        defer { robot.stop() }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let buses = try #require(json?["buses"] as? [String: String])
        #expect(buses == ["left": dir + "/left", "right": dir + "/right"])
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["left", "ports.json", "right"])
        let client = try SimClient(try #require(buses["right"]))
        #expect(try client.transact(id: 9, .ping)?.parameters == [0xFC, 0x03, 46])
        client.port.close()
        robot.stop()
        #expect(!FileManager.default.fileExists(atPath: dir + "/left"))  // links go with the buses
    }

    @Test func badConfigurationsAreNamed() {
        #expect(throws: SimulatorError.duplicateID(bus: "b", id: 1)) {
            _ = try SimulatedBus(config: SimulatedBusConfig(name: "b", servos: [
                SimulatedServoConfig(id: 1, model: "XM430-W350"), SimulatedServoConfig(id: 1, model: "XM430-W350")]))
        }
        let error = #expect(throws: SimulatorError.self) {
            _ = try SimulatedBus(config: SimulatedBusConfig(name: "b", servos: [SimulatedServoConfig(id: 1, model: "AX-12")]))
        }
        #expect(error?.description.contains("unknown servo model 'AX-12'") == true)
        #expect(error?.description.contains("XM540-W270") == true)
    }
}

/// Motion, stepped with explicit timestamps (no wall clock).
@Suite struct SimulatedServoMotionTests {
    func servo(_ model: String = "XM540-W270", mode: UInt8 = 3) throws -> SimulatedServo {
        SimulatedServo(model: try #require(DynamixelModel.named(model)),
                       config: SimulatedServoConfig(id: 1, model: model, operatingMode: mode, initialPosition: 0),
                       timeConstantSeconds: 0.05, nowNanos: 0)
    }

    func write(_ s: SimulatedServo, _ address: Int, _ bytes: [UInt8], at t: UInt64) -> UInt8 {
        bytes.withUnsafeBytes { s.write(address: address, data: $0, nowNanos: t) }
    }

    @Test func positionConvergesWithinTheVelocityLimit() throws {
        let s = try servo()
        #expect(write(s, 64, [1], at: 0) == 0)
        #expect(write(s, 116, le32(4000), at: 0) == 0)
        // Velocity Limit 128 × 0.229 rpm = 2000 ticks/s: after 100 ms at most ~200 ticks.
        s.advance(to: 100_000_000)
        #expect(s.value(at: 126) == 2047)  // far from the goal: Present Current at Current Limit
        let limit = 128 * 0.229 * 4096 / 60
        #expect(s.position > 0.09 * limit && s.position <= 0.1 * limit + 1)
        #expect(abs(Double(s.value(at: 128) ?? 0) - 128) <= 1)  // Present Velocity at the limit
        s.advance(to: 3_000_000_000)
        #expect(abs(s.position - 4000) < 1)
        #expect(s.value(at: 132) == 4000)
        #expect(s.value(at: 122) == 0)  // Moving cleared
    }

    @Test func profileVelocityCapsBelowTheLimit() throws {
        let s = try servo()
        _ = write(s, 112, le32(50), at: 0)
        _ = write(s, 64, [1], at: 0)
        _ = write(s, 116, le32(4000), at: 0)
        s.advance(to: 1_000_000_000)
        let cap = 50 * 0.229 * 4096 / 60
        #expect(abs(s.position - cap) < 2)
    }

    @Test func firstOrderNearTheGoal() throws {
        let s = try servo()
        _ = write(s, 64, [1], at: 0)
        _ = write(s, 116, le32(50), at: 0)  // small step: never reaches the velocity cap
        s.advance(to: 50_000_000)  // one time constant
        #expect(abs(s.position - 50 * (1 - exp(-1.0))) < 1.5)
    }

    @Test func torqueOffHoldsAndTorqueOnDoesNotJump() throws {
        let s = try servo()
        _ = write(s, 116, le32(1000), at: 0)
        s.advance(to: 1_000_000_000)
        #expect(s.position == 0)
        _ = write(s, 64, [1], at: 1_000_000_000)
        #expect(s.value(at: 116) == 0)  // Goal Position reset to Present Position
    }

    @Test func velocityModeIntegratesPosition() throws {
        let s = try servo(mode: 1)
        _ = write(s, 64, [1], at: 0)
        #expect(write(s, 104, le32(100), at: 0) == 0)
        #expect(write(s, 104, le32(200), at: 0) == DynamixelStatusError.Code.dataLimit.rawValue)
        s.advance(to: 2_000_000_000)
        #expect(abs(Double(s.value(at: 128) ?? 0) - 100) <= 1)
        #expect(abs(s.value(at: 126) ?? 99) <= 4)  // steady speed: little effort, whatever Goal Position says
        #expect(s.position > 100 * 0.229 * 4096 / 60)
    }

    @Test func xl430ReportsLoadAndHasNoGoalCurrent() throws {
        let s = try servo("XL430-W250")
        #expect(s.value(at: 0) == 1060)
        var out: [UInt8] = []
        #expect(s.read(address: 126, length: 2, into: &out, nowNanos: 1) == 0 && out.count == 2)
        #expect(write(s, 102, [0, 0], at: 1) == DynamixelStatusError.Code.access.rawValue)
        #expect(write(s, 11, [0], at: 1) == DynamixelStatusError.Code.dataLimit.rawValue)  // no current mode
    }
}

@Suite struct SimulatorLineRateTests {
    @Test func servosAnswerOnlyAtTheirBaudRate() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        try h.client.port.setBaudRate(57600)
        try h.client.send(id: 1, .ping)
        #expect(try h.client.expectSilence().isEmpty)
        try h.client.port.setBaudRate(1_000_000)
        #expect(try h.client.transact(id: 1, .ping)?.id == 1)
        // Baud Rate 1 = 57600: acknowledged at the old rate, then deaf to it.
        #expect(try h.client.transact(id: 1, .write, [8, 0, 1])?.error == 0)
        try h.client.send(id: 1, .ping)
        #expect(try h.client.expectSilence().isEmpty)
        try h.client.port.setBaudRate(57600)
        #expect(try h.client.transact(id: 1, .ping)?.id == 1)
        // 4.5 Mbps has no B-constant: the client sets it through termios2 and the bus reads it back.
        try h.client.port.setBaudRate(1_000_000)
        #expect(try h.client.transact(id: 2, .write, [8, 0, 7])?.error == 0)
        try h.client.port.setBaudRate(4_500_000)
        #expect(try h.client.transact(id: 2, .ping)?.id == 2)
        try h.client.send(id: 3, .ping)
        #expect(try h.client.expectSilence().isEmpty)
    }

    @Test func nonDynamixelRateIsRejected() {
        let error = #expect(throws: SimulatorError.self) {
            _ = try SimulatedBus(config: SimulatedBusConfig(name: "b", baudRate: 250_000, servos: []))
        }
        #expect(error?.description.contains("250000 baud is not a Dynamixel rate") == true)
    }
}

@Suite struct SimulatedServoFirmwareTests {
    func servo(mode: UInt8 = 1) throws -> SimulatedServo {
        SimulatedServo(model: try #require(DynamixelModel.named("XM430-W350")),
                       config: SimulatedServoConfig(id: 7, model: "XM430-W350", operatingMode: mode, initialPosition: 0),
                       nowNanos: 0)
    }

    func write(_ s: SimulatedServo, _ address: Int, _ bytes: [UInt8], at t: UInt64) -> UInt8 {
        bytes.withUnsafeBytes { s.write(address: address, data: $0, nowNanos: t) }
    }

    @Test func busWatchdogStopsTheServoUntilCleared() throws {
        let s = try servo()
        _ = write(s, 64, [1], at: 0)
        #expect(write(s, 104, le32(50), at: 0) == 0)
        #expect(write(s, 98, [5], at: 0) == 0)  // 100 ms
        s.noteInstruction(nowNanos: 90_000_000)  // traffic keeps it alive
        s.advance(to: 180_000_000)
        #expect(!s.watchdogTripped && s.velocity > 0)
        s.advance(to: 200_000_000)
        #expect(s.watchdogTripped && s.velocity == 0)
        #expect(s.value(at: 98) == 255)
        let stopped = s.position
        s.advance(to: 1_000_000_000)
        #expect(s.position == stopped)
        #expect(write(s, 104, le32(50), at: 1_000_000_000) == DynamixelStatusError.Code.dataRange.rawValue)
        #expect(write(s, 98, [0], at: 1_000_000_000) == 0)
        #expect(write(s, 104, le32(50), at: 1_000_000_000) == 0)
        #expect(write(s, 98, [128], at: 1_000_000_000) == DynamixelStatusError.Code.dataLimit.rawValue)
    }

    @Test func factoryResetKeepsWhatItsOptionSays() throws {
        let s = try servo()
        _ = write(s, 7, [42], at: 0)
        _ = write(s, 8, [3], at: 0)
        _ = write(s, 9, [0], at: 0)
        #expect(s.factoryReset(option: 0x02, nowNanos: 1) == 0)
        #expect(s.id == 42 && s.value(at: 8) == 3 && s.value(at: 9) == 250)
        #expect(s.factoryReset(option: 0x01, nowNanos: 2) == 0)
        #expect(s.id == 42 && s.value(at: 8) == 1)
        #expect(s.factoryReset(option: 0xFF, nowNanos: 3) == 0)
        #expect(s.id == 1 && s.value(at: 0) == 1020)
        #expect(s.factoryReset(option: 0x05, nowNanos: 4) == DynamixelStatusError.Code.dataRange.rawValue)
    }
}

@Suite struct SimulatorStreamTests {
    @Test func truncatedPacketIsDroppedAfterSilence() throws {
        let h = try SimHarness(alohaBus())
        defer { h.stop() }
        // A header promising 200 bytes that never come, then (after a pause) a good packet.
        try h.client.send([0xFF, 0xFF, 0xFD, 0x00, 0x01, 200, 0, 0x02, 0x84])
        usleep(250_000)
        #expect(try h.client.transact(id: 2, .ping)?.id == 2)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let h = try SimHarness(alohaBus(), pacing: true)
        defer { h.stop() }
        let both = DynamixelPacketEncoder.instruction(id: 0xFE, .syncWrite, parameters: [65, 0, 1, 0, 1, 1, 2, 1])
            + DynamixelPacketEncoder.instruction(id: 0xFE, .syncRead, parameters: [65, 0, 1, 0, 1, 2])
            + DynamixelPacketEncoder.instruction(id: 3, .ping)
        try h.client.send(both)
        let replies = try h.client.receive(count: 3)
        #expect(replies.map(\.id) == [1, 2, 3])
        #expect(replies.prefix(2).map(\.parameters) == [[1], [1]])
    }
}

@Suite struct SimulatorLeaderTests {
    @Test func leaderMovedByHandReportsItsPosition() throws {
        let leader = SimulatedBusConfig(name: "leader", servos: [
            SimulatedServoConfig(id: 1, model: "XL430-W250", returnDelayTime: 0),
            SimulatedServoConfig(id: 2, model: "XC430-W150", returnDelayTime: 0),
        ])
        let h = try SimHarness(leader)
        defer { h.stop() }
        h.bus.moveShaft(id: 2, to: 1500)
        try h.client.send(id: 0xFE, .syncRead, [132, 0, 4, 0, 1, 2])
        let replies = try h.client.receive(count: 2)
        #expect(replies.map { int32($0.parameters) } == [2048, 1500])
        #expect(try h.client.transact(id: 1, .ping)?.parameters.prefix(2) == [0x24, 0x04])  // 1060
    }
}
