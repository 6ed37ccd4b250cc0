import TendonHardware

/// The selected buses opened at their line rates for a hands-on step (homing, ranges, gripper), with
/// every servo checked to answer and its torque off so the technician can move it.
final class OpenedBuses {
    let configs: [BusConfig]
    let clients: [DynamixelBus]

    init(ports: CalibrationPorts, buses: [BusConfig]) throws(CalibrationError) {
        var clients: [DynamixelBus] = []
        for config in buses {
            do {
                clients.append(try ports.openBus(config))
            } catch {
                clients.forEach { $0.transport.close() }
                throw error
            }
        }
        self.configs = buses
        self.clients = clients
    }

    func close() { clients.forEach { $0.transport.close() } }

    /// Torque off on every servo; a servo that does not answer stops the step before anything is asked of
    /// the technician.
    func torqueOffAll() throws(CalibrationError) {
        for (config, bus) in zip(configs, clients) {
            for servo in config.servos {
                do {
                    try bus.torqueOff(servo.id)
                } catch {
                    throw CalibrationError("\(config.label(servo)): cannot turn torque off: \(error); run `tendon calibrate scan`")
                }
            }
        }
    }

    /// Present Position of every servo, per bus in config order.
    func readTicks() throws(CalibrationError) -> [[Int32]] {
        var result: [[Int32]] = []
        for (config, bus) in zip(configs, clients) {
            var row: [Int32] = []
            for servo in config.servos {
                do {
                    row.append(try bus.presentTicks(servo.id))
                } catch {
                    throw CalibrationError("\(config.label(servo)): reading Present Position failed: \(error)")
                }
            }
            result.append(row)
        }
        return result
    }
}

/// The reference pose homing maps to: every joint at zero (ALOHA's home pose), grippers closed at the
/// config's closed constant.
public enum ReferencePose {
    public static func angle(joint: String, role: BusRole, robot: RobotConfig) -> Double {
        guard joint == "gripper" else { return 0 }
        return role == .leader ? robot.grippers.leaderClosed : robot.grippers.followerClosed
    }

    public static var instruction: String {
        "Pose the arms at the reference pose: every joint at zero (the home pose), grippers fully closed."
    }
}
