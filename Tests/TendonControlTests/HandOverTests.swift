import Testing
import Synchronization
@testable import TendonControl

/// Trajectory g: (1 + g mod 7) waypoints at g·1000 + i + 1 ns, position (i, j) = g + (i·n + j)/1024.
/// Every value is a function of g, so a slot mixing two publications fails the check.
private func trajectory(_ g: UInt64, jointCount n: Int) -> JointTrajectory {
    let count = 1 + Int(g % 7)
    let times = (0..<count).map { g * 1000 + UInt64($0) + 1 }
    let positions = (0..<(count * n)).map { Double(g) + Double($0) / 1024 }
    return try! JointTrajectory(jointCount: n, times: times, positions: positions, mode: .cubic)
}

private func isConsistent(_ slot: TrajectorySlot) -> Bool {
    guard slot.count > 0 else { return false }
    let g = slot.time(0) / 1000
    guard slot.count == 1 + Int(g % 7) else { return false }
    for i in 0..<slot.count {
        guard slot.time(i) == g * 1000 + UInt64(i) + 1 else { return false }
        for j in 0..<slot.jointCount where slot.position(i, joint: j) != Double(g) + Double(i * slot.jointCount + j) / 1024 {
            return false
        }
    }
    return true
}

@Test func mailboxDeliversLatestAndNothingWhenEmpty() throws {
    let mailbox = try TrajectoryMailbox(jointCount: 2, maxWaypoints: 8)
    #expect(mailbox.takeLatest() == nil)
    for g in 1...3 as ClosedRange<UInt64> { try mailbox.publish(trajectory(g, jointCount: 2)) }
    let slot = try #require(mailbox.takeLatest())
    #expect(slot.generation == 3 && isConsistent(slot))
    #expect(mailbox.takeLatest() == nil)
    #expect(throws: TrajectoryError.self) { try mailbox.publish(trajectory(4, jointCount: 3)) }
}

@Test func mailboxHandOverUnderConcurrencyNeverTears() throws {
    let n = 14
    let mailbox = try TrajectoryMailbox(jointCount: n, maxWaypoints: 8)
    let total: UInt64 = 20_000
    let done = Atomic<Bool>(false)
    // Two producers (odd and even ids) racing a consumer that spins on takeLatest.
    let producers = [UInt64(1), 2].map { first in
        TestThread {
            for g in stride(from: first, through: total, by: 2) { _ = try? mailbox.publish(trajectory(g, jointCount: n)) }
        }
    }
    let joiner = TestThread {
        for p in producers { p.join() }
        done.store(true, ordering: .releasing)
    }
    var taken = 0
    var torn = 0
    var lastGeneration: UInt64 = 0
    var backwards = 0
    while true {
        let finished = done.load(ordering: .acquiring)
        if let slot = mailbox.takeLatest() {
            taken += 1
            if !isConsistent(slot) { torn += 1 }
            if slot.generation <= lastGeneration { backwards += 1 }
            lastGeneration = slot.generation
        }
        if finished && mailbox.takeLatest() == nil { break }
    }
    joiner.join()
    #expect(torn == 0)
    #expect(backwards == 0)
    #expect(taken > 1)
    #expect(lastGeneration == total)  // mailbox generations count publications
}

@Test func stateRingReturnsPublishedSamplesAndDropsLappedOnes() {
    let ring = StateRing(jointCount: 3, capacity: 8)
    #expect(ring.latest() == nil)
    for k in 0..<20 {
        let p = [Double(k), Double(k) + 0.5, -Double(k)]
        let c = p.map { $0 * 2 }
        p.withUnsafeBufferPointer { pp in c.withUnsafeBufferPointer { cc in
            ring.publish(timestampNanos: UInt64(k) * 10, flags: k % 2 == 0 ? [.holding] : [], positions: pp,
                         commands: cc)
        } }
    }
    #expect(ring.publishedCount == 20)
    #expect(ring.sample(index: 11) == nil)  // lapped (capacity 8: 12...19 remain)
    #expect(ring.sample(index: 20) == nil)  // not yet written
    let s = ring.sample(index: 12)
    #expect(s == StateSample(index: 12, timestampNanos: 120, flags: [.holding], positions: [12, 12.5, -12],
                             commands: [24, 25, -24]))
    #expect(ring.latest()?.index == 19)
}

@Test func stateRingReadersNeverSeeMixedSamples() {
    let n = 14
    let ring = StateRing(jointCount: n, capacity: 16)
    let total = 200_000
    let writer = TestThread {
        var p = [Double](repeating: 0, count: n)
        var c = [Double](repeating: 0, count: n)
        for k in 0..<total {
            for j in 0..<n { p[j] = Double(k) + Double(j); c[j] = -Double(k) }
            p.withUnsafeBufferPointer { pp in c.withUnsafeBufferPointer { cc in
                ring.publish(timestampNanos: UInt64(k), flags: [], positions: pp, commands: cc)
            } }
        }
    }
    var good = 0
    var mixed = 0
    var p = [Double](repeating: 0, count: n)
    var c = [Double](repeating: 0, count: n)
    while ring.publishedCount < UInt64(total) {
        let count = ring.publishedCount
        guard count > 0 else { continue }
        let index = count - 1
        let header = p.withUnsafeMutableBufferPointer { pp in
            c.withUnsafeMutableBufferPointer { cc in ring.read(index: index, positions: pp, commands: cc) }
        }
        guard let header else { continue }
        let k = Double(header.timestampNanos)
        if UInt64(k) != index || (0..<n).contains(where: { p[$0] != k + Double($0) || c[$0] != -k }) {
            mixed += 1
        } else {
            good += 1
        }
    }
    writer.join()
    #expect(mixed == 0)
    #expect(good > 0)
}
