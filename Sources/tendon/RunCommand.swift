import ArgumentParser
import Foundation
import TendonControl
import TendonService

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Drive the follower arms from the real-time loop.",
        discussion: """
        Opens and verifies every follower bus (model, operating mode, hardware errors, limit registers \
        against the robot config and calibration), enables torque without moving, and runs the real-time \
        loop at the config's servo rate with the chosen policy. Exits 0 when the duration ends or on \
        SIGINT/SIGTERM; 1 after a fault (a bus that disappears, a servo that stops answering), 2 when the \
        robot may not start. Model-driven runs (--model) arrive with the inference core.
        """)

    @Option(help: "Robot config (YAML).") var robot: String = "Configs/robots/aloha.yaml"
    @Flag(help: "Start the simulated robot in this process.") var sim = false
    @Option(name: .customLong("ports-json"), help: "Ports file written by `tendon sim` ({\"buses\":{name:path}}).")
    var portsJSON: String?
    @Option(help: "hold | sine | replay:FILE (CSV: t, then 14 joint targets in radians).") var policy: String = "hold"
    @Option(help: "Stop after this many seconds (default: until SIGINT/SIGTERM).") var duration: Double?
    @Option(help: "Write a JSON report here.") var report: String?
    @Option(help: "linear | cubic interpolation between waypoints.") var interpolation: String = "cubic"
    @Option(help: "Consecutive missed replies before a servo counts as unresponsive.") var missLimit: Int32 = 10
    @Option(help: "Seconds the healthy joints hold after a fault before the loop stops.") var holdAfterFault: Double = 1.0
    @Flag(help: "Debug logging.") var verbose = false

    func validate() throws {
        if sim && portsJSON != nil { throw ValidationError("--sim and --ports-json exclude each other") }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be positive, got \(duration)") }
        if !["linear", "cubic"].contains(interpolation) {
            throw ValidationError("--interpolation must be linear or cubic, got \(interpolation)")
        }
        do { _ = try MotionPolicyKind(argument: policy) } catch { throw ValidationError(error.description) }
        if missLimit < 1 { throw ValidationError("--miss-limit must be at least 1") }
    }

    func run() throws {
        installStopSignals()
        let options = RunOptions(
            robotPath: robot,
            ports: sim ? .simulator : portsJSON.map { .portsJSON($0) } ?? .config,
            policy: try MotionPolicyKind(argument: policy), durationSeconds: duration, reportPath: report,
            holdSecondsAfterFault: holdAfterFault, missLimit: missLimit,
            interpolation: interpolation == "linear" ? .linear : .cubic)
        let runner = RobotRunner(options: options, logger: makeLogger("tendon.run", verbose: verbose),
                                 shouldStop: { stopRequested.load(ordering: .relaxed) })
        let result = runner.run()
        if result.exitCode != 0 { fail(result.exit, code: result.exitCode) }
    }
}
