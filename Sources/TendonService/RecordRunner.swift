import Foundation
import Logging
import Synchronization
import TendonControl
import TendonData
import TendonHardware

/// A camera the recorder samples once per frame: newest complete image, RGB8.
public struct RecordingCamera: Sendable {
    public var name: String
    public var width: Int
    public var height: Int
    /// Copies the newest frame into the buffer (width·height·3 bytes); false when none yet.
    public var copyLatest: @Sendable (UnsafeMutableRawBufferPointer) -> Bool
    /// Simulated cameras: render the scene for these follower joints now, so the image matches the frame.
    public var prepare: (@Sendable ([Double]) -> Void)?

    public init(name: String, width: Int, height: Int, copyLatest: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Bool,
                prepare: (@Sendable ([Double]) -> Void)? = nil) {
        self.name = name
        self.width = width
        self.height = height
        self.copyLatest = copyLatest
        self.prepare = prepare
    }

    /// The simulated world's cameras (SimWorld.cameraNames) looking at `task`, rendered by the recorder
    /// thread once per frame from the recorded follower joints.
    public static func simulated(task: SimTask, width: Int, height: Int) throws(CameraError) -> [RecordingCamera] {
        let joints = JointBox()
        var cameras: [RecordingCamera] = []
        for name in SimWorld.cameraNames {
            let camera = try SimCamera(name: name, task: task, width: width, height: height, fps: 50, joints: { joints.get() })
            cameras.append(RecordingCamera(name: name, width: width, height: height,
                                           copyLatest: { camera.copyLatestFrame(into: $0) != nil },
                                           prepare: { q in joints.set(q); camera.renderOnce() }))
        }
        return cameras
    }
}

extension RecordingCamera {
    /// A live camera (V4L2 on a robot): frames are captured and decoded on its own thread; the recorder
    /// copies the newest one each frame.
    public static func live(_ source: any CameraSource) -> RecordingCamera {
        RecordingCamera(name: source.name, width: source.width, height: source.height,
                        copyLatest: { source.copyLatestFrame(into: $0) != nil })
    }

    /// Opens and starts every camera of the robot config (V4L2). A camera that cannot start stops the
    /// whole set: an episode silently missing a view is worse than no episode.
    public static func configured(robot: RobotConfig) throws(CameraError) -> (cameras: [RecordingCamera], sources: [any CameraSource]) {
        var sources: [any CameraSource] = []
        for config in robot.cameras {
            let camera = V4L2Camera(config: config)
            do {
                try camera.start()
            } catch {
                sources.forEach { $0.stop() }
                throw error
            }
            sources.append(camera)
        }
        return (sources.map(live), sources)
    }
}

final class JointBox: Sendable {
    private let value = Mutex<[Double]>([])
    func get() -> [Double] { value.withLock { $0 } }
    func set(_ q: [Double]) { value.withLock { $0 = q } }
}

/// How an operator starts, stops and keeps episodes. `ScriptedOperator` (`--yes`) keeps everything.
public protocol RecordOperator: AnyObject {
    /// Before episode `index`: countdown, then return when recording should start; false aborts the session.
    func waitForStart(episode index: Int, task: String, gesture: () -> Bool) -> Bool
    /// During an episode: true when the operator asks to stop early (may consume a key press).
    func stopRequested() -> Bool
    /// The whole session is cancelled (SIGINT/SIGTERM); consumes nothing.
    func cancelled() -> Bool
    /// After an episode: keep it?
    func keep(episode index: Int, frames: Int, achievedHz: Double, rateOK: Bool) -> Bool
    /// The live line (elapsed, achieved Hz, dropped frames).
    func status(_ line: String)
}

public final class ScriptedOperator: RecordOperator {
    private let shouldStop: @Sendable () -> Bool
    public init(shouldStop: @escaping @Sendable () -> Bool = { false }) { self.shouldStop = shouldStop }
    public func waitForStart(episode index: Int, task: String, gesture: () -> Bool) -> Bool { !shouldStop() }
    public func stopRequested() -> Bool { shouldStop() }
    public func cancelled() -> Bool { shouldStop() }
    public func keep(episode index: Int, frames: Int, achievedHz: Double, rateOK: Bool) -> Bool { true }
    public func status(_ line: String) {}
}

public struct RecordOptions: Sendable {
    public var robotPath: String
    public var ports: PortSource
    public var outDirectory: String
    public var episodes: Int
    public var seconds: Double
    public var task: String
    public var compress: Bool
    public var lockMemory: Bool?
    /// Test hook: the writer fails (as on a full disk) at this frame of episode `failEpisode`.
    public var failAtFrame: Int?
    public var failEpisode: Int
    /// Seconds the arms hold after a recording failure before the loop stops.
    public var holdSecondsAfterFailure: Double
    /// Consecutive missed replies before a servo (follower or leader) counts as unresponsive.
    public var missLimit: Int32 = 10
    /// Size of the simulated cameras' images (`--sim`).
    public var simCameraWidth = 160
    public var simCameraHeight = 120

    public init(robotPath: String, ports: PortSource, outDirectory: String, episodes: Int, seconds: Double, task: String,
                compress: Bool = false, lockMemory: Bool? = nil, failAtFrame: Int? = nil, failEpisode: Int = 0,
                holdSecondsAfterFailure: Double = 1.0) {
        self.robotPath = robotPath
        self.ports = ports
        self.outDirectory = outDirectory
        self.episodes = episodes
        self.seconds = seconds
        self.task = task
        self.compress = compress
        self.lockMemory = lockMemory
        self.failAtFrame = failAtFrame
        self.failEpisode = failEpisode
        self.holdSecondsAfterFailure = holdSecondsAfterFailure
    }
}

public struct RecordResult: Sendable {
    public var episodes: [String] = []
    public var discarded = 0
    /// Episodes flagged for a rate below 90 % of the control frequency.
    public var slowEpisodes: [String] = []
    public var exit = "ok"
    public var exitCode: Int32 = 0
}

/// `tendon record`: leader → follower teleoperation through the real-time loop (TeleopArmsIO) while a
/// recorder thread samples the loop's sample ring and the cameras at the control frequency and writes
/// ALOHA-layout episodes. The real-time thread never touches a file.
///
/// A write failure (full disk) ends the session: one clear message, the arms freeze on their last
/// command for `holdSecondsAfterFailure`, the loop stops, the half episode is deleted, and the finished
/// ones stay as they are.
public final class RecordRunner {
    public let options: RecordOptions
    public let logger: Logger
    public let recordOperator: any RecordOperator
    /// Cameras to record; with `--sim` the caller passes the simulated ones.
    public var cameras: [RecordingCamera]
    /// With `--sim`: the demonstration played on the simulated leaders for episode `index` (nil: a reach).
    public var demonstration: (@Sendable (_ index: Int, _ start: [Double], _ robot: RobotConfig) -> any LeaderDemonstration)?

    public init(options: RecordOptions, logger: Logger, recordOperator: any RecordOperator, cameras: [RecordingCamera] = []) {
        self.options = options
        self.logger = logger
        self.recordOperator = recordOperator
        self.cameras = cameras
    }

    public func run() -> RecordResult {
        var result = RecordResult()
        var simulator: SimulatedRobot?
        var hands: SimulatedLeaderHands?
        var sessions: [ServoBusSession] = []
        defer {
            hands?.stop()
            sessions.forEach { $0.close() }
            simulator?.stop()
        }
        do {
            let directory = try EpisodeDirectory(path: options.outDirectory)
            for partial in directory.partialFiles() {
                logger.warning("\(partial): left by an interrupted episode; removing it")
                unlink(partial)
            }
            let robot: RobotConfig
            do { robot = try RobotConfig.load(path: options.robotPath) } catch { throw StartupError(error.description) }
            let calibration: CalibrationFile
            do {
                calibration = try CalibrationFile.load(path: robot.calibrationPath)
                try calibration.validate(against: robot)
            } catch { throw StartupError(error.description) }
            let ports: [String: String]
            switch options.ports {
            case .simulator:
                do {
                    let sim = try SimulatedRobot(config: SimulatedAloha.configuration(robot: robot, calibration: calibration))
                    try sim.start()
                    simulator = sim
                    ports = sim.ports
                } catch { throw StartupError("simulator: \(error)") }
            case .portsJSON(let path):
                ports = try RobotRunner.readPortsFile(path)
            case .config:
                ports = Dictionary(uniqueKeysWithValues: robot.buses.map { ($0.name, $0.device) })
            }
            func open(_ buses: [BusConfig]) throws(StartupError) -> [ServoBusSession] {
                var opened: [ServoBusSession] = []
                for bus in buses {
                    guard let path = ports[bus.name] else {
                        throw StartupError("bus \(bus.name): no device path (ports: \(ports.keys.sorted().joined(separator: ", ")))")
                    }
                    let configuration = DynamixelBus.Configuration(retries: 3, latencyMarginNanos: 20_000_000)
                    let session = try ServoBusSession.open(config: bus, path: path, robot: robot, calibration: calibration,
                                                           busConfiguration: configuration, logger: logger)
                    opened.append(session)
                    sessions.append(session)
                }
                return opened
            }
            let followers = try open(robot.followerBuses)
            let leaders = try open(robot.leaderBuses)
            guard !followers.isEmpty, leaders.count == followers.count else {
                throw StartupError("\(robot.file): teleoperation needs one leader bus per follower bus (\(leaders.count) leader, \(followers.count) follower)")
            }
            let limits = try RobotRunner.jointLimits(robot: robot, sessions: followers)
            try RobotRunner.checkStartPose(robot: robot, sessions: followers, limits: limits)
            try Self.torqueOff(leaders)
            try RobotRunner.enableTorque(robot: robot, sessions: followers)
            if let simulator {
                let puppet: LeaderPuppet
                do { puppet = try LeaderPuppet(robot: robot, calibration: calibration, simulator: simulator) } catch {
                    throw StartupError("simulator: \(error)")
                }
                let h = SimulatedLeaderHands(puppet: puppet)
                h.start()
                hands = h
            }
            try record(robot: robot, followers: followers, leaders: leaders, limits: limits, directory: directory,
                       hands: hands, result: &result)
        } catch let error as StartupError {
            result.exit = error.description
            result.exitCode = 2
            logger.error("\(error.description)")
        } catch let error as EpisodeError {
            result.exit = error.description
            result.exitCode = 2
            logger.error("\(error.description)")
        } catch {
            result.exit = "\(error)"
            result.exitCode = 2
            logger.error("\(error)")
        }
        return result
    }

    static func torqueOff(_ sessions: [ServoBusSession]) throws(StartupError) {
        for session in sessions {
            for servo in session.servos {
                guard let reg = servo.model.register(.torqueEnable) else { continue }
                do { try session.bus.write(servo.config.id, address: reg.address, value: 0, size: reg.size) } catch {
                    throw StartupError("bus \(session.config.name) servo \(servo.config.id): cannot turn torque off: \(error)")
                }
            }
        }
    }

    private func record(robot: RobotConfig, followers: [ServoBusSession], leaders: [ServoBusSession], limits: SafetyLimits,
                        directory: EpisodeDirectory, hands: SimulatedLeaderHands?, result: inout RecordResult) throws {
        for session in followers + leaders { session.bus.configuration.latencyMarginNanos = 1_500_000 }
        let perArm = robot.joints.count
        let gripperJoints = robot.joints.indices.filter { robot.joints[$0].name == "gripper" }
            .flatMap { j in (0..<followers.count).map { $0 * perArm + j } }
        let io = try TeleopArmsIO(followers: DynamixelArmsIO(sessions: followers, jointsPerArm: perArm, missLimit: options.missLimit),
                                  leaders: DynamixelArmsIO(sessions: leaders, jointsPerArm: perArm, missLimit: options.missLimit),
                                  gripperJoints: gripperJoints, grippers: robot.grippers)
        let n = io.jointCount
        let period = UInt64(1_000_000_000 / robot.servoRateHz)
        let loop: ControlLoop<TeleopArmsIO>
        do { loop = try ControlLoop(io: io, limits: limits, periodNanos: period, maxWaypoints: 4) } catch {
            throw StartupError(error.description)
        }
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: period, priority: Int32(robot.realtime.priority),
                                                           cpu: robot.realtime.cpu,
                                                           lockMemory: options.lockMemory ?? robot.realtime.lockMemory))
        let warnings: [String]
        do { warnings = try thread.start(loop) } catch { throw StartupError(error.description) }
        for warning in warnings { logger.warning("\(warning)") }
        defer { _ = thread.stop() }
        logger.info("teleoperation running at \(robot.servoRateHz) Hz; recording at \(robot.controlFrequencyHz) Hz into \(directory.path)")

        // The followers first walk slowly to where the leaders are.
        let approachDeadline = MonotonicClock.nowNanos() + 30_000_000_000
        var announced = false
        while io.isApproaching && loop.fault == nil && MonotonicClock.nowNanos() < approachDeadline && !recordOperator.cancelled() {
            if !announced {
                logger.info("followers approaching the leaders' pose at \(io.approachRadiansPerSecond) rad/s")
                announced = true
            }
            usleep(10_000)
        }
        if io.isApproaching && loop.fault == nil && !recordOperator.cancelled() {
            io.freeze()
            throw StartupError("the followers did not reach the leaders' pose within 30 s; check the leader arms")
        }
        let fps = Double(robot.controlFrequencyHz)
        for episode in 0..<options.episodes {
            if let fault = loop.fault {
                result.exit = "\(Self.describe(fault, followers: followers, leaders: leaders)) before episode \(episode); stopping"
                result.exitCode = 1
                break
            }
            var task = options.task
            var episodeCameras = cameras
            if let hands {
                let start = io.samples.latest().map { Array($0.values[(3 * n)..<(4 * n)]) } ?? [Double](repeating: 0, count: n)
                let leaderStart = leaderPose(followerCommand: start, gripperJoints: gripperJoints, grippers: robot.grippers)
                let demo = demonstration?(episode, leaderStart, robot)
                    ?? TaskDemonstration(grippers: robot.grippers, seed: UInt64.random(in: 0...UInt64.max))
                task = demo.task
                if let scripted = demo as? TaskDemonstration {
                    do {
                        episodeCameras = try RecordingCamera.simulated(task: scripted.simTask, width: options.simCameraWidth,
                                                                       height: options.simCameraHeight)
                    } catch { throw StartupError("simulated cameras: \(error)") }
                }
                // Scripts start from the simulator's start pose: bring the leaders there first.
                let home = demo.leaderTargets(atSeconds: 0)
                let distance = zip(home, leaderStart).map { abs($0 - $1) }.max() ?? 0
                if distance > 1e-3 {
                    let seconds = max(0.5, distance / 1.0)
                    hands.play(HomingDemonstration(from: leaderStart, to: home, seconds: seconds))
                    usleep(UInt32((seconds + 0.2) * 1e6))
                }
                guard recordOperator.waitForStart(episode: episode, task: task, gesture: { false }) else { break }
                hands.play(demo)
            } else {
                let gesture = GripperGesture()
                guard recordOperator.waitForStart(episode: episode, task: task, gesture: {
                    guard let s = io.samples.latest() else { return false }
                    return gesture.update(gripperJoints.map { robot.grippers.normalizeLeader(
                        Self.leaderGripper(followerCommand: s.values[3 * n + $0], grippers: robot.grippers)) })
                }) else { break }
            }
            let layout = EpisodeLayout(jointCount: n, cameras: episodeCameras.map { CameraLayout(name: $0.name, width: $0.width, height: $0.height) },
                                       compress: options.compress, sim: hands != nil, task: task, fps: fps)
            let writer = try directory.beginEpisode(layout: layout, seconds: options.seconds)
            if episode == options.failEpisode { writer.failAfterFrames = options.failAtFrame }
            logger.info("episode \(episode): recording \(options.seconds) s — \(task)")
            let outcome = recordEpisode(writer: writer, loop: loop, io: io, fps: fps, cameras: episodeCameras)
            hands?.play(nil)
            switch outcome {
            case .failed(let message):
                writer.abort()
                // Full disk or similar: hold still, then stop; finished episodes are untouched.
                io.freeze()
                logger.error("\(message)")
                result.exit = "\(message); the arms held, then the loop stopped; \(result.episodes.count) finished episode(s) kept"
                result.exitCode = 1
                usleep(UInt32(options.holdSecondsAfterFailure * 1e6))
                return
            case .fault(let fault):
                writer.abort()
                io.freeze()
                result.exit = "\(Self.describe(fault, followers: followers, leaders: leaders)) during episode \(episode); the arms held, then the loop stopped; episode discarded"
                result.exitCode = 1
                logger.error("\(result.exit)")
                usleep(UInt32(options.holdSecondsAfterFailure * 1e6))
                return
            case .recorded(let summary, let frames):
                if !recordOperator.keep(episode: episode, frames: frames, achievedHz: summary.achievedHz, rateOK: summary.rateOK) {
                    writer.abort()
                    result.discarded += 1
                    logger.info("episode \(episode) discarded")
                    continue
                }
                let path: String
                do { path = try writer.finish(summary: summary) } catch {
                    io.freeze()
                    result.exit = "\(error.description); the arms held, then the loop stopped; \(result.episodes.count) finished episode(s) kept"
                    result.exitCode = 1
                    logger.error("\(result.exit)")
                    usleep(UInt32(options.holdSecondsAfterFailure * 1e6))
                    return
                }
                result.episodes.append(path)
                let rate = String(format: "%.1f Hz of %.0f", summary.achievedHz, fps)
                if !summary.rateOK {
                    result.slowEpisodes.append(path)
                    logger.warning("\(path): achieved \(rate) (below 90 %); flagged rate_ok = false")
                }
                logger.info("saved \(path): \(frames) frames, \(rate), \(summary.droppedFrames) dropped")
            }
            if recordOperator.stopRequested() { break }
        }
    }

    /// Names the bus and servo of a loop fault (leader faults carry bus index + 16, see TeleopArmsIO).
    static func describe(_ fault: CycleFault, followers: [ServoBusSession], leaders: [ServoBusSession]) -> String {
        var (b, id) = DynamixelArmsIO.decode(faultCode: fault.code)
        var sessions = followers
        if b >= 16 { b -= 16; sessions = leaders }
        guard b >= 0, b < sessions.count else { return "control loop fault: \(fault)" }
        let bus = sessions[b].config.name
        let servo = id.flatMap { id in sessions[b].servos.first { $0.config.id == id } }
            .map { " servo \($0.config.id) (\($0.config.joint))" } ?? ""
        switch fault.kind {
        case .deviceLost: return "bus \(bus) (\(sessions[b].path)) disappeared"
        case .timeout: return "bus \(bus)\(servo) stopped answering"
        case .deviceError: return "bus \(bus)\(servo) raised a hardware error alert"
        default: return "bus \(bus)\(servo): control loop fault \(fault)"
        }
    }

    enum EpisodeOutcome {
        case recorded(EpisodeSummary, frames: Int)
        case failed(String)
        case fault(CycleFault)
    }

    /// The recorder thread's work for one episode: one frame per control period from the newest state
    /// sample and the newest camera images. A period with no new state sample is a dropped frame.
    private func recordEpisode(writer: EpisodeWriter, loop: ControlLoop<TeleopArmsIO>, io: TeleopArmsIO, fps: Double,
                               cameras: [RecordingCamera]) -> EpisodeOutcome {
        let n = io.jointCount
        let step = UInt64(1e9 / fps)
        let total = Int((options.seconds * fps).rounded())
        var images = cameras.map { [UInt8](repeating: 0, count: $0.width * $0.height * 3) }
        var lastIndex: UInt64?
        var firstStamp: UInt64?
        var lastStamp: UInt64 = 0
        var frames = 0, dropped = 0
        let origin = MonotonicClock.nowNanos()
        var lastStatus = origin
        for k in 0..<total {
            let due = origin + UInt64(k) * step
            var now = MonotonicClock.nowNanos()
            if now < due { usleep(UInt32((due - now) / 1000)); now = MonotonicClock.nowNanos() }
            if let fault = loop.fault { return .fault(fault) }
            if now > due + step { dropped += 1; continue }  // this period passed while we were late
            guard let sample = io.samples.latest(), sample.index != lastIndex else { dropped += 1; continue }
            lastIndex = sample.index
            let qpos = Array(sample.values[0..<n])
            for c in cameras.indices {
                cameras[c].prepare?(qpos)
                let ok = images[c].withUnsafeMutableBytes { cameras[c].copyLatest($0) }
                if !ok { for i in images[c].indices { images[c][i] = 0 } }
            }
            let first = firstStamp ?? sample.timestampNanos
            firstStamp = first
            lastStamp = sample.timestampNanos
            let v = sample.values
            let frame = EpisodeFrame(timestampSeconds: Double(sample.timestampNanos - first) / 1e9,
                                     qpos: qpos, qvel: Array(v[n..<(2 * n)]), effort: Array(v[(2 * n)..<(3 * n)]),
                                     action: Array(v[(3 * n)..<(4 * n)]), images: images)
            do { try writer.append(frame) } catch { return .failed(error.description) }
            frames += 1
            if now - lastStatus > 500_000_000 || k == total - 1 {
                lastStatus = now
                let elapsed = Double(now - origin) / 1e9
                let hz = frames > 1 ? Double(frames - 1) / (Double(lastStamp - first) / 1e9) : 0
                recordOperator.status(String(format: "\r%5.1f s / %.1f s   %5.1f Hz   %d dropped", elapsed, options.seconds, hz, dropped))
            }
            if recordOperator.stopRequested() { break }
        }
        return .recorded(EpisodeSummary(frames: frames, firstNanos: firstStamp ?? lastStamp, lastNanos: lastStamp,
                                        droppedFrames: dropped, fps: fps), frames: frames)
    }

    /// Inverse of the teleoperation gripper map, to place simulated leaders where the followers are.
    static func leaderGripper(followerCommand q: Double, grippers g: GripperConstants) -> Double {
        let normalized = (q - g.followerClosed) / (g.followerOpen - g.followerClosed)
        return g.leaderClosed + normalized * (g.leaderOpen - g.leaderClosed)
    }

    private func leaderPose(followerCommand q: [Double], gripperJoints: [Int], grippers: GripperConstants) -> [Double] {
        var leader = q
        for j in gripperJoints where j < q.count { leader[j] = Self.leaderGripper(followerCommand: q[j], grippers: grippers) }
        return leader
    }
}

/// Start/stop gesture on a leader gripper: squeeze (normalized below 0.2) then release (above 0.6)
/// within 1.5 s. Fed the normalized leader grippers once per poll.
public final class GripperGesture {
    private var squeezedAt: UInt64?
    public let closed: Double
    public let released: Double
    public let windowNanos: UInt64

    public init(closed: Double = 0.2, released: Double = 0.6, windowSeconds: Double = 1.5) {
        self.closed = closed
        self.released = released
        windowNanos = UInt64(windowSeconds * 1e9)
    }

    /// True once per completed squeeze-and-release.
    public func update(_ normalized: [Double], nowNanos: UInt64 = MonotonicClock.nowNanos()) -> Bool {
        if normalized.contains(where: { $0 < closed }) {
            if squeezedAt == nil { squeezedAt = nowNanos }
            return false
        }
        guard let t = squeezedAt else { return false }
        if nowNanos - t > windowNanos { squeezedAt = nil; return false }
        if normalized.allSatisfy({ $0 > released }) {
            squeezedAt = nil
            return true
        }
        return false
    }
}
