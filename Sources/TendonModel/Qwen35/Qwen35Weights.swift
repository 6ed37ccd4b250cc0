// Weights of the Qwen3.5 text backbone, held under the checkpoint's own tensor names (save_pretrained's
// `model.layers.*` or `model.language_model.layers.*`), so loading is a lookup with a shape check.
import TendonTensor

struct Qwen35AttentionWeights: Sendable {
    var qProj, kProj, vProj, oProj: Tensor
    var qNorm, kNorm: [Float]
}

struct Qwen35DeltaNetWeights: Sendable {
    var inProjQKV, inProjZ, inProjB, inProjA, outProj: Tensor
    /// Depthwise conv1d weight [convDim, kernel] (the checkpoint's [convDim, 1, kernel]).
    var conv1d: [Float]
    var dtBias, aLog: [Float]
    /// Gated RMSNorm weight, used as is (not 1+w).
    var norm: [Float]
}

struct Qwen35MLPWeights: Sendable {
    var gateProj, upProj, downProj: Tensor
}

enum Qwen35Mixer: Sendable {
    case attention(Qwen35AttentionWeights)
    case linear(Qwen35DeltaNetWeights)
}

struct Qwen35LayerWeights: Sendable {
    var mixer: Qwen35Mixer
    var mlp: Qwen35MLPWeights
    var inputLayerNorm, postAttentionLayerNorm: [Float]
}

struct Qwen35Weights: Sendable {
    var embedTokens: Tensor
    var layers: [Qwen35LayerWeights]
    var norm: [Float]
    /// `lm_head.weight`, or the embedding table when the embeddings are tied.
    var lmHead: Tensor
    /// "model.language_model." or "model.".
    var prefix: String

    /// `lookup` returns nil for a name the checkpoint does not hold and throws for one it cannot read.
    static func load(config c: Qwen35TextConfig,
                     lookup: (String) throws(Qwen35Error) -> Tensor?) throws(Qwen35Error) -> Qwen35Weights {
        let prefix: String
        if try lookup("model.language_model.embed_tokens.weight") != nil {
            prefix = "model.language_model."
        } else if try lookup("model.embed_tokens.weight") != nil {
            prefix = "model."
        } else {
            throw .weights("no embedding table: expected model.embed_tokens.weight or model.language_model.embed_tokens.weight")
        }
        func tensor(_ name: String, _ shape: [Int]) throws(Qwen35Error) -> Tensor {
            guard let t = try lookup(name) else { throw .weights("missing tensor \(name) (expected shape \(shape))") }
            guard t.shape == shape else { throw .weights("\(name): shape \(t.shape), expected \(shape)") }
            guard t.rowBytes != nil else {
                throw .weights("\(name): rows of \(t.rowLength) are not whole \(t.dtype) blocks of \(t.dtype.blockSize)")
            }
            return t
        }
        func vector(_ name: String, _ count: Int) throws(Qwen35Error) -> [Float] {
            Qwen35Ops.floats(try tensor(name, [count]))
        }
        let D = c.hiddenSize, hd = c.headDim
        let embed = try tensor(prefix + "embed_tokens.weight", [c.vocabSize, D])
        var layers: [Qwen35LayerWeights] = []
        for (i, type) in c.layerTypes.enumerated() {
            let p = "\(prefix)layers.\(i)."
            let mixer: Qwen35Mixer
            if type == "full_attention" {
                let a = p + "self_attn."
                mixer = .attention(Qwen35AttentionWeights(
                    qProj: try tensor(a + "q_proj.weight", [c.numAttentionHeads * hd * 2, D]),
                    kProj: try tensor(a + "k_proj.weight", [c.numKeyValueHeads * hd, D]),
                    vProj: try tensor(a + "v_proj.weight", [c.numKeyValueHeads * hd, D]),
                    oProj: try tensor(a + "o_proj.weight", [D, c.numAttentionHeads * hd]),
                    qNorm: try vector(a + "q_norm.weight", hd),
                    kNorm: try vector(a + "k_norm.weight", hd)))
            } else {
                let l = p + "linear_attn."
                let keyDim = c.linearNumKeyHeads * c.linearKeyHeadDim
                let valueDim = c.linearNumValueHeads * c.linearValueHeadDim
                let convDim = 2 * keyDim + valueDim
                let conv = try tensor(l + "conv1d.weight", [convDim, 1, c.linearConvKernelDim])
                mixer = .linear(Qwen35DeltaNetWeights(
                    inProjQKV: try tensor(l + "in_proj_qkv.weight", [convDim, D]),
                    inProjZ: try tensor(l + "in_proj_z.weight", [valueDim, D]),
                    inProjB: try tensor(l + "in_proj_b.weight", [c.linearNumValueHeads, D]),
                    inProjA: try tensor(l + "in_proj_a.weight", [c.linearNumValueHeads, D]),
                    outProj: try tensor(l + "out_proj.weight", [D, valueDim]),
                    conv1d: Qwen35Ops.floats(conv),
                    dtBias: try vector(l + "dt_bias", c.linearNumValueHeads),
                    aLog: try vector(l + "A_log", c.linearNumValueHeads),
                    norm: try vector(l + "norm.weight", c.linearValueHeadDim)))
            }
            let m = p + "mlp."
            layers.append(Qwen35LayerWeights(
                mixer: mixer,
                mlp: Qwen35MLPWeights(
                    gateProj: try tensor(m + "gate_proj.weight", [c.intermediateSize, D]),
                    upProj: try tensor(m + "up_proj.weight", [c.intermediateSize, D]),
                    downProj: try tensor(m + "down_proj.weight", [D, c.intermediateSize])),
                inputLayerNorm: try vector(p + "input_layernorm.weight", D),
                postAttentionLayerNorm: try vector(p + "post_attention_layernorm.weight", D)))
        }
        let head: Tensor
        if c.tieWordEmbeddings {
            head = embed
        } else {
            head = try tensor("lm_head.weight", [c.vocabSize, D])
        }
        return Qwen35Weights(embedTokens: embed, layers: layers, norm: try vector(prefix + "norm.weight", D),
                             lmHead: head, prefix: prefix)
    }
}
