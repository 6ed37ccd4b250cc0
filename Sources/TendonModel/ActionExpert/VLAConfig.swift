// The action side of config.json (DESIGN §3 "Action expert", "Embodiments", `prefix_template`). Keys are
// the config.json keys; Tools/reference/qwen_vla.py writes the same file.
import Foundation

/// Errors of the action side: config, weights, inputs. The text is the one line a command prints.
public enum VLAError: Error, Sendable, Equatable, CustomStringConvertible {
    case config(String)
    case weights(String)
    case input(String)

    public var description: String {
        switch self {
        case .config(let s), .weights(let s), .input(let s): s
        }
    }
}

/// `config.json` → `"action_expert"`.
public struct ActionExpertConfig: Codable, Sendable, Equatable {
    /// K: channels of the padded action tensor.
    public var actionDim: Int
    /// d
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    /// d_v: the backbone's hidden size (context rows).
    public var contextDim: Int
    public var ropeTheta: Double
    /// N, the default number of Euler steps.
    public var numInferenceSteps: Int

    enum CodingKeys: String, CodingKey {
        case actionDim = "action_dim"
        case hiddenSize = "hidden_size"
        case numLayers = "num_layers"
        case numHeads = "num_heads"
        case headDim = "head_dim"
        case intermediateSize = "intermediate_size"
        case contextDim = "context_dim"
        case ropeTheta = "rope_theta"
        case numInferenceSteps = "num_inference_steps"
    }

    public init(actionDim: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, headDim: Int, intermediateSize: Int,
                contextDim: Int, ropeTheta: Double, numInferenceSteps: Int) {
        self.actionDim = actionDim; self.hiddenSize = hiddenSize; self.numLayers = numLayers; self.numHeads = numHeads
        self.headDim = headDim; self.intermediateSize = intermediateSize; self.contextDim = contextDim
        self.ropeTheta = ropeTheta; self.numInferenceSteps = numInferenceSteps
    }

    public func validate() throws(VLAError) {
        for (key, value) in [("action_dim", actionDim), ("hidden_size", hiddenSize), ("num_layers", numLayers),
                             ("num_heads", numHeads), ("head_dim", headDim), ("intermediate_size", intermediateSize),
                             ("context_dim", contextDim), ("num_inference_steps", numInferenceSteps)] where value <= 0 {
            throw .config("action_expert.\(key) must be positive, found \(value)")
        }
        guard headDim % 2 == 0 else { throw .config("action_expert.head_dim must be even (RoPE over the whole head), found \(headDim)") }
        guard ropeTheta > 0 else { throw .config("action_expert.rope_theta must be positive, found \(ropeTheta)") }
    }
}

/// One entry of `config.json` → `"embodiments"`.
public struct Embodiment: Codable, Sendable, Equatable {
    public enum Arms: String, Codable, Sendable { case single, dual }

    public var tag: String
    public var robotTag: String
    public var arms: Arms
    public var waist: Bool
    public var mobileBase: Bool
    /// Control frequency in Hz (an integer in the prompt).
    public var fps: Int
    /// H: actions per chunk.
    public var chunkSize: Int
    /// Camera names in prefix order; `tendon act` wants one image per name.
    public var cameras: [String]
    /// c names: the leading c channels of the K-channel tensor.
    public var actionNames: [String]
    public var q01: [Float]
    public var q99: [Float]

    enum CodingKeys: String, CodingKey {
        case tag
        case robotTag = "robot_tag"
        case arms, waist
        case mobileBase = "mobile_base"
        case fps
        case chunkSize = "chunk_size"
        case cameras
        case actionNames = "action_names"
        case q01, q99
    }

    public init(tag: String, robotTag: String, arms: Arms, waist: Bool = false, mobileBase: Bool = false, fps: Int,
                chunkSize: Int, cameras: [String] = [], actionNames: [String], q01: [Float], q99: [Float]) {
        self.tag = tag; self.robotTag = robotTag; self.arms = arms; self.waist = waist; self.mobileBase = mobileBase
        self.fps = fps; self.chunkSize = chunkSize; self.cameras = cameras; self.actionNames = actionNames
        self.q01 = q01; self.q99 = q99
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tag = try c.decode(String.self, forKey: .tag)
        robotTag = try c.decode(String.self, forKey: .robotTag)
        arms = try c.decode(Arms.self, forKey: .arms)
        waist = try c.decodeIfPresent(Bool.self, forKey: .waist) ?? false
        mobileBase = try c.decodeIfPresent(Bool.self, forKey: .mobileBase) ?? false
        fps = try c.decode(Int.self, forKey: .fps)
        chunkSize = try c.decode(Int.self, forKey: .chunkSize)
        cameras = try c.decodeIfPresent([String].self, forKey: .cameras) ?? []
        actionNames = try c.decode([String].self, forKey: .actionNames)
        q01 = try c.decode([Float].self, forKey: .q01)
        q99 = try c.decode([Float].self, forKey: .q99)
    }

    /// c
    public var activeChannels: Int { actionNames.count }

    public func validate(actionDim K: Int) throws(VLAError) {
        let c = activeChannels
        guard c > 0, c <= K else {
            throw .config("embodiment \(tag): \(c) action_names, expected 1…\(K) (action_expert.action_dim)")
        }
        guard q01.count == c, q99.count == c else {
            throw .config("embodiment \(tag): q01 has \(q01.count) and q99 \(q99.count) values, expected \(c) (one per action name)")
        }
        guard fps > 0, chunkSize > 0 else {
            throw .config("embodiment \(tag): fps \(fps) and chunk_size \(chunkSize) must be positive")
        }
        guard Set(cameras).count == cameras.count else { throw .config("embodiment \(tag): camera names repeat: \(cameras)") }
    }

    /// a' = clip(2·(a−q01)/(q99−q01+1e-6) − 1, −1, 1) per channel, for rows of c values (training targets).
    public func normalize(_ actions: [Float]) -> [Float] {
        let c = activeChannels
        return actions.enumerated().map { i, a in
            let j = i % c
            return min(max(2 * (a - q01[j]) / (q99[j] - q01[j] + 1e-6) - 1, -1), 1)
        }
    }

    /// a = (a'+1)/2·(q99−q01+1e-6) + q01 per channel, no clipping (the safety filter owns limits). Rows of c.
    public func unnormalize(_ normalized: [Float]) -> [Float] {
        let c = activeChannels
        return normalized.enumerated().map { i, y in
            let j = i % c
            return (y + 1) / 2 * (q99[j] - q01[j] + 1e-6) + q01[j]
        }
    }
}

/// The action keys of config.json (the backbone's keys are `Qwen35Config`'s).
public struct VLAConfig: Decodable, Sendable {
    public var actionExpert: ActionExpertConfig
    public var embodiments: [Embodiment]
    /// nil: `EmbodimentPrompt.defaultPrefixTemplate`.
    public var prefixTemplate: String?

    enum CodingKeys: String, CodingKey {
        case actionExpert = "action_expert"
        case embodiments
        case prefixTemplate = "prefix_template"
    }

    public init(actionExpert: ActionExpertConfig, embodiments: [Embodiment], prefixTemplate: String? = nil) {
        self.actionExpert = actionExpert; self.embodiments = embodiments; self.prefixTemplate = prefixTemplate
    }

    /// Parses config.json text; names the missing or malformed key.
    public static func decode(_ data: Data, source: String) throws(VLAError) -> VLAConfig {
        let config: VLAConfig
        do {
            config = try JSONDecoder().decode(VLAConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw .config("\(source): missing key \(path) (a Qwen-VLA config needs action_expert and embodiments)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
                let DecodingError.dataCorrupted(context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .config("\(source): \(path.isEmpty ? "" : path + ": ")\(context.debugDescription)")
        } catch {
            throw .config("\(source): \(error)")
        }
        try config.actionExpert.validate()
        guard !config.embodiments.isEmpty else { throw .config("\(source): embodiments is empty") }
        var seen = Set<String>()
        for e in config.embodiments {
            try e.validate(actionDim: config.actionExpert.actionDim)
            guard seen.insert(e.tag).inserted else { throw .config("\(source): embodiment tag \(e.tag) appears twice") }
        }
        return config
    }

    /// The embodiment with `tag`, or an error listing the known tags.
    public func embodiment(_ tag: String) throws(VLAError) -> Embodiment {
        guard let e = embodiments.first(where: { $0.tag == tag }) else {
            throw .input("unknown embodiment \"\(tag)\"; known: \(embodiments.map(\.tag).joined(separator: ", "))")
        }
        return e
    }
}
