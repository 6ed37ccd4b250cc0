// Simulated world API (issue #5), forward kinematics of one ViperX 300 S arm:
//   ViperXKinematics.forward(_ joints: ArmJoints, fingerOpening:) -> ArmFrames   (arm base frame)
//   ArmJoints                  the 6 arm joints (waist … wrist_rotate), radians, DESIGN §4 order
//   ArmFrames                  joint origins, gripper frame, pinch point and both fingertips
//   ViperXKinematics.fingerOffset(followerGripper:grippers:)   finger slide (m) from the gripper joint
//
// Geometry source: the ViperX 300 S MJCF in huggingface/lerobot `sim/MJCF/trossen_vx300s/vx300s.xml`
// (MuJoCo Menagerie's model, derived from Interbotix `vx300s.urdf.xacro`): shoulder_link at z 0.079,
// upper_arm_link +0.04805 (shoulder axis 0.12705 above the base), elbow +(0.05955, 0, 0.3) — the 0.3 m
// upper arm with its 0.06 m offset —, forearm_roll +0.2, wrist_angle +0.1 (forearm 0.3 m), wrist_rotate
// +0.069744, "pinch" site +0.1 past that; waist about z, shoulder/elbow/wrist_angle about y (positive
// tilts the link down/forward), forearm_roll/wrist_rotate about x. Fingers slide ±y, 0.021…0.057 m.
import Foundation

public struct ArmJoints: Sendable, Equatable {
    public var waist: Double
    public var shoulder: Double
    public var elbow: Double
    public var forearmRoll: Double
    public var wristAngle: Double
    public var wristRotate: Double

    public init(waist: Double = 0, shoulder: Double = 0, elbow: Double = 0, forearmRoll: Double = 0,
                wristAngle: Double = 0, wristRotate: Double = 0) {
        self.waist = waist
        self.shoulder = shoulder
        self.elbow = elbow
        self.forearmRoll = forearmRoll
        self.wristAngle = wristAngle
        self.wristRotate = wristRotate
    }

    /// The first six values of a 7-joint arm slice (the seventh is the gripper).
    public init<C: Collection>(_ values: C) where C.Element == Double {
        let v = Array(values.prefix(6)) + [Double](repeating: 0, count: max(0, 6 - values.count))
        self.init(waist: v[0], shoulder: v[1], elbow: v[2], forearmRoll: v[3], wristAngle: v[4], wristRotate: v[5])
    }

    public var array: [Double] { [waist, shoulder, elbow, forearmRoll, wristAngle, wristRotate] }
}

/// Frames of one arm, all in the arm's base frame (x forward, z up, origin on the mounting surface).
public struct ArmFrames: Sendable, Equatable {
    public var shoulder: Pose
    public var elbow: Pose
    public var forearmRoll: Pose
    public var wrist: Pose
    /// wrist_rotate frame (gripper_link): x points out of the gripper, y across the fingers.
    public var gripper: Pose
    /// Between the finger pads (the model's "pinch" site).
    public var pinch: Vec3
    public var leftFingertip: Vec3
    public var rightFingertip: Vec3
}

public enum ViperXKinematics {
    public static let shoulderLinkHeight = 0.079
    public static let shoulderAxisOffset = 0.04805
    public static let upperArmForward = 0.05955
    public static let upperArmUp = 0.3
    public static let forearmToRoll = 0.2
    public static let rollToWrist = 0.1
    public static let wristToGripper = 0.069744
    public static let gripperToPinch = 0.1
    public static let fingerMin = 0.021
    public static let fingerMax = 0.057

    /// Shoulder axis height above the base: 0.12705 m.
    public static var shoulderHeight: Double { shoulderLinkHeight + shoulderAxisOffset }

    public static func forward(_ q: ArmJoints, fingerOpening: Double = fingerMax) -> ArmFrames {
        let waist = Pose(rotation: .aboutZ(q.waist), position: Vec3(0, 0, shoulderLinkHeight))
        let shoulder = waist.translated(Vec3(0, 0, shoulderAxisOffset)).rotated(.aboutY(q.shoulder))
        let elbow = shoulder.translated(Vec3(upperArmForward, 0, upperArmUp)).rotated(.aboutY(q.elbow))
        let roll = elbow.translated(Vec3(forearmToRoll, 0, 0)).rotated(.aboutX(q.forearmRoll))
        let wrist = roll.translated(Vec3(rollToWrist, 0, 0)).rotated(.aboutY(q.wristAngle))
        let gripper = wrist.translated(Vec3(wristToGripper, 0, 0)).rotated(.aboutX(q.wristRotate))
        let d = min(max(fingerOpening, fingerMin), fingerMax)
        return ArmFrames(shoulder: shoulder, elbow: elbow, forearmRoll: roll, wrist: wrist, gripper: gripper,
                         pinch: gripper.apply(Vec3(gripperToPinch, 0, 0)),
                         leftFingertip: gripper.apply(Vec3(gripperToPinch, d, 0)),
                         rightFingertip: gripper.apply(Vec3(gripperToPinch, -d, 0)))
    }

    /// Finger slide for a follower gripper joint angle: linear from the config's closed (fingers at
    /// `fingerMin`) to open (`fingerMax`), clamped — ALOHA's own puppet-gripper normalization.
    public static func fingerOffset(followerGripper: Double, grippers: GripperConstants) -> Double {
        let t = (followerGripper - grippers.followerClosed) / (grippers.followerOpen - grippers.followerClosed)
        return fingerMin + min(max(t, 0), 1) * (fingerMax - fingerMin)
    }
}
