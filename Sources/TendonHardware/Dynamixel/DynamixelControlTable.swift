/// Control tables of the X-series servos ALOHA uses, as data (addresses, sizes, access, EEPROM/RAM,
/// initial values), transcribed from the ROBOTIS e-manual pages (ROBOTIS-GIT/emanual,
/// docs/en/dxl/x/<model>.md). Indirect Address/Data (168…661) are not modelled.
///
/// API:
///   `DynamixelModel.xm540W270`, `.xm430W350`, `.xl430W250`, `.xc430W150`, `DynamixelModel.all`
///   `DynamixelModel.named("XM540-W270")`, `DynamixelModel.withNumber(1120)` → `DynamixelModel?`
///   `model.register(.presentPosition)` → `DynamixelRegister?` (nil when the model lacks it, e.g.
///     `.presentCurrent` on XL430/XC430, which have `.presentLoad` at 126 instead)
///   `model.register(named: "Present Position")`, `model.register(at:)`,
///   `model.initialMemory(firmwareVersion:inputVoltageTenths:temperatureCelsius:position:)` (bytes
///     0..<memorySize, every initial value little-endian; run-time registers from the arguments),
///   `model.currentMilliampsPerUnit` (nil without current sensing), `model.operatingModes`,
///   `model.recommendedVoltageTenths`
///   `DynamixelRegister`: name, address, size, access, area, initialValue, isSigned
///   `DynamixelOperatingMode`, `DynamixelBaudRate`, `DynamixelUnits`.
public enum DynamixelRegisterName: String, CaseIterable, Sendable {
    case modelNumber = "Model Number"
    case modelInformation = "Model Information"
    case firmwareVersion = "Firmware Version"
    case id = "ID"
    case baudRate = "Baud Rate"
    case returnDelayTime = "Return Delay Time"
    case driveMode = "Drive Mode"
    case operatingMode = "Operating Mode"
    case secondaryID = "Secondary(Shadow) ID"
    case protocolType = "Protocol Type"
    case homingOffset = "Homing Offset"
    case movingThreshold = "Moving Threshold"
    case temperatureLimit = "Temperature Limit"
    case maxVoltageLimit = "Max Voltage Limit"
    case minVoltageLimit = "Min Voltage Limit"
    case pwmLimit = "PWM Limit"
    case currentLimit = "Current Limit"
    case velocityLimit = "Velocity Limit"
    case maxPositionLimit = "Max Position Limit"
    case minPositionLimit = "Min Position Limit"
    case externalPortMode1 = "External Port Mode 1"
    case externalPortMode2 = "External Port Mode 2"
    case externalPortMode3 = "External Port Mode 3"
    case startupConfiguration = "Startup Configuration"
    case shutdown = "Shutdown"
    case torqueEnable = "Torque Enable"
    case led = "LED"
    case statusReturnLevel = "Status Return Level"
    case registeredInstruction = "Registered Instruction"
    case hardwareErrorStatus = "Hardware Error Status"
    case velocityIGain = "Velocity I Gain"
    case velocityPGain = "Velocity P Gain"
    case positionDGain = "Position D Gain"
    case positionIGain = "Position I Gain"
    case positionPGain = "Position P Gain"
    case feedforward2ndGain = "Feedforward 2nd Gain"
    case feedforward1stGain = "Feedforward 1st Gain"
    case busWatchdog = "Bus Watchdog"
    case goalPWM = "Goal PWM"
    case goalCurrent = "Goal Current"
    case goalVelocity = "Goal Velocity"
    case profileAcceleration = "Profile Acceleration"
    case profileVelocity = "Profile Velocity"
    case goalPosition = "Goal Position"
    case realtimeTick = "Realtime Tick"
    case moving = "Moving"
    case movingStatus = "Moving Status"
    case presentPWM = "Present PWM"
    case presentCurrent = "Present Current"
    case presentLoad = "Present Load"
    case presentVelocity = "Present Velocity"
    case presentPosition = "Present Position"
    case velocityTrajectory = "Velocity Trajectory"
    case positionTrajectory = "Position Trajectory"
    case presentInputVoltage = "Present Input Voltage"
    case presentTemperature = "Present Temperature"
    case backupReady = "Backup Ready"
    case externalPortData1 = "External Port Data 1"
    case externalPortData2 = "External Port Data 2"
    case externalPortData3 = "External Port Data 3"
}

public struct DynamixelRegister: Equatable, Sendable, CustomStringConvertible {
    public enum Access: Sendable, Equatable { case read, readWrite }
    /// EEPROM registers are writable only with torque off; RAM resets at power-up and reboot.
    public enum Area: Sendable, Equatable { case eeprom, ram }

    public var name: DynamixelRegisterName
    public var address: UInt16
    public var size: Int
    public var access: Access
    public var area: Area
    /// The e-manual's initial value; nil where it lists "-" (set by the servo at run time). Model
    /// Number is the one read-only value that is fixed per model.
    public var initialValue: Int32?
    /// Two's complement on the wire (velocities, currents, positions, offsets).
    public var isSigned: Bool

    public var description: String {
        "\(name.rawValue) (\(address), \(size) byte\(size == 1 ? "" : "s"), \(access == .read ? "R" : "RW"))"
    }
}

public enum DynamixelOperatingMode: UInt8, Sendable, CaseIterable {
    case current = 0
    case velocity = 1
    case position = 3
    case extendedPosition = 4
    case currentBasedPosition = 5
    case pwm = 16
}

/// Baud Rate register (8) of the X series.
public enum DynamixelBaudRate {
    public static let table: [(register: UInt8, bitsPerSecond: Int)] = [
        (0, 9_600), (1, 57_600), (2, 115_200), (3, 1_000_000),
        (4, 2_000_000), (5, 3_000_000), (6, 4_000_000), (7, 4_500_000),
    ]

    public static func bitsPerSecond(register: UInt8) -> Int? {
        table.first { $0.register == register }?.bitsPerSecond
    }

    public static func register(bitsPerSecond: Int) -> UInt8? {
        table.first { $0.bitsPerSecond == bitsPerSecond }?.register
    }
}

/// Conversions shared by the X series (per-model current unit is on `DynamixelModel`).
public enum DynamixelUnits {
    public static let ticksPerRevolution = 4096
    /// Position Control Mode's 180° point; calibration offsets are measured from here.
    public static let centerTick = 2048
    /// 360/4096 = 0.087890625 (the e-manual rounds to 0.088°).
    public static let degreesPerTick = 360.0 / 4096.0
    public static let radiansPerTick = 2.0 * Double.pi / 4096.0
    public static let rpmPerVelocityUnit = 0.229
    public static let rpm2PerAccelerationUnit = 214.577
    public static let voltsPerUnit = 0.1
    public static let pwmPercentPerUnit = 0.113
    public static let loadPercentPerUnit = 0.1
    public static let returnDelayMicrosecondsPerUnit = 2
    public static let busWatchdogMillisecondsPerUnit = 20
}

public struct DynamixelModel: Sendable, CustomStringConvertible {
    public var name: String
    public var modelNumber: UInt16
    public var registers: [DynamixelRegister]
    /// mA per unit of Goal/Present Current and Current Limit; nil for servos that report load instead.
    public var currentMilliampsPerUnit: Double?
    public var operatingModes: [DynamixelOperatingMode]
    /// Recommended supply in 0.1 V (e-manual specifications): 12.0 V, or 11.1 V for the XL430.
    public var recommendedVoltageTenths: Int32
    /// Bytes of control table the registers above span (0 … last register end).
    public var memorySize: Int { registers.map { Int($0.address) + $0.size }.max() ?? 0 }

    public var description: String { "\(name) (model \(modelNumber))" }

    public func register(_ name: DynamixelRegisterName) -> DynamixelRegister? {
        registers.first { $0.name == name }
    }

    /// Case-insensitive e-manual name, e.g. "Present Position".
    public func register(named name: String) -> DynamixelRegister? {
        let key = name.lowercased()
        return registers.first { $0.name.rawValue.lowercased() == key }
    }

    /// The register that starts at `address`, if any.
    public func register(at address: UInt16) -> DynamixelRegister? {
        registers.first { $0.address == address }
    }

    /// The control table at power-up, every known initial value written little-endian. Registers the
    /// e-manual leaves to the device ("-") get the arguments: Firmware Version, Present Input Voltage
    /// (default: the recommended supply), Present Temperature, and a resting position that fills Present
    /// Position, Goal Position and Position Trajectory (a servo adopts its position as goal at power-up).
    public func initialMemory(firmwareVersion: UInt8 = 48, inputVoltageTenths: Int32? = nil,
                              temperatureCelsius: Int32 = 30, position: Int32 = Int32(DynamixelUnits.centerTick)) -> [UInt8] {
        var memory = [UInt8](repeating: 0, count: memorySize)
        for r in registers {
            var value = r.initialValue ?? 0
            switch r.name {
            case .firmwareVersion: value = Int32(firmwareVersion)
            case .presentInputVoltage: value = inputVoltageTenths ?? recommendedVoltageTenths
            case .presentTemperature: value = temperatureCelsius
            case .presentPosition, .goalPosition, .positionTrajectory: value = position
            default: break
            }
            for k in 0..<r.size {
                memory[Int(r.address) + k] = UInt8(truncatingIfNeeded: value >> (8 * k))
            }
        }
        return memory
    }

    public static let all: [DynamixelModel] = [xm540W270, xm430W350, xl430W250, xc430W150]

    /// Accepts the e-manual's spelling with or without the interface suffix ("XM540-W270-T").
    public static func named(_ name: String) -> DynamixelModel? {
        let key = name.uppercased()
        return all.first { key == $0.name || key.hasPrefix($0.name + "-") }
    }

    public static func withNumber(_ modelNumber: UInt16) -> DynamixelModel? {
        all.first { $0.modelNumber == modelNumber }
    }
}

// MARK: - Tables

/// Per-model values that differ across the four servos; everything else is the shared X-series layout.
private struct XSeriesDefaults {
    var temperatureLimit: Int32
    var maxVoltage: Int32
    var minVoltage: Int32
    var currentLimit: Int32?       // nil: no current sensing (Present Load at 126, no Goal Current)
    var velocityLimit: Int32
    var velocityIGain: Int32
    var positionDGain: Int32
    var positionPGain: Int32
    var externalPorts = false
    var startupConfiguration = false
    var backupReady = false
}

private func xSeriesTable(modelNumber: UInt16, _ d: XSeriesDefaults) -> [DynamixelRegister] {
    var t: [DynamixelRegister] = []
    func add(_ name: DynamixelRegisterName, _ address: UInt16, _ size: Int, _ access: DynamixelRegister.Access,
             _ initial: Int32?, signed: Bool = false) {
        t.append(DynamixelRegister(name: name, address: address, size: size, access: access,
                                   area: address < 64 ? .eeprom : .ram, initialValue: initial, isSigned: signed))
    }
    add(.modelNumber, 0, 2, .read, Int32(modelNumber))
    add(.modelInformation, 2, 4, .read, nil)
    add(.firmwareVersion, 6, 1, .read, nil)
    add(.id, 7, 1, .readWrite, 1)
    add(.baudRate, 8, 1, .readWrite, 1)
    add(.returnDelayTime, 9, 1, .readWrite, 250)
    add(.driveMode, 10, 1, .readWrite, 0)
    add(.operatingMode, 11, 1, .readWrite, 3)
    add(.secondaryID, 12, 1, .readWrite, 255)
    add(.protocolType, 13, 1, .readWrite, 2)
    add(.homingOffset, 20, 4, .readWrite, 0, signed: true)
    add(.movingThreshold, 24, 4, .readWrite, 10)
    add(.temperatureLimit, 31, 1, .readWrite, d.temperatureLimit)
    add(.maxVoltageLimit, 32, 2, .readWrite, d.maxVoltage)
    add(.minVoltageLimit, 34, 2, .readWrite, d.minVoltage)
    add(.pwmLimit, 36, 2, .readWrite, 885)
    if let c = d.currentLimit { add(.currentLimit, 38, 2, .readWrite, c) }
    add(.velocityLimit, 44, 4, .readWrite, d.velocityLimit)
    add(.maxPositionLimit, 48, 4, .readWrite, 4095)
    add(.minPositionLimit, 52, 4, .readWrite, 0)
    if d.externalPorts {
        add(.externalPortMode1, 56, 1, .readWrite, 3)
        add(.externalPortMode2, 57, 1, .readWrite, 3)
        add(.externalPortMode3, 58, 1, .readWrite, 3)
    }
    if d.startupConfiguration { add(.startupConfiguration, 60, 1, .readWrite, 0) }
    add(.shutdown, 63, 1, .readWrite, 52)
    add(.torqueEnable, 64, 1, .readWrite, 0)
    add(.led, 65, 1, .readWrite, 0)
    add(.statusReturnLevel, 68, 1, .readWrite, 2)
    add(.registeredInstruction, 69, 1, .read, 0)
    add(.hardwareErrorStatus, 70, 1, .read, 0)
    add(.velocityIGain, 76, 2, .readWrite, d.velocityIGain)
    add(.velocityPGain, 78, 2, .readWrite, 100)
    add(.positionDGain, 80, 2, .readWrite, d.positionDGain)
    add(.positionIGain, 82, 2, .readWrite, 0)
    add(.positionPGain, 84, 2, .readWrite, d.positionPGain)
    add(.feedforward2ndGain, 88, 2, .readWrite, 0)
    add(.feedforward1stGain, 90, 2, .readWrite, 0)
    add(.busWatchdog, 98, 1, .readWrite, 0)
    add(.goalPWM, 100, 2, .readWrite, nil, signed: true)
    if d.currentLimit != nil { add(.goalCurrent, 102, 2, .readWrite, nil, signed: true) }
    add(.goalVelocity, 104, 4, .readWrite, nil, signed: true)
    add(.profileAcceleration, 108, 4, .readWrite, 0)
    add(.profileVelocity, 112, 4, .readWrite, 0)
    add(.goalPosition, 116, 4, .readWrite, nil, signed: true)
    add(.realtimeTick, 120, 2, .read, nil)
    add(.moving, 122, 1, .read, 0)
    add(.movingStatus, 123, 1, .read, 0)
    add(.presentPWM, 124, 2, .read, nil, signed: true)
    if d.currentLimit != nil {
        add(.presentCurrent, 126, 2, .read, nil, signed: true)
    } else {
        add(.presentLoad, 126, 2, .read, nil, signed: true)
    }
    add(.presentVelocity, 128, 4, .read, nil, signed: true)
    add(.presentPosition, 132, 4, .read, nil, signed: true)
    add(.velocityTrajectory, 136, 4, .read, nil, signed: true)
    add(.positionTrajectory, 140, 4, .read, nil, signed: true)
    add(.presentInputVoltage, 144, 2, .read, nil)
    add(.presentTemperature, 146, 1, .read, nil)
    if d.backupReady { add(.backupReady, 147, 1, .read, nil) }
    if d.externalPorts {
        add(.externalPortData1, 152, 2, .readWrite, nil)
        add(.externalPortData2, 154, 2, .readWrite, nil)
        add(.externalPortData3, 156, 2, .readWrite, nil)
    }
    return t
}

private let allModes: [DynamixelOperatingMode] = DynamixelOperatingMode.allCases
private let noCurrentModes: [DynamixelOperatingMode] = [.velocity, .position, .extendedPosition, .pwm]

extension DynamixelModel {
    /// ALOHA follower shoulder/elbow/waist. e-manual xm540-w270.md (Current Limit 2047, Velocity Limit 128).
    public static let xm540W270 = DynamixelModel(
        name: "XM540-W270", modelNumber: 1120,
        registers: xSeriesTable(modelNumber: 1120, XSeriesDefaults(
            temperatureLimit: 80, maxVoltage: 160, minVoltage: 95, currentLimit: 2047, velocityLimit: 128,
            velocityIGain: 1920, positionDGain: 0, positionPGain: 800,
            externalPorts: true, startupConfiguration: true, backupReady: true)),
        currentMilliampsPerUnit: 2.69, operatingModes: allModes, recommendedVoltageTenths: 120)

    /// ALOHA follower wrist and gripper. e-manual xm430-w350.md (Current Limit 1193, Velocity Limit 200).
    public static let xm430W350 = DynamixelModel(
        name: "XM430-W350", modelNumber: 1020,
        registers: xSeriesTable(modelNumber: 1020, XSeriesDefaults(
            temperatureLimit: 80, maxVoltage: 160, minVoltage: 95, currentLimit: 1193, velocityLimit: 200,
            velocityIGain: 1920, positionDGain: 0, positionPGain: 800)),
        currentMilliampsPerUnit: 2.69, operatingModes: allModes, recommendedVoltageTenths: 120)

    /// ALOHA leader joints. No current sensing: Present Load (0.1 %) at 126, no Current Limit/Goal Current.
    /// e-manual xl430-w250.md (2018 revision: Velocity Limit 265, Startup Configuration, Backup Ready).
    public static let xl430W250 = DynamixelModel(
        name: "XL430-W250", modelNumber: 1060,
        registers: xSeriesTable(modelNumber: 1060, XSeriesDefaults(
            temperatureLimit: 72, maxVoltage: 140, minVoltage: 60, currentLimit: nil, velocityLimit: 265,
            velocityIGain: 1000, positionDGain: 4000, positionPGain: 640,
            startupConfiguration: true, backupReady: true)),
        currentMilliampsPerUnit: nil, operatingModes: noCurrentModes, recommendedVoltageTenths: 111)

    /// ALOHA leader gripper handle. No current sensing (Present Load at 126). e-manual xc430-w150.md.
    public static let xc430W150 = DynamixelModel(
        name: "XC430-W150", modelNumber: 1070,
        registers: xSeriesTable(modelNumber: 1070, XSeriesDefaults(
            temperatureLimit: 80, maxVoltage: 160, minVoltage: 60, currentLimit: nil, velocityLimit: 460,
            velocityIGain: 1920, positionDGain: 0, positionPGain: 460)),
        currentMilliampsPerUnit: nil, operatingModes: noCurrentModes, recommendedVoltageTenths: 120)
}
