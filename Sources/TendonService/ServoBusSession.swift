import Foundation
import Logging
import TendonHardware

/// One motor bus opened for control: its transport and Dynamixel client, the servos it carries with their
/// calibration and the limits read from their own registers, and the preallocated groups the real-time
/// cycle uses. Built by `open`, which checks the chain against the config before anything moves.
public final class ServoBusSession {
    /// A servo as verified at start.
    public struct Servo: Sendable {
        public var config: ServoConfig
        public var model: DynamixelModel
        public var calibration: ServoCalibration
        /// Logical joint index within the arm (0…6 for ALOHA).
        public var jointIndex: Int
        /// Min/Max Position Limit registers (ticks).
        public var registerMinTicks: Int32
        public var registerMaxTicks: Int32
        /// Velocity Limit register in rad/s (nil when the register is 0 = unlimited or absent).
        public var registerMaxVelocity: Double?
        /// Current Limit register in mA (nil on models without current sensing).
        public var registerCurrentLimitMilliamps: Double?
        public var presentTicks: Int32

        /// Tick window every command to this servo is clamped to: its registers ∩ its calibrated range.
        public var commandTicks: ClosedRange<Int32> {
            max(registerMinTicks, Int32(calibration.rangeMin))...min(registerMaxTicks, Int32(calibration.rangeMax))
        }
    }

    public let config: BusConfig
    public let path: String
    public let transport: any SerialTransport
    public let bus: DynamixelBus
    public let servos: [Servo]

    init(config: BusConfig, path: String, transport: any SerialTransport, bus: DynamixelBus, servos: [Servo]) {
        self.config = config
        self.path = path
        self.transport = transport
        self.bus = bus
        self.servos = servos
    }

    public func close() { transport.close() }

    /// Opens `path` (any tty through termios; USB adapters work the same way) and verifies every servo.
    public static func open(config: BusConfig, path: String, robot: RobotConfig, calibration: CalibrationFile,
                            busConfiguration: DynamixelBus.Configuration,
                            logger: Logger) throws(StartupError) -> ServoBusSession {
        let transport = try openTransport(path: path, baudRate: config.baudRate, bus: config.name, logger: logger)
        let bus = DynamixelBus(transport: transport, configuration: busConfiguration)
        do {
            let servos = try verify(config: config, bus: bus, robot: robot, calibration: calibration, logger: logger)
            return ServoBusSession(config: config, path: path, transport: transport, bus: bus, servos: servos)
        } catch {
            transport.close()
            throw error
        }
    }

    /// Real adapters go through libserialport; pseudo-terminals (the simulator), which libserialport 0.1.1
    /// cannot open, and any tty it refuses go through raw termios (DESIGN §4).
    static func openTransport(path: String, baudRate: Int, bus: String,
                              logger: Logger) throws(StartupError) -> any SerialTransport {
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)).map {
            $0.hasPrefix("/") ? $0 : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent($0).standardizedFileURL.path
        } ?? path
        if !resolved.hasPrefix("/dev/pts/") {
            do {
                return try LibSerialPort(path: path, baudRate: baudRate)
            } catch {
                logger.debug("bus \(bus): libserialport cannot open \(path) (\(error)); using termios")
            }
        }
        do {
            return try TermiosSerialPort(path: path, baudRate: baudRate)
        } catch {
            throw StartupError("bus \(bus): cannot open \(path): \(error)")
        }
    }

    /// Model, operating mode, Hardware Error Status, limit registers and present position of each servo;
    /// any mismatch with the config refuses the start (EEPROM is never rewritten behind a technician's back).
    static func verify(config: BusConfig, bus: DynamixelBus, robot: RobotConfig, calibration: CalibrationFile,
                       logger: Logger) throws(StartupError) -> [Servo] {
        var result: [Servo] = []
        for servo in config.servos {
            let name = "bus \(config.name) servo \(servo.id) (\(servo.joint))"
            guard let expected = DynamixelModel.named(servo.model) else {
                throw StartupError("\(name): unknown model \(servo.model)")
            }
            guard let calib = calibration.servo(bus: config.name, id: servo.id) else {
                throw StartupError("\(name): no calibration in \(calibration.path); run `tendon calibrate homing --robot \(robot.file)`")
            }
            guard let jointIndex = robot.joints.firstIndex(where: { $0.name == servo.joint }) else {
                throw StartupError("\(name): joint \(servo.joint) is not in the config")
            }
            func register(_ r: DynamixelRegisterName) throws(StartupError) -> DynamixelRegister {
                guard let reg = expected.register(r) else { throw StartupError("\(name): \(expected.name) has no \(r.rawValue) register") }
                return reg
            }
            func read(_ r: DynamixelRegisterName) throws(StartupError) -> Int32 {
                let reg = try register(r)
                do {
                    let raw = try bus.read(servo.id, address: reg.address, size: reg.size)
                    switch reg.size {
                    case 1: return Int32(UInt8(truncatingIfNeeded: raw))
                    case 2: return reg.isSigned ? Int32(Int16(truncatingIfNeeded: raw)) : Int32(UInt16(truncatingIfNeeded: raw))
                    default: return Int32(bitPattern: raw)
                    }
                } catch {
                    throw StartupError("\(name): reading \(r.rawValue) failed: \(error)")
                }
            }
            let ping: DynamixelPingResult
            do {
                ping = try bus.ping(servo.id)
            } catch {
                throw StartupError("\(name) does not answer PING: \(error)")
            }
            guard ping.modelNumber == expected.modelNumber else {
                let found = ping.model.map { "\($0.name) (\($0.modelNumber))" } ?? "model number \(ping.modelNumber)"
                throw StartupError("\(name): config says \(expected.name) (\(expected.modelNumber)), the servo is \(found)")
            }
            let mode = try read(.operatingMode)
            guard mode == Int32(servo.mode.rawValue) else {
                let found = DynamixelOperatingMode(rawValue: UInt8(truncatingIfNeeded: mode))?.configName ?? "\(mode)"
                throw StartupError("\(name): operating mode is \(found), config says \(servo.mode.configName); set it with the Dynamixel Wizard or `tendon calibrate` (torque off)")
            }
            let hardwareError = try read(.hardwareErrorStatus)
            guard hardwareError == 0 else {
                let status = DynamixelHardwareErrorStatus(rawValue: UInt8(truncatingIfNeeded: hardwareError))
                throw StartupError("\(name): Hardware Error Status \(hardwareError) (\(status)); fix the cause, then reboot the servo")
            }
            let minTicks = try read(.minPositionLimit), maxTicks = try read(.maxPositionLimit)
            guard minTicks < maxTicks else {
                throw StartupError("\(name): Min Position Limit \(minTicks) ≥ Max Position Limit \(maxTicks)")
            }
            var maxVelocity: Double?
            if expected.register(.velocityLimit) != nil {
                let v = try read(.velocityLimit)
                if v > 0 { maxVelocity = Double(v) * DynamixelUnits.rpmPerVelocityUnit * 2 * .pi / 60 }
            }
            var currentLimit: Double?
            if expected.register(.currentLimit) != nil, let unit = expected.currentMilliampsPerUnit {
                currentLimit = Double(try read(.currentLimit)) * unit
            }
            let present = try read(.presentPosition)
            let entry = Servo(config: servo, model: expected, calibration: calib, jointIndex: jointIndex,
                              registerMinTicks: minTicks, registerMaxTicks: maxTicks,
                              registerMaxVelocity: maxVelocity, registerCurrentLimitMilliamps: currentLimit,
                              presentTicks: present)
            guard !entry.commandTicks.isEmpty, entry.commandTicks.lowerBound < entry.commandTicks.upperBound else {
                throw StartupError("\(name): the limit registers (\(minTicks)…\(maxTicks)) and the calibrated range (\(calib.rangeMin)…\(calib.rangeMax)) do not overlap")
            }
            logger.debug("verified \(name): \(expected.name) fw \(ping.firmwareVersion), limits \(minTicks)…\(maxTicks), at \(present)")
            result.append(entry)
        }
        return result
    }
}
