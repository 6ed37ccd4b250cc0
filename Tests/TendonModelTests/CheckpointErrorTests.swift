import Foundation
import Testing
import TendonModel
import TendonTensor

/// Bad files give a `CheckpointError` naming the file and, where one is involved, the tensor — never a crash.
@Suite struct SafetensorsErrorTests {
    /// A safetensors file from header JSON text and data bytes.
    func safetensors(_ header: String, data: [UInt8] = []) -> [UInt8] {
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
        bytes += Array(header.utf8) + data
        return bytes
    }

    func open(_ bytes: [UInt8], _ temp: TemporaryDirectory) throws -> CheckpointError? {
        let path = try temp.write(bytes, to: "bad.safetensors")
        let error = checkpointError { _ = try SafetensorsFile(path: path) }
        if let error {
            #expect(error.file == path)
            #expect(error.description.hasPrefix(path))
        }
        return error
    }

    @Test func truncatedHeaderAndData() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        #expect(try open([1, 2, 3], temp)?.kind == .truncated)
        var lying = withUnsafeBytes(of: UInt64(1000).littleEndian) { Array($0) }
        lying += Array("{}".utf8)
        #expect(try open(lying, temp)?.kind == .truncated)
        let beyond = try open(safetensors(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 8)), temp)
        #expect(beyond?.kind == .truncated)
        #expect(beyond?.tensor == "w")
    }

    @Test func everyPrefixOfARealFileFailsCleanly() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let whole = Array(try Data(contentsOf: URL(fileURLWithPath: checkpointFixture("single.safetensors"))))
        for length in 0..<whole.count {
            let error = try open(Array(whole[0..<length]), temp)
            #expect(error != nil, "prefix of \(length) bytes was accepted")
        }
    }

    @Test func corruptJSON() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        #expect(try open(safetensors(#"{"w":{"dtype":"F32""#), temp)?.kind == .corruptHeader)
        #expect(try open(safetensors("[1,2]"), temp)?.kind == .corruptHeader)
        #expect(try open(safetensors(#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), temp)?.kind == .corruptHeader)
        #expect(try open(safetensors(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), temp)?.kind == .corruptHeader)
        #expect(try open(safetensors(#"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]), temp)?.tensor == "w")
        #expect(try open(safetensors(#"{"__metadata__":{"a":1}}"#), temp)?.kind == .corruptHeader)
    }

    @Test func offsetsOutOfRangeOrOverlapping() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let data = [UInt8](repeating: 0, count: 16)
        let reversed = try open(safetensors(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: data), temp)
        #expect(reversed?.kind == .badOffsets)
        let overlap = try open(safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: data), temp)
        #expect(overlap?.kind == .badOffsets)
        #expect(overlap?.tensor == "b")
        #expect(overlap?.message.contains("'a'") == true)
    }

    @Test func shapeTimesDtypeMismatch() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let error = try open(safetensors(#"{"w":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 16)), temp)
        #expect(error?.kind == .sizeMismatch)
        #expect(error?.tensor == "w")
        #expect(error?.message.contains("12") == true)
    }

    @Test func unknownAndUnsupportedDtypes() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let i64 = try open(safetensors(#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)), temp)
        #expect(i64?.kind == .unsupportedDType)
        #expect(i64?.tensor == "ids")
        #expect(i64?.message.contains("I64") == true)
        let garbage = try open(safetensors(#"{"x":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), temp)
        #expect(garbage?.kind == .unsupportedDType)
        #expect(garbage?.message.contains("not a safetensors dtype") == true)
    }

    @Test func nonFiniteWeightsNameTensorAndIndex() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let cases: [(DType, [UInt8], Int)] = [
            (.f32, [0, 0, 0x80, 0x3F] + [0, 0, 0xC0, 0x7F] + [0, 0, 0, 0], 1),   // 1.0, NaN, 0
            (.f16, [0, 0x3C, 0, 0x3C, 0, 0x7C], 2),                              // 1, 1, +Inf
            (.bf16, [0x80, 0xFF, 0x80, 0x3F, 0x80, 0x3F], 0),                   // -Inf, 1, 1
        ]
        for (dtype, data, index) in cases {
            let name = "w.\(dtype)"
            let path = temp.path("nan.safetensors")
            try SafetensorsWriter.write([rawTensor(name, dtype, [3], data)], to: path)
            let file = try SafetensorsFile(path: path)
            let error = checkpointError { _ = try file.tensor(name) }
            #expect(error?.kind == .nonFinite)
            #expect(error?.tensor == name)
            #expect(error?.message.contains("element \(index) ") == true, "\(error?.message ?? "")")
            #expect(throws: Never.self) { _ = try file.tensor(name, validate: false) }
        }
        // Large tensors scan in chunks; a NaN deep inside is still found at its index.
        var big = [Float](repeating: 0.5, count: 10_000)
        big[9_123] = .infinity
        #expect(firstNonFiniteIndex(Tensor(big, shape: [100, 100])) == 9_123)
        #expect(firstNonFiniteIndex(Tensor([Float](repeating: 1, count: 9_000), shape: [9_000])) == nil)
    }

    @Test func shardIndexErrors() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        try SafetensorsWriter.write([Tensor([1, 2], shape: [2], name: "a")], to: temp.path("s1.safetensors"))
        let lying = #"{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}"#
        try Data(lying.utf8).write(to: temp.url.appendingPathComponent("model.safetensors.index.json"))
        let missingTensor = checkpointError { _ = try SafetensorsCheckpoint(directory: temp.url.path) }
        #expect(missingTensor?.kind == .missingTensor)
        #expect(missingTensor?.tensor == "b")
        #expect(missingTensor?.file.hasSuffix("s1.safetensors") == true)

        try Data(#"{"weight_map":{"a":"s2.safetensors"}}"#.utf8).write(to: temp.url.appendingPathComponent("model.safetensors.index.json"))
        let missingShard = checkpointError { _ = try SafetensorsCheckpoint(directory: temp.url.path) }
        #expect(missingShard?.kind == .io)
        #expect(missingShard?.file.hasSuffix("s2.safetensors") == true)

        try Data("{not json".utf8).write(to: temp.url.appendingPathComponent("model.safetensors.index.json"))
        #expect(checkpointError { _ = try SafetensorsCheckpoint(directory: temp.url.path) }?.kind == .corruptHeader)

        let empty = try TemporaryDirectory()
        defer { empty.cleanup() }
        #expect(checkpointError { _ = try SafetensorsCheckpoint(directory: empty.url.path) }?.kind == .io)
    }
}

@Suite struct GGUFErrorTests {
    /// Builds GGUF bytes field by field so each test can break exactly one thing.
    struct Builder {
        var bytes: [UInt8] = []
        mutating func u32(_ v: UInt32) { bytes += withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        mutating func u64(_ v: UInt64) { bytes += withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
        mutating func pad(_ alignment: Int) { bytes += [UInt8](repeating: 0, count: (alignment - bytes.count % alignment) % alignment) }
    }

    struct Info { var name: String; var ne: [UInt64]; var type: UInt32; var offset: UInt64 }

    func gguf(magic: UInt32 = 0x4655_4747, version: UInt32 = 3, alignment: UInt32? = nil, infos: [Info], data: [UInt8]) -> [UInt8] {
        var b = Builder()
        b.u32(magic); b.u32(version); b.u64(UInt64(infos.count)); b.u64(alignment == nil ? 1 : 2)
        b.string("general.architecture"); b.u32(8); b.string("t")
        if let alignment { b.string("general.alignment"); b.u32(4); b.u32(alignment) }
        for info in infos {
            b.string(info.name); b.u32(UInt32(info.ne.count))
            for n in info.ne { b.u64(n) }
            b.u32(info.type); b.u64(info.offset)
        }
        b.pad(Int(alignment ?? 32))
        return b.bytes + data
    }

    func open(_ bytes: [UInt8], _ temp: TemporaryDirectory) throws -> CheckpointError? {
        let path = try temp.write(bytes, to: "bad.gguf")
        let error = checkpointError { _ = try GGUFFile(path: path) }
        if let error { #expect(error.file == path) }
        return error
    }

    let oneF32 = Info(name: "w", ne: [4], type: 0, offset: 0)
    let zeros16 = [UInt8](repeating: 0, count: 16)

    @Test func wellFormedBuilderOutputIsAccepted() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        #expect(try open(gguf(infos: [oneF32], data: zeros16), temp) == nil)
    }

    @Test func wrongMagicOrVersion() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        #expect(try open(gguf(magic: 0x4C4C_4747, infos: [oneF32], data: zeros16), temp)?.kind == .badMagic)
        #expect(try open(gguf(version: 2, infos: [oneF32], data: zeros16), temp)?.kind == .badVersion)
        let bigEndian = try open(gguf(version: UInt32(3).byteSwapped, infos: [oneF32], data: zeros16), temp)
        #expect(bigEndian?.message.contains("big-endian") == true)
        #expect(try open([], temp)?.kind == .truncated)
    }

    /// Cut anywhere before the last tensor's last byte → `.truncated`; only the final padding may go.
    @Test func everyPrefixOfAPythonFileIsTruncated() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let whole = Array(try Data(contentsOf: URL(fileURLWithPath: checkpointFixture("python_written.gguf"))))
        let file = try GGUFFile(path: checkpointFixture("python_written.gguf"))
        let dataEnd = file.dataOffset + file.tensorInfos.map { $0.offset + $0.byteCount }.max()!
        #expect(dataEnd < whole.count)
        for length in 0..<whole.count {
            let error = try open(Array(whole[0..<length]), temp)
            if length < dataEnd {
                #expect(error?.kind == .truncated, "prefix of \(length) bytes: \(error?.description ?? "accepted")")
            } else {
                #expect(error == nil, "prefix of \(length) bytes ends in padding: \(error?.description ?? "")")
            }
        }
    }

    /// Any single corrupted header byte gives an error or a file that still parses — never a crash or a hang.
    @Test func corruptedHeaderBytesNeverCrash() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let whole = Array(try Data(contentsOf: URL(fileURLWithPath: checkpointFixture("python_written.gguf"))))
        let file = try GGUFFile(path: checkpointFixture("python_written.gguf"))
        for position in 0..<file.dataOffset {
            for replacement: UInt8 in [0xFF, 0x7F] where whole[position] != replacement {
                var bad = whole
                bad[position] = replacement
                let path = try temp.write(bad, to: "fuzz.gguf")
                if let parsed = try? GGUFFile(path: path) {
                    for name in parsed.names { _ = try? parsed.tensor(name) }
                }
            }
        }
    }

    @Test func dataBeyondEndOfFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let error = try open(gguf(infos: [oneF32], data: [UInt8](repeating: 0, count: 8)), temp)
        #expect(error?.kind == .truncated)
        #expect(error?.tensor == "w")
    }

    @Test func misalignedAndOverlappingOffsets() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let misaligned = try open(gguf(infos: [Info(name: "w", ne: [4], type: 0, offset: 4)], data: [UInt8](repeating: 0, count: 64)), temp)
        #expect(misaligned?.kind == .badOffsets)
        #expect(misaligned?.tensor == "w")
        let overlap = try open(gguf(infos: [Info(name: "a", ne: [16], type: 0, offset: 0), Info(name: "b", ne: [4], type: 0, offset: 32)],
                                    data: [UInt8](repeating: 0, count: 64)), temp)
        #expect(overlap?.kind == .badOffsets)
        #expect(overlap?.tensor == "b")
    }

    @Test func unsupportedTypesAndPartialBlocks() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let q3k = try open(gguf(infos: [Info(name: "w", ne: [256], type: 11, offset: 0)], data: [UInt8](repeating: 0, count: 110)), temp)
        #expect(q3k?.kind == .unsupportedDType)
        #expect(q3k?.message.contains("Q3_K") == true)
        // Q5_K (13) is read since it became a weight type here.
        #expect(try open(gguf(infos: [Info(name: "w", ne: [256], type: 13, offset: 0)], data: [UInt8](repeating: 0, count: 176)), temp) == nil)
        let partial = try open(gguf(infos: [Info(name: "w", ne: [40, 2], type: 8, offset: 0)], data: [UInt8](repeating: 0, count: 128)), temp)
        #expect(partial?.kind == .sizeMismatch)
        #expect(partial?.tensor == "w")
        let nineDims = try open(gguf(infos: [Info(name: "w", ne: [1, 1, 1, 1, 1, 1, 1, 1, 1], type: 0, offset: 0)], data: zeros16), temp)
        #expect(nineDims?.kind == .corruptHeader)
        // A Conv3d patch weight is 5-D and kept as is.
        #expect(try open(gguf(infos: [Info(name: "w", ne: [2, 2, 1, 1, 1], type: 0, offset: 0)], data: zeros16), temp) == nil)
    }

    @Test func badAlignment() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        #expect(try open(gguf(alignment: 24, infos: [oneF32], data: zeros16), temp)?.kind == .corruptHeader)
        #expect(try open(gguf(alignment: 64, infos: [oneF32], data: zeros16), temp) == nil)
    }

    @Test func nonFiniteWeightsAndScales() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        var q8 = [UInt8](repeating: 1, count: 68)
        q8[34] = 0x00; q8[35] = 0x7E  // second block's f16 scale = NaN
        let path = temp.path("nan.gguf")
        try GGUFWriter.write(path: path, metadata: [], tensors: [
            rawTensor("q", .q8_0, [1, 64], q8),
            Tensor([1, 2, .nan, 4], shape: [2, 2], name: "f"),
        ])
        let file = try GGUFFile(path: path)
        let scale = checkpointError { _ = try file.tensor("q") }
        #expect(scale?.kind == .nonFinite)
        #expect(scale?.tensor == "q")
        #expect(scale?.message.contains("32") == true)
        let value = checkpointError { _ = try file.tensor("f") }
        #expect(value?.tensor == "f")
        #expect(value?.message.contains("element 2 ") == true)
        #expect(checkpointError { _ = try file.tensor("nope") }?.kind == .missingTensor)
    }
}
