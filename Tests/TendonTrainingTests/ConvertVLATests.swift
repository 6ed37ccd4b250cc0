import Foundation
import Testing
import TendonModel
import TendonTensor
@testable import TendonTraining

/// `tendon-train convert` on a Qwen-VLA folder (Tests/Fixtures/qwen_vla, from Tools/reference/qwen_vla.py):
/// the GGUF carries every `action_expert.*` tensor and the config with embodiments and prefix_template, and
/// the runtime acts from it: f32 as the reference, q8_0 within a loose bound (printed).
@Suite struct ConvertVLATests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/qwen_vla")

    struct Case: Decodable { var key: String; var tag: String; var instruction: String; var steps: Int? }

    @Test(arguments: [("text_b", ConvertQuantization.f32), ("text_a", .f32), ("text_b", .q8_0)])
    func actsFromConvertedGGUF(name: String, quant: ConvertQuantization) throws {
        let dir = Self.fixtures.appendingPathComponent(name)
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let out = temp.path("model.gguf")
        _ = try HFToGGUFConverter.convert(hfDirectory: dir.path, output: out, quantization: quant)
        let file = try GGUFFile(path: out)
        let source = try SafetensorsCheckpoint(directory: dir.path)
        let expertNames = source.names.filter { $0.hasPrefix("action_expert.") }
        #expect(!expertNames.isEmpty)
        #expect(expertNames.allSatisfy { file.info($0) != nil })
        let configText = try String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(file.metadata[TendonGGUFKeys.configJSON]?.string == configText)
        // The template travels with the file: config's override (text_b) or the converting build's default.
        let expectedTemplate = name == "text_b" ? try QwenVLA(path: dir.path).config.prefixTemplate : EmbodimentPrompt.defaultPrefixTemplate
        #expect(file.metadata[TendonGGUFKeys.prefixTemplate]?.string == expectedTemplate)

        let fromFile = try QwenVLA(path: out)
        let fromFolder = try QwenVLA(path: dir.path)
        #expect(fromFile.config.embodiments == fromFolder.config.embodiments)
        #expect(fromFile.config.prefixTemplate == (fromFolder.config.prefixTemplate ?? EmbodimentPrompt.defaultPrefixTemplate))

        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
        let ref = try Self.referenceFloats(dir.appendingPathComponent("reference.safetensors"))
        for c in cases {
            let chunk = try fromFile.act(embodiment: c.tag, instruction: c.instruction, noise: ref["\(c.key).noise"], steps: c.steps)
            let expected = ref["\(c.key).actions_normalized"]!
            let err = zip(chunk.normalized, expected).map { abs($0 - $1) }.max()!
            let scale = expected.map(abs).max()!
            print("convert \(name) \(quant) \(c.key): max |Δa'| = \(err) (max |a'| \(scale))")
            if quant == .f32 { #expect(err <= 1e-4 * scale) } else { #expect(err < 0.15) }
        }
    }

    /// Issue #4's Q8_0 goal on these fixtures, for files as users get them (`tendon-train convert`, so the
    /// conversion rules apply) run on this machine's best kernels: max |Δa'| vs the PyTorch chunk ≤ 0.02 (15-bit
    /// activations on the VNNI path; int8 activations elsewhere stay ≤ 0.04). Q4_0 (32-value blocks: every step
    /// weight of every fixture) shows 4-bit error, bounded at 1.5× the value measured when it was written, to
    /// catch a regression. Q4_K needs rows of 256 values, which only vlm_k has: `q4KOnQ4KFixture`.
    @Test(arguments: [ConvertQuantization.q8_0, .q4_0])
    func convertedChunkErrorMeetsGoals(quant: ConvertQuantization) throws {
        var worst: Float = 0, worstK: Float = 0
        for name in ["text_a", "text_b", "vlm_c", "vlm_k"] {
            let dir = Self.fixtures.appendingPathComponent(name)
            let temp = try TemporaryDirectory()
            defer { temp.cleanup() }
            let out = temp.path("model.gguf")
            _ = try HFToGGUFConverter.convert(hfDirectory: dir.path, output: out, quantization: quant)
            let vla = try QwenVLA(path: out, pool: ThreadPool(threads: 2))
            for err in try Self.chunkErrors(vla, dir) {
                print("converted \(quant) \(name): max |Δa'| = \(err)")
                if name == "vlm_k" { worstK = max(worstK, err) } else { worst = max(worst, err) }
            }
        }
        let wide = KernelPath.best == .avx512vnni
        // Q4_0: measured worst 0.175 on the 32-wide fixtures, 0.242 on vlm_k.
        let bound: Float = quant == .q8_0 ? (wide ? 0.02 : 0.04) : 0.27
        let boundK: Float = quant == .q8_0 ? bound : 0.36
        #expect(worst <= bound, "\(quant): max |Δa'| \(worst) > \(bound)")
        #expect(worstK <= boundK, "\(quant) vlm_k: max |Δa'| \(worstK) > \(boundK)")
        #expect(worst > 0 && worstK > 0, "quantized weights must change the chunk")
    }

    /// The Q4_K goal must not hold vacuously: in vlm_k's Q4_K file every Q4_K-eligible family is Q4_K — the
    /// linear attention's five projections, the full attention's q/k/o, both layers' MLPs and the expert's
    /// q/k. The rest are what the q4_k mix keeps at Q8_0 (`keepsEightBit`: embeddings, full-attention v_proj,
    /// merger, the expert's v/o/MLP) or F16 (`keepsHalfPrecision`), and what is too narrow or not a matrix for
    /// 256-value blocks (the 64-wide vision blocks and pos_embed, action_in.fc1, conv1d, patch_embed).
    static func expectQ4KEverywhere(_ summary: ConversionSummary) {
        let q4k = Set(summary.tensors.filter { $0.target == .q4_K }.map(\.name))
        var expected = ["linear_attn.in_proj_qkv", "linear_attn.in_proj_z", "linear_attn.in_proj_a", "linear_attn.in_proj_b",
                        "linear_attn.out_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
            .map { "model.language_model.layers.0.\($0).weight" }
        expected += ["self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
            .map { "model.language_model.layers.1.\($0).weight" }
        expected += (0..<2).flatMap { b in ["q_proj", "k_proj"].map { "action_expert.blocks.\(b).attn.\($0).weight" } }
        #expect(q4k == Set(expected), "Q4_K tensors: \(q4k.sorted())")
    }

    /// max |Δa'| per case of the fixture against its PyTorch chunk.
    static func chunkErrors(_ vla: QwenVLA, _ dir: URL) throws -> [Float] {
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
        let ref = try Self.referenceFloats(dir.appendingPathComponent("reference.safetensors"))
        return try cases.map { c in
            let images = try images(dir, try vla.config.embodiment(c.tag))
            let chunk = try vla.act(embodiment: c.tag, instruction: c.instruction, images: images,
                                    noise: ref["\(c.key).noise"], steps: c.steps)
            return zip(chunk.normalized, ref["\(c.key).actions_normalized"]!).map { abs($0 - $1) }.max()!
        }
    }

    /// GPTQ through `convert(calibration:)`: calibrated on observations other than the evaluated ones (other
    /// instructions and noise, mirrored camera images), the Q4_0 chunk error must drop well below
    /// round-to-nearest's (measured: mean 0.140 → 0.079 over the 7 cases, worst 0.175 → 0.118; the token
    /// embeddings are a lookup, not a `Linear`, and stay round-to-nearest), and the file says how it was made.
    @Test func gptqConversionBeatsRoundToNearest() throws {
        var rtn: [Float] = [], gptqErrors: [Float] = []
        for name in ["text_a", "text_b", "vlm_c"] {
            let dir = Self.fixtures.appendingPathComponent(name)
            let temp = try TemporaryDirectory()
            defer { temp.cleanup() }
            let calibration = try Self.calibration(dir)
            let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
            let ref = try Self.referenceFloats(dir.appendingPathComponent("reference.safetensors"))
            for gptq in [false, true] {
                let out = temp.path(gptq ? "gptq.gguf" : "rtn.gguf")
                let summary = try HFToGGUFConverter.convert(hfDirectory: dir.path, output: out, quantization: .q4_0,
                                                            calibration: gptq ? calibration : nil)
                #expect(summary.tensors.contains(where: \.gptq) == gptq)
                let file = try GGUFFile(path: out)
                #expect((file.metadata[TendonGGUFKeys.gptqCalibration]?.string?.contains("GPTQ") ?? false) == gptq)
                let vla = try QwenVLA(path: out, pool: ThreadPool(threads: 2))
                for c in cases {
                    let images = try Self.images(dir, try vla.config.embodiment(c.tag))
                    let chunk = try vla.act(embodiment: c.tag, instruction: c.instruction, images: images,
                                            noise: ref["\(c.key).noise"], steps: c.steps)
                    let err = zip(chunk.normalized, ref["\(c.key).actions_normalized"]!).map { abs($0 - $1) }.max()!
                    print("q4_0 \(gptq ? "gptq" : "rtn ") \(name) \(c.key): max |Δa'| = \(err)")
                    if gptq { gptqErrors.append(err) } else { rtn.append(err) }
                }
            }
        }
        // Per case the max is noisy (one chunk entry); the mean over the 7 cases and the worst case are not.
        let mean = { (e: [Float]) in e.reduce(0, +) / Float(e.count) }
        #expect(mean(gptqErrors) < 0.75 * mean(rtn), "GPTQ mean \(mean(gptqErrors)) vs round-to-nearest \(mean(rtn))")
        #expect(gptqErrors.max()! < rtn.max()!, "GPTQ worst \(gptqErrors.max()!) vs round-to-nearest \(rtn.max()!)")
    }

    /// Issue #4's Q4_K goal (max |Δa'| ≤ 0.05) on vlm_k, the fixture whose weights are Q4_K-eligible, for the
    /// Q4_K file as `tendon-train convert --quant q4_k --calibration` writes it (GPTQ, calibrated on other
    /// observations). Measured: GPTQ 0.014–0.021 per case; round-to-nearest 0.034–0.0501 — one case of four just
    /// above the goal, which is why the converter suggests --calibration — bounded at 1.5× to catch a regression.
    /// Scope: 4 cases, one embodiment, one image; Q4_K holds 1.54 M of the file's 4.3 M weights (Q8_0 1.41 M).
    @Test func q4KOnQ4KFixture() throws {
        let dir = Self.fixtures.appendingPathComponent("vlm_k")
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let calibration = try Self.calibration(dir)
        var errors: [Bool: [Float]] = [:]
        for gptq in [false, true] {
            let out = temp.path(gptq ? "gptq.gguf" : "rtn.gguf")
            let summary = try HFToGGUFConverter.convert(hfDirectory: dir.path, output: out, quantization: .q4_k,
                                                        calibration: gptq ? calibration : nil)
            Self.expectQ4KEverywhere(summary)
            #expect(summary.tensors.filter { $0.target == .q4_K }.allSatisfy { $0.gptq == gptq })
            errors[gptq] = try Self.chunkErrors(QwenVLA(path: out, pool: ThreadPool(threads: 2)), dir)
            print("q4_k \(gptq ? "gptq" : "rtn ") vlm_k: max |Δa'| per case \(errors[gptq]!)")
        }
        let mean = { (e: [Float]) in e.reduce(0, +) / Float(e.count) }
        let rtn = errors[false]!, gptq = errors[true]!
        #expect(gptq.max()! <= 0.05, "Q4_K + GPTQ: max |Δa'| \(gptq.max()!) > 0.05")
        #expect(rtn.max()! <= 0.075, "Q4_K round-to-nearest: max |Δa'| \(rtn.max()!)")
        #expect(mean(gptq) < 0.75 * mean(rtn), "GPTQ mean \(mean(gptq)) vs round-to-nearest \(mean(rtn))")
        #expect(gptq.min()! > 0, "quantized weights must change the chunk")
    }

    /// GPTQ calibration from the f32 fixture on observations other than its cases: other instructions, other
    /// noise seeds and the fixture's camera images mirrored left to right. The prompts share the embodiment
    /// template with the cases, so layer 0 (no position information yet) sees many of the same token rows, as
    /// it would on a robot.
    static func calibration(_ dir: URL) throws -> GPTQCalibration {
        let f32 = try QwenVLA(path: dir.path, pool: ThreadPool(threads: 2))
        var observations: [CalibrationObservation] = []
        // Text-only fixtures list camera embodiments they cannot run (no vision tower): skipped.
        for (i, e) in f32.config.embodiments.enumerated() where e.cameras.isEmpty || f32.vision != nil {
            let images = try Self.images(dir, e).mapValues(Self.mirrored)
            for (j, text) in ["Open the drawer.", "Put the cup on the plate.", "Hand over the tool.", "Wipe the table.",
                              "Close the lid.", "Stack the blocks."].enumerated() {
                observations.append(CalibrationObservation(embodiment: e.tag, instruction: text, images: images,
                                                           seed: UInt64(100 + 10 * i + j), source: "\(dir.lastPathComponent) \(e.tag) \(j)"))
            }
        }
        return GPTQCalibration(hessians: try Calibration.collect(model: f32, observations: observations),
                               description: "\(observations.count) test observations")
    }

    static func mirrored(_ image: RGBImage) -> RGBImage {
        var pixels = image.pixels
        for y in 0..<image.height {
            for x in 0..<image.width {
                for ch in 0..<3 { pixels[(y * image.width + x) * 3 + ch] = image.pixels[(y * image.width + image.width - 1 - x) * 3 + ch] }
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: pixels)
    }

    /// The fixture folder's PNG for every camera of the embodiment.
    static func images(_ dir: URL, _ e: Embodiment) throws -> [String: RGBImage] {
        var images: [String: RGBImage] = [:]
        for camera in e.cameras { images[camera] = try RGBImage.load(path: dir.appendingPathComponent(camera + ".png").path) }
        return images
    }

    /// F32 tensors of a reference.safetensors, read through the checkpoint reader.
    static func referenceFloats(_ url: URL) throws -> [String: [Float]] {
        let file = try SafetensorsCheckpoint(path: url.path)
        var out: [String: [Float]] = [:]
        for name in file.names {
            let t = try file.tensor(name)
            if t.dtype == .f32 { out[name] = t.toArray() }
        }
        return out
    }
}
