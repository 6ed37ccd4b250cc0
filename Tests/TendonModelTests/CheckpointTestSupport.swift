import Foundation
import TendonModel
import TendonTensor

let checkpointFixtures = fixturesDirectory.appendingPathComponent("checkpoint")

func checkpointFixture(_ name: String) -> String { checkpointFixtures.appendingPathComponent(name).path }

/// Tests/Fixtures/checkpoint/expected.json, written by Tools/reference/checkpoint_fixtures.py from what it gave
/// python safetensors and gguf.GGUFWriter.
func expectedFixtures() throws -> [String: Any] {
    let data = try Data(contentsOf: checkpointFixtures.appendingPathComponent("expected.json"))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

import Testing

func hex(_ tensor: Tensor) -> String {
    let bytes = UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount)
    return bytes.map { String(format: "%02x", $0) }.joined()
}

func bytes(fromHex text: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        result.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// A fresh directory under the system temp dir, removed by `cleanup`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func write(_ bytes: [UInt8], to name: String) throws -> String {
        try Data(bytes).write(to: url.appendingPathComponent(name))
        return path(name)
    }

    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// Catches a typed checkpoint error (so tests can check its kind, file and tensor).
func checkpointError(_ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        Issue.record("expected a CheckpointError, got \(error)")
        return nil
    }
}

/// A tensor holding raw bytes of any dtype.
func rawTensor(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) -> Tensor {
    let storage = TensorStorage(byteCount: bytes.count)
    bytes.withUnsafeBytes { storage.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return Tensor(name: name, dtype: dtype, shape: shape, storage: storage)
}
