import Foundation
import Testing
import TendonControl
import TendonData
import TendonHardware
@testable import TendonService

func recordDirectory(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-record-\(name)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Largest spread (max − min over the episode) of any joint in a [T, n] row-major array.
func largestSpread(_ values: [Double], joints: Int) -> Double {
    (0..<joints).map { j in
        let column = stride(from: j, to: values.count, by: joints).map { values[$0] }
        return (column.max() ?? 0) - (column.min() ?? 0)
    }.max() ?? 0
}

@Suite struct TeleoperationPieces {
    let g = SimWorld.alohaGrippers

    @Test func grippersMapThroughTheNormalizationConstants() {
        #expect(abs(TeleopArmsIO.followerCommand(leader: g.leaderOpen, isGripper: true, grippers: g) - g.followerOpen) < 1e-12)
        #expect(abs(TeleopArmsIO.followerCommand(leader: g.leaderClosed, isGripper: true, grippers: g) - g.followerClosed) < 1e-12)
        let mid = (g.leaderOpen + g.leaderClosed) / 2
        #expect(abs(TeleopArmsIO.followerCommand(leader: mid, isGripper: true, grippers: g) - (g.followerOpen + g.followerClosed) / 2) < 1e-12)
        #expect(TeleopArmsIO.followerCommand(leader: 0.37, isGripper: false, grippers: g) == 0.37)
        // The recorder's inverse (used to place simulated leaders) undoes it.
        let back = RecordRunner.leaderGripper(followerCommand: TeleopArmsIO.followerCommand(leader: -1.2, isGripper: true, grippers: g), grippers: g)
        #expect(abs(back - -1.2) < 1e-12)
    }

    @Test func squeezeAndReleaseIsOneGesture() {
        let gesture = GripperGesture()
        let s: UInt64 = 1_000_000_000
        #expect(!gesture.update([0.5, 0.5], nowNanos: 0))
        #expect(!gesture.update([0.1, 0.5], nowNanos: s / 10))   // squeezed
        #expect(!gesture.update([0.4, 0.5], nowNanos: s / 5))    // half released: not yet
        #expect(gesture.update([0.9, 0.8], nowNanos: s / 2))     // released in time
        #expect(!gesture.update([0.9, 0.8], nowNanos: s))        // only once
        #expect(!gesture.update([0.05, 0.8], nowNanos: 2 * s))
        #expect(!gesture.update([0.9, 0.8], nowNanos: 4 * s))    // too slow: no gesture
    }

    @Test func sampleRingKeepsWholeSamplesAndForgetsLappedOnes() {
        let ring = SampleRing(width: 3, capacity: 4)
        for i in 0..<6 {
            let v = [Double(i), Double(i) * 2, -Double(i)]
            v.withUnsafeBufferPointer { ring.publish(timestampNanos: UInt64(100 + i), values: $0) }
        }
        var out = [Double](repeating: 0, count: 3)
        #expect(out.withUnsafeMutableBufferPointer { ring.read(index: 1, into: $0) } == nil)   // lapped
        #expect(out.withUnsafeMutableBufferPointer { ring.read(index: 4, into: $0) } == 104)
        #expect(out == [4, 8, -4])
        let latest = ring.latest()
        #expect(latest?.index == 5 && latest?.timestampNanos == 105 && latest?.values == [5, 10, -5])
    }
}

@Test func alohaEpisodesWithoutTimestampsReplayAtTheirFrameRate() throws {
    let path = repositoryRoot.appendingPathComponent("Tests/Fixtures/hdf5/h5py_raw.hdf5").path
    let replay = try ReplayFile.episode(path: path, joints: 14)
    #expect(replay.seconds.count == 20)
    #expect(abs(replay.seconds[19] - 19.0 / 50) < 1e-12)
    #expect(abs(replay.positions[3][2] - (0.03 + 2 + 0.001)) < 1e-5)  // /action, not qpos
    #expect(throws: StartupError.self) { try ReplayFile.episode(path: path, joints: 12) }
}

@Suite(.serialized) struct RecordRunnerTests {
    func options(_ out: String, episodes: Int, seconds: Double) -> RecordOptions {
        var o = RecordOptions(robotPath: alohaConfigPath, ports: .simulator, outDirectory: out, episodes: episodes, seconds: seconds,
                              task: "ignored with --sim", lockMemory: false, holdSecondsAfterFailure: 0.2)
        o.simCameraWidth = 64
        o.simCameraHeight = 48
        // The test machine is shared with parallel suites and builds: do not take a starved simulator
        // thread for a silent servo (fault handling has its own tests).
        o.missLimit = 100
        return o
    }

    /// Mean absolute difference between two frames of a camera.
    func change(_ e: Episode, camera: String, _ a: Int, _ b: Int) throws -> Double {
        let x = try e.image(camera: camera, frame: a).rgb, y = try e.image(camera: camera, frame: b).rgb
        return Double(zip(x, y).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(x.count)
    }

    @Test func recordsTeleoperatedEpisodesOnTheSimulator() throws {
        let out = recordDirectory("sim")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = RecordRunner(options: options(out, episodes: 2, seconds: 2), logger: quietLogger(),
                                  recordOperator: ScriptedOperator()).run()
        #expect(result.exitCode == 0, "\(result.exit)")
        #expect(result.episodes == [out + "/episode_0.hdf5", out + "/episode_1.hdf5"])
        for path in result.episodes {
            let e = try Episode.read(path: path)
            #expect(e.sim)
            #expect(e.task?.hasPrefix("touch the ") == true, "task: \(e.task ?? "nil")")
            #expect(e.jointCount == 14)
            // 100 frames at 50 Hz for 2 s; a loaded machine drops some (they are counted and flagged).
            #expect(e.frameCount >= 40 && e.frameCount <= 101, "\(e.frameCount) frames for 2 s at 50 Hz")
            #expect(Int(e.attributes["dropped_frames"] ?? -1) + e.frameCount >= 99)
            // The demonstration moves the leaders; the followers follow.
            #expect(largestSpread(e.action, joints: 14) > 0.3)
            #expect(largestSpread(e.qpos, joints: 14) > 0.3)
            #expect(e.qvel.contains { abs($0) > 0.05 })
            #expect(e.effort.contains { $0 != 0 })
            // Followers follow the leader command: on the joint the demonstration moves most, the followers'
            // net displacement over the episode matches the command's (a lag, not a different motion).
            let first = 0, last = e.frameCount - 1
            let joint = (0..<14).max { abs(e.action[last * 14 + $0] - e.action[first * 14 + $0]) < abs(e.action[last * 14 + $1] - e.action[first * 14 + $1]) }!
            let commanded = e.action[last * 14 + joint] - e.action[first * 14 + joint]
            let followed = e.qpos[last * 14 + joint] - e.qpos[first * 14 + joint]
            #expect(abs(commanded) > 0.3)
            #expect(abs(followed - commanded) < 0.35 * abs(commanded), "joint \(joint): commanded \(commanded), followed \(followed)")
            let stamps = try #require(e.timestamps)
            #expect(stamps.first == 0 && zip(stamps, stamps.dropFirst()).allSatisfy { $0 < $1 })
            #expect((e.attributes["achieved_hz"] ?? 0) > 0 && e.attributes["rate_ok"] != nil)
            // The simulated cameras see the scene, and the arms move in it.
            #expect(e.cameras == SimWorld.cameraNames.sorted())
            for camera in e.cameras {
                let image = try e.image(camera: camera, frame: e.frameCount / 2)
                #expect(image.width == 64 && image.height == 48)
                #expect(Set(image.rgb).count > 4, "\(camera) is blank")
            }
            #expect(try change(e, camera: "cam_high", 0, e.frameCount - 1) > 0.5)
        }
    }

    @Test func compressedEpisodesHoldDecodableJPEG() throws {
        let out = recordDirectory("jpeg")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var o = options(out, episodes: 1, seconds: 1)
        o.compress = true
        let result = RecordRunner(options: o, logger: quietLogger(), recordOperator: ScriptedOperator()).run()
        #expect(result.exitCode == 0, "\(result.exit)")
        let e = try Episode.read(path: out + "/episode_0.hdf5")
        #expect(e.compressed && e.cameras.count == 4)
        for camera in e.cameras {
            let lengths = try #require(e.compressedLengths[camera])
            #expect(lengths.count == e.frameCount && lengths.allSatisfy { $0 > 0 })
            let image = try e.image(camera: camera, frame: e.frameCount - 1)
            #expect(image.width == 64 && image.height == 48 && Set(image.rgb).count > 4)
        }
    }

    @Test func aFullDiskStopsCleanlyAndKeepsFinishedEpisodes() throws {
        let out = recordDirectory("full")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var o = options(out, episodes: 3, seconds: 1)
        o.failAtFrame = 20
        o.failEpisode = 1
        let result = RecordRunner(options: o, logger: quietLogger(), recordOperator: ScriptedOperator()).run()
        #expect(result.exitCode == 1)
        #expect(result.exit.contains("no space left on device"), "\(result.exit)")
        #expect(result.exit.contains("1 finished episode(s) kept"))
        #expect(result.episodes == [out + "/episode_0.hdf5"])
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(names == ["episode_0.hdf5"], "left: \(names)")
        #expect(try Episode.read(path: out + "/episode_0.hdf5").frameCount > 30)
    }

    @Test func replayDrivesTheFollowersToTheRecordedPoses() throws {
        let out = recordDirectory("replay")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let recorded = RecordRunner(options: options(out, episodes: 1, seconds: 2.5), logger: quietLogger(),
                                    recordOperator: ScriptedOperator()).run()
        #expect(recorded.exitCode == 0, "\(recorded.exit)")
        let path = try #require(recorded.episodes.first)
        let episode = try Episode.read(path: path)
        let last = Array(episode.row(episode.action, frame: episode.frameCount - 1))
        #expect(largestSpread(episode.action, joints: 14) > 0.3)

        let fixture = try SimulatorFixture()
        var run = fixture.options(policy: .replay(path: path), duration: 30)
        run.durationSeconds = nil
        run.stopAfterReplaySeconds = 0.5
        let report = RobotRunner(options: run, logger: quietLogger()).run()
        #expect(report.exitCode == 0, "\(report.exit)")
        #expect(report.durationSeconds < 10)
        let reader = try SimulatedJointReader(robot: fixture.robot, calibration: fixture.calibration, simulator: fixture.sim)
        let reached = reader.read()
        for j in 0..<14 where j % 7 != 6 {
            #expect(abs(reached[j] - last[j]) < 0.03, "joint \(j): at \(reached[j]), recorded \(last[j])")
        }
    }
}
