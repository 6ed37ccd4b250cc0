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
        let ref = try referenceFloats(dir.appendingPathComponent("reference.safetensors"))
        for c in cases {
            let chunk = try fromFile.act(embodiment: c.tag, instruction: c.instruction, noise: ref["\(c.key).noise"], steps: c.steps)
            let expected = ref["\(c.key).actions_normalized"]!
            let err = zip(chunk.normalized, expected).map { abs($0 - $1) }.max()!
            let scale = expected.map(abs).max()!
            print("convert \(name) \(quant) \(c.key): max |Δa'| = \(err) (max |a'| \(scale))")
            if quant == .f32 { #expect(err <= 1e-4 * scale) } else { #expect(err < 0.15) }
        }
    }

    /// Issue #4's goals on these fixtures, for files as users get them (`tendon-train convert`, so the
    /// conversion rules apply) run on this machine's best kernels: max |Δa'| vs the PyTorch chunk ≤ 0.02 for
    /// Q8_0 (15-bit activations on the VNNI path; int8 activations elsewhere stay ≤ 0.04) and ≤ 0.05 for
    /// Q4_K. On these tiny models no Q4_K-eligible weight (rows of 256) is quantized (the only one,
    /// time_embed.fc1, stays F16), so Q4_K's goal is measured for real on the reference config in
    /// `make bench-act`, and Q4_0 (32-value blocks: every step weight) is what shows 4-bit error here:
    /// bounded at 1.5× the value measured when it was written, to catch a regression.
    @Test(arguments: [ConvertQuantization.q8_0, .q4_0, .q4_k])
    func convertedChunkErrorMeetsGoals(quant: ConvertQuantization) throws {
        var worst: Float = 0
        for name in ["text_a", "text_b", "vlm_c"] {
            let dir = Self.fixtures.appendingPathComponent(name)
            let temp = try TemporaryDirectory()
            defer { temp.cleanup() }
            let out = temp.path("model.gguf")
            _ = try HFToGGUFConverter.convert(hfDirectory: dir.path, output: out, quantization: quant)
            let vla = try QwenVLA(path: out, pool: ThreadPool(threads: 2))
            let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
            let ref = try referenceFloats(dir.appendingPathComponent("reference.safetensors"))
            for c in cases {
                let images = try Self.images(dir, try vla.config.embodiment(c.tag))
                let chunk = try vla.act(embodiment: c.tag, instruction: c.instruction, images: images,
                                        noise: ref["\(c.key).noise"], steps: c.steps)
                let err = zip(chunk.normalized, ref["\(c.key).actions_normalized"]!).map { abs($0 - $1) }.max()!
                print("converted \(quant) \(name) \(c.key): max |Δa'| = \(err)")
                worst = max(worst, err)
            }
        }
        let wide = KernelPath.best == .avx512vnni
        let bound: Float = switch quant {
        case .q8_0: wide ? 0.02 : 0.04
        case .q4_k: 0.05
        default: 0.27  // measured 0.175
        }
        #expect(worst <= bound, "\(quant): max |Δa'| \(worst) > \(bound)")
        #expect(worst > 0, "quantized weights must change the chunk")
    }

    /// GPTQ through `convert(calibration:)`: calibrated on observations other than the evaluated ones (other
    /// instructions and noise; the fixture's camera images), the Q4_0 chunk error must drop well below
    /// round-to-nearest's (measured: mean 0.140 → 0.088 over the 7 cases, worst 0.175 → 0.138; the token
    /// embeddings are a lookup, not a `Linear`, and stay round-to-nearest), and the file says how it was made.
    @Test func gptqConversionBeatsRoundToNearest() throws {
        var rtn: [Float] = [], gptqErrors: [Float] = []
        for name in ["text_a", "text_b", "vlm_c"] {
            let dir = Self.fixtures.appendingPathComponent(name)
            let temp = try TemporaryDirectory()
            defer { temp.cleanup() }
            let f32 = try QwenVLA(path: dir.path, pool: ThreadPool(threads: 2))
            var observations: [CalibrationObservation] = []
            // Text-only fixtures list camera embodiments they cannot run (no vision tower): skipped.
            for (i, e) in f32.config.embodiments.enumerated() where e.cameras.isEmpty || f32.vision != nil {
                let images = try Self.images(dir, e)
                for (j, text) in ["Open the drawer.", "Put the cup on the plate.", "Hand over the tool.", "Wipe the table.",
                                            "Close the lid.", "Stack the blocks."].enumerated() {
                    observations.append(CalibrationObservation(embodiment: e.tag, instruction: text, images: images,
                                                               seed: UInt64(100 + 10 * i + j), source: "\(name) \(e.tag) \(j)"))
                }
            }
            let calibration = GPTQCalibration(hessians: try Calibration.collect(model: f32, observations: observations),
                                              description: "\(observations.count) test observations")
            let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
            let ref = try referenceFloats(dir.appendingPathComponent("reference.safetensors"))
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

    /// The fixture folder's PNG for every camera of the embodiment.
    static func images(_ dir: URL, _ e: Embodiment) throws -> [String: RGBImage] {
        var images: [String: RGBImage] = [:]
        for camera in e.cameras { images[camera] = try RGBImage.load(path: dir.appendingPathComponent(camera + ".png").path) }
        return images
    }

    /// F32 tensors of a reference.safetensors, read through the checkpoint reader.
    func referenceFloats(_ url: URL) throws -> [String: [Float]] {
        let file = try SafetensorsCheckpoint(path: url.path)
        var out: [String: [Float]] = [:]
        for name in file.names {
            let t = try file.tensor(name)
            if t.dtype == .f32 { out[name] = t.toArray() }
        }
        return out
    }
}
