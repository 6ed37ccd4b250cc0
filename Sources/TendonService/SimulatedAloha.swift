import TendonHardware

/// Maps a robot config (and its calibration) onto the simulator's plain description: the same buses,
/// ids, models and operating modes, limit registers set to the calibrated ranges, every joint at zero.
public enum SimulatedAloha {
    public static func configuration(robot: RobotConfig, calibration: CalibrationFile?,
                                     pacing: Bool = true) -> SimulatedRobotConfig {
        let buses = robot.buses.map { bus in
            SimulatedBusConfig(name: bus.name, baudRate: bus.baudRate, servos: bus.servos.map { servo in
                let calib = calibration?.servo(bus: bus.name, id: servo.id)
                let home = calib.map { $0.ticks(radians: startPose(joint: servo.joint, robot: robot, role: bus.role)) } ?? 2048
                return SimulatedServoConfig(id: servo.id, model: servo.model, operatingMode: servo.mode.rawValue,
                                            initialPosition: home,
                                            minPositionLimit: calib.map { Int32($0.rangeMin) },
                                            maxPositionLimit: calib.map { Int32($0.rangeMax) },
                                            returnDelayTime: 0)
            })
        }
        return SimulatedRobotConfig(buses: buses, pacing: pacing)
    }

    /// Arms start at zero, grippers half open, so every joint is inside its limits.
    static func startPose(joint: String, robot: RobotConfig, role: BusRole) -> Double {
        guard joint == "gripper" else { return 0 }
        let g = robot.grippers
        return role == .leader ? (g.leaderOpen + g.leaderClosed) / 2 : (g.followerOpen + g.followerClosed) / 2
    }
}
