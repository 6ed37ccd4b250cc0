// Runs rt-tests' cyclictest with our thread's period, priority and CPU, and reads its 1 µs histogram,
// so our numbers have an outside reference measured the same way on the same machine.
import Foundation

public struct CyclictestResult: Sendable, Codable, Equatable {
    public var latency: LatencySummary
    public var overflows: UInt64
}

public struct CyclictestError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

public enum CyclictestRunner {
    public static let defaultPath = "/usr/bin/cyclictest"

    public static func arguments(periodMicros: Int, priority: Int32, cpu: Int?, seconds: Int,
                                 histogramMaxMicros: Int) -> [String] {
        var args = ["-q", "-D\(seconds)", "-i\(periodMicros)", "-h\(histogramMaxMicros)", "-p\(priority)", "-m"]
        if let cpu { args.append("-a\(cpu)") }
        return args
    }

    public static func run(periodMicros: Int, priority: Int32, cpu: Int?, seconds: Int,
                           histogramMaxMicros: Int = 1000, executable: String = defaultPath,
                           loadCPU: Int? = nil) throws(CyclictestError) -> CyclictestResult {
        let load = loadCPU.map { CPULoadGenerator(cpu: $0) }
        load?.start()
        defer { load?.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments(periodMicros: periodMicros, priority: priority, cpu: cpu, seconds: seconds,
                                      histogramMaxMicros: histogramMaxMicros)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            throw CyclictestError(description: "could not start \(executable): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw CyclictestError(description: "cyclictest exited with status \(process.terminationStatus): "
                                  + output.split(separator: "\n").prefix(3).joined(separator: " | "))
        }
        return try parse(output)
    }

    /// Parses `cyclictest -q -h N` output for one thread: lines "BUCKET COUNT" (µs), then "# Total:",
    /// "# Min/Avg/Max Latencies:", "# Histogram Overflows:". Percentiles use the lower bucket edge
    /// like `LatencyHistogram`; samples past the histogram count at the reported maximum.
    public static func parse(_ output: String) throws(CyclictestError) -> CyclictestResult {
        var buckets: [(micros: UInt64, count: UInt64)] = []
        var fields: [String: UInt64] = [:]
        for raw in output.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") {
                let parts = line.dropFirst().split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let key = parts[0].trimmingCharacters(in: .whitespaces)
                let value = parts[1].split(separator: " ").first.flatMap { UInt64($0) }
                if let value { fields[key] = value }
                continue
            }
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count >= 2, let micros = UInt64(columns[0]), let count = UInt64(columns[1]) else { continue }
            buckets.append((micros, count))
        }
        guard !buckets.isEmpty, let maxMicros = fields["Max Latencies"], let minMicros = fields["Min Latencies"],
              let total = fields["Total"] else {
            throw CyclictestError(description: "expected a cyclictest histogram (-h) with # Total and # Min/Max "
                                  + "Latencies lines, found \(buckets.count) histogram lines and keys "
                                  + "\(fields.keys.sorted())")
        }
        let overflows = fields["Histogram Overflows"] ?? 0
        func percentile(_ fraction: Double) -> Double {
            let rank = max(1, UInt64((fraction * Double(total)).rounded(.up)))
            var cumulative: UInt64 = 0
            for bucket in buckets {
                cumulative += bucket.count
                if cumulative >= rank { return Double(bucket.micros) }
            }
            return Double(maxMicros)
        }
        let mean = Double(fields["Avg Latencies"] ?? 0)
        return CyclictestResult(
            latency: LatencySummary(count: total, minMicros: Double(minMicros), meanMicros: mean,
                                    p50Micros: percentile(0.5), p99Micros: percentile(0.99),
                                    maxMicros: Double(maxMicros)),
            overflows: overflows)
    }
}
