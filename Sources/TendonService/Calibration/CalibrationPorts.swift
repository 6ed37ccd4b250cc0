import Foundation
import Logging
import TendonHardware

/// The buses a calibration command talks to, found as `tendon run` finds them: the robot config's device
/// paths, a ports file from `tendon sim`, or a simulator started in this process.
public final class CalibrationPorts {
    public let robot: RobotConfig
    /// Bus name → device path.
    public let paths: [String: String]
    /// The in-process simulator (`--sim`); tests reach its servos here.
    public let simulator: SimulatedRobot?

    public init(robot: RobotConfig, paths: [String: String], simulator: SimulatedRobot? = nil) {
        self.robot = robot
        self.paths = paths
        self.simulator = simulator
    }

    /// `--sim` starts the simulated robot posed from the existing calibration (or at the encoders'
    /// centres without one); `pacing: false` answers at once (tests).
    public static func open(robot: RobotConfig, source: PortSource, pacing: Bool = true) throws(CalibrationError) -> CalibrationPorts {
        switch source {
        case .simulator:
            let calibration = try? CalibrationFile.load(path: robot.calibrationPath)
            do {
                let sim = try SimulatedRobot(config: SimulatedAloha.configuration(robot: robot, calibration: calibration,
                                                                                   pacing: pacing))
                try sim.start()
                return CalibrationPorts(robot: robot, paths: sim.ports, simulator: sim)
            } catch {
                throw CalibrationError("simulator: \(error)")
            }
        case .portsJSON(let path):
            do {
                return CalibrationPorts(robot: robot, paths: try RobotRunner.readPortsFile(path))
            } catch {
                throw CalibrationError(error.description)
            }
        case .config:
            return CalibrationPorts(robot: robot,
                                    paths: Dictionary(uniqueKeysWithValues: robot.buses.map { ($0.name, $0.device) }))
        }
    }

    public func close() { simulator?.stop() }

    /// The buses named in `names` (all of the config's, in file order, when empty).
    public func select(_ names: [String]) throws(CalibrationError) -> [BusConfig] {
        if names.isEmpty { return robot.buses }
        var result: [BusConfig] = []
        for name in names {
            guard let bus = robot.bus(named: name) else {
                throw CalibrationError("bus '\(name)' is not in \(robot.file) (buses: \(robot.buses.map(\.name).joined(separator: ", ")))")
            }
            result.append(bus)
        }
        return result
    }

    public func path(of bus: BusConfig) throws(CalibrationError) -> String {
        guard let path = paths[bus.name] else {
            throw CalibrationError("bus \(bus.name): no device path (ports: \(paths.keys.sorted().joined(separator: ", ")))")
        }
        return path
    }

    /// Opens a bus client at `baudRate` (the config's line rate by default). Not time-critical: generous
    /// margins and retries. The caller closes `bus.transport`.
    public func openBus(_ bus: BusConfig, baudRate: Int? = nil, returnDelayMicros: Int = 0,
                        logger: Logger = Logger(label: "tendon.calibrate")) throws(CalibrationError) -> DynamixelBus {
        let transport: any SerialTransport
        do {
            transport = try ServoBusSession.openTransport(path: try path(of: bus), baudRate: baudRate ?? bus.baudRate,
                                                          bus: bus.name, logger: logger)
        } catch let error as StartupError {
            throw CalibrationError(error.description)
        } catch {
            throw CalibrationError("bus \(bus.name): \(error)")
        }
        return DynamixelBus(transport: transport,
                            configuration: DynamixelBus.Configuration(retries: 3, latencyMarginNanos: 50_000_000,
                                                                      returnDelayMicros: returnDelayMicros))
    }
}

/// Register access by name, for the technicians' commands (sign-extended like the control table says).
extension DynamixelBus {
    func readRegister(_ id: UInt8, _ register: DynamixelRegisterName, model: DynamixelModel) throws(DynamixelError) -> Int64 {
        guard let r = model.register(register) else {
            throw DynamixelError(kind: .invalidRequest, id: id)
        }
        let raw = try read(id, address: r.address, size: r.size)
        switch (r.size, r.isSigned) {
        case (2, true): return Int64(Int16(truncatingIfNeeded: raw))
        case (4, true): return Int64(Int32(bitPattern: raw))
        default: return Int64(raw)
        }
    }

    func writeRegister(_ id: UInt8, _ register: DynamixelRegisterName, _ value: Int64, model: DynamixelModel) throws(DynamixelError) {
        guard let r = model.register(register) else {
            throw DynamixelError(kind: .invalidRequest, id: id)
        }
        try write(id, address: r.address, value: value, size: r.size)
    }

    /// Present Position (132, 4 bytes, signed) of any X-series servo.
    func presentTicks(_ id: UInt8) throws(DynamixelError) -> Int32 {
        Int32(bitPattern: try read(id, address: 132, size: 4))
    }

    /// Torque Enable (64) = 0: EEPROM becomes writable and the servo can be moved by hand.
    func torqueOff(_ id: UInt8) throws(DynamixelError) {
        try write(id, address: 64, value: 0, size: 1)
    }
}

extension BusConfig {
    func label(_ servo: ServoConfig) -> String { "bus \(name) servo \(servo.id) (\(servo.joint))" }
}
