// Simulated world API (issue #5), scripted demonstrations for `tendon record --sim` and tests:
//   ScriptedDemonstration.touch(task:color:arm:rateHz:) -> ScriptedDemonstration
//       approach the block (IK), descend, touch and hold 0.7 s with the gripper closing, retreat, go
//       home; the other arm stays at the start pose. color/arm default to the task's (override them to
//       make a wrong demonstration).
//   samples: [DemoSample]       timestamped 14-D LEADER joint targets at `rateHz` (time from 0 s)
//   leaderTargets(at:) -> [Double]   the sample in force at time t (clamped to the ends)
//   duration
//   ScriptedDemonstration.followerJoints(leader:grippers:)  what teleoperation makes the followers do
//       (arm joints copied, gripper mapped through ALOHA's normalization)
//   ScriptedDemonstration.startPose(grippers:)  arms at 0, grippers half open (SimulatedAloha's start)
// Play `samples` into the simulated leader servos (torque off) with `LeaderPuppet.apply`.
import Foundation

public struct DemoSample: Sendable, Equatable {
    public var time: Double
    public var leader: [Double]
}

public struct ScriptedDemonstration: Sendable {
    public var rateHz: Double
    public var samples: [DemoSample]
    /// The largest IK miss over the waypoints (m), for diagnostics.
    public var worstIKError: Double

    public var duration: Double { samples.last?.time ?? 0 }

    public static let holdSeconds = 0.7
    /// How far above the block centre the pinch point goes when touching, and when approaching.
    public static let touchHeight = 0.01
    public static let approachHeight = 0.12

    public static func startPose(grippers: GripperConstants) -> [Double] {
        let g = (grippers.leaderOpen + grippers.leaderClosed) / 2
        return [0, 0, 0, 0, 0, 0, g, 0, 0, 0, 0, 0, 0, g]
    }

    public static func followerJoints(leader: [Double], grippers: GripperConstants) -> [Double] {
        var out = leader
        for i in [6, 13] where i < out.count {
            out[i] = grippers.followerJoint(normalized: grippers.normalizeLeader(leader[i]))
        }
        return out
    }

    public static func touch(task: SimTask, color: BlockColor? = nil, arm: ArmSide? = nil,
                             rateHz: Double = 50) -> ScriptedDemonstration {
        let world = task.world
        let g = world.grippers
        let side = arm ?? task.arm
        let center = task.block(color ?? task.target)?.center ?? Vec3(0, 0, 0.02)
        let start = startPose(grippers: g)
        let offset = side == .left ? 0 : 7

        let above = ArmIK.solve(target: center + Vec3(0, 0, approachHeight), side: side, world: world)
        let touch = ArmIK.solve(target: center + Vec3(0, 0, touchHeight), side: side, world: world,
                                seed: above.joints)
        let open = g.leaderOpen
        let grasp = g.leaderClosed + 0.35 * (g.leaderOpen - g.leaderClosed)

        func pose(_ q: ArmJoints, gripper: Double) -> [Double] {
            var p = start
            for (i, v) in q.array.enumerated() { p[offset + i] = v }
            p[offset + 6] = gripper
            return p
        }
        let startArm = pose(ArmJoints(), gripper: start[offset + 6])
        // (arrival time, pose): the segments between them are minimum-jerk in joint space.
        let keys: [(Double, [Double])] = [
            (0.0, startArm),
            (0.4, startArm),
            (1.9, pose(above.joints, gripper: open)),
            (2.9, pose(touch.joints, gripper: open)),
            (3.2, pose(touch.joints, gripper: grasp)),
            (2.9 + holdSeconds, pose(touch.joints, gripper: grasp)),
            (2.9 + holdSeconds + 0.3, pose(touch.joints, gripper: open)),
            (2.9 + holdSeconds + 1.2, pose(above.joints, gripper: open)),
            (2.9 + holdSeconds + 2.4, startArm),
            (2.9 + holdSeconds + 2.8, startArm),
        ]
        let dt = 1 / rateHz
        let count = Int((keys.last!.0 / dt).rounded(.down)) + 1
        var samples: [DemoSample] = []
        samples.reserveCapacity(count)
        for n in 0..<count {
            let t = Double(n) * dt
            samples.append(DemoSample(time: t, leader: interpolate(keys, t)))
        }
        return ScriptedDemonstration(rateHz: rateHz, samples: samples,
                                     worstIKError: max(above.positionError, touch.positionError))
    }

    private static func interpolate(_ keys: [(Double, [Double])], _ t: Double) -> [Double] {
        guard let next = keys.firstIndex(where: { $0.0 > t }) else { return keys.last!.1 }
        guard next > 0 else { return keys[0].1 }
        let (t0, a) = keys[next - 1]
        let (t1, b) = keys[next]
        let u = (t - t0) / (t1 - t0)
        let s = u * u * u * (10 - 15 * u + 6 * u * u)
        return zip(a, b).map { $0 + ($1 - $0) * s }
    }

    public func leaderTargets(at t: Double) -> [Double] {
        guard let first = samples.first else { return [] }
        guard t > first.time else { return first.leader }
        let index = min(Int((t * rateHz).rounded(.down)), samples.count - 1)
        return samples[index].leader
    }
}
