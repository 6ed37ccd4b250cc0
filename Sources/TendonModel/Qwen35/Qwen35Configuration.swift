// Port of transformers 5.23.0 models/qwen3_5/configuration_qwen3_5.py (Qwen3_5TextConfig, the text part of
// Qwen3_5Config). CodingKeys are the config.json keys, so a checkpoint's config decodes as it is written.
import Foundation

/// `rope_parameters` as save_pretrained writes it (transformers ≥ 5), or the older top-level
/// `rope_scaling` object (same keys, `type` instead of `rope_type`).
public struct Qwen35RopeParameters: Codable, Sendable, Equatable {
    public var ropeType: String?
    public var type: String?
    public var ropeTheta: Double?
    public var partialRotaryFactor: Double?
    public var mropeSection: [Int]?
    public var mropeInterleaved: Bool?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type"
        case type
        case ropeTheta = "rope_theta"
        case partialRotaryFactor = "partial_rotary_factor"
        case mropeSection = "mrope_section"
        case mropeInterleaved = "mrope_interleaved"
    }
}

/// Qwen3_5TextConfig. Optional keys take the defaults of the reference class.
public struct Qwen35TextConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var hiddenAct: String
    public var rmsNormEps: Double
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var headDimValue: Int?
    public var linearConvKernelDim: Int
    public var linearKeyHeadDim: Int
    public var linearValueHeadDim: Int
    public var linearNumKeyHeads: Int
    public var linearNumValueHeads: Int
    public var layerTypesValue: [String]?
    public var fullAttentionInterval: Int?
    public var ropeParameters: Qwen35RopeParameters?
    public var ropeScaling: Qwen35RopeParameters?
    public var ropeThetaValue: Double?
    public var partialRotaryFactorValue: Double?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case hiddenAct = "hidden_act"
        case rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case headDimValue = "head_dim"
        case linearConvKernelDim = "linear_conv_kernel_dim"
        case linearKeyHeadDim = "linear_key_head_dim"
        case linearValueHeadDim = "linear_value_head_dim"
        case linearNumKeyHeads = "linear_num_key_heads"
        case linearNumValueHeads = "linear_num_value_heads"
        case layerTypesValue = "layer_types"
        case fullAttentionInterval = "full_attention_interval"
        case ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
        case ropeThetaValue = "rope_theta"
        case partialRotaryFactorValue = "partial_rotary_factor"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 248_320
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 4096
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 12_288
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 32
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 16
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? 4
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        headDimValue = try c.decodeIfPresent(Int.self, forKey: .headDimValue)
        linearConvKernelDim = try c.decodeIfPresent(Int.self, forKey: .linearConvKernelDim) ?? 4
        linearKeyHeadDim = try c.decodeIfPresent(Int.self, forKey: .linearKeyHeadDim) ?? 128
        linearValueHeadDim = try c.decodeIfPresent(Int.self, forKey: .linearValueHeadDim) ?? 128
        linearNumKeyHeads = try c.decodeIfPresent(Int.self, forKey: .linearNumKeyHeads) ?? 16
        linearNumValueHeads = try c.decodeIfPresent(Int.self, forKey: .linearNumValueHeads) ?? 32
        layerTypesValue = try c.decodeIfPresent([String].self, forKey: .layerTypesValue)
        fullAttentionInterval = try c.decodeIfPresent(Int.self, forKey: .fullAttentionInterval)
        ropeParameters = try c.decodeIfPresent(Qwen35RopeParameters.self, forKey: .ropeParameters)
        ropeScaling = try c.decodeIfPresent(Qwen35RopeParameters.self, forKey: .ropeScaling)
        ropeThetaValue = try c.decodeIfPresent(Double.self, forKey: .ropeThetaValue)
        partialRotaryFactorValue = try c.decodeIfPresent(Double.self, forKey: .partialRotaryFactorValue)
    }

    /// `head_dim` defaults to 256 in the reference class (not hidden/heads).
    public var headDim: Int { headDimValue ?? 256 }

    /// As the reference's `__post_init__`: explicit list, else every `full_attention_interval`-th (4) layer.
    public var layerTypes: [String] {
        if let layerTypesValue { return layerTypesValue }
        let interval = fullAttentionInterval ?? 4
        return (0..<numHiddenLayers).map { ($0 + 1) % interval == 0 ? "full_attention" : "linear_attention" }
    }

    private var rope: Qwen35RopeParameters? { ropeParameters ?? ropeScaling }
    public var ropeType: String { rope?.ropeType ?? rope?.type ?? "default" }
    public var ropeTheta: Double { rope?.ropeTheta ?? ropeThetaValue ?? 10_000 }
    /// The reference assigns 0.25 when the config names none.
    public var partialRotaryFactor: Double { rope?.partialRotaryFactor ?? partialRotaryFactorValue ?? 0.25 }
    public var mropeSection: [Int] { rope?.mropeSection ?? [11, 11, 10] }
    public var rotaryDim: Int { Int(Double(headDim) * partialRotaryFactor) }

    /// Checks what the forward pass relies on; names the key and the value found.
    public func validate() throws(Qwen35Error) {
        func bad(_ s: String) -> Qwen35Error { .config(s) }
        let positive: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
            ("linear_conv_kernel_dim", linearConvKernelDim), ("linear_key_head_dim", linearKeyHeadDim),
            ("linear_value_head_dim", linearValueHeadDim), ("linear_num_key_heads", linearNumKeyHeads),
            ("linear_num_value_heads", linearNumValueHeads),
        ]
        for (key, value) in positive where value <= 0 { throw bad("\(key) must be positive, found \(value)") }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw bad("num_attention_heads (\(numAttentionHeads)) must be a multiple of num_key_value_heads (\(numKeyValueHeads))")
        }
        if linearNumValueHeads % linearNumKeyHeads != 0 {
            throw bad("linear_num_value_heads (\(linearNumValueHeads)) must be a multiple of linear_num_key_heads (\(linearNumKeyHeads))")
        }
        if layerTypes.count != numHiddenLayers {
            throw bad("layer_types has \(layerTypes.count) entries, expected num_hidden_layers = \(numHiddenLayers)")
        }
        for (i, t) in layerTypes.enumerated() where t != "full_attention" && t != "linear_attention" {
            throw bad("layer_types[\(i)] is \"\(t)\", expected \"full_attention\" or \"linear_attention\"")
        }
        if hiddenAct != "silu" { throw bad("hidden_act \"\(hiddenAct)\" is not supported, expected \"silu\"") }
        if ropeType != "default" { throw bad("rope_type \"\(ropeType)\" is not supported, expected \"default\"") }
        if rotaryDim % 2 != 0 || rotaryDim > headDim {
            throw bad("rotary dimension head_dim × partial_rotary_factor = \(rotaryDim) must be even and ≤ head_dim \(headDim)")
        }
        if mropeSection.count != 3 || mropeSection.contains(where: { $0 < 0 }) {
            throw bad("mrope_section must hold three non-negative counts, found \(mropeSection)")
        }
        if attentionBias { throw bad("attention_bias true is not supported (Qwen3.5 has none)") }
    }
}

/// config.json of either layout: `Qwen3_5ForConditionalGeneration` (text under `text_config`) or
/// `Qwen3_5ForCausalLM` (the text keys at top level).
public struct Qwen35Config: Decodable, Sendable {
    public var text: Qwen35TextConfig
    /// True for the conditional-generation layout (weights under `model.language_model.`).
    public var hasTextConfig: Bool
    public var architectures: [String]?
    public var modelType: String?

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config"
        case tieWordEmbeddings = "tie_word_embeddings"
        case architectures
        case modelType = "model_type"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        if var nested = try c.decodeIfPresent(Qwen35TextConfig.self, forKey: .textConfig) {
            // The top-level flag is the one PreTrainedModel ties by in the conditional-generation class.
            if let tie = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) { nested.tieWordEmbeddings = tie }
            text = nested
            hasTextConfig = true
        } else {
            text = try Qwen35TextConfig(from: decoder)
            hasTextConfig = false
        }
    }

    public static func load(from url: URL) throws(Qwen35Error) -> Qwen35Config {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .missingFile("cannot read \(url.path): \(error.localizedDescription)")
        }
        return try decode(data, source: url.path)
    }

    public static func decode(_ data: Data, source: String) throws(Qwen35Error) -> Qwen35Config {
        let config: Qwen35Config
        do { config = try JSONDecoder().decode(Qwen35Config.self, from: data) } catch {
            throw .config("\(source): not a Qwen3.5 config.json (\(error))")
        }
        if let type = config.modelType, !["qwen3_5", "qwen3_5_text"].contains(type) {
            throw .config("\(source): model_type \"\(type)\", expected \"qwen3_5\" or \"qwen3_5_text\"")
        }
        try config.text.validate()
        return config
    }
}

/// Every way loading or running the backbone can fail on bad input; the message names what was expected.
public enum Qwen35Error: Error, Sendable, Equatable, CustomStringConvertible {
    case missingFile(String)
    case config(String)
    case weights(String)
    case input(String)

    public var description: String {
        switch self {
        case .missingFile(let s), .config(let s), .weights(let s), .input(let s): s
        }
    }
}
