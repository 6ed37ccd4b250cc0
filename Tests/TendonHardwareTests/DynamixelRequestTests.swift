import Testing
import TendonHardware

/// The device-side request decoder on the instruction packets the ROBOTIS SDK sent.
@Suite struct DynamixelRequestTests {
    let fx: DynamixelSDKFixtures
    init() throws { fx = try DynamixelSDKFixtures.load() }

    /// Parses `bytes` and hands the request to `check` while the parser's memory is valid.
    func withRequest(_ bytes: [UInt8], _ check: (Result<DynamixelRequest, DynamixelRequestError>) -> Void) {
        let parser = DynamixelStreamParser()
        var seen = 0
        bytes.withUnsafeBytes { raw in
            parser.feed(raw) { event in
                if case .packet(let view) = event {
                    seen += 1
                    check(DynamixelRequest.parse(view))
                }
            }
        }
        #expect(seen == 1)
    }

    func sdk(_ name: String) -> [UInt8] { fx.instruction(name)?.bytes ?? [] }

    @Test func singleServoRequests() {
        withRequest(sdk("ping")) { r in
            guard case .success(.ping) = r else { Issue.record("\(r)"); return }
        }
        withRequest(sdk("read4")) { r in
            guard case .success(.read(let address, let length)) = r else { Issue.record("\(r)"); return }
            #expect(address == 132 && length == 4)
        }
        withRequest(sdk("write_stuffed")) { r in
            guard case .success(.write(let address, let data)) = r else { Issue.record("\(r)"); return }
            #expect(address == 116 && Array(data) == [0xFF, 0xFF, 0xFD, 0x00])
        }
        withRequest(sdk("reboot")) { r in
            guard case .success(.reboot) = r else { Issue.record("\(r)"); return }
        }
    }

    @Test func syncRequests() {
        withRequest(sdk("fast_sync_read_132_4")) { r in
            guard case .success(.syncRead(let address, let length, let ids, let fast)) = r else { Issue.record("\(r)"); return }
            #expect(address == 132 && length == 4 && fast)
            #expect(Array(ids) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
            #expect(ids.firstIndex(of: 7) == 6)
        }
        withRequest(sdk("sync_write_116_4")) { r in
            guard case .success(.syncWrite(let address, let length, let records)) = r else { Issue.record("\(r)"); return }
            #expect(address == 116 && length == 4 && records.count == 9)
            #expect(records.data(for: 9).map(Array.init) == [0xFF, 0xFF, 0xFF, 0xFF])
            #expect(records.data(for: 1).map(Array.init) == [0x5D, 0x07, 0, 0])  // 2048 + 37 - 200
            #expect(records.data(for: 10) == nil)
        }
    }

    @Test func bulkRequests() {
        withRequest(sdk("bulk_read")) { r in
            guard case .success(.bulkRead(let entries, let fast)) = r else { Issue.record("\(r)"); return }
            #expect(!fast)
            #expect(Array(entries) == [.init(id: 1, address: 132, length: 4), .init(id: 2, address: 70, length: 1),
                                       .init(id: 3, address: 126, length: 2)])
            #expect(entries.position(of: 3) == 2)
        }
        withRequest(sdk("fast_bulk_read")) { r in
            guard case .success(.bulkRead(_, let fast)) = r else { Issue.record("\(r)"); return }
            #expect(fast)
        }
        withRequest(sdk("bulk_write")) { r in
            guard case .success(.bulkWrite(let records)) = r else { Issue.record("\(r)"); return }
            #expect(records.map(\.id) == [1, 2, 3])
            #expect(records.record(for: 3).map { Array($0.data) } == [0xCE, 0xFF])
            #expect(records.record(for: 2)?.address == 65)
        }
    }

    @Test func malformedRequestsNameWhatWasExpected() {
        withRequest(DynamixelPacketEncoder.instruction(id: 1, .read, parameters: [132, 0, 4])) { r in
            guard case .failure(let e) = r else { Issue.record("\(r)"); return }
            #expect(e.kind == .badParameterLength && e.expected == 4 && e.found == 3)
            #expect(e.statusErrorCode == 5)
            #expect(e.description == "READ with 3 parameter bytes; expected 4")
        }
        withRequest(DynamixelPacketEncoder.instruction(id: 0xFE, .bulkWrite, parameters: [1, 116, 0, 4, 0, 1, 2])) { r in
            guard case .failure(let e) = r else { Issue.record("\(r)"); return }
            #expect(e.kind == .badParameterLength)
        }
        withRequest(DynamixelPacketEncoder.status(id: 1)) { r in
            guard case .failure(let e) = r else { Issue.record("\(r)"); return }
            #expect(e.kind == .unknownInstruction && e.statusErrorCode == 2)
        }
    }
}
