// Wake-up latency of our real-time thread with a cycle that does nothing, optionally with a busy thread
// loading another core, for comparison with cyclictest under the same period, priority and CPU.
#if canImport(Glibc)
import Glibc
#endif
import CTendonSupport
import Synchronization

public struct LoopLatencyResult: Sendable, Codable {
    public var report: RealtimeReport
    public var loaded: Bool
}

public enum LoopLatencyBenchmark {
    final class NoOpCycle: RealtimeCycle {
        func runCycle(nowNanos: UInt64) {}
    }

    /// Runs the RT thread for `seconds` and returns its report (wake latency histogram summary inside).
    public static func run(config: RealtimeConfig, seconds: Double,
                           loadCPU: Int? = nil) throws(RealtimeThreadError) -> LoopLatencyResult {
        let load = loadCPU.map { CPULoadGenerator(cpu: $0) }
        load?.start()
        defer { load?.stop() }
        let thread = RealtimeThread(config: config)
        try thread.start(NoOpCycle())
        usleep(UInt32(max(0, seconds) * 1_000_000))
        guard let report = thread.stop() else {
            throw RealtimeThreadError(description: "real-time thread produced no report")
        }
        return LoopLatencyResult(report: report, loaded: loadCPU != nil)
    }
}

/// A thread spinning on arithmetic and memory, pinned to one CPU, for the "loaded" measurements.
public final class CPULoadGenerator: @unchecked Sendable {
    public let cpu: Int
    private let running = Atomic<Bool>(false)
    private var thread: pthread_t = 0
    private var started = false

    public init(cpu: Int) { self.cpu = cpu }

    public func start() {
        guard !started else { return }
        running.store(true, ordering: .releasing)
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let generator = Unmanaged<CPULoadGenerator>.fromOpaque(raw).takeRetainedValue()
            _ = tendon_pin_current_thread(Int32(generator.cpu))
            let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: 1 << 20)  // 8 MiB: misses the caches
            scratch.initialize(repeating: 1, count: 1 << 20)
            var x: UInt64 = 88172645463325252
            while generator.running.load(ordering: .relaxed) {
                for _ in 0..<4096 {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17
                    scratch[Int(x & ((1 << 20) - 1))] &+= x
                }
            }
            scratch.deallocate()
            return nil
        }, context)
        if rc == 0 { started = true } else { Unmanaged<CPULoadGenerator>.fromOpaque(context).release() }
    }

    public func stop() {
        guard started else { return }
        running.store(false, ordering: .releasing)
        pthread_join(thread, nil)
        started = false
    }
}
