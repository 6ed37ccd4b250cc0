/// A calibration hook on `Linear.forward`: offline quantization tools (GPTQ's Hessians in TendonTraining)
/// need the input every weight sees on real observations, from the same code that runs on the robot.
///
/// API summary
/// - `LinearInputObserver`: `observe(weight:input:rows:)` receives every f32 input x [rows, in] of a
///   `Linear.forward` made inside `Linear.observing(_:_:)`, before the product, on the calling thread.
/// - `Linear.observing(_:_:)`: runs `body` with the observer installed for this task (a task-local, so
///   nothing global is mutated and concurrent inference elsewhere is unaffected). Calls made from pool
///   worker threads are not seen; the model code calls `Linear.forward` from its own thread (the pool
///   splits work inside it).
///
/// Inference never installs an observer; the check costs one task-local read per call.
public protocol LinearInputObserver: AnyObject, Sendable {
    func observe(weight: Tensor, input: UnsafePointer<Float>, rows: Int)
}

extension Linear {
    @TaskLocal static var observer: (any LinearInputObserver)?

    public static func observing<R>(_ observer: any LinearInputObserver, _ body: () throws -> R) rethrows -> R {
        try $observer.withValue(observer, operation: body)
    }
}
