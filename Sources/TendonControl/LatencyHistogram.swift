// Fixed buckets so recording from the real-time thread never allocates: 1 µs wide up to 1 ms, 100 µs wide
// up to 10 ms, then one overflow bucket. Percentiles are reported as the lower edge of the bucket that
// holds them (the same convention as cyclictest's 1 µs histogram), the maximum exactly.

public final class LatencyHistogram: @unchecked Sendable {
    static let fineBuckets = 1000          // [0, 1000) µs, 1 µs each
    static let coarseBuckets = 90          // [1000, 10000) µs, 100 µs each
    static let bucketCount = fineBuckets + coarseBuckets + 1

    private let counts: UnsafeMutablePointer<UInt64>
    public private(set) var count: UInt64 = 0
    private var sumNanos: UInt64 = 0
    private var minNanos: UInt64 = .max
    private var maxNanos: UInt64 = 0

    public init() {
        counts = .allocate(capacity: Self.bucketCount)
        counts.initialize(repeating: 0, count: Self.bucketCount)
    }

    deinit { counts.deallocate() }

    @inline(__always)
    public func record(nanos: UInt64) {
        let micros = nanos / 1000
        let index: Int
        if micros < 1000 {
            index = Int(micros)
        } else if micros < 10_000 {
            index = Self.fineBuckets + Int((micros - 1000) / 100)
        } else {
            index = Self.bucketCount - 1
        }
        counts[index] &+= 1
        count &+= 1
        sumNanos &+= nanos
        if nanos < minNanos { minNanos = nanos }
        if nanos > maxNanos { maxNanos = nanos }
    }

    public func reset() {
        counts.update(repeating: 0, count: Self.bucketCount)
        count = 0
        sumNanos = 0
        minNanos = .max
        maxNanos = 0
    }

    static func lowerEdgeMicros(_ index: Int) -> Double {
        if index < fineBuckets { return Double(index) }
        return Double(1000 + (index - fineBuckets) * 100)
    }

    /// The smallest bucket edge at or below which at least `fraction` of the samples lie.
    public func percentileMicros(_ fraction: Double) -> Double {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((fraction * Double(count)).rounded(.up)))
        var cumulative: UInt64 = 0
        for index in 0..<(Self.bucketCount - 1) {
            cumulative += counts[index]
            if cumulative >= rank { return Self.lowerEdgeMicros(index) }
        }
        return Double(maxNanos) / 1000
    }

    static func upperEdgeMicros(_ index: Int) -> Double? {
        index + 1 < bucketCount ? lowerEdgeMicros(index + 1) : nil
    }

    /// The non-empty buckets in ascending order (for reports; allocates, so never on the RT thread).
    public var buckets: [LatencyBucket] {
        (0..<Self.bucketCount).compactMap { index in
            counts[index] == 0 ? nil
                : LatencyBucket(lowerMicros: Self.lowerEdgeMicros(index), upperMicros: Self.upperEdgeMicros(index),
                                count: counts[index])
        }
    }

    public var summary: LatencySummary {
        guard count > 0 else { return LatencySummary(count: 0, minMicros: 0, meanMicros: 0, p50Micros: 0,
                                                      p99Micros: 0, maxMicros: 0) }
        return LatencySummary(count: count, minMicros: Double(minNanos) / 1000,
                              meanMicros: Double(sumNanos) / Double(count) / 1000,
                              p50Micros: percentileMicros(0.5), p99Micros: percentileMicros(0.99),
                              maxMicros: Double(maxNanos) / 1000)
    }
}

public struct LatencySummary: Sendable, Equatable, Codable {
    public var count: UInt64
    public var minMicros: Double
    public var meanMicros: Double
    public var p50Micros: Double
    public var p99Micros: Double
    public var maxMicros: Double

    public init(count: UInt64, minMicros: Double, meanMicros: Double, p50Micros: Double, p99Micros: Double,
                maxMicros: Double) {
        self.count = count
        self.minMicros = minMicros
        self.meanMicros = meanMicros
        self.p50Micros = p50Micros
        self.p99Micros = p99Micros
        self.maxMicros = maxMicros
    }

    enum CodingKeys: String, CodingKey {
        case count, minMicros = "min_us", meanMicros = "mean_us", p50Micros = "p50_us", p99Micros = "p99_us",
             maxMicros = "max_us"
    }
}

/// One histogram bucket: samples with lower ≤ latency < upper (µs); no upper bound for the overflow bucket.
public struct LatencyBucket: Sendable, Equatable, Codable {
    public var lowerMicros: Double
    public var upperMicros: Double?
    public var count: UInt64

    enum CodingKeys: String, CodingKey {
        case lowerMicros = "lower_us", upperMicros = "upper_us", count
    }
}
