import Foundation
import Testing
import TendonModel
import TendonTensor
@testable import TendonTraining

/// `tendon-train convert` on the vision fixture (Tests/Fixtures/vision/model, a Qwen3_5ForConditionalGeneration
/// folder from Tools/reference/qwen35_vision_reference.py) carries the vision tower and the preprocessor
/// settings: the GGUF runs images end to end like the folder (f32: within 1e-4 of transformers; q8_0: the
/// quantized error is reported and bounded).
@Suite struct VisionGGUFTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/vision")

    /// One tensor of the reference file (F32 or I32) as Float, read without the reader under test.
    static func reference(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: folder.appendingPathComponent("model/reference.safetensors"))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        let info = header[name] as! [String: Any]
        let offsets = info["data_offsets"] as! [Int]
        let raw = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
        if info["dtype"] as! String == "I32" { return raw.withUnsafeBytes { $0.bindMemory(to: Int32.self).map { Float($0) } } }
        return raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        var diff: Float = 0, scale: Float = 0
        for i in 0..<min(a.count, b.count) { diff = max(diff, abs(a[i] - b[i])); scale = max(scale, abs(b[i])) }
        return a.count == b.count && !a.contains(where: \.isNaN) ? diff / scale : .infinity
    }

    /// q8_0 is compared with the f32 reference, so the bound covers weight and int8-activation rounding through
    /// five matmul layers of a tiny random model (measured ≈ 0.056); a wrong layout or block lands near 1.
    @Test(arguments: [(ConvertQuantization.f32, Float(1e-4)), (.q8_0, Float(0.1))])
    func convertedModelRunsImages(_ quant: ConvertQuantization, _ tolerance: Float) throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let gguf = temp.path("vision_\(quant.rawValue).gguf")
        _ = try HFToGGUFConverter.convert(hfDirectory: Self.folder.appendingPathComponent("model").path, output: gguf,
                                          quantization: quant)
        let model = try Qwen35VisionLanguageModel(path: gguf)
        #expect(model.processor.config.minPixels == 1024 && model.processor.config.imageMean == [0.5, 0.42, 0.31])
        let images = try ["odd_rgba.png", "tall_min_pixels.png"].map {
            try RGBImage.load(path: Self.folder.appendingPathComponent("images/\($0)").path)
        }
        let ids = try Self.reference("two.input_ids").map { Int($0) }
        let encoded = try model.encodeImages(images)
        var cache = model.text.makeCache()
        let logits = try model.logits(inputIDs: ids, images: encoded, cache: &cache)
        let err = Self.relativeError(logits, try Self.reference("two.logits"))
        print("vision gguf \(quant.rawValue): logits rel err \(err) (bound \(tolerance))")
        #expect(err < tolerance)
    }
}
