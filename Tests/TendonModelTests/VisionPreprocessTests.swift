import Foundation
import Testing
@testable import TendonModel

/// Image decoding and Qwen2-VL preprocessing against Pillow 13.0.0 / transformers 5.23.0
/// (Tools/reference/qwen35_vision_reference.py): decoded and resized pixels byte for byte, pixel_values
/// within 1e-6.
@Suite struct VisionPreprocessTests {
    static let folder = fixturesDirectory.appendingPathComponent("vision")
    static let images = ["tall_min_pixels.png", "wide_max_pixels.jpg", "odd_rgba.png", "exact_gray.png",
                         "tie_palette.png", "gray16.png", "gray_jpeg.jpg", "gray_alpha.png"]
    static let withPixelValues: Set = ["tall_min_pixels", "wide_max_pixels", "odd_rgba"]

    static func reference() throws -> ReferenceTensors {
        try ReferenceTensors(folder.appendingPathComponent("preprocess.safetensors"))
    }

    static func processor() throws -> QwenImageProcessor {
        QwenImageProcessor(config: try QwenImageProcessorConfig.load(from: folder.appendingPathComponent("preprocessor_config.json")))
    }

    static func stem(_ file: String) -> String { String(file.split(separator: ".")[0]) }

    @Test func configReadsSizeDictionary() throws {
        let c = try Self.processor().config
        #expect(c.minPixels == 1024 && c.maxPixels == 4096)
        #expect(c.patchSize == 16 && c.mergeSize == 2 && c.temporalPatchSize == 2)
        #expect(c.imageMean == [0.5, 0.42, 0.31])
    }

    @Test(arguments: images)
    func decodesLikePillow(_ file: String) throws {
        let ref = try Self.reference()
        let name = Self.stem(file)
        let image = try RGBImage.load(path: Self.folder.appendingPathComponent("images/\(file)").path)
        let shape = ref.shapes["\(name).decoded"]!
        #expect(image.height == shape[0] && image.width == shape[1])
        let expected = ref.bytes("\(name).decoded")
        let mismatches = zip(image.pixels, expected).filter { $0 != $1 }.count
        #expect(mismatches == 0 && image.pixels.count == expected.count, "\(file): \(mismatches) bytes differ from Pillow")
    }

    @Test(arguments: images)
    func resizesLikePillowBicubic(_ file: String) throws {
        let ref = try Self.reference()
        let name = Self.stem(file)
        let shape = ref.shapes["\(name).decoded"]!
        let source = RGBImage(width: shape[1], height: shape[0], pixels: ref.bytes("\(name).decoded"))
        let processor = try Self.processor()
        let grid = ref.ints("\(name).grid")
        let (h, w) = try processor.smartResize(height: source.height, width: source.width)
        #expect(h == grid[1] * 16 && w == grid[2] * 16, "\(file): smart_resize \(h)x\(w), reference grid \(grid)")
        let resized = try processor.resized(source)
        let expected = ref.bytes("\(name).resized")
        let mismatches = zip(resized.pixels, expected).filter { $0 != $1 }.count
        #expect(resized.pixels.count == expected.count && mismatches == 0, "\(file): \(mismatches) of \(expected.count) bytes differ")
    }

    @Test(arguments: images)
    func pixelValuesMatchProcessor(_ file: String) throws {
        let ref = try Self.reference()
        let name = Self.stem(file)
        let image = try RGBImage.load(path: Self.folder.appendingPathComponent("images/\(file)").path)
        let out = try Self.processor().preprocess(image)
        let grid = ref.ints("\(name).grid")
        #expect([out.grid.t, out.grid.h, out.grid.w] == grid)
        #expect(out.patchDim == 3 * 2 * 16 * 16)
        guard Self.withPixelValues.contains(name) else { return }
        let expected = ref.floats("\(name).pixel_values")
        #expect(out.pixelValues.count == expected.count)
        let maxDiff = zip(out.pixelValues, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxDiff <= 1e-6, "\(file): pixel_values max |Δ| \(maxDiff)")
    }

    /// Python's round() is half-to-even: 48/32 = 1.5 → 2 and 80/32 = 2.5 → 2 (not 3).
    @Test func smartResizeRoundsHalfToEven() throws {
        let p = try Self.processor()
        #expect(try p.smartResize(height: 48, width: 80) == (64, 64))
        #expect(try p.smartResize(height: 32, width: 32) == (32, 32))
        #expect(throws: ImageError.self) { try p.smartResize(height: 1, width: 500) }
    }

    /// Resizes where the order of the two 8-bit passes decides the bytes (Pillow 13 goes vertical-first when
    /// the height loses more than twice the width's pixels): width grows while height shrinks and the
    /// reverse, both shrinking on each side of the 2× boundary, and seeded random sizes
    /// (Tools/reference/pillow_resize_fixtures.py). Case 0 is vlm_c's cam_high.png, 28×20 → 32×16.
    static let passCases = Array(0..<20)

    @Test(arguments: passCases)
    func resizePassOrderMatchesPillow(_ i: Int) throws {
        let ref = try ReferenceTensors(Self.folder.appendingPathComponent("resize_passes.safetensors"))
        let src = try #require(ref.shapes["\(i).source"]), dst = try #require(ref.shapes["\(i).resized"])
        let source = RGBImage(width: src[1], height: src[0], pixels: ref.bytes("\(i).source"))
        let expected = ref.bytes("\(i).resized")
        let resized = PillowResample.bicubic(source, width: dst[1], height: dst[0])
        let mismatches = zip(resized.pixels, expected).filter { $0 != $1 }.count
        #expect(resized.width == dst[1] && resized.height == dst[0] && resized.pixels.count == expected.count
                && mismatches == 0, "case \(i) \(src[1])x\(src[0]) → \(dst[1])x\(dst[0]): \(mismatches) bytes differ")
        // The hand-picked cases (0…13) are ones where the other pass order gives different bytes, so the
        // fixture really pins the order.
        if i < 14 {
            let other = PillowResample.verticalFirst(inWidth: src[1], inHeight: src[0], outWidth: dst[1], outHeight: dst[0])
                ? PillowResample.vertical(PillowResample.horizontal(source, width: dst[1]), height: dst[0])
                : PillowResample.horizontal(PillowResample.vertical(source, height: dst[0]), width: dst[1])
            #expect(other.pixels != expected, "case \(i): both pass orders agree, the case pins nothing")
        }
    }

    /// The fixed-point coefficients of one output pixel sum to 1 (within rounding) and the scalar filter
    /// matches Pillow's Keys kernel at known points.
    @Test func bicubicKernel() {
        #expect(PillowResample.cubic(0) == 1)
        #expect(PillowResample.cubic(1) == 0)
        #expect(PillowResample.cubic(0.5) == 0.5625)
        #expect(PillowResample.cubic(1.5) == -0.0625)
        let c = PillowResample.coefficients(inSize: 101, outSize: 96)
        for o in 0..<96 {
            let sum = (0..<c.ksize).reduce(Int32(0)) { $0 + c.weights[o * c.ksize + $1] }
            #expect(abs(sum - (1 << 22)) <= Int32(c.ksize))
        }
    }

    @Test func errorsNameTheFile() throws {
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-not-an-image-\(getpid()).png")
        try Data("hello".utf8).write(to: bad)
        defer { try? FileManager.default.removeItem(at: bad) }
        #expect { try RGBImage.load(path: bad.path) } throws: { ($0 as? ImageError)?.message.contains(bad.path) == true }
        let truncated = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-truncated-\(getpid()).png")
        let png = try Data(contentsOf: Self.folder.appendingPathComponent("images/odd_rgba.png"))
        try png.prefix(200).write(to: truncated)
        defer { try? FileManager.default.removeItem(at: truncated) }
        #expect { try RGBImage.load(path: truncated.path) } throws: {
            guard let e = $0 as? ImageError else { return false }
            return e.message.contains(truncated.path) && e.message.contains("PNG")
        }
        let missing = "/nonexistent/tendon-image.jpg"
        #expect { try RGBImage.load(path: missing) } throws: { ($0 as? ImageError)?.message.contains(missing) == true }
    }
}
