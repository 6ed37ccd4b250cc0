import Foundation

/// The reference's recorded tensors (reference.safetensors: F32, I32 and U8 only), read with nothing but
/// Foundation so the check does not lean on the reader under test.
struct ReferenceTensors {
    let shapes: [String: [Int]]
    private let raw: [String: Data]
    private let dtypes: [String: String]

    init(_ url: URL) throws {
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        var shapes: [String: [Int]] = [:], raw: [String: Data] = [:], dtypes: [String: String] = [:]
        for (name, value) in header where name != "__metadata__" {
            let info = value as! [String: Any]
            let offs = info["data_offsets"] as! [Int]
            shapes[name] = info["shape"] as? [Int]
            dtypes[name] = info["dtype"] as? String
            raw[name] = data.subdata(in: (8 + n + offs[0])..<(8 + n + offs[1]))
        }
        self.shapes = shapes; self.raw = raw; self.dtypes = dtypes
    }

    func floats(_ name: String) -> [Float] {
        precondition(dtypes[name] == "F32", "\(name) is \(dtypes[name] ?? "missing")")
        return raw[name]!.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func bytes(_ name: String) -> [UInt8] {
        precondition(dtypes[name] == "U8", "\(name) is \(dtypes[name] ?? "missing")")
        return [UInt8](raw[name]!)
    }

    func ints(_ name: String) -> [Int] {
        precondition(dtypes[name] == "I32", "\(name) is \(dtypes[name] ?? "missing")")
        return raw[name]!.withUnsafeBytes { $0.bindMemory(to: Int32.self).map { Int($0) } }
    }
}

/// max |a − b| / max |b|: the tolerance measure of the model tests.
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes \(a.count) vs \(b.count)")
    var diff: Float = 0, scale: Float = 0
    for i in 0..<a.count {
        diff = max(diff, abs(a[i] - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return a.contains(where: { $0.isNaN }) ? .infinity : diff / max(scale, .leastNormalMagnitude)
}
