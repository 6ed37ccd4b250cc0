import Foundation

/// Tests/Fixtures/tensor, found from this file so tests run from any working directory.
let tensorFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/tensor")

/// One JSON fixture written by Tools/reference/tensor_fixtures.py (arrays as little-endian hex).
struct Fixture {
    let values: [String: Any]

    init(_ name: String) throws {
        let data = try Data(contentsOf: tensorFixtures.appendingPathComponent(name))
        values = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    func bytes(_ key: String) -> [UInt8] {
        guard let hex = values[key] as? String else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8 = 0
        for (i, c) in hex.utf8.enumerated() {
            let v: UInt8 = c <= 57 ? c - 48 : c - 87
            if i % 2 == 0 { high = v } else { out.append(high << 4 | v) }
        }
        return out
    }

    func floats(_ key: String) -> [Float] {
        bytes(key).withUnsafeBytes { raw in (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    func u16(_ key: String) -> [UInt16] {
        bytes(key).withUnsafeBytes { raw in (0..<(raw.count / 2)).map { raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) } }
    }

    func int(_ key: String) -> Int { (values[key] as? NSNumber)?.intValue ?? -1 }
    func double(_ key: String) -> Double { (values[key] as? NSNumber)?.doubleValue ?? .nan }
    func ints(_ key: String) -> [Int] { (values[key] as? [NSNumber])?.map(\.intValue) ?? [] }
    func intRows(_ key: String) -> [[Int]] { (values[key] as? [[NSNumber]])?.map { $0.map(\.intValue) } ?? [] }
}

/// Largest |a−b| / max(|b|, floor) over two arrays (floor keeps values near zero from dominating).
func maxRelativeError(_ a: [Float], _ b: [Float], floor: Float = 1e-3) -> Float {
    guard a.count == b.count else { return .infinity }
    var worst: Float = 0
    for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(abs(y), floor)) }
    return worst
}
