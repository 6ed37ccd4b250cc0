// Port of transformers 5.23.0 models/qwen3_5/modeling_qwen3_5.py: Qwen3_5TextModel + the lm_head of
// Qwen3_5ForCausalLM / Qwen3_5ForConditionalGeneration (text part). Decoder layer: x += mixer(norm(x));
// x += mlp(norm(x)); mixer is Qwen3_5Attention or Qwen3_5GatedDeltaNet as `layer_types` lists.
import Foundation
import TendonTensor

/// Per-layer state carried between calls: the KV cache of attention layers, the conv window and the
/// recurrent state of DeltaNet layers.
public struct Qwen35Cache: Sendable {
    enum Layer: Sendable {
        /// keys/values [length, kvHeads, headDim].
        case attention(keys: [Float], values: [Float])
        /// conv: the last (kernel−1) conv inputs [kernel−1, convDim]; state [Hv, dk, dv].
        case linear(conv: [Float], state: [Float])
    }
    var layers: [Layer]
    /// Tokens seen so far.
    public internal(set) var length: Int = 0
}

public final class Qwen35TextModel: Sendable {
    public let config: Qwen35TextConfig
    let weights: Qwen35Weights
    /// Partial rotary with the interleaved multimodal sections.
    let rotary: RotaryEmbedding
    /// Splits matmul output rows over threads (nil: the calling thread only).
    let pool: ThreadPool?

    /// Builds from a tensor lookup (names as the checkpoint writes them): nil for a name the checkpoint does
    /// not hold, an error for one it cannot read.
    public init(config: Qwen35TextConfig, pool: ThreadPool? = nil,
                lookup: (String) throws(Qwen35Error) -> Tensor?) throws(Qwen35Error) {
        try config.validate()
        self.pool = pool
        self.config = config
        weights = try Qwen35Weights.load(config: config, lookup: lookup)
        rotary = RotaryEmbedding(rotaryDim: config.rotaryDim, theta: config.ropeTheta, mropeSection: config.mropeSection)
    }

    /// A Hugging Face folder (config.json + model.safetensors or an index with shards).
    public convenience init(directory: URL, pool: ThreadPool? = nil) throws(Qwen35Error) {
        try self.init(path: directory.path, pool: pool)
    }

    public func makeCache() -> Qwen35Cache {
        let c = config
        let keyDim = c.linearNumKeyHeads * c.linearKeyHeadDim
        let convDim = 2 * keyDim + c.linearNumValueHeads * c.linearValueHeadDim
        return Qwen35Cache(layers: weights.layers.map { layer in
            switch layer.mixer {
            case .attention: .attention(keys: [], values: [])
            case .linear:
                .linear(conv: [Float](repeating: 0, count: (c.linearConvKernelDim - 1) * convDim),
                        state: [Float](repeating: 0, count: c.linearNumValueHeads * c.linearKeyHeadDim * c.linearValueHeadDim))
            }
        })
    }

    // MARK: - Entry points

    /// Logits [T, vocab] for `ids`, continuing from `cache` (text positions: cache.length + 0..<T on all rows).
    public func logits(ids: [Int], cache: inout Qwen35Cache) throws(Qwen35Error) -> [Float] {
        let x = try embed(ids)
        let h = try hiddenStates(embeddings: x, positions: nil, cache: &cache)
        return logits(finalHidden: h)
    }

    /// Embedding rows [T, hidden]; ids must lie in 0..<vocab.
    public func embed(_ ids: [Int]) throws(Qwen35Error) -> [Float] {
        guard !ids.isEmpty else { throw .input("no input ids") }
        var out: [Float] = []
        out.reserveCapacity(ids.count * config.hiddenSize)
        for (i, id) in ids.enumerated() {
            guard id >= 0, id < config.vocabSize else {
                throw .input("input id \(id) at position \(i) is outside the vocabulary 0..<\(config.vocabSize)")
            }
            out += Qwen35Ops.row(weights.embedTokens, id)
        }
        return out
    }

    /// The final-norm hidden states [T, hidden] (`last_hidden_state`). `positions` is three rows of T
    /// (temporal, height, width) for multimodal RoPE; nil means text positions. `layerOutputs`, when given,
    /// receives each decoder layer's output (index, [T, hidden]) for debugging against the reference.
    public func hiddenStates(embeddings: [Float], positions: [[Int]]?, cache: inout Qwen35Cache,
                             layerOutputs: ((Int, [Float]) -> Void)? = nil) throws(Qwen35Error) -> [Float] {
        let D = config.hiddenSize
        guard !embeddings.isEmpty, embeddings.count % D == 0 else {
            throw .input("embeddings hold \(embeddings.count) values, expected a multiple of hidden_size \(D)")
        }
        let T = embeddings.count / D
        let rows = positions ?? Array(repeating: Array(cache.length..<(cache.length + T)), count: 3)
        guard rows.count == 3, rows.allSatisfy({ $0.count == T }) else {
            throw .input("positions must be 3 rows of \(T), found \(rows.map(\.count))")
        }
        guard cache.layers.count == weights.layers.count else {
            throw .input("cache has \(cache.layers.count) layers, model has \(weights.layers.count)")
        }
        let (cos, sin) = rotaryTables(rows)
        let eps = Float(config.rmsNormEps)
        var x = embeddings
        for (i, layer) in weights.layers.enumerated() {
            var h = x
            Qwen35Ops.rmsNorm(&h, dim: D, weight: layer.inputLayerNorm, eps: eps, form: .onePlus)
            switch (layer.mixer, cache.layers[i]) {
            case (.attention(let w), .attention(var keys, var values)):
                cache.layers[i] = .attention(keys: [], values: [])  // keep the buffers uniquely referenced
                h = attention(h, tokens: T, weights: w, cos: cos, sin: sin, keys: &keys, values: &values)
                cache.layers[i] = .attention(keys: keys, values: values)
            case (.linear(let w), .linear(var conv, var state)):
                cache.layers[i] = .linear(conv: [], state: [])
                h = deltaNet(h, tokens: T, weights: w, conv: &conv, state: &state)
                cache.layers[i] = .linear(conv: conv, state: state)
            default:
                throw .input("cache layer \(i) does not match the model's layer type \(config.layerTypes[i])")
            }
            for j in 0..<x.count { x[j] += h[j] }
            var m = x
            Qwen35Ops.rmsNorm(&m, dim: D, weight: layer.postAttentionLayerNorm, eps: eps, form: .onePlus)
            m = mlp(m, tokens: T, weights: layer.mlp)
            for j in 0..<x.count { x[j] += m[j] }
            layerOutputs?(i, x)
        }
        cache.length += T
        Qwen35Ops.rmsNorm(&x, dim: D, weight: weights.norm, eps: eps, form: .onePlus)
        return x
    }

    /// lm_head (or the tied embedding) over final hidden states: [T, vocab].
    public func logits(finalHidden: [Float]) -> [Float] {
        Qwen35Ops.linear(finalHidden, rows: finalHidden.count / config.hiddenSize, weight: weights.lmHead, pool: pool)
    }

    // MARK: - Blocks

    /// cos/sin [T, rotaryDim] for three position rows (temporal, height, width).
    func rotaryTables(_ rows: [[Int]]) -> (cos: [Float], sin: [Float]) {
        let T = rows[0].count, r = config.rotaryDim
        let positions = rows.flatMap { $0.map { Int32(truncatingIfNeeded: $0) } }
        var cos = [Float](repeating: 0, count: T * r), sin = cos
        positions.withUnsafeBufferPointer { p in
            cos.withUnsafeMutableBufferPointer { c in
                sin.withUnsafeMutableBufferPointer { s in
                    rotary.tables(positions: p.baseAddress!, axes: 3, tokens: T, cos: c.baseAddress!, sin: s.baseAddress!)
                }
            }
        }
        return (cos, sin)
    }

    func mlp(_ x: [Float], tokens T: Int, weights w: Qwen35MLPWeights) -> [Float] {
        var gate = Qwen35Ops.linear(x, rows: T, weight: w.gateProj, pool: pool)
        let up = Qwen35Ops.linear(x, rows: T, weight: w.upProj, pool: pool)
        Qwen35Ops.silu(&gate)
        for i in 0..<gate.count { gate[i] *= up[i] }
        return Qwen35Ops.linear(gate, rows: T, weight: w.downProj, pool: pool)
    }

    /// Qwen3_5Attention: q_proj gives per head [query | gate]; per-head (1+w) RMSNorm on q and k; partial
    /// RoPE; causal softmax attention over the cache plus the new keys (grouped kv heads); output × σ(gate).
    func attention(_ x: [Float], tokens T: Int, weights w: Qwen35AttentionWeights, cos: [Float], sin: [Float],
                   keys: inout [Float], values: inout [Float]) -> [Float] {
        let c = config, hd = c.headDim, H = c.numAttentionHeads, KV = c.numKeyValueHeads
        let eps = Float(c.rmsNormEps)
        let qg = Qwen35Ops.linear(x, rows: T, weight: w.qProj, pool: pool)  // [T, H, 2·hd]
        var q = [Float](repeating: 0, count: T * H * hd), gate = q
        for t in 0..<T {
            for h in 0..<H {
                let src = (t * H + h) * 2 * hd, dst = (t * H + h) * hd
                for i in 0..<hd { q[dst + i] = qg[src + i]; gate[dst + i] = qg[src + hd + i] }
            }
        }
        var k = Qwen35Ops.linear(x, rows: T, weight: w.kProj, pool: pool)
        let v = Qwen35Ops.linear(x, rows: T, weight: w.vProj, pool: pool)
        Qwen35Ops.rmsNorm(&q, dim: hd, weight: w.qNorm, eps: eps, form: .onePlus)
        Qwen35Ops.rmsNorm(&k, dim: hd, weight: w.kNorm, eps: eps, form: .onePlus)
        if c.rotaryDim > 0 {
            cos.withUnsafeBufferPointer { cp in
                sin.withUnsafeBufferPointer { sp in
                    q.withUnsafeMutableBufferPointer {
                        rotary.apply($0.baseAddress!, tokens: T, heads: H, headDim: hd, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    }
                    k.withUnsafeMutableBufferPointer {
                        rotary.apply($0.baseAddress!, tokens: T, heads: KV, headDim: hd, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    }
                }
            }
        }
        let past = keys.count / (KV * hd)
        keys += k
        values += v
        let total = past + T
        let scale = 1 / Float(hd).squareRoot()
        let group = H / KV
        var out = [Float](repeating: 0, count: T * H * hd)
        q.withUnsafeBufferPointer { qb in
            keys.withUnsafeBufferPointer { kb in
                values.withUnsafeBufferPointer { vb in
                    out.withUnsafeMutableBufferPointer { ob in
                        let qp = qb.baseAddress!, kp = kb.baseAddress!, vp = vb.baseAddress!, op = ob.baseAddress!
                        // Heads are independent and write their own output columns.
                        let body = { (heads: Range<Int>) in
                            let scores = UnsafeMutablePointer<Float>.allocate(capacity: total)
                            defer { scores.deallocate() }
                            for h in heads {
                                let kvh = h / group
                                for t in 0..<T {
                                    let visible = past + t + 1
                                    let qr = qp + (t * H + h) * hd
                                    for s in 0..<visible {
                                        let kr = kp + (s * KV + kvh) * hd
                                        var dot: Float = 0
                                        for i in 0..<hd { dot += qr[i] * kr[i] }
                                        scores[s] = dot * scale
                                    }
                                    Kernels.softmax(scores, rows: 1, dim: visible)
                                    let orow = op + (t * H + h) * hd
                                    for s in 0..<visible {
                                        let p = scores[s], vr = vp + (s * KV + kvh) * hd
                                        for i in 0..<hd { orow[i] += p * vr[i] }
                                    }
                                }
                            }
                        }
                        if let pool, H > 1, T > 1 { pool.parallelFor(H, body) } else { body(0..<H) }
                    }
                }
            }
        }
        Qwen35Ops.sigmoid(&gate)
        for i in 0..<out.count { out[i] *= gate[i] }
        return Qwen35Ops.linear(out, rows: T, weight: w.oProj, pool: pool)
    }

    /// Qwen3_5GatedDeltaNet: in_proj_qkv → depthwise causal conv1d (+ the cached window) → SiLU → split q, k, v;
    /// β = σ(b), g = −e^{A_log}·softplus(a + dt_bias); the gated delta rule (recurrent for one token, chunked
    /// otherwise, as the reference); gated RMSNorm with z; out_proj.
    func deltaNet(_ x: [Float], tokens T: Int, weights w: Qwen35DeltaNetWeights, conv: inout [Float],
                  state: inout [Float]) -> [Float] {
        let c = config
        let Hk = c.linearNumKeyHeads, Hv = c.linearNumValueHeads, dk = c.linearKeyHeadDim, dv = c.linearValueHeadDim
        let keyDim = Hk * dk, valueDim = Hv * dv, convDim = 2 * keyDim + valueDim, K = c.linearConvKernelDim
        let mixed = Qwen35Ops.linear(x, rows: T, weight: w.inProjQKV, pool: pool)  // [T, convDim]
        let z = Qwen35Ops.linear(x, rows: T, weight: w.inProjZ, pool: pool)
        let b = Qwen35Ops.linear(x, rows: T, weight: w.inProjB, pool: pool)
        let a = Qwen35Ops.linear(x, rows: T, weight: w.inProjA, pool: pool)

        // Causal depthwise conv over [cached K−1 inputs; new inputs], then SiLU, then split q | k | v.
        var convolved = [Float](repeating: 0, count: T * convDim)
        mixed.withUnsafeBufferPointer { x in
            w.conv1d.withUnsafeBufferPointer { wp in
                conv.withUnsafeMutableBufferPointer { st in
                    convolved.withUnsafeMutableBufferPointer { y in
                        CausalConv1d.forward(x.baseAddress!, tokens: T, channels: convDim, kernel: K, weight: wp.baseAddress!,
                                             state: st.baseAddress!, into: y.baseAddress!)
                    }
                }
            }
        }
        Qwen35Ops.silu(&convolved)
        var q = [Float](), k = [Float](), v = [Float]()
        q.reserveCapacity(T * keyDim); k.reserveCapacity(T * keyDim); v.reserveCapacity(T * valueDim)
        for t in 0..<T {
            let row = t * convDim
            q += convolved[row..<(row + keyDim)]
            k += convolved[(row + keyDim)..<(row + 2 * keyDim)]
            v += convolved[(row + 2 * keyDim)..<(row + convDim)]
        }

        // β = σ(b); g = −e^{A_log} · softplus(a + dt_bias).
        var beta = b
        Qwen35Ops.sigmoid(&beta)
        var g = a
        for t in 0..<T { for h in 0..<Hv { g[t * Hv + h] += w.dtBias[h] } }
        let n = g.count
        g.withUnsafeMutableBufferPointer { Kernels.softplus($0.baseAddress!, count: n, into: $0.baseAddress!) }
        for t in 0..<T { for h in 0..<Hv { g[t * Hv + h] *= -expf(w.aLog[h]) } }
        let shape = GatedDeltaRule.Shape(tokens: T, keyHeads: Hk, valueHeads: Hv, keyDim: dk, valueDim: dv)
        var core = T == 1
            ? GatedDeltaRule.recurrent(q: q, k: k, v: v, g: g, beta: beta, shape: shape, state: &state)
            : GatedDeltaRule.chunked(q: q, k: k, v: v, g: g, beta: beta, shape: shape, state: &state, pool: pool)

        // Gated RMSNorm per value head: w · x·rsqrt(mean x² + eps) · silu(z).
        Qwen35Ops.rmsNorm(&core, dim: dv, weight: w.norm, eps: Float(c.rmsNormEps), form: .multiply)
        var gateZ = z
        Qwen35Ops.silu(&gateZ)
        for i in 0..<core.count { core[i] *= gateZ[i] }
        return Qwen35Ops.linear(core, rows: T, weight: w.outProj, pool: pool)
    }
}
