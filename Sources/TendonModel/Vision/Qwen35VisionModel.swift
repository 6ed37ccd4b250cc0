/// Port of transformers 5.23 `Qwen3_5VisionModel` (modeling_qwen3_5.py + vision_utils.py): Conv3d patch
/// embedding as a matmul over flattened patches, the learned position table resampled bilinearly
/// (align_corners) to each image's grid, 2-D rotary (h and w frequencies over the whole head), pre-norm
/// blocks (LayerNorm, full attention within each image frame — cu_seqlens, MLP with the configured GELU),
/// then the patch merger (LayerNorm, 2×2 neighbours concatenated, fc1, exact GELU, fc2). No deepstack.
/// Patches come in merge-block order (the `pixel_values` layout), so merging concatenates consecutive rows.
///
/// API summary
/// - `Qwen35VisionModel(config:pool:lookup:)`: tensors `model.visual.*` (as save_pretrained writes them;
///   the Conv3d weight [D, C, T, P, P] or already flattened to [D, C·T·P·P]).
/// - `forward(pixelValues:grids:) throws(Qwen35Error) -> [Float]`: merged tokens
///   [Σ t·h·w/merge², outHiddenSize] for patches [Σ t·h·w, C·T·P·P].
/// - `forwardBlocks(pixelValues:grids:)`: the last block's output [Σ t·h·w, hidden] (before the merger).
import Foundation
import TendonTensor

struct Qwen35VisionBlockWeights: Sendable {
    var norm1W, norm1B, norm2W, norm2B: [Float]
    var qkv, proj, fc1, fc2: Tensor
    var qkvB, projB, fc1B, fc2B: [Float]
}

public final class Qwen35VisionModel: Sendable {
    public let config: Qwen35VisionConfig
    let patchEmbed: Tensor
    let patchBias: [Float]
    let posEmbed: [Float]
    let blocks: [Qwen35VisionBlockWeights]
    let mergerNormW, mergerNormB: [Float]
    let mergerFC1, mergerFC2: Tensor
    let mergerFC1B, mergerFC2B: [Float]
    let invFreq: [Float]
    let pool: ThreadPool?
    static let prefix = "model.visual."

    public init(config c: Qwen35VisionConfig, pool: ThreadPool? = nil,
                lookup: (String) throws(Qwen35Error) -> Tensor?) throws(Qwen35Error) {
        try c.validate()
        config = c
        self.pool = pool
        func tensor(_ name: String, _ shape: [Int]) throws(Qwen35Error) -> Tensor {
            let full = Self.prefix + name
            guard let t = try lookup(full) else { throw .weights("missing tensor \(full) (expected shape \(shape))") }
            guard t.shape == shape else { throw .weights("\(full): shape \(t.shape), expected \(shape)") }
            guard t.rowBytes != nil else {
                throw .weights("\(full): rows of \(t.rowLength) are not whole \(t.dtype) blocks of \(t.dtype.blockSize)")
            }
            return t
        }
        func vector(_ name: String, _ n: Int) throws(Qwen35Error) -> [Float] { Qwen35Ops.floats(try tensor(name, [n])) }
        let D = c.hiddenSize, P = c.patchSize, T = c.temporalPatchSize, merged = D * c.spatialMergeSize * c.spatialMergeSize
        // Conv3d with stride = kernel over one patch is a dot product with the flattened (C, T, P, P) kernel;
        // a converter may also have stored it flattened already.
        let patchDim = c.inChannels * T * P * P
        let convName = Self.prefix + "patch_embed.proj.weight"
        let conv: Tensor
        if let stored = try lookup(convName), stored.shape == [D, patchDim] {
            conv = stored
        } else {
            conv = try tensor("patch_embed.proj.weight", [D, c.inChannels, T, P, P])
        }
        var flat = conv
        flat.shape = [D, patchDim]
        guard flat.rowBytes != nil else {
            throw .weights("\(Self.prefix)patch_embed.proj.weight: rows of \(flat.rowLength) are not whole \(conv.dtype) blocks")
        }
        patchEmbed = flat
        patchBias = try vector("patch_embed.proj.bias", D)
        posEmbed = Qwen35Ops.floats(try tensor("pos_embed.weight", [c.numPositionEmbeddings, D]))
        var blocks: [Qwen35VisionBlockWeights] = []
        for i in 0..<c.depth {
            let p = "blocks.\(i)."
            blocks.append(Qwen35VisionBlockWeights(
                norm1W: try vector(p + "norm1.weight", D), norm1B: try vector(p + "norm1.bias", D),
                norm2W: try vector(p + "norm2.weight", D), norm2B: try vector(p + "norm2.bias", D),
                qkv: try tensor(p + "attn.qkv.weight", [3 * D, D]), proj: try tensor(p + "attn.proj.weight", [D, D]),
                fc1: try tensor(p + "mlp.linear_fc1.weight", [c.intermediateSize, D]),
                fc2: try tensor(p + "mlp.linear_fc2.weight", [D, c.intermediateSize]),
                qkvB: try vector(p + "attn.qkv.bias", 3 * D), projB: try vector(p + "attn.proj.bias", D),
                fc1B: try vector(p + "mlp.linear_fc1.bias", c.intermediateSize),
                fc2B: try vector(p + "mlp.linear_fc2.bias", D)))
        }
        self.blocks = blocks
        mergerNormW = try vector("merger.norm.weight", D)
        mergerNormB = try vector("merger.norm.bias", D)
        mergerFC1 = try tensor("merger.linear_fc1.weight", [merged, merged])
        mergerFC1B = try vector("merger.linear_fc1.bias", merged)
        mergerFC2 = try tensor("merger.linear_fc2.weight", [c.outHiddenSize, merged])
        mergerFC2B = try vector("merger.linear_fc2.bias", c.outHiddenSize)
        // inv_freq = 1 / θ^(arange(0, hd/2, 2) / (hd/2)), evaluated in f32 as torch does.
        let spatial = c.headDim / 2
        invFreq = stride(from: 0, to: spatial, by: 2).map { 1 / Foundation.pow(Float(c.ropeTheta), Float($0) / Float(spatial)) }
    }

    /// Checks the patch rows against the grids; names what was expected.
    func checkInput(_ pixelValues: [Float], grids: [(t: Int, h: Int, w: Int)]) throws(Qwen35Error) -> Int {
        let c = config, dim = c.inChannels * c.temporalPatchSize * c.patchSize * c.patchSize
        guard !grids.isEmpty else { throw .input("no images") }
        var n = 0
        for (i, g) in grids.enumerated() {
            guard g.t > 0, g.h > 0, g.w > 0, g.h % c.spatialMergeSize == 0, g.w % c.spatialMergeSize == 0 else {
                throw .input("image \(i): grid \(g) must be positive with h and w multiples of spatial_merge_size \(c.spatialMergeSize)")
            }
            n += g.t * g.h * g.w
        }
        guard pixelValues.count == n * dim else {
            throw .input("pixel_values hold \(pixelValues.count) values, expected \(n) patches × \(dim) for grids \(grids)")
        }
        return n
    }

    public func forward(pixelValues: [Float], grids: [(t: Int, h: Int, w: Int)]) throws(Qwen35Error) -> [Float] {
        var x = try forwardBlocks(pixelValues: pixelValues, grids: grids)
        let D = config.hiddenSize, unit = config.spatialMergeSize * config.spatialMergeSize
        let n = x.count / D
        layerNorm(&x, dim: D, weight: mergerNormW, bias: mergerNormB)
        var h = linear(x, rows: n / unit, weight: mergerFC1, bias: mergerFC1B)
        for i in 0..<h.count { h[i] = 0.5 * h[i] * (1 + erff(h[i] * Float(0.7071067811865476))) }
        return linear(h, rows: n / unit, weight: mergerFC2, bias: mergerFC2B)
    }

    public func forwardBlocks(pixelValues: [Float], grids: [(t: Int, h: Int, w: Int)]) throws(Qwen35Error) -> [Float] {
        let n = try checkInput(pixelValues, grids: grids)
        let c = config, D = c.hiddenSize, hd = c.headDim, H = c.numHeads
        var x = linear(pixelValues, rows: n, weight: patchEmbed, bias: patchBias)
        // Per patch: (row, col) in its frame, from the merge-block order.
        var rows = [Int](), cols = [Int](), hs = [Int](), ws = [Int](), segments = [Range<Int>]()
        var start = 0
        for g in grids {
            for _ in 0..<g.t {
                let m = c.spatialMergeSize, bw = g.w / m
                for i in 0..<(g.h * g.w) {
                    let inCol = i % m, inRow = (i / m) % m, blockCol = (i / (m * m)) % bw, blockRow = i / (m * m * bw)
                    rows.append(blockRow * m + inRow); cols.append(blockCol * m + inCol)
                    hs.append(g.h); ws.append(g.w)
                }
                segments.append(start..<(start + g.h * g.w))
                start += g.h * g.w
            }
        }
        addPositionEmbeddings(&x, rows: rows, cols: cols, heights: hs, widths: ws)
        // 2-D rotary tables [n, hd]: [h·f, w·f, h·f, w·f] with f the hd/4 inverse frequencies.
        let q4 = invFreq.count
        var cos = [Float](repeating: 0, count: n * hd), sin = cos
        for p in 0..<n {
            for j in 0..<q4 {
                let ah = Float(rows[p]) * invFreq[j], aw = Float(cols[p]) * invFreq[j]
                for base in [0, 2 * q4] {
                    cos[p * hd + base + j] = Foundation.cos(ah); sin[p * hd + base + j] = Foundation.sin(ah)
                    cos[p * hd + base + q4 + j] = Foundation.cos(aw); sin[p * hd + base + q4 + j] = Foundation.sin(aw)
                }
            }
        }
        let rope = RotaryEmbedding(invFreq: [Float](repeating: 0, count: hd / 2))
        for b in blocks {
            var h = x
            layerNorm(&h, dim: D, weight: b.norm1W, bias: b.norm1B)
            let qkv = linear(h, rows: n, weight: b.qkv, bias: b.qkvB)  // [n, 3, H, hd]
            var q = [Float](repeating: 0, count: n * D), k = q, v = q
            for p in 0..<n {
                for i in 0..<D {
                    q[p * D + i] = qkv[p * 3 * D + i]
                    k[p * D + i] = qkv[p * 3 * D + D + i]
                    v[p * D + i] = qkv[p * 3 * D + 2 * D + i]
                }
            }
            cos.withUnsafeBufferPointer { cp in
                sin.withUnsafeBufferPointer { sp in
                    q.withUnsafeMutableBufferPointer {
                        rope.apply($0.baseAddress!, tokens: n, heads: H, headDim: hd, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    }
                    k.withUnsafeMutableBufferPointer {
                        rope.apply($0.baseAddress!, tokens: n, heads: H, headDim: hd, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    }
                }
            }
            let attn = attention(q: q, k: k, v: v, tokens: n, segments: segments)
            let o = linear(attn, rows: n, weight: b.proj, bias: b.projB)
            for i in 0..<x.count { x[i] += o[i] }
            var m = x
            layerNorm(&m, dim: D, weight: b.norm2W, bias: b.norm2B)
            var f = linear(m, rows: n, weight: b.fc1, bias: b.fc1B)
            activate(&f)
            let y = linear(f, rows: n, weight: b.fc2, bias: b.fc2B)
            for i in 0..<x.count { x[i] += y[i] }
        }
        return x
    }

    /// fast_pos_embed_interpolate: bilinear with align_corners over the side×side table, in f32 as
    /// `_interpolation_axis_taps_weights` computes it (src = i·(side−1)/(size−1), taps clamped).
    func addPositionEmbeddings(_ x: inout [Float], rows: [Int], cols: [Int], heights: [Int], widths: [Int]) {
        let side = config.positionGridSide, D = config.hiddenSize
        func taps(_ index: Int, _ size: Int) -> (Int, Int, Float, Float) {
            let src = Float(index) * Float(side - 1) / Float(max(size - 1, 1))
            let f = src.rounded(.down)
            let i0 = Int(f)
            let w0 = max(1 - abs(src - f), 0), w1 = max(1 - abs(src - f - 1), 0)
            return (min(max(i0, 0), side - 1), min(max(i0 + 1, 0), side - 1), w0, w1)
        }
        for p in 0..<rows.count {
            let (h0, h1, hw0, hw1) = taps(rows[p], heights[p])
            let (c0, c1, cw0, cw1) = taps(cols[p], widths[p])
            let idx = [h0 * side + c0, h0 * side + c1, h1 * side + c0, h1 * side + c1]
            let wts = [hw0 * cw0, hw0 * cw1, hw1 * cw0, hw1 * cw1]
            for d in 0..<D {
                var s: Float = 0
                for t in 0..<4 { s += posEmbed[idx[t] * D + d] * wts[t] }
                x[p * D + d] += s
            }
        }
    }

    /// Softmax attention without a mask inside each segment (one image frame), scale hd^−½.
    func attention(q: [Float], k: [Float], v: [Float], tokens n: Int, segments: [Range<Int>]) -> [Float] {
        let H = config.numHeads, hd = config.headDim, D = config.hiddenSize
        let scale = 1 / Float(hd).squareRoot()
        var out = [Float](repeating: 0, count: n * D)
        q.withUnsafeBufferPointer { qb in
            k.withUnsafeBufferPointer { kb in
                v.withUnsafeBufferPointer { vb in
                    out.withUnsafeMutableBufferPointer { ob in
                        let qp = qb.baseAddress!, kp = kb.baseAddress!, vp = vb.baseAddress!, op = ob.baseAddress!
                        let longest = segments.map(\.count).max() ?? 0
                        let body = { (heads: Range<Int>) in
                            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(longest, 1))
                            defer { scores.deallocate() }
                            for h in heads {
                                for seg in segments {
                                    for t in seg {
                                        let qr = qp + t * D + h * hd
                                        for (j, s) in seg.enumerated() {
                                            scores[j] = Kernels.dot(qr, kp + s * D + h * hd, count: hd) * scale
                                        }
                                        Kernels.softmax(scores, rows: 1, dim: seg.count)
                                        let orow = op + t * D + h * hd
                                        for (j, s) in seg.enumerated() {
                                            Kernels.axpy(scores[j], vp + s * D + h * hd, into: orow, count: hd)
                                        }
                                    }
                                }
                            }
                        }
                        if let pool, H > 1 { pool.parallelFor(H, body) } else { body(0..<H) }
                    }
                }
            }
        }
        return out
    }

    func activate(_ x: inout [Float]) {
        let n = x.count
        if config.hiddenAct == "gelu" {
            for i in 0..<n { x[i] = 0.5 * x[i] * (1 + erff(x[i] * Float(0.7071067811865476))) }
        } else {
            x.withUnsafeMutableBufferPointer { Kernels.geluTanh($0.baseAddress!, count: n, into: $0.baseAddress!) }
        }
    }

    /// nn.LayerNorm(eps 1e-6) with weight and bias, per row.
    func layerNorm(_ x: inout [Float], dim: Int, weight: [Float], bias: [Float]) {
        let rows = x.count / dim
        x.withUnsafeMutableBufferPointer { p in
            Kernels.layerNorm(p.baseAddress!, rows: rows, dim: dim, eps: 1e-6, into: p.baseAddress!)
        }
        for r in 0..<rows { for i in 0..<dim { x[r * dim + i] = x[r * dim + i] * weight[i] + bias[i] } }
    }

    func linear(_ x: [Float], rows: Int, weight: Tensor, bias: [Float]) -> [Float] {
        var y = Qwen35Ops.linear(x, rows: rows, weight: weight, pool: pool)
        let o = weight.shape[0]
        for r in 0..<rows { for i in 0..<o { y[r * o + i] += bias[i] } }
        return y
    }
}
