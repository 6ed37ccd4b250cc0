import Foundation
import TendonTensor

/// Writes F32/F16/BF16 tensors as one `.safetensors` file that python `safetensors` loads (the command-line
/// tensor files of DESIGN §3: logits, noise, actions). Header keys are sorted, padded with spaces to
/// 8 bytes as `safetensors` does; tensors are stored in the order given.
///
/// API: `SafetensorsWriter.write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String)`.
public enum SafetensorsWriter {
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String)
        throws(CheckpointError)
    {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for tensor in tensors {
            guard let dtypeName = SafetensorsDType.name(tensor.dtype) else {
                throw CheckpointError(.unsupportedDType, file: path, tensor: tensor.name,
                                      "\(tensor.dtype) cannot be stored in safetensors (F32, F16, BF16 only)")
            }
            guard header[tensor.name] == nil, tensor.name != "__metadata__" else {
                throw CheckpointError(.invalidArgument, file: path, tensor: tensor.name, "duplicate tensor name")
            }
            header[tensor.name] = ["dtype": dtypeName, "shape": tensor.shape,
                                   "data_offsets": [offset, offset + tensor.byteCount]] as [String: Any]
            offset += tensor.byteCount
        }
        var json: [UInt8]
        do {
            json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw CheckpointError(.invalidArgument, file: path, "cannot encode header: \(error.localizedDescription)")
        }
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        let out = try OutputFile(path: path)
        var prefix = ByteBuilder()
        prefix.append(UInt64(json.count))
        try out.write(prefix.bytes)
        try out.write(json)
        for tensor in tensors {
            try out.write(UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount))
        }
        try out.commit()
    }
}
