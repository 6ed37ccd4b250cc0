import ArgumentParser
import Foundation
import TendonHardware
import TendonService

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (not tests): loop wake-up latency next to cyclictest, bus cycle next to wire time.",
        subcommands: [BusBench.self])
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
