import Glibc

/// Value ranges the firmware enforces on writes (e-manual "Range" column); a write outside answers
/// Data Limit Error. Registers not listed accept any value of their size.
enum SimulatedRegisterRanges {
    static func range(_ name: DynamixelRegisterName, model: DynamixelModel) -> ClosedRange<Int64>? {
        switch name {
        case .id: return 0...252
        case .baudRate: return 0...7
        case .returnDelayTime: return 0...254
        case .protocolType: return 1...2
        case .homingOffset: return -1_044_479...1_044_479
        case .movingThreshold: return 0...1023
        case .temperatureLimit: return 0...100
        case .pwmLimit: return 0...885
        // The factory value is the motor's maximum.
        case .currentLimit: return 0...Int64(model.register(.currentLimit)?.initialValue ?? 0)
        case .velocityLimit: return 0...1023
        case .maxPositionLimit, .minPositionLimit: return 0...4095
        case .torqueEnable, .led: return 0...1
        case .statusReturnLevel: return 0...2
        case .profileAcceleration, .profileVelocity: return 0...32767
        case .goalPosition: return -1_048_575...1_048_575
        case .busWatchdog: return 0...127
        default: return nil
        }
    }
}

/// How the simulated servo starts; nil fields keep the model's factory values.
public struct SimulatedServoConfig: Sendable, Equatable {
    public var id: UInt8
    public var model: String
    public var operatingMode: UInt8?
    public var initialPosition: Int32
    public var minPositionLimit: Int32?
    public var maxPositionLimit: Int32?
    public var returnDelayTime: UInt8?
    /// Shadow servos (ALOHA's doubled shoulder and elbow) act on packets for this id without replying.
    public var secondaryID: UInt8?
    /// What PING reports; the e-manual leaves it to the device.
    public var firmwareVersion: UInt8

    public init(id: UInt8, model: String, operatingMode: UInt8? = nil, initialPosition: Int32 = 2048,
                minPositionLimit: Int32? = nil, maxPositionLimit: Int32? = nil,
                returnDelayTime: UInt8? = nil, secondaryID: UInt8? = nil, firmwareVersion: UInt8 = 48) {
        self.id = id
        self.model = model
        self.operatingMode = operatingMode
        self.initialPosition = initialPosition
        self.minPositionLimit = minPositionLimit
        self.maxPositionLimit = maxPositionLimit
        self.returnDelayTime = returnDelayTime
        self.secondaryID = secondaryID
        self.firmwareVersion = firmwareVersion
    }
}

/// A Dynamixel X-series servo as seen from the bus: control table memory, firmware rules for writes,
/// and a first-order motor. Not thread-safe; `SimulatedBus` serialises access.
///
/// Firmware behaviour reproduced (ROBOTIS e-Manual, X series):
/// - EEPROM area writable only with Torque Enable = 0, else Access Error (7).
/// - Writes to read-only or undefined bytes: Access Error; a write that covers part of a register:
///   Data Length Error (5); beyond the table: Data Range Error (4); a value outside the register's
///   range (Goal Position outside Min/Max Position Limit in single-turn Position mode, goals beyond
///   their limits): Data Limit Error (6). A failing write changes nothing.
/// - Min/Max Position Limit apply only in single-turn Position Control mode.
/// - Enabling torque sets Goal Position to Present Position (no jump).
/// - Present Position = encoder + Homing Offset (20); Goal Position and the Min/Max Position Limits are
///   in that frame. In single-turn Position mode an offset outside −1024…1024 is ignored (e-manual,
///   Homing Offset note). With torque off Present Position is continuous across turns (a hand moving a
///   joint through 4095 reads 4096, 4097, …); turning torque on in Position mode, or switching to Position
///   mode, folds it back into one turn (0…4095).
/// - A Hardware Error bit in Shutdown (63) clears Torque Enable; only REBOOT clears the error, and
///   until then writing Torque Enable = 1 answers Result Fail (1). Every status carries the alert bit.
/// - REBOOT restores RAM to its initial values; EEPROM and the shaft position persist.
/// - Bus Watchdog (98) = n > 0: when no instruction packet arrives for n × 20 ms the servo stops
///   (holds its position, zero velocity), the register reads −1 and Goal PWM/Current/Velocity/Position
///   answer Data Range Error (4) until the host writes 0 to it.
public final class SimulatedServo {
    public let model: DynamixelModel
    public private(set) var memory: [UInt8]
    /// Motion time constant of the position response.
    public var timeConstantSeconds: Double

    /// Shaft state in encoder ticks (continuous across turns, without Homing Offset) and ticks/s.
    public private(set) var position: Double
    public private(set) var velocity: Double = 0
    private var lastAdvanceNanos: UInt64
    /// Last instruction packet this servo heard (the bus watchdog's reference).
    private var lastInstructionNanos: UInt64
    private let startNanos: UInt64
    /// Bytes staged by REG WRITE until ACTION.
    private var registered: (address: Int, data: [UInt8])?
    private let initialMemory: [UInt8]
    /// Whole turns added to Present Position when it was last folded into 0…4095.
    private var turnOffset: Double = 0

    /// Register addresses resolved once (nil when the model lacks the register).
    struct Addresses {
        var modelNumber, firmwareVersion, id, baudRate, returnDelay, operatingMode, secondaryID: Int?
        var movingThreshold, currentLimit, pwmLimit, velocityLimit, maxPosition, minPosition, shutdown: Int?
        var torqueEnable, statusReturnLevel, registeredInstruction, hardwareError: Int?
        var goalPWM, goalCurrent, goalVelocity, profileAcceleration, profileVelocity, goalPosition: Int?
        var realtimeTick, moving, movingStatus, presentPWM, presentCurrent, presentVelocity, presentPosition: Int?
        var velocityTrajectory, positionTrajectory, presentInputVoltage, presentTemperature: Int?
        var temperatureLimit, busWatchdog, homingOffset: Int?

        init(_ m: DynamixelModel) {
            func a(_ n: String) -> Int? { m.register(named: n).map { Int($0.address) } }
            modelNumber = a("Model Number"); firmwareVersion = a("Firmware Version"); id = a("ID")
            baudRate = a("Baud Rate"); returnDelay = a("Return Delay Time"); operatingMode = a("Operating Mode")
            secondaryID = a("Secondary(Shadow) ID"); movingThreshold = a("Moving Threshold")
            currentLimit = a("Current Limit"); pwmLimit = a("PWM Limit"); velocityLimit = a("Velocity Limit")
            maxPosition = a("Max Position Limit"); minPosition = a("Min Position Limit"); shutdown = a("Shutdown")
            torqueEnable = a("Torque Enable"); statusReturnLevel = a("Status Return Level")
            registeredInstruction = a("Registered Instruction"); hardwareError = a("Hardware Error Status")
            goalPWM = a("Goal PWM"); goalCurrent = a("Goal Current"); goalVelocity = a("Goal Velocity")
            profileAcceleration = a("Profile Acceleration"); profileVelocity = a("Profile Velocity")
            goalPosition = a("Goal Position"); realtimeTick = a("Realtime Tick"); moving = a("Moving")
            movingStatus = a("Moving Status"); presentPWM = a("Present PWM")
            presentCurrent = a("Present Current") ?? a("Present Load")
            presentVelocity = a("Present Velocity"); presentPosition = a("Present Position")
            velocityTrajectory = a("Velocity Trajectory"); positionTrajectory = a("Position Trajectory")
            presentInputVoltage = a("Present Input Voltage"); presentTemperature = a("Present Temperature")
            temperatureLimit = a("Temperature Limit"); busWatchdog = a("Bus Watchdog")
            homingOffset = a("Homing Offset")
        }
    }
    let addr: Addresses
    /// Register index by byte address, -1 for gaps: write checks without a search.
    private let registerAt: [Int]
    private let ranges: [ClosedRange<Int64>?]

    /// 0.229 rev/min per velocity unit, 4096 ticks per revolution.
    static let ticksPerSecondPerVelocityUnit = 0.229 * 4096.0 / 60.0

    public init(model: DynamixelModel, config: SimulatedServoConfig,
                timeConstantSeconds: Double = 0.05, nowNanos: UInt64 = MonotonicClock.nowNanos()) {
        self.model = model
        self.timeConstantSeconds = timeConstantSeconds
        addr = Addresses(model)
        var map = [Int](repeating: -1, count: model.memorySize)
        for (i, r) in model.registers.enumerated() {
            for b in Int(r.address)..<(Int(r.address) + r.size) { map[b] = i }
        }
        registerAt = map
        ranges = model.registers.map { SimulatedRegisterRanges.range($0.name, model: model) }
        var mem = model.initialMemory(firmwareVersion: config.firmwareVersion, position: config.initialPosition)
        func set(_ a: Int?, _ v: Int64?) {
            guard let a, let v, map[a] >= 0 else { return }
            Self.store(v, at: a, size: model.registers[map[a]].size, in: &mem)
        }
        set(addr.id, Int64(config.id))
        set(addr.operatingMode, config.operatingMode.map(Int64.init))
        set(addr.minPosition, config.minPositionLimit.map(Int64.init))
        set(addr.maxPosition, config.maxPositionLimit.map(Int64.init))
        set(addr.returnDelay, config.returnDelayTime.map(Int64.init))
        set(addr.secondaryID, config.secondaryID.map(Int64.init))
        memory = mem
        initialMemory = mem
        position = Double(config.initialPosition)
        lastAdvanceNanos = nowNanos
        lastInstructionNanos = nowNanos
        startNanos = nowNanos
        refreshPresentValues(nowNanos: nowNanos)
    }

    // MARK: - Register access

    /// Sets a register as the servo's stored configuration would (no write rules): the bus uses it to
    /// make Baud Rate agree with the line the servo is on.
    func forceEEPROM(_ name: DynamixelRegisterName, _ value: Int64) {
        guard let r = model.register(name) else { return }
        Self.store(value, at: Int(r.address), size: r.size, in: &memory)
    }

    public var id: UInt8 { addr.id.map { memory[$0] } ?? 0 }
    public var secondaryID: UInt8? {
        guard let a = addr.secondaryID else { return nil }
        let v = memory[a]
        return v <= Dynamixel.maxID ? v : nil
    }
    public var statusReturnLevel: UInt8 { addr.statusReturnLevel.map { memory[$0] } ?? 2 }
    /// Microseconds the servo waits before answering (register 9 counts 2 µs units).
    public var returnDelayNanos: UInt64 { UInt64(addr.returnDelay.map { memory[$0] } ?? 0) * 2_000 }
    public var torqueEnabled: Bool { addr.torqueEnable.map { memory[$0] != 0 } ?? false }
    public var operatingMode: UInt8 { addr.operatingMode.map { memory[$0] } ?? 3 }
    public var hardwareErrorStatus: UInt8 { addr.hardwareError.map { memory[$0] } ?? 0 }
    public var hasRegisteredWrite: Bool { registered != nil }

    /// The Homing Offset in force: the register, unless single-turn Position mode ignores it.
    public var effectiveHomingOffset: Int64 {
        let v = value(addr.homingOffset)
        if operatingMode == DynamixelOperatingMode.position.rawValue && abs(v) > 1024 { return 0 }
        return v
    }

    /// The shaft in Present Position (and Goal Position) ticks.
    public var presentPosition: Double { position + Double(effectiveHomingOffset) + turnOffset }

    /// Whole turns that bring Present Position into 0…4095.
    private func foldIntoOneTurn() {
        let p = position.rounded() + Double(effectiveHomingOffset)
        turnOffset = -4096 * (p / 4096).rounded(.down)
    }
    /// The line rate Baud Rate (8) selects; the servo hears nothing else.
    public var baudRateBitsPerSecond: Int? {
        addr.baudRate.flatMap { DynamixelBaudRate.bitsPerSecond(register: memory[$0]) }
    }

    /// Reads a register value (little-endian, sign-extended for 2- and 4-byte registers).
    public func value(at address: Int) -> Int64? {
        guard address >= 0, address < registerAt.count, registerAt[address] >= 0 else { return nil }
        let r = model.registers[registerAt[address]]
        guard Int(r.address) == address else { return nil }
        return Self.load(at: address, size: r.size, signed: r.isSigned, from: memory)
    }

    func value(_ a: Int?) -> Int64 {
        guard let a else { return 0 }
        return value(at: a) ?? 0
    }

    /// The bus saw an instruction packet this servo heard: restarts the watchdog period.
    public func noteInstruction(nowNanos: UInt64) {
        advance(to: nowNanos)
        lastInstructionNanos = nowNanos
    }

    /// Bus Watchdog tripped (register reads −1).
    public var watchdogTripped: Bool { addr.busWatchdog.map { memory[$0] == 0xFF } ?? false }

    /// Status error byte with the hardware alert bit when a hardware error is latched.
    public func statusError(_ code: UInt8) -> UInt8 { code | (hardwareErrorStatus != 0 ? 0x80 : 0) }

    /// READ: copies `length` bytes from `address`. Returns the error code (0 on success).
    public func read(address: Int, length: Int, into out: inout [UInt8], nowNanos: UInt64) -> UInt8 {
        guard address >= 0, length >= 0, address + length <= memory.count else {
            return DynamixelStatusError.Code.dataRange.rawValue
        }
        advance(to: nowNanos)
        out.append(contentsOf: memory[address..<(address + length)])
        return 0
    }

    /// WRITE: validates the whole write before changing anything. Returns the error code.
    public func write(address: Int, data: UnsafeRawBufferPointer, nowNanos: UInt64) -> UInt8 {
        let code = checkWrite(address: address, data: data)
        if code != 0 { return code }
        advance(to: nowNanos)
        apply(address: address, data: data)
        return 0
    }

    /// REG WRITE: checks like WRITE, stores for ACTION.
    public func registerWrite(address: Int, data: UnsafeRawBufferPointer) -> UInt8 {
        let code = checkWrite(address: address, data: data)
        if code != 0 { return code }
        registered = (address, Array(data))
        if let a = addr.registeredInstruction { memory[a] = 1 }
        return 0
    }

    /// ACTION: applies the staged REG WRITE. Returns false (Instruction Error on a unicast) without one.
    public func action(nowNanos: UInt64) -> Bool {
        guard let staged = registered else { return false }
        registered = nil
        if let a = addr.registeredInstruction { memory[a] = 0 }
        advance(to: nowNanos)
        // Re-checked: torque or limits may have changed since REG WRITE.
        let code = staged.data.withUnsafeBytes { checkWrite(address: staged.address, data: $0) }
        if code == 0 { staged.data.withUnsafeBytes { apply(address: staged.address, data: $0) } }
        return true
    }

    /// REBOOT: RAM back to its initial values (torque off, indirect addresses cleared), error cleared.
    public func reboot(nowNanos: UInt64) {
        advance(to: nowNanos)
        for r in model.registers where r.area == .ram {
            for b in Int(r.address)..<(Int(r.address) + r.size) { memory[b] = initialMemory[b] }
        }
        registered = nil
        velocity = 0
        // Like power-up: the servo adopts where it stands as its goal.
        if let g = addr.goalPosition { Self.store(Int64(presentPosition.rounded()), at: g, size: 4, in: &memory) }
        refreshPresentValues(nowNanos: nowNanos)
    }

    /// FACTORY RESET: 0xFF resets everything, 0x01 keeps the ID, 0x02 keeps ID and baud rate.
    public func factoryReset(option: UInt8, nowNanos: UInt64) -> UInt8 {
        guard option == 0xFF || option == 0x01 || option == 0x02 else {
            return DynamixelStatusError.Code.dataRange.rawValue
        }
        let keepID = memory[addr.id ?? 0]
        let keepBaud = memory[addr.baudRate ?? 0]
        let factory = model.initialMemory(firmwareVersion: memory[addr.firmwareVersion ?? 0])
        for r in model.registers where r.area == .eeprom {
            for b in Int(r.address)..<(Int(r.address) + r.size) { memory[b] = factory[b] }
        }
        if option != 0xFF, let a = addr.id { memory[a] = keepID }
        if option == 0x02, let a = addr.baudRate { memory[a] = keepBaud }
        reboot(nowNanos: nowNanos)
        return 0
    }

    /// An outside hand moves the shaft (ALOHA's leader arms are moved by a person with torque off) to
    /// encoder reading `ticks`. `shortWay`: `ticks` names a point on the turn and the hand takes the short
    /// way there, so 4095 → 200 crosses the wrap and Present Position reads on (4296) as the firmware's
    /// continuous torque-off count does. With torque on, the position loop pulls it back towards the
    /// goal afterwards.
    public func moveShaft(to ticks: Double, shortWay: Bool = false, nowNanos: UInt64) {
        advance(to: nowNanos)
        position = shortWay ? ticks + 4096 * ((position - ticks) / 4096).rounded() : ticks
        velocity = 0
        refreshPresentValues(nowNanos: nowNanos)
    }

    /// Latches hardware error bits (fault injection); bits named in Shutdown turn torque off.
    public func raiseHardwareError(_ bits: UInt8, nowNanos: UInt64) {
        guard let a = addr.hardwareError else { return }
        advance(to: nowNanos)
        memory[a] |= bits
        if let s = addr.shutdown, memory[s] & memory[a] != 0, let t = addr.torqueEnable { memory[t] = 0 }
    }

    func checkWrite(address: Int, data: UnsafeRawBufferPointer) -> UInt8 {
        let end = address + data.count
        guard address >= 0, data.count > 0, end <= memory.count else {
            return DynamixelStatusError.Code.dataRange.rawValue
        }
        var b = address
        while b < end {
            let index = registerAt[b]
            guard index >= 0 else { return DynamixelStatusError.Code.access.rawValue }
            let r = model.registers[index]
            guard r.access == .readWrite else { return DynamixelStatusError.Code.access.rawValue }
            guard Int(r.address) == b, b + r.size <= end else { return DynamixelStatusError.Code.dataLength.rawValue }
            if r.area == .eeprom && torqueEnabled { return DynamixelStatusError.Code.access.rawValue }
            if watchdogTripped && [addr.goalPWM, addr.goalCurrent, addr.goalVelocity, addr.goalPosition].contains(b) {
                return DynamixelStatusError.Code.dataRange.rawValue
            }
            let v = Self.load(bytes: data, offset: b - address, size: r.size, signed: r.isSigned)
            if let range = ranges[index], !range.contains(v) { return DynamixelStatusError.Code.dataLimit.rawValue }
            if r.name == .operatingMode,
               !model.operatingModes.contains(where: { Int64($0.rawValue) == v }) {
                return DynamixelStatusError.Code.dataLimit.rawValue
            }
            let code = checkLimit(address: b, value: v, data: data, base: address)
            if code != 0 { return code }
            b += r.size
        }
        return 0
    }

    /// Limits that depend on other registers, taking values from the same write when it sets them too.
    private func checkLimit(address: Int, value v: Int64, data: UnsafeRawBufferPointer, base: Int) -> UInt8 {
        func current(_ a: Int?) -> Int64 {
            guard let a else { return 0 }
            let r = model.registers[registerAt[a]]
            if a >= base && a + r.size <= base + data.count {
                return Self.load(bytes: data, offset: a - base, size: r.size, signed: r.isSigned)
            }
            return value(a)
        }
        let limit = DynamixelStatusError.Code.dataLimit.rawValue
        if address == addr.goalPosition, current(addr.operatingMode) == Int64(DynamixelOperatingMode.position.rawValue) {
            if v < current(addr.minPosition) || v > current(addr.maxPosition) { return limit }
        }
        if address == addr.goalVelocity, addr.velocityLimit != nil, abs(v) > current(addr.velocityLimit) { return limit }
        if address == addr.goalCurrent, addr.currentLimit != nil, abs(v) > current(addr.currentLimit) { return limit }
        if address == addr.goalPWM, addr.pwmLimit != nil, abs(v) > current(addr.pwmLimit) { return limit }
        if address == addr.torqueEnable, v != 0, hardwareErrorStatus & UInt8(truncatingIfNeeded: value(addr.shutdown)) != 0 {
            return DynamixelStatusError.Code.resultFail.rawValue
        }
        return 0
    }

    private func apply(address: Int, data: UnsafeRawBufferPointer) {
        let wasTorque = torqueEnabled
        let wasMode = operatingMode
        let wasPresent = presentPosition
        for i in 0..<data.count { memory[address + i] = data[i] }
        let positionMode = DynamixelOperatingMode.position.rawValue
        if operatingMode == positionMode && ((!wasTorque && torqueEnabled) || wasMode != positionMode) {
            foldIntoOneTurn()
        }
        if !wasTorque && torqueEnabled, let g = addr.goalPosition {
            Self.store(Int64(presentPosition.rounded()), at: g, size: 4, in: &memory)
        }
        if wasTorque && !torqueEnabled { velocity = 0 }
        // A Homing Offset write (or a fold) changes what Present Position reads at once.
        if presentPosition != wasPresent { refreshPresentValues(nowNanos: lastAdvanceNanos) }
    }

    // MARK: - Motion

    /// Integrates the motor from the last call to `nowNanos` in steps of at most 1 ms, tripping the
    /// bus watchdog at its exact deadline on the way.
    public func advance(to nowNanos: UInt64) {
        if let w = addr.busWatchdog, memory[w] > 0, memory[w] != 0xFF {
            let trip = lastInstructionNanos &+ UInt64(memory[w]) * 20_000_000
            if trip < nowNanos {
                integrate(to: max(trip, lastAdvanceNanos))
                memory[w] = 0xFF
                velocity = 0
                if let g = addr.goalPosition { Self.store(Int64(presentPosition.rounded()), at: g, size: 4, in: &memory) }
                if let g = addr.goalVelocity { Self.store(0, at: g, size: 4, in: &memory) }
                if let g = addr.goalCurrent, operatingMode == DynamixelOperatingMode.current.rawValue {
                    Self.store(0, at: g, size: 2, in: &memory)
                }
                if let g = addr.goalPWM, operatingMode == DynamixelOperatingMode.pwm.rawValue {
                    Self.store(0, at: g, size: 2, in: &memory)
                }
            }
        }
        integrate(to: nowNanos)
    }

    private func integrate(to nowNanos: UInt64) {
        guard nowNanos > lastAdvanceNanos else { return }
        var remaining = Double(nowNanos - lastAdvanceNanos) * 1e-9
        lastAdvanceNanos = nowNanos
        let tau = max(timeConstantSeconds, 1e-4)
        let mode = operatingMode
        let velocityLimitUnits = Double(value(addr.velocityLimit))
        let maxSpeedLimit = velocityLimitUnits > 0 ? velocityLimitUnits * Self.ticksPerSecondPerVelocityUnit : 1e9
        let profile = Double(value(addr.profileVelocity))
        let maxSpeed = profile > 0 ? min(profile * Self.ticksPerSecondPerVelocityUnit, maxSpeedLimit) : maxSpeedLimit
        let goal = Double(value(addr.goalPosition)) - Double(effectiveHomingOffset) - turnOffset
        while remaining > 0 {
            let dt = min(remaining, 0.001)
            remaining -= dt
            guard torqueEnabled else {
                velocity = 0
                continue
            }
            switch DynamixelOperatingMode(rawValue: mode) {
            case .position, .extendedPosition, .currentBasedPosition, .none:
                // First-order approach to the goal, speed capped by the profile or velocity limit;
                // the step never overshoots the goal.
                var v = (goal - position) / tau
                v = min(max(v, -maxSpeed), maxSpeed)
                if abs(v * dt) > abs(goal - position) { v = (goal - position) / dt }
                velocity = v
            case .velocity:
                let target = Double(value(addr.goalVelocity)) * Self.ticksPerSecondPerVelocityUnit
                velocity += (target - velocity) * min(dt / tau, 1)
            case .current:
                let limit = Double(max(value(addr.currentLimit), 1))
                let target = Double(value(addr.goalCurrent)) / limit * maxSpeedLimit
                velocity += (target - velocity) * min(dt / tau, 1)
            case .pwm:
                let limit = Double(max(value(addr.pwmLimit), 1))
                let target = Double(value(addr.goalPWM)) / limit * maxSpeedLimit
                velocity += (target - velocity) * min(dt / tau, 1)
            }
            position += velocity * dt
        }
        refreshPresentValues(nowNanos: nowNanos)
    }

    /// Writes the read-only "present" registers from the shaft state.
    private func refreshPresentValues(nowNanos: UInt64) {
        func put(_ a: Int?, _ v: Int64) {
            guard let a else { return }
            Self.store(v, at: a, size: model.registers[registerAt[a]].size, in: &memory)
        }
        let velocityUnits = velocity / Self.ticksPerSecondPerVelocityUnit
        let goal = Double(value(addr.goalPosition))
        let mode = DynamixelOperatingMode(rawValue: operatingMode)
        let isPositionMode = mode == .position || mode == .extendedPosition || mode == .currentBasedPosition
        let present = presentPosition
        let error = torqueEnabled && isPositionMode ? goal - present : 0
        // Effort grows with what the controller is fighting (position or velocity error, or the
        // commanded current/PWM); clamp to what the model can report.
        let currentLimit = addr.currentLimit != nil ? value(addr.currentLimit) : 1000
        var effort: Int64 = 0
        if torqueEnabled {
            switch mode {
            case .velocity:
                let target = Double(value(addr.goalVelocity))
                effort = Int64(((target - velocityUnits) * 4).rounded())
            case .current: effort = value(addr.goalCurrent)
            case .pwm: effort = value(addr.goalPWM)
            default: effort = Int64((error * 2).rounded())
            }
        }
        if operatingMode == DynamixelOperatingMode.currentBasedPosition.rawValue, addr.goalCurrent != nil {
            let g = abs(value(addr.goalCurrent))
            effort = min(max(effort, -g), g)
        }
        effort = min(max(effort, -currentLimit), currentLimit)
        let pwmLimit = max(value(addr.pwmLimit), 1)
        put(addr.presentPosition, Int64(present.rounded()))
        put(addr.presentVelocity, Int64(velocityUnits.rounded()))
        put(addr.presentCurrent, effort)
        put(addr.presentPWM, min(max(effort, -pwmLimit), pwmLimit))
        put(addr.positionTrajectory, Int64(present.rounded()))
        put(addr.velocityTrajectory, Int64(velocityUnits.rounded()))
        put(addr.realtimeTick, Int64((nowNanos &- startNanos) / 1_000_000 % 32768))
        let threshold = value(addr.movingThreshold)
        let moving = abs(Int64(velocityUnits.rounded())) > threshold
        put(addr.moving, moving ? 1 : 0)
        // Bit 0: arrived (within the moving threshold of the goal); bit 1: profile in progress.
        let inPosition = abs(error) <= Double(max(threshold, 1))
        put(addr.movingStatus, (inPosition ? 1 : 0) | (moving ? 2 : 0))
        put(addr.presentTemperature, 30 + min(abs(effort) / 100, 20))
    }

    // MARK: - Little-endian helpers

    static func store(_ value: Int64, at address: Int, size: Int, in memory: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for i in 0..<size { memory[address + i] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i))) }
    }

    static func load(at address: Int, size: Int, signed: Bool, from memory: [UInt8]) -> Int64 {
        memory.withUnsafeBytes { load(bytes: $0, offset: address, size: size, signed: signed) }
    }

    static func load(bytes: UnsafeRawBufferPointer, offset: Int, size: Int, signed: Bool) -> Int64 {
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        guard signed else { return Int64(v) }
        switch size {
        case 1: return Int64(Int8(truncatingIfNeeded: v))
        case 2: return Int64(Int16(truncatingIfNeeded: v))
        default: return Int64(Int32(truncatingIfNeeded: v))
        }
    }
}
