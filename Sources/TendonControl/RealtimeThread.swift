// A dedicated pthread (not a Swift Task: the cooperative pool can neither be given SCHED_FIFO nor be
// trusted to wake on time) that runs one `RealtimeCycle` at a fixed period on absolute deadlines.
#if canImport(Glibc)
import Glibc
#endif
import CTendonSupport
import Synchronization
import TendonHardware

/// The work done once per period on the real-time thread. Implementations must not allocate, lock or log.
public protocol RealtimeCycle: AnyObject {
    /// Called once per period with the actual wake-up time (CLOCK_MONOTONIC ns).
    func runCycle(nowNanos: UInt64)
}

public struct RealtimeConfig: Sendable {
    public var periodNanos: UInt64
    /// SCHED_FIFO priority (1...99) used when CAP_SYS_NICE is held.
    public var priority: Int32
    /// CPU to pin the thread to; nil leaves the affinity alone.
    public var cpu: Int?
    /// mlockall(MCL_CURRENT|MCL_FUTURE) when CAP_IPC_LOCK is held. Process-wide and never undone here.
    public var lockMemory: Bool
    /// Stack touched once at start so the cycle never takes a page fault on its own stack.
    public var prefaultStackBytes: Int
    public var stackSizeBytes: Int
    /// Hold /dev/cpu_dma_latency at 0 while running (as cyclictest does by default).
    public var holdCPUsAwake: Bool

    public init(periodNanos: UInt64, priority: Int32 = 80, cpu: Int? = 1, lockMemory: Bool = true,
                prefaultStackBytes: Int = 128 * 1024, stackSizeBytes: Int = 1 << 20, holdCPUsAwake: Bool = true) {
        self.holdCPUsAwake = holdCPUsAwake
        self.periodNanos = periodNanos
        self.priority = priority
        self.cpu = cpu
        self.lockMemory = lockMemory
        self.prefaultStackBytes = prefaultStackBytes
        self.stackSizeBytes = stackSizeBytes
    }
}

public enum SchedulingPolicy: String, Sendable, Codable {
    case fifo = "SCHED_FIFO"
    case other = "SCHED_OTHER"
}

public struct RealtimeReport: Sendable, Codable {
    public var periodMicros: Double
    public var cycles: UInt64
    /// Cycles that ended after the next deadline.
    public var overruns: UInt64
    /// Periods skipped because of those overruns (≥ overruns).
    public var missedPeriods: UInt64
    public var wakeLatency: LatencySummary
    /// Wake-up latency histogram (non-empty buckets).
    public var wakeHistogram: [LatencyBucket]
    public var cycleDuration: LatencySummary
    public var policy: SchedulingPolicy
    public var priority: Int32
    /// The CPU asked for and the one the thread ran on at start (-1 when unknown).
    public var requestedCPU: Int?
    public var cpu: Int
    public var memoryLocked: Bool
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case periodMicros = "period_us", cycles, overruns, missedPeriods = "missed_periods",
             wakeLatency = "wake_latency", wakeHistogram = "wake_histogram", cycleDuration = "cycle_duration", policy, priority,
             requestedCPU = "requested_cpu", cpu, memoryLocked = "mlock", warnings
    }
}

public struct RealtimeThreadError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// State shared between the owner and the RT thread. Plain fields are written by the RT thread only
/// and read by the owner after `pthread_join` (or after the `phase` release store for setup fields).
final class RealtimeShared: @unchecked Sendable {
    let config: RealtimeConfig
    let cycle: any RealtimeCycle
    let useFIFO: Bool
    let stop = Atomic<Bool>(false)
    /// 0 starting, 1 running (setup fields valid).
    let phase = Atomic<Int>(0)
    let cyclesDone = Atomic<UInt64>(0)
    let wake = LatencyHistogram()
    let duration = LatencyHistogram()
    var overruns: UInt64 = 0
    var missedPeriods: UInt64 = 0
    var policy: SchedulingPolicy = .other
    var priority: Int32 = 0
    var cpu: Int = -1
    var pinError: Int32 = 0

    init(config: RealtimeConfig, cycle: any RealtimeCycle, useFIFO: Bool) {
        self.config = config
        self.cycle = cycle
        self.useFIFO = useFIFO
    }
}

public final class RealtimeThread: @unchecked Sendable {
    public let config: RealtimeConfig
    private var shared: RealtimeShared?
    private var thread: pthread_t = 0
    private var warnings: [String] = []
    private var memoryLocked = false
    /// Open /dev/cpu_dma_latency holding a 0 µs request, or -1.
    private var dmaLatencyFD: Int32 = -1

    public init(config: RealtimeConfig) {
        self.config = config
    }

    /// Cycles completed so far (readable from any thread while running).
    public var cyclesCompleted: UInt64 { shared?.cyclesDone.load(ordering: .relaxed) ?? 0 }

    /// Sets up privileges, starts the thread and waits for its setup. Returns warnings for the caller to
    /// log (missing capabilities, pinning failures); throws only when no thread could be started.
    /// `capabilities` is injectable so the fallback path can be exercised with full privileges.
    @discardableResult
    public func start(_ cycle: any RealtimeCycle,
                      capabilities: ProcessCapabilities = .current()) throws(RealtimeThreadError) -> [String] {
        guard shared == nil else { throw RealtimeThreadError(description: "real-time thread already started") }
        guard config.periodNanos >= 10_000 else {
            throw RealtimeThreadError(description: "period must be at least 10 µs, got \(config.periodNanos) ns")
        }
        var warnings: [String] = []
        if !capabilities.sysNice {
            warnings.append("CAP_SYS_NICE not in the effective capability set: real-time thread runs with "
                            + "SCHED_OTHER (grant it with `setcap cap_sys_nice,cap_ipc_lock+ep` or "
                            + "AmbientCapabilities in the systemd unit)")
        }
        if config.lockMemory {
            if !capabilities.ipcLock {
                warnings.append("CAP_IPC_LOCK not in the effective capability set: memory not locked, "
                                + "page faults may delay the real-time thread")
            } else if mlockall(MCL_CURRENT | MCL_FUTURE) != 0 {
                warnings.append("mlockall failed (errno \(errno)): memory not locked")
            } else {
                memoryLocked = true
            }
        }

        var useFIFO = capabilities.sysNice
        var created = false
        while !created {
            let shared = RealtimeShared(config: config, cycle: cycle, useFIFO: useFIFO)
            let rc = Self.create(shared, fifo: useFIFO, thread: &thread)
            if rc == 0 {
                self.shared = shared
                created = true
            } else if useFIFO {
                // Capabilities can be present while the RT budget is not (cgroup cpu.rt_runtime_us = 0).
                warnings.append("pthread_create with SCHED_FIFO priority \(config.priority) failed "
                                + "(errno \(rc)): falling back to SCHED_OTHER")
                useFIFO = false
            } else {
                throw RealtimeThreadError(description: "pthread_create failed (errno \(rc))")
            }
        }
        guard let shared else { throw RealtimeThreadError(description: "real-time thread missing") }
        while shared.phase.load(ordering: .acquiring) == 0 { usleep(200) }
        if let cpu = config.cpu {
            if shared.pinError != 0 {
                warnings.append("could not pin the real-time thread to CPU \(cpu) (errno \(shared.pinError))")
            }
        }
        if useFIFO && shared.policy != .fifo {
            warnings.append("asked for SCHED_FIFO but the thread runs with \(shared.policy.rawValue)")
        }
        if config.holdCPUsAwake {
            // As cyclictest does: a PM QoS request of 0 µs keeps the CPUs out of deep idle states, whose
            // exit latency (tens of µs, more in a VM) would otherwise land on every wake-up. Held while
            // the file stays open.
            let fd = open("/dev/cpu_dma_latency", O_WRONLY)
            var zero: Int32 = 0
            if fd >= 0 && Glibc.write(fd, &zero, 4) == 4 {
                dmaLatencyFD = fd
            } else {
                if fd >= 0 { close(fd) }
                warnings.append("cannot hold /dev/cpu_dma_latency at 0 (errno \(errno)): deep CPU idle states may add wake-up latency")
            }
        }
        self.warnings = warnings
        return warnings
    }

    private static func create(_ shared: RealtimeShared, fifo: Bool, thread: inout pthread_t) -> Int32 {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, max(shared.config.stackSizeBytes, 256 * 1024))
        if fifo {
            pthread_attr_setinheritsched(&attr, Int32(PTHREAD_EXPLICIT_SCHED))
            pthread_attr_setschedpolicy(&attr, SCHED_FIFO)
            var param = sched_param()
            param.sched_priority = shared.config.priority
            pthread_attr_setschedparam(&attr, &param)
        }
        let context = Unmanaged.passRetained(shared).toOpaque()
        let rc = pthread_create(&thread, &attr, { raw in
            guard let raw else { return nil }
            let shared = Unmanaged<RealtimeShared>.fromOpaque(raw).takeRetainedValue()
            RealtimeThread.body(shared)
            return nil
        }, context)
        if rc != 0 { Unmanaged<RealtimeShared>.fromOpaque(context).release() }
        return rc
    }

    /// Asks the thread to stop, joins it and returns the report. Safe to call more than once.
    public func stop() -> RealtimeReport? {
        guard let shared else { return nil }
        shared.stop.store(true, ordering: .releasing)
        pthread_join(thread, nil)
        self.shared = nil
        if dmaLatencyFD >= 0 {
            close(dmaLatencyFD)
            dmaLatencyFD = -1
        }
        return RealtimeReport(
            periodMicros: Double(config.periodNanos) / 1000, cycles: shared.cyclesDone.load(ordering: .relaxed),
            overruns: shared.overruns, missedPeriods: shared.missedPeriods,
            wakeLatency: shared.wake.summary, wakeHistogram: shared.wake.buckets, cycleDuration: shared.duration.summary,
            policy: shared.policy, priority: shared.priority, requestedCPU: config.cpu, cpu: shared.cpu,
            memoryLocked: memoryLocked, warnings: warnings)
    }

    deinit { _ = stop() }

    @inline(never)
    static func prefaultStack(bytes: Int) {
        guard bytes > 0 else { return }
        withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 16) { buffer in
            if let base = buffer.baseAddress { memset(base, 0, bytes) }
        }
    }

    static func body(_ shared: RealtimeShared) {
        let config = shared.config
        if let cpu = config.cpu {
            shared.pinError = tendon_pin_current_thread(Int32(cpu))
        }
        prefaultStack(bytes: config.prefaultStackBytes)
        var policy: Int32 = 0
        var param = sched_param()
        pthread_getschedparam(pthread_self(), &policy, &param)
        shared.policy = policy == SCHED_FIFO ? .fifo : .other
        shared.priority = param.sched_priority
        shared.cpu = Int(tendon_current_cpu())
        shared.phase.store(1, ordering: .releasing)

        let period = config.periodNanos
        let cycle = shared.cycle
        var deadline = MonotonicClock.nowNanos() + period
        var cycles: UInt64 = 0
        while !shared.stop.load(ordering: .relaxed) {
            var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
            let woke = MonotonicClock.nowNanos()
            shared.wake.record(nanos: woke >= deadline ? woke - deadline : 0)
            cycle.runCycle(nowNanos: woke)
            let end = MonotonicClock.nowNanos()
            shared.duration.record(nanos: end - woke)
            cycles += 1
            shared.cyclesDone.store(cycles, ordering: .relaxed)
            deadline += period
            if end >= deadline {
                // Skip the periods already gone: the setpoint is a function of time, so resuming at the
                // next future deadline loses no position, while a burst of catch-up cycles would.
                let missed = (end - deadline) / period + 1
                shared.overruns += 1
                shared.missedPeriods += missed
                deadline += missed * period
            }
        }
    }
}
