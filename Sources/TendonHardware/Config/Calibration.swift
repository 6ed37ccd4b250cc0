import Foundation

/// Per-servo calibration (`Calibration/<robot-id>.yaml`): how encoder ticks map to joint radians and the
/// range of motion the technician recorded. Filled by `tendon calibrate` (homing, ranges); the runtime
/// refuses to move arms whose calibration is missing or invalid.
///
/// radians = direction · (ticks − 2048 − homing_offset) · 2π / 4096
public struct ServoCalibration: Sendable, Equatable {
    public static let ticksPerRevolution = 4096.0
    public static let centerTick = 2048.0

    public var id: UInt8
    public var homingOffset: Int
    public var direction: Int
    public var rangeMin: Int
    public var rangeMax: Int

    public init(id: UInt8, homingOffset: Int, direction: Int, rangeMin: Int, rangeMax: Int) {
        self.id = id
        self.homingOffset = homingOffset
        self.direction = direction
        self.rangeMin = rangeMin
        self.rangeMax = rangeMax
    }

    @inline(__always)
    public func radians(ticks: Int32) -> Double {
        Double(direction) * (Double(ticks) - Self.centerTick - Double(homingOffset)) * (2 * .pi / Self.ticksPerRevolution)
    }

    /// Nearest tick for a joint angle (rounded, not truncated, so round trips are exact at tick centres).
    @inline(__always)
    public func ticks(radians: Double) -> Int32 {
        let t = Self.centerTick + Double(homingOffset) + Double(direction) * radians * (Self.ticksPerRevolution / (2 * .pi))
        return Int32(t.rounded())
    }

    /// The recorded range of motion in joint radians (ordered low…high whatever the direction).
    public var radianRange: ClosedRange<Double> {
        let a = radians(ticks: Int32(rangeMin)), b = radians(ticks: Int32(rangeMax))
        return Swift.min(a, b)...Swift.max(a, b)
    }
}

/// Open and closed gripper endpoints in joint radians, measured by `tendon calibrate gripper` (the ALOHA
/// normalization constants of one arm's gripper).
public struct GripperCalibration: Sendable, Equatable {
    public var open: Double
    public var closed: Double
    public init(open: Double, closed: Double) {
        self.open = open
        self.closed = closed
    }
}

public struct CalibrationFile: Sendable {
    public static let schemaVersion = 1

    public var path: String
    public var robotID: String
    public var created: String
    public var updated: String
    /// Bus name → servos.
    public var buses: [String: [ServoCalibration]]
    /// Bus name → measured gripper endpoints. Optional section (older files have none); where absent the
    /// robot config's `grippers:` constants stay in force.
    public var grippers: [String: GripperCalibration] = [:]

    public init(path: String, robotID: String, created: String, updated: String,
                buses: [String: [ServoCalibration]], grippers: [String: GripperCalibration] = [:]) {
        self.path = path
        self.robotID = robotID
        self.created = created
        self.updated = updated
        self.buses = buses
        self.grippers = grippers
    }

    public func servo(bus: String, id: UInt8) -> ServoCalibration? {
        buses[bus]?.first { $0.id == id }
    }

    public static func load(path: String) throws(ConfigError) -> CalibrationFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError(file: path, line: nil, key: "",
                              message: "calibration file is missing; run `tendon calibrate homing` and `tendon calibrate ranges` for this robot")
        }
        return try parse(ConfigNode.load(path: path))
    }

    public static func parse(_ root: ConfigNode) throws(ConfigError) -> CalibrationFile {
        try root.allowOnly(["schema_version", "robot_id", "created", "updated", "buses", "grippers"])
        let version = try root.required("schema_version")
        guard try version.int() == schemaVersion else {
            throw version.error("unsupported calibration schema version (this Tendon reads \(schemaVersion))")
        }
        var buses: [String: [ServoCalibration]] = [:]
        for (bus, list) in try root.required("buses").entries() {
            var servos: [ServoCalibration] = []
            for item in try list.elements() {
                try item.allowOnly(["id", "homing_offset", "direction", "range_min", "range_max"])
                let idNode = try item.required("id")
                let id = UInt8(try idNode.int(in: 0...252))
                if servos.contains(where: { $0.id == id }) { throw idNode.error("servo \(id) is calibrated twice") }
                let dirNode = try item.required("direction")
                let direction = try dirNode.int()
                guard direction == 1 || direction == -1 else { throw dirNode.error("direction must be 1 or -1") }
                let lo = try item.int("range_min", in: 0...4095)
                let hiNode = try item.required("range_max")
                let hi = try hiNode.int(in: 0...4095)
                guard hi - lo >= 16 else {
                    throw hiNode.error("range \(lo)...\(hi) is empty or implausible; run `tendon calibrate ranges`")
                }
                servos.append(ServoCalibration(id: id, homingOffset: try item.int("homing_offset", in: -2048...2048),
                                               direction: direction, rangeMin: lo, rangeMax: hi))
            }
            buses[bus] = servos
        }
        var grippers: [String: GripperCalibration] = [:]
        if let section = try root.optional("grippers") {
            for (bus, node) in try section.entries() {
                try node.allowOnly(["open", "closed"])
                let open = try node.double("open", in: -4 * .pi...4 * .pi)
                let closedNode = try node.required("closed")
                let closed = try closedNode.double(in: -4 * .pi...4 * .pi)
                guard open != closed else {
                    throw closedNode.error("open and closed must differ (they are the normalization range); run `tendon calibrate gripper`")
                }
                grippers[bus] = GripperCalibration(open: open, closed: closed)
            }
        }
        return CalibrationFile(path: root.file, robotID: try root.string("robot_id"),
                               created: try root.string("created"), updated: try root.string("updated"),
                               buses: buses, grippers: grippers)
    }

    /// The gripper normalization constants the runtime uses: per role, the mean of the calibrated arms of
    /// that role; the config's constants where no arm of the role was calibrated.
    public func gripperConstants(robot: RobotConfig) -> GripperConstants {
        var result = robot.grippers
        func mean(_ role: BusRole) -> GripperCalibration? {
            let found = robot.buses.filter { $0.role == role }.compactMap { grippers[$0.name] }
            guard !found.isEmpty else { return nil }
            let n = Double(found.count)
            return GripperCalibration(open: found.map(\.open).reduce(0, +) / n,
                                      closed: found.map(\.closed).reduce(0, +) / n)
        }
        if let leader = mean(.leader) {
            result.leaderOpen = leader.open
            result.leaderClosed = leader.closed
        }
        if let follower = mean(.follower) {
            result.followerOpen = follower.open
            result.followerClosed = follower.closed
        }
        return result
    }

    /// Checks that every servo of the robot has a calibration; the message says which command fixes it.
    public func validate(against config: RobotConfig) throws(ConfigError) {
        guard robotID == config.robotID else {
            throw ConfigError(file: path, line: nil, key: "robot_id",
                              message: "calibration is for robot '\(robotID)', config \(config.file) is '\(config.robotID)'; run `tendon calibrate homing --robot \(config.file)`")
        }
        for bus in grippers.keys.sorted() where config.bus(named: bus) == nil {
            throw ConfigError(file: path, line: nil, key: "grippers.\(bus)",
                              message: "bus '\(bus)' is not in \(config.file); run `tendon calibrate gripper --robot \(config.file)`")
        }
        for bus in config.buses {
            for servo in bus.servos where self.servo(bus: bus.name, id: servo.id) == nil {
                throw ConfigError(file: path, line: nil, key: "buses.\(bus.name)",
                                  message: "servo \(servo.id) (\(servo.joint)) has no calibration; run `tendon calibrate homing --robot \(config.file)`")
            }
        }
    }

    /// YAML text in the file's schema (written by `tendon calibrate`).
    public func yaml() -> String {
        var out = "# Tendon calibration: radians = direction * (ticks - 2048 - homing_offset) * 2*pi/4096\n"
        out += "schema_version: \(Self.schemaVersion)\nrobot_id: \(robotID)\ncreated: \(created)\nupdated: \(updated)\nbuses:\n"
        for bus in buses.keys.sorted() {
            out += "  \(bus):\n"
            for s in buses[bus] ?? [] {
                out += "    - {id: \(s.id), homing_offset: \(s.homingOffset), direction: \(s.direction), range_min: \(s.rangeMin), range_max: \(s.rangeMax)}\n"
            }
        }
        if !grippers.isEmpty {
            out += "grippers:                # joint radians, measured by `tendon calibrate gripper`\n"
            for bus in grippers.keys.sorted() {
                guard let g = grippers[bus] else { continue }
                out += "  \(bus): {open: \(g.open), closed: \(g.closed)}\n"
            }
        }
        return out
    }
}
