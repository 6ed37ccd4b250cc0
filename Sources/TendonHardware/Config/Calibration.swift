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

public struct CalibrationFile: Sendable {
    public static let schemaVersion = 1

    public var path: String
    public var robotID: String
    public var created: String
    public var updated: String
    /// Bus name → servos.
    public var buses: [String: [ServoCalibration]]

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
        try root.allowOnly(["schema_version", "robot_id", "created", "updated", "buses"])
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
        return CalibrationFile(path: root.file, robotID: try root.string("robot_id"),
                               created: try root.string("created"), updated: try root.string("updated"),
                               buses: buses)
    }

    /// Checks that every servo of the robot has a calibration; the message says which command fixes it.
    public func validate(against config: RobotConfig) throws(ConfigError) {
        guard robotID == config.robotID else {
            throw ConfigError(file: path, line: nil, key: "robot_id",
                              message: "calibration is for robot '\(robotID)', config \(config.file) is '\(config.robotID)'; run `tendon calibrate homing --robot \(config.file)`")
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
        return out
    }
}
