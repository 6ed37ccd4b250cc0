import Foundation
import Glibc
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

    /// Loading and validating every weight leaves them in the file mapping: /proc/self/smaps shows the whole
    /// file resident in that mapping and no anonymous (copied) pages in it — model RSS ≈ file size.
    @Test func weightsStayInTheFileMapping() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let path = temp.path("big.safetensors")
        let rows = 64
        let tensors = (0..<8).map { i in Tensor([Float](repeating: Float(i), count: rows * 8192), shape: [rows, 8192], name: "w\(i)") }
        try SafetensorsWriter.write(tensors, to: path)  // 16 MB
        let file = try SafetensorsFile(path: path)
        var sum: Float = 0
        for name in file.names {
            let tensor = try file.tensor(name)  // validateFinite touches every page
            sum += tensor.floats[tensor.elementCount - 1]
        }
        #expect(sum == 28)
        let smaps = readProcFile("/proc/self/smaps")
        let mapping = try #require(smapsEntry(for: path, in: smaps), "no mapping of \(path) in /proc/self/smaps")
        let pageRounded = (file.file.byteCount + 4095) / 4096 * 4
        #expect(mapping.rssKB >= pageRounded - 4 && mapping.rssKB <= pageRounded, "resident \(mapping.rssKB) kB of \(pageRounded) kB")
        #expect(mapping.anonymousKB == 0)
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

    /// The committed swift_written.safetensors (single.safetensors' tensors, written by us) is what the writer
    /// makes now; python `safetensors` checks it: `checkpoint_fixtures.py check-safetensors`.
    /// Regenerate: TENDON_WRITE_FIXTURES=1 swift test --filter swiftWrittenSafetensorsIsCurrent
    @Test func swiftWrittenSafetensorsIsCurrent() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let source = try SafetensorsFile(path: checkpointFixture("single.safetensors"))
        let tensors = try source.names.map { name throws(CheckpointError) in try source.tensor(name) }
        let path = temp.path("swift_written.safetensors")
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt", "writer": "tendon"], to: path)
        let fresh = try Data(contentsOf: URL(fileURLWithPath: path))
        if ProcessInfo.processInfo.environment["TENDON_WRITE_FIXTURES"] == "1" {
            try fresh.write(to: URL(fileURLWithPath: checkpointFixture("swift_written.safetensors")))
        }
        #expect(fresh == (try Data(contentsOf: URL(fileURLWithPath: checkpointFixture("swift_written.safetensors")))))
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

/// Rss and Anonymous of the mapping of `path` in /proc/self/smaps (Linux).
func smapsEntry(for path: String, in text: String) -> (rssKB: Int, anonymousKB: Int)? {
    var inside = false
    var rss: Int?
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let first = fields.first, first.contains("-"), fields.count >= 5, first.first?.isHexDigit == true {
            if inside, let rss { _ = rss; break }
            inside = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            continue
        }
        guard inside, fields.count >= 2, let value = Int(fields[1]) else { continue }
        if fields[0] == "Rss:" { rss = value }
        if fields[0] == "Anonymous:", let rss { return (rss, value) }
    }
    return nil
}

/// /proc files report size 0, so they are read until EOF rather than by their stat size.
func readProcFile(_ path: String) -> String {
    let fd = Glibc.open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var data = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        data += chunk[0..<count]
    }
    return String(decoding: data, as: UTF8.self)
}
