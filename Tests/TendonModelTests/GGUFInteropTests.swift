import Foundation
import Testing
import TendonModel
import TendonTensor

/// GGUF both ways against gguf-py 0.19: files written by `gguf.GGUFWriter` are read with identical metadata and
/// tensor bytes, and our writer reproduces those files byte for byte. The committed swift_written.gguf is checked
/// by python with `checkpoint_fixtures.py check-gguf` (command in the script's docstring).
@Suite struct GGUFInteropTests {
    static let files = ["python_written.gguf", "python_aligned64.gguf"]

    @Test(arguments: files) func readsPythonWrittenFiles(name: String) throws {
        let expected = try #require((try expectedFixtures()["gguf"] as? [String: Any])?[name] as? [String: Any])
        let file = try GGUFFile(path: checkpointFixture(name))
        #expect(file.version == 3)
        #expect(file.alignment == expected["alignment"] as? Int)
        #expect(file.dataOffset % file.alignment == 0)

        let metadata = try #require(expected["metadata"] as? [[String: Any]])
        #expect(file.metadataKeys == metadata.compactMap { $0["key"] as? String })
        for entry in metadata {
            let key = try #require(entry["key"] as? String)
            #expect(file.metadata[key] == (try value(fromJSON: entry)), "\(key)")
        }
        #expect(file.metadata["test.string"]?.string == "héllo, wörld ✓ \"quoted\"\n")
        #expect(file.metadata["test.uint64"]?.int == nil)  // beyond Int.max: no silent wrap

        let tensors = try #require(expected["tensors"] as? [[String: Any]])
        #expect(file.names == tensors.compactMap { $0["name"] as? String })
        for info in tensors {
            let name = try #require(info["name"] as? String)
            let tensor = try file.tensor(name)
            #expect(tensor.dtype.rawValue == (info["type"] as? Int).map(UInt32.init), "\(name)")
            #expect(tensor.shape == info["shape"] as? [Int], "\(name)")
            #expect(hex(tensor) == info["hex"] as? String, "\(name)")
            #expect((tensor.rawPointer - file.file.base) % file.alignment == 0)
        }
    }

    @Test(arguments: files) func writerReproducesPythonFilesByteForByte(name: String) throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let source = try GGUFFile(path: checkpointFixture(name))
        let path = temp.path("rewritten.gguf")
        try rewrite(source, to: path, alignment: source.alignment)
        let ours = try Data(contentsOf: URL(fileURLWithPath: path))
        let theirs = try Data(contentsOf: URL(fileURLWithPath: checkpointFixture(name)))
        #expect(ours.count == theirs.count)
        #expect(ours == theirs)
    }

    /// The committed swift_written.gguf (python_written's content at alignment 64) is what the writer makes now.
    /// Regenerate: TENDON_WRITE_FIXTURES=1 swift test --filter swiftWrittenFixtureIsCurrent
    @Test func swiftWrittenFixtureIsCurrent() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let source = try GGUFFile(path: checkpointFixture("python_written.gguf"))
        let path = temp.path("swift_written.gguf")
        try rewrite(source, to: path, alignment: 64)
        let fresh = try Data(contentsOf: URL(fileURLWithPath: path))
        if ProcessInfo.processInfo.environment["TENDON_WRITE_FIXTURES"] == "1" {
            try fresh.write(to: URL(fileURLWithPath: checkpointFixture("swift_written.gguf")))
        }
        let committed = try Data(contentsOf: URL(fileURLWithPath: checkpointFixture("swift_written.gguf")))
        #expect(fresh == committed)
        let back = try GGUFFile(path: path)
        #expect(back.alignment == 64)
        #expect(back.metadata[GGUFFormat.alignmentKey] == .uint32(64))
        for name in source.names { #expect(hex(try back.tensor(name)) == hex(try source.tensor(name))) }
    }

    @Test func chunkedAppendsMakeTheSameFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let a = Tensor([1, 2, 3, 4, 5], shape: [5], name: "a")
        let b = Tensor([6, 7], shape: [1, 2], name: "b")
        try GGUFWriter.write(path: temp.path("whole.gguf"), metadata: [], tensors: [a, b])
        let writer = try GGUFWriter(path: temp.path("chunks.gguf"), metadata: [], tensors: [
            .init(name: "a", dtype: .f32, shape: [5]), .init(name: "b", dtype: .f32, shape: [1, 2]),
        ])
        try writer.append("a", bytes: UnsafeRawBufferPointer(start: a.rawPointer, count: 8))
        let early = checkpointError { try writer.append("b", bytes: UnsafeRawBufferPointer(start: b.rawPointer, count: 8)) }
        #expect(early?.kind == .invalidArgument)
        let tooMuch = checkpointError { try writer.append("a", bytes: UnsafeRawBufferPointer(start: a.rawPointer, count: 16)) }
        #expect(tooMuch?.kind == .invalidArgument)
        try writer.append("a", bytes: UnsafeRawBufferPointer(start: a.rawPointer + 8, count: 12))
        try writer.append("b", bytes: UnsafeRawBufferPointer(start: b.rawPointer, count: 8))
        try writer.finish()
        #expect(try Data(contentsOf: temp.url.appendingPathComponent("whole.gguf"))
            == Data(contentsOf: temp.url.appendingPathComponent("chunks.gguf")))
    }

    /// A conversion that stops half-way leaves neither the file nor its `.partial`.
    @Test func abandonedWriterLeavesNothing() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let path = temp.path("abandoned.gguf")
        do {
            let a = Tensor([1, 2], shape: [2], name: "a")
            let writer = try GGUFWriter(path: path, metadata: [], tensors: [
                .init(name: "a", dtype: .f32, shape: [2]), .init(name: "b", dtype: .f32, shape: [2]),
            ])
            try writer.write(a)
            #expect(FileManager.default.fileExists(atPath: path + ".partial"))
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }

    @Test func streamingWriterChecksOrderAndSizes() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let path = temp.path("stream.gguf")
        let writer = try GGUFWriter(path: path, metadata: [("general.architecture", .string("x"))], tensors: [
            .init(name: "a", dtype: .f32, shape: [2]),
            .init(name: "b", dtype: .q8_0, shape: [1, 32]),
        ])
        let wrongOrder = checkpointError { try writer.write("b", bytes: UnsafeRawBufferPointer(start: nil, count: 0)) }
        #expect(wrongOrder?.kind == .invalidArgument)
        let short = rawTensor("a", .f32, [2], [0, 0, 0, 0])  // 4 bytes where [2] f32 needs 8
        let wrongSize = checkpointError {
            try writer.write("a", bytes: UnsafeRawBufferPointer(start: short.rawPointer, count: 4))
        }
        #expect(wrongSize?.kind == .invalidArgument)
        let early = checkpointError { try writer.finish() }
        #expect(early?.tensor == "a")
        #expect(!FileManager.default.fileExists(atPath: path), "nothing at the final path before finish()")

        let partialBlock = checkpointError {
            _ = try GGUFWriter(path: temp.path("bad.gguf"), metadata: [], tensors: [.init(name: "w", dtype: .q4_K, shape: [2, 32])])
        }
        #expect(partialBlock?.kind == .invalidArgument)
        #expect(partialBlock?.tensor == "w")
        let mixedArray = checkpointError {
            _ = try GGUFWriter(path: temp.path("bad.gguf"), metadata: [("k", .array(.int32, [.int32(1), .string("x")]))], tensors: [])
        }
        #expect(mixedArray?.kind == .invalidArgument)
    }
}

func rewrite(_ source: GGUFFile, to path: String, alignment: Int) throws {
    let metadata = source.metadataKeys.compactMap { key in source.metadata[key].map { (key: key, value: $0) } }
    let tensors = try source.names.map { name throws(CheckpointError) in try source.tensor(name) }
    try GGUFWriter.write(path: path, metadata: metadata, tensors: tensors, alignment: alignment)
}

/// expected.json's language-neutral form of a metadata value → GGUFValue.
func value(fromJSON entry: [String: Any]) throws -> GGUFValue {
    let type = try #require((entry["type"] as? Int).flatMap { GGUFValueType(rawValue: UInt32($0)) })
    let raw = entry["value"]
    let number = raw as? NSNumber
    switch type {
    case .uint8: return .uint8(try #require(number).uint8Value)
    case .int8: return .int8(try #require(number).int8Value)
    case .uint16: return .uint16(try #require(number).uint16Value)
    case .int16: return .int16(try #require(number).int16Value)
    case .uint32: return .uint32(try #require(number).uint32Value)
    case .int32: return .int32(try #require(number).int32Value)
    case .uint64: return .uint64(try #require(number).uint64Value)
    case .int64: return .int64(try #require(number).int64Value)
    case .float32: return .float32(try #require(number).floatValue)
    case .float64: return .float64(try #require(number).doubleValue)
    case .bool: return .bool(try #require(raw as? Bool))
    case .string: return .string(try #require(raw as? String))
    case .array:
        let elementType = try #require((entry["element_type"] as? Int).flatMap { GGUFValueType(rawValue: UInt32($0)) })
        let elements = try #require(raw as? [[String: Any]])
        return .array(elementType, try elements.map(value(fromJSON:)))
    }
}
