import ArgumentParser
import Foundation
import Glibc
import TendonHardware
import TendonService

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Technicians' procedures: find servos, set ids and rates, record homing, ranges and grippers, verify.",
        discussion: """
        Results go to the robot config's `calibration:` file (Calibration/<robot-id>.yaml), written \
        atomically; servos a command does not touch keep their entries. Order on a new robot: scan, \
        set-id/set-baud where needed, homing, ranges, gripper, verify. Prompts read answers from the \
        terminal, from --script FILE (one answer per line), or from standard input; --yes answers them all.
        """,
        subcommands: [CalibrateScan.self, CalibrateSetID.self, CalibrateSetBaud.self, CalibrateHoming.self,
                      CalibrateRanges.self, CalibrateGripper.self, CalibrateVerify.self, CalibrateCamerasCommand.self])
}

/// Options every calibrate subcommand shares.
struct CalibrateOptions: ParsableArguments {
    @Option(help: "Robot config (YAML).") var robot: String = "Configs/robots/aloha.yaml"
    @Flag(help: "Start the simulated robot in this process.") var sim = false
    @Option(name: .customLong("ports-json"), help: "Ports file written by `tendon sim` ({\"buses\":{name:path}}).")
    var portsJSON: String?
    @Option(name: .customLong("bus"), help: "Only this bus (repeatable; default: every bus of the config).")
    var buses: [String] = []
    @Flag(help: "Answer every confirmation with yes and every \"press Enter\" at once (simulator, scripts).")
    var yes = false
    @Option(help: "Answers, one per line, as a person would type them (default: the terminal or standard input).")
    var script: String?

    func validate() throws {
        if sim && portsJSON != nil { throw ValidationError("--sim and --ports-json exclude each other") }
    }

    /// Loads the config, opens the ports and the console, runs `body`, turns failures into the one line.
    @discardableResult
    func run<R>(_ body: (CalibrationPorts, CalibrationConsole) throws(CalibrationError) -> R) -> R {
        let config: RobotConfig
        do {
            config = try RobotConfig.load(path: robot)
        } catch {
            fail(error.description)
        }
        do throws(CalibrationError) {
            let console = CalibrationConsole(assumeYes: yes,
                                             script: try script.map { p throws(CalibrationError) in try CalibrationConsole.scriptLines(path: p) },
                                             interactiveOutput: isatty(1) == 1)
            let ports = try CalibrationPorts.open(robot: config,
                                                  source: sim ? .simulator : portsJSON.map { .portsJSON($0) } ?? .config)
            defer { ports.close() }
            return try body(ports, console)
        } catch {
            fail(error.description)
        }
    }
}

struct CalibrateScan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Find the servos on each bus at every X-series baud rate.",
        discussion: """
        Broadcast PING at 9600 … 4.5M baud on each bus (the line rate is restored afterwards); prints bus, \
        id, model, firmware, baud rate, decoded Hardware Error Status and how each servo matches the config.
        """)
    @OptionGroup var common: CalibrateOptions
    @Option(help: "Scan only these rates (comma-separated; default: all X-series rates).") var rates: String?

    func run() throws {
        let list = try rates.map { text in
            try text.split(separator: ",").map { part -> Int in
                guard let r = Int(part.trimmingCharacters(in: .whitespaces)), DynamixelBaudRate.register(bitsPerSecond: r) != nil else {
                    throw ValidationError("--rates: '\(part)' is not a Dynamixel baud rate")
                }
                return r
            }
        }
        common.run { (ports, console) throws(CalibrationError) in
            let result = try ServoScan.run(ports: ports, buses: try ports.select(common.buses), rates: list)
            console.write(ServoScan.table(result))
        }
    }
}

struct CalibrateSetID: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-id",
        abstract: "Give one servo a new id (torque off, confirm, verify by PING).")
    @OptionGroup var common: CalibrateOptions
    @Option(help: "The servo's current id.") var id: UInt8
    @Option(name: .customLong("new-id"), help: "The id to give it (0…252, free on the bus).") var newID: UInt8

    func validate() throws {
        if common.buses.count != 1 { throw ValidationError("set-id needs exactly one --bus") }
    }

    func run() throws {
        common.run { (ports, console) throws(CalibrationError) in
            try ServoEEPROM.setID(ports: ports, bus: common.buses[0], id: id, newID: newID, console: console)
        }
    }
}

struct CalibrateSetBaud: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-baud",
        abstract: "Set one servo's baud rate (torque off, confirm, verify by PING at the new rate).")
    @OptionGroup var common: CalibrateOptions
    @Option(help: "The servo's id.") var id: UInt8
    @Option(help: "The new rate in bit/s (9600, 57600, 115200, 1000000, 2000000, 3000000, 4000000, 4500000).")
    var baud: Int
    @Option(help: "The rate the servo runs at now (default: the bus's configured rate).") var from: Int?

    func validate() throws {
        if common.buses.count != 1 { throw ValidationError("set-baud needs exactly one --bus") }
    }

    func run() throws {
        common.run { (ports, console) throws(CalibrationError) in
            try ServoEEPROM.setBaud(ports: ports, bus: common.buses[0], id: id, baudRate: baud, currentBaudRate: from,
                                    console: console)
        }
    }
}

struct CalibrateHoming: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "homing",
        abstract: "Record offsets with the arms at the reference pose (joints at zero, grippers closed).",
        discussion: """
        Turns torque off (support the follower arms), waits for the pose, and stores each servo's offset so \
        the pose reads as the reference angles; shadow servos get direction -1 and their own offset.
        """)
    @OptionGroup var common: CalibrateOptions

    func run() throws {
        common.run { (ports, console) throws(CalibrationError) in
            try Homing.run(ports: ports, buses: try ports.select(common.buses), console: console)
        }
    }
}

struct CalibrateRanges: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranges",
        abstract: "Record each joint's range of motion while the technician moves it (torque off).",
        discussion: """
        Shows a live table (redrawn in place on a terminal) and finishes on Enter or after --seconds. Ranges \
        are unwrapped across the encoder's 0/4095 wrap. A range that crosses the wrap is moved into one \
        turn, after confirmation, by writing the servo's Homing Offset register (EEPROM; Min/Max Position \
        Limit follow the shifted frame) and the calibration's homing_offset by the same shift, so joint \
        angles are unchanged. A range that is empty, longer than one turn, misses the homing pose or \
        cannot be shifted into one turn is refused, naming the joint, and nothing is written.
        """)
    @OptionGroup var common: CalibrateOptions
    @Option(help: "Stop recording after this many seconds (required with --script or --yes).") var seconds: Double?

    func validate() throws {
        if let seconds, !(seconds > 0) { throw ValidationError("--seconds must be positive, got \(seconds)") }
    }

    func run() throws {
        common.run { (ports, console) throws(CalibrationError) in
            try RangeRecording.run(ports: ports, buses: try ports.select(common.buses), console: console,
                                   options: RangeRecording.Options(seconds: seconds))
        }
    }
}

struct CalibrateGripper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gripper",
        abstract: "Record the open and closed gripper endpoints (the ALOHA normalization constants).",
        discussion: "Open fully and press Enter, close fully and press Enter; stored under `grippers:` per bus.")
    @OptionGroup var common: CalibrateOptions

    func run() throws {
        common.run { (ports, console) throws(CalibrationError) in
            try GripperEndpoints.run(ports: ports, buses: try ports.select(common.buses), console: console)
        }
    }
}

struct CalibrateVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the calibration: small slow moves on followers, range checks on leaders.",
        discussion: """
        Followers start as `tendon run` starts them (torque on without a jump) and each joint moves a little \
        and back; present is compared with commanded. Leaders are read and checked against their ranges. \
        Prints a pass/fail table; exits non-zero on any failure. Followers keep torque on afterwards.
        """)
    @OptionGroup var common: CalibrateOptions
    @Option(help: "Size of each test move in radians.") var step: Double = 0.05
    @Option(help: "Largest accepted error in radians.") var tolerance: Double = 0.03

    func validate() throws {
        if !(step > 0 && step <= 0.2) { throw ValidationError("--step must be in (0, 0.2] rad, got \(step)") }
        if !(tolerance > 0) { throw ValidationError("--tolerance must be positive, got \(tolerance)") }
    }

    func run() throws {
        var options = CalibrationVerifier.Options()
        options.step = step
        options.tolerance = tolerance
        common.run { (ports, console) throws(CalibrationError) in
            _ = try CalibrationVerifier.run(ports: ports, buses: try ports.select(common.buses), console: console,
                                            options: options)
        }
    }
}
