import Foundation
import Testing
@testable import TendonHardware

private let world = SimWorld(grippers: SimWorld.alohaGrippers)

private func near(_ a: Vec3, _ b: Vec3, _ tol: Double = 1e-9) -> Bool { length(a - b) <= tol }

@Suite struct ViperXKinematicsTests {
    /// Zero pose: upper arm straight up (0.3 m, 0.05955 m forward offset), forearm, wrist and gripper
    /// horizontal: x = 0.05955 + 0.2 + 0.1 + 0.069744 + 0.1, z = 0.079 + 0.04805 + 0.3.
    @Test func zeroPose() {
        let f = ViperXKinematics.forward(ArmJoints())
        #expect(near(f.shoulder.position, Vec3(0, 0, 0.12705)))
        #expect(near(f.elbow.position, Vec3(0.05955, 0, 0.42705)))
        #expect(near(f.wrist.position, Vec3(0.35955, 0, 0.42705)))
        #expect(near(f.pinch, Vec3(0.529294, 0, 0.42705)))
    }

    /// Shoulder at +90°: the upper arm lies forward (its 0.06 m offset now points down), the forearm
    /// hangs straight down from the elbow.
    @Test func shoulderNinetyDegrees() {
        let f = ViperXKinematics.forward(ArmJoints(shoulder: .pi / 2))
        #expect(near(f.elbow.position, Vec3(0.3, 0, 0.12705 - 0.05955)))
        #expect(near(f.wrist.position, Vec3(0.3, 0, 0.0675 - 0.3)))
        #expect(near(f.pinch, Vec3(0.3, 0, 0.0675 - 0.3 - 0.169744)))
        #expect(near(f.gripper.rotation.x, Vec3(0, 0, -1)))
    }

    @Test func waistTurnsTheArmAboutZ() {
        let f = ViperXKinematics.forward(ArmJoints(waist: .pi / 2))
        #expect(near(f.pinch, Vec3(0, 0.529294, 0.42705)))
    }

    /// Elbow −90° raises the forearm vertical; wrist_angle +90° then points the gripper forward again.
    @Test func elbowAndWrist() {
        let f = ViperXKinematics.forward(ArmJoints(elbow: -.pi / 2, wristAngle: .pi / 2))
        #expect(near(f.wrist.position, Vec3(0.05955, 0, 0.72705)))
        #expect(near(f.pinch, Vec3(0.05955 + 0.169744, 0, 0.72705)))
    }

    @Test func fingersFollowTheGripperJoint() {
        let g = SimWorld.alohaGrippers
        #expect(abs(ViperXKinematics.fingerOffset(followerGripper: g.followerOpen, grippers: g) - 0.057) < 1e-12)
        #expect(abs(ViperXKinematics.fingerOffset(followerGripper: g.followerClosed, grippers: g) - 0.021) < 1e-12)
        let open = world.armFrames(.left, joints: [0, 0, 0, 0, 0, 0, g.followerOpen] + [Double](repeating: 0, count: 7))
        #expect(abs(length(open.leftFingertip - open.rightFingertip) - 0.114) < 1e-9)
    }

    /// The two arms face each other: at zero pose both grippers point at the table centre.
    @Test func armsFaceEachOther() {
        let z = [Double](repeating: 0, count: 14)
        let l = world.armFrames(.left, joints: z), r = world.armFrames(.right, joints: z)
        #expect(near(l.pinch, Vec3(-0.469 + 0.529294, 0, 0.42705)))
        #expect(near(r.pinch, Vec3(0.469 - 0.529294, 0, 0.42705)))
    }
}

@Suite struct ArmIKTests {
    @Test func reachesBlockTargetsWithin5mm() {
        for seed in UInt64(1)...12 {
            let task = SimTask(world: world, seed: seed)
            for block in task.blocks {
                for side in ArmSide.allCases {
                    for h in [ScriptedDemonstration.touchHeight, ScriptedDemonstration.approachHeight] {
                        let target = block.center + Vec3(0, 0, h)
                        let s = ArmIK.solve(target: target, side: side, world: world)
                        let reached = world.armFrames(side, arm: s.joints, followerGripper: 0).pinch
                        #expect(length(reached - target) < 0.005, "seed \(seed) \(block.color) \(side) h \(h)")
                        for (j, range) in ArmIK.limits.enumerated() {
                            let v = [s.joints.waist, s.joints.shoulder, s.joints.elbow, s.joints.wristAngle][j]
                            #expect(range.contains(v))
                        }
                    }
                }
            }
        }
    }

    @Test func reportsAnUnreachableTarget() {
        let s = ArmIK.solve(target: Vec3(0.9, 0.5, 0.2), side: .left, world: world)
        #expect(s.positionError > 0.1)
    }
}

@Suite struct SimTaskTests {
    @Test func seededScenesAreReproducibleAndSeparated() {
        let a = SimTask(world: world, seed: 7), b = SimTask(world: world, seed: 7), c = SimTask(world: world, seed: 8)
        #expect(a.blocks == b.blocks && a.target == b.target && a.arm == b.arm)
        #expect(a.blocks != c.blocks)
        for seed in UInt64(0)..<50 {
            let t = SimTask(world: world, seed: seed)
            #expect(Set(t.blocks.map(\.color)) == Set(BlockColor.allCases))
            for i in 0..<3 { for j in (i + 1)..<3 {
                #expect(length(t.blocks[i].center - t.blocks[j].center) >= SimTask.minimumSeparation)
            } }
        }
        #expect(a.instruction == "touch the \(a.target.rawValue) block with the \(a.arm.rawValue) gripper")
    }

    /// Plays a demonstration through a first-order follower (the simulated servos' 50 ms response).
    private func run(_ demo: ScriptedDemonstration, on task: SimTask) -> (Bool, Double) {
        var t = task
        let g = world.grippers
        var follower = ScriptedDemonstration.followerJoints(leader: demo.samples[0].leader, grippers: g)
        let alpha = 1 - exp(-(1 / demo.rateHz) / 0.05)
        var closest = Double.infinity
        var ok = false
        for s in demo.samples {
            let target = ScriptedDemonstration.followerJoints(leader: s.leader, grippers: g)
            for i in 0..<14 { follower[i] += alpha * (target[i] - follower[i]) }
            closest = min(closest, t.distance(jointPositions: follower))
            ok = t.update(jointPositions: follower, time: s.time)
        }
        return (ok, closest)
    }

    @Test func scriptedDemonstrationSucceeds() {
        for seed in UInt64(1)...10 {
            let task = SimTask(world: world, seed: seed)
            let demo = ScriptedDemonstration.touch(task: task)
            #expect(demo.worstIKError < 0.005)
            #expect(demo.samples.allSatisfy { $0.leader.count == 14 })
            let (ok, closest) = run(demo, on: task)
            #expect(ok, "seed \(seed): closest \(closest) m")
        }
    }

    @Test func wrongBlockOrWrongArmFails() {
        for seed in UInt64(1)...10 {
            let task = SimTask(world: world, seed: seed)
            for other in BlockColor.allCases where other != task.target {
                #expect(!run(ScriptedDemonstration.touch(task: task, color: other), on: task).0, "seed \(seed) \(other)")
            }
            let otherArm: ArmSide = task.arm == .left ? .right : .left
            #expect(!run(ScriptedDemonstration.touch(task: task, arm: otherArm), on: task).0, "seed \(seed) arm")
        }
    }

    /// The hold must last 0.5 s without leaving the radius.
    @Test func successNeedsAnUnbrokenHold() {
        let task0 = SimTask(world: world, seed: 3)
        let demo = ScriptedDemonstration.touch(task: task0)
        let touchPose = ScriptedDemonstration.followerJoints(leader: demo.leaderTargets(at: 3.3), grippers: world.grippers)
        let away = [Double](repeating: 0, count: 14)
        var task = task0
        #expect(task.distance(jointPositions: touchPose) < SimTask.successRadius)
        let steps: [([Double], Double, Bool)] = [(touchPose, 0, false), (touchPose, 0.4, false), (away, 0.45, false),
                                                 (touchPose, 0.5, false), (touchPose, 0.99, false),
                                                 (touchPose, 1.0, true), (away, 1.1, true)]  // latched
        for (q, t, expected) in steps {
            let result = task.update(jointPositions: q, time: t)
            #expect(result == expected, "t = \(t)")
        }
    }

    @Test func demonstrationStartsAndEndsAtTheStartPose() {
        let task = SimTask(world: world, seed: 5)
        let demo = ScriptedDemonstration.touch(task: task, rateHz: 50)
        let start = ScriptedDemonstration.startPose(grippers: world.grippers)
        #expect(demo.samples.first?.leader == start)
        #expect(demo.samples.last?.leader == start)
        #expect(abs(demo.samples[1].time - 0.02) < 1e-12)
        // The idle arm never moves.
        let idle = task.arm == .left ? 7..<14 : 0..<7
        #expect(demo.samples.allSatisfy { Array($0.leader[idle]) == Array(start[idle]) })
    }
}
