import Foundation
import TendonHardware

/// Follows one servo's Present Position while a technician moves it, unwrapping the 0/4095 encoder wrap:
/// a step of more than half a turn between samples is taken as the short way across the wrap, so
/// 3900 → 4095 → 200 is a span of 396 ticks, not 3895.
public struct RangeTracker: Sendable, Equatable {
    public private(set) var lastRaw: Int32?
    /// Unwrapped position: the first sample's ticks plus every step since.
    public private(set) var current = 0
    public private(set) var min = 0
    public private(set) var max = 0

    public init() {}

    public mutating func add(_ ticks: Int32) {
        guard let last = lastRaw else {
            lastRaw = ticks
            current = Int(ticks)
            min = current
            max = current
            return
        }
        var step = Int(ticks) - Int(last)
        if step > 2048 { step -= 4096 } else if step < -2048 { step += 4096 }
        lastRaw = ticks
        current += step
        min = Swift.min(min, current)
        max = Swift.max(max, current)
    }

    public var span: Int { max - min }
    public var hasSamples: Bool { lastRaw != nil }
}

public enum RangeCheck {
    /// Narrower than this (ticks; 32 ≈ 2.8°) the joint was not moved.
    public static let minimumSpanTicks = 32
    /// The homing pose may sit this close outside the recorded extremes (a joint homed at its end stop).
    public static let homeToleranceTicks = 24

    /// The recorded range in the file's single-turn frame (0…4095), or why it is refused. `homeTick` is the
    /// tick at which the servo reads its reference angle.
    public static func express(_ tracker: RangeTracker, homeTick: Int, minimumSpan: Int = minimumSpanTicks) -> Result<ClosedRange<Int>, RangeProblem> {
        guard tracker.hasSamples, tracker.span >= minimumSpan else {
            return .failure(.empty(span: tracker.span, minimum: minimumSpan))
        }
        guard tracker.span <= 4095 else { return .failure(.moreThanOneTurn(span: tracker.span)) }
        // The whole turn k that puts the homing pose inside the unwrapped range.
        let lo = tracker.min - homeToleranceTicks, hi = tracker.max + homeToleranceTicks
        let k = Int((Double(lo - homeTick) / 4096).rounded(.up))
        guard homeTick + 4096 * k <= hi else {
            return .failure(.missesHome(min: tracker.min, max: tracker.max, home: homeTick))
        }
        let a = tracker.min - 4096 * k, b = tracker.max - 4096 * k
        guard a >= 0, b <= 4095 else { return .failure(.crossesWrap(min: a, max: b)) }
        return .success(a...b)
    }
}

public enum RangeProblem: Error, Equatable, CustomStringConvertible {
    case empty(span: Int, minimum: Int)
    case moreThanOneTurn(span: Int)
    case missesHome(min: Int, max: Int, home: Int)
    case crossesWrap(min: Int, max: Int)

    /// The finding without the advice (the wrap shift asks its own question).
    var summary: String {
        switch self {
        case .crossesWrap(let lo, let hi): return "range \(lo)…\(hi) crosses the encoder's 0/4095 wrap, which Position mode cannot drive across"
        default: return description
        }
    }

    public var description: String {
        switch self {
        case .empty(let span, let minimum):
            return "moved only \(span) ticks (at least \(minimum) expected): move the joint through its whole range"
        case .moreThanOneTurn(let span):
            return "moved \(span) ticks, more than one turn: implausible for a joint; record again"
        case .missesHome(let lo, let hi, let home):
            return "range \(lo)…\(hi) does not contain the homing pose (\(home) ticks): run `tendon calibrate homing` again or move the joint through the pose"
        case .crossesWrap(let lo, let hi):
            return "range \(lo)…\(hi) crosses the encoder's 0/4095 wrap, which Position mode cannot drive across: turn the servo horn (or set the servo's Homing Offset register) so the range lies inside one turn, then run homing and ranges again"
        }
    }
}

/// `tendon calibrate ranges`: torque off, sample every servo while the technician moves the joints
/// (live table), then check and store each range. A range across the encoder's wrap is brought into one
/// turn with a confirmed Homing Offset shift (`WrapShift`) rather than refused.
public enum RangeRecording {
    public struct Options {
        /// Stop after this long (nil: on Enter).
        public var seconds: Double?
        /// Stop after this many samples (tests).
        public var maxSamples: Int?
        public var sampleIntervalSeconds: Double
        /// Called before each sample with its index (tests move the simulated shafts here).
        public var beforeSample: ((Int) -> Void)?

        public init(seconds: Double? = nil, maxSamples: Int? = nil, sampleIntervalSeconds: Double = 0.02,
                    beforeSample: ((Int) -> Void)? = nil) {
            self.seconds = seconds
            self.maxSamples = maxSamples
            self.sampleIntervalSeconds = sampleIntervalSeconds
            self.beforeSample = beforeSample
        }
    }

    @discardableResult
    public static func run(ports: CalibrationPorts, buses: [BusConfig], console: CalibrationConsole,
                           options: Options, now: Date = Date()) throws(CalibrationError) -> [String: [ServoCalibration]] {
        let robot = ports.robot
        var file = try CalibrationStore.load(robot: robot, now: now)
        for config in buses {
            for servo in config.servos where file.servo(bus: config.name, id: servo.id) == nil {
                throw CalibrationError("\(config.label(servo)) has no homing yet; run `tendon calibrate homing --robot \(robot.file)` first")
            }
        }
        if options.seconds == nil && options.maxSamples == nil && (console.isScripted || console.assumeYes) {
            throw CalibrationError("scripted ranges need --seconds (there is no Enter to finish on)")
        }
        let opened = try OpenedBuses(ports: ports, buses: buses)
        defer { opened.close() }
        try opened.torqueOffAll()
        console.line("Torque is off. Move every joint through its whole range of motion, one at a time"
                     + (options.seconds.map { String(format: "; recording for %.0f s.", $0) } ?? "; press Enter to finish."))
        var trackers = buses.map { [RangeTracker](repeating: RangeTracker(), count: $0.servos.count) }
        let started = MonotonicClock.nowNanos()
        var drawnLines = 0
        var lastDraw: UInt64 = 0
        var sample = 0
        while true {
            options.beforeSample?(sample)
            let ticks = try opened.readTicks()
            for b in trackers.indices { for s in trackers[b].indices { trackers[b][s].add(ticks[b][s]) } }
            sample += 1
            let nowNanos = MonotonicClock.nowNanos()
            if console.interactiveOutput && nowNanos - lastDraw > 100_000_000 {
                let table = liveTable(buses: buses, trackers: trackers)
                if drawnLines > 0 { console.write("\u{1B}[\(drawnLines)A") }
                console.write(table.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                    .map { "\u{1B}[2K" + $0 }.joined(separator: "\n") + "\n")
                drawnLines = table.filter { $0 == "\n" }.count
                lastDraw = nowNanos
            }
            let elapsed = Double(nowNanos - started) / 1e9
            if let s = options.seconds, elapsed >= s { break }
            if let m = options.maxSamples, sample >= m { break }
            if console.enterPressed() { break }
            if console.inputEnded && options.seconds == nil && options.maxSamples == nil {
                throw CalibrationError("standard input ended before Enter finished the recording; pass --seconds to record for a fixed time")
            }
            usleep(UInt32(options.sampleIntervalSeconds * 1e6))
        }
        if !console.interactiveOutput { console.write(liveTable(buses: buses, trackers: trackers)) }

        var problems: [String] = []
        var recorded: [String: [ServoCalibration]] = [:]
        var shifts: [PendingShift] = []
        for (b, config) in buses.enumerated() {
            for (s, servo) in config.servos.enumerated() {
                guard var calibration = file.servo(bus: config.name, id: servo.id) else { continue }
                let reference = ReferencePose.angle(joint: servo.joint, role: config.role, robot: robot)
                let home = Int(calibration.ticks(radians: reference))
                switch RangeCheck.express(trackers[b][s], homeTick: home) {
                case .success(let range):
                    calibration.rangeMin = range.lowerBound
                    calibration.rangeMax = range.upperBound
                    recorded[config.name, default: []].append(calibration)
                case .failure(let problem):
                    if case .crossesWrap(let lo, let hi) = problem,
                       var pending = try pendingShift(bus: opened.clients[b], config: config, servo: servo,
                                                      calibration: calibration, min: lo, max: hi) {
                        pending.busIndex = b
                        shifts.append(pending)
                    } else {
                        problems.append("\(config.label(servo)): \(problem)")
                    }
                }
            }
        }
        if !problems.isEmpty {
            throw CalibrationError("ranges not stored: " + problems.joined(separator: "; "))
        }
        // Every EEPROM change is agreed before any is made: a "no" leaves servos and file as they were.
        for p in shifts where !(try console.confirm(p.question, key: "wrap-shift")) {
            throw CalibrationError("ranges not stored (not confirmed; no servo was changed): \(p.config.label(p.servo)): \(p.problem)")
        }
        var failure: CalibrationError?
        for p in shifts {
            do {
                let calibration = try apply(p, bus: opened.clients[p.busIndex], console: console)
                recorded[p.config.name, default: []].append(calibration)
            } catch {
                failure = error
                break
            }
        }
        // After a failed register write the servos already shifted are stored with their new frame (their
        // old entries would now be wrong); the others keep theirs.
        if let failure {
            for p in shifts {
                guard let c = recorded[p.config.name]?.first(where: { $0.id == p.servo.id }) else { continue }
                CalibrationStore.set(c, bus: p.config.name, in: &file)
            }
            try CalibrationStore.save(file, now: now)
            throw CalibrationError("ranges not stored: \(failure.description)")
        }
        for (bus, list) in recorded { for c in list { CalibrationStore.set(c, bus: bus, in: &file) } }
        try CalibrationStore.save(file, now: now)
        console.line("wrote \(file.path)")
        return recorded
    }

    /// A range across the wrap that a Homing Offset shift can bring into one turn.
    struct PendingShift {
        var busIndex: Int
        var config: BusConfig
        var servo: ServoConfig
        var model: DynamixelModel
        var calibration: ServoCalibration
        var plan: WrapShift
        var oldLimits: ClosedRange<Int>
        var newLimits: ClosedRange<Int>
        var problem: RangeProblem

        var question: String {
            var q = "\(config.label(servo)): \(problem.summary). Shift it by \(plan.shift) ticks with the servo's Homing Offset register (\(plan.oldRegister) → \(plan.newRegister), EEPROM) so it is stored as \(plan.range.lowerBound)…\(plan.range.upperBound) (homing_offset \(calibration.homingOffset) → \(plan.homingOffset); joint angles unchanged)"
            if newLimits != oldLimits {
                q += ", and set Min/Max Position Limit \(oldLimits.lowerBound)…\(oldLimits.upperBound) → \(newLimits.lowerBound)…\(newLimits.upperBound) (EEPROM; they are in the shifted frame\(oldLimits.lowerBound + plan.shift <= plan.range.lowerBound && oldLimits.upperBound + plan.shift >= plan.range.upperBound ? "" : " and would no longer contain the range"))"
            }
            return q + "?"
        }
    }

    static func pendingShift(bus: DynamixelBus, config: BusConfig, servo: ServoConfig, calibration: ServoCalibration,
                             min lo: Int, max hi: Int) throws(CalibrationError) -> PendingShift? {
        guard let model = DynamixelModel.named(servo.model) else { return nil }
        let register: Int64, minLimit: Int64, maxLimit: Int64
        do {
            register = try bus.readRegister(servo.id, .homingOffset, model: model)
            minLimit = try bus.readRegister(servo.id, .minPositionLimit, model: model)
            maxLimit = try bus.readRegister(servo.id, .maxPositionLimit, model: model)
        } catch {
            throw CalibrationError("\(config.label(servo)): reading Homing Offset and position limits failed: \(error)")
        }
        guard let plan = WrapShift.plan(min: lo, max: hi, homingOffset: calibration.homingOffset,
                                        register: Int(register)) else { return nil }
        let old = Int(minLimit)...Swift.max(Int(minLimit), Int(maxLimit))
        return PendingShift(busIndex: 0, config: config, servo: servo, model: model, calibration: calibration, plan: plan,
                            oldLimits: old, newLimits: plan.limits(oldMin: old.lowerBound, oldMax: old.upperBound),
                            problem: .crossesWrap(min: lo, max: hi))
    }

    /// Writes the register (and limits), reads back, and returns the calibration in the new frame.
    static func apply(_ p: PendingShift, bus: DynamixelBus, console: CalibrationConsole) throws(CalibrationError) -> ServoCalibration {
        let label = p.config.label(p.servo), id = p.servo.id
        let before: Int32, after: Int32, register: Int64
        do {
            // Torque is already off (EEPROM needs it); turned off again in case something turned it on.
            try bus.torqueOff(id)
            before = try bus.presentTicks(id)
            try bus.writeRegister(id, .homingOffset, Int64(p.plan.newRegister), model: p.model)
            if p.newLimits != p.oldLimits {
                try bus.writeRegister(id, .minPositionLimit, Int64(p.newLimits.lowerBound), model: p.model)
                try bus.writeRegister(id, .maxPositionLimit, Int64(p.newLimits.upperBound), model: p.model)
            }
            register = try bus.readRegister(id, .homingOffset, model: p.model)
            after = try bus.presentTicks(id)
        } catch {
            throw CalibrationError("\(label): writing Homing Offset \(p.plan.newRegister) failed: \(error)")
        }
        guard register == Int64(p.plan.newRegister), p.plan.confirms(before: before, after: after) else {
            throw CalibrationError("\(label): Homing Offset reads \(register) and Present Position \(before) → \(after) after writing \(p.plan.newRegister) (expected a shift of \(p.plan.shift)); the servo did not take the offset: check its firmware and operating mode")
        }
        console.line("\(label): Homing Offset \(p.plan.oldRegister) → \(p.plan.newRegister), Present Position \(before) → \(after) (verified); range \(p.plan.range.lowerBound)…\(p.plan.range.upperBound), homing_offset \(p.calibration.homingOffset) → \(p.plan.homingOffset)")
        var c = p.calibration
        c.homingOffset = p.plan.homingOffset
        c.rangeMin = p.plan.range.lowerBound
        c.rangeMax = p.plan.range.upperBound
        return c
    }

    static func liveTable(buses: [BusConfig], trackers: [[RangeTracker]]) -> String {
        var rows = [["bus", "id", "joint", "now", "min", "max", "span"]]
        for (b, config) in buses.enumerated() {
            for (s, servo) in config.servos.enumerated() {
                let t = trackers[b][s]
                rows.append([config.name, "\(servo.id)", servo.joint, "\(t.lastRaw.map { String($0) } ?? "-")",
                             "\(t.min)", "\(t.max)", "\(t.span)"])
            }
        }
        return formatTable(rows)
    }
}
