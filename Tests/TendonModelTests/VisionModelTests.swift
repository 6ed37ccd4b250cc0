import Foundation
import Testing
import TendonTensor
@testable import TendonModel

/// The Qwen3.5 vision tower, get_rope_index and the backbone with images against transformers 5.23.0
/// `Qwen3_5ForConditionalGeneration` (inputs built by Qwen3VLProcessor) on a tiny random checkpoint
/// (Tools/reference/qwen35_vision_reference.py). Images go from the files through Tendon's own decoding and
/// preprocessing, so the whole path is checked.
@Suite struct VisionModelTests {
    static let folder = fixturesDirectory.appendingPathComponent("vision")
    static let cases = [("one", ["wide_max_pixels.jpg"]), ("two", ["odd_rgba.png", "tall_min_pixels.png"])]
    static let tolerance: Float = 1e-4
    static let pool = ThreadPool(threads: 2)

    static func model() throws -> Qwen35VisionLanguageModel {
        try Qwen35VisionLanguageModel(path: folder.appendingPathComponent("model").path, pool: pool)
    }

    static func reference() throws -> ReferenceTensors {
        try ReferenceTensors(folder.appendingPathComponent("model/reference.safetensors"))
    }

    static func images(_ files: [String]) throws -> [RGBImage] {
        try files.map { try RGBImage.load(path: folder.appendingPathComponent("images/\($0)").path) }
    }

    @Test(arguments: [0, 1])
    func matchesReference(_ index: Int) throws {
        let (name, files) = Self.cases[index]
        let model = try Self.model()
        let ref = try Self.reference()
        let ids = ref.ints("\(name).input_ids")
        let images = try Self.images(files)
        let (pixels, grids) = try model.preprocess(images)
        let padsPerImage = try images.map { try model.padCount(for: $0) }
        #expect(padsPerImage.reduce(0, +) == ids.filter { $0 == model.multimodal.imageTokenID }.count)
        #expect(grids.flatMap { [$0.t, $0.h, $0.w] } == ref.ints("\(name).grid"))

        let blocks = try model.vision.forwardBlocks(pixelValues: pixels, grids: grids)
        let blockErr = relativeError(blocks, ref.floats("\(name).vision_blocks"))
        let encoded = try model.encodeImages(pixelValues: pixels, grids: grids)
        let tokenErr = relativeError(encoded.tokens, ref.floats("\(name).vision_tokens"))

        let positions = try model.positions(inputIDs: ids, images: encoded)
        let refPositions = ref.ints("\(name).position_ids")
        #expect(positions.flatMap { $0 } == refPositions, "\(name): positions \(positions) vs \(refPositions)")

        var cache = model.text.makeCache()
        let hidden = try model.prefixHiddenStates(inputIDs: ids, images: encoded, cache: &cache)
        let hiddenErr = relativeError(hidden, ref.floats("\(name).last_hidden_state"))
        let logitsErr = relativeError(model.text.logits(finalHidden: hidden), ref.floats("\(name).logits"))
        print("vision \(name): blocks \(blockErr), merged tokens \(tokenErr), last_hidden_state \(hiddenErr), logits \(logitsErr) (tolerance \(Self.tolerance))")
        #expect(blockErr < Self.tolerance)
        #expect(tokenErr < Self.tolerance)
        #expect(hiddenErr < Self.tolerance)
        #expect(logitsErr < Self.tolerance)
        #expect(cache.length == ids.count)
    }

    /// Images end to end through `encodeImages([RGBImage])` and `logits` give the same answer.
    @Test func encodeImagesFromFiles() throws {
        let model = try Self.model()
        let ref = try Self.reference()
        let encoded = try model.encodeImages(try Self.images(Self.cases[1].1))
        var cache = model.text.makeCache()
        let logits = try model.logits(inputIDs: ref.ints("two.input_ids"), images: encoded, cache: &cache)
        #expect(relativeError(logits, ref.floats("two.logits")) < Self.tolerance)
    }

    @Test func wrongPadCountIsAnError() throws {
        let model = try Self.model()
        let ref = try Self.reference()
        var ids = ref.ints("one.input_ids")
        let pad = model.multimodal.imageTokenID
        ids.remove(at: ids.firstIndex(of: pad)!)
        let encoded = try model.encodeImages(try Self.images(Self.cases[0].1))
        var cache = model.text.makeCache()
        #expect { _ = try model.prefixHiddenStates(inputIDs: ids, images: encoded, cache: &cache) } throws: { error in
            guard case .input(let message) = error as? Qwen35Error else { return false }
            return message.contains("hold 1 <|image_pad|>") && message.contains("need 2") && !message.contains("\n")
        }
        // Right total, wrong split between two images.
        let two = try model.encodeImages(try Self.images(Self.cases[1].1))
        var ids2 = ref.ints("two.input_ids")
        let first = ids2.firstIndex(of: pad)!
        ids2.remove(at: first)
        ids2.insert(pad, at: ids2.lastIndex(of: pad)!)
        #expect(throws: Qwen35Error.self) { _ = try model.prefixHiddenStates(inputIDs: ids2, images: two, cache: &cache) }
    }

    @Test func textOnlyCheckpointIsAClearError() {
        let path = fixturesDirectory.appendingPathComponent("qwen35/text_tied").path
        #expect { _ = try Qwen35VisionLanguageModel(path: path) } throws: { error in
            guard case .config(let message) = error as? Qwen35Error else { return false }
            return message.contains("no vision_config")
        }
    }

    @Test func ropeIndexTextAfterImage() throws {
        // 2 text, one image with a 4×6 grid (merged 2×3), then 2 text: positions continue from start + 3.
        let ids = [5, 6] + Array(repeating: 9, count: 6) + [7, 8]
        let rows = try Qwen35RopeIndex.positions(inputIDs: ids, imageTokenID: 9, grids: [(1, 4, 6)], spatialMergeSize: 2)
        #expect(rows[0] == [0, 1, 2, 2, 2, 2, 2, 2, 5, 6])
        #expect(rows[1] == [0, 1, 2, 2, 2, 3, 3, 3, 5, 6])
        #expect(rows[2] == [0, 1, 2, 3, 4, 2, 3, 4, 5, 6])
    }
}
