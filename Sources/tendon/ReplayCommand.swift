import ArgumentParser
import Foundation
import TendonService

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Drive the followers through a recorded episode's /action.",
        discussion: """
        Reads EPISODE.hdf5 (ALOHA layout, written by `tendon record` or ALOHA's own tools), approaches the \
        first action slowly enough for the velocity limits, then plays the actions at the recorded times \
        (timestamps, else the fps attribute) through the real-time loop and the safety filter. Exits 0 at \
        the end, 1 after a fault, 2 when the robot may not start or the file is unreadable.
        """)

    @Argument(help: "Episode file (HDF5).") var episode: String
    @Option(help: "Robot config (YAML).") var robot: String = "Configs/robots/aloha.yaml"
    @Flag(help: "Start the simulated robot in this process.") var sim = false
    @Option(name: .customLong("ports-json"), help: "Ports file written by `tendon sim`.") var portsJSON: String?
    @Option(help: "Write a JSON report here.") var report: String?
    @Option(help: "Seconds to keep holding the last pose after the episode ends.") var settle: Double = 1.0
    @Flag(help: "Debug logging.") var verbose = false

    func validate() throws {
        if sim && portsJSON != nil { throw ValidationError("--sim and --ports-json exclude each other") }
    }

    func run() throws {
        installStopSignals()
        let replay: ReplayFile
        do { replay = try ReplayFile.episode(path: episode, joints: 14) } catch { fail(error.description, code: 2) }
        guard replay.seconds.count > 0 else { fail("\(episode): the episode has no frames", code: 2) }
        var options = RunOptions(robotPath: robot, ports: sim ? .simulator : portsJSON.map { .portsJSON($0) } ?? .config,
                                 policy: .replay(path: episode), durationSeconds: nil, reportPath: report)
        options.stopAfterReplaySeconds = settle
        let runner = RobotRunner(options: options, logger: makeLogger("tendon.replay", verbose: verbose),
                                 shouldStop: { stopRequested.load(ordering: .relaxed) })
        let result = runner.run()
        if result.exitCode != 0 { fail(result.exit, code: result.exitCode) }
    }
}
