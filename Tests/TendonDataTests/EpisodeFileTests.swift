import Foundation
import Testing
@testable import TendonData

/// A fresh directory under /tmp per test.
func temporaryDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "tendon-data-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hdf5/\(name)").path
}

/// Frames whose every value is a known function of (t, j) so a read-back can be checked exactly.
func syntheticFrame(_ t: Int, cameras: [CameraLayout]) -> EpisodeFrame {
    let n = 14
    return EpisodeFrame(timestampSeconds: Double(t) * 0.02,
                        qpos: (0..<n).map { 0.1 * Double(t) + Double($0) },
                        qvel: (0..<n).map { -Double(t) * Double($0) },
                        effort: (0..<n).map { 1000 + Double(t * n + $0) },
                        action: (0..<n).map { 0.1 * Double(t) + Double($0) + 0.5 },
                        images: cameras.map { c in
                            (0..<c.frameBytes).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ t &* 13) }
                        })
}

@Suite struct EpisodeFileTests {
    let cameras = [CameraLayout(name: "cam_high", width: 32, height: 24), CameraLayout(name: "cam_low", width: 16, height: 8)]

    @Test func rawRoundTrip() throws {
        let dir = try EpisodeDirectory(path: temporaryDirectory("raw"))
        let layout = EpisodeLayout(cameras: cameras, sim: true, task: "pick up the red block ✓", fps: 50)
        let writer = try dir.beginEpisode(layout: layout, seconds: 1, batchFrames: 7)
        for t in 0..<23 { try writer.append(syntheticFrame(t, cameras: cameras)) }
        #expect(!FileManager.default.fileExists(atPath: dir.finalPath(index: 0)))
        let path = try writer.finish(summary: EpisodeSummary(achievedHz: 49.5, droppedFrames: 2, rateOK: true))
        #expect(path == dir.finalPath(index: 0))
        #expect(dir.partialFiles().isEmpty)
        let episode = try Episode.read(path: path)
        #expect(episode.frameCount == 23)
        #expect(episode.jointCount == 14)
        #expect(episode.sim)
        #expect(episode.task == "pick up the red block ✓")
        #expect(episode.cameras == ["cam_high", "cam_low"])
        #expect(!episode.compressed)
        #expect(episode.attributes["achieved_hz"] == 49.5)
        #expect(episode.attributes["dropped_frames"] == 2)
        #expect(episode.attributes["rate_ok"] == 1)
        #expect(episode.attributes["fps"] == 50)
        for t in [0, 6, 7, 22] {
            let f = syntheticFrame(t, cameras: cameras)
            #expect(Array(episode.row(episode.qpos, frame: t)) == f.qpos)
            #expect(Array(episode.row(episode.qvel, frame: t)) == f.qvel)
            #expect(Array(episode.row(episode.effort, frame: t)) == f.effort)
            #expect(Array(episode.row(episode.action, frame: t)) == f.action)
            #expect(episode.timestamps?[t] == f.timestampSeconds)
            for (c, camera) in cameras.enumerated() {
                let image = try episode.image(camera: camera.name, frame: t)
                #expect(image.width == camera.width && image.height == camera.height)
                #expect(image.rgb == f.images[c])
            }
        }
        #expect(dir.nextIndex() == 1)
    }

    @Test func compressedRoundTrip() throws {
        let dir = try EpisodeDirectory(path: temporaryDirectory("jpeg"))
        let layout = EpisodeLayout(cameras: [cameras[0]], compress: true, jpegQuality: 95, sim: false, task: "t", fps: 50)
        let writer = try dir.beginEpisode(layout: layout, seconds: 1, batchFrames: 4)
        // Flat colours: JPEG reproduces them within a few levels, and their sizes differ per frame.
        func frame(_ t: Int) -> EpisodeFrame {
            var f = syntheticFrame(t, cameras: [])
            f.images = [(0..<(32 * 24)).flatMap { _ in [UInt8(t * 20), 100, UInt8(200 - t * 10)] }]
            return f
        }
        for t in 0..<10 { try writer.append(frame(t)) }
        _ = try writer.finish(summary: EpisodeSummary(achievedHz: 50, droppedFrames: 0, rateOK: true))
        let episode = try Episode.read(path: dir.finalPath(index: 0))
        #expect(episode.compressed)
        #expect(!episode.sim)
        #expect(episode.frameCount == 10)
        let lengths = try #require(episode.compressedLengths["cam_high"])
        #expect(lengths.count == 10 && lengths.allSatisfy { $0 > 100 })
        #expect(episode.imageShapes["cam_high"]?[1] == lengths.max())
        for t in 0..<10 {
            let image = try episode.image(camera: "cam_high", frame: t)
            #expect(image.width == 32 && image.height == 24)
            let expected = frame(t).images[0]
            let worst = zip(image.rgb, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
            #expect(worst <= 4, "frame \(t) differs by \(worst) levels")
        }
    }

    @Test func readsAlohaH5pyRawEpisode() throws {
        let episode = try Episode.read(path: fixture("h5py_raw.hdf5"))
        #expect(episode.sim)
        #expect(episode.task == nil)
        #expect(episode.frameCount == 20 && episode.jointCount == 14)
        #expect(episode.cameras == ["cam_high", "cam_left_wrist"])
        for t in [0, 5, 19] {
            for j in [0, 6, 13] {
                let k = t * 14 + j
                #expect(abs(episode.qpos[k] - (0.01 * Double(t) + Double(j))) < 1e-5)
                #expect(abs(episode.qvel[k] - (-0.5 * Double(t) + Double(j))) < 1e-5)
                #expect(episode.effort[k] == Double(100 + t * 14 + j))
                #expect(abs(episode.action[k] - (0.01 * Double(t) + Double(j) + 0.001)) < 1e-5)
            }
            let image = try episode.image(camera: "cam_left_wrist", frame: t)
            #expect(image.width == 32 && image.height == 24)
            for (y, x, c) in [(0, 0, 0), (3, 17, 2), (23, 31, 1)] {
                #expect(Int(image.rgb[(y * 32 + x) * 3 + c]) == (t * 7 + y * 3 + x * 5 + c * 11) % 256)
            }
        }
    }

    @Test func readsAlohaH5pyCompressedEpisode() throws {
        let episode = try Episode.read(path: fixture("h5py_compressed.hdf5"))
        #expect(!episode.sim)
        #expect(episode.compressed)
        #expect(episode.frameCount == 20)
        for (cameraIndex, camera) in ["cam_high", "cam_left_wrist"].enumerated() {
            for t in [0, 9, 19] {
                let image = try episode.image(camera: camera, frame: t)
                #expect(image.width == 32 && image.height == 24)
                let expected = [t * 10, 128, 255 - t * 10 - cameraIndex]
                for c in 0..<3 { #expect(abs(Int(image.rgb[(5 * 32 + 7) * 3 + c]) - expected[c]) <= 4) }
            }
        }
    }

    @Test func readsTendonFileCommittedForTheH5pyChecker() throws {
        // The same file Tools/reference/check_episode.py validates with h5py.
        let episode = try Episode.read(path: fixture("tendon_episode.hdf5"))
        #expect(episode.frameCount == 12)
        #expect(episode.task == "stack the blocks")
        let compressed = try Episode.read(path: fixture("tendon_episode_compressed.hdf5"))
        #expect(compressed.compressed && compressed.frameCount == 12)
        #expect(compressed.attributes["rate_ok"] == 0)
        #expect(try compressed.image(camera: "cam_high", frame: 3).width == 32)
    }

    @Test func achievedRateIsCheckedAgainstNinetyPercent() {
        // 151 frames over 3 s: 50 Hz.
        let ok = EpisodeSummary(frames: 151, firstNanos: 1_000, lastNanos: 1_000 + 3_000_000_000, droppedFrames: 0, fps: 50)
        #expect(abs(ok.achievedHz - 50) < 1e-9 && ok.rateOK)
        // 45 Hz is exactly 90 %: accepted; 44.7 Hz is not.
        #expect(EpisodeSummary(frames: 136, firstNanos: 0, lastNanos: 3_000_000_000, droppedFrames: 15, fps: 50).rateOK)
        let slow = EpisodeSummary(frames: 135, firstNanos: 0, lastNanos: 3_000_000_000, droppedFrames: 16, fps: 50)
        #expect(!slow.rateOK && slow.achievedHz < 45)
        #expect(!EpisodeSummary(frames: 1, firstNanos: 5, lastNanos: 5, droppedFrames: 0, fps: 50).rateOK)
    }

    @Test func episodeNumbersContinueAfterExistingFiles() throws {
        let path = temporaryDirectory("numbers")
        for name in ["episode_0.hdf5", "episode_3.hdf5", ".episode_4.hdf5.partial", "episode_x.hdf5", "notes.txt"] {
            FileManager.default.createFile(atPath: path + "/" + name, contents: Data())
        }
        let dir = try EpisodeDirectory(path: path)
        #expect(dir.finishedIndices() == [0, 3])
        #expect(dir.nextIndex() == 4)
        #expect(dir.partialFiles() == [path + "/.episode_4.hdf5.partial"])
    }

    @Test func abortLeavesNoEpisode() throws {
        let dir = try EpisodeDirectory(path: temporaryDirectory("abort"))
        let layout = EpisodeLayout(cameras: [], sim: true, task: "x", fps: 50)
        let writer = try dir.beginEpisode(layout: layout, seconds: 1)
        for t in 0..<15 { try writer.append(syntheticFrame(t, cameras: [])) }
        #expect(FileManager.default.fileExists(atPath: dir.temporaryPath(index: 0)))
        writer.abort()
        #expect(!FileManager.default.fileExists(atPath: dir.temporaryPath(index: 0)))
        #expect(dir.finishedIndices().isEmpty)
    }

    @Test func refusesAnEpisodeTheDiskCannotHold() throws {
        let dir = try EpisodeDirectory(path: temporaryDirectory("space"))
        let free = try #require(dir.freeBytes())
        // Big enough cameras that one hour cannot fit in what is free.
        let huge = EpisodeLayout(cameras: [CameraLayout(name: "c", width: 4096, height: 4096)], sim: true, task: "", fps: 50)
        let seconds = Double(free) / Double(huge.cameras[0].frameBytes * 50) + 10
        #expect(throws: EpisodeError.self) { try dir.beginEpisode(layout: huge, seconds: seconds) }
        #expect(dir.partialFiles().isEmpty)
    }

    @Test func badInputIsRejectedWithAClearMessage() throws {
        let dir = try EpisodeDirectory(path: temporaryDirectory("bad"))
        let writer = try dir.beginEpisode(layout: EpisodeLayout(cameras: cameras, sim: true, task: "", fps: 50), seconds: 1)
        var frame = syntheticFrame(0, cameras: cameras)
        frame.images[1].removeLast()
        do {
            try writer.append(frame)
            Issue.record("a short image was accepted")
        } catch {
            #expect(error.description.contains("cam_low"))
        }
        writer.abort()
        let notHDF5 = dir.path + "/episode_9.hdf5"
        FileManager.default.createFile(atPath: notHDF5, contents: Data("hello".utf8))
        #expect(throws: EpisodeError("\(notHDF5): not an HDF5 file")) { try Episode.read(path: notHDF5) }
    }
}

/// Regenerates Tests/Fixtures/hdf5/tendon_episode.hdf5 (checked by Tools/reference/check_episode.py):
/// `TENDON_REGENERATE_FIXTURES=1 swift test --filter writeCheckerFixture`.
@Test(.enabled(if: ProcessInfo.processInfo.environment["TENDON_REGENERATE_FIXTURES"] == "1"))
func writeCheckerFixture() throws {
    let path = temporaryDirectory("fixture")
    let dir = try EpisodeDirectory(path: path)
    let cameras = [CameraLayout(name: "cam_high", width: 32, height: 24)]
    let writer = try dir.beginEpisode(layout: EpisodeLayout(cameras: cameras, sim: true, task: "stack the blocks", fps: 50),
                                      seconds: 1, batchFrames: 5)
    for t in 0..<12 { try writer.append(syntheticFrame(t, cameras: cameras)) }
    let written = try writer.finish(summary: EpisodeSummary(achievedHz: 50, droppedFrames: 0, rateOK: true))
    let target = fixture("tendon_episode.hdf5")
    try? FileManager.default.removeItem(atPath: target)
    try FileManager.default.copyItem(atPath: written, toPath: target)

    let compressed = try dir.beginEpisode(layout: EpisodeLayout(cameras: cameras, compress: true, sim: false, task: "stack the blocks", fps: 50),
                                          seconds: 1, batchFrames: 5)
    for t in 0..<12 { try compressed.append(syntheticFrame(t, cameras: cameras)) }
    let writtenCompressed = try compressed.finish(summary: EpisodeSummary(achievedHz: 44, droppedFrames: 3, rateOK: false))
    let compressedTarget = fixture("tendon_episode_compressed.hdf5")
    try? FileManager.default.removeItem(atPath: compressedTarget)
    try FileManager.default.copyItem(atPath: writtenCompressed, toPath: compressedTarget)
}
