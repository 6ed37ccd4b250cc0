import Testing
import CAllocationCounter

@Test func interposerCounts() {
    #expect(tendon_allocation_counter_active() == 1)
    let before = tendon_thread_allocation_count()
    let a = [Int](repeating: 1, count: 100)
    #expect(tendon_thread_allocation_count() > before, "\(a.count)")
}
