// Minimal safetensors folder reading (single file or index + shards, F32/F16/BF16) used until the FILES
// readers in Checkpoint/ land; the backbone only sees the `(name) -> Tensor?` lookup it returns.
import Foundation
import TendonTensor

enum InterimSafetensors {
    /// Every tensor of a Hugging Face folder (or one .safetensors file), by name.
    static func load(_ url: URL) throws(Qwen35Error) -> [String: Tensor] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw .missingFile("\(url.path) does not exist")
        }
        if !isDir.boolValue { return try readFile(url) }
        let single = url.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return try readFile(single) }
        let index = url.appendingPathComponent("model.safetensors.index.json")
        guard let data = try? Data(contentsOf: index) else {
            throw .missingFile("\(url.path) holds neither model.safetensors nor model.safetensors.index.json")
        }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = json["weight_map"] as? [String: String] else {
            throw .weights("\(index.path): expected a JSON object with a \"weight_map\"")
        }
        var all: [String: Tensor] = [:]
        for shard in Set(map.values).sorted() {
            for (k, v) in try readFile(url.appendingPathComponent(shard)) { all[k] = v }
        }
        for name in map.keys where all[name] == nil {
            throw .weights("\(index.path) maps \(name) to a shard that does not hold it")
        }
        return all
    }

    static func readFile(_ url: URL) throws(Qwen35Error) -> [String: Tensor] {
        guard let data = try? Data(contentsOf: url) else { throw .missingFile("cannot read \(url.path)") }
        guard data.count >= 8 else { throw .weights("\(url.path): \(data.count) bytes, too short for safetensors") }
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        guard n > 0, 8 + n <= data.count,
              let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any]
        else { throw .weights("\(url.path): bad safetensors header") }
        let body = data.count - 8 - n
        let storage = TensorStorage(byteCount: body)
        data.withUnsafeBytes { raw in storage.base.copyMemory(from: raw.baseAddress! + 8 + n, byteCount: body) }
        var out: [String: Tensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offs = info["data_offsets"] as? [Int], offs.count == 2
            else { throw .weights("\(url.path): bad entry for \(name)") }
            let dtype: DType
            switch dt {
            case "F32": dtype = .f32
            case "F16": dtype = .f16
            case "BF16": dtype = .bf16
            default: continue  // integer tensors (e.g. input ids in fixtures) are read by the caller
            }
            guard offs[0] >= 0, offs[1] <= body, offs[1] - offs[0] == dtype.byteCount(elements: shape.reduce(1, *))
            else { throw .weights("\(url.path): \(name) offsets \(offs) do not fit shape \(shape) \(dt)") }
            out[name] = Tensor(name: name, dtype: dtype, shape: shape, storage: storage, offset: offs[0])
        }
        return out
    }
}
