import Foundation
import Testing
import TendonModel
import TendonTensor
@testable import TendonTraining

let checkpointFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/checkpoint")
let hfTiny = checkpointFixtures.appendingPathComponent("hf_tiny").path

struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-convert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

func bytes(_ tensor: Tensor) -> [UInt8] { Array(UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount)) }

/// Converts Tests/Fixtures/checkpoint/hf_tiny (a random bf16/f32/f16 HF folder written by
/// Tools/reference/checkpoint_fixtures.py with python safetensors) and reads the result back. The committed
/// hf_tiny_<quant>.gguf files are checked by python gguf with `checkpoint_fixtures.py check-convert`.
@Suite struct ConvertTests {
    @Test(arguments: ConvertQuantization.allCases) func convertsAndReadsBack(quant: ConvertQuantization) throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let out = temp.path("model.gguf")
        var steps: [ConversionProgress] = []
        let summary = try HFToGGUFConverter.convert(hfDirectory: hfTiny, output: out, quantization: quant) { steps.append($0) }
        let source = try SafetensorsCheckpoint(directory: hfTiny)
        let file = try GGUFFile(path: out)

        #expect(file.names == source.names)
        #expect(steps.map(\.index) == Array(1...source.names.count))
        #expect(steps.last?.bytesWritten == steps.last?.totalBytes)
        #expect(file.metadata[TendonGGUFKeys.architecture] == .string("tendon"))
        #expect(file.metadata[TendonGGUFKeys.quantization] == .string(quant.rawValue))
        let config = try String(contentsOfFile: hfTiny + "/config.json", encoding: .utf8)
        let tokenizer = try String(contentsOfFile: hfTiny + "/tokenizer.json", encoding: .utf8)
        #expect(file.metadata[TendonGGUFKeys.configJSON]?.string == config)
        #expect(file.metadata[TendonGGUFKeys.tokenizerJSON]?.string == tokenizer)
        #expect(summary.fileBytes == (try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int))

        for name in source.names {
            let original = try source.tensor(name)
            let converted = try file.tensor(name)
            let expected = HFToGGUFConverter.targetDType(name: name, shape: original.shape, quantization: quant)
            #expect(converted.dtype == expected, "\(name)")
            #expect(converted.shape == original.shape, "\(name)")
            // The bytes are exactly the f32 values re-encoded by the (gguf.quants bit-exact) quantizers.
            let values = try original.dequantized()
            #expect(bytes(converted) == bytes(try values.converted(to: expected)), "\(name)")
            // And they decode close to the original.
            let restored = try converted.dequantized().toArray()
            let reference = values.toArray()
            let error = zip(restored, reference).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            let energy = reference.map { $0 * $0 }.reduce(0, +)
            #expect((error / max(energy, 1e-12)).squareRoot() < 0.12, "\(name): relative RMS error")
        }
    }

    @Test func typeRuleFollowsDesign() {
        #expect(HFToGGUFConverter.targetDType(shape: [64], quantization: .q8_0) == .f32)
        #expect(HFToGGUFConverter.targetDType(shape: [], quantization: .q8_0) == .f32)
        #expect(HFToGGUFConverter.targetDType(shape: [8, 96], quantization: .q8_0) == .q8_0)
        #expect(HFToGGUFConverter.targetDType(shape: [8, 96], quantization: .q4_k) == .f16)
        #expect(HFToGGUFConverter.targetDType(shape: [8, 512], quantization: .q4_k) == .q4_K)
        #expect(HFToGGUFConverter.targetDType(shape: [8, 40], quantization: .q4_0) == .f16)
        #expect(HFToGGUFConverter.targetDType(shape: [8, 512], quantization: .f32) == .f32)
        #expect(HFToGGUFConverter.targetDType(shape: [16, 3, 2, 16, 16], quantization: .q8_0) == .f16)
        // The action expert's per-observation / per-τ / boundary weights stay F16; its step projections quantize.
        for name in ["action_expert.context_proj.weight", "action_expert.time_embed.fc1.weight", "action_expert.action_in.fc2.weight",
                     "action_expert.final.proj.weight", "action_expert.final.modulation.weight", "action_expert.blocks.3.modulation.weight"] {
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 512], quantization: .q8_0) == .f16, "\(name)")
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 512], quantization: .f32) == .f32)
        }
        for name in ["action_expert.blocks.0.attn.q_proj.weight", "model.language_model.layers.0.self_attn.o_proj.weight",
                     "model.layers.0.mlp.modulation.weight", "model.language_model.layers.0.mlp.down_proj.weight",
                     "model.language_model.layers.3.self_attn.k_proj.weight", "model.visual.blocks.0.mlp.linear_fc2.weight"] {
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 512], quantization: .q4_k) == .q4_K, "\(name)")
        }
        // Under Q4_K the expert's error-sensitive step projections are Q8_0 (and still F16 without whole blocks).
        for name in ["action_expert.blocks.0.mlp.fc1.weight", "action_expert.blocks.5.mlp.fc2.weight", "action_expert.blocks.2.attn.v_proj.weight",
                     "action_expert.blocks.1.attn.o_proj.weight", "model.language_model.layers.3.self_attn.v_proj.weight",
                     "model.visual.merger.linear_fc1.weight", "model.visual.merger.linear_fc2.weight",
                     "model.language_model.embed_tokens.weight"] {
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 512], quantization: .q4_k) == .q8_0, "\(name)")
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 512], quantization: .q8_0) == .q8_0, "\(name)")
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 512], quantization: .q4_0) == .q4_0, "\(name)")
            #expect(HFToGGUFConverter.targetDType(name: name, shape: [512, 40], quantization: .q4_k) == .f16, "\(name)")
        }
        #expect(HFToGGUFConverter.targetDType(name: "action_expert.blocks.0.mlp.fc1.bias", shape: [512], quantization: .q4_k) == .f32)
    }

    /// `--tensor-type REGEX=TYPE`: the first matching rule replaces the default rules (the F16-kept expert
    /// conditioning weights included), rows that are not whole blocks still fall back to F16, f32 stays f32.
    @Test func tensorTypeOverridesComeFirst() throws {
        let rules = try ["language_model\\.layers\\.\\d+\\.mlp=q5_k", "mlp=q8_0", "modulation=q4_0"].map(TensorTypeOverride.init(parsing:))
        func type(_ name: String, _ shape: [Int] = [512, 512], _ quant: ConvertQuantization = .q4_k) -> DType {
            HFToGGUFConverter.targetDType(name: name, shape: shape, quantization: quant, overrides: rules)
        }
        #expect(type("model.language_model.layers.3.mlp.up_proj.weight") == .q5_K)
        #expect(type("action_expert.blocks.0.mlp.fc1.weight") == .q8_0)
        #expect(type("action_expert.blocks.0.modulation.weight") == .q4_0)
        #expect(type("model.language_model.layers.3.self_attn.q_proj.weight") == .q4_K)  // no rule: default
        #expect(type("model.language_model.layers.3.mlp.up_proj.weight", [512, 96]) == .f16)
        #expect(type("model.language_model.layers.3.mlp.up_proj.weight", [512, 512], .f32) == .f32)
        #expect(type("model.language_model.layers.3.mlp.up_proj.bias", [512]) == .f32)
        #expect(type("model.language_model.layers.3.mlp.conv.weight", [16, 3, 2, 16, 16]) == .f16)  // rules are for 2-D
        for bad in ["mlp", "mlp=q3_k", "(=q8_0", "=q8_0"] {
            #expect(throws: TensorTypeOverrideError.self, "\(bad)") { try TensorTypeOverride(parsing: bad) }
        }
        #expect(try TensorTypeOverride(parsing: "a=b=Q8_0").pattern == "a=b")
    }

    /// The committed conversions (checked by python) are what the converter writes today.
    /// Regenerate: TENDON_WRITE_FIXTURES=1 swift test --filter committedConversionsAreCurrent
    @Test(arguments: [ConvertQuantization.q8_0, .q4_k, .q5_k]) func committedConversionsAreCurrent(quant: ConvertQuantization) throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let out = temp.path("hf_tiny.gguf")
        _ = try HFToGGUFConverter.convert(hfDirectory: hfTiny, output: out, quantization: quant)
        let fresh = try Data(contentsOf: URL(fileURLWithPath: out))
        let committed = checkpointFixtures.appendingPathComponent("hf_tiny_\(quant.rawValue).gguf")
        if ProcessInfo.processInfo.environment["TENDON_WRITE_FIXTURES"] == "1" { try fresh.write(to: committed) }
        #expect(fresh == (try Data(contentsOf: committed)))
    }

    @Test func badFoldersGiveErrorsNamingTheFileAndTensor() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let folder = temp.url.appendingPathComponent("hf")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        let out = temp.path("out.gguf")
        func convertError() -> CheckpointError? {
            do { _ = try HFToGGUFConverter.convert(hfDirectory: folder.path, output: out, quantization: .q8_0) } catch {
                return error
            }
            return nil
        }
        #expect(convertError()?.file.hasSuffix("tokenizer.json") == true)
        try Data("{\"model\":{}}".utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        #expect(convertError()?.kind == .io)  // no weights
        try SafetensorsWriter.write([Tensor([1, .nan, 3, 4], shape: [2, 2], name: "w")],
                                    to: folder.appendingPathComponent("model.safetensors").path)
        let nan = convertError()
        #expect(nan?.kind == .nonFinite)
        #expect(nan?.tensor == "w")
        #expect(nan?.message.contains("element 1 ") == true)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
        try Data("{not json".utf8).write(to: folder.appendingPathComponent("config.json"))
        #expect(convertError()?.kind == .corruptHeader)
    }

    @Test func valuesBeyondHalfRangeStayF32() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let folder = temp.url
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        try Data("{}".utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        try SafetensorsWriter.write([Tensor([1, 70000, 3, 4], shape: [2, 2], name: "big"),
                                     Tensor([1, 2, 3, 4], shape: [2, 2], name: "small")],
                                    to: folder.appendingPathComponent("model.safetensors").path)
        let out = temp.path("out.gguf")
        _ = try HFToGGUFConverter.convert(hfDirectory: folder.path, output: out, quantization: .f16)
        let file = try GGUFFile(path: out)
        #expect(file.info("big")?.dtype == .f32)
        #expect(file.info("small")?.dtype == .f16)
        #expect(try file.tensor("big").toArray() == [1, 70000, 3, 4])
    }

    /// Larger than one 4 MB streaming batch, so rows cross batch boundaries.
    @Test func streamsTensorsLargerThanOneBatch() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let folder = temp.url
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        try Data("{}".utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        let rows = 1200, columns = 1024  // 4.9 MB of f32, 1.3 MB of Q8_0
        var values = [Float](repeating: 0, count: rows * columns)
        for i in values.indices { values[i] = Float((i * 7919) % 2001 - 1000) / 500 }
        let weight = Tensor(values, shape: [rows, columns], name: "w")
        try SafetensorsWriter.write([weight], to: folder.appendingPathComponent("model.safetensors").path)
        for quant in [ConvertQuantization.f32, .q8_0] {
            let out = temp.path("out-\(quant).gguf")
            _ = try HFToGGUFConverter.convert(hfDirectory: folder.path, output: out, quantization: quant)
            let converted = try GGUFFile(path: out).tensor("w")
            #expect(bytes(converted) == bytes(try weight.converted(to: quant.dtype)))
        }
    }

    /// The command line: exit status, output file, one error line on stderr.
    @Test func commandLine() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("tendon-train")
        let candidates = [binary, URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/tendon-train")]
        guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            Issue.record("tendon-train not built next to the tests (\(binary.path))")
            return
        }
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        func run(_ arguments: [String]) throws -> (Int32, String, String) {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
        }
        let out = temp.path("cli.gguf")
        let (status, stdout, _) = try run(["convert", "--hf", hfTiny, "--out", out, "--quant", "q4_0"])
        #expect(status == 0)
        #expect(stdout.contains("[1/7] "))  // not a terminal: plain lines
        #expect(stdout.contains("note: 4/5-bit weights were rounded to nearest; --calibration"), "\(stdout)")
        #expect(try GGUFFile(path: out).metadata[TendonGGUFKeys.quantization] == .string("q4_0"))
        let (badStatus, _, badStderr) = try run(["convert", "--hf", temp.path("missing"), "--out", out, "--quant", "q8_0"])
        #expect(badStatus != 0)
        #expect(badStderr.split(separator: "\n").count == 1)
        #expect(badStderr.contains("missing"))
        let (quantStatus, _, quantStderr) = try run(["convert", "--hf", hfTiny, "--out", out, "--quant", "q5"])
        #expect(quantStatus != 0)
        #expect(quantStderr.contains("'q5'"))
        #expect(quantStderr.split(separator: "\n").count == 1)
        let (ruleStatus, _, ruleErr) = try run(["convert", "--hf", hfTiny, "--out", out, "--quant", "q4_0",
                                                "--tensor-type", "proj=q8_0", "--tensor-type", "up_proj=q4_0"])
        #expect(ruleStatus == 0, "\(ruleErr)")
        let ruled = try GGUFFile(path: out)
        #expect(ruled.metadata[TendonGGUFKeys.tensorTypes]?.string == "proj=q8_0 up_proj=q4_0")
        let projections = ruled.names.filter { $0.contains("proj") && ruled.info($0)?.shape.count == 2 }
        #expect(!projections.isEmpty)
        for name in projections {
            let info = try #require(ruled.info(name))
            let want: DType = info.shape.last! % 32 == 0 ? .q8_0 : .f16
            #expect(info.dtype == want, "\(name) \(info.dtype)")
        }
        let (badRuleStatus, _, badRuleErr) = try run(["convert", "--hf", hfTiny, "--out", out, "--quant", "q4_0",
                                                      "--tensor-type", "proj=q3_k"])
        #expect(badRuleStatus != 0 && badRuleErr.split(separator: "\n").count == 1 && badRuleErr.contains("q3_k"), "\(badRuleErr)")
        let (f32RuleStatus, _, f32RuleErr) = try run(["convert", "--hf", hfTiny, "--out", out, "--quant", "f32",
                                                      "--tensor-type", "proj=q8_0"])
        #expect(f32RuleStatus != 0 && f32RuleErr.contains("no effect under --quant f32"), "\(f32RuleErr)")
        let (missingStatus, _, missingStderr) = try run(["convert", "--hf", hfTiny])
        #expect(missingStatus != 0)
        #expect(missingStderr.split(separator: "\n").count == 1)

        // GPTQ from a calibration list, on a Qwen-VLA folder; bad calibration input is one line.
        let vla = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/qwen_vla/text_b").path
        let list = temp.path("calibration.jsonl")
        try "{\"embodiment\": \"tienkung\", \"instruction\": \"fold the towel\"}\n{\"embodiment\": \"arx5\", \"instruction\": \"open it\"}\n"
            .write(toFile: list, atomically: true, encoding: .utf8)
        let (gptqStatus, gptqOut, gptqErr) = try run(["convert", "--hf", vla, "--out", out, "--quant", "q4_0", "--calibration", list])
        #expect(gptqStatus == 0, "\(gptqErr)")
        #expect(gptqOut.contains("calibration: observation 2/2") && gptqOut.contains("by GPTQ"), "\(gptqOut)")
        #expect(!gptqOut.contains("note: 4/5-bit"), "\(gptqOut)")
        #expect(try GGUFFile(path: out).metadata[TendonGGUFKeys.gptqCalibration]?.string?.contains("2 observations from calibration.jsonl") == true)
        let (f32Status, _, f32Err) = try run(["convert", "--hf", vla, "--out", out, "--quant", "f32", "--calibration", list])
        #expect(f32Status != 0 && f32Err.contains("--calibration only applies to a quantized --quant"), "\(f32Err)")
        try "{\"embodiment\": \"ur5\", \"instruction\": \"x\"}\n".write(toFile: list, atomically: true, encoding: .utf8)
        let (tagStatus, _, tagErr) = try run(["convert", "--hf", vla, "--out", out, "--quant", "q4_0", "--calibration", list])
        #expect(tagStatus != 0 && tagErr.split(separator: "\n").count == 1 && tagErr.contains("\(list):1: ") && tagErr.contains("ur5"), "\(tagErr)")
    }
}
