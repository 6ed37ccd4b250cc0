import CTurboJPEG

/// RGB8 ⇄ JPEG through libjpeg-turbo (ALOHA 2 stores camera frames as JPEG, quality 50 by default).
/// One codec per thread: TurboJPEG handles are not shared.
public final class JPEGCodec {
    private let compressor: tjhandle
    private let decompressor: tjhandle
    public let quality: Int32

    public init(quality: Int = 50) throws(EpisodeError) {
        guard let c = tjInitCompress(), let d = tjInitDecompress() else {
            throw EpisodeError("libjpeg-turbo: cannot create a codec")
        }
        compressor = c
        decompressor = d
        self.quality = Int32(min(max(quality, 1), 100))
    }

    deinit {
        tjDestroy(compressor)
        tjDestroy(decompressor)
    }

    /// Encodes `width×height` RGB8 pixels (row-major, 3 bytes a pixel).
    public func encode(rgb: UnsafeRawBufferPointer, width: Int, height: Int) throws(EpisodeError) -> [UInt8] {
        guard rgb.count >= width * height * 3, let base = rgb.baseAddress else {
            throw EpisodeError("JPEG encode: expected \(width)×\(height)×3 = \(width * height * 3) bytes, got \(rgb.count)")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = tjCompress2(compressor, base.assumingMemoryBound(to: UInt8.self), Int32(width), 0, Int32(height),
                                 Int32(TJPF_RGB.rawValue), &output, &size, Int32(TJSAMP_420.rawValue), quality, 0)
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else {
            throw EpisodeError("JPEG encode failed: \(String(cString: tjGetErrorStr2(compressor)))")
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }

    /// Decodes a JPEG into RGB8; returns the pixels and the size found in the header.
    public func decode(_ jpeg: UnsafeRawBufferPointer) throws(EpisodeError) -> (rgb: [UInt8], width: Int, height: Int) {
        guard let base = jpeg.baseAddress, jpeg.count > 0 else { throw EpisodeError("JPEG decode: empty input") }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        guard tjDecompressHeader3(decompressor, bytes, UInt(jpeg.count), &width, &height, &subsampling, &colorspace) == 0,
              width > 0, height > 0 else {
            throw EpisodeError("JPEG decode: not a JPEG image (\(String(cString: tjGetErrorStr2(decompressor))))")
        }
        var rgb = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = rgb.withUnsafeMutableBufferPointer {
            tjDecompress2(decompressor, bytes, UInt(jpeg.count), $0.baseAddress, width, 0, height,
                          Int32(TJPF_RGB.rawValue), 0)
        }
        guard status == 0 else {
            throw EpisodeError("JPEG decode failed: \(String(cString: tjGetErrorStr2(decompressor)))")
        }
        return (rgb, Int(width), Int(height))
    }
}
