import ArgumentParser
import Foundation
import TendonHardware
import TendonService

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Simulated robot: one pseudo-terminal per bus speaking Dynamixel Protocol 2.0.",
        discussion: """
        Every servo of the robot config is simulated with its model's control table, torque, operating \
        mode, position limits, a first-order response with velocity limit and Hardware Error Status. \
        Replies take their wire time at the bus baud rate. When every bus serves, the ports file \
        {"buses":{name:path}} is written atomically. Runs until SIGINT/SIGTERM (or --duration).

        Faults (--fault, repeatable; T is seconds after start):
          silent:BUS:ID@T      the servo stops answering
          hwerror:BUS:ID@T     the servo raises an overload Hardware Error (alert bit in every status)
          corrupt:BUS:RATE@T   each byte the bus sends is corrupted with probability RATE
          disappear:BUS@T      the bus vanishes (pty closed), as an unplugged adapter
        """)

    @Option(help: "Robot config (YAML).") var robot: String = "Configs/robots/aloha.yaml"
    @Option(name: .customLong("ports-json"), help: "Where to write {\"buses\":{name:path}} when ready.")
    var portsJSON: String
    @Option(help: "Directory for stable symlinks named after the buses.") var linkDir: String?
    @Flag(help: "Answer instantly instead of at wire speed.") var noPacing = false
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(help: "Inject a fault (see above).") var fault: [String] = []

    func run() throws {
        installStopSignals()
        let faults: [SimulatorFault]
        do { faults = try fault.map(SimulatorFault.init(spec:)) } catch { fail("\(error)", code: 64) }
        let config: RobotConfig
        do { config = try RobotConfig.load(path: robot) } catch { fail(error.description, code: 2) }
        let calibration = try? CalibrationFile.load(path: config.calibrationPath)
        let sim: SimulatedRobot
        do {
            sim = try SimulatedRobot(config: SimulatedAloha.configuration(robot: config, calibration: calibration,
                                                                         pacing: !noPacing),
                                     linkDirectory: linkDir)
            try sim.start(portsJSON: portsJSON)
        } catch {
            fail("simulator: \(error)", code: 2)
        }
        for f in faults where sim.bus(f.bus) == nil { sim.stop(); fail("--fault \(f.spec): no bus named \(f.bus)", code: 64) }
        print("simulated \(config.robotID): " + sim.ports.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        let start = Date()
        var pending = faults
        while !stopRequested.load(ordering: .relaxed) {
            let t = Date().timeIntervalSince(start)
            if let d = duration, t >= d { break }
            pending.removeAll { f in
                guard t >= f.seconds, let bus = sim.bus(f.bus) else { return false }
                f.apply(to: bus)
                print("fault injected: \(f.spec)")
                return true
            }
            usleep(10_000)
        }
        sim.stop()
        try? FileManager.default.removeItem(atPath: portsJSON)
    }
}

struct SimulatorFault: Sendable {
    enum Kind: Sendable { case silent(UInt8), hardwareError(UInt8), corrupt(Double), disappear }
    var spec: String
    var kind: Kind
    var bus: String
    var seconds: Double

    init(spec: String) throws {
        self.spec = spec
        let parts = spec.split(separator: "@", maxSplits: 1).map(String.init)
        guard parts.count == 2, let t = Double(parts[1]), t >= 0 else {
            throw ValidationError("--fault \(spec): expected KIND:BUS[:ARG]@SECONDS")
        }
        seconds = t
        let fields = parts[0].split(separator: ":").map(String.init)
        guard fields.count >= 2 else { throw ValidationError("--fault \(spec): expected KIND:BUS[:ARG]@SECONDS") }
        bus = fields[1]
        switch (fields[0], fields.count) {
        case ("silent", 3):
            guard let id = UInt8(fields[2]) else { throw ValidationError("--fault \(spec): bad servo id") }
            kind = .silent(id)
        case ("hwerror", 3):
            guard let id = UInt8(fields[2]) else { throw ValidationError("--fault \(spec): bad servo id") }
            kind = .hardwareError(id)
        case ("corrupt", 3):
            guard let rate = Double(fields[2]), (0...1).contains(rate) else {
                throw ValidationError("--fault \(spec): rate must be within 0…1")
            }
            kind = .corrupt(rate)
        case ("disappear", 2):
            kind = .disappear
        default:
            throw ValidationError("--fault \(spec): unknown fault (silent, hwerror, corrupt, disappear)")
        }
    }

    func apply(to bus: SimulatedBus) {
        switch kind {
        case .silent(let id): bus.setSilent(id: id)
        case .hardwareError(let id): bus.raiseHardwareError(id: id, .overload)
        case .corrupt(let rate): bus.setCorruption(rate: rate)
        case .disappear: bus.disappear()
        }
    }
}
