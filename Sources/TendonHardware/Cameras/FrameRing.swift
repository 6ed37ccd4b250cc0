// FrameRing: lock-free hand-over of decoded camera frames from ONE capture thread to any number of
// readers, which always take the newest complete frame. Decoding happens on the capture thread, never
// on the real-time thread; readers copy out without allocating or locking.
//   init(maxWidth:maxHeight:slots:)          storage preallocated for frames up to that size
//   publish(header:pixels:)                  producer only; the pixels are copied in
//   copyLatest(into:) -> CameraFrameHeader?  any thread; nil before the first frame or if the buffer is small
//   publishedCount                           frames published so far
// Each slot is a sequence lock over atomic 64-bit words (pixels packed 8 bytes a word) as in
// TendonControl's StateRing, so a reader racing the producer sees a changed sequence and retries —
// there is no data race and no torn frame.
import Synchronization

public final class FrameRing: @unchecked Sendable {
    public let maxByteCount: Int
    public let slotCount: Int
    private let dataWords: Int
    private let wordsPerSlot: Int
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let published = Atomic<UInt64>(0)

    // Slot: [lock sequence, width, height, format, frame sequence, timestamp, driver timestamp,
    // has driver timestamp, byte count, pixel words...]; lock = 2k−1 while frame k−1 is written, 2k after.
    private static let header = 9

    public init(maxWidth: Int, maxHeight: Int, slots: Int = 3) {
        maxByteCount = max(1, maxWidth * maxHeight * CameraPixelFormat.rgb8.bytesPerPixel)
        slotCount = max(slots, 2)
        dataWords = (maxByteCount + 7) / 8
        wordsPerSlot = Self.header + dataWords
        let total = slotCount * wordsPerSlot
        words = .allocate(capacity: total)
        for k in 0..<total { (words + k).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: slotCount * wordsPerSlot)
        words.deallocate()
    }

    public var publishedCount: UInt64 { published.load(ordering: .acquiring) }

    /// Producer only. Returns false (and publishes nothing) when the frame is larger than the ring
    /// was built for or `pixels` is shorter than the header says.
    @discardableResult
    public func publish(header h: CameraFrameHeader, pixels: UnsafeRawBufferPointer) -> Bool {
        let count = h.byteCount
        guard count <= maxByteCount, pixels.count >= count, let base = pixels.baseAddress else { return false }
        let index = published.load(ordering: .relaxed)
        let slot = words + Int(index % UInt64(slotCount)) * wordsPerSlot
        slot[0].store(2 &* (index &+ 1) &- 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        slot[1].store(UInt64(h.width), ordering: .relaxed)
        slot[2].store(UInt64(h.height), ordering: .relaxed)
        slot[3].store(UInt64(h.pixelFormat.rawValue), ordering: .relaxed)
        slot[4].store(h.sequence, ordering: .relaxed)
        slot[5].store(h.timestampNanos, ordering: .relaxed)
        slot[6].store(h.driverTimestampNanos ?? 0, ordering: .relaxed)
        slot[7].store(h.driverTimestampNanos == nil ? 0 : 1, ordering: .relaxed)
        slot[8].store(UInt64(count), ordering: .relaxed)
        let data = slot + Self.header
        let full = count / 8
        for w in 0..<full {
            data[w].store(base.loadUnaligned(fromByteOffset: w * 8, as: UInt64.self), ordering: .relaxed)
        }
        let tail = count - full * 8
        if tail > 0 {
            var word: UInt64 = 0
            for b in 0..<tail {
                word |= UInt64(base.load(fromByteOffset: full * 8 + b, as: UInt8.self)) << (8 * UInt64(b))
            }
            data[full].store(word, ordering: .relaxed)
        }
        slot[0].store(2 &* (index &+ 1), ordering: .releasing)
        published.store(index &+ 1, ordering: .releasing)
        return true
    }

    /// Copies the newest complete frame into `buffer`. Retries when the producer laps the slot being
    /// read; gives up (nil) only if it keeps being lapped, which needs a producer many times faster
    /// than the copy.
    public func copyLatest(into buffer: UnsafeMutableRawBufferPointer) -> CameraFrameHeader? {
        for _ in 0..<8 {
            let count = published.load(ordering: .acquiring)
            guard count > 0 else { return nil }
            switch read(index: count - 1, into: buffer) {
            case .frame(let h): return h
            case .tooSmall: return nil
            case .lapped: continue
            }
        }
        return nil
    }

    private enum ReadResult { case frame(CameraFrameHeader), tooSmall, lapped }

    private func read(index: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        let slot = words + Int(index % UInt64(slotCount)) * wordsPerSlot
        let expected = 2 &* (index &+ 1)
        guard slot[0].load(ordering: .acquiring) == expected else { return .lapped }
        let width = Int(slot[1].load(ordering: .relaxed))
        let height = Int(slot[2].load(ordering: .relaxed))
        let format = CameraPixelFormat(rawValue: UInt32(truncatingIfNeeded: slot[3].load(ordering: .relaxed))) ?? .rgb8
        let sequence = slot[4].load(ordering: .relaxed)
        let timestamp = slot[5].load(ordering: .relaxed)
        let driver = slot[6].load(ordering: .relaxed)
        let hasDriver = slot[7].load(ordering: .relaxed) != 0
        let count = min(Int(slot[8].load(ordering: .relaxed)), maxByteCount)
        guard buffer.count >= count, let base = buffer.baseAddress else {
            atomicMemoryFence(ordering: .acquiring)
            return slot[0].load(ordering: .relaxed) == expected ? .tooSmall : .lapped
        }
        let data = slot + Self.header
        let full = count / 8
        for w in 0..<full {
            base.storeBytes(of: data[w].load(ordering: .relaxed), toByteOffset: w * 8, as: UInt64.self)
        }
        let tail = count - full * 8
        if tail > 0 {
            let word = data[full].load(ordering: .relaxed)
            for b in 0..<tail {
                base.storeBytes(of: UInt8(truncatingIfNeeded: word >> (8 * UInt64(b))), toByteOffset: full * 8 + b,
                                as: UInt8.self)
            }
        }
        atomicMemoryFence(ordering: .acquiring)
        guard slot[0].load(ordering: .relaxed) == expected else { return .lapped }
        return .frame(CameraFrameHeader(width: width, height: height, pixelFormat: format, sequence: sequence,
                                        timestampNanos: timestamp, driverTimestampNanos: hasDriver ? driver : nil))
    }
}
