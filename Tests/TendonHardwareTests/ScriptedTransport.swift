import Glibc
import TendonHardware

/// In-process `SerialTransport` for host-client tests: every written instruction packet goes to
/// `responder`, whose reply bytes are then served in random-sized pieces. Records what was written.
final class ScriptedTransport: SerialTransport {
    let name = "scripted"
    var baudRate = 1_000_000
    var written: [[UInt8]] = []
    /// Returns the reply bytes for one request (empty: stay silent).
    var responder: (DynamixelDecodedPacket) -> [UInt8]
    /// Bytes waiting on the "line" before the next request (stale input).
    var pending: [UInt8] = []
    var discards = 0
    private var rng: SplitMix64
    private let parser = DynamixelStreamParser()

    init(seed: UInt64 = 1, responder: @escaping (DynamixelDecodedPacket) -> [UInt8]) {
        self.responder = responder
        rng = SplitMix64(seed: seed)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) {
        written.append(Array(bytes))
        parser.feed(bytes) { event in
            if case .packet(let view) = event { pending += responder(view.decoded()) }
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadlineNanos: UInt64) throws(SerialError) -> Int {
        if pending.isEmpty {
            let now = MonotonicClock.nowNanos()
            if deadlineNanos > now { usleep(UInt32(min((deadlineNanos - now) / 1000, 100_000))) }
            return 0
        }
        let n = min(buffer.count, Int(rng.next() % UInt64(pending.count)) + 1)
        for i in 0..<n { buffer[i] = pending[i] }
        pending.removeFirst(n)
        return n
    }

    func discardInput() throws(SerialError) {
        discards += 1
        pending.removeAll()
    }

    func setBaudRate(_ baud: Int) throws(SerialError) { baudRate = baud }
    func close() {}
}

/// Allocation-free loopback for the allocation test: every write queues a copy of one canned reply.
final class CannedReplyTransport: SerialTransport {
    let name = "canned"
    let baudRate = 1_000_000
    private let reply: UnsafeMutableRawBufferPointer
    private let queue: UnsafeMutableRawBufferPointer
    private var head = 0
    private var tail = 0
    private let piece: Int

    init(reply bytes: [UInt8], piece: Int = 7) {
        reply = .allocate(byteCount: bytes.count, alignment: 1)
        reply.copyBytes(from: bytes)
        queue = .allocate(byteCount: 8 * bytes.count + 64, alignment: 1)
        self.piece = piece
    }

    deinit {
        reply.deallocate()
        queue.deallocate()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) {
        if tail + reply.count > queue.count { head = 0; tail = 0 }
        for i in 0..<reply.count { queue[tail + i] = reply[i] }
        tail += reply.count
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadlineNanos: UInt64) throws(SerialError) -> Int {
        let n = min(buffer.count, tail - head, piece)
        for i in 0..<n { buffer[i] = queue[head + i] }
        head += n
        return n
    }

    func discardInput() throws(SerialError) { head = 0; tail = 0 }
    func setBaudRate(_ baud: Int) throws(SerialError) {}
    func close() {}
}

/// Small deterministic generator so piece sizes are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
