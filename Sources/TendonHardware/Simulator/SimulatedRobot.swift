import Foundation

/// The plain description a simulated robot is built from (the YAML loader maps robot configs onto it).
public struct SimulatedRobotConfig: Sendable, Equatable {
    public var buses: [SimulatedBusConfig]
    /// Replies take the time they would on the wire (see `SimulatedBus`); off for fast unit tests.
    public var pacing: Bool
    /// Position response time constant of every servo.
    public var timeConstantSeconds: Double

    public init(buses: [SimulatedBusConfig], pacing: Bool = true, timeConstantSeconds: Double = 0.05) {
        self.buses = buses
        self.pacing = pacing
        self.timeConstantSeconds = timeConstantSeconds
    }
}

/// Several simulated buses started together; publishes where clients find them in a ports file
/// `{"buses":{name:path}}` (DESIGN §5, `tendon sim --ports-json`), written only once every bus serves.
public final class SimulatedRobot: Sendable {
    public let buses: [SimulatedBus]

    /// Builds every bus and its pty. `linkDirectory`, when given, gets a symlink per bus named after
    /// it, and the ports file lists those stable names instead of /dev/pts/N.
    public init(config: SimulatedRobotConfig, linkDirectory: String? = nil) throws(SimulatorError) {
        var names: Set<String> = []
        var built: [SimulatedBus] = []
        for bus in config.buses {
            guard names.insert(bus.name).inserted else {
                built.forEach { $0.stop() }
                throw .duplicateBus(bus.name)
            }
            do {
                built.append(try SimulatedBus(config: bus, pacing: config.pacing,
                                              timeConstantSeconds: config.timeConstantSeconds,
                                              symlink: linkDirectory.map { $0 + "/" + bus.name }))
            } catch {
                built.forEach { $0.stop() }
                throw error
            }
        }
        buses = built
    }

    public func bus(_ name: String) -> SimulatedBus? { buses.first { $0.name == name } }

    /// Name → device path of every bus.
    public var ports: [String: String] {
        Dictionary(uniqueKeysWithValues: buses.map { ($0.name, $0.devicePath) })
    }

    /// Starts every bus, then (if asked) writes the ports file atomically: a reader either sees no
    /// file or the complete one, never a half-written JSON.
    public func start(portsJSON: String? = nil) throws(SimulatorError) {
        for bus in buses { bus.start() }
        if let portsJSON { try Self.writePortsFile(ports, to: portsJSON) }
    }

    public func stop() {
        for bus in buses { bus.stop() }
    }

    /// Temp file in the same directory (so rename stays on one filesystem), fsync, rename, fsync the
    /// directory so the rename itself survives a crash.
    static func writePortsFile(_ ports: [String: String], to path: String) throws(SimulatorError) {
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: ["buses": ports], options: [.sortedKeys])
        } catch {
            throw .portsFile(path: path, errno: EINVAL)
        }
        let directory = (path as NSString).deletingLastPathComponent
        let dir = directory.isEmpty ? "." : directory
        let temp = dir + "/." + (path as NSString).lastPathComponent + ".tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .portsFile(path: path, errno: errno) }
        var bytes = [UInt8](data)
        bytes.append(0x0A)
        let ok = bytes.withUnsafeBytes { raw -> Bool in
            (try? DescriptorIO.writeAll(fd: fd, raw)) != nil
        }
        let code = errno
        guard ok, fsync(fd) == 0 else {
            close(fd)
            unlink(temp)
            throw .portsFile(path: path, errno: ok ? errno : code)
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw .portsFile(path: path, errno: code)
        }
        let dirFD = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }
}
