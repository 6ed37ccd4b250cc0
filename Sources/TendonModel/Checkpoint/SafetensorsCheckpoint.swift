import Foundation
import TendonTensor

/// A Hugging Face checkpoint's weights: one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {tensor name: shard file name}}`). Lookups go to the shard
/// that holds the tensor; every shard stays memory-mapped for the checkpoint's lifetime.
///
/// API:
/// - `SafetensorsCheckpoint(directory:)` — index if present, else `model.safetensors`.
/// - `SafetensorsCheckpoint(path:)` — a `.safetensors` file or an `*.index.json`.
/// - `names` (sorted), `contains(_:)`, `entry(_:)`, `tensor(_:validate:)`, `file(containing:)`.
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public let names: [String]
    public let files: [SafetensorsFile]
    private let location: [String: Int]

    public convenience init(directory: String) throws(CheckpointError) {
        let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: index) {
            try self.init(path: index)
        } else if FileManager.default.fileExists(atPath: single) {
            try self.init(path: single)
        } else {
            throw CheckpointError(.io, file: directory,
                                  "no model.safetensors or model.safetensors.index.json in this directory")
        }
    }

    public init(path: String) throws(CheckpointError) {
        guard path.hasSuffix(".json") else {
            let file = try SafetensorsFile(path: path)
            files = [file]
            names = file.names.sorted()
            location = Dictionary(uniqueKeysWithValues: file.names.map { ($0, 0) })
            return
        }
        let weightMap = try Self.readWeightMap(path)
        let directory = (path as NSString).deletingLastPathComponent
        let shardNames = Array(Set(weightMap.values)).sorted()
        var opened: [SafetensorsFile] = []
        var shardIndex: [String: Int] = [:]
        for shard in shardNames {
            guard !shard.contains("/"), shard != "..", !shard.isEmpty else {
                throw CheckpointError(.corruptHeader, file: path, "shard name '\(shard)' is not a plain file name")
            }
            shardIndex[shard] = opened.count
            opened.append(try SafetensorsFile(path: (directory as NSString).appendingPathComponent(shard)))
        }
        var location: [String: Int] = [:]
        for (name, shard) in weightMap {
            guard let index = shardIndex[shard] else { continue }
            guard opened[index].contains(name) else {
                throw CheckpointError(.missingTensor, file: opened[index].path, tensor: name,
                                      "listed in \((path as NSString).lastPathComponent) but not present in the shard")
            }
            location[name] = index
        }
        files = opened
        self.location = location
        names = location.keys.sorted()
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func file(containing name: String) -> SafetensorsFile? { location[name].map { files[$0] } }

    public func entry(_ name: String) -> SafetensorsEntry? { file(containing: name)?.entry(name) }

    public func tensor(_ name: String, validate: Bool = true) throws(CheckpointError) -> Tensor {
        guard let file = file(containing: name) else {
            throw CheckpointError(.missingTensor, file: files.first?.path ?? "checkpoint", tensor: name,
                                  "no such tensor in the checkpoint (\(files.count) file(s))")
        }
        return try file.tensor(name, validate: validate)
    }

    private static func readWeightMap(_ path: String) throws(CheckpointError) -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CheckpointError(.io, file: path, "cannot read: \(error.localizedDescription)")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw CheckpointError(.corruptHeader, file: path, "not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any], let map = root["weight_map"] as? [String: String] else {
            throw CheckpointError(.corruptHeader, file: path, "expected an object with \"weight_map\": {tensor: file}")
        }
        return map
    }
}
