/// The Qwen3.5 conditional-generation model for a prompt with images: the text backbone, the vision tower
/// and the image processor loaded from one checkpoint (folder, .safetensors with config.json beside it, or a
/// Tendon GGUF). Image-pad embeddings are replaced by the vision tower's merged tokens in order
/// (`masked_scatter`), and positions come from `Qwen35RopeIndex` (get_rope_index).
///
/// API summary
/// - `Qwen35VisionLanguageModel(path:pool:) throws(Qwen35Error)`; `.text`, `.vision`, `.multimodal`,
///   `.processor`.
/// - `EncodedImages`: `tokens` [Σ merged, outHidden], `grids`; `count`.
/// - `preprocess(_ images: [RGBImage]) throws(Qwen35Error) -> (pixelValues: [Float], grids: [...])`.
/// - `padCount(for: RGBImage) throws(Qwen35Error) -> Int`: `<|image_pad|>` ids one image takes in the prompt.
/// - `encodeImages(_ images: [RGBImage]) throws(Qwen35Error) -> EncodedImages` (preprocess + tower);
///   `encodeImages(pixelValues:grids:)` for already patchified input.
/// - `positions(inputIDs:images:) throws(Qwen35Error) -> [[Int]]`: the three rope rows.
/// - `prefixHiddenStates(inputIDs:images:cache:) throws(Qwen35Error) -> [Float]`: `last_hidden_state`
///   (after the final norm) [T, hidden] for every token of the prefix; `logits(inputIDs:images:cache:)`.
import Foundation
import TendonTensor

public struct EncodedImages: Sendable {
    /// Merged vision tokens [Σ merged tokens, out_hidden_size], image after image.
    public var tokens: [Float]
    public var grids: [(t: Int, h: Int, w: Int)]
    public init(tokens: [Float], grids: [(t: Int, h: Int, w: Int)]) { self.tokens = tokens; self.grids = grids }
    public var count: Int { grids.count }
    public static let none = EncodedImages(tokens: [], grids: [])
}

public final class Qwen35VisionLanguageModel: Sendable {
    public let text: Qwen35TextModel
    public let vision: Qwen35VisionModel
    public let multimodal: Qwen35MultimodalConfig
    public let processor: QwenImageProcessor
    /// GGUF metadata key holding preprocessor_config.json's text (optional; `tendon-train convert` writes it).
    public static let ggufPreprocessorKey = TendonGGUFKeys.preprocessorConfigJSON

    public init(text: Qwen35TextModel, vision: Qwen35VisionModel, multimodal: Qwen35MultimodalConfig,
                processor: QwenImageProcessor) {
        self.text = text
        self.vision = vision
        self.multimodal = multimodal
        self.processor = processor
    }

    public convenience init(path: String, pool: ThreadPool? = nil) throws(Qwen35Error) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .missingFile("\(path) does not exist (expected a model folder, .safetensors or .gguf file)")
        }
        let configText: Data, source: String
        var preprocessorText: Data?
        let lookup: (String) throws(Qwen35Error) -> Tensor?
        if path.hasSuffix(".gguf") && !isDirectory.boolValue {
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .weights(error.description) }
            guard let text = file.metadata[Qwen35TextModel.ggufConfigKey]?.string else {
                throw .config("\(path): no \(Qwen35TextModel.ggufConfigKey) metadata string (expected the config.json text)")
            }
            configText = Data(text.utf8)
            source = "\(path) \(Qwen35TextModel.ggufConfigKey)"
            preprocessorText = file.metadata[Self.ggufPreprocessorKey]?.string.map { Data($0.utf8) }
            lookup = { name throws(Qwen35Error) in
                guard file.info(name) != nil else { return nil }
                do throws(CheckpointError) { return try file.tensor(name) } catch { throw .weights(error.description) }
            }
        } else {
            let folder = isDirectory.boolValue ? URL(fileURLWithPath: path) : URL(fileURLWithPath: path).deletingLastPathComponent()
            let configURL = folder.appendingPathComponent("config.json")
            do { configText = try Data(contentsOf: configURL) } catch {
                throw .missingFile("cannot read \(configURL.path): \(error.localizedDescription)")
            }
            source = configURL.path
            preprocessorText = try? Data(contentsOf: folder.appendingPathComponent("preprocessor_config.json"))
            let checkpoint: SafetensorsCheckpoint
            do {
                checkpoint = isDirectory.boolValue ? try SafetensorsCheckpoint(directory: path) : try SafetensorsCheckpoint(path: path)
            } catch { throw .weights(error.description) }
            lookup = Qwen35TextModel.lookup(checkpoint)
        }
        let config = try Qwen35Config.decode(configText, source: source)
        let multimodal = try Qwen35MultimodalConfig.decode(configText, source: source)
        guard let visionConfig = multimodal.vision else {
            throw .config("\(source): no vision_config (expected a Qwen3_5ForConditionalGeneration checkpoint for images)")
        }
        var processorConfig = QwenImageProcessorConfig(patchSize: visionConfig.patchSize,
                                                       temporalPatchSize: visionConfig.temporalPatchSize,
                                                       mergeSize: visionConfig.spatialMergeSize)
        if let preprocessorText {
            do { processorConfig = try JSONDecoder().decode(QwenImageProcessorConfig.self, from: preprocessorText) } catch {
                throw .config("\(source): preprocessor_config.json is not readable (\(error))")
            }
        }
        do { try processorConfig.validate(source: "preprocessor_config.json") } catch { throw .config(error.message) }
        guard processorConfig.patchSize == visionConfig.patchSize,
              processorConfig.temporalPatchSize == visionConfig.temporalPatchSize,
              processorConfig.mergeSize == visionConfig.spatialMergeSize else {
            throw .config("preprocessor_config.json patch/temporal/merge sizes \(processorConfig.patchSize)/\(processorConfig.temporalPatchSize)/\(processorConfig.mergeSize) differ from vision_config's \(visionConfig.patchSize)/\(visionConfig.temporalPatchSize)/\(visionConfig.spatialMergeSize)")
        }
        guard visionConfig.outHiddenSize == config.text.hiddenSize else {
            throw .config("vision_config out_hidden_size \(visionConfig.outHiddenSize) differs from the text hidden_size \(config.text.hiddenSize)")
        }
        let text = try Qwen35TextModel(config: config.text, pool: pool, lookup: lookup)
        let vision = try Qwen35VisionModel(config: visionConfig, pool: pool, lookup: lookup)
        self.init(text: text, vision: vision, multimodal: multimodal, processor: QwenImageProcessor(config: processorConfig))
    }

    public func preprocess(_ images: [RGBImage]) throws(Qwen35Error) -> (pixelValues: [Float], grids: [(t: Int, h: Int, w: Int)]) {
        var pixels: [Float] = [], grids: [(t: Int, h: Int, w: Int)] = []
        for (i, image) in images.enumerated() {
            let p: PreprocessedImage
            do { p = try processor.preprocess(image) } catch { throw .input("image \(i): \(error.message)") }
            pixels += p.pixelValues
            grids.append(p.grid)
        }
        return (pixels, grids)
    }

    /// How many `<|image_pad|>` ids the prompt needs for `image` (what the processor expands one pad into),
    /// without running the tower.
    public func padCount(for image: RGBImage) throws(Qwen35Error) -> Int {
        let m = vision.config.spatialMergeSize, p = processor.config.patchSize
        var (h, w) = (image.height, image.width)
        if processor.config.doResize {
            do { (h, w) = try processor.smartResize(height: image.height, width: image.width) } catch { throw .input(error.message) }
        }
        return Qwen35RopeIndex.mergedTokenCount(grid: (1, h / p, w / p), spatialMergeSize: m)
    }

    public func encodeImages(_ images: [RGBImage]) throws(Qwen35Error) -> EncodedImages {
        guard !images.isEmpty else { return .none }
        let (pixels, grids) = try preprocess(images)
        return try encodeImages(pixelValues: pixels, grids: grids)
    }

    public func encodeImages(pixelValues: [Float], grids: [(t: Int, h: Int, w: Int)]) throws(Qwen35Error) -> EncodedImages {
        EncodedImages(tokens: try vision.forward(pixelValues: pixelValues, grids: grids), grids: grids)
    }

    public func positions(inputIDs: [Int], images: EncodedImages) throws(Qwen35Error) -> [[Int]] {
        try Qwen35RopeIndex.positions(inputIDs: inputIDs, imageTokenID: multimodal.imageTokenID, grids: images.grids,
                                      spatialMergeSize: vision.config.spatialMergeSize)
    }

    /// Token embeddings with image pads replaced by the vision tokens, in order.
    public func embeddings(inputIDs: [Int], images: EncodedImages) throws(Qwen35Error) -> [Float] {
        let D = text.config.hiddenSize
        try Qwen35RopeIndex.checkPadCount(inputIDs: inputIDs, imageTokenID: multimodal.imageTokenID, grids: images.grids,
                                          spatialMergeSize: vision.config.spatialMergeSize)
        guard images.tokens.count == images.grids.reduce(0, { $0 + Qwen35RopeIndex.mergedTokenCount(grid: $1, spatialMergeSize: vision.config.spatialMergeSize) }) * D else {
            throw .input("encoded images hold \(images.tokens.count) values, not whole tokens of \(D) for their grids")
        }
        var x = try text.embed(inputIDs)
        var next = 0
        for (t, id) in inputIDs.enumerated() where id == multimodal.imageTokenID {
            for i in 0..<D { x[t * D + i] = images.tokens[next * D + i] }
            next += 1
        }
        return x
    }

    /// `last_hidden_state` (after the final norm) [T, hidden] for the prefix; with images, multimodal positions.
    public func prefixHiddenStates(inputIDs: [Int], images: EncodedImages, cache: inout Qwen35Cache) throws(Qwen35Error) -> [Float] {
        guard cache.length == 0 else { throw .input("a prefix with images must start from an empty cache (found \(cache.length) tokens)") }
        let x = try embeddings(inputIDs: inputIDs, images: images)
        let rows = try positions(inputIDs: inputIDs, images: images)
        return try text.hiddenStates(embeddings: x, positions: rows, cache: &cache)
    }

    public func logits(inputIDs: [Int], images: EncodedImages, cache: inout Qwen35Cache) throws(Qwen35Error) -> [Float] {
        text.logits(finalHidden: try prefixHiddenStates(inputIDs: inputIDs, images: images, cache: &cache))
    }
}
