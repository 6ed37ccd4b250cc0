import Foundation

/// The robot description of `Configs/robots/*.yaml`: buses, servos, joint limits, rates and real-time
/// settings. Everything is validated at load time; errors carry file, line and key (`ConfigError`).
public struct RobotConfig: Sendable {
    public static let schemaVersion = 1

    public var file: String
    public var robotID: String
    public var robotTag: String
    public var controlFrequencyHz: Int
    public var servoRateHz: Int
    public var realtime: RealtimeSettings
    /// Absolute path of the calibration file (the YAML gives it relative to the config file).
    public var calibrationPath: String
    /// Logical joints of one arm, in action-vector order.
    public var joints: [JointLimits]
    public var grippers: GripperConstants
    /// Buses in file order.
    public var buses: [BusConfig]
    /// Cameras in file order (empty when the config has no `cameras:` section).
    public var cameras: [CameraConfig] = []

    public func camera(named name: String) -> CameraConfig? { cameras.first { $0.name == name } }

    public func bus(named name: String) -> BusConfig? { buses.first { $0.name == name } }
    public var followerBuses: [BusConfig] { orderedByArm(buses.filter { $0.role == .follower }) }
    public var leaderBuses: [BusConfig] { orderedByArm(buses.filter { $0.role == .leader }) }

    /// Left before right, so the 14-D vector is [left 7, right 7] (DESIGN §4).
    private func orderedByArm(_ list: [BusConfig]) -> [BusConfig] {
        list.sorted { ($0.arm == .left ? 0 : 1) < ($1.arm == .left ? 0 : 1) }
    }

    /// Servo rate steps per control step (the interpolation factor).
    public var servoStepsPerControlStep: Int { servoRateHz / controlFrequencyHz }
}

public struct RealtimeSettings: Sendable, Equatable {
    public var priority: Int
    public var cpu: Int
    public var lockMemory: Bool
}

public struct JointLimits: Sendable, Equatable {
    public var name: String
    public var min: Double
    public var max: Double
    public var maxVelocity: Double
    public var maxAcceleration: Double
}

public struct GripperConstants: Sendable, Equatable {
    public var leaderOpen: Double
    public var leaderClosed: Double
    public var followerOpen: Double
    public var followerClosed: Double
    public var followerCurrentLimitMilliamps: Double

    /// ALOHA's normalization: 0 closed … 1 open.
    public func normalizeLeader(_ joint: Double) -> Double {
        (joint - leaderClosed) / (leaderOpen - leaderClosed)
    }
    public func followerJoint(normalized: Double) -> Double {
        normalized * (followerOpen - followerClosed) + followerClosed
    }
}

public enum BusRole: String, Sendable, CaseIterable { case leader, follower }
public enum ArmSide: String, Sendable, CaseIterable { case left, right }

/// Operating modes are named in the config as in the e-manual, lower-case with underscores.
extension DynamixelOperatingMode {
    public var configName: String {
        switch self {
        case .current: "current"
        case .velocity: "velocity"
        case .position: "position"
        case .extendedPosition: "extended_position"
        case .currentBasedPosition: "current_based_position"
        case .pwm: "pwm"
        }
    }

    public init?(configName: String) {
        guard let mode = Self.allCases.first(where: { $0.configName == configName }) else { return nil }
        self = mode
    }
}

public struct BusConfig: Sendable, Equatable {
    public var name: String
    public var role: BusRole
    public var arm: ArmSide
    public var device: String
    public var baudRate: Int
    public var servos: [ServoConfig]

    /// The servo that carries each logical joint (shadows excluded), in joint order.
    public func primaryServo(forJoint joint: String) -> ServoConfig? {
        servos.first { $0.joint == joint && $0.shadowOf == nil }
    }
}

public struct ServoConfig: Sendable, Equatable {
    public var id: UInt8
    public var joint: String
    public var model: String
    public var mode: DynamixelOperatingMode
    /// A shadow servo doubles a joint (ALOHA's shoulder and elbow); it is commanded with its primary's joint.
    public var shadowOf: UInt8?
}

extension RobotConfig {
    /// Models whose control tables Tendon knows.
    public static var knownModels: Set<String> { Set(DynamixelModel.all.map(\.name)) }
    public static var supportedBaudRates: Set<Int> { Set(DynamixelBaudRate.table.map(\.bitsPerSecond)) }

    public static func load(path: String) throws(ConfigError) -> RobotConfig {
        try parse(ConfigNode.load(path: path))
    }

    public static func parse(_ root: ConfigNode) throws(ConfigError) -> RobotConfig {
        try root.allowOnly(["schema_version", "robot_id", "robot_tag", "control_frequency_hz", "servo_rate_hz",
                            "realtime", "calibration", "joints", "grippers", "buses", "cameras"])
        let version = try root.required("schema_version")
        guard try version.int() == schemaVersion else {
            throw version.error("unsupported schema version (this Tendon reads \(schemaVersion))")
        }
        let robotID = try root.string("robot_id")
        guard !robotID.isEmpty, robotID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw try root.required("robot_id").error("must be a non-empty name of letters, digits, '-' or '_'")
        }
        let control = try root.int("control_frequency_hz", in: 1...1000)
        let servoNode = try root.required("servo_rate_hz")
        let servo = try servoNode.int(in: 1...2000)
        guard servo % control == 0, servo >= control else {
            throw servoNode.error("\(servo) Hz must be a whole multiple of control_frequency_hz (\(control) Hz)")
        }

        let rt = try root.required("realtime")
        try rt.allowOnly(["priority", "cpu", "lock_memory"])
        let realtime = RealtimeSettings(priority: try rt.int("priority", in: 1...99),
                                        cpu: try rt.int("cpu", in: 0...1023),
                                        lockMemory: try rt.optional("lock_memory")?.bool() ?? true)

        let calibrationRelative = try root.string("calibration")
        let baseDir = URL(fileURLWithPath: root.file).deletingLastPathComponent()
        let calibrationPath = calibrationRelative.hasPrefix("/")
            ? calibrationRelative
            : baseDir.appendingPathComponent(calibrationRelative).standardizedFileURL.path

        let joints = try parseJoints(root.required("joints"))
        let grippers = try parseGrippers(root.required("grippers"))
        let buses = try parseBuses(root.required("buses"), joints: joints.map(\.name))

        let cameras = try root.optional("cameras").map { (n: ConfigNode) throws(ConfigError) in try parseCameras(n) } ?? []

        return RobotConfig(file: root.file, robotID: robotID,
                           robotTag: try root.optional("robot_tag")?.string() ?? robotID,
                           controlFrequencyHz: control, servoRateHz: servo, realtime: realtime,
                           calibrationPath: calibrationPath, joints: joints, grippers: grippers, buses: buses,
                           cameras: cameras)
    }

    private static func parseMode(_ node: ConfigNode) throws(ConfigError) -> DynamixelOperatingMode {
        let text = try node.string()
        guard let mode = DynamixelOperatingMode(configName: text) else {
            throw node.error("'\(text)' is not one of: \(DynamixelOperatingMode.allCases.map(\.configName).joined(separator: ", "))")
        }
        return mode
    }

    private static func parseJoints(_ node: ConfigNode) throws(ConfigError) -> [JointLimits] {
        var joints: [JointLimits] = []
        for item in try node.elements() {
            try item.allowOnly(["name", "min", "max", "max_velocity", "max_acceleration"])
            let name = try item.string("name")
            if joints.contains(where: { $0.name == name }) { throw item.error("joint '\(name)' is listed twice") }
            let lo = try item.double("min", in: -4 * .pi...4 * .pi)
            let hiNode = try item.required("max")
            let hi = try hiNode.double(in: -4 * .pi...4 * .pi)
            guard hi > lo else { throw hiNode.error("max (\(hi)) must be greater than min (\(lo))") }
            joints.append(JointLimits(name: name, min: lo, max: hi,
                                      maxVelocity: try item.double("max_velocity", in: 1e-3...20),
                                      maxAcceleration: try item.double("max_acceleration", in: 1e-3...500)))
        }
        guard !joints.isEmpty else { throw node.error("at least one joint is required") }
        return joints
    }

    private static func parseGrippers(_ node: ConfigNode) throws(ConfigError) -> GripperConstants {
        try node.allowOnly(["leader", "follower", "follower_current_limit_ma"])
        let leader = try node.required("leader")
        let follower = try node.required("follower")
        for side in [leader, follower] {
            try side.allowOnly(["open", "closed"])
            guard try side.double("open") != side.double("closed") else {
                throw side.error("open and closed must differ (they are the normalization range)")
            }
        }
        return GripperConstants(leaderOpen: try leader.double("open"), leaderClosed: try leader.double("closed"),
                                followerOpen: try follower.double("open"),
                                followerClosed: try follower.double("closed"),
                                followerCurrentLimitMilliamps: try node.double("follower_current_limit_ma",
                                                                               in: 1...10_000))
    }

    private static func parseBuses(_ node: ConfigNode, joints: [String]) throws(ConfigError) -> [BusConfig] {
        var buses: [BusConfig] = []
        for (name, busNode) in try node.entries() {
            try busNode.allowOnly(["role", "arm", "device", "baud_rate", "servos"])
            let baudNode = try busNode.required("baud_rate")
            let baud = try baudNode.int()
            guard supportedBaudRates.contains(baud) else {
                throw baudNode.error("\(baud) is not a Dynamixel baud rate (\(supportedBaudRates.sorted()))")
            }
            let servosNode = try busNode.required("servos")
            var servos: [ServoConfig] = []
            for item in try servosNode.elements() {
                try item.allowOnly(["id", "joint", "model", "mode", "shadow_of"])
                let idNode = try item.required("id")
                let id = UInt8(try idNode.int(in: 0...252))
                if servos.contains(where: { $0.id == id }) { throw idNode.error("id \(id) is used twice on bus \(name)") }
                let jointNode = try item.required("joint")
                let joint = try jointNode.string()
                guard joints.contains(joint) else {
                    throw jointNode.error("'\(joint)' is not a joint listed under 'joints' (\(joints.joined(separator: ", ")))")
                }
                let modelNode = try item.required("model")
                let model = try modelNode.string()
                guard knownModels.contains(model) else {
                    throw modelNode.error("unknown servo model '\(model)' (known: \(knownModels.sorted().joined(separator: ", ")))")
                }
                let shadow = try item.optional("shadow_of").map { (n: ConfigNode) throws(ConfigError) in UInt8(try n.int(in: 0...252)) }
                servos.append(ServoConfig(id: id, joint: joint, model: model,
                                          mode: try parseMode(item.required("mode")),
                                          shadowOf: shadow))
            }
            // Every joint needs exactly one primary servo; a shadow must double an existing primary of the same joint.
            for joint in joints {
                let primaries = servos.filter { $0.joint == joint && $0.shadowOf == nil }
                guard primaries.count == 1 else {
                    throw servosNode.error("bus \(name) needs exactly one servo for joint '\(joint)' (found \(primaries.count); doubles use shadow_of)")
                }
            }
            for servo in servos {
                if let primary = servo.shadowOf,
                   !servos.contains(where: { $0.id == primary && $0.shadowOf == nil && $0.joint == servo.joint }) {
                    throw servosNode.error("servo \(servo.id) on bus \(name) is a shadow of \(primary), which is not the primary servo of joint '\(servo.joint)'")
                }
            }
            buses.append(BusConfig(name: name, role: try busNode.required("role").choice(BusRole.self),
                                   arm: try busNode.required("arm").choice(ArmSide.self),
                                   device: try busNode.string("device"), baudRate: baud, servos: servos))
        }
        for role in BusRole.allCases {
            for arm in ArmSide.allCases where buses.filter({ $0.role == role && $0.arm == arm }).count > 1 {
                throw node.error("more than one \(role.rawValue) bus for the \(arm.rawValue) arm")
            }
        }
        guard !buses.isEmpty else { throw node.error("at least one bus is required") }
        return buses
    }
}
