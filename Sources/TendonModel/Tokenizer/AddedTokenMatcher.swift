/// Finds added tokens in UTF-8 text as tokenizers' AddedVocabulary does (Aho-Corasick, leftmost-longest):
/// the earliest match wins, and among matches starting there the longest. Matching bytes is enough: a
/// token's UTF-8 cannot match in the middle of another character.
struct AddedTokenMatcher: Sendable {
    /// Candidates by first byte, longest first.
    private var byFirstByte: [[(bytes: [UInt8], id: Int32)]] = Array(repeating: [], count: 256)
    var isEmpty: Bool { byFirstByte.allSatisfy(\.isEmpty) }

    init(_ tokens: [(content: [UInt8], id: Int32)]) {
        for t in tokens where !t.content.isEmpty {
            byFirstByte[Int(t.content[0])].append((t.content, t.id))
        }
        for b in 0..<256 { byFirstByte[b].sort { $0.bytes.count > $1.bytes.count } }
    }

    /// The next match at or after `from`: its byte range and id.
    func nextMatch(in text: UnsafeBufferPointer<UInt8>, from: Int) -> (range: Range<Int>, id: Int32)? {
        var i = from
        while i < text.count {
            for candidate in byFirstByte[Int(text[i])] where candidate.bytes.count <= text.count - i {
                var equal = true
                for k in 1..<candidate.bytes.count where text[i + k] != candidate.bytes[k] {
                    equal = false
                    break
                }
                if equal { return (i..<(i + candidate.bytes.count), candidate.id) }
            }
            i += 1
        }
        return nil
    }
}
