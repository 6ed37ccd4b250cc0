import Foundation
import Testing
import TendonHardware
import TendonData

/// The `tendon` executable built next to the test bundle (swift build --build-tests builds both).
let tendonExecutable: URL? = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("tendon")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return nil
}()

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Starts a process; `wait` collects its output.
final class Running: @unchecked Sendable {
    let process = Process()
    private let out = Pipe(), err = Pipe()
    private var outData = Data(), errData = Data()
    private let group = DispatchGroup()

    init(_ executable: URL, _ arguments: [String]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        process.standardOutput = out
        process.standardError = err
        try process.run()
        group.enter()
        DispatchQueue.global().async { self.outData = self.out.fileHandleForReading.readDataToEndOfFile(); self.group.leave() }
        group.enter()
        DispatchQueue.global().async { self.errData = self.err.fileHandleForReading.readDataToEndOfFile(); self.group.leave() }
    }

    func wait() -> ProcessResult {
        process.waitUntilExit()
        group.wait()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }
}

func waitForFile(_ path: String, seconds: Double) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if FileManager.default.fileExists(atPath: path) { return true }
        usleep(20_000)
    }
    return false
}

@Suite(.serialized, .enabled(if: tendonExecutable != nil, "the tendon executable is not built next to the tests"))
struct CommandLineTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-cli-\(UUID().uuidString)")

    @Test func simAndRunAsSeparateProcessesWithABusThatDisappears() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ports = directory.appendingPathComponent("ports.json").path
        let report = directory.appendingPathComponent("report.json").path
        let sim = try Running(tendonExecutable!, ["sim", "--robot", alohaConfigPath, "--ports-json", ports,
                                                  "--fault", "disappear:follower_right@3", "--duration", "20"])
        defer { sim.process.terminate() }
        #expect(waitForFile(ports, seconds: 10), "the simulator never wrote its ports file")
        let portsObject = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ports))) as? [String: Any]
        #expect((portsObject?["buses"] as? [String: String])?.count == 4)

        let started = Date()
        let run = try Running(tendonExecutable!, ["run", "--robot", alohaConfigPath, "--ports-json", ports,
                                                  "--policy", "sine", "--duration", "30", "--report", report])
        let result = run.wait()
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status != 0)
        // One line on stderr, naming the bus.
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("follower_right"))
        // The bus vanished ~3 s after the simulator started; the run ends well within 5 s of that.
        #expect(elapsed < 3 + 5, "run took \(elapsed) s")
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        #expect((saved?["exit"] as? String)?.contains("follower_right") == true)
        #expect((saved?["loop"] as? [String: Any])?["cycles"] as? Int ?? 0 > 0)
    }

    @Test func badArgumentsAndBadConfigsGiveOneLine() throws {
        let bad = try Running(tendonExecutable!, ["run", "--robot", alohaConfigPath, "--sim", "--policy", "dance"]).wait()
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("dance"))
        #expect(bad.stderr.split(separator: "\n").count == 1, "stderr: \(bad.stderr)")
        let help = try Running(tendonExecutable!, ["run", "--help"]).wait()
        #expect(help.status == 0)
        #expect(help.stdout.contains("--policy"))
        // On a robot, recording needs the configured cameras: a missing one is named before anything moves.
        let noCamera = try Running(tendonExecutable!, ["record", "--robot", alohaConfigPath, "--out", NSTemporaryDirectory(),
                                                       "--episodes", "1", "--seconds", "1", "--task", "t", "--yes"]).wait()
        #expect(noCamera.status == 2)
        #expect(noCamera.stderr.split(separator: "\n").count == 1)
        #expect(noCamera.stderr.contains("cam_high") && noCamera.stderr.contains("--no-cameras"))
        let missing = try Running(tendonExecutable!, ["run", "--robot", "/nonexistent.yaml", "--sim", "--duration", "1"]).wait()
        #expect(missing.status == 2)
        #expect(missing.stderr.split(separator: "\n").count == 1)
        #expect(missing.stderr.contains("/nonexistent.yaml"))
    }
}

@Suite(.serialized, .enabled(if: tendonExecutable != nil, "the tendon executable is not built next to the tests"))
struct RecordCommandLineTests {
    @Test func recordTwoSimulatedEpisodes() throws {
        let out = recordDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try Running(tendonExecutable!, ["record", "--robot", alohaConfigPath, "--sim", "--out", out, "--episodes", "2",
                                                     "--seconds", "3", "--task", "x", "--yes", "--miss-limit", "100", "--sim-camera-size", "64x48"]).wait()
        #expect(result.status == 0, "stderr: \(result.stderr)")
        for n in 0..<2 {
            let e = try Episode.read(path: out + "/episode_\(n).hdf5")
            #expect(e.frameCount >= 60 && e.frameCount <= 151, "\(e.frameCount) frames")
            #expect(largestSpread(e.qpos, joints: 14) > 0.3)
            for camera in e.cameras {
                let image = try e.image(camera: camera, frame: e.frameCount / 2)
                #expect(image.rgb.contains { $0 != 0 }, "camera \(camera) recorded a blank frame")
            }
        }
    }

    @Test func replayARecordedEpisode() throws {
        let out = recordDirectory("cli-replay")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let recorded = try Running(tendonExecutable!, ["record", "--robot", alohaConfigPath, "--sim", "--out", out, "--episodes", "1",
                                                       "--seconds", "2", "--task", "x", "--yes", "--miss-limit", "100", "--sim-camera-size", "64x48"]).wait()
        #expect(recorded.status == 0, "stderr: \(recorded.stderr)")
        let report = out + "/replay.json"
        let replayed = try Running(tendonExecutable!, ["replay", out + "/episode_0.hdf5", "--robot", alohaConfigPath, "--sim",
                                                       "--settle", "0.3", "--report", report]).wait()
        #expect(replayed.status == 0, "stderr: \(replayed.stderr)")
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        #expect((saved?["policy"] as? String)?.hasSuffix("episode_0.hdf5") == true)
        let missing = try Running(tendonExecutable!, ["replay", out + "/nope.hdf5", "--robot", alohaConfigPath, "--sim"]).wait()
        #expect(missing.status == 2 && missing.stderr.contains("nope.hdf5") && missing.stderr.split(separator: "\n").count == 1)
    }

    @Test func interactiveEnterStartsAndTheAnswerDiscards() throws {
        let out = recordDirectory("interactive")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let input = Pipe(), output = Pipe()
        let process = Process()
        process.executableURL = tendonExecutable!
        process.arguments = ["record", "--robot", alohaConfigPath, "--sim", "--out", out, "--episodes", "2", "--seconds", "0.5",
                             "--task", "x", "--miss-limit", "100", "--sim-camera-size", "64x48"]
        process.currentDirectoryURL = repositoryRoot
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let text = TextBox()
        output.fileHandleForReading.readabilityHandler = { text.append($0.availableData) }
        try process.run()
        // Answer each prompt when it appears, as an operator would.
        #expect(text.wait(for: "press Enter", count: 1, seconds: 30))
        input.fileHandleForWriting.write(Data("\n".utf8))        // start episode 0
        #expect(text.wait(for: "Keep it?", count: 1, seconds: 30))
        input.fileHandleForWriting.write(Data("n\n".utf8))       // discard it
        #expect(text.wait(for: "press Enter", count: 2, seconds: 30))
        input.fileHandleForWriting.write(Data("\n".utf8))        // start episode 1
        #expect(text.wait(for: "Keep it?", count: 2, seconds: 30))
        try input.fileHandleForWriting.close()                   // end of input: the default (keep)
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        #expect(process.terminationStatus == 0)
        let stdout = text.value
        #expect(stdout.contains("discarded") && stdout.contains("kept"), "stdout: \(stdout)")
        #expect(stdout.contains("recorded 1 episode(s)") && stdout.contains("1 discarded"), "stdout: \(stdout)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: out))?.sorted() == ["episode_0.hdf5"])
    }

    @Test func sigkillMidEpisodeLeavesNoHalfEpisode() throws {
        let out = recordDirectory("kill")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let running = try Running(tendonExecutable!, ["record", "--robot", alohaConfigPath, "--sim", "--out", out, "--episodes", "3",
                                                      "--seconds", "2", "--task", "x", "--yes", "--miss-limit", "100", "--sim-camera-size", "64x48"])
        #expect(waitForFile(out + "/episode_0.hdf5", seconds: 20))
        #expect(waitForFile(out + "/.episode_1.hdf5.partial", seconds: 10))
        usleep(500_000)  // well inside episode 1
        kill(running.process.processIdentifier, SIGKILL)
        _ = running.wait()
        #expect(!FileManager.default.fileExists(atPath: out + "/episode_1.hdf5"))
        #expect(try Episode.read(path: out + "/episode_0.hdf5").frameCount > 20)
        // The next session removes the leftover and continues the numbering after the finished file.
        #expect(EpisodeDirectoryProbe.next(out) == 1)
    }

    @Test func fileSizeLimitMidEpisodeIsOneClearLine() throws {
        let out = recordDirectory("fsize")
        defer { try? FileManager.default.removeItem(atPath: out) }
        // RLIMIT_FSIZE of 64 KiB: the first episode (~110 KB for 3 s without cameras) cannot be completed.
        let result = try Running(URL(fileURLWithPath: "/bin/bash"), ["-c", "ulimit -f 64; exec \"$0\" \"$@\"", tendonExecutable!.path,
                                                                     "record", "--robot", alohaConfigPath, "--sim", "--out", out,
                                                                     "--episodes", "2", "--seconds", "3", "--task", "x", "--yes", "--miss-limit", "100", "--sim-camera-size", "64x48"]).wait()
        #expect(result.status == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("the arms held"))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        #expect(names.isEmpty, "left: \(names)")
    }
}

enum EpisodeDirectoryProbe {
    static func next(_ path: String) -> Int? { (try? EpisodeDirectory(path: path))?.nextIndex() }
}

final class TextBox: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    func append(_ d: Data) { lock.lock(); text += String(decoding: d, as: UTF8.self); lock.unlock() }
    var value: String { lock.lock(); defer { lock.unlock() }; return text }
    func wait(for needle: String, count: Int, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if value.components(separatedBy: needle).count - 1 >= count { return true }
            usleep(20_000)
        }
        return false
    }
}
