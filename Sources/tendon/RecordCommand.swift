import ArgumentParser
import Foundation
import TendonHardware
import TendonService

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record teleoperated episodes (leader arms drive the followers) as ALOHA HDF5 files.",
        discussion: """
        Leaders are read with torque off; the followers follow them through the real-time loop and the \
        safety filter (grippers mapped through the config's normalization constants). Each frame, at the \
        control frequency: follower qpos/qvel/effort, the leader-derived action, one image per camera, \
        the loop timestamp. Files: OUT/episode_<N>.hdf5, N continuing after existing ones, written under \
        a temporary name and renamed when complete. Interactive: a countdown, start by Enter or a \
        squeeze-and-release of a leader gripper, stop after --seconds (or Enter), then keep or discard. \
        --yes records every episode back to back and keeps them all. With --sim the simulated leaders \
        play a demonstration. Exits 0 on success, 1 after a failure while recording (a full disk: the arms \
        hold, then stop; finished episodes stay), 2 when the robot may not start.
        """)

    @Option(help: "Robot config (YAML).") var robot: String = "Configs/robots/aloha.yaml"
    @Flag(help: "Start the simulated robot in this process.") var sim = false
    @Option(name: .customLong("ports-json"), help: "Ports file written by `tendon sim`.") var portsJSON: String?
    @Option(help: "Output directory.") var out: String
    @Option(help: "Number of episodes.") var episodes: Int = 1
    @Option(help: "Seconds per episode.") var seconds: Double
    @Option(help: "Task text stored in every episode (with --sim: replaced by the demonstration's instruction).") var task: String
    @Flag(help: "Store camera frames as JPEG (ALOHA 2 layout).") var compress = false
    @Flag(help: "Record joints only, without the config's cameras (a robot without cameras attached).")
    var noCameras = false
    @Flag(help: "No prompts: record every episode and keep it.") var yes = false
    @Option(help: "Consecutive missed replies before a servo counts as unresponsive.") var missLimit: Int32 = 10
    @Option(name: .customLong("sim-camera-size"), help: "WxH of the simulated cameras' images (--sim).") var simCameraSize = "160x120"
    @Flag(help: "Debug logging.") var verbose = false

    func validate() throws {
        if sim && portsJSON != nil { throw ValidationError("--sim and --ports-json exclude each other") }
        if episodes < 1 { throw ValidationError("--episodes must be at least 1, got \(episodes)") }
        if !(seconds > 0) { throw ValidationError("--seconds must be positive, got \(seconds)") }
        if missLimit < 1 { throw ValidationError("--miss-limit must be at least 1") }
        if cameraSize == nil { throw ValidationError("--sim-camera-size must be WxH with both between 8 and 1920, got \(simCameraSize)") }
    }

    var cameraSize: (width: Int, height: Int)? {
        let parts = simCameraSize.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, (8...1920).contains(parts[0]), (8...1920).contains(parts[1]) else { return nil }
        return (parts[0], parts[1])
    }

    func run() throws {
        installStopSignals()
        signal(SIGXFSZ, SIG_IGN)  // a file-size limit must surface as a write error, not kill the process
        var options = RecordOptions(robotPath: robot, ports: sim ? .simulator : portsJSON.map { .portsJSON($0) } ?? .config,
                                    outDirectory: out, episodes: episodes, seconds: seconds, task: task, compress: compress)
        options.missLimit = missLimit
        if let size = cameraSize { (options.simCameraWidth, options.simCameraHeight) = size }
        let stop: @Sendable () -> Bool = { stopRequested.load(ordering: .relaxed) }
        let recordOperator: any RecordOperator = yes ? ScriptedOperator(shouldStop: stop) : TerminalOperator(shouldStop: stop)
        // On a robot the configured cameras (V4L2) are recorded; with --sim the simulated ones are.
        var cameras: [RecordingCamera] = []
        var sources: [any CameraSource] = []
        if !sim && !noCameras {
            let config: RobotConfig
            do { config = try RobotConfig.load(path: robot) } catch { fail(error.description, code: 2) }
            do { (cameras, sources) = try RecordingCamera.configured(robot: config) } catch {
                fail("\(error) (use --no-cameras to record joints only)", code: 2)
            }
        }
        defer { sources.forEach { $0.stop() } }
        let runner = RecordRunner(options: options, logger: makeLogger("tendon.record", verbose: verbose),
                                  recordOperator: recordOperator, cameras: cameras)
        let result = runner.run()
        if result.exitCode != 0 {
            // After a failed write (EFBIG, ENOSPC) libhdf5 1.10 keeps the broken file registered and its
            // exit handler crashes closing it; finished episodes are closed and fsynced, so leave without
            // running exit handlers once the one line is out.
            FileHandle.standardError.write(Data(("tendon: " + result.exit + "\n").utf8))
            fflush(nil)
            _exit(result.exitCode)
        }
        print("recorded \(result.episodes.count) episode(s) in \(out)\(result.discarded > 0 ? ", \(result.discarded) discarded" : "")"
              + (result.slowEpisodes.isEmpty ? "" : "; below 90 % of the control rate: \(result.slowEpisodes.joined(separator: ", "))"))
    }
}

/// Prompts on the terminal: Enter (or a leader-gripper squeeze-and-release) starts and stops.
final class TerminalOperator: RecordOperator {
    private let shouldStop: @Sendable () -> Bool
    init(shouldStop: @escaping @Sendable () -> Bool) { self.shouldStop = shouldStop }

    private var inputClosed = false

    /// A line on standard input within the timeout. End of input is not a key press: the gesture
    /// still works, and the keep prompt then takes its default.
    private func enterPressed(timeoutMillis: Int32) -> Bool {
        guard !inputClosed else {
            if timeoutMillis > 0 { usleep(UInt32(timeoutMillis) * 1000) }
            return false
        }
        var fd = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        guard poll(&fd, 1, timeoutMillis) > 0 else { return false }
        if readLine() == nil {
            inputClosed = true
            return false
        }
        return true
    }

    /// Prompts must reach a pipe (a script driving the prompts) as soon as they are printed.
    private func say(_ text: String, terminator: String = "\n") {
        print(text, terminator: terminator)
        fflush(nil)
    }

    func waitForStart(episode index: Int, task: String, gesture: () -> Bool) -> Bool {
        say("episode \(index): \(task)\n  press Enter or squeeze-and-release a leader gripper to start")
        while !shouldStop() {
            if enterPressed(timeoutMillis: 20) || gesture() { break }
        }
        if shouldStop() { return false }
        for n in stride(from: 3, to: 0, by: -1) {
            say("  \(n)…")
            usleep(1_000_000)
        }
        say("  recording (Enter stops)")
        return !shouldStop()
    }

    func stopRequested() -> Bool { shouldStop() || enterPressed(timeoutMillis: 0) }
    func cancelled() -> Bool { shouldStop() }

    func keep(episode index: Int, frames: Int, achievedHz: Double, rateOK: Bool) -> Bool {
        say(String(format: "\nepisode %d: %d frames at %.1f Hz%@. Keep it? [Y/n] ", index, frames, achievedHz,
                   rateOK ? "" : " (below 90 % of the control rate)"), terminator: "")
        let answer = inputClosed ? "y" : readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? "y"
        let keep = answer.isEmpty || answer.hasPrefix("y")
        say(keep ? "  kept" : "  discarded")
        return keep
    }

    func status(_ line: String) {
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}
