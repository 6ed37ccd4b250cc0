import Foundation
import TendonControl

/// `tendon run --report FILE.json`. The `loop` object and `exit` are a contract (issue #2): at least
/// `loop.period_us`, `loop.wake_latency_us.{p50,p99,max}`, `loop.overruns`, `loop.cycles` and `exit`.
public struct RunReport: Codable, Sendable {
    public struct Latency: Codable, Sendable {
        public var p50: Double
        public var p99: Double
        public var max: Double
    }

    public struct Loop: Codable, Sendable {
        public var periodMicros: Int
        public var wakeLatencyMicros: Latency
        public var cycleMicros: Latency
        public var overruns: UInt64
        public var missedPeriods: UInt64
        public var cycles: UInt64
        public var schedulingPolicy: String
        public var priority: Int?
        public var cpu: Int?
        public var memoryLocked: Bool
        /// Wake-latency histogram: the non-empty buckets (1 µs wide below 1 ms, 100 µs to 10 ms, then overflow).
        public var wakeLatencyHistogram: [LatencyBucket]
        public var warnings: [String]

        enum CodingKeys: String, CodingKey {
            case periodMicros = "period_us", wakeLatencyMicros = "wake_latency_us", cycleMicros = "cycle_us"
            case overruns, missedPeriods = "missed_periods", cycles
            case schedulingPolicy = "scheduling_policy", priority, cpu, memoryLocked = "memory_locked"
            case wakeLatencyHistogram = "wake_latency_histogram", warnings
        }
    }

    public struct Bus: Codable, Sendable {
        public var device: String
        public var reads: UInt64
        public var writes: UInt64
        public var timeouts: UInt64
        public var corruptPackets: UInt64
        public var retries: UInt64
        public var servoErrors: UInt64
        public var unresponsiveServos: [Int]

        enum CodingKeys: String, CodingKey {
            case device, reads, writes, timeouts, corruptPackets = "corrupt_packets", retries
            case servoErrors = "servo_errors", unresponsiveServos = "unresponsive_servos"
        }
    }

    public var robot: String
    public var policy: String
    public var durationSeconds: Double
    public var controlFrequencyHz: Int
    public var servoRateHz: Int
    public var loop: Loop?
    public var buses: [String: Bus]
    /// Faults in the order they happened, one human line each.
    public var faults: [String]
    /// "ok", or the reason the run stopped early.
    public var exit: String
    public var exitCode: Int32

    enum CodingKeys: String, CodingKey {
        case robot, policy, durationSeconds = "duration_s", controlFrequencyHz = "control_frequency_hz"
        case servoRateHz = "servo_rate_hz", loop, buses, faults, exit, exitCode = "exit_code"
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        // Written whole under a temporary name, then renamed: a reader never sees half a report.
        let temporary = path + ".tmp-\(getpid())"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}
