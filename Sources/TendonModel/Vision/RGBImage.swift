/// An 8-bit RGB image decoded from a PNG (libpng) or JPEG (libjpeg-turbo) file, converted to RGB the way
/// transformers' processors see a Pillow image (`convert_to_rgb`): gray replicated, 16-bit samples reduced
/// as Pillow's PNG modes do, alpha (or a tRNS colour) composited onto white with Pillow's integer
/// `alpha_composite`. EXIF orientation is not applied (the processors do not apply it either).
///
/// API summary
/// - `RGBImage(width:height:pixels:)`: interleaved RGB rows, `pixels.count == width·height·3`.
/// - `RGBImage.load(path:) throws(ImageError) -> RGBImage`: by file signature (PNG or JPEG).
/// - `ImageError`: one-line description naming the file.
import CPNG
import CTurboJPEG
import Foundation

public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Row-major interleaved R, G, B.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB image \(width)x\(height) needs \(width * height * 3) bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public static func load(path: String) throws(ImageError) -> RGBImage {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ImageError(message: "\(path): cannot open the image file")
        }
        let head = ((try? handle.read(upToCount: 8)) ?? nil) ?? Data()
        try? handle.close()
        let bytes = [UInt8](head)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try loadPNG(path: path) }
        if bytes.starts(with: [0xFF, 0xD8]) { return try loadJPEG(path: path) }
        throw ImageError(message: "\(path): not a PNG or JPEG file (expected a PNG or JPEG signature)")
    }

    static func loadPNG(path: String) throws(ImageError) -> RGBImage {
        var decoded = TendonPNGImage()
        guard tendon_png_read(path, &decoded) == 0, let raw = decoded.pixels else {
            let reason = withUnsafeBytes(of: &decoded.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw ImageError(message: "\(path): cannot decode PNG (\(reason))")
        }
        defer { free(raw) }
        let w = Int(decoded.width), h = Int(decoded.height), ch = Int(decoded.channels)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        if decoded.bitDepth == 16 {
            // Pillow opens it as "I;16"; convert("RGB") clips to 0…255 rather than scaling.
            let p = UnsafeRawPointer(raw).assumingMemoryBound(to: UInt16.self)
            for i in 0..<(w * h) {
                let v = UInt8(min(p[i], 255))
                rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v
            }
            return RGBImage(width: w, height: h, pixels: rgb)
        }
        for i in 0..<(w * h) {
            let s = raw + i * ch
            let (r, g, b, a): (UInt8, UInt8, UInt8, UInt8)
            switch ch {
            case 1: (r, g, b, a) = (s[0], s[0], s[0], 255)
            case 2: (r, g, b, a) = (s[0], s[0], s[0], s[1])
            case 3: (r, g, b, a) = (s[0], s[1], s[2], 255)
            default: (r, g, b, a) = (s[0], s[1], s[2], s[3])
            }
            if ch == 2 || ch == 4 {
                rgb[3 * i] = onWhite(r, a); rgb[3 * i + 1] = onWhite(g, a); rgb[3 * i + 2] = onWhite(b, a)
            } else {
                rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b
            }
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    /// Pillow's AlphaComposite.c (7 extra precision bits, rounded division by 255) for an opaque white
    /// destination: coef1 = a·128, coef2 = 255·128 − coef1.
    static func onWhite(_ c: UInt8, _ a: UInt8) -> UInt8 {
        if a == 0 { return 255 }
        let coef1 = UInt32(a) * 128, coef2 = 255 * 128 - coef1
        let tmp = UInt32(c) * coef1 + 255 * coef2 + (0x80 << 7)
        return UInt8((((tmp >> 8) + tmp) >> 8) >> 7)
    }

    static func loadJPEG(path: String) throws(ImageError) -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError(message: "\(path): cannot read the image file")
        }
        guard let tj = tjInitDecompress() else { throw ImageError(message: "\(path): cannot start the JPEG decoder") }
        defer { tjDestroy(tj) }
        let bytes = [UInt8](data)
        var w: Int32 = 0, h: Int32 = 0, sub: Int32 = 0, space: Int32 = 0
        let header = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(tj, $0.baseAddress, UInt(bytes.count), &w, &h, &sub, &space)
        }
        guard header == 0, w > 0, h > 0 else {
            throw ImageError(message: "\(path): cannot decode JPEG (\(String(cString: tjGetErrorStr2(tj))))")
        }
        if space == Int32(TJCS_CMYK.rawValue) || space == Int32(TJCS_YCCK.rawValue) {
            throw ImageError(message: "\(path): CMYK JPEG is not supported (expected grayscale or YCbCr)")
        }
        var rgb = [UInt8](repeating: 0, count: Int(w) * Int(h) * 3)
        // Default flags: accurate integer IDCT and fancy upsampling, as Pillow's libjpeg decoder uses.
        let rc = bytes.withUnsafeBufferPointer { src in
            rgb.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(tj, src.baseAddress, UInt(bytes.count), dst.baseAddress, w, 0, h, Int32(TJPF_RGB.rawValue), 0)
            }
        }
        if rc != 0 && tjGetErrorCode(tj) == Int32(TJERR_FATAL.rawValue) {
            throw ImageError(message: "\(path): cannot decode JPEG (\(String(cString: tjGetErrorStr2(tj))))")
        }
        return RGBImage(width: Int(w), height: Int(h), pixels: rgb)
    }
}

public struct ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
