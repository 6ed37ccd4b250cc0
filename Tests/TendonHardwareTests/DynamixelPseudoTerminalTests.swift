import Foundation
import Glibc
import Testing
import TendonHardware

/// The host client over a real pseudo-terminal, with a peer thread playing the servos from the SDK
/// fixtures: replies arrive in random-sized pieces with small gaps, one is dropped, one corrupted,
/// one carries a servo error.
@Suite struct DynamixelPseudoTerminalTests {
    /// One expected request and what the peer does about it.
    struct Step: Sendable {
        var request: [UInt8]
        var reply: [UInt8]  // empty: stay silent (the host must time out and retry)
    }

    /// Reads requests from `fd`, checks each against the script, answers in pieces. Returns the
    /// number of requests that did not match the script.
    static func runPeer(fd: Int32, steps: [Step], seed: UInt64) -> Int {
        var rng = SplitMix64(seed: seed)
        let parser = DynamixelStreamParser()
        var mismatches = 0
        var index = 0
        var buffer = [UInt8](repeating: 0, count: 512)
        while index < steps.count {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 5_000) <= 0 { return mismatches + steps.count - index }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { return mismatches + steps.count - index }
            var requests: [[UInt8]] = []
            buffer.withUnsafeBytes { raw in
                parser.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n])) { event in
                    if case .packet(let view) = event {
                        let d = view.decoded()
                        requests.append(DynamixelPacketEncoder.instruction(
                            id: d.id, DynamixelInstruction(rawValue: d.instruction) ?? .ping, parameters: d.parameters))
                    }
                }
            }
            for request in requests where index < steps.count {
                let step = steps[index]
                index += 1
                if request != step.request { mismatches += 1 }
                var offset = 0
                while offset < step.reply.count {
                    let piece = min(step.reply.count - offset, Int(rng.next() % 6) + 1)
                    _ = step.reply[offset..<(offset + piece)].withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, piece) }
                    offset += piece
                    if rng.next() % 3 == 0 { usleep(100) }
                }
            }
        }
        return mismatches
    }

    @Test(.timeLimit(.minutes(1))) func busOverPseudoTerminal() throws {
        let fx = try DynamixelSDKFixtures.load()
        func req(_ n: String) -> [UInt8] { fx.instruction(n)?.bytes ?? [] }
        func rep(_ n: String) -> [UInt8] { fx.status(n)?.bytes ?? [] }
        let steps: [Step] = [
            Step(request: req("ping"), reply: rep("ping_reply")),
            Step(request: req("read4"), reply: []),                        // dropped → timeout, retry
            Step(request: req("read4"), reply: rep("read4_reply")),
            Step(request: req("read4"), reply: rep("corrupt_crc_reply")),  // corrupt → counted, retry
            Step(request: req("read4"), reply: rep("read4_reply")),
            Step(request: req("read1"), reply: rep("read1_alert_reply")),
            Step(request: req("read2"), reply: rep("read2_error_reply")),  // servo error, not retried
            Step(request: req("sync_read_132_4"), reply: rep("sync_read_132_4_replies")),
            Step(request: req("fast_sync_read_132_4"), reply: rep("fast_sync_read_reply")),
            Step(request: req("write4"), reply: DynamixelPacketEncoder.status(id: 7)),
        ]
        let pty = try PseudoTerminalPair()
        defer { pty.close() }
        let master = pty.master
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let peer = Thread {
            result.set(Self.runPeer(fd: master, steps: steps, seed: 42))
            done.signal()
        }
        peer.start()

        let transport = FileDescriptorTransport(fd: pty.slave, name: pty.slavePath)
        // Generous margin: the machine is shared, and a unit test must not depend on timing.
        let bus = DynamixelBus(transport: transport, configuration: .init(retries: 2, latencyMarginNanos: 50_000_000))
        #expect(try bus.ping(1).modelNumber == 1120)
        #expect(try bus.read4(3, address: 132) == 2100)
        #expect(bus.statistics.timeouts == 1)
        #expect(try bus.read4(3, address: 132) == 2100)
        #expect(bus.statistics.corruptPackets == 1)
        #expect(bus.statistics.retries == 2)
        #expect(try bus.read1(5, address: 70) == 0x24)
        #expect(bus.lastErrorByte == 0x80)
        #expect(throws: DynamixelError(kind: .servoError, id: 6, errorByte: 4)) { try bus.read2(6, address: 126) }
        let ids: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let plain = try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: ids)
        try plain.transmit(on: bus)
        try plain.receive(on: bus)
        #expect((0..<9).map { plain.value(index: $0) } == (1...9).map { 1000 + Int32($0) })
        let fast = try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: ids, fast: true)
        try fast.transact(on: bus)
        #expect((0..<9).map { fast.value(index: $0) } == (1...9).map { 2000 + Int32($0) })
        try bus.write4(7, address: 116, value: 0x12345678)

        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(result.value == 0, "peer saw requests that differ from the SDK's")
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = -1
    func set(_ v: Int) { lock.lock(); stored = v; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return stored }
}
