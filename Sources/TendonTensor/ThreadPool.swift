/// A fixed set of persistent worker threads for data-parallel loops (no per-call thread creation).
///
/// API summary
/// - `ThreadPool(threads:)`: `threads` ≥ 1 is the total parallelism including the calling thread
///   (threads − 1 pthreads are started once and live until the pool is released).
/// - `parallelFor(_ count:, _ body: (Range<Int>) -> Void)`: splits 0..<count into at most `threads`
///   contiguous ranges, runs them concurrently (the caller takes the first) and returns when all are done.
///   Calls from different threads are serialised; `body` must not call `parallelFor` on the same pool.
/// - `parallelFor(_ count:, grain:, _ body:)`: range bounds are multiples of `grain` (except the end).
///
/// Waking a sleeping thread costs ~40 µs in this VM (futex + IPI through the hypervisor), more than a
/// small projection takes, so idle workers spin for `spinNanos` before sleeping on a condition variable,
/// and the caller spins while the workers finish (then yields). The spin is plain atomic loads: `pause`
/// trips the hypervisor's pause-loop exiting here and made a round trip 6× slower than sleeping.
import CTendonKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let state: PoolState
    private var workers: [pthread_t] = []

    public init(threads: Int) {
        self.threads = max(1, threads)
        state = PoolState(slots: self.threads)
        for index in 1..<self.threads {
            let context = Unmanaged.passRetained(WorkerContext(state: state, index: index)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.state.workerLoop(index: context.index)
                return nil
            }, context)
            if rc == 0 {
                workers.append(thread)
            } else {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                break
            }
        }
        state.workerCount = workers.count
    }

    deinit {
        state.shutDown()
        for thread in workers { pthread_join(thread, nil) }
    }

    /// Threads actually running (workers that failed to start are absent) plus the caller.
    public var activeThreads: Int { workers.count + 1 }

    public func parallelFor(_ count: Int, _ body: (Range<Int>) -> Void) {
        parallelFor(count, grain: 1, body)
    }

    public func parallelFor(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let grain = max(1, grain)
        let units = (count + grain - 1) / grain
        let parts = min(activeThreads, units)
        if parts == 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { escapable in
            state.run(count: count, grain: grain, units: units, parts: parts, escapable)
        }
    }
}

/// Shared between the pool and its workers (workers must not retain the pool itself, or it never dies).
/// `job` and `ranges` are written only while every worker is idle, before `generation` is published with
/// release ordering; workers read them after an acquiring load of `generation`.
private final class PoolState: @unchecked Sendable {
    /// How long an idle worker (or the waiting caller) spins before sleeping (yielding).
    static let spinNanos: UInt64 = 100_000

    let generation = Atomic<Int>(0)
    let pending = Atomic<Int>(0)
    let shuttingDown = Atomic<Bool>(false)
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let submit = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    var sleepers = 0  // guarded by `mutex`
    var job: ((Range<Int>) -> Void)?
    var ranges: [Range<Int>]
    var workerCount = 0

    init(slots: Int) {
        ranges = Array(repeating: 0..<0, count: slots)
        pthread_mutex_init(mutex, nil)
        pthread_mutex_init(submit, nil)
        pthread_cond_init(wake, nil)
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        pthread_mutex_destroy(submit)
        mutex.deallocate(); submit.deallocate(); wake.deallocate()
    }

    func shutDown() {
        pthread_mutex_lock(mutex)
        shuttingDown.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
    }

    func run(count: Int, grain: Int, units: Int, parts: Int, _ body: @escaping (Range<Int>) -> Void) {
        pthread_mutex_lock(submit)
        defer { pthread_mutex_unlock(submit) }
        for p in ranges.indices {
            let lo = min(count, units * p / parts * grain), hi = min(count, units * (p + 1) / parts * grain)
            ranges[p] = p < parts ? lo..<hi : 0..<0
        }
        job = body
        pending.store(workerCount, ordering: .relaxed)
        // Publishing under the mutex pairs with the sleepers' check-then-wait, so no wake-up is lost.
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        if sleepers > 0 { pthread_cond_broadcast(wake) }
        pthread_mutex_unlock(mutex)

        body(ranges[0])

        var spins = 0
        var deadline: UInt64 = 0
        while pending.load(ordering: .acquiring) > 0 {
            spins += 1
            guard spins & 255 == 0 else { continue }
            let now = tk_monotonic_ns()
            if deadline == 0 { deadline = now + Self.spinNanos } else if now > deadline { sched_yield() }
        }
        job = nil
    }

    func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var deadline: UInt64 = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                guard spins & 255 == 0 else { continue }
                let now = tk_monotonic_ns()
                if deadline == 0 { deadline = now + Self.spinNanos } else if now > deadline { break }
            }
            if generation.load(ordering: .acquiring) == seen {
                pthread_mutex_lock(mutex)
                sleepers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
                sleepers -= 1
                pthread_mutex_unlock(mutex)
            }
            if shuttingDown.load(ordering: .acquiring) { return }
            seen = generation.load(ordering: .acquiring)
            let range = ranges[index]
            if !range.isEmpty { job?(range) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerContext {
    let state: PoolState
    let index: Int
    init(state: PoolState, index: Int) {
        self.state = state
        self.index = index
    }
}
