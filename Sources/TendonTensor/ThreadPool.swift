/// A fixed set of persistent worker threads for data-parallel loops (no per-call thread creation).
///
/// API summary
/// - `ThreadPool(threads:)`: `threads` ≥ 1 is the total parallelism including the calling thread
///   (threads − 1 pthreads are started once and live until the pool is released).
/// - `parallelFor(_ count:, _ body: (Range<Int>) -> Void)`: splits 0..<count into at most `threads`
///   contiguous ranges, runs them concurrently (the caller takes the first) and returns when all are done.
///   Calls from different threads are serialised; `body` must not call `parallelFor` on the same pool.
/// - `parallelFor(_ count:, grain:, _ body:)`: range bounds are multiples of `grain` (except the end).
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
private final class PoolState: @unchecked Sendable {
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let submit = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    var generation = 0
    var pending = 0
    var shuttingDown = false
    var job: ((Range<Int>) -> Void)?
    var ranges: [Range<Int>]
    var workerCount = 0

    init(slots: Int) {
        ranges = Array(repeating: 0..<0, count: slots)
        pthread_mutex_init(mutex, nil)
        pthread_mutex_init(submit, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_cond_destroy(done)
        pthread_mutex_destroy(mutex)
        pthread_mutex_destroy(submit)
        mutex.deallocate(); submit.deallocate(); wake.deallocate(); done.deallocate()
    }

    func shutDown() {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
    }

    func run(count: Int, grain: Int, units: Int, parts: Int, _ body: @escaping (Range<Int>) -> Void) {
        pthread_mutex_lock(submit)
        defer { pthread_mutex_unlock(submit) }
        pthread_mutex_lock(mutex)
        for p in ranges.indices {
            let lo = min(count, units * p / parts * grain), hi = min(count, units * (p + 1) / parts * grain)
            ranges[p] = p < parts ? lo..<hi : 0..<0
        }
        job = body
        pending = workerCount
        generation += 1
        pthread_cond_broadcast(wake)
        let mine = ranges[0]
        pthread_mutex_unlock(mutex)

        body(mine)

        pthread_mutex_lock(mutex)
        while pending > 0 { pthread_cond_wait(done, mutex) }
        job = nil
        pthread_mutex_unlock(mutex)
    }

    func workerLoop(index: Int) {
        var seen = 0
        pthread_mutex_lock(mutex)
        while true {
            while generation == seen && !shuttingDown { pthread_cond_wait(wake, mutex) }
            if shuttingDown { break }
            seen = generation
            let range = ranges[index]
            let body = job
            pthread_mutex_unlock(mutex)
            if !range.isEmpty { body?(range) }
            pthread_mutex_lock(mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(done) }
        }
        pthread_mutex_unlock(mutex)
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
