import Testing
@testable import TendonHardware

/// Codec tests that need no fixture: CRC against its definition, stuffing round trips, and the
/// stream parser's resynchronisation. Byte-exactness with the ROBOTIS SDK is in DynamixelSDKFixtureTests.
@Suite struct DynamixelCodecTests {
    @Test func crcTableMatchesBitwiseDefinition() {
        var rng = SystemRandomNumberGenerator()
        for len in [0, 1, 2, 7, 64, 300] {
            let bytes = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(DynamixelCRC.checksum(bytes) == DynamixelCRC.bitwise(bytes))
        }
        // CRC-16/BUYPASS check value for "123456789".
        #expect(DynamixelCRC.checksum(Array("123456789".utf8)) == 0xFEE8)
    }

    @Test func pingPacketFromEManual() {
        // e-manual Protocol 2.0, PING example for id 1.
        #expect(DynamixelPacketEncoder.instruction(id: 1, .ping) == [0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x03, 0x00, 0x01, 0x19, 0x4E])
    }

    @Test func stuffingInsertsAndParserRemoves() throws {
        let params: [UInt8] = [0x10, 0x00, 0xFF, 0xFF, 0xFD, 0x07, 0xFF, 0xFF, 0xFD, 0xFD, 0xFF, 0xFF, 0xFD]
        let packet = DynamixelPacketEncoder.instruction(id: 3, .write, parameters: params)
        // Three stuffing bytes: length counts them.
        #expect(Int(packet[5]) == 1 + params.count + 3 + 2)
        let events = parseAll(packet)
        #expect(events == [.packet(DynamixelDecodedPacket(id: 3, instruction: 0x03, parameters: params))])
    }

    @Test func statusRoundTripWithErrorByte() {
        let packet = DynamixelPacketEncoder.status(id: 7, error: 0x84, parameters: [1, 2, 3])
        #expect(parseAll(packet) == [.packet(DynamixelDecodedPacket(id: 7, instruction: 0x55, error: 0x84, parameters: [1, 2, 3]))])
    }

    @Test func parserAcceptsOneByteAtATimeAndGarbage() {
        let a = DynamixelPacketEncoder.status(id: 1, parameters: [0x20, 0x04, 0x2D])
        let b = DynamixelPacketEncoder.status(id: 2, error: 0, parameters: [0xFF, 0xFF, 0xFD, 0x00])
        let garbage: [UInt8] = [0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x13, 0xFF, 0xFF]
        let stream = garbage + a + [0xFF] + b
        let parser = DynamixelStreamParser(capacity: 64)
        var got: [Outcome] = []
        for byte in stream {
            [byte].withUnsafeBytes { parser.feed($0) { got.append(Outcome($0)) } }
        }
        #expect(got == [
            .packet(DynamixelDecodedPacket(id: 1, instruction: 0x55, parameters: [0x20, 0x04, 0x2D])),
            .packet(DynamixelDecodedPacket(id: 2, instruction: 0x55, parameters: [0xFF, 0xFF, 0xFD, 0x00])),
        ])
        #expect(parser.discardedBytes == garbage.count + 1)
        #expect(parser.bufferedCount == 0)
    }

    @Test func corruptedCRCIsCountedThenNextPacketParses() {
        var bad = DynamixelPacketEncoder.status(id: 4, parameters: [9, 9])
        bad[9] ^= 0x40
        let good = DynamixelPacketEncoder.status(id: 4, parameters: [1, 1])
        let parser = DynamixelStreamParser()
        var got: [Outcome] = []
        (bad + good).withUnsafeBytes { parser.feed($0) { got.append(Outcome($0)) } }
        #expect(got.count == 2)
        #expect(got.first == .corrupt(.crcMismatch))
        #expect(got.last == .packet(DynamixelDecodedPacket(id: 4, instruction: 0x55, parameters: [1, 1])))
        #expect(parser.crcErrors == 1)
    }

    @Test func corruptedLengthDoesNotSwallowNextPacket() {
        var bad = DynamixelPacketEncoder.status(id: 4, parameters: [9, 9])
        bad[5] = 0x30  // claims 48 bytes: the good packet lies inside that span
        let good = DynamixelPacketEncoder.status(id: 5, parameters: [1])
        let filler = [UInt8](repeating: 0, count: 60)
        let got = parseAll(bad + good + filler)
        #expect(got.first == .corrupt(.crcMismatch))
        #expect(got.contains(.packet(DynamixelDecodedPacket(id: 5, instruction: 0x55, parameters: [1]))))
    }

    @Test func truncatedPacketWaitsAndReportsBufferedBytes() {
        let packet = DynamixelPacketEncoder.status(id: 1, parameters: [1, 2, 3, 4])
        let parser = DynamixelStreamParser()
        var got: [Outcome] = []
        packet.dropLast(3).withUnsafeBytes { parser.feed($0) { got.append(Outcome($0)) } }
        #expect(got.isEmpty)
        #expect(parser.bufferedCount == packet.count - 3)
        parser.reset()
        #expect(parser.bufferedCount == 0)
    }

    @Test func impossibleLengthIsReported() {
        let bytes: [UInt8] = [0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x02, 0x00, 0x55, 0x00]
        let got = parseAll(bytes)
        #expect(got.first == .corrupt(.badLength))
    }

    @Test func fastStatusWriterAndBlocks() throws {
        let blocks: [(id: UInt8, error: UInt8, data: [UInt8])] = [
            (1, 0, [0x00, 0x08, 0x00, 0x00]), (2, 0x80, [0xFF, 0xFF, 0xFD, 0x00]), (3, 0, [0x10, 0x20, 0x30, 0x40]),
        ]
        let packet = DynamixelPacketEncoder.fastStatus(blocks: blocks)
        #expect(packet.count == 7 + 1 + 3 * 8)
        // Each block's CRC is the CRC of the packet up to the end of its data.
        for (i, end) in [8 + 6, 8 + 14, 8 + 22].enumerated() {
            let crc = DynamixelCRC.checksum(Array(packet[0..<end]))
            #expect(packet[end] == UInt8(crc & 0xFF), "block \(i)")
            #expect(packet[end + 1] == UInt8(crc >> 8), "block \(i)")
        }
        let parser = DynamixelStreamParser()
        var decoded: [(UInt8, UInt8, [UInt8])] = []
        packet.withUnsafeBytes {
            parser.feed($0) { event in
                guard case .packet(let view) = event, view.isFastStatus else { return }
                #expect(view.fastBlocks(dataLength: 4).count == 3)
                for b in view.fastBlocks(dataLength: 4) { decoded.append((b.id, b.error, Array(b.data))) }
            }
        }
        #expect(decoded.map(\.0) == [1, 2, 3])
        #expect(decoded.map(\.1) == [0, 0x80, 0])
        #expect(decoded.map(\.2) == blocks.map(\.data))
    }

    @Test func encoderRejectsSmallBuffer() {
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 9, alignment: 1)
        defer { out.deallocate() }
        #expect(throws: DynamixelEncodingError.self) {
            try DynamixelPacketEncoder.encodeInstruction(id: 1, instruction: .ping, parameters: UnsafeRawBufferPointer(start: nil, count: 0), into: out)
        }
    }

    @Test func statusErrorDescriptions() {
        #expect(DynamixelStatusError(rawValue: 0).isOK)
        #expect(DynamixelStatusError(rawValue: 0x80).hardwareAlert)
        #expect(DynamixelStatusError(rawValue: 0x80).code == nil)
        #expect(DynamixelStatusError(rawValue: 0x87).code == .access)
        #expect(DynamixelStatusError(rawValue: 0x03).description.contains("CRC"))
        #expect(DynamixelStatusError(rawValue: 0x09).code == .unknown)
        #expect(DynamixelHardwareErrorStatus(rawValue: 0x24).description == "overheating, persistent overload")
    }
}

/// Owned, comparable form of a parser event for expectations.
enum Outcome: Equatable {
    case packet(DynamixelDecodedPacket)
    case corrupt(DynamixelCorruption.Kind)

    init(_ event: DynamixelParseEvent) {
        switch event {
        case .packet(let view): self = .packet(view.decoded())
        case .corrupt(let c): self = .corrupt(c.kind)
        }
    }
}

func parseAll(_ bytes: [UInt8], capacity: Int = 2048) -> [Outcome] {
    let parser = DynamixelStreamParser(capacity: capacity)
    var got: [Outcome] = []
    bytes.withUnsafeBytes { parser.feed($0) { got.append(Outcome($0)) } }
    return got
}
