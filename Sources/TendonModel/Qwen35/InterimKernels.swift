// Plain-loop kernels the backbone calls until TendonTensor's kernels land; every op the forward pass uses
// goes through this one namespace so switching to the optimized kernels is one line per op.
import Foundation
import TendonTensor

enum Kernels {
    /// y[t, o] = Σ_i x[t, i] · W[o, i]  (W is [out, in], f32/f16/bf16).
    static func linear(_ x: [Float], rows: Int, weight: Tensor) -> [Float] {
        let outF = weight.shape[0], inF = weight.shape[1]
        precondition(x.count == rows * inF, "linear \(weight.name): input \(x.count) is not \(rows)×\(inF)")
        var y = [Float](repeating: 0, count: rows * outF)
        let w = weightRowsF32(weight)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    for t in 0..<rows {
                        let xr = xp.baseAddress! + t * inF
                        for o in 0..<outF {
                            let wr = wp.baseAddress! + o * inF
                            var s: Float = 0
                            for i in 0..<inF { s += xr[i] * wr[i] }
                            yp[t * outF + o] = s
                        }
                    }
                }
            }
        }
        return y
    }

    /// The weight as f32 rows (copied only when it is not already f32).
    static func weightRowsF32(_ w: Tensor) -> [Float] {
        switch w.dtype {
        case .f32: return Array(w.floats)
        case .f16:
            let p = w.rawPointer.assumingMemoryBound(to: UInt16.self)
            return (0..<w.elementCount).map { Float(Float16(bitPattern: p[$0])) }
        case .bf16:
            let p = w.rawPointer.assumingMemoryBound(to: UInt16.self)
            return (0..<w.elementCount).map { Float(bitPattern: UInt32(p[$0]) << 16) }
        default:
            preconditionFailure("\(w.name): \(w.dtype) weights need TendonTensor's quantized kernels")
        }
    }

    /// Row `index` of an embedding table [V, D] as f32.
    static func embeddingRow(_ table: Tensor, _ index: Int) -> [Float] {
        let d = table.shape[1]
        switch table.dtype {
        case .f32: return Array(table.floats[(index * d)..<((index + 1) * d)])
        case .f16:
            let p = table.rawPointer.assumingMemoryBound(to: UInt16.self) + index * d
            return (0..<d).map { Float(Float16(bitPattern: p[$0])) }
        case .bf16:
            let p = table.rawPointer.assumingMemoryBound(to: UInt16.self) + index * d
            return (0..<d).map { Float(bitPattern: UInt32(p[$0]) << 16) }
        default:
            preconditionFailure("\(table.name): \(table.dtype) embeddings need TendonTensor's dequantizers")
        }
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

