import Foundation
import Testing
import TendonTensor
@testable import TendonModel

/// Config decoding and the errors bad input gets (one line naming expected and found).
@Suite struct Qwen35LoadingTests {
    static let dir = fixturesDirectory.appendingPathComponent("qwen35/vlm_tied")

    @Test func decodesBothLayouts() throws {
        let vlm = try Qwen35Config.load(from: Self.dir.appendingPathComponent("config.json"))
        #expect(vlm.hasTextConfig)
        #expect(vlm.text.layerTypes == ["full_attention", "linear_attention"])
        #expect(vlm.text.tieWordEmbeddings)
        #expect(vlm.text.rotaryDim == 16 && vlm.text.mropeSection == [3, 3, 2])
        let text = try Qwen35Config.load(from: fixturesDirectory.appendingPathComponent("qwen35/text_sharded/config.json"))
        #expect(!text.hasTextConfig)
        #expect(text.text.numHiddenLayers == 5 && text.text.rotaryDim == 4 && text.text.ropeTheta == 1e7)
    }

    @Test func defaultsFollowTheReferenceClass() throws {
        let json = #"{"model_type":"qwen3_5_text","num_hidden_layers":8,"rope_theta":500.0}"#
        let c = try Qwen35Config.decode(Data(json.utf8), source: "inline").text
        #expect(c.layerTypes.filter { $0 == "full_attention" }.count == 2)
        #expect(c.layerTypes[3] == "full_attention" && c.layerTypes[0] == "linear_attention")
        #expect(c.headDim == 256 && c.partialRotaryFactor == 0.25 && c.ropeTheta == 500)
        #expect(c.mropeSection == [11, 11, 10])
    }

    @Test func badConfigsAreRejectedWithTheKey() {
        let cases = [
            (#"{"model_type":"llama"}"#, "model_type"),
            (#"{"num_hidden_layers":2,"layer_types":["full_attention"]}"#, "layer_types"),
            (#"{"num_attention_heads":6,"num_key_value_heads":4}"#, "num_key_value_heads"),
            (#"{"rope_parameters":{"rope_type":"yarn"}}"#, "rope_type"),
            (#"[1,2]"#, "not a Qwen3.5 config.json"),
        ]
        for (json, key) in cases {
            do {
                _ = try Qwen35Config.decode(Data(json.utf8), source: "inline")
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.description.contains(key), "\(error.description)")
            }
        }
    }

    @Test func idOutsideVocabularyIsAnInputError() throws {
        let model = try Qwen35TextModel(directory: Self.dir)
        var cache = model.makeCache()
        #expect(throws: Qwen35Error.input("input id 224 at position 1 is outside the vocabulary 0..<224")) {
            _ = try model.logits(ids: [3, 224], cache: &cache)
        }
        #expect(throws: Qwen35Error.self) { _ = try model.logits(ids: [-1], cache: &cache) }
        #expect(throws: Qwen35Error.self) { _ = try model.logits(ids: [], cache: &cache) }
    }

    @Test func missingFolderAndWrongShapesAreNamed() throws {
        #expect(throws: Qwen35Error.self) {
            _ = try Qwen35TextModel(directory: URL(fileURLWithPath: "/nonexistent/qwen"))
        }
        let config = try Qwen35Config.load(from: Self.dir.appendingPathComponent("config.json")).text
        let checkpoint = try SafetensorsCheckpoint(directory: Self.dir.path)
        func tensors(_ n: String) -> Tensor? { checkpoint.contains(n) ? try? checkpoint.tensor(n) : nil }
        let name = "model.language_model.layers.0.self_attn.k_proj.weight"
        do {
            _ = try Qwen35TextModel(config: config) { n in
                n == name ? Tensor(zeros: [31, 64], name: n) : tensors(n)
            }
            Issue.record("accepted a wrong shape")
        } catch {
            #expect(error == .weights("\(name): shape [31, 64], expected [32, 64]"))
        }
        do {
            _ = try Qwen35TextModel(config: config) { n in n.hasSuffix("dt_bias") ? nil : tensors(n) }
            Issue.record("accepted a missing tensor")
        } catch {
            #expect(error.description.contains("missing tensor model.language_model.layers.1.linear_attn.dt_bias"))
        }
    }
}
