// Where the backbone's config and tensors come from: a Hugging Face folder (config.json + safetensors,
// single or sharded), one .safetensors file with config.json beside it, or a Tendon GGUF (config.json text
// in the `tendon.config_json` metadata string, tensors under their Hugging Face names).
import Foundation
import TendonTensor

extension Qwen35TextModel {
    /// GGUF metadata key holding the checkpoint's config.json text.
    public static let ggufConfigKey = "tendon.config_json"

    /// Opens a folder, a .safetensors file or a .gguf file. Weights stay memory-mapped.
    public convenience init(path: String, pool: ThreadPool? = nil) throws(Qwen35Error) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .missingFile("\(path) does not exist (expected a model folder, .safetensors or .gguf file)")
        }
        if isDirectory.boolValue {
            let config = try Qwen35Config.load(from: URL(fileURLWithPath: path).appendingPathComponent("config.json"))
            let checkpoint: SafetensorsCheckpoint
            do { checkpoint = try SafetensorsCheckpoint(directory: path) } catch { throw .missingFile(error.description) }
            try self.init(config: config.text, pool: pool, lookup: Self.lookup(checkpoint))
        } else if path.hasSuffix(".gguf") {
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .weights(error.description) }
            guard let text = file.metadata[Self.ggufConfigKey]?.string else {
                throw .config("\(path): no \(Self.ggufConfigKey) metadata string (expected the config.json text)")
            }
            let config = try Qwen35Config.decode(Data(text.utf8), source: "\(path) \(Self.ggufConfigKey)")
            try self.init(config: config.text, pool: pool) { name throws(Qwen35Error) in
                guard file.info(name) != nil else { return nil }
                do throws(CheckpointError) { return try file.tensor(name) } catch { throw .weights(error.description) }
            }
        } else {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            let config = try Qwen35Config.load(from: folder.appendingPathComponent("config.json"))
            let checkpoint: SafetensorsCheckpoint
            do { checkpoint = try SafetensorsCheckpoint(path: path) } catch { throw .weights(error.description) }
            try self.init(config: config.text, pool: pool, lookup: Self.lookup(checkpoint))
        }
    }

    static func lookup(_ checkpoint: SafetensorsCheckpoint) -> (String) throws(Qwen35Error) -> Tensor? {
        { name throws(Qwen35Error) in
            guard checkpoint.contains(name) else { return nil }
            do throws(CheckpointError) { return try checkpoint.tensor(name) } catch { throw .weights(error.description) }
        }
    }
}
