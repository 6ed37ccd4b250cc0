/// Qwen2-VL image preprocessing exactly as transformers 5.23 `Qwen2VLImageProcessorPil` (the processor
/// Qwen3.5 uses): smart resize (factor = patch × merge, Python's round-half-even, min/max pixels), Pillow
/// BICUBIC, rescale (f64 product, then f32), normalize ((x − mean) / std in f32), the frame repeated
/// `temporal_patch_size` times, patchified into `pixel_values` [grid_h·grid_w, C·T·P·P] with patches in
/// merge-block order (block row, block col, row in block, col in block) and features ordered (C, T, P, P).
///
/// API summary
/// - `QwenImageProcessorConfig`: preprocessor_config.json (`size.shortest_edge/longest_edge` or
///   `min_pixels/max_pixels`, patch/temporal/merge sizes, mean/std, rescale factor); `.load(from:)`.
/// - `QwenImageProcessor(config:)`: `.smartResize(height:width:) throws(ImageError) -> (h, w)`,
///   `.resized(_:) throws(ImageError) -> RGBImage`, `.preprocess(_:) throws(ImageError) -> PreprocessedImage`.
/// - `PreprocessedImage`: `pixelValues` [Float] [patches, patchDim], `grid` (t, h, w), `mergedTokens`.
import Foundation

public struct QwenImageProcessorConfig: Decodable, Sendable, Equatable {
    public var minPixels: Int = 56 * 56
    public var maxPixels: Int = 28 * 28 * 1280
    public var patchSize: Int = 14
    public var temporalPatchSize: Int = 2
    public var mergeSize: Int = 2
    public var imageMean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Double] = [0.26862954, 0.26130258, 0.27577711]
    public var rescaleFactor: Double = 1.0 / 255.0
    public var doResize = true, doRescale = true, doNormalize = true

    enum CodingKeys: String, CodingKey {
        case size, minPixels = "min_pixels", maxPixels = "max_pixels", patchSize = "patch_size"
        case temporalPatchSize = "temporal_patch_size", mergeSize = "merge_size", imageMean = "image_mean"
        case imageStd = "image_std", rescaleFactor = "rescale_factor", doResize = "do_resize"
        case doRescale = "do_rescale", doNormalize = "do_normalize"
    }

    struct Size: Decodable {
        var shortestEdge: Int?, longestEdge: Int?
        enum CodingKeys: String, CodingKey { case shortestEdge = "shortest_edge", longestEdge = "longest_edge" }
    }

    public init() {}

    /// Values from a vision config when no preprocessor_config.json exists.
    public init(patchSize: Int, temporalPatchSize: Int, mergeSize: Int) {
        self.patchSize = patchSize
        self.temporalPatchSize = temporalPatchSize
        self.mergeSize = mergeSize
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // As the class's __init__: min/max_pixels override `size`.
        if let size = try c.decodeIfPresent(Size.self, forKey: .size) {
            if let s = size.shortestEdge { minPixels = s }
            if let l = size.longestEdge { maxPixels = l }
        }
        if let v = try c.decodeIfPresent(Int.self, forKey: .minPixels) { minPixels = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .maxPixels) { maxPixels = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .patchSize) { patchSize = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .temporalPatchSize) { temporalPatchSize = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .mergeSize) { mergeSize = v }
        if let v = try c.decodeIfPresent([Double].self, forKey: .imageMean) { imageMean = v }
        if let v = try c.decodeIfPresent([Double].self, forKey: .imageStd) { imageStd = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) { rescaleFactor = v }
        if let v = try c.decodeIfPresent(Bool.self, forKey: .doResize) { doResize = v }
        if let v = try c.decodeIfPresent(Bool.self, forKey: .doRescale) { doRescale = v }
        if let v = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) { doNormalize = v }
    }

    public static func load(from url: URL) throws(ImageError) -> QwenImageProcessorConfig {
        let config: QwenImageProcessorConfig
        do {
            config = try JSONDecoder().decode(QwenImageProcessorConfig.self, from: Data(contentsOf: url))
        } catch {
            throw ImageError(message: "\(url.path): not a readable preprocessor_config.json (\(error))")
        }
        try config.validate(source: url.path)
        return config
    }

    public func validate(source: String) throws(ImageError) {
        if patchSize <= 0 || temporalPatchSize <= 0 || mergeSize <= 0 {
            throw ImageError(message: "\(source): patch_size, temporal_patch_size and merge_size must be positive")
        }
        if imageMean.count != 3 || imageStd.count != 3 || imageStd.contains(0) {
            throw ImageError(message: "\(source): image_mean and image_std need 3 values each (std non-zero), found \(imageMean) / \(imageStd)")
        }
        if minPixels <= 0 || maxPixels < minPixels {
            throw ImageError(message: "\(source): pixel bounds min \(minPixels) / max \(maxPixels) are not a valid range")
        }
    }
}

public struct PreprocessedImage: Sendable {
    /// [grid.h · grid.w · grid.t, 3 · T · P · P] row-major.
    public var pixelValues: [Float]
    /// (t, h, w) in patches, as `image_grid_thw`.
    public var grid: (t: Int, h: Int, w: Int)
    public var patchDim: Int
    public var patchCount: Int { grid.t * grid.h * grid.w }
}

public struct QwenImageProcessor: Sendable {
    public let config: QwenImageProcessorConfig

    public init(config: QwenImageProcessorConfig) { self.config = config }

    /// transformers' smart_resize: both sides multiples of factor, area within [min, max] pixels.
    public func smartResize(height: Int, width: Int) throws(ImageError) -> (height: Int, width: Int) {
        let factor = config.patchSize * config.mergeSize
        let (hf, wf) = (Double(height), Double(width))
        guard height > 0, width > 0 else { throw ImageError(message: "image size \(width)x\(height) is empty") }
        if max(hf, wf) / min(hf, wf) > 200 {
            throw ImageError(message: "absolute aspect ratio must be smaller than 200, got \(max(hf, wf) / min(hf, wf))")
        }
        // Python's round() rounds halves to even.
        var h = Int((hf / Double(factor)).rounded(.toNearestOrEven)) * factor
        var w = Int((wf / Double(factor)).rounded(.toNearestOrEven)) * factor
        if h * w > config.maxPixels {
            let beta = ((hf * wf) / Double(config.maxPixels)).squareRoot()
            h = max(factor, Int((hf / beta / Double(factor)).rounded(.down)) * factor)
            w = max(factor, Int((wf / beta / Double(factor)).rounded(.down)) * factor)
        } else if h * w < config.minPixels {
            let beta = (Double(config.minPixels) / (hf * wf)).squareRoot()
            h = Int((hf * beta / Double(factor)).rounded(.up)) * factor
            w = Int((wf * beta / Double(factor)).rounded(.up)) * factor
        }
        return (h, w)
    }

    public func resized(_ image: RGBImage) throws(ImageError) -> RGBImage {
        guard config.doResize else { return image }
        let (h, w) = try smartResize(height: image.height, width: image.width)
        return PillowResample.bicubic(image, width: w, height: h)
    }

    public func preprocess(_ image: RGBImage) throws(ImageError) -> PreprocessedImage {
        let img = try resized(image)
        let P = config.patchSize, M = config.mergeSize, T = config.temporalPatchSize
        guard img.height % (P * M) == 0, img.width % (P * M) == 0 else {
            throw ImageError(message: "image \(img.width)x\(img.height) is not a multiple of patch × merge = \(P * M) (enable do_resize)")
        }
        let gh = img.height / P, gw = img.width / P
        // Per channel lookup of the 256 possible normalized values, computed as numpy does.
        var table = [Float](repeating: 0, count: 3 * 256)
        for ch in 0..<3 {
            let mean = Float(config.imageMean[ch]), std = Float(config.imageStd[ch])
            for v in 0..<256 {
                var x = config.doRescale ? Float(Double(v) * config.rescaleFactor) : Float(v)
                if config.doNormalize { x = (x - mean) / std }
                table[ch * 256 + v] = x
            }
        }
        let patchDim = 3 * T * P * P
        var out = [Float](repeating: 0, count: gh * gw * patchDim)
        var index = 0
        for bh in 0..<(gh / M) {
            for bw in 0..<(gw / M) {
                for mh in 0..<M {
                    for mw in 0..<M {
                        let py = (bh * M + mh) * P, px = (bw * M + mw) * P
                        var o = index * patchDim
                        for ch in 0..<3 {
                            for _ in 0..<T {
                                for y in 0..<P {
                                    let row = ((py + y) * img.width + px) * 3 + ch
                                    for x in 0..<P {
                                        out[o] = table[ch * 256 + Int(img.pixels[row + x * 3])]
                                        o += 1
                                    }
                                }
                            }
                        }
                        index += 1
                    }
                }
            }
        }
        return PreprocessedImage(pixelValues: out, grid: (1, gh, gw), patchDim: patchDim)
    }
}
