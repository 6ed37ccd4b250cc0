import Foundation
import Testing
import TendonModel
import TendonTensor

/// Reads files written by python `safetensors` (Tools/reference/checkpoint_fixtures.py) and compares every
/// tensor's dtype, shape and bytes with what the script stored.
@Suite struct SafetensorsReaderTests {
    @Test func singleFileMatchesPython() throws {
        let expected = try #require((try expectedFixtures()["safetensors"] as? [String: Any])?["single"] as? [String: [String: Any]])
        let file = try SafetensorsFile(path: checkpointFixture("single.safetensors"))
        #expect(Set(file.names) == Set(expected.keys))
        #expect(file.metadata == ["format": "pt", "note": "tendon"])
        for (name, info) in expected {
            let tensor = try file.tensor(name)
            #expect(tensor.dtype.description == info["dtype"] as? String, "\(name)")
            #expect(tensor.shape == info["shape"] as? [Int], "\(name)")
            #expect(hex(tensor) == info["hex"] as? String, "\(name)")
        }
        let a = try file.tensor("a.weight")
        // Compared as Float: Foundation's JSON parser is not correctly rounded in the last double ulp.
        #expect(a.toArray() == (expected["a.weight"]?["values"] as? [Double])?.map { Float($0) })
        #expect(try file.tensor("scalar").toArray() == [1.5])
    }

    @Test func tensorsAreViewsIntoTheMapping() throws {
        let file = try SafetensorsFile(path: checkpointFixture("single.safetensors"))
        let tensor = try file.tensor("a.weight")
        let range = try #require(file.entry("a.weight")).byteRange
        #expect(tensor.rawPointer == file.file.base + range.lowerBound)
        #expect(tensor.storage.owner === file.file)
    }

    @Test func shardedCheckpointFindsEveryTensorInItsShard() throws {
        let expected = try #require((try expectedFixtures()["safetensors"] as? [String: Any])?["sharded"] as? [String: [String: Any]])
        let directory = checkpointFixtures.appendingPathComponent("sharded").path
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        #expect(checkpoint.files.count == 2)
        #expect(checkpoint.names == expected.keys.sorted())
        for (name, info) in expected {
            let tensor = try checkpoint.tensor(name)
            #expect(tensor.shape == info["shape"] as? [Int])
            #expect(hex(tensor) == info["hex"] as? String, "\(name)")
        }
        #expect(checkpoint.file(containing: "layer.1.weight")?.path.hasSuffix("model-00002-of-00002.safetensors") == true)
        let missing = checkpointError { _ = try checkpoint.tensor("layer.9.weight") }
        #expect(missing?.kind == .missingTensor)
        #expect(missing?.tensor == "layer.9.weight")
    }

    @Test func writerRoundTrips() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let source = try SafetensorsFile(path: checkpointFixture("single.safetensors"))
        let tensors = try source.names.map { name throws(CheckpointError) in try source.tensor(name) }
        let path = temp.path("out.safetensors")
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: path)
        let back = try SafetensorsFile(path: path)
        #expect(Set(back.names) == Set(source.names))
        #expect(back.metadata == ["format": "pt"])
        for name in source.names { #expect(hex(try back.tensor(name)) == hex(try source.tensor(name))) }
        // The data section starts 8-byte aligned, as python safetensors pads its header.
        let headerLength = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8)
            .withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }
}
