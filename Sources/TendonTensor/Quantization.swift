/// Conversions between f32 and the stored element types.
///
/// API summary
/// - `Half.toFloat(_:)`, `Half.fromFloat(_:)`, `BFloat.toFloat(_:)`, `BFloat.fromFloat(_:)`: one value,
///   round-to-nearest-even (bit-exact with numpy `astype(float16)` and torch `.to(torch.bfloat16)`).
/// - `Quantization.quantizeRow(_:to:count:into:)` / `dequantizeRow(_:from:count:into:)`: one row of `count`
///   values between f32 and any `DType` (F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q5_K/Q6_K). Q8_0 and Q4_0 are bit-identical
///   with `gguf.quants.quantize`; Q4_K/Q5_K/Q6_K follow llama.cpp's reference quantizers. Every dequantizer is
///   bit-identical with `gguf.quants.dequantize`. A row that is not whole blocks throws `TensorError`.
/// - Array conveniences: `Quantization.quantize(_:to:rowLength:)`, `dequantize(_:from:count:rowLength:)`.
/// - `Tensor.dequantized()` (any dtype → f32 tensor), `Tensor.converted(to:)` (f32 → any dtype).
import CTendonKernels

/// Errors of tensor operations on bad input (shapes, dtypes, block sizes); payloads name what was expected.
public enum TensorError: Error, Equatable, CustomStringConvertible, Sendable {
    case rowNotWholeBlocks(dtype: DType, rowLength: Int)
    case shapeMismatch(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .rowNotWholeBlocks(dtype, rowLength):
            "\(dtype) needs rows that are a multiple of \(dtype.blockSize) values, found a row of \(rowLength)"
        case let .shapeMismatch(message): "shape mismatch: \(message)"
        case let .unsupported(message): "unsupported: \(message)"
        }
    }
}

public enum Half {
    @inline(__always) public static func toFloat(_ bits: UInt16) -> Float { tk_f16_to_f32(bits) }
    @inline(__always) public static func fromFloat(_ x: Float) -> UInt16 { tk_f32_to_f16(x) }
}

public enum BFloat {
    @inline(__always) public static func toFloat(_ bits: UInt16) -> Float { tk_bf16_to_f32(bits) }
    /// NaN becomes 0x7FC0 as in torch.
    @inline(__always) public static func fromFloat(_ x: Float) -> UInt16 { tk_f32_to_bf16(x) }
}

public enum Quantization {
    /// Encodes `count` f32 values as one row of `dtype` (bytes: `dtype.byteCount(elements: count)`).
    public static func quantizeRow(_ src: UnsafePointer<Float>, to dtype: DType, count: Int,
                                   into dst: UnsafeMutableRawPointer) throws(TensorError) {
        guard count % dtype.blockSize == 0 else { throw .rowNotWholeBlocks(dtype: dtype, rowLength: count) }
        encode(src, dtype, count, dst)
    }

    /// Caller has checked whole blocks.
    static func encode(_ src: UnsafePointer<Float>, _ dtype: DType, _ count: Int, _ dst: UnsafeMutableRawPointer) {
        let n = Int64(count)
        switch dtype {
        case .f32: dst.copyMemory(from: src, byteCount: count * 4)
        case .f16: tk_f32_to_f16_row(src, dst.assumingMemoryBound(to: UInt16.self), n)
        case .bf16: tk_f32_to_bf16_row(src, dst.assumingMemoryBound(to: UInt16.self), n)
        case .q8_0: tk_quantize_row_q8_0(src, dst, n)
        case .q4_0: tk_quantize_row_q4_0(src, dst, n)
        case .q4_K: tk_quantize_row_q4_k(src, dst, n)
        case .q5_K: tk_quantize_row_q5_k(src, dst, n)
        case .q6_K: tk_quantize_row_q6_k(src, dst, n)
        }
    }

    /// Decodes one row of `count` values stored as `dtype`.
    public static func dequantizeRow(_ src: UnsafeRawPointer, from dtype: DType, count: Int,
                                     into dst: UnsafeMutablePointer<Float>) throws(TensorError) {
        guard count % dtype.blockSize == 0 else { throw .rowNotWholeBlocks(dtype: dtype, rowLength: count) }
        decode(src, dtype, count, dst)
    }

    /// Caller has checked whole blocks.
    static func decode(_ src: UnsafeRawPointer, _ dtype: DType, _ count: Int, _ dst: UnsafeMutablePointer<Float>) {
        let n = Int64(count)
        switch dtype {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16: tk_f16_to_f32_row(src.assumingMemoryBound(to: UInt16.self), dst, n)
        case .bf16: tk_bf16_to_f32_row(src.assumingMemoryBound(to: UInt16.self), dst, n)
        case .q8_0: tk_dequantize_row_q8_0(src, dst, n)
        case .q4_0: tk_dequantize_row_q4_0(src, dst, n)
        case .q4_K: tk_dequantize_row_q4_k(src, dst, n)
        case .q5_K: tk_dequantize_row_q5_k(src, dst, n)
        case .q6_K: tk_dequantize_row_q6_k(src, dst, n)
        }
    }

    /// Encodes rows of `rowLength` values (values.count must be a multiple of rowLength).
    public static func quantize(_ values: [Float], to dtype: DType, rowLength: Int? = nil) throws(TensorError) -> [UInt8] {
        let row = rowLength ?? values.count
        guard row > 0, values.count % row == 0 else {
            throw .shapeMismatch("\(values.count) values do not split into rows of \(row)")
        }
        guard let rowBytes = dtype.byteCount(elements: row) else { throw .rowNotWholeBlocks(dtype: dtype, rowLength: row) }
        var out = [UInt8](repeating: 0, count: rowBytes * (values.count / row))
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                for r in 0..<(values.count / row) {
                    encode(src.baseAddress! + r * row, dtype, row, dst.baseAddress! + r * rowBytes)
                }
            }
        }
        return out
    }

    /// Decodes `count` values stored as rows of `rowLength` (default: one row).
    public static func dequantize(_ bytes: [UInt8], from dtype: DType, count: Int, rowLength: Int? = nil) throws(TensorError) -> [Float] {
        let row = rowLength ?? count
        guard row > 0, count % row == 0 else { throw .shapeMismatch("\(count) values do not split into rows of \(row)") }
        guard let rowBytes = dtype.byteCount(elements: row) else { throw .rowNotWholeBlocks(dtype: dtype, rowLength: row) }
        guard bytes.count == rowBytes * (count / row) else {
            throw .shapeMismatch("\(count) \(dtype) values need \(rowBytes * (count / row)) bytes, found \(bytes.count)")
        }
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<(count / row) {
                    decode(src.baseAddress! + r * rowBytes, dtype, row, dst.baseAddress! + r * row)
                }
            }
        }
        return out
    }
}

extension Tensor {
    /// Length of the contiguous last dimension (1 for scalars).
    public var rowLength: Int { shape.last ?? 1 }
    public var rowCount: Int { rowLength == 0 ? 0 : elementCount / rowLength }
    /// Bytes of one row in this tensor's dtype, nil when the row is not whole blocks.
    public var rowBytes: Int? { dtype.byteCount(elements: rowLength) }

    /// An f32 copy (any dtype).
    public func dequantized() throws(TensorError) -> Tensor {
        guard let rowBytes else { throw .rowNotWholeBlocks(dtype: dtype, rowLength: rowLength) }
        let out = Tensor(zeros: shape, name: name)
        let dst = out.rawPointer.assumingMemoryBound(to: Float.self)
        for r in 0..<rowCount {
            try Quantization.dequantizeRow(rawPointer + r * rowBytes, from: dtype, count: rowLength, into: dst + r * rowLength)
        }
        return out
    }

    /// This f32 tensor stored as `dtype` (rows along the last dimension).
    public func converted(to target: DType) throws(TensorError) -> Tensor {
        guard dtype == .f32 else { throw .unsupported("\(name): conversion from \(dtype) (only from F32)") }
        guard let targetRowBytes = target.byteCount(elements: rowLength) else {
            throw .rowNotWholeBlocks(dtype: target, rowLength: rowLength)
        }
        let storage = TensorStorage(byteCount: targetRowBytes * rowCount)
        let src = rawPointer.assumingMemoryBound(to: Float.self)
        for r in 0..<rowCount {
            try Quantization.quantizeRow(src + r * rowLength, to: target, count: rowLength,
                                         into: storage.base + r * targetRowBytes)
        }
        return Tensor(name: name, dtype: target, shape: shape, storage: storage)
    }
}
