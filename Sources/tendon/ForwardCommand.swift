import ArgumentParser
import Foundation
import TendonModel
import TendonTensor

/// `tendon forward`: the backbone's logits for a list of token ids, written as safetensors (DESIGN §3, §5).
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run the Qwen3.5 backbone on token ids and write the logits [T, vocab] (f32) as safetensors.",
        discussion: """
        MODEL is a Hugging Face folder (config.json + model.safetensors or a sharded index), one .safetensors \
        file with config.json beside it, or a Tendon .gguf. Text positions are 0…T−1 on all three rotary rows. \
        With --image (PNG or JPEG, in prompt order) the checkpoint must hold the vision tower \
        (Qwen3_5ForConditionalGeneration); the <|image_pad|> ids must already be expanded in --input-ids, one \
        run per image of t·h·w/merge² ids as the processor expands them, and positions are the multimodal ones.
        """)

    @Option(help: "Model folder, .safetensors file or .gguf file.") var model: String
    @Option(name: .customLong("input-ids"), help: "Comma-separated token ids, e.g. 1,2,3.") var inputIDs: String
    @Option(help: "Image file (PNG or JPEG); repeat for several, in the order their pads appear.") var image: [String] = []
    @Option(help: "Output .safetensors file; holds one tensor `logits` [T, vocab] f32.") var out: String

    func run() throws {
        let ids: [Int]
        switch Self.parseIDs(inputIDs) {
        case .success(let parsed): ids = parsed
        case .failure(let message): fail(message.text, code: 2)
        }
        let pool = ThreadPool(threads: ProcessInfo.processInfo.activeProcessorCount)
        if !image.isEmpty { return runWithImages(ids: ids, pool: pool) }
        let backbone: Qwen35TextModel
        do { backbone = try Qwen35TextModel(path: model, pool: pool) } catch { fail(error.description) }
        var cache = backbone.makeCache()
        let logits: [Float]
        do { logits = try backbone.logits(ids: ids, cache: &cache) } catch { fail(error.description, code: 2) }
        let tensor = Tensor(logits, shape: [ids.count, backbone.config.vocabSize], name: "logits")
        do { try SafetensorsWriter.write([tensor], to: out) } catch { fail(error.description) }
    }

    func runWithImages(ids: [Int], pool: ThreadPool) {
        let model: Qwen35VisionLanguageModel
        do { model = try Qwen35VisionLanguageModel(path: self.model, pool: pool) } catch { fail(error.description) }
        var images: [RGBImage] = []
        for path in image {
            do { images.append(try RGBImage.load(path: path)) } catch { fail(error.description, code: 2) }
        }
        let logits: [Float]
        do {
            // The pad count is checked before the vision tower runs.
            let (pixels, grids) = try model.preprocess(images)
            try Qwen35RopeIndex.checkPadCount(inputIDs: ids, imageTokenID: model.multimodal.imageTokenID, grids: grids,
                                              spatialMergeSize: model.vision.config.spatialMergeSize)
            let encoded = try model.encodeImages(pixelValues: pixels, grids: grids)
            var cache = model.text.makeCache()
            logits = try model.logits(inputIDs: ids, images: encoded, cache: &cache)
        } catch { fail(error.description, code: 2) }
        let tensor = Tensor(logits, shape: [ids.count, model.text.config.vocabSize], name: "logits")
        do { try SafetensorsWriter.write([tensor], to: out) } catch { fail(error.description) }
    }

    /// "1, 2,3" → [1, 2, 3]; anything else is a one-line usage error naming the bad entry.
    struct Message: Error { var text: String }

    static func parseIDs(_ text: String) -> Result<[Int], Message> {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var ids: [Int] = []
        for (i, part) in parts.enumerated() {
            guard let id = Int(part), id >= 0 else {
                return .failure(Message(text: "--input-ids entry \(i) is \"\(part)\", expected a non-negative integer (e.g. 1,2,3)"))
            }
            ids.append(id)
        }
        return .success(ids)
    }
}
