import Foundation
import Testing
@testable import TendonHardware

private let world = SimWorld(grippers: SimWorld.alohaGrippers)

private func render(_ task: SimTask, _ joints: [Double], camera: String, width: Int = 320, height: Int = 240) -> CameraFrame {
    let renderer = SimRenderer(width: width, height: height)
    var bytes = [UInt8](repeating: 0, count: width * height * 3)
    let view = world.cameraView(named: camera, joints: joints)!
    bytes.withUnsafeMutableBytes { renderer.render(task: task, joints: joints, view: view, into: $0) }
    return CameraFrame(header: CameraFrameHeader(width: width, height: height, sequence: 0, timestampNanos: 0), bytes: bytes)
}

private func isColor(_ p: (r: UInt8, g: UInt8, b: UInt8), _ c: BlockColor) -> Bool {
    let (r, g, b) = (Int(p.r), Int(p.g), Int(p.b))
    switch c {
    case .red: return r > 120 && g < 60 && b < 60
    case .green: return g > 100 && r < 60 && b < 70
    case .blue: return b > 120 && r < 60 && g < 90
    }
}

private func count(_ frame: CameraFrame, _ c: BlockColor) -> Int {
    var n = 0
    for y in 0..<frame.height { for x in 0..<frame.width where isColor(frame.pixel(x: x, y: y), c) { n += 1 } }
    return n
}

@Suite struct SimRendererTests {
    /// The pixel where the pinhole model projects the top face's centre of each block shows that block's colour.
    @Test func blocksAppearWhereProjectionSays() throws {
        for seed in UInt64(1)...6 {
            let task = SimTask(world: world, seed: seed)
            let joints = ScriptedDemonstration.followerJoints(leader: ScriptedDemonstration.startPose(grippers: world.grippers),
                                                              grippers: world.grippers)
            for camera in ["cam_high", "cam_low"] {
                let frame = render(task, joints, camera: camera)
                let view = world.cameraView(named: camera, joints: joints)!
                for block in task.blocks {
                    let top = block.center + Vec3(0, 0, block.halfSize)
                    let front = block.center + Vec3(0, -block.halfSize, 0)
                    let p = try #require(view.project(camera == "cam_high" ? top : front, width: 320, height: 240))
                    let x = Int(p.x), y = Int(p.y) + (camera == "cam_high" ? 0 : 0)
                    #expect((0..<320).contains(x) && (0..<240).contains(y), "seed \(seed) \(camera) \(block.color) at \(p)")
                    guard (0..<320).contains(x), (0..<240).contains(y) else { continue }
                    #expect(isColor(frame.pixel(x: x, y: y), block.color),
                            "seed \(seed) \(camera) \(block.color) at (\(x),\(y)): \(frame.pixel(x: x, y: y))")
                }
                // And away from the blocks there is none of their colour.
                #expect(count(frame, .red) > 20 && count(frame, .red) < 320 * 240 / 10)
            }
        }
    }

    @Test func armsAreVisibleAndMoveTheWristCamera() {
        let task = SimTask(world: world, seed: 2)
        let start = ScriptedDemonstration.followerJoints(leader: ScriptedDemonstration.startPose(grippers: world.grippers),
                                                         grippers: world.grippers)
        let high = render(task, start, camera: "cam_high")
        // Arm colour (dark grey) appears in the top view, near the projected left gripper.
        let view = world.cameraView(named: "cam_high", joints: start)!
        let wrist = world.armFrames(.left, joints: start).wrist.position
        let p = view.project(wrist, width: 320, height: 240)!
        let px = high.pixel(x: Int(p.x), y: Int(p.y))
        #expect(Int(px.r) < 90 && Int(px.g) < 90 && Int(px.b) < 100, "\(px)")

        let demo = ScriptedDemonstration.touch(task: task)
        let touching = ScriptedDemonstration.followerJoints(leader: demo.leaderTargets(at: 3.3), grippers: world.grippers)
        let wristName = task.arm == .left ? "cam_left_wrist" : "cam_right_wrist"
        let before = render(task, start, camera: wristName)
        let after = render(task, touching, camera: wristName)
        #expect(before.bytes != after.bytes)
        // Touching, the target block fills a good part of the wrist view.
        #expect(count(after, task.target) > 320 * 240 / 50, "\(count(after, task.target))")
    }

    /// Writes every view (start pose and touching) as PNG for a person to look at, and measures.
    @Test func writesViewsAndMeasuresRenderTime() throws {
        let task = SimTask(world: world, seed: 2)
        let demo = ScriptedDemonstration.touch(task: task)
        let dir = testArtifactDirectory("sim-views")
        for (label, t) in [("start", 0.0), ("approach", 1.9), ("touch", 3.3)] {
            let joints = ScriptedDemonstration.followerJoints(leader: demo.leaderTargets(at: t), grippers: world.grippers)
            for camera in SimWorld.cameraNames {
                let frame = render(task, joints, camera: camera)
                try PNGWriter.write(path: "\(dir)/\(label)-\(camera).png", width: 320, height: 240, rgb: frame.bytes)
                #expect(Set(stride(from: 0, to: frame.bytes.count, by: 3 * 97).map { frame.bytes[$0] }).count > 3,
                        "\(camera) looks blank")
            }
        }
        let renderer = SimRenderer(width: 320, height: 240)
        var bytes = [UInt8](repeating: 0, count: 320 * 240 * 3)
        let joints = ScriptedDemonstration.followerJoints(leader: demo.leaderTargets(at: 3.3), grippers: world.grippers)
        let views = SimWorld.cameraNames.map { world.cameraView(named: $0, joints: joints)! }
        let start = MonotonicClock.nowNanos()
        let frames = 40
        bytes.withUnsafeMutableBytes { out in
            for i in 0..<frames { renderer.render(task: task, joints: joints, view: views[i % 4], into: out) }
        }
        let ms = Double(MonotonicClock.nowNanos() - start) / 1e6 / Double(frames)
        print("sim render 320x240: \(String(format: "%.2f", ms)) ms/frame (this build); artifacts in \(dir)")
        let large = SimRenderer(width: 640, height: 480)
        var big = [UInt8](repeating: 0, count: 640 * 480 * 3)
        let t0 = MonotonicClock.nowNanos()
        big.withUnsafeMutableBytes { out in
            for i in 0..<8 { large.render(task: task, joints: joints, view: views[i % 4], into: out) }
        }
        print("sim render 640x480: \(String(format: "%.2f", Double(MonotonicClock.nowNanos() - t0) / 8e6)) ms/frame")
    }
}
