import ArgumentParser
import Foundation
import TendonControl
import TendonHardware
import TendonService

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (not tests): loop wake-up latency next to cyclictest, bus cycle next to wire time.",
        subcommands: [LoopBench.self, BusBench.self, GemmBench.self, ForwardBench.self, ActBench.self])
}

struct BusBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "SYNC WRITE + SYNC READ cycle for one 9-servo bus (simulated, paced at the line rate) vs wire time.")

    @Option(help: "Robot config (YAML).") var robot: String = "Configs/robots/aloha.yaml"
    @Option(help: "Cycles to time.") var iterations: Int = 2000
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let config: RobotConfig
        do { config = try RobotConfig.load(path: robot) } catch { fail(error.description, code: 2) }
        var results: [BusBenchmarkResult] = []
        for fast in [false, true] {
            results.append(try BusBenchmark.run(robot: config, iterations: iterations, fast: fast))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
            return
        }
        print("bus cycle, \(results[0].servos) servos at \(results[0].baudRate) bit/s, \(iterations) cycles, simulated chain on a pty")
        print("variant                        wire µs  median µs  p90 µs  p99 µs  max µs  median/wire  p99/wire  failures")
        for r in results {
            print(String(format: "%-30@ %7.0f  %9.0f  %6.0f  %6.0f  %6.0f  %11.2f  %8.2f  %8d",
                         r.variant as NSString, r.wireMicros, r.medianMicros, r.p90Micros, r.p99Micros, r.maxMicros,
                         r.ratioMedian, r.ratioP99, r.failures))
        }
    }
}

struct LoopBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loop",
        abstract: "Wake-up latency of the real-time thread next to cyclictest (same period, priority, CPU).",
        discussion: """
        Each case runs our thread (SCHED_FIFO when CAP_SYS_NICE is held, mlockall, pinned) with an empty \
        cycle, then cyclictest with the same settings, idle and with a busy thread on another core. The \
        ratio our p99 / cyclictest p99 is the number to watch; absolute values depend on the kernel (no \
        PREEMPT_RT here, a VM: expect millisecond outliers in max).
        """)

    @Option(help: "Robot config (YAML): period from servo_rate_hz, priority and CPU from realtime.")
    var robot: String = "Configs/robots/aloha.yaml"
    @Option(help: "Seconds per case.") var seconds: Int = 10
    @Option(help: "Extra periods to measure (µs), besides the config's.") var period: [Int] = [1000]
    @Option(help: "cyclictest executable.") var cyclictest: String = CyclictestRunner.defaultPath
    @Flag(help: "Print JSON.") var json = false

    struct Row: Codable {
        var periodMicros: Int
        var loaded: Bool
        var ours: LatencySummary
        var oursOverruns: UInt64
        var oursPolicy: String
        var cyclictest: LatencySummary?
        var cyclictestError: String?
        var p99Ratio: Double?
    }

    func run() throws {
        let config: RobotConfig
        do { config = try RobotConfig.load(path: robot) } catch { fail(error.description, code: 2) }
        let cpu = config.realtime.cpu
        let loadCPU = cpu == 0 ? 1 : 0
        var rows: [Row] = []
        for periodMicros in [1_000_000 / config.servoRateHz] + period {
            for loaded in [false, true] {
                let rt = RealtimeConfig(periodNanos: UInt64(periodMicros) * 1000, priority: Int32(config.realtime.priority),
                                        cpu: cpu, lockMemory: config.realtime.lockMemory)
                let ours = try LoopLatencyBenchmark.run(config: rt, seconds: Double(seconds), loadCPU: loaded ? loadCPU : nil)
                var row = Row(periodMicros: periodMicros, loaded: loaded, ours: ours.report.wakeLatency,
                              oursOverruns: ours.report.overruns, oursPolicy: ours.report.policy.rawValue)
                do {
                    let ct = try CyclictestRunner.run(periodMicros: periodMicros, priority: Int32(config.realtime.priority),
                                                      cpu: cpu, seconds: seconds, executable: cyclictest,
                                                      loadCPU: loaded ? loadCPU : nil)
                    row.cyclictest = ct.latency
                    row.p99Ratio = ct.latency.p99Micros > 0 ? ours.report.wakeLatency.p99Micros / ct.latency.p99Micros : nil
                } catch {
                    row.cyclictestError = error.description
                }
                rows.append(row)
                if !json { print(Self.format(row)) }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        }
    }

    static func format(_ r: Row) -> String {
        let ours = String(format: "ours p50/p99/max %5.0f/%5.0f/%6.0f µs (%@, %llu overruns)", r.ours.p50Micros,
                          r.ours.p99Micros, r.ours.maxMicros, r.oursPolicy as NSString, r.oursOverruns)
        let theirs = r.cyclictest.map { String(format: "cyclictest %5.0f/%5.0f/%6.0f µs", $0.p50Micros, $0.p99Micros, $0.maxMicros) }
            ?? "cyclictest: \(r.cyclictestError ?? "n/a")"
        let ratio = r.p99Ratio.map { String(format: "p99 ratio %.2f", $0) } ?? ""
        return String(format: "period %5d µs %@  ", r.periodMicros, (r.loaded ? "loaded" : "idle  ") as NSString)
            + ours + "  " + theirs + "  " + ratio
    }
}
