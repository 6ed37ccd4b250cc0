import Foundation
import TendonHardware

/// `tendon calibrate gripper`: the open and closed endpoints of each selected bus's gripper in joint
/// radians (through the homing calibration), stored under `grippers:`; the runtime then normalizes with
/// them instead of the config's constants (`CalibrationFile.gripperConstants`).
public enum GripperEndpoints {
    /// Endpoints closer than this (rad) mean the gripper was not moved.
    public static let minimumTravel = 0.1

    @discardableResult
    public static func run(ports: CalibrationPorts, buses: [BusConfig], console: CalibrationConsole,
                           now: Date = Date()) throws(CalibrationError) -> [String: GripperCalibration] {
        let robot = ports.robot
        var file = try CalibrationStore.load(robot: robot, now: now)
        var grippers: [(bus: BusConfig, servo: ServoConfig, calibration: ServoCalibration)] = []
        for config in buses {
            guard let servo = config.primaryServo(forJoint: "gripper") else { continue }
            guard let c = file.servo(bus: config.name, id: servo.id) else {
                throw CalibrationError("\(config.label(servo)) has no homing yet; run `tendon calibrate homing --robot \(robot.file)` first")
            }
            grippers.append((config, servo, c))
        }
        guard !grippers.isEmpty else { throw CalibrationError("no gripper joint on \(buses.map(\.name).joined(separator: ", "))") }
        let selected = grippers.map(\.bus)
        let opened = try OpenedBuses(ports: ports, buses: selected)
        defer { opened.close() }
        try opened.torqueOffAll()
        func read() throws(CalibrationError) -> [Double] {
            let ticks = try opened.readTicks()
            return grippers.enumerated().map { i, g in
                let index = g.bus.servos.firstIndex { $0.id == g.servo.id } ?? 0
                return g.calibration.radians(ticks: ticks[i][index])
            }
        }
        let names = selected.map(\.name).joined(separator: ", ")
        try console.waitForEnter("Open the grippers of \(names) fully and hold them.", key: "gripper-open")
        let open = try read()
        try console.waitForEnter("Close the grippers of \(names) fully and hold them.", key: "gripper-closed")
        let closed = try read()
        var rows = [["bus", "open (rad)", "closed (rad)"]]
        var problems: [String] = []
        var result: [String: GripperCalibration] = [:]
        for (i, g) in grippers.enumerated() {
            rows.append([g.bus.name, String(format: "%.4f", open[i]), String(format: "%.4f", closed[i])])
            if abs(open[i] - closed[i]) < minimumTravel {
                problems.append(String(format: "%@: open %.3f and closed %.3f rad differ by less than %.2f rad; open and close the gripper fully",
                                       g.bus.label(g.servo), open[i], closed[i], minimumTravel))
            } else {
                result[g.bus.name] = GripperCalibration(open: open[i], closed: closed[i])
            }
        }
        console.write(formatTable(rows))
        if !problems.isEmpty { throw CalibrationError("grippers not stored: " + problems.joined(separator: "; ")) }
        for (bus, g) in result { file.grippers[bus] = g }
        try CalibrationStore.save(file, now: now)
        console.line("wrote \(file.path)")
        return result
    }
}
