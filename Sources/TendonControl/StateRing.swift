// Lock-free publication of one state sample per cycle. One producer (the real-time thread); any
// number of readers, which may lose samples the producer has lapped but never see a mixed one.
// Each slot is a sequence lock over atomic words (doubles as bit patterns), so there is no data race
// and a relaxed atomic access on x86 costs a plain load or store.
import Synchronization

public struct StateFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// A fault is latched; the command is being held.
    public static let holding = StateFlags(rawValue: 1 << 0)
    public static let readFault = StateFlags(rawValue: 1 << 1)
    /// Writing stopped because the write path failed.
    public static let writeStopped = StateFlags(rawValue: 1 << 2)
    public static let trajectoryActive = StateFlags(rawValue: 1 << 3)
    /// The setpoint held NaN/Inf this cycle and was replaced by the previous command.
    public static let requestRejected = StateFlags(rawValue: 1 << 4)
    /// `positions` holds no valid reading this cycle.
    public static let stateInvalid = StateFlags(rawValue: 1 << 5)
}

public struct StateSample: Sendable, Equatable {
    /// Index of the sample since the loop started (0, 1, 2, ...).
    public var index: UInt64
    public var timestampNanos: UInt64
    public var flags: StateFlags
    public var positions: [Double]
    public var commands: [Double]
}

public final class StateRing: @unchecked Sendable {
    public let jointCount: Int
    public let capacity: Int
    private let wordsPerSlot: Int
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    /// Number of samples published so far.
    private let published = Atomic<UInt64>(0)

    // Slot layout: [sequence, timestamp, flags, positions × n, commands × n]. sequence = 2·(index+1) − 1
    // while sample `index` is being written and 2·(index+1) once it is complete.
    private static let header = 3

    public init(jointCount: Int, capacity: Int) {
        self.jointCount = jointCount
        self.capacity = max(capacity, 2)
        wordsPerSlot = Self.header + 2 * jointCount
        let total = self.capacity * wordsPerSlot
        words = .allocate(capacity: total)
        for k in 0..<total { (words + k).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: capacity * wordsPerSlot)
        words.deallocate()
    }

    public var publishedCount: UInt64 { published.load(ordering: .acquiring) }

    /// Producer only (real-time thread).
    public func publish(timestampNanos: UInt64, flags: StateFlags, positions: UnsafeBufferPointer<Double>,
                        commands: UnsafeBufferPointer<Double>) {
        let index = published.load(ordering: .relaxed)
        let slot = words + Int(index % UInt64(capacity)) * wordsPerSlot
        slot[0].store(2 &* (index &+ 1) &- 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        slot[1].store(timestampNanos, ordering: .relaxed)
        slot[2].store(flags.rawValue, ordering: .relaxed)
        let n = jointCount
        for j in 0..<n {
            slot[Self.header + j].store(positions[j].bitPattern, ordering: .relaxed)
            slot[Self.header + n + j].store(commands[j].bitPattern, ordering: .relaxed)
        }
        slot[0].store(2 &* (index &+ 1), ordering: .releasing)
        published.store(index &+ 1, ordering: .releasing)
    }

    /// Copies sample `index` into the buffers (jointCount each) and returns its timestamp and flags,
    /// or nil if it is not published yet or already overwritten. Any thread; does not allocate.
    public func read(index: UInt64, positions: UnsafeMutableBufferPointer<Double>,
                     commands: UnsafeMutableBufferPointer<Double>) -> (timestampNanos: UInt64, flags: StateFlags)? {
        guard index < published.load(ordering: .acquiring) else { return nil }
        let slot = words + Int(index % UInt64(capacity)) * wordsPerSlot
        let expected = 2 &* (index &+ 1)
        guard slot[0].load(ordering: .acquiring) == expected else { return nil }
        let timestamp = slot[1].load(ordering: .relaxed)
        let flags = StateFlags(rawValue: slot[2].load(ordering: .relaxed))
        let n = jointCount
        for j in 0..<n {
            positions[j] = Double(bitPattern: slot[Self.header + j].load(ordering: .relaxed))
            commands[j] = Double(bitPattern: slot[Self.header + n + j].load(ordering: .relaxed))
        }
        atomicMemoryFence(ordering: .acquiring)
        guard slot[0].load(ordering: .relaxed) == expected else { return nil }
        return (timestamp, flags)
    }

    /// Convenience for non-real-time readers.
    public func sample(index: UInt64) -> StateSample? {
        var positions = [Double](repeating: 0, count: jointCount)
        var commands = [Double](repeating: 0, count: jointCount)
        let header = positions.withUnsafeMutableBufferPointer { p in
            commands.withUnsafeMutableBufferPointer { c in read(index: index, positions: p, commands: c) }
        }
        guard let header else { return nil }
        return StateSample(index: index, timestampNanos: header.timestampNanos, flags: header.flags,
                           positions: positions, commands: commands)
    }

    /// The newest complete sample, if any.
    public func latest() -> StateSample? {
        var count = publishedCount
        while count > 0 {
            if let s = sample(index: count - 1) { return s }
            let now = publishedCount
            if now == count { return nil }
            count = now
        }
        return nil
    }
}
