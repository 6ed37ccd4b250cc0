// Capture-format decoding for the capture thread (never the real-time thread):
//   YUYVConverter.convert(yuyv:width:height:bytesPerLine:into:)   YUYV 4:2:2 → RGB8, BT.601 limited range
//   JPEGDecoder()  decode(_:into:expectedWidth:expectedHeight:)  MJPEG/JPEG → RGB8 via libjpeg-turbo
// Both write into caller buffers and allocate nothing per frame.
import CTurboJPEG
import Foundation

public enum YUYVConverter {
    /// BT.601 "studio swing" (Y 16…235, Cb/Cr 16…240), as UVC cameras send it, in 8-bit fixed point:
    /// R = 1.164(Y−16) + 1.596(Cr−128), G = 1.164(Y−16) − 0.391(Cb−128) − 0.813(Cr−128),
    /// B = 1.164(Y−16) + 2.018(Cb−128); coefficients × 256, rounded. Rows may be padded (bytesPerLine).
    /// Returns false when a buffer is too short for the frame.
    @discardableResult
    public static func convert(yuyv: UnsafeRawBufferPointer, width: Int, height: Int, bytesPerLine: Int? = nil,
                               into rgb: UnsafeMutableRawBufferPointer) -> Bool {
        let stride = bytesPerLine ?? width * 2
        guard width > 0, height > 0, width % 2 == 0, stride >= width * 2,
              yuyv.count >= stride * (height - 1) + width * 2, rgb.count >= width * height * 3,
              let src = yuyv.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let dst = rgb.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
        @inline(__always) func clamp(_ v: Int32) -> UInt8 { UInt8(truncatingIfNeeded: min(max(v, 0), 255)) }
        for y in 0..<height {
            let row = src + y * stride
            let out = dst + y * width * 3
            for pair in 0..<(width / 2) {
                let p = row + pair * 4
                let y0 = 298 * (Int32(p[0]) - 16), u = Int32(p[1]) - 128
                let y1 = 298 * (Int32(p[2]) - 16), v = Int32(p[3]) - 128
                let rv = 409 * v + 128, guv = -100 * u - 208 * v + 128, bu = 516 * u + 128
                let o = out + pair * 6
                o[0] = clamp((y0 + rv) >> 8)
                o[1] = clamp((y0 + guv) >> 8)
                o[2] = clamp((y0 + bu) >> 8)
                o[3] = clamp((y1 + rv) >> 8)
                o[4] = clamp((y1 + guv) >> 8)
                o[5] = clamp((y1 + bu) >> 8)
            }
        }
        return true
    }
}

/// One libjpeg-turbo decompressor, reused for every frame of one camera (not thread-safe; one per
/// capture thread). UVC MJPEG frames often omit their Huffman tables; libjpeg-turbo supplies the
/// standard ones in that case.
public final class JPEGDecoder {
    private let handle: tjhandle?

    public init() {
        handle = tjInitDecompress()
    }

    deinit {
        if let handle { tjDestroy(handle) }
    }

    /// Size of a JPEG without decoding it.
    public func dimensions(_ jpeg: UnsafeRawBufferPointer) throws(CameraError) -> (width: Int, height: Int) {
        guard let handle, let base = jpeg.baseAddress?.assumingMemoryBound(to: UInt8.self), jpeg.count > 0 else {
            throw .decodeFailed(device: "jpeg", reason: handle == nil ? "libjpeg-turbo did not initialize" : "empty buffer")
        }
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, base, UInt(jpeg.count), &w, &h, &subsampling, &colorspace) == 0 else {
            throw .decodeFailed(device: "jpeg", reason: errorText())
        }
        return (Int(w), Int(h))
    }

    /// Decodes into `rgb` (RGB8, width·3 per row). The JPEG must have the expected size when one is
    /// given (a camera that silently changes resolution is an error, not a resize).
    public func decode(_ jpeg: UnsafeRawBufferPointer, into rgb: UnsafeMutableRawBufferPointer,
                       expectedWidth: Int? = nil, expectedHeight: Int? = nil) throws(CameraError) -> (width: Int, height: Int) {
        let (w, h) = try dimensions(jpeg)
        if let expectedWidth, let expectedHeight, expectedWidth != w || expectedHeight != h {
            throw .decodeFailed(device: "jpeg", reason: "frame is \(w)x\(h), expected \(expectedWidth)x\(expectedHeight)")
        }
        guard rgb.count >= w * h * 3, let dst = rgb.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let src = jpeg.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw .bufferTooSmall(needed: w * h * 3, got: rgb.count)
        }
        // A warning (e.g. a truncated MJPEG frame libjpeg-turbo could still finish) keeps the picture.
        guard tjDecompress2(handle, src, UInt(jpeg.count), dst, Int32(w), 0, Int32(h), Int32(TJPF_RGB.rawValue), 0) == 0
                || tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) else {
            throw .decodeFailed(device: "jpeg", reason: errorText())
        }
        return (w, h)
    }

    private func errorText() -> String {
        guard let handle, let text = tjGetErrorStr2(handle) else { return "unknown libjpeg-turbo error" }
        return String(cString: text)
    }
}
