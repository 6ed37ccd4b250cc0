import Foundation
import TendonHardware

/// `tendon calibrate homing`: with the arms held at the reference pose, each servo's offset is chosen so
/// its present position reads as the reference angle. Shadow servos are mounted mirrored: direction −1
/// and an offset of their own. Ranges already recorded are kept (they are raw ticks).
public enum Homing {
    /// The offset that makes `ticks` read `referenceRadians`; nil when that needs more than half a turn
    /// (the servo horn is mounted far from the encoder centre: the file's single-turn frame cannot hold it).
    public static func offset(ticks: Int32, referenceRadians: Double, direction: Int) -> Int? {
        let reference = Double(direction) * referenceRadians * ServoCalibration.ticksPerRevolution / (2 * .pi)
        let offset = Int((Double(ticks) - ServoCalibration.centerTick - reference).rounded())
        return (-2048...2048).contains(offset) ? offset : nil
    }

    public struct Entry: Sendable, Equatable {
        public var bus: String
        public var servo: ServoConfig
        public var ticks: Int32
        public var calibration: ServoCalibration
    }

    /// Pure step: the new entries for the servos of `buses` posed at `ticks` (per bus, config order).
    public static func entries(robot: RobotConfig, buses: [BusConfig], ticks: [[Int32]],
                               existing: CalibrationFile) throws(CalibrationError) -> [Entry] {
        var result: [Entry] = []
        var problems: [String] = []
        for (config, row) in zip(buses, ticks) {
            for (servo, t) in zip(config.servos, row) {
                let old = existing.servo(bus: config.name, id: servo.id)
                let direction = servo.shadowOf != nil ? -1 : (old?.direction ?? 1)
                let reference = ReferencePose.angle(joint: servo.joint, role: config.role, robot: robot)
                guard let offset = offset(ticks: t, referenceRadians: reference, direction: direction) else {
                    problems.append("\(config.label(servo)) reads \(t) ticks at the reference pose, more than half a turn from where \(String(format: "%.3f", reference)) rad should be; check the pose and the horn")
                    continue
                }
                result.append(Entry(bus: config.name, servo: servo, ticks: t,
                                    calibration: ServoCalibration(id: servo.id, homingOffset: offset, direction: direction,
                                                                  rangeMin: old?.rangeMin ?? 0, rangeMax: old?.rangeMax ?? 4095)))
            }
        }
        if !problems.isEmpty { throw CalibrationError(problems.joined(separator: "; ")) }
        return result
    }

    /// Torque off, ask for the pose, read, compute, store. Returns the entries written.
    @discardableResult
    public static func run(ports: CalibrationPorts, buses: [BusConfig], console: CalibrationConsole,
                           now: Date = Date()) throws(CalibrationError) -> [Entry] {
        let robot = ports.robot
        var file = try CalibrationStore.load(robot: robot, now: now)
        let opened = try OpenedBuses(ports: ports, buses: buses)
        defer { opened.close() }
        try opened.torqueOffAll()
        console.line("Torque is off on \(buses.map(\.name).joined(separator: ", ")): support the follower arms.")
        try console.waitForEnter(ReferencePose.instruction, key: "homing-pose")
        let ticks = try opened.readTicks()
        let entries = try entries(robot: robot, buses: buses, ticks: ticks, existing: file)
        var rows = [["bus", "id", "joint", "ticks", "homing_offset", "direction", "range"]]
        var rangesToRecord = false
        for e in entries {
            CalibrationStore.set(e.calibration, bus: e.bus, in: &file)
            let c = e.calibration
            let home = Int(c.ticks(radians: ReferencePose.angle(joint: e.servo.joint,
                                                                 role: robot.bus(named: e.bus)?.role ?? .follower, robot: robot)))
            let full = c.rangeMin == 0 && c.rangeMax == 4095
            let stale = !(c.rangeMin...c.rangeMax).contains(home)
            if full || stale { rangesToRecord = true }
            rows.append([e.bus, "\(e.servo.id)", e.servo.joint + (e.servo.shadowOf != nil ? " (shadow)" : ""), "\(e.ticks)",
                         "\(c.homingOffset)", "\(c.direction)",
                         stale ? "\(c.rangeMin)…\(c.rangeMax) (misses the pose)" : "\(c.rangeMin)…\(c.rangeMax)"])
        }
        try CalibrationStore.save(file, now: now)
        console.write(formatTable(rows))
        console.line("wrote \(file.path)")
        if rangesToRecord {
            console.line("next: `tendon calibrate ranges --robot \(robot.file)` to record the ranges of motion")
        }
        return entries
    }
}
