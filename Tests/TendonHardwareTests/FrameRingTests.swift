import CAllocationCounter
import Foundation
import Synchronization
import Testing
@testable import TendonHardware

private final class DoneFlag: Sendable {
    let flag = Atomic<Bool>(false)
}

@Suite struct FrameRingTests {
    private static func frame(_ seq: UInt64, width: Int, height: Int) -> (CameraFrameHeader, [UInt8]) {
        let h = CameraFrameHeader(width: width, height: height, sequence: seq, timestampNanos: 1000 + seq,
                                  driverTimestampNanos: seq % 2 == 0 ? 7 * seq : nil)
        // Every byte derives from the sequence, so a torn copy (bytes from two frames) is detectable.
        let bytes = (0..<h.byteCount).map { UInt8(truncatingIfNeeded: Int(seq) &* 31 &+ $0 / 97) }
        return (h, bytes)
    }

    @Test func emptyRingAndSmallBuffer() {
        let ring = FrameRing(maxWidth: 4, maxHeight: 3)
        var out = [UInt8](repeating: 0, count: 36)
        #expect(out.withUnsafeMutableBytes { ring.copyLatest(into: $0) } == nil)
        let (h, bytes) = Self.frame(0, width: 4, height: 3)
        #expect(bytes.withUnsafeBytes { ring.publish(header: h, pixels: $0) })
        var small = [UInt8](repeating: 0, count: 35)
        #expect(small.withUnsafeMutableBytes { ring.copyLatest(into: $0) } == nil)
        #expect(out.withUnsafeMutableBytes { ring.copyLatest(into: $0) } == h)
        #expect(out == bytes)
        // Too large for the ring: refused, the previous frame stays.
        let (big, bigBytes) = Self.frame(1, width: 5, height: 3)
        #expect(!bigBytes.withUnsafeBytes { ring.publish(header: big, pixels: $0) })
        #expect(out.withUnsafeMutableBytes { ring.copyLatest(into: $0) }?.sequence == 0)
    }

    @Test func newestFrameWinsAndOddSizesRoundTrip() {
        let ring = FrameRing(maxWidth: 7, maxHeight: 5, slots: 3)
        for s in UInt64(0)..<10 {
            let (h, bytes) = Self.frame(s, width: 7 - Int(s % 3), height: 5)
            bytes.withUnsafeBytes { _ = ring.publish(header: h, pixels: $0) }
            var out = [UInt8](repeating: 0, count: 7 * 5 * 3)
            let got = out.withUnsafeMutableBytes { ring.copyLatest(into: $0) }
            #expect(got == h)
            #expect(Array(out.prefix(h.byteCount)) == bytes)
        }
        #expect(ring.publishedCount == 10)
    }

    /// Readers (the observation builder, possibly the real-time side) and the producer copy without
    /// allocating; so does YUYV conversion on the capture thread.
    @Test func copyPublishAndConvertDoNotAllocate() {
        let ring = FrameRing(maxWidth: 32, maxHeight: 24)
        let frame = Self.frame(1, width: 32, height: 24)
        let yuyv = UnsafeMutableRawBufferPointer.allocate(byteCount: 32 * 24 * 2, alignment: 16)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 32 * 24 * 3, alignment: 16)
        defer { yuyv.deallocate(); out.deallocate() }
        yuyv.initializeMemory(as: UInt8.self, repeating: 100)
        frame.1.withUnsafeBytes { src in
            _ = ring.publish(header: frame.0, pixels: src)
            _ = ring.copyLatest(into: out)
            let before = tendon_thread_allocation_count()
            var ok = 0
            for _ in 0..<100 {
                if ring.publish(header: frame.0, pixels: src) { ok += 1 }
                if ring.copyLatest(into: out) != nil { ok += 1 }
                if YUYVConverter.convert(yuyv: UnsafeRawBufferPointer(yuyv), width: 32, height: 24, into: out) { ok += 1 }
            }
            let allocations = tendon_thread_allocation_count() - before
            #expect(tendon_allocation_counter_active() != 0)
            #expect(allocations == 0, "\(allocations) allocations")
            #expect(ok == 300)
        }
    }

    /// One producer thread publishing as fast as it can, two reader threads copying concurrently: every
    /// copy is a whole frame (bytes match its header) and each reader's sequence never goes backwards.
    /// Plain threads, not tasks: busy readers on the 2-thread cooperative pool would starve the producer.
    @Test func concurrentHandOverNeverTears() {
        let width = 64, height = 48
        let ring = FrameRing(maxWidth: width, maxHeight: height, slots: 3)
        let total: UInt64 = 10_000
        let done = DoneFlag()
        let frames = (0..<16).map { Self.frame(UInt64($0), width: width, height: height).1 }
        let results = Mutex<[(reads: Int, bad: Int)]>([])
        let finished = DispatchGroup()
        for _ in 0..<2 {
            finished.enter()
            Thread {
                var out = [UInt8](repeating: 0, count: width * height * 3)
                var last: UInt64 = 0
                var reads = 0, bad = 0
                while !done.flag.load(ordering: .acquiring) || reads == 0 {
                    guard let h = out.withUnsafeMutableBytes({ ring.copyLatest(into: $0) }) else {
                        sched_yield()
                        continue
                    }
                    reads += 1
                    if out != frames[Int(h.sequence % 16)] || h.sequence < last
                        || h.timestampNanos != 1000 + h.sequence || h.width != width { bad += 1 }
                    last = h.sequence
                }
                results.withLock { $0.append((reads, bad)) }
                finished.leave()
            }.start()
        }
        finished.enter()
        Thread {
            for s in 0..<total {
                let h = CameraFrameHeader(width: width, height: height, sequence: s, timestampNanos: 1000 + s)
                frames[Int(s % 16)].withUnsafeBytes { _ = ring.publish(header: h, pixels: $0) }
                if s % 64 == 0 { sched_yield() }
            }
            done.flag.store(true, ordering: .releasing)
            finished.leave()
        }.start()
        #expect(finished.wait(timeout: .now() + 30) == .success)
        let r = results.withLock { $0 }
        #expect(r.count == 2)
        #expect(r.allSatisfy { $0.bad == 0 && $0.reads > 0 }, "\(r)")
        #expect(ring.publishedCount == total)
    }
}

@Suite struct SimCameraTests {
    @Test func unknownNameIsAClearError() {
        let task = SimTask(world: SimWorld(grippers: SimWorld.alohaGrippers), seed: 1)
        #expect(throws: CameraError.unknownCamera(name: "cam_top", known: SimWorld.cameraNames)) {
            _ = try SimCamera(name: "cam_top", task: task, joints: { [] })
        }
    }

    @Test func robotCamerasInConfigOrder() throws {
        var robot = try RobotConfig.load(path: alohaConfigPath)
        let task = SimTask(world: SimWorld(grippers: robot.grippers), seed: 1)
        let cams = try SimCamera.cameras(for: robot, task: task, width: 64, height: 48, joints: { [] })
        #expect(cams.map(\.name) == ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"])
        #expect(cams.allSatisfy { $0.width == 64 && $0.height == 48 && $0.fps == 30 })
        let header = cams[0].renderOnce()
        #expect(header.sequence == 0 && cams[0].latestFrame()?.header == header)
        robot.cameras[1].name = "cam_top"
        #expect(throws: CameraError.unknownCamera(name: "cam_top", known: SimWorld.cameraNames)) {
            _ = try SimCamera.cameras(for: robot, task: task, joints: { [] })
        }
    }

    @Test func capturesFramesOnItsThreadAndFollowsTheJoints() async throws {
        let world = SimWorld(grippers: SimWorld.alohaGrippers)
        let task = SimTask(world: world, seed: 4)
        let joints = Mutex<[Double]>(ScriptedDemonstration.startPose(grippers: world.grippers))
        let camera = try SimCamera(name: task.arm == .left ? "cam_left_wrist" : "cam_right_wrist", task: task,
                                   width: 160, height: 120, fps: 100, joints: { joints.withLock { $0 } })
        #expect(camera.latestFrame() == nil)
        try camera.start()
        #expect(throws: CameraError.alreadyStarted(name: camera.name)) { try camera.start() }
        var first: CameraFrame?
        for _ in 0..<400 where first == nil {
            first = camera.latestFrame()
            if first == nil { try await Task.sleep(nanoseconds: 5_000_000) }
        }
        let a = try #require(first)
        #expect(a.width == 160 && a.height == 120 && a.bytes.count == 160 * 120 * 3)
        let demo = ScriptedDemonstration.touch(task: task)
        joints.withLock { $0 = ScriptedDemonstration.followerJoints(leader: demo.leaderTargets(at: 3.3), grippers: world.grippers) }
        var moved: CameraFrame?
        for _ in 0..<400 where moved == nil {
            try await Task.sleep(nanoseconds: 5_000_000)
            if let f = camera.latestFrame(), f.header.sequence > a.header.sequence + 1, f.bytes != a.bytes { moved = f }
        }
        camera.stop()
        camera.stop()
        let b = try #require(moved)
        #expect(b.header.timestampNanos > a.header.timestampNanos)
        let stopped = camera.latestFrame()?.header.sequence
        try await Task.sleep(nanoseconds: 30_000_000)
        #expect(camera.latestFrame()?.header.sequence == stopped)
    }
}
