import CAllocationCounter
import Testing
@testable import TendonHardware

/// Host client against an in-process transport: request bytes equal the SDK's, replies (the SDK's
/// fixtures) decode to the SDK's values, and faults are retried or reported as specified.
@Suite struct DynamixelBusTests {
    let fx: DynamixelSDKFixtures
    init() throws { fx = try DynamixelSDKFixtures.load() }

    func reply(_ name: String) -> [UInt8] { fx.status(name)?.bytes ?? [] }
    func request(_ name: String) -> [UInt8] { fx.instruction(name)?.bytes ?? [] }

    func bus(_ transport: ScriptedTransport, retries: Int = 2) -> DynamixelBus {
        DynamixelBus(transport: transport, configuration: .init(retries: retries, latencyMarginNanos: 5_000_000))
    }

    @Test func singleServoCallsMatchSDKBytes() throws {
        let t = ScriptedTransport { p in
            switch (p.instruction, p.id) {
            case (0x01, 1): return reply("ping_reply")
            case (0x02, 3): return reply("read4_reply")
            case (0x02, 5): return reply("read1_alert_reply")
            default: return DynamixelPacketEncoder.status(id: p.id)
            }
        }
        let b = bus(t)
        let ping = try b.ping(1)
        #expect(ping.modelNumber == 1120)
        #expect(ping.firmwareVersion == 46)
        #expect(ping.model?.name == "XM540-W270")
        #expect(try b.read4(3, address: 132) == 2100)
        #expect(try b.read1(5, address: 70) == 0x24)
        #expect(b.lastErrorByte == 0x80)  // alert: data still delivered, as the SDK does
        try b.write1(1, address: 64, value: 1)
        try b.write2(4, address: 100, value: 0x8123)
        try b.write4(7, address: 116, value: 0x12345678)
        try b.write4(8, address: 104, value: -300)
        try b.reboot(9)
        #expect(t.written == ["ping", "read4", "read1", "write1", "write2", "write4", "write4_negative", "reboot"].map(request))
        #expect(b.statistics.retries == 0)
        #expect(t.discards == t.written.count)
    }

    @Test func droppedReplyTimesOutThenRetrySucceeds() throws {
        var calls = 0
        let t = ScriptedTransport { _ in
            calls += 1
            return calls == 1 ? [] : reply("read4_reply")
        }
        let b = bus(t)
        #expect(try b.read4(3, address: 132) == 2100)
        #expect(b.statistics.timeouts == 1)
        #expect(b.statistics.retries == 1)
        #expect(t.written.count == 2)
    }

    @Test func corruptReplyIsCountedThenRetrySucceeds() throws {
        var calls = 0
        let t = ScriptedTransport { _ in
            calls += 1
            return calls == 1 ? reply("corrupt_crc_reply") : reply("read4_reply")
        }
        let b = bus(t)
        #expect(try b.read4(3, address: 132) == 2100)
        #expect(b.statistics.corruptPackets == 1)
        #expect(b.statistics.retries == 1)
    }

    @Test func retriesAreBounded() {
        let t = ScriptedTransport { _ in [] }
        let b = bus(t, retries: 2)
        #expect(throws: DynamixelError(kind: .timeout, id: 3)) { try b.read4(3, address: 132) }
        #expect(t.written.count == 3)
        #expect(b.statistics.timeouts == 3)
    }

    @Test func servoErrorIsNotRetried() {
        let t = ScriptedTransport { _ in reply("read2_error_reply") }
        let b = bus(t)
        do {
            _ = try b.read2(6, address: 126)
            Issue.record("expected a servo error")
        } catch {
            #expect(error.kind == .servoError)
            #expect(error.errorByte == 0x04)
            #expect(error.statusError.code == .dataRange)
            #expect(error.description.contains("servo 6"))
        }
        #expect(t.written.count == 1)
        #expect(b.statistics.servoErrors == 1)
    }

    @Test func staleInputAndEchoesAreIgnored() throws {
        let t = ScriptedTransport { p in
            // Echo of the request (half-duplex adapters), a late reply from another servo, then ours.
            DynamixelPacketEncoder.instruction(id: p.id, .read, parameters: p.parameters)
                + DynamixelPacketEncoder.status(id: 9, parameters: [1, 2, 3, 4]) + reply("read4_reply")
        }
        t.pending = reply("read1_alert_reply")  // stale bytes from an earlier transaction
        let b = bus(t)
        #expect(try b.read4(3, address: 132) == 2100)
        #expect(b.statistics.ignoredPackets == 2)
    }

    @Test func wrongReplyLengthIsReported() {
        let t = ScriptedTransport { p in DynamixelPacketEncoder.status(id: p.id, parameters: [1, 2]) }
        let b = bus(t)
        #expect(throws: DynamixelError(kind: .wrongReply, id: 3, expected: 4, found: 2)) { try b.read4(3, address: 132) }
    }

    @Test func invalidRequestsAreRejectedBeforeTheWire() {
        let t = ScriptedTransport { _ in [] }
        let b = bus(t)
        #expect(throws: DynamixelError.self) { try b.ping(0xFE) }
        #expect(throws: DynamixelError.self) { try b.read(1, address: 0, size: 3) }
        #expect(throws: DynamixelError.self) { try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: [1, 1]) }
        #expect(throws: DynamixelError.self) { try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: []) }
        #expect(t.written.isEmpty)
    }

    @Test func syncReadGroupSplitTransmitReceive() throws {
        let t = ScriptedTransport { _ in reply("sync_read_126_10_replies") }
        let b = bus(t)
        let ids: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let g = try DynamixelBus.SyncReadGroup(address: 126, length: 10, ids: ids)
        #expect(Array(g.requestBytes) == request("sync_read_126_10"))
        try g.transmit(on: b)
        try g.receive(on: b)
        #expect(g.okCount == 9)
        for i in 0..<9 {
            let id = Int32(i + 1)
            #expect(g.status(index: i) == .ok)
            #expect(g.value(index: i, offset: 0, size: 2) == -5 * id)
            #expect(g.value(index: i, address: 128, size: 4) == -id)
            #expect(g.value(index: i, address: 132, size: 4) == 2048 + 100 * id)
        }
        #expect(g.errorByte(index: 3) == 0x80)
        #expect(g.value(index: 0, offset: 8, size: 4) == 0)  // out of range → 0
    }

    @Test(arguments: [false, true])
    func syncReadOfPresentPosition(fast: Bool) throws {
        let t = ScriptedTransport { _ in fast ? reply("fast_sync_read_reply") : reply("sync_read_132_4_replies") }
        let b = bus(t)
        let g = try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: [1, 2, 3, 4, 5, 6, 7, 8, 9], fast: fast)
        #expect(Array(g.requestBytes) == request(fast ? "fast_sync_read_132_4" : "sync_read_132_4"))
        try g.transact(on: b)
        for i in 0..<9 { #expect(g.value(index: i) == (fast ? 2000 : 1000) + Int32(i + 1)) }
    }

    @Test func missingServoIsTimeoutForThatIndexOnly() throws {
        let t = ScriptedTransport { _ in
            (1...9).filter { $0 != 6 }.flatMap { DynamixelPacketEncoder.status(id: UInt8($0), parameters: [UInt8($0), 0, 0, 0]) }
        }
        let b = bus(t, retries: 0)
        let g = try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        try g.transmit(on: b)
        #expect(throws: DynamixelError(kind: .timeout, id: 6, expected: 4, found: 4)) { try g.receive(on: b) }
        #expect(g.okCount == 8)
        #expect(g.status(index: 5) == .timeout)
        #expect(g.value(index: 8) == 9)
    }

    @Test func corruptFastReplyMarksGroupCorruptThenRetrySucceeds() throws {
        var calls = 0
        let t = ScriptedTransport { _ in
            calls += 1
            var r = reply("fast_sync_read_reply")
            if calls == 1 { r[20] ^= 0xFF }
            return r
        }
        let b = bus(t)
        let g = try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: [1, 2, 3, 4, 5, 6, 7, 8, 9], fast: true)
        try g.transact(on: b)
        #expect(g.okCount == 9)
        #expect(b.statistics.corruptPackets == 1)
        #expect(b.statistics.retries == 1)
    }

    @Test func writeGroupsMatchSDKBytes() throws {
        let t = ScriptedTransport { _ in [] }
        let b = bus(t)
        let ids: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let sw = try DynamixelBus.SyncWriteGroup(address: 116, length: 4, ids: ids)
        for i in 0..<9 { sw.set(index: i, value: Int32(2048 + 37 * (i + 1) - 200)) }
        sw.set(index: 8, value: -1)
        try sw.transmit(on: b)
        let bw = try DynamixelBus.BulkWriteGroup(entries: [
            .init(id: 1, address: 116, length: 4), .init(id: 2, address: 65, length: 1), .init(id: 3, address: 102, length: 2),
        ])
        bw.set(index: 0, value: 1234)
        bw.set(index: 1, value: 1)
        bw.set(index: 2, value: -50)
        try bw.transmit(on: b)
        #expect(t.written == [request("sync_write_116_4"), request("bulk_write")])
    }

    @Test(arguments: [false, true])
    func bulkReadMatchesSDK(fast: Bool) throws {
        let t = ScriptedTransport { _ in fast ? reply("fast_bulk_read_reply") : reply("bulk_read_replies") }
        let b = bus(t)
        let g = try DynamixelBus.BulkReadGroup(entries: [
            .init(id: 1, address: 132, length: 4), .init(id: 2, address: 70, length: 1), .init(id: 3, address: 126, length: 2),
        ], fast: fast)
        #expect(Array(g.requestBytes) == request(fast ? "fast_bulk_read" : "bulk_read"))
        try g.transact(on: b)
        #expect(g.value(index: 0) == 3000)
        #expect(g.value(index: 1) == 0x20)
        #expect(g.value(index: 2) == -7)
    }

    @Test func broadcastPingCollectsEveryServo() throws {
        let t = ScriptedTransport { p in
            guard p.id == 0xFE, p.instruction == 0x01 else { return [] }
            return DynamixelPacketEncoder.status(id: 7, parameters: [0xFC, 0x03, 45])
                + DynamixelPacketEncoder.status(id: 2, parameters: [0x60, 0x04, 46])
        }
        let b = bus(t)
        let found = try b.broadcastPing(timeoutNanos: 20_000_000)
        #expect(found == [DynamixelPingResult(id: 2, modelNumber: 1120, firmwareVersion: 46),
                          DynamixelPingResult(id: 7, modelNumber: 1020, firmwareVersion: 45)])
        #expect(found.map(\.description) == ["id 2: XM540-W270, firmware 46", "id 7: XM430-W350, firmware 45"])
    }

    @Test func statusReturnLevelOneSkipsWriteReplies() throws {
        let t = ScriptedTransport { p in p.instruction == 0x02 ? reply("read4_reply") : [] }
        let b = DynamixelBus(transport: t, configuration: .init(retries: 0, latencyMarginNanos: 1_000_000, statusReturnLevel: 1))
        try b.write4(7, address: 116, value: 0x12345678)  // would time out if it waited
        #expect(try b.read4(3, address: 132) == 2100)
        #expect(b.statistics.timeouts == 0)
    }

    @Test func timeoutFollowsWireTimeAndMargin() {
        let t = ScriptedTransport { _ in [] }
        let b = DynamixelBus(transport: t, configuration: .init(latencyMarginNanos: 1_000_000, returnDelayMicros: 20))
        // 100 bytes at 1 Mbps = 1 ms; 9 replies × 20 µs; + 1 ms margin.
        #expect(b.timeoutNanos(requestBytes: 40, replyBytes: 60, replies: 9) == 1_000_000 + 180_000 + 1_000_000)
        t.baudRate = 57_600
        #expect(b.wireTimeNanos(bytes: 1) == 173_612)
    }

    @Test func readCycleDoesNotAllocate() throws {
        let fast = try #require(fx.status("fast_sync_read_reply")).bytes
        let t = CannedReplyTransport(reply: fast)
        let b = DynamixelBus(transport: t)
        let read = try DynamixelBus.SyncReadGroup(address: 132, length: 4, ids: [1, 2, 3, 4, 5, 6, 7, 8, 9], fast: true)
        let write = try DynamixelBus.SyncWriteGroup(address: 116, length: 4, ids: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        func cycle() throws(DynamixelError) {
            try read.transmit(on: b)
            try read.receive(on: b)
            for i in 0..<9 { write.set(index: i, value: read.value(index: i) + 1) }
            try write.transmit(on: b)
        }
        try cycle()  // warm-up (lazy globals such as the CRC table)
        let before = tendon_thread_allocation_count()
        for _ in 0..<200 { try cycle() }
        let allocations = tendon_thread_allocation_count() - before
        // The counter must be live, or this test proves nothing.
        #expect(tendon_allocation_counter_active() != 0)
        #expect(allocations == 0, "\(allocations) allocations in 200 cycles")
        // And it does see allocations on this thread.
        let probe = tendon_thread_allocation_count()
        let array = [Int](repeating: 1, count: Int(probe % 7) + 100)
        #expect(tendon_thread_allocation_count() > probe)
        #expect(array.count >= 100)
        #expect(read.okCount == 9)
        #expect(read.value(index: 4) == 2005)
    }
}
