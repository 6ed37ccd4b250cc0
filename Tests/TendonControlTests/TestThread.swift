#if canImport(Glibc)
import Glibc
#endif

/// A plain pthread for test producers and writers. Swift Tasks would share the small cooperative pool
/// with the spinning consumer under test and could starve on a 2-core machine.
final class TestThread: @unchecked Sendable {
    private final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    private var thread: pthread_t = 0

    init(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed in a test: \(rc)")
    }

    func join() { pthread_join(thread, nil) }
}
