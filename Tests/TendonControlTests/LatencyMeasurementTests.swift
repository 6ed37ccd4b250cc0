import Foundation
import Testing
@testable import TendonControl

@Test func parsesCapturedCyclictestHistogram() throws {
    // Captured with: cyclictest -q -D1 -i1000 -h100 -p80 -a1 -m. Expected values counted by hand from the
    // file: 56 samples at 12 µs and 464 at 13 µs reach rank 500 (p50 = 13); the cumulative count reaches
    // 990 at 22 µs (p99 = 22); summary lines give min 12, avg 14, max 32, total 1000.
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/cyclictest/histogram_1000us.txt")
    let result = try CyclictestRunner.parse(String(contentsOf: url, encoding: .utf8))
    #expect(result.latency == LatencySummary(count: 1000, minMicros: 12, meanMicros: 14, p50Micros: 13,
                                             p99Micros: 22, maxMicros: 32))
    #expect(result.overflows == 0)
    #expect(throws: CyclictestError.self) { try CyclictestRunner.parse("policy: fifo\nT: 0 (123) P:80\n") }
    #expect(CyclictestRunner.arguments(periodMicros: 4000, priority: 80, cpu: 1, seconds: 10, histogramMaxMicros: 1000)
            == ["-q", "-D10", "-i4000", "-h1000", "-p80", "-m", "-a1"])
}

@Test func histogramPercentilesUseBucketEdgesAndCoarseBuckets() {
    let h = LatencyHistogram()
    for us in 1...100 { h.record(nanos: UInt64(us) * 1000 + 400) }  // 1.4 µs ... 100.4 µs
    h.record(nanos: 2_345_678)   // coarse bucket [2300, 2400) µs
    h.record(nanos: 25_000_000)  // overflow
    let s = h.summary
    #expect(s.count == 102)
    #expect(s.p50Micros == 51)   // rank 51 → the 51st sample, 51.4 µs, bucket 51
    #expect(s.p99Micros == 2300) // rank 101 → the coarse sample
    #expect(s.maxMicros == 25_000)
    #expect(s.minMicros == 1.4)
    #expect(h.percentileMicros(1.0) == 25_000)
    h.reset()
    #expect(h.summary.count == 0)
}
