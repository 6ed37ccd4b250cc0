import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TendonControl

/// Not a unit test: measures our wake-up latency against cyclictest (same period, priority, CPU and
/// duration; idle and with a busy thread on the other core) and prints one JSON line per case. Runs only
/// with TENDON_LATENCY_BENCH=1 (seconds per case in TENDON_LATENCY_SECONDS, default 10); no timing asserts.
@Test(.enabled(if: ProcessInfo.processInfo.environment["TENDON_LATENCY_BENCH"] == "1"))
func measureLoopLatencyAgainstCyclictest() throws {
    let seconds = Int(ProcessInfo.processInfo.environment["TENDON_LATENCY_SECONDS"] ?? "") ?? 10
    let cpu = 1
    let priority: Int32 = 80
    for periodMicros in [4000, 1000] {
        for loadCPU in [nil, 0] as [Int?] {
            let ours = try LoopLatencyBenchmark.run(
                config: RealtimeConfig(periodNanos: UInt64(periodMicros) * 1000, priority: priority, cpu: cpu),
                seconds: Double(seconds), loadCPU: loadCPU)
            let reference = try CyclictestRunner.run(periodMicros: periodMicros, priority: priority, cpu: cpu,
                                                     seconds: seconds, histogramMaxMicros: 2000, loadCPU: loadCPU)
            let l = ours.report.wakeLatency
            let c = reference.latency
            print("LATENCY period_us=\(periodMicros) loaded=\(loadCPU != nil) policy=\(ours.report.policy.rawValue) "
                  + "cycles=\(ours.report.cycles) overruns=\(ours.report.overruns) "
                  + "ours p50/p99/max=\(l.p50Micros)/\(l.p99Micros)/\(l.maxMicros) "
                  + "cyclictest p50/p99/max=\(c.p50Micros)/\(c.p99Micros)/\(c.maxMicros) n=\(c.count)")
            munlockall()
            #expect(ours.report.cycles > 0)
            #expect(reference.latency.count > 0)
        }
    }
}
