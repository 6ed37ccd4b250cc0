import Foundation
import Testing
import TendonTensor
@testable import TendonModel

/// Logits of the Swift backbone against transformers 5.23.0 on the tiny random checkpoints written by
/// Tools/reference/qwen35_reference.py.
@Suite struct Qwen35ReferenceTests {
    static let configs = ["text_tied", "text_untied_long", "text_sharded", "vlm_untied", "vlm_tied"]
    static let tolerance: Float = 1e-4
    /// Prefill runs with a pool (heads and matmul rows split over threads); decode runs without one, so
    /// both paths are compared with the reference.
    static let pool = ThreadPool(threads: 2)

    static func directory(_ name: String) -> URL { fixturesDirectory.appendingPathComponent("qwen35/\(name)") }

    @Test(arguments: configs)
    func prefillLogitsMatchReference(_ name: String) throws {
        let dir = Self.directory(name)
        let model = try Qwen35TextModel(directory: dir, pool: Self.pool)
        let ref = try ReferenceTensors(dir.appendingPathComponent("reference.safetensors"))
        let ids = ref.ints("input_ids")
        var cache = model.makeCache()
        var layerErrors: [Float] = []
        let x = try model.embed(ids)
        #expect(relativeError(x, ref.floats("embeddings")) == 0)
        let h = try model.hiddenStates(embeddings: x, positions: nil, cache: &cache) { i, out in
            layerErrors.append(relativeError(out, ref.floats("hidden.\(i)")))
        }
        let logits = model.logits(finalHidden: h)
        let err = relativeError(logits, ref.floats("logits"))
        print("qwen35 \(name): T=\(ids.count) per-layer rel err \(layerErrors), logits rel err \(err) (tolerance \(Self.tolerance))")
        #expect(layerErrors.allSatisfy { $0 < Self.tolerance })
        #expect(relativeError(h, ref.floats("final_norm")) < Self.tolerance)
        #expect(err < Self.tolerance, "\(name): logits max|Δ|/max|ref| = \(err)")
        #expect(cache.length == ids.count)
    }

    /// The Tendon GGUF (Q8_0/Q4_0/F16/F32 weights, config in metadata) against transformers running the same
    /// weights dequantized by gguf.quants. TendonTensor's quantized Linear quantizes activations to int8 per 32
    /// values (as ggml does), ≈ 1 % per matmul, so the bound here is 3e-2; a wrong block decoder or layout
    /// lands far above it.
    @Test func ggufQuantizedMatchesReference() throws {
        let dir = Self.directory("text_tied_gguf")
        let model = try Qwen35TextModel(path: dir.appendingPathComponent("model.gguf").path)
        let ref = try ReferenceTensors(dir.appendingPathComponent("reference.safetensors"))
        var cache = model.makeCache()
        let err = relativeError(try model.logits(ids: ref.ints("input_ids"), cache: &cache), ref.floats("logits"))
        print("qwen35 text_tied_gguf: logits rel err \(err) (tolerance 3e-2, int8 activations)")
        #expect(err < 3e-2)
    }

    /// A single .safetensors file with config.json beside it loads as the folder does.
    @Test func singleFileLoads() throws {
        let dir = Self.directory("vlm_untied")
        let model = try Qwen35TextModel(path: dir.appendingPathComponent("model.safetensors").path)
        let ref = try ReferenceTensors(dir.appendingPathComponent("reference.safetensors"))
        var cache = model.makeCache()
        #expect(relativeError(try model.logits(ids: ref.ints("input_ids"), cache: &cache), ref.floats("logits")) < Self.tolerance)
    }

    /// Three distinct position rows exercise the interleaved multimodal RoPE sections.
    @Test(arguments: ["vlm_untied", "vlm_tied"])
    func multimodalPositionsMatchReference(_ name: String) throws {
        let dir = Self.directory(name)
        let model = try Qwen35TextModel(directory: dir)
        let ref = try ReferenceTensors(dir.appendingPathComponent("reference.safetensors"))
        let ids = ref.ints("input_ids")
        let flat = ref.ints("mrope_position_ids")
        let rows = (0..<3).map { Array(flat[($0 * ids.count)..<(($0 + 1) * ids.count)]) }
        var cache = model.makeCache()
        let h = try model.hiddenStates(embeddings: try model.embed(ids), positions: rows, cache: &cache)
        let err = relativeError(model.logits(finalHidden: h), ref.floats("logits_mrope"))
        print("qwen35 \(name) mrope rows: logits rel err \(err)")
        #expect(err < Self.tolerance)
        // The same ids with text positions must differ, or the rows were not used.
        #expect(relativeError(model.logits(finalHidden: h), ref.floats("logits")) > 1e-3)
    }

    /// Prefill a prefix (chunked DeltaNet, fresh KV cache), then one token at a time (recurrent DeltaNet,
    /// growing KV cache): every step's logits equal the reference's full-prefill row.
    @Test(arguments: [("text_untied_long", 65), ("text_tied", 8), ("vlm_tied", 1), ("text_sharded", 6)])
    func decodeStepsMatchFullPrefill(_ name: String, _ prefix: Int) throws {
        let dir = Self.directory(name)
        let model = try Qwen35TextModel(directory: dir)
        let ref = try ReferenceTensors(dir.appendingPathComponent("reference.safetensors"))
        let ids = ref.ints("input_ids")
        let full = ref.floats("logits")
        let V = model.config.vocabSize
        var cache = model.makeCache()
        var got = try model.logits(ids: Array(ids[0..<prefix]), cache: &cache)
        for t in prefix..<ids.count {
            got += try model.logits(ids: [ids[t]], cache: &cache)
        }
        #expect(cache.length == ids.count)
        let err = relativeError(got, full)
        print("qwen35 \(name): prefill \(prefix) + \(ids.count - prefix) decode steps, rel err \(err)")
        #expect(err < Self.tolerance)
        #expect(got.count == ids.count * V)
    }
}
