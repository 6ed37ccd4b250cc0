// Lock-free publication of fixed-width vectors of doubles, one producer (the real-time thread), any
// number of readers; the same sequence-lock scheme as StateRing, for data the state sample does not
// carry (a teleoperation cycle's velocities, efforts and leader command, for the recorder).
import Synchronization

public final class SampleRing: @unchecked Sendable {
    public let width: Int
    public let capacity: Int
    private let wordsPerSlot: Int
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let published = Atomic<UInt64>(0)

    // Slot: [sequence, timestamp, values × width]; sequence 2k−1 while sample k−1 is written, 2k after.
    public init(width: Int, capacity: Int) {
        self.width = width
        self.capacity = max(capacity, 2)
        wordsPerSlot = 2 + width
        let total = self.capacity * wordsPerSlot
        words = .allocate(capacity: total)
        for k in 0..<total { (words + k).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: capacity * wordsPerSlot)
        words.deallocate()
    }

    public var publishedCount: UInt64 { published.load(ordering: .acquiring) }

    /// Producer only; `values.count` must be `width`. Does not allocate.
    public func publish(timestampNanos: UInt64, values: UnsafeBufferPointer<Double>) {
        let index = published.load(ordering: .relaxed)
        let slot = words + Int(index % UInt64(capacity)) * wordsPerSlot
        slot[0].store(2 &* (index &+ 1) &- 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        slot[1].store(timestampNanos, ordering: .relaxed)
        for k in 0..<width { slot[2 + k].store(values[k].bitPattern, ordering: .relaxed) }
        slot[0].store(2 &* (index &+ 1), ordering: .releasing)
        published.store(index &+ 1, ordering: .releasing)
    }

    /// Copies sample `index` (nil if not yet published or already overwritten). Any thread.
    public func read(index: UInt64, into values: UnsafeMutableBufferPointer<Double>) -> UInt64? {
        guard index < published.load(ordering: .acquiring) else { return nil }
        let slot = words + Int(index % UInt64(capacity)) * wordsPerSlot
        let expected = 2 &* (index &+ 1)
        guard slot[0].load(ordering: .acquiring) == expected else { return nil }
        let timestamp = slot[1].load(ordering: .relaxed)
        for k in 0..<width { values[k] = Double(bitPattern: slot[2 + k].load(ordering: .relaxed)) }
        atomicMemoryFence(ordering: .acquiring)
        guard slot[0].load(ordering: .relaxed) == expected else { return nil }
        return timestamp
    }

    /// The newest complete sample: its index, timestamp and values.
    public func latest() -> (index: UInt64, timestampNanos: UInt64, values: [Double])? {
        var values = [Double](repeating: 0, count: width)
        var count = publishedCount
        while count > 0 {
            let t = values.withUnsafeMutableBufferPointer { read(index: count - 1, into: $0) }
            if let t { return (count - 1, t, values) }
            let now = publishedCount
            if now == count { return nil }
            count = now
        }
        return nil
    }
}
