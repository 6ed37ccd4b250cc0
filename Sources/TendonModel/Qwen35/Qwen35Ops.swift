// Glue between the backbone's [Float] activations and TendonTensor: Linear on arrays, weight rows decoded
// to f32, and the one normalization whose formula is the reference's own (not a TendonTensor kernel).
import Foundation
import TendonTensor

enum Qwen35Ops {
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

    /// x · rsqrt(Σx² + eps): modeling_qwen3_5.l2norm (FLA's form), which is not F.normalize's
    /// x / max(‖x‖, eps) that `Kernels.l2Normalize` implements.
    static func l2Normalize(_ x: UnsafeMutablePointer<Float>, count: Int, eps: Float) {
        var ss: Float = 0
        for i in 0..<count { ss += x[i] * x[i] }
        let inv = 1 / (ss + eps).squareRoot()
        for i in 0..<count { x[i] *= inv }
    }

    /// RMSNorm of each row of `dim` in place (TendonTensor kernel).
    static func rmsNorm(_ x: inout [Float], dim: Int, weight: [Float], eps: Float, form: RMSNormForm) {
        let rows = x.count / dim
        weight.withUnsafeBufferPointer { w in
            x.withUnsafeMutableBufferPointer { p in
                Kernels.rmsNorm(p.baseAddress!, weight: w.baseAddress!, rows: rows, dim: dim, eps: eps, form: form,
                                into: p.baseAddress!)
            }
        }
    }

    /// silu(x) in place.
    static func silu(_ x: inout [Float]) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { Kernels.silu($0.baseAddress!, count: n, into: $0.baseAddress!) }
    }

    /// σ(x) in place.
    static func sigmoid(_ x: inout [Float]) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { Kernels.sigmoid($0.baseAddress!, count: n, into: $0.baseAddress!) }
    }
}
