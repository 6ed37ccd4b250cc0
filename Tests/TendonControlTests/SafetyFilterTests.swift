import Testing
@testable import TendonControl

/// SplitMix64: reproducible inputs for the property-style tests.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private let limits = try! SafetyLimits(minPosition: [-1, -3.1, 0, -0.2], maxPosition: [1, 3.1, 0.05, 2],
                                       maxVelocity: [2, 6, 0.3, 1], maxAcceleration: [10, 40, 2, 50])

@Test(arguments: [1_000_000 as UInt64, 4_000_000, 2_000_000])
func safetyFilterNeverExceedsLimitsUnderRandomRequests(periodNanos: UInt64) {
    let n = limits.jointCount
    let filter = SafetyFilter(limits: limits, periodNanos: periodNanos)
    let dt = filter.dt
    var rng = SeededRandom(state: periodNanos)
    var previous = [0.0, 0.0, 0.025, 0.0]
    previous.withUnsafeBufferPointer { filter.reset(at: $0) }
    var velocity = [Double](repeating: 0, count: n)
    var request = previous
    var out = [Double](repeating: 0, count: n)
    var nanRequests: UInt64 = 0
    var limitContacts = 0
    for step in 0..<30_000 {
        // Piecewise-constant targets (so joints reach full speed), well beyond the limits, sometimes
        // noisy ramps, sometimes NaN/Inf.
        if step % Int.random(in: 20...400, using: &rng) == 0 {
            for j in 0..<n {
                let span = limits.maxPosition[j] - limits.minPosition[j]
                request[j] = Double.random(in: (limits.minPosition[j] - span)...(limits.maxPosition[j] + span),
                                           using: &rng)
            }
        }
        var sent = request
        if Int.random(in: 0..<200, using: &rng) == 0 {
            sent[Int.random(in: 0..<n, using: &rng)] = [Double.nan, .infinity, -.infinity].randomElement(using: &rng)!
            nanRequests += 1
        }
        sent.withUnsafeBufferPointer { r in out.withUnsafeMutableBufferPointer { filter.apply(request: r, into: $0) } }
        for j in 0..<n {
            let v = (out[j] - previous[j]) / dt
            let tolerance = 1e-9
            #expect(out[j].isFinite)
            #expect(out[j] >= limits.minPosition[j] - tolerance && out[j] <= limits.maxPosition[j] + tolerance,
                    "joint \(j) step \(step) position \(out[j])")
            #expect(abs(v) <= limits.maxVelocity[j] * (1 + 1e-9) + tolerance, "joint \(j) step \(step) v \(v)")
            let a = (v - velocity[j]) / dt
            #expect(abs(a) <= limits.maxAcceleration[j] * (1 + 1e-6) + 1e-6, "joint \(j) step \(step) a \(a)")
            if abs(out[j] - limits.maxPosition[j]) < 1e-6 || abs(out[j] - limits.minPosition[j]) < 1e-6 {
                limitContacts += 1
            }
            velocity[j] = v
        }
        previous = out
    }
    #expect(filter.rejectedRequests == nanRequests)
    #expect(nanRequests > 50)
    // The test must actually drive joints into their limits to mean anything.
    #expect(limitContacts > 1000)
}

@Test func nanRequestHoldsThePreviousCommandAtRest() {
    let filter = SafetyFilter(limits: limits, periodNanos: 1_000_000)
    let start = [0.5, -2.0, 0.01, 1.0]
    start.withUnsafeBufferPointer { filter.reset(at: $0) }
    var out = [Double](repeating: 0, count: 4)
    for bad in [Double.nan, .infinity, -.infinity] {
        let request = [0.9, bad, 0.0, 1.5]  // the finite values are not trusted either
        request.withUnsafeBufferPointer { r in out.withUnsafeMutableBufferPointer { filter.apply(request: r, into: $0) } }
        #expect(out == start)
    }
    #expect(filter.rejectedRequests == 3)
}

@Test func stepRequestConvergesWithoutOvershootAndBrakesIntoTheLimit() {
    let one = try! SafetyLimits(minPosition: [-1], maxPosition: [1], maxVelocity: [2], maxAcceleration: [10])
    let filter = SafetyFilter(limits: one, periodNanos: 1_000_000)
    [-1.0].withUnsafeBufferPointer { filter.reset(at: $0) }
    var out = [0.0]
    var highest = -Double.infinity
    // Target 0.5 from rest at -1: trapezoid at 10 rad/s², 2 rad/s needs about 0.95 s.
    for _ in 0..<2000 {
        [0.5].withUnsafeBufferPointer { r in out.withUnsafeMutableBufferPointer { filter.apply(request: r, into: $0) } }
        highest = max(highest, out[0])
    }
    #expect(abs(out[0] - 0.5) < 1e-9)
    #expect(highest <= 0.5 + 1e-9)
    // Now ask far past +1 at full speed: it must reach the limit and stop there, never beyond.
    var steps = 0
    while out[0] < 1 - 1e-12 && steps < 5000 {
        [50.0].withUnsafeBufferPointer { r in out.withUnsafeMutableBufferPointer { filter.apply(request: r, into: $0) } }
        #expect(out[0] <= 1)
        steps += 1
    }
    #expect(abs(out[0] - 1) < 1e-9)
    #expect(abs(filter.previousVelocity(0)) < 0.02)  // arrived braked, not slammed
}

@Test func jointOutsideItsRangeIsBroughtBackWithoutAJump() {
    let one = try! SafetyLimits(minPosition: [-1], maxPosition: [1], maxVelocity: [1], maxAcceleration: [5])
    let filter = SafetyFilter(limits: one, periodNanos: 1_000_000)
    [1.3].withUnsafeBufferPointer { filter.reset(at: $0) }
    var out = [0.0]
    var previous = 1.3
    for _ in 0..<2000 {
        [2.0].withUnsafeBufferPointer { r in out.withUnsafeMutableBufferPointer { filter.apply(request: r, into: $0) } }
        #expect(out[0] <= previous + 1e-12)  // never further out
        #expect(previous - out[0] <= 1 * 0.001 + 1e-12)
        previous = out[0]
    }
    #expect(abs(out[0] - 1) < 1e-9)
}

@Test func limitsRejectInconsistentConfiguration() {
    #expect(throws: SafetyConfigError.self) {
        try SafetyLimits(minPosition: [0, 0], maxPosition: [1], maxVelocity: [1, 1], maxAcceleration: [1, 1])
    }
    #expect(throws: SafetyConfigError.self) {
        try SafetyLimits(minPosition: [1], maxPosition: [0], maxVelocity: [1], maxAcceleration: [1])
    }
    #expect(throws: SafetyConfigError.self) {
        try SafetyLimits(minPosition: [0], maxPosition: [1], maxVelocity: [0], maxAcceleration: [1])
    }
}
