// Simulated world API (issue #5), the ALOHA table:
//   SimWorld(grippers:)                       table + two ViperX 300 S arms facing each other across it
//   armFrames(_ side:, joints:) -> ArmFrames  world-frame FK from the 14-D follower vector (DESIGN §4)
//   armJoints(_ side:, joints:)               the 6 arm joints + gripper of one side from the 14-D vector
//   cameraView(named:joints:) -> SimCameraView?   cam_high, cam_low, cam_left_wrist, cam_right_wrist
//   SimWorld.cameraNames
// World frame: origin at the centre of the table top, z up, x from the left arm towards the right arm,
// y away from the operator. Layout as ACT's bimanual ViperX simulation: bases 0.469 m either side of
// the centre, on the table surface, each facing the other.
import Foundation

public struct SimWorld: Sendable {
    public static let cameraNames = ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"]

    public var grippers: GripperConstants
    public var leftBase: Pose
    public var rightBase: Pose
    /// Table top spans ±tableHalfExtent in x and y at z = 0.
    public var tableHalfExtent: SIMD2<Double>
    public var tableThickness: Double

    public init(grippers: GripperConstants, baseSeparation: Double = 0.938) {
        self.grippers = grippers
        leftBase = Pose(rotation: .identity, position: Vec3(-baseSeparation / 2, 0, 0))
        rightBase = Pose(rotation: .aboutZ(.pi), position: Vec3(baseSeparation / 2, 0, 0))
        tableHalfExtent = SIMD2(baseSeparation / 2 + 0.12, 0.45)
        tableThickness = 0.03
    }

    /// ALOHA's gripper constants (those of Configs/robots/aloha.yaml) for tests and tools without a config.
    public static let alohaGrippers = GripperConstants(leaderOpen: -0.8, leaderClosed: -1.65, followerOpen: 1.4910,
                                                       followerClosed: -0.6213, followerCurrentLimitMilliamps: 800)

    public func base(_ side: ArmSide) -> Pose { side == .left ? leftBase : rightBase }

    /// (arm joints, follower gripper joint) of one side; missing values read as 0.
    public func armJoints(_ side: ArmSide, joints: [Double]) -> (arm: ArmJoints, gripper: Double) {
        let start = side == .left ? 0 : 7
        let slice = (start..<start + 7).map { $0 < joints.count ? joints[$0] : 0 }
        return (ArmJoints(slice), slice[6])
    }

    public func armFrames(_ side: ArmSide, joints: [Double]) -> ArmFrames {
        let (arm, gripper) = armJoints(side, joints: joints)
        return armFrames(side, arm: arm, followerGripper: gripper)
    }

    public func armFrames(_ side: ArmSide, arm: ArmJoints, followerGripper: Double) -> ArmFrames {
        let local = ViperXKinematics.forward(arm, fingerOpening: ViperXKinematics.fingerOffset(
            followerGripper: followerGripper, grippers: grippers))
        let b = base(side)
        return ArmFrames(shoulder: b * local.shoulder, elbow: b * local.elbow, forearmRoll: b * local.forearmRoll,
                         wrist: b * local.wrist, gripper: b * local.gripper, pinch: b.apply(local.pinch),
                         leftFingertip: b.apply(local.leftFingertip), rightFingertip: b.apply(local.rightFingertip))
    }

    /// Fixed cameras as on ALOHA (cam_high above the table looking down from the operator's side,
    /// cam_low near the table front looking across it); wrist cameras ride on the gripper, above the
    /// fingers, looking along them.
    public func cameraView(named name: String, joints: [Double]) -> SimCameraView? {
        switch name {
        case "cam_high":
            return SimCameraView(position: Vec3(0, -0.32, 1.0), lookAt: Vec3(0, 0.04, 0), up: Vec3(0, 0, 1),
                                 verticalFOV: 58 * .pi / 180)
        case "cam_low":
            return SimCameraView(position: Vec3(0, -0.55, 0.16), lookAt: Vec3(0, 0.05, 0.02), up: Vec3(0, 0, 1),
                                 verticalFOV: 58 * .pi / 180)
        case "cam_left_wrist", "cam_right_wrist":
            let g = armFrames(name == "cam_left_wrist" ? .left : .right, joints: joints).gripper
            let position = g.apply(Vec3(0.04, 0, 0.05))
            let target = g.apply(Vec3(0.2, 0, -0.02))
            return SimCameraView(position: position, lookAt: target, up: g.rotation.z,
                                 verticalFOV: 70 * .pi / 180)
        default:
            return nil
        }
    }
}

/// A pinhole camera. Image x grows to the right, y downwards, pixel centres at +0.5.
public struct SimCameraView: Sendable, Equatable {
    public var position: Vec3
    /// Unit axes: right, down and forward (the optical axis).
    public var right: Vec3
    public var down: Vec3
    public var forward: Vec3
    public var verticalFOV: Double

    public init(position: Vec3, lookAt: Vec3, up: Vec3, verticalFOV: Double) {
        self.position = position
        forward = normalized(lookAt - position)
        var r = cross(forward, up)
        if length(r) < 1e-9 { r = cross(forward, Vec3(0, 1, 0)) }
        right = normalized(r)
        down = cross(forward, right)
        self.verticalFOV = verticalFOV
    }

    /// Focal length in pixels for an image `height` pixels tall.
    public func focal(height: Int) -> Double { Double(height) / 2 / tan(verticalFOV / 2) }

    /// Camera-frame coordinates (right, down, forward) of a world point.
    public func toCamera(_ p: Vec3) -> Vec3 {
        let d = p - position
        return Vec3(dot(d, right), dot(d, down), dot(d, forward))
    }

    /// Pixel coordinates and depth of a world point, or nil behind the camera.
    public func project(_ p: Vec3, width: Int, height: Int) -> (x: Double, y: Double, depth: Double)? {
        let c = toCamera(p)
        guard c.z > 1e-4 else { return nil }
        let f = focal(height: height)
        return (Double(width) / 2 + f * c.x / c.z, Double(height) / 2 + f * c.y / c.z, c.z)
    }
}
