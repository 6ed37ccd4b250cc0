// The whole policy from one checkpoint (DESIGN §1, §3): embodiment prompt → tokenizer → backbone (once per
// observation) → context K/V → N Euler steps of the action expert → unnormalized chunk.
//
// API summary
// - `QwenVLA(path:pool:) throws(VLAError)`: HF folder or Tendon GGUF (backbone, vision when vision_config,
//   action expert, tokenizer, `VLAConfig`); `QwenVLA(config:backbone:vision:expert:tokenizer:)`.
// - `act(embodiment:instruction:images:noise:seed:steps:) throws(VLAError) -> ActionChunk`
//   (actions [H, c], normalized [H, K], timings split preprocessing / backbone / expert).
// - `observe(_:instruction:images:timings:) -> ActionExpertContext` then `expert.sample(noise:activeChannels:
//   steps:context:)` for callers that keep the context (several samples per observation).
// - `prefix(_:instruction:imageTokens:)`, `checkImages(_:images:)`; `GaussianNoise.sample(count:seed:)`.
import Foundation
import TendonTensor

/// One denoised chunk.
public struct ActionChunk: Sendable {
    public var embodiment: String
    /// H rows.
    public var steps: Int
    /// c: channels of `actions`.
    public var channels: Int
    /// K: channels of `normalized`.
    public var actionDim: Int
    /// [H, c], unnormalized with the embodiment's q01/q99 (not clipped).
    public var actions: [Float]
    /// [H, K], the sampler's output (padded channels zero).
    public var normalized: [Float]
    public var timings: ActTimings
}

/// Where an observation's time went (seconds).
public struct ActTimings: Sendable {
    /// Prompt, tokenizer (and image preprocessing when cameras are given).
    public var preprocessing: Double = 0
    public var backbone: Double = 0
    /// Context K/V and all Euler steps.
    public var expert: Double = 0
    public var total: Double { preprocessing + backbone + expert }
}

public final class QwenVLA: Sendable {
    public let config: VLAConfig
    public let backbone: Qwen35TextModel
    /// The vision tower, image processor and multimodal positions (checkpoints with a vision_config).
    public let vision: Qwen35VisionLanguageModel?
    public let expert: ActionExpert
    public let tokenizer: Tokenizer

    public init(config: VLAConfig, backbone: Qwen35TextModel, vision: Qwen35VisionLanguageModel? = nil,
                expert: ActionExpert, tokenizer: Tokenizer) throws(VLAError) {
        guard config.actionExpert.contextDim == backbone.config.hiddenSize else {
            throw .config("action_expert.context_dim \(config.actionExpert.contextDim) differs from the backbone's hidden_size \(backbone.config.hiddenSize)")
        }
        if let vision {
            let pad = tokenizer.addedTokenId("<|image_pad|>")
            guard pad == vision.multimodal.imageTokenID else {
                throw .config("tokenizer's <|image_pad|> is \(pad.map(String.init) ?? "missing"), config image_token_id is \(vision.multimodal.imageTokenID)")
            }
        }
        self.config = config
        self.backbone = backbone
        self.vision = vision
        self.expert = expert
        self.tokenizer = tokenizer
    }

    /// A Hugging Face folder (config.json with `action_expert` and `embodiments`, model.safetensors with
    /// the backbone and `action_expert.*`, tokenizer.json) or a Tendon GGUF (`tendon-train convert`).
    public convenience init(path: String, pool: ThreadPool? = nil) throws(VLAError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .config("\(path) does not exist (expected a model folder or a .gguf file)")
        }
        let configText: Data, tokenizerText: Data
        var fileTemplate: String?
        let lookup: (String) throws(CheckpointError) -> Tensor?
        if isDirectory.boolValue {
            let folder = URL(fileURLWithPath: path)
            configText = try Self.read(folder.appendingPathComponent("config.json"))
            tokenizerText = try Self.read(folder.appendingPathComponent("tokenizer.json"))
            let checkpoint: SafetensorsCheckpoint
            do { checkpoint = try SafetensorsCheckpoint(directory: path) } catch { throw .weights(error.description) }
            lookup = { name throws(CheckpointError) in checkpoint.contains(name) ? try checkpoint.tensor(name) : nil }
        } else {
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .weights(error.description) }
            guard let config = file.metadata[TendonGGUFKeys.configJSON]?.string else {
                throw .config("\(path): no \(TendonGGUFKeys.configJSON) metadata (expected the config.json text)")
            }
            guard let tokenizer = file.metadata[TendonGGUFKeys.tokenizerJSON]?.string else {
                throw .config("\(path): no \(TendonGGUFKeys.tokenizerJSON) metadata (expected the tokenizer.json text)")
            }
            configText = Data(config.utf8)
            tokenizerText = Data(tokenizer.utf8)
            fileTemplate = file.metadata[TendonGGUFKeys.prefixTemplate]?.string
            lookup = { name throws(CheckpointError) in file.info(name) != nil ? try file.tensor(name) : nil }
        }
        var vla = try VLAConfig.decode(configText, source: "\(path) config.json")
        if vla.prefixTemplate == nil { vla.prefixTemplate = fileTemplate }
        let backboneConfig: Qwen35Config
        do { backboneConfig = try Qwen35Config.decode(configText, source: "\(path) config.json") } catch {
            throw .config(error.description)
        }
        let backbone: Qwen35TextModel
        var vision: Qwen35VisionLanguageModel?
        do {
            if (try? JSONSerialization.jsonObject(with: configText) as? [String: Any])?["vision_config"] != nil {
                // The vision side opens the same folder or file itself (weights stay memory-mapped).
                vision = try Qwen35VisionLanguageModel(path: path, pool: pool)
                backbone = vision!.text
            } else {
                backbone = try Qwen35TextModel(config: backboneConfig.text, pool: pool) { name throws(Qwen35Error) in
                    do throws(CheckpointError) { return try lookup(name) } catch { throw .weights(error.description) }
                }
            }
        } catch { throw .weights(error.description) }
        let expert = try ActionExpert(config: vla.actionExpert, pool: pool) { name throws(VLAError) in
            do throws(CheckpointError) { return try lookup(name) } catch { throw .weights(error.description) }
        }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer(jsonData: tokenizerText) } catch { throw .config("\(path) tokenizer: \(error)") }
        try self.init(config: vla, backbone: backbone, vision: vision, expert: expert, tokenizer: tokenizer)
    }

    static func read(_ url: URL) throws(VLAError) -> Data {
        do { return try Data(contentsOf: url) } catch { throw .config("cannot read \(url.path): \(error.localizedDescription)") }
    }

    // MARK: - Prefix

    /// The prefix text for an embodiment: template (config's `prefix_template` or the default) with one
    /// vision block per camera (`imageTokens[i]` pads for camera i, config order) and the embodiment prompt.
    public func prefix(_ e: Embodiment, instruction: String, imageTokens: [Int] = []) -> String {
        EmbodimentPrompt.prefix(template: config.prefixTemplate ?? EmbodimentPrompt.defaultPrefixTemplate,
                                imageTokens: imageTokens, prompt: EmbodimentPrompt.render(e, instruction: instruction))
    }

    // MARK: - Acting

    /// Checks that `images` names exactly the embodiment's cameras, and that the checkpoint can see.
    public func checkImages(_ e: Embodiment, images: [String]) throws(VLAError) {
        let missing = e.cameras.filter { !images.contains($0) }
        if !missing.isEmpty {
            throw .input("embodiment \(e.tag) needs an image for camera(s) \(missing.joined(separator: ", ")) (--image NAME=FILE)")
        }
        let unknown = images.filter { !e.cameras.contains($0) }
        if !unknown.isEmpty {
            throw .input("embodiment \(e.tag) has no camera \(unknown.joined(separator: ", ")); its cameras: "
                         + (e.cameras.isEmpty ? "none" : e.cameras.joined(separator: ", ")))
        }
        if !e.cameras.isEmpty, vision == nil {
            throw .input("embodiment \(e.tag) has cameras, but the checkpoint has no vision tower (no vision_config)")
        }
    }

    /// Camera images (config order) → pixel values; prefix token ids; → backbone (vision tower and multimodal
    /// positions when there are images) → context K/V. Once per observation.
    public func observe(_ e: Embodiment, instruction: String, images: [String: RGBImage] = [:],
                        timings: inout ActTimings) throws(VLAError) -> ActionExpertContext {
        try checkImages(e, images: Array(images.keys))
        var start = Self.now()
        var pixels: [Float] = [], grids: [(t: Int, h: Int, w: Int)] = []
        var imageTokens: [Int] = []
        if let vision, !e.cameras.isEmpty {
            do { (pixels, grids) = try vision.preprocess(e.cameras.map { images[$0]! }) } catch { throw .input(error.description) }
            let merge = vision.vision.config.spatialMergeSize
            imageTokens = grids.map { Qwen35RopeIndex.mergedTokenCount(grid: $0, spatialMergeSize: merge) }
        }
        let ids = tokenizer.encode(prefix(e, instruction: instruction, imageTokens: imageTokens))
        timings.preprocessing += Self.now() - start
        start = Self.now()
        var cache = backbone.makeCache()
        let hidden: [Float]
        do {
            if let vision, !grids.isEmpty {
                let encoded = try vision.encodeImages(pixelValues: pixels, grids: grids)
                hidden = try vision.prefixHiddenStates(inputIDs: ids, images: encoded, cache: &cache)
            } else {
                hidden = try backbone.hiddenStates(embeddings: try backbone.embed(ids), positions: nil, cache: &cache)
            }
        } catch { throw .input(error.description) }
        timings.backbone += Self.now() - start
        start = Self.now()
        let context = try expert.context(hidden, tokens: ids.count)
        timings.expert += Self.now() - start
        return context
    }

    /// One chunk for embodiment `tag`. `noise` [H, K] (H = chunk_size) or nil for Gaussian noise from `seed`;
    /// `steps` nil means the config's num_inference_steps.
    public func act(embodiment tag: String, instruction: String, images: [String: RGBImage] = [:], noise: [Float]? = nil,
                    seed: UInt64 = 0, steps: Int? = nil) throws(VLAError) -> ActionChunk {
        let e = try config.embodiment(tag)
        try checkImages(e, images: Array(images.keys))
        let K = config.actionExpert.actionDim, H = e.chunkSize
        let N = steps ?? config.actionExpert.numInferenceSteps
        guard N > 0 else { throw .input("steps must be a positive integer, found \(N)") }
        let y1: [Float]
        if let noise {
            guard noise.count == H * K else {
                throw .input("noise holds \(noise.count) values, expected [\(H), \(K)] (chunk_size × action_dim) for \(tag)")
            }
            y1 = noise
        } else {
            y1 = GaussianNoise.sample(count: H * K, seed: seed)
        }
        var timings = ActTimings()
        let context = try observe(e, instruction: instruction, images: images, timings: &timings)
        let start = Self.now()
        let y = try expert.sample(noise: y1, activeChannels: e.activeChannels, steps: N, context: context)
        timings.expert += Self.now() - start
        let c = e.activeChannels
        var lead = [Float](repeating: 0, count: H * c)
        for t in 0..<H { for j in 0..<c { lead[t * c + j] = y[t * K + j] } }
        return ActionChunk(embodiment: tag, steps: H, channels: c, actionDim: K, actions: e.unnormalize(lead),
                           normalized: y, timings: timings)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// Standard normal values from a seed (SplitMix64 + Box–Muller): reproducible across runs and machines.
public enum GaussianNoise {
    public static func sample(count: Int, seed: UInt64) -> [Float] {
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func uniform() -> Double { (Double(next() >> 11) + 0.5) / Double(1 << 53) }
        var out = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {
            let r = (-2 * Foundation.log(uniform())).squareRoot(), a = 2 * Double.pi * uniform()
            out[i] = Float(r * Foundation.cos(a))
            if i + 1 < count { out[i + 1] = Float(r * Foundation.sin(a)) }
            i += 2
        }
        return out
    }
}
