import Foundation
import Logging
import Testing
import TendonControl
import TendonHardware
@testable import TendonService

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let alohaConfigPath = repositoryRoot.appendingPathComponent("Configs/robots/aloha.yaml").path

/// A simulated ALOHA on ptys started by the test (not by the runner), so the test can inject faults
/// while `tendon run`'s runner drives it, exactly as with `tendon sim --ports-json`.
final class SimulatorFixture {
    let robot: RobotConfig
    let calibration: CalibrationFile
    let sim: SimulatedRobot
    let directory: URL
    let portsJSON: String

    init(modify: (inout SimulatedRobotConfig) -> Void = { _ in }) throws {
        robot = try RobotConfig.load(path: alohaConfigPath)
        calibration = try CalibrationFile.load(path: robot.calibrationPath)
        var config = SimulatedAloha.configuration(robot: robot, calibration: calibration)
        modify(&config)
        sim = try SimulatedRobot(config: config)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        portsJSON = directory.appendingPathComponent("ports.json").path
        try sim.start(portsJSON: portsJSON)
    }

    deinit {
        sim.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func options(policy: MotionPolicyKind = .hold, duration: Double = 1.0, hold: Double = 0.3) -> RunOptions {
        RunOptions(robotPath: alohaConfigPath, ports: .portsJSON(portsJSON), policy: policy, durationSeconds: duration,
                   reportPath: directory.appendingPathComponent("report.json").path, holdSecondsAfterFault: hold,
                   lockMemory: false)
    }

    var reportPath: String { directory.appendingPathComponent("report.json").path }

    func goalTicks(bus: String, id: UInt8) -> Int64? {
        sim.bus(bus)?.withServo(id: id) { $0.value(at: 116) } ?? nil
    }

    func presentTicks(bus: String, id: UInt8) -> Int64? {
        sim.bus(bus)?.withServo(id: id) { $0.value(at: 132) } ?? nil
    }

    func torqueOn(bus: String, id: UInt8) -> Bool {
        sim.bus(bus)?.withServo(id: id) { $0.torqueEnabled } ?? false
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    logger.logLevel = .critical
    return logger
}

/// Runs the runner on a background thread so the test can inject faults meanwhile.
func runInBackground(_ options: RunOptions) -> (wait: () -> RunReport, started: UInt64) {
    let box = ReportBox()
    let thread = Thread {
        box.set(RobotRunner(options: options, logger: quietLogger()).run())
    }
    thread.start()
    return ({ box.wait() }, MonotonicClock.nowNanos())
}

final class ReportBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var report: RunReport?
    func set(_ r: RunReport) { condition.lock(); report = r; condition.signal(); condition.unlock() }
    func wait() -> RunReport {
        condition.lock()
        while report == nil { condition.wait() }
        let r = report!
        condition.unlock()
        return r
    }
}

@Suite(.serialized) struct RobotRunnerTests {
    @Test func holdRunsTheLoopAndWritesTheReportContract() throws {
        let fixture = try SimulatorFixture()
        let before = fixture.presentTicks(bus: "follower_left", id: 2)
        let report = RobotRunner(options: fixture.options(duration: 1.0), logger: quietLogger()).run()
        #expect(report.exitCode == 0, "\(report.exit)")
        #expect(report.exit == "ok")
        // The contract keys, read back as plain JSON.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture.reportPath))) as? [String: Any]
        let loop = try #require(json?["loop"] as? [String: Any])
        #expect(loop["period_us"] as? Int == 5000)
        let latency = try #require(loop["wake_latency_us"] as? [String: Any])
        for key in ["p50", "p99", "max"] { #expect(latency[key] is Double || latency[key] is Int) }
        #expect((loop["cycles"] as? Int ?? 0) > 100)
        #expect(loop["overruns"] is Int)
        #expect(json?["exit"] as? String == "ok")
        let histogram = try #require(loop["wake_latency_histogram"] as? [[String: Any]])
        let counted = histogram.compactMap { $0["count"] as? Int }.reduce(0, +)
        #expect(counted == loop["cycles"] as? Int)
        // Holding: torque on, nothing moved.
        #expect(fixture.torqueOn(bus: "follower_right", id: 9))
        let after = fixture.presentTicks(bus: "follower_left", id: 2)
        #expect(before != nil && after != nil && abs(before! - after!) <= 2)
    }

    @Test func sineMovesTheArmsWithinLimits() throws {
        let fixture = try SimulatorFixture()
        let robot = fixture.robot
        let start = fixture.presentTicks(bus: "follower_left", id: 1)
        let handle = runInBackground(fixture.options(policy: .sine, duration: 2.5))
        var maxDeviation: Int64 = 0
        var shadowMismatch: Int64 = 0
        while true {
            usleep(50_000)
            if let p = fixture.presentTicks(bus: "follower_left", id: 1), let s = start { maxDeviation = max(maxDeviation, abs(p - s)) }
            // The shadow servo mirrors its primary through its own calibration (direction −1).
            if let a = fixture.goalTicks(bus: "follower_left", id: 2), let b = fixture.goalTicks(bus: "follower_left", id: 3) {
                shadowMismatch = max(shadowMismatch, abs((a - 2048) + (b - 2048)))
            }
            if MonotonicClock.nowNanos() - handle.started > 2_200_000_000 { break }
        }
        let report = handle.wait()
        #expect(report.exitCode == 0, "\(report.exit)")
        #expect(maxDeviation > 20, "the waist should have moved")
        #expect(shadowMismatch <= 1)
        let waist = try #require(robot.joints.first)
        let calib = try #require(fixture.calibration.servo(bus: "follower_left", id: 1))
        if let goal = fixture.goalTicks(bus: "follower_left", id: 1) {
            let q = calib.radians(ticks: Int32(goal))
            #expect(q >= waist.min - 1e-3 && q <= waist.max + 1e-3)
        }
    }

    @Test func replayBeyondTheLimitsIsClampedAtTheLimit() throws {
        let fixture = try SimulatorFixture()
        let csv = fixture.directory.appendingPathComponent("far.csv")
        // Left shoulder asked to 3 rad (limit 1.25) and NaN-free; everything else at zero.
        var rows = "t," + (0..<14).map { "q\($0)" }.joined(separator: ",") + "\n"
        for k in 0..<20 {
            var q = [Double](repeating: 0, count: 14)
            q[1] = 3.0
            q[6] = 0.4; q[13] = 0.4
            rows += "\(Double(k) * 0.1)," + q.map { String($0) }.joined(separator: ",") + "\n"
        }
        try rows.write(to: csv, atomically: true, encoding: .utf8)
        let report = RobotRunner(options: fixture.options(policy: .replay(path: csv.path), duration: 3.0),
                                 logger: quietLogger()).run()
        #expect(report.exitCode == 0, "\(report.exit)")
        let calib = try #require(fixture.calibration.servo(bus: "follower_left", id: 2))
        let goal = try #require(fixture.goalTicks(bus: "follower_left", id: 2))
        let shoulder = fixture.robot.joints[1]
        let q = calib.radians(ticks: Int32(goal))
        #expect(q <= shoulder.max + 1e-3, "goal \(q) rad beyond the 1.25 rad limit")
        #expect(q > shoulder.max - 0.05, "the shoulder should have reached its limit, is at \(q)")
    }

    @Test func servoThatStopsAnsweringIsNamedTheOthersHoldThenACleanStop() throws {
        let fixture = try SimulatorFixture()
        let handle = runInBackground(fixture.options(policy: .hold, duration: 10, hold: 0.5))
        usleep(800_000)
        let heldGoal = fixture.goalTicks(bus: "follower_right", id: 2)
        fixture.sim.bus("follower_left")?.setSilent(id: 4)
        let report = handle.wait()
        let elapsed = Double(MonotonicClock.nowNanos() - handle.started) / 1e9
        #expect(report.exitCode == 1)
        #expect(report.exit.contains("follower_left") && report.exit.contains("servo 4") && report.exit.contains("elbow"))
        #expect(report.buses["follower_left"]?.unresponsiveServos == [4])
        #expect(elapsed < 5)
        // The other servos still have torque and hold where they were.
        #expect(fixture.torqueOn(bus: "follower_right", id: 2))
        #expect(fixture.goalTicks(bus: "follower_right", id: 2) == heldGoal)
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture.reportPath))) as? [String: Any]
        #expect((saved?["exit"] as? String)?.contains("servo 4") == true)
    }

    @Test func busThatDisappearsStopsTheRunWithinFiveSecondsNamingTheBus() throws {
        let fixture = try SimulatorFixture()
        let handle = runInBackground(fixture.options(policy: .sine, duration: 30, hold: 1.0))
        usleep(700_000)
        let t0 = MonotonicClock.nowNanos()
        fixture.sim.bus("follower_right")?.disappear()
        let report = handle.wait()
        let seconds = Double(MonotonicClock.nowNanos() - t0) / 1e9
        #expect(report.exitCode != 0)
        #expect(report.exit.contains("follower_right"))
        #expect(!report.exit.contains("\n"))
        #expect(seconds < 5, "took \(seconds) s")
    }

    @Test func corruptRepliesAreCountedAndRetriedNeverACrash() throws {
        let fixture = try SimulatorFixture()
        fixture.sim.bus("follower_left")?.setCorruption(rate: 0.002, seed: 7)
        let report = RobotRunner(options: fixture.options(policy: .sine, duration: 2.0), logger: quietLogger()).run()
        // Every corrupted reply is counted and the servo is asked again next cycle; occasional corruption
        // never adds up to the consecutive-miss limit.
        #expect(report.exitCode == 0, "\(report.exit)")
        #expect((report.buses["follower_left"]?.corruptPackets ?? 0) > 0)
        #expect(report.buses["follower_right"]?.corruptPackets == 0)
    }

    @Test func hardwareErrorAlertStopsTheRunAndIsNamed() throws {
        let fixture = try SimulatorFixture()
        let handle = runInBackground(fixture.options(policy: .hold, duration: 10, hold: 0.2))
        usleep(600_000)
        fixture.sim.bus("follower_right")?.raiseHardwareError(id: 7, .overheating)
        let report = handle.wait()
        #expect(report.exitCode == 1)
        #expect(report.exit.contains("follower_right") && report.exit.contains("servo 7"))
        #expect(report.faults.contains { $0.contains("Hardware Error Status") && $0.lowercased().contains("overheat") })
    }
}

@Suite(.serialized) struct StartupRefusalTests {
    private func refusal(_ modify: @escaping (inout SimulatedRobotConfig) -> Void) throws -> RunReport {
        let fixture = try SimulatorFixture(modify: modify)
        let report = RobotRunner(options: fixture.options(), logger: quietLogger()).run()
        #expect(report.loop == nil, "the loop must not start")
        #expect(!fixture.torqueOn(bus: "follower_left", id: 1))
        return report
    }

    @Test func wrongModelIsRefused() throws {
        let report = try refusal { c in c.buses[0].servos[7].model = "XM540-W270" }
        #expect(report.exitCode == 2)
        #expect(report.exit.contains("follower_left servo 8") && report.exit.contains("XM430-W350"))
    }

    @Test func wrongOperatingModeIsRefused() throws {
        let report = try refusal { c in c.buses[0].servos[8].operatingMode = 3 }
        #expect(report.exit.contains("servo 9") && report.exit.contains("operating mode is position"))
    }

    @Test func missingServoIsRefused() throws {
        let report = try refusal { c in c.buses[0].servos.removeAll { $0.id == 6 } }
        #expect(report.exit.contains("servo 6") && report.exit.contains("PING"))
    }

    @Test func limitRegistersNarrowTheCommandWindow() throws {
        // Max Position Limit of the left shoulder set below its calibrated range: the start is allowed
        // (the joint is inside), and the window every command is clamped to follows the register.
        let fixture = try SimulatorFixture { c in c.buses[0].servos[1].maxPositionLimit = 2300 }
        let robot = fixture.robot
        let calibration = fixture.calibration
        let ports = try RobotRunner.readPortsFile(fixture.portsJSON)
        let session = try ServoBusSession.open(config: robot.bus(named: "follower_left")!, path: ports["follower_left"]!,
                                               robot: robot, calibration: calibration,
                                               busConfiguration: .init(), logger: quietLogger())
        defer { session.close() }
        let shoulder = try #require(session.servos.first { $0.config.id == 2 })
        #expect(shoulder.commandTicks.upperBound == 2300)
        let limits = try RobotRunner.jointLimits(robot: robot, sessions: [session])
        #expect(abs(limits.maxPosition[1] - shoulder.calibration.radians(ticks: 2300)) < 1e-9)
    }
}
