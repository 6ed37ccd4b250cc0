/// The multimodal part of a `Qwen3_5ForConditionalGeneration` config.json: `vision_config`
/// (Qwen3_5VisionConfig, defaults of transformers 5.23) and the image/vision token ids.
///
/// API summary
/// - `Qwen35VisionConfig`: depth, hiddenSize, hiddenAct, intermediateSize, numHeads, inChannels, patchSize,
///   spatialMergeSize, temporalPatchSize, outHiddenSize, numPositionEmbeddings, ropeTheta; `headDim`.
/// - `Qwen35MultimodalConfig`: `vision`, `imageTokenID`, `videoTokenID`, `visionStartTokenID`,
///   `visionEndTokenID`; `.load(from:)`, `.decode(_:source:)` (nil vision when the config has none).
import Foundation

public struct Qwen35VisionConfig: Decodable, Sendable, Equatable {
    public var depth = 27
    public var hiddenSize = 1152
    public var hiddenAct = "gelu_pytorch_tanh"
    public var intermediateSize = 4304
    public var numHeads = 16
    public var inChannels = 3
    public var patchSize = 16
    public var spatialMergeSize = 2
    public var temporalPatchSize = 2
    public var outHiddenSize = 3584
    public var numPositionEmbeddings = 2304
    public var ropeTheta = 10_000.0

    enum CodingKeys: String, CodingKey {
        case depth, hiddenSize = "hidden_size", hiddenAct = "hidden_act", intermediateSize = "intermediate_size"
        case numHeads = "num_heads", inChannels = "in_channels", patchSize = "patch_size"
        case spatialMergeSize = "spatial_merge_size", temporalPatchSize = "temporal_patch_size"
        case outHiddenSize = "out_hidden_size", numPositionEmbeddings = "num_position_embeddings"
        case ropeParameters = "rope_parameters"
    }

    struct Rope: Decodable {
        var ropeTheta: Double?
        var ropeType: String?
        enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta", ropeType = "rope_type" }
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        depth = try c.decodeIfPresent(Int.self, forKey: .depth) ?? depth
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? numHeads
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? inChannels
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? patchSize
        spatialMergeSize = try c.decodeIfPresent(Int.self, forKey: .spatialMergeSize) ?? spatialMergeSize
        temporalPatchSize = try c.decodeIfPresent(Int.self, forKey: .temporalPatchSize) ?? temporalPatchSize
        outHiddenSize = try c.decodeIfPresent(Int.self, forKey: .outHiddenSize) ?? outHiddenSize
        numPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .numPositionEmbeddings) ?? numPositionEmbeddings
        if let rope = try c.decodeIfPresent(Rope.self, forKey: .ropeParameters), let theta = rope.ropeTheta { ropeTheta = theta }
    }

    public var headDim: Int { hiddenSize / max(numHeads, 1) }
    /// Side of the square learned position grid.
    public var positionGridSide: Int { Int(Double(numPositionEmbeddings).squareRoot()) }

    public func validate() throws(Qwen35Error) {
        func bad(_ s: String) -> Qwen35Error { .config("vision_config: " + s) }
        if depth < 0 || hiddenSize <= 0 || numHeads <= 0 || intermediateSize <= 0 || outHiddenSize <= 0 {
            throw bad("depth, hidden_size, num_heads, intermediate_size and out_hidden_size must be positive")
        }
        if hiddenSize % numHeads != 0 || headDim % 4 != 0 {
            throw bad("hidden_size \(hiddenSize) / num_heads \(numHeads) must give a head_dim divisible by 4 (2-D rotary)")
        }
        if inChannels != 3 { throw bad("in_channels \(inChannels), expected 3 (RGB)") }
        if patchSize <= 0 || spatialMergeSize <= 0 || temporalPatchSize <= 0 {
            throw bad("patch_size, spatial_merge_size and temporal_patch_size must be positive")
        }
        if positionGridSide * positionGridSide != numPositionEmbeddings || positionGridSide < 1 {
            throw bad("num_position_embeddings \(numPositionEmbeddings) must be a perfect square")
        }
        if !["gelu_pytorch_tanh", "gelu", "gelu_new", "gelu_fast"].contains(hiddenAct) {
            throw bad("hidden_act \"\(hiddenAct)\" is not supported (expected gelu_pytorch_tanh or gelu)")
        }
    }
}

public struct Qwen35MultimodalConfig: Decodable, Sendable, Equatable {
    public var vision: Qwen35VisionConfig?
    public var imageTokenID = 248_056
    public var videoTokenID = 248_057
    public var visionStartTokenID = 248_053
    public var visionEndTokenID = 248_054

    enum CodingKeys: String, CodingKey {
        case vision = "vision_config", imageTokenID = "image_token_id", videoTokenID = "video_token_id"
        case visionStartTokenID = "vision_start_token_id", visionEndTokenID = "vision_end_token_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vision = try c.decodeIfPresent(Qwen35VisionConfig.self, forKey: .vision)
        imageTokenID = try c.decodeIfPresent(Int.self, forKey: .imageTokenID) ?? imageTokenID
        videoTokenID = try c.decodeIfPresent(Int.self, forKey: .videoTokenID) ?? videoTokenID
        visionStartTokenID = try c.decodeIfPresent(Int.self, forKey: .visionStartTokenID) ?? visionStartTokenID
        visionEndTokenID = try c.decodeIfPresent(Int.self, forKey: .visionEndTokenID) ?? visionEndTokenID
    }

    public static func decode(_ data: Data, source: String) throws(Qwen35Error) -> Qwen35MultimodalConfig {
        let config: Qwen35MultimodalConfig
        do { config = try JSONDecoder().decode(Qwen35MultimodalConfig.self, from: data) } catch {
            throw .config("\(source): cannot read vision_config / image token ids (\(error))")
        }
        try config.vision?.validate()
        return config
    }
}
