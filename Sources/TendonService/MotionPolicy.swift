import Foundation

/// A block of timestamped joint targets, the shape a model chunk will have: absolute monotonic times
/// (ns) and one position vector (radians, 14-D for ALOHA) per time.
public struct WaypointBlock: Sendable, Equatable {
    public var timesNanos: [UInt64]
    public var positions: [[Double]]

    public init(timesNanos: [UInt64], positions: [[Double]]) {
        self.timesNanos = timesNanos
        self.positions = positions
    }
}

/// What `tendon run --policy` can drive without a model. Policies run on an ordinary thread and hand
/// blocks to the real-time loop exactly as inference will: ahead of time, overlapping, latest wins.
public enum MotionPolicyKind: Sendable, Equatable, CustomStringConvertible {
    case hold
    case sine
    case replay(path: String)

    public init(argument: String) throws(PolicyError) {
        switch argument {
        case "hold": self = .hold
        case "sine": self = .sine
        case let s where s.hasPrefix("replay:") && s.count > 7: self = .replay(path: String(s.dropFirst(7)))
        default: throw PolicyError("unknown policy '\(argument)' (expected hold, sine or replay:FILE)")
        }
    }

    public var description: String {
        switch self {
        case .hold: "hold"
        case .sine: "sine"
        case .replay(let path): "replay:\(path)"
        }
    }
}

public struct PolicyError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Small sinusoids around the start pose. The `1 − cos` form starts at zero offset and zero velocity, so
/// the motion begins without a step; amplitudes stay inside the joint limits.
public struct SinePolicy: Sendable {
    public var start: [Double]
    public var amplitudes: [Double]
    public var frequencyHz: Double
    public var controlFrequencyHz: Int
    public var chunkSize: Int

    public init(start: [Double], limits: [(min: Double, max: Double)], controlFrequencyHz: Int,
                chunkSize: Int = 50, amplitude: Double = 0.15, frequencyHz: Double = 0.25) {
        self.start = start
        self.frequencyHz = frequencyHz
        self.controlFrequencyHz = controlFrequencyHz
        self.chunkSize = chunkSize
        // Peak offset is 2A (1 − cos reaches 2); keep start + 2A inside the upper limit, else go downwards.
        self.amplitudes = zip(start, limits).map { position, limit in
            let up = (limit.max - position) / 2, down = (position - limit.min) / 2
            return up >= down ? min(amplitude, max(up, 0)) : -min(amplitude, max(down, 0))
        }
    }

    public func position(atSeconds t: Double) -> [Double] {
        let phase = 1 - cos(2 * .pi * frequencyHz * max(t, 0))
        return zip(start, amplitudes).map { $0 + $1 * phase }
    }

    /// The chunk that begins at `originNanos + stepIndex/fps`.
    public func chunk(originNanos: UInt64, firstStep: Int) -> WaypointBlock {
        let stepNanos = 1_000_000_000 / UInt64(controlFrequencyHz)
        var times: [UInt64] = []
        var positions: [[Double]] = []
        for k in firstStep..<(firstStep + chunkSize) {
            times.append(originNanos + UInt64(k) * stepNanos)
            positions.append(position(atSeconds: Double(k) / Double(controlFrequencyHz)))
        }
        return WaypointBlock(timesNanos: times, positions: positions)
    }
}

/// A recorded joint trajectory: CSV rows `t, q0 … q13` (seconds, radians), an optional header line.
public struct ReplayFile: Sendable, Equatable {
    public var seconds: [Double]
    public var positions: [[Double]]

    public static func load(path: String, joints: Int) throws(PolicyError) -> ReplayFile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw PolicyError("\(path): cannot read replay file (\(error.localizedDescription))")
        }
        return try parse(text, file: path, joints: joints)
    }

    public static func parse(_ text: String, file: String, joints: Int) throws(PolicyError) -> ReplayFile {
        var seconds: [Double] = []
        var positions: [[Double]] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if seconds.isEmpty, positions.isEmpty, Double(fields[0]) == nil { continue }  // header
            guard fields.count == joints + 1 else {
                throw PolicyError("\(file):\(index + 1): expected \(joints + 1) columns (t and \(joints) joints), found \(fields.count)")
            }
            let values = fields.map { Double($0) }
            guard values.allSatisfy({ $0?.isFinite == true }) else {
                throw PolicyError("\(file):\(index + 1): every column must be a finite number")
            }
            let t = values[0]!
            if let last = seconds.last, t <= last {
                throw PolicyError("\(file):\(index + 1): time \(t) s does not increase (previous \(last) s)")
            }
            seconds.append(t)
            positions.append(values.dropFirst().map { $0! })
        }
        guard !seconds.isEmpty else { throw PolicyError("\(file): no rows") }
        return ReplayFile(seconds: seconds, positions: positions)
    }

    /// The whole file as one block starting at `originNanos`, preceded by an approach from `current` slow
    /// enough for the velocity limits (so the first row is reached without the safety filter clipping).
    public func block(originNanos: UInt64, current: [Double], maxVelocities: [Double]) -> WaypointBlock {
        let first = positions[0]
        let approach = zip(zip(first, current), maxVelocities).map { pair, v in abs(pair.0 - pair.1) / (0.5 * v) }
            .max() ?? 0
        let lead = max(approach, 0.5) - seconds[0]
        var times: [UInt64] = [originNanos]
        var rows: [[Double]] = [current]
        for (t, q) in zip(seconds, positions) {
            times.append(originNanos + UInt64((t + lead) * 1e9))
            rows.append(q)
        }
        return WaypointBlock(timesNanos: times, positions: rows)
    }
}
