import Foundation
import TendonModel
import TendonTensor

/// `tendon-train convert` (DESIGN §3 "On-board file", §5): one Hugging Face folder → one GGUF v3 file.
///
/// API:
/// - `HFToGGUFConverter.convert(hfDirectory:output:quantization:progress:)` → `ConversionSummary`.
/// - `HFToGGUFConverter.targetDType(name:shape:quantization:)` — the per-tensor type rule below
///   (`keepsHalfPrecision`, `keepsEightBit`).
/// - `ConvertQuantization` (f32, f16, q8_0, q4_0, q4_k, q5_k), `TensorTypeOverride` (`--tensor-type`),
///   `ConvertedTensor`, `ConversionProgress`.
///
/// Rules: tensor names stay the Hugging Face names (sorted), shapes stay as stored (no splitting, fusing or
/// permuting; GGUF ne[] is the reversed shape). 2-D weights take the requested type when their rows fill
/// whole blocks (32 for Q8_0/Q4_0, 256 for Q4_K/Q5_K), else F16; tensors of rank ≥ 3 (convolutions) are F16;
/// 1-D tensors (norms, biases) and scalars stay F32; `--quant f32` keeps everything F32. An F16 target whose
/// values exceed the f16 range (|x| > 65504) stays F32 instead of becoming Inf. The action expert's
/// conditioning and boundary weights (`keepsHalfPrecision`) stay F16 under a quantized `--quant`: they run once
/// per observation or once per τ (context_proj, time_embed, modulations) or are tiny (action_in, final.proj),
/// so quantizing them saves nothing per step, yet it carried most of the chunk error (reference config:
/// Q8_0 0.040 → 0.025 max |Δa'|). Under `--quant q4_k` the tensor families whose quantization moves the chunk
/// most (`keepsEightBit`) are Q8_0 — llama.cpp's Q4_K_M idea (attn_v and the FFN at higher precision), with
/// the families picked by measurement: one family at a time at Q4_K on the reference config, the rest Q8_0
/// (Tools/reference/quant_sensitivity.py families: max |Δa'| alone vs 0.016 for all Q8_0): expert mlp.fc1 0.140, fc2 0.137,
/// vision merger fc1 0.078 / fc2 0.070, expert attn.o_proj 0.058, attn.v_proj 0.043 — small tensors or
/// ones whose error the expert integrates over every step — while the expert's q/k (behind q_norm/k_norm)
/// and the vision blocks hardly move it (≤ 0.019). The backbone's error is spread over its big families
/// (in_proj_qkv 0.077, up_proj 0.072, in_proj_z 0.065, …) and keeping them would make the file Q8_0-sized;
/// only its few full-attention v_proj are kept. The token embeddings are a row lookup, not a product: no
/// compute, only the prompt's rows are ever paged in, and GPTQ cannot reach them (no `Linear` input), so
/// they are Q8_0 too (with GPTQ on the rest, mean max |Δa'| over four observations 0.062 → 0.055).
/// Measured with this converter on the bench observation: all Q4_K 0.29; fc1/fc2/v_proj kept 0.17;
/// + merger and o_proj 0.12 (60.8 MB); with `--calibration` (GPTQ) 0.066. Q8_0 is 77.9 MB.
/// Q8_0 rather than Q6_K because Q6_K has no packed int8 GEMM here: the same tensors at Q6_K gave the same error
/// with the expert 3× slower. `--quant q5_k` is Q5_K wherever the default rules quantize (no Q8_0 families):
/// 5.5 bits per weight, 58.6 MB, and with GPTQ a chunk error of 0.048–0.057 over four observations where
/// the Q4_K mix (61.3 MB) gives 0.043–0.065. `--tensor-type REGEX=TYPE` rules (`TensorTypeOverride`) come
/// before all of these, so any mix can be built and measured; e.g. the Q4_K mix with a Q5_K backbone
/// (`--tensor-type 'language_model\.layers\.=q5_k'`, 64.6 MB) gives 0.028–0.041. These reference-config numbers
/// come from unit-gain random weights; with the libraries' own initialisers (`make bench-act-library`) the Q4_K
/// mix with GPTQ gives 0.011–0.016, and on the vlm_k test checkpoint 0.014–0.021. Source weights are checked
/// for NaN/Inf first. Metadata keys: `TendonGGUFKeys` (config.json and tokenizer.json verbatim as strings).
/// Memory: tensors stream a few MB at a time from the mapped shards into the writer.
public enum HFToGGUFConverter {
    public static func targetDType(name: String = "", shape: [Int], quantization: ConvertQuantization,
                                   overrides: [TensorTypeOverride] = []) -> DType {
        if quantization == .f32 || shape.count < 2 { return .f32 }
        if shape.count == 2, let rule = overrides.first(where: { $0.matches(name) }) {
            if rule.type == .f32 || rule.type == .f16 { return rule.type.dtype }
            return shape[1] % rule.type.dtype.blockSize == 0 ? rule.type.dtype : .f16
        }
        guard shape.count == 2, !keepsHalfPrecision(name) else { return .f16 }
        let wanted = quantization == .q4_k && keepsEightBit(name) ? DType.q8_0 : quantization.dtype
        return shape[1] % wanted.blockSize == 0 ? wanted : .f16
    }

    /// `action_expert.{context_proj, time_embed.*, action_in.*, final.*, blocks.*.modulation}` weights.
    public static func keepsHalfPrecision(_ name: String) -> Bool {
        guard name.hasPrefix("action_expert.") else { return false }
        let rest = name.dropFirst("action_expert.".count)
        return rest.hasPrefix("context_proj.") || rest.hasPrefix("time_embed.") || rest.hasPrefix("action_in.")
            || rest.hasPrefix("final.") || (rest.hasPrefix("blocks.") && rest.contains(".modulation."))
    }

    /// `action_expert.blocks.*.{mlp.fc1, mlp.fc2, attn.v_proj, attn.o_proj}`, the backbone's full-attention
    /// `self_attn.v_proj`, the vision merger's `merger.linear_fc1/2` and the token embeddings: Q8_0 under
    /// `--quant q4_k`.
    public static func keepsEightBit(_ name: String) -> Bool {
        guard name.hasSuffix(".weight") else { return false }
        if name.hasSuffix(".self_attn.v_proj.weight") || name.hasSuffix("embed_tokens.weight") { return true }
        if name.contains("visual.merger.linear_fc") { return true }
        guard name.hasPrefix("action_expert.blocks.") else { return false }
        return name.contains(".mlp.fc1.") || name.contains(".mlp.fc2.") || name.contains(".attn.v_proj.")
            || name.contains(".attn.o_proj.")
    }

    /// `requireTokenizer: false` is for benchmark and test checkpoints only: an on-board file needs its
    /// tokenizer.
    /// `calibration`: GPTQ instead of round-to-nearest for every quantized weight it has a Hessian for.
    public static func convert(hfDirectory: String, output: String, quantization: ConvertQuantization,
                               requireTokenizer: Bool = true, calibration: GPTQCalibration? = nil,
                               overrides: [TensorTypeOverride] = [],
                               progress: (ConversionProgress) -> Void = { _ in }) throws(CheckpointError)
        -> ConversionSummary
    {
        let directory = URL(fileURLWithPath: hfDirectory)
        let config = try readText(directory, "config.json", required: true)!
        try checkJSONObject(config, file: directory.appendingPathComponent("config.json").path)
        let tokenizer = try readText(directory, "tokenizer.json", required: requireTokenizer)
        if let tokenizer { try checkJSONObject(tokenizer, file: directory.appendingPathComponent("tokenizer.json").path) }
        let checkpoint = try SafetensorsCheckpoint(directory: hfDirectory)

        var plan: [ConvertedTensor] = []
        for name in checkpoint.names {
            let source = try checkpoint.tensor(name, validate: true)
            var target = targetDType(name: name, shape: source.shape, quantization: quantization, overrides: overrides)
            if target == .f16, source.dtype != .f16, maxMagnitude(source) > 65504 { target = .f32 }
            let gptq = GPTQ.supports(target) && source.rank == 2
                && calibration?.hessians.columns(for: name) == source.shape[1]
            plan.append(ConvertedTensor(name: name, shape: source.shape, source: source.dtype, target: target, gptq: gptq))
        }

        var metadata: [(key: String, value: GGUFValue)] = [
            (TendonGGUFKeys.architecture, .string(TendonGGUFKeys.architectureValue)),
            (TendonGGUFKeys.name, .string(directory.standardizedFileURL.lastPathComponent)),
            (TendonGGUFKeys.formatVersion, .uint32(TendonGGUFKeys.formatVersionValue)),
            (TendonGGUFKeys.quantization, .string(quantization.rawValue)),
            (TendonGGUFKeys.configJSON, .string(config)),
        ]
        if let tokenizer { metadata.append((TendonGGUFKeys.tokenizerJSON, .string(tokenizer))) }
        if !overrides.isEmpty, quantization != .f32 {
            metadata.append((TendonGGUFKeys.tensorTypes, .string(overrides.map(\.description).joined(separator: " "))))
        }
        if let calibration, plan.contains(where: \.gptq) {
            metadata.append((TendonGGUFKeys.gptqCalibration,
                             .string("GPTQ (dampening \(calibration.dampening)) on \(plan.filter(\.gptq).count) tensors; \(calibration.description)")))
        }
        if let object = try? JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any], object["action_expert"] != nil {
            let template = object["prefix_template"] as? String ?? EmbodimentPrompt.defaultPrefixTemplate
            metadata.append((TendonGGUFKeys.prefixTemplate, .string(template)))
        }
        for (file, key) in [("tokenizer_config.json", TendonGGUFKeys.tokenizerConfigJSON),
                            ("preprocessor_config.json", TendonGGUFKeys.preprocessorConfigJSON),
                            ("generation_config.json", TendonGGUFKeys.generationConfigJSON),
                            ("chat_template.jinja", TendonGGUFKeys.chatTemplate)] {
            if let text = try readText(directory, file, required: false) { metadata.append((key, .string(text))) }
        }

        let writer = try GGUFWriter(path: output, metadata: metadata,
                                    tensors: plan.map { .init(name: $0.name, dtype: $0.target, shape: $0.shape) })
        let totalBytes = plan.reduce(0) { $0 + (byteCount(of: $1) ?? 0) }
        var written = 0
        let pool = plan.contains(where: \.gptq)
            ? ThreadPool(threads: max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16))) : nil
        for (index, entry) in plan.enumerated() {
            let source = try checkpoint.tensor(entry.name, validate: false)
            if entry.gptq, let calibration, let hessian = calibration.hessians.hessian(for: entry.name) {
                try gptq(source, as: entry.target, hessian: hessian.matrix, dampening: calibration.dampening,
                         pool: pool, into: writer, path: output)
            } else {
                try stream(source, as: entry.target, into: writer, path: output)
            }
            written += byteCount(of: entry) ?? 0
            progress(ConversionProgress(index: index + 1, count: plan.count, tensor: entry,
                                        bytesWritten: written, totalBytes: totalBytes))
        }
        try writer.finish()
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? nil
        return ConversionSummary(path: output, tensors: plan, fileBytes: size ?? 0)
    }

    /// The whole weight decoded to f32 and quantized by GPTQ with its calibration Hessian (column order couples
    /// every row's rounding to the next columns, so it cannot stream by rows; weights are at most a few MB).
    static func gptq(_ source: Tensor, as target: DType, hessian: [Double], dampening: Double, pool: ThreadPool?,
                     into writer: GGUFWriter, path: String) throws(CheckpointError) {
        let rows = source.shape[0], columns = source.shape[1]
        let weights: [Float]
        do { weights = try source.dequantized().toArray() } catch {
            throw CheckpointError(.invalidArgument, file: path, tensor: source.name, "\(source.dtype) → f32: \(error)")
        }
        let bytes: [UInt8]
        do {
            bytes = try weights.withUnsafeBufferPointer { w throws(GPTQError) in
                try hessian.withUnsafeBufferPointer { h throws(GPTQError) in
                    try GPTQ.quantize(w.baseAddress!, rows: rows, columns: columns, hessian: h.baseAddress!, dtype: target,
                                      dampening: dampening, pool: pool)
                }
            }
        } catch {
            throw CheckpointError(.invalidArgument, file: path, tensor: source.name, "GPTQ: \(error)")
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        try writer.append(source.name, bytes: UnsafeRawBufferPointer(buffer))
    }

    /// Rows along the last dimension, decoded to f32 and re-encoded in batches of about 4 MB of output.
    static func stream(_ source: Tensor, as target: DType, into writer: GGUFWriter, path: String) throws(CheckpointError) {
        let total = source.byteCount
        if source.dtype == target {
            var offset = 0
            let chunk = 4 << 20
            repeat {
                let count = min(chunk, total - offset)
                try writer.append(source.name, bytes: UnsafeRawBufferPointer(start: source.rawPointer + offset, count: count))
                offset += count
            } while offset < total
            return
        }
        let rowLength = source.shape.count < 2 ? source.elementCount : source.shape[source.shape.count - 1]
        let rows = rowLength == 0 ? 0 : source.elementCount / rowLength
        guard rows > 0, let sourceRowBytes = source.dtype.byteCount(elements: rowLength),
              let targetRowBytes = target.byteCount(elements: rowLength) else {
            try writer.append(source.name, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
            return
        }
        let batchRows = max(1, (4 << 20) / max(targetRowBytes, 1))
        let batch = UnsafeMutableRawPointer.allocate(byteCount: min(batchRows, rows) * targetRowBytes, alignment: 64)
        defer { batch.deallocate() }
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16))
        // Addresses cross into the worker closure as integers (raw pointers are not Sendable); each worker
        // writes disjoint rows of `batch`.
        let sourceAddress = Int(bitPattern: source.rawPointer)
        let batchAddress = Int(bitPattern: batch)
        let sourceType = source.dtype
        var row = 0
        while row < rows {
            let count = min(batchRows, rows - row)
            let first = row
            // Rows are independent, so a batch is split across cores (Q4_K's scale search dominates convert time).
            let failures = FailureSlot()
            let slices = min(workers, count)
            DispatchQueue.concurrentPerform(iterations: slices) { slice in
                let floats = UnsafeMutablePointer<Float>.allocate(capacity: rowLength)
                defer { floats.deallocate() }
                guard let sourceBase = UnsafeRawPointer(bitPattern: sourceAddress),
                      let batch = UnsafeMutableRawPointer(bitPattern: batchAddress) else { return }
                for r in stride(from: slice, to: count, by: slices) {
                    do {
                        try Quantization.dequantizeRow(sourceBase + (first + r) * sourceRowBytes, from: sourceType,
                                                       count: rowLength, into: floats)
                        try Quantization.quantizeRow(floats, to: target, count: rowLength, into: batch + r * targetRowBytes)
                    } catch {
                        failures.record("\(sourceType) → \(target): \(error)")
                        return
                    }
                }
            }
            if let message = failures.message {
                throw CheckpointError(.invalidArgument, file: path, tensor: source.name, message)
            }
            try writer.append(source.name, bytes: UnsafeRawBufferPointer(start: batch, count: count * targetRowBytes))
            row += count
        }
    }

    static func maxMagnitude(_ tensor: Tensor) -> Float {
        let count = tensor.elementCount
        guard count > 0 else { return 0 }
        switch tensor.dtype {
        case .f32:
            var result: Float = 0
            for i in 0..<count {
                result = max(result, abs(UnsafeRawPointer(tensor.rawPointer).loadUnaligned(fromByteOffset: i * 4, as: Float.self)))
            }
            return result
        case .bf16:
            var result: Float = 0
            for i in 0..<count {
                let bits = UnsafeRawPointer(tensor.rawPointer).loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                result = max(result, abs(BFloat.toFloat(bits)))
            }
            return result
        default:
            return 0
        }
    }

    private static func byteCount(of entry: ConvertedTensor) -> Int? {
        entry.target.byteCount(elements: entry.shape.reduce(1, *))
    }

    private static func readText(_ directory: URL, _ name: String, required: Bool) throws(CheckpointError) -> String? {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required {
                throw CheckpointError(.io, file: url.path, "missing: a Hugging Face folder for convert needs \(name)")
            }
            return nil
        }
        do {
            let data = try Data(contentsOf: url)
            guard let text = String(data: data, encoding: .utf8) else {
                throw CheckpointError(.corruptHeader, file: url.path, "not UTF-8 text")
            }
            return text
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError(.io, file: url.path, "cannot read: \(error.localizedDescription)")
        }
    }

    private static func checkJSONObject(_ text: String, file: String) throws(CheckpointError) {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
            throw CheckpointError(.corruptHeader, file: file, "not valid JSON (\(error.localizedDescription))")
        }
        guard object is [String: Any] else { throw CheckpointError(.corruptHeader, file: file, "expected a JSON object") }
    }
}

public enum ConvertQuantization: String, CaseIterable, Sendable {
    case f32, f16, q8_0, q4_0, q4_k, q5_k

    public var dtype: DType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_k: .q4_K
        case .q5_k: .q5_K
        }
    }
}

/// `--tensor-type REGEX=TYPE` (llama-quantize's option of the same name): every 2-D tensor whose name contains
/// a match of REGEX is stored as TYPE instead of by the default rules (first matching rule wins; a row that
/// is not whole TYPE blocks falls back to F16 as usual; 1-D tensors stay F32 and convolutions F16). The
/// command line refuses rules under `--quant f32`, where nothing is converted; the file lists the rules in
/// `tendon.quantization.tensor_types`.
public struct TensorTypeOverride: CustomStringConvertible {
    public let pattern: String
    public let type: ConvertQuantization
    private let regex: Regex<AnyRegexOutput>

    /// Parses `REGEX=TYPE`.
    public init(parsing text: String) throws(TensorTypeOverrideError) {
        guard let equals = text.lastIndex(of: "=") else {
            throw TensorTypeOverrideError("--tensor-type '\(text)': expected REGEX=TYPE")
        }
        let pattern = String(text[..<equals]), typeName = String(text[text.index(after: equals)...])
        guard let type = ConvertQuantization(rawValue: typeName.lowercased()) else {
            throw TensorTypeOverrideError("--tensor-type '\(text)': unknown type '\(typeName)' "
                                  + "(\(ConvertQuantization.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard !pattern.isEmpty, let regex = try? Regex(pattern) else {
            throw TensorTypeOverrideError("--tensor-type '\(text)': '\(pattern)' is not a regular expression")
        }
        self.pattern = pattern
        self.type = type
        self.regex = regex
    }

    public func matches(_ name: String) -> Bool { name.contains(regex) }
    public var description: String { "\(pattern)=\(type.rawValue)" }
}

public struct TensorTypeOverrideError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

public struct ConvertedTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var source: DType
    public var target: DType
    /// Quantized by GPTQ (calibration Hessian) rather than round-to-nearest.
    public var gptq = false
}

/// What `convert` needs for GPTQ: the calibration Hessians and a line saying where they came from (stored in
/// the file's metadata, `TendonGGUFKeys.gptqCalibration`).
public struct GPTQCalibration: Sendable {
    public var hessians: HessianCollector
    public var description: String
    public var dampening: Double

    public init(hessians: HessianCollector, description: String, dampening: Double = 0.01) {
        self.hessians = hessians
        self.description = description
        self.dampening = dampening
    }
}

public struct ConversionProgress: Sendable {
    /// 1-based index of the tensor just written.
    public var index: Int
    public var count: Int
    public var tensor: ConvertedTensor
    public var bytesWritten: Int
    public var totalBytes: Int
}

public struct ConversionSummary: Sendable {
    public var path: String
    public var tensors: [ConvertedTensor]
    public var fileBytes: Int
}

/// First error message from a parallel batch.
private final class FailureSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var first: String?

    func record(_ message: String) {
        lock.lock()
        if first == nil { first = message }
        lock.unlock()
    }

    var message: String? {
        lock.lock()
        defer { lock.unlock() }
        return first
    }
}
