import Testing
import TendonHardware

/// Byte-exactness with ROBOTIS dynamixel-sdk 4.1.0: our encoder reproduces every instruction packet
/// the SDK sends, and our parser decodes the status packets the SDK decoded to the same values.
@Suite struct DynamixelSDKFixtureTests {
    let fixtures: DynamixelSDKFixtures

    init() throws { fixtures = try DynamixelSDKFixtures.load() }

    @Test func fixtureFileCoversTheInstructionSet() {
        let names = Set(fixtures.instructions.map(\.name))
        for required in ["ping", "read4", "read1", "read2", "write1", "write2", "write4", "reboot",
                         "sync_read_126_10", "sync_read_132_4", "fast_sync_read_132_4", "sync_write_116_4",
                         "bulk_read", "bulk_write", "fast_bulk_read", "write_stuffed"] {
            #expect(names.contains(required), "missing fixture \(required)")
        }
    }

    @Test func encoderMatchesEverySDKInstructionPacket() throws {
        for f in fixtures.instructions {
            let instruction = try #require(DynamixelInstruction(rawValue: f.instruction), "\(f.name)")
            let ours = DynamixelPacketEncoder.instruction(id: f.id, instruction, parameters: f.params)
            #expect(ours == f.bytes, "\(f.name)")
            // And our parser reads back what the SDK sent (the simulator's side).
            #expect(parseAll(f.bytes) == [.packet(DynamixelDecodedPacket(id: f.id, instruction: f.instruction, parameters: f.params))], "\(f.name)")
        }
    }

    @Test func stuffedInstructionDiffersOnlyWhereThePythonSDKSkipsStuffing() throws {
        // dynamixel-sdk 4.1.0 (Python) drops addStuffing's result when the length grows; the protocol
        // and the C SDK stuff. We stuff, and still accept the unstuffed form it sends.
        let f = try #require(fixtures.instruction("write_stuffed"))
        let unstuffed = try #require(f.python_sdk_sent_unstuffed)
        #expect(unstuffed.count == f.bytes.count - 1)
        #expect(parseAll(unstuffed) == [.packet(DynamixelDecodedPacket(id: f.id, instruction: f.instruction, parameters: f.params))])
    }

    private func packets(_ name: String) throws -> [DynamixelDecodedPacket] {
        let s = try #require(fixtures.status(name))
        return parseAll(s.bytes).compactMap { if case .packet(let p) = $0 { p } else { nil } }
    }

    private func le(_ bytes: [UInt8]) -> UInt32 {
        bytes.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    @Test func singleReadRepliesDecodeLikeTheSDK() throws {
        let ping = try packets("ping_reply")
        let pingSDK = try #require(fixtures.status("ping_reply")).sdk
        #expect(ping.count == 1)
        #expect(UInt16(le(Array(ping[0].parameters.prefix(2)))) == pingSDK.model_number)
        #expect(ping[0].error == pingSDK.error)
        for name in ["read4_reply", "read1_alert_reply", "read2_error_reply"] {
            let p = try packets(name)
            let sdk = try #require(fixtures.status(name)).sdk
            #expect(p.count == 1, "\(name)")
            #expect(p.first?.id == sdk.id, "\(name)")
            #expect(p.first?.error == sdk.error, "\(name)")
            #expect(p.first.map { le($0.parameters) } == sdk.value, "\(name)")
        }
        let alert = DynamixelStatusError(rawValue: try packets("read1_alert_reply")[0].error)
        #expect(alert.hardwareAlert)
        #expect(DynamixelStatusError(rawValue: try packets("read2_error_reply")[0].error).code == .dataRange)
    }

    @Test(arguments: ["stuffed_reply", "stuffed_twice_reply"])
    func stuffedRepliesDecodeLikeTheSDK(name: String) throws {
        let p = try packets(name)
        let sdk = try #require(fixtures.status(name)).sdk
        #expect(p.count == 1)
        #expect(p.first?.parameters == sdk.data?[""])
        #expect(p.first?.parameters == sdk.intended)
    }

    @Test func corruptReplyIsReportedAsTheSDKDoes() throws {
        let s = try #require(fixtures.status("corrupt_crc_reply"))
        #expect(s.sdk.result == -3002)  // COMM_RX_CORRUPT
        #expect(parseAll(s.bytes) == [.corrupt(.crcMismatch)])
    }

    @Test(arguments: ["sync_read_126_10_replies", "sync_read_132_4_replies", "bulk_read_replies"])
    func groupRepliesDecodeLikeTheSDK(name: String) throws {
        let p = try packets(name)
        let sdk = try #require(fixtures.status(name)).sdk
        let data = try #require(sdk.data)
        #expect(p.count == data.count)
        for packet in p {
            #expect(packet.parameters == data[String(packet.id)], "id \(packet.id)")
            if let errors = sdk.errors { #expect(packet.error == errors[String(packet.id)], "id \(packet.id)") }
        }
    }

    @Test(arguments: ["fast_sync_read_reply", "fast_sync_read_reply_header_in_data"])
    func fastSyncReadReplyDecodesLikeTheSDK(name: String) throws {
        let s = try #require(fixtures.status(name))
        let ids = try #require(s.sdk.ids)
        let length = try #require(s.sdk.length)
        let data = try #require(s.sdk.data)
        // Rebuilt by our writer, byte for byte.
        let rebuilt = DynamixelPacketEncoder.fastStatus(blocks: ids.map { (id: $0, error: UInt8(0), data: data[String($0)] ?? []) })
        #expect(rebuilt == s.bytes)
        let parser = DynamixelStreamParser()
        var seen: [UInt8: [UInt8]] = [:]
        var packets = 0
        s.bytes.withUnsafeBytes { raw in
            parser.feed(raw) { event in
                guard case .packet(let view) = event else { return }
                packets += 1
                #expect(view.isFastStatus)
                for b in view.fastBlocks(dataLength: length) { seen[b.id] = Array(b.data) }
            }
        }
        #expect(packets == 1)
        #expect(seen.count == ids.count)
        for id in ids { #expect(seen[id] == data[String(id)], "id \(id)") }
    }

    @Test func fastBulkReadReplyDecodesLikeTheSDK() throws {
        let s = try #require(fixtures.status("fast_bulk_read_reply"))
        let entries = try #require(s.sdk.entries)
        let data = try #require(s.sdk.data)
        let parser = DynamixelStreamParser()
        var seen: [UInt8: [UInt8]] = [:]
        s.bytes.withUnsafeBytes { raw in
            parser.feed(raw) { event in
                guard case .packet(let view) = event else { return }
                var blocks = view.fastBlocks(dataLength: 0)
                for e in entries {
                    if let b = blocks.next(dataLength: e[2]) { seen[b.id] = Array(b.data) }
                }
            }
        }
        for e in entries { #expect(seen[UInt8(e[0])] == data[String(e[0])], "id \(e[0])") }
    }

    @Test func sdkTimeoutFormulaIsWhatWeDocument() throws {
        // SDK: timeout_ms = packet_length · 10000/baud + 2·LATENCY_TIMER(16) + 2; packet_length is
        // READ length+11, other single-servo instructions 11, SYNC READ (11+length)·ids, BULK READ Σ(length+10).
        for f in fixtures.instructions {
            guard let n = f.timeout_packet_length, let ms = f.timeout_ms else { continue }
            #expect(abs(ms - (Double(n) * 10_000 / Double(fixtures.baud) + 34)) < 1e-6, "\(f.name)")
        }
        #expect(fixtures.instruction("sync_read_126_10")?.timeout_packet_length == (11 + 10) * 9)
        #expect(fixtures.instruction("read4")?.timeout_packet_length == 4 + 11)
        #expect(fixtures.instruction("bulk_read")?.timeout_packet_length == (4 + 10) + (1 + 10) + (2 + 10))
    }
}
