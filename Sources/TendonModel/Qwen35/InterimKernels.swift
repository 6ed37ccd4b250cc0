// The ops the backbone calls, in one namespace: matmuls go to TendonTensor's Linear; the element-wise
// ops are plain loops here until TendonTensor's versions land (then each is a one-line switch).
import Foundation
import TendonTensor

enum Kernels {
    /// y[t, o] = Σ_i x[t, i] · W[o, i] through TendonTensor's Linear (W [out, in], any dtype).
    static func linear(_ x: [Float], rows: Int, weight: Tensor, pool: ThreadPool?) -> [Float] {
        let outF = weight.shape[0]
        var y = [Float](repeating: 0, count: rows * outF)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                do {
                    try Linear.forward(xp.baseAddress!, rows: rows, weight: weight, bias: nil, into: yp.baseAddress!, pool: pool)
                } catch {
                    // Loading checked every weight's shape and blocks; this is a programming error.
                    preconditionFailure("linear \(weight.name): \(error)")
                }
            }
        }
        return y
    }

    /// Every value of a tensor as f32 (small tensors: norms, conv kernels).
    static func floats(_ t: Tensor) -> [Float] {
        (0..<t.rowCount).flatMap { row(t, $0) }
    }

    /// Row `index` of a [rows, n] table (embeddings, small vectors) as f32.
    static func row(_ table: Tensor, _ index: Int) -> [Float] {
        let n = table.rowLength
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { p in
            try? Quantization.dequantizeRow(table.rawPointer + index * (table.rowBytes ?? 0), from: table.dtype,
                                            count: n, into: p.baseAddress!)
        }
        return out
    }

    /// Qwen3.5's zero-centred RMSNorm over each row of `dim`: x·rsqrt(mean(x²)+eps)·(1+w).
    static func rmsNormOnePlus(_ x: inout [Float], dim: Int, weight: [Float], eps: Float) {
        rmsNorm(&x, dim: dim, eps: eps) { i in 1 + weight[i] }
    }

    /// Plain RMSNorm with the weight used as is.
    static func rmsNormPlain(_ x: inout [Float], dim: Int, weight: [Float], eps: Float) {
        rmsNorm(&x, dim: dim, eps: eps) { i in weight[i] }
    }

    private static func rmsNorm(_ x: inout [Float], dim: Int, eps: Float, scale: (Int) -> Float) {
        let rows = x.count / dim
        for r in 0..<rows {
            var ss: Float = 0
            for i in 0..<dim { ss += x[r * dim + i] * x[r * dim + i] }
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            for i in 0..<dim { x[r * dim + i] = x[r * dim + i] * inv * scale(i) }
        }
    }

    /// x · rsqrt(Σx² + eps) per row (the FLA-compatible l2norm, eps 1e-6).
    static func l2Normalize(_ x: UnsafeMutablePointer<Float>, count: Int, eps: Float) {
        var ss: Float = 0
        for i in 0..<count { ss += x[i] * x[i] }
        let inv = 1 / (ss + eps).squareRoot()
        for i in 0..<count { x[i] *= inv }
    }

    static func silu(_ v: Float) -> Float { v / (1 + expf(-v)) }
    static func sigmoid(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
    /// log(1+eˣ) with torch's threshold 20 (linear above it).
    static func softplus(_ v: Float) -> Float { v > 20 ? v : log1pf(expf(v)) }

    /// In-place softmax over `count` values.
    static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<count { x[i] = expf(x[i] - m); s += x[i] }
        for i in 0..<count { x[i] /= s }
    }

    /// Rotate-half RoPE on the first `2·half` values of one head vector.
    static func rope(_ x: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, half: Int) {
        for i in 0..<half {
            let a = x[i], b = x[i + half]
            x[i] = a * cos[i] - b * sin[i]
            x[i + half] = b * cos[i] + a * sin[i]
        }
    }
}

