import Foundation

/// Qwen-style byte-level BPE tokenizer read from a Hugging Face tokenizer.json; encodes to the ids HF
/// `tokenizers` 0.23.3 gives (DESIGN §3). Pipeline, in tokenizers' order: added tokens that are not
/// `normalized` are cut out of the raw text; the rest is NFC-normalized; `normalized` added tokens are cut out
/// of that; what remains is split by the Qwen regex (hand-written scanner), mapped to bytes and BPE-merged.
public final class Tokenizer: Sendable {
    public let splitPattern: QwenSplitPattern
    /// One more than the largest id (vocabulary or added token).
    public let vocabularySize: Int
    private let normalizesNFC: Bool
    let model: BytePairModel
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    private let addedTokenIds: [String: Int]
    /// Bytes each id decodes to (ByteLevel decoder), whether it is a special token, whether it exists.
    private let decodedBytes: [[UInt8]]
    private let isSpecial: [Bool]
    private let exists: [Bool]

    static let maximumId = 1 << 24

    public convenience init(contentsOf url: URL) throws(TokenizerError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        try self.init(jsonData: data)
    }

    public init(jsonData: Data) throws(TokenizerError) {
        let file: TokenizerFile
        do {
            file = try JSONDecoder().decode(TokenizerFile.self, from: jsonData)
        } catch let error as TokenizerError {
            throw error
        } catch let error as DecodingError {
            throw .malformedJSON(Self.describe(error))
        } catch {
            throw .malformedJSON(String(describing: error))
        }
        normalizesNFC = try Self.readNormalizer(file.normalizer)
        splitPattern = try Self.readPreTokenizer(file.pre_tokenizer)
        try Self.checkDecoderAndPostProcessor(file)
        try Self.checkModel(file.model)

        // Vocabulary keyed by the UTF-8 of its strings, so lookups never use String's canonical equivalence.
        var idByText: [[UInt8]: Int32] = [:]
        idByText.reserveCapacity(file.model.vocab.count)
        var maxId = -1
        for (token, id) in file.model.vocab {
            // Ids index dense tables (decoding, embeddings): a stray huge id is refused rather than allocated for.
            guard id >= 0, id < Self.maximumId else {
                throw .malformedJSON("vocabulary id \(id) of \"\(token)\" is outside 0..<\(Self.maximumId)")
            }
            idByText[Array(token.utf8)] = Int32(id)
            maxId = max(maxId, id)
        }
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = idByText[ByteLevelAlphabet.encodedText([UInt8(b)])] { byteIds[b] = id }
        }
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(file.model.merges.count)
        for (rank, pair) in file.model.merges.enumerated() {
            guard pair.count == 2 else { throw .malformedMerge(index: rank, found: "\(pair)") }
            let name = pair.joined(separator: " ")
            guard let a = idByText[Array(pair[0].utf8)] else { throw .mergeTokenNotInVocabulary(merge: name, token: pair[0]) }
            guard let b = idByText[Array(pair[1].utf8)] else { throw .mergeTokenNotInVocabulary(merge: name, token: pair[1]) }
            guard let merged = idByText[Array((pair[0] + pair[1]).utf8)] else {
                throw .mergeTokenNotInVocabulary(merge: name, token: pair[0] + pair[1])
            }
            let key = BytePairModel.pairKey(a, b)
            // tokenizers builds its merge map by inserting in order, so a repeated pair keeps its last rank.
            merges[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        }
        model = BytePairModel(byteIds: byteIds, merges: merges,
                              wholeWordIds: file.model.ignore_merges == true ? idByText : nil)

        var raw: [(content: [UInt8], id: Int32)] = []
        var normalized: [(content: [UInt8], id: Int32)] = []
        var addedIds: [String: Int] = [:]
        var specialIds: Set<Int> = []
        var addedText: [Int: String] = [:]
        var seenContents: Set<[UInt8]> = []
        var largestAdded: Int?
        for token in file.added_tokens ?? [] {
            if token.lstrip == true { throw .unsupportedAddedTokenFlag(token: token.content, flag: "lstrip") }
            if token.rstrip == true { throw .unsupportedAddedTokenFlag(token: token.content, flag: "rstrip") }
            if token.single_word == true { throw .unsupportedAddedTokenFlag(token: token.content, flag: "single_word") }
            // tokenizers ignores empty and repeated added tokens.
            if token.content.isEmpty || !seenContents.insert(Array(token.content.utf8)).inserted { continue }
            // tokenizers does not trust the ids written in added_tokens: on loading it re-adds each token, taking
            // its vocabulary id if it has one, else the next id after the vocabulary and the tokens added so far.
            let id: Int
            if let known = idByText[Array(token.content.utf8)] {
                id = Int(known)
            } else if let largest = largestAdded {
                let vocabCount = file.model.vocab.count
                id = largest >= vocabCount || vocabCount == 0 ? largest + 1 : vocabCount
            } else {
                id = file.model.vocab.count
            }
            guard id < Self.maximumId else {
                throw .malformedJSON("added token \(token.content) gets id \(id), outside 0..<\(Self.maximumId)")
            }
            // tokenizers' default: special tokens are not normalized, others are.
            let isNormalized = token.normalized ?? (token.special != true)
            if isNormalized {
                let content = normalizesNFC ? CanonicalComposition.nfc(token.content) : token.content
                normalized.append((Array(content.utf8), Int32(id)))
            } else {
                raw.append((Array(token.content.utf8), Int32(id)))
            }
            addedIds[token.content] = id
            largestAdded = max(largestAdded ?? id, id)
            addedText[id] = token.content
            if token.special == true { specialIds.insert(id) }
            maxId = max(maxId, id)
        }
        rawAddedTokens = AddedTokenMatcher(raw)
        normalizedAddedTokens = AddedTokenMatcher(normalized)
        addedTokenIds = addedIds

        vocabularySize = maxId + 1
        var decoded = [[UInt8]](repeating: [], count: vocabularySize)
        var present = [Bool](repeating: false, count: vocabularySize)
        for (token, id) in file.model.vocab {
            decoded[id] = ByteLevelAlphabet.decodedBytes(token)
            present[id] = true
        }
        // Added tokens come first in tokenizers' id → token lookup.
        for (id, content) in addedText {
            decoded[id] = ByteLevelAlphabet.decodedBytes(content)
            present[id] = true
        }
        decodedBytes = decoded
        exists = present
        isSpecial = (0..<vocabularySize).map { specialIds.contains($0) }
    }

    /// Id of an added token (e.g. `<|im_start|>`), or nil.
    public func addedTokenId(_ content: String) -> Int? { addedTokenIds[content] }

    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        Array(text.utf8).withUnsafeBufferPointer { all in
            var start = 0
            while start < all.count {
                let match = rawAddedTokens.nextMatch(in: all, from: start)
                let end = match?.range.lowerBound ?? all.count
                if end > start { encodeNormalizing(UnsafeBufferPointer(rebasing: all[start..<end]), into: &ids) }
                guard let match else { break }
                ids.append(Int(match.id))
                start = match.range.upperBound
            }
        }
        return ids
    }

    private func encodeNormalizing(_ piece: UnsafeBufferPointer<UInt8>, into ids: inout [Int]) {
        var text = String(decoding: piece, as: UTF8.self)
        if normalizesNFC { text = CanonicalComposition.nfc(text) }
        Array(text.utf8).withUnsafeBufferPointer { all in
            var start = 0
            while start < all.count {
                let match = normalizedAddedTokens.isEmpty ? nil : normalizedAddedTokens.nextMatch(in: all, from: start)
                let end = match?.range.lowerBound ?? all.count
                if end > start { encodeSplitting(UnsafeBufferPointer(rebasing: all[start..<end]), into: &ids) }
                guard let match else { break }
                ids.append(Int(match.id))
                start = match.range.upperBound
            }
        }
    }

    /// Regex split, then BPE on each piece's bytes.
    private func encodeSplitting(_ utf8: UnsafeBufferPointer<UInt8>, into ids: inout [Int]) {
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []  // byte offset of each scalar, plus the end
        scalars.reserveCapacity(utf8.count)
        offsets.reserveCapacity(utf8.count + 1)
        var iterator = utf8.makeIterator()
        var decoder = UTF8()
        var offset = 0
        loop: while true {
            switch decoder.decode(&iterator) {
            case let .scalarValue(s):
                scalars.append(s)
                offsets.append(offset)
                offset += UTF8.width(s)
            case .emptyInput: break loop
            case .error: break loop  // unreachable: the bytes came from a String
            }
        }
        offsets.append(offset)
        let bytes = Array(utf8)
        var start = 0
        for end in splitPattern.pieceEnds(scalars) {
            model.encodeWord(bytes[offsets[start]..<offsets[end]], into: &ids)
            start = end
        }
    }

    /// Text of `ids` as tokenizers' `decode` gives it: ByteLevel decoder, invalid UTF-8 replaced by U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, id < vocabularySize, exists[id] else { throw .unknownTokenId(id) }
            if skipSpecialTokens && isSpecial[id] { continue }
            bytes.append(contentsOf: decodedBytes[id])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: tokenizer.json sections

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case let .keyNotFound(key, context): return "missing \"\(key.stringValue)\" at \(path(context.codingPath))"
        case let .typeMismatch(type, context): return "expected \(type) at \(path(context.codingPath))"
        case let .valueNotFound(type, context): return "expected \(type), found null at \(path(context.codingPath))"
        case let .dataCorrupted(context):
            return "\(context.debugDescription) at \(path(context.codingPath))"
        @unknown default: return String(describing: error)
        }
    }

    private static func readNormalizer(_ value: JSONValue?) throws(TokenizerError) -> Bool {
        guard let value, value != .null else { return false }
        switch value["type"]?.string {
        case "NFC": return true
        case "Sequence":
            guard case let .array(parts)? = value["normalizers"] else {
                throw .unsupported(component: "normalizer", found: value.description)
            }
            var nfc = false
            for part in parts { nfc = try readNormalizer(part) || nfc }
            return nfc
        default:
            throw .unsupported(component: "normalizer (expected NFC, Sequence of NFC, or null)", found: value.description)
        }
    }

    private static func readPreTokenizer(_ value: JSONValue?) throws(TokenizerError) -> QwenSplitPattern {
        let expected = "pre_tokenizer (expected Sequence [Split regex Isolated, ByteLevel add_prefix_space=false use_regex=false])"
        guard let value, value["type"]?.string == "Sequence", case let .array(parts)? = value["pretokenizers"],
              parts.count == 2, parts[0]["type"]?.string == "Split", parts[1]["type"]?.string == "ByteLevel"
        else { throw .unsupported(component: expected, found: value?.description ?? "null") }
        let split = parts[0], byteLevel = parts[1]
        guard split["behavior"]?.string == "Isolated", split["invert"]?.bool != true else {
            throw .unsupported(component: expected, found: split.description)
        }
        guard byteLevel["add_prefix_space"]?.bool != true, byteLevel["use_regex"]?.bool == false else {
            throw .unsupported(component: expected, found: byteLevel.description)
        }
        guard let regex = split["pattern"]?["Regex"]?.string else {
            throw .unsupported(component: "Split pattern (expected a Regex)", found: split["pattern"]?.description ?? "null")
        }
        guard let pattern = QwenSplitPattern(regex: regex) else { throw .unrecognizedSplitRegex(regex) }
        return pattern
    }

    private static func checkDecoderAndPostProcessor(_ file: TokenizerFile) throws(TokenizerError) {
        guard file.decoder?["type"]?.string == "ByteLevel" else {
            throw .unsupported(component: "decoder (expected ByteLevel)", found: file.decoder?.description ?? "null")
        }
        // ByteLevel post-processing only trims offsets; ids are unchanged. Templates would add ids: refused.
        if let post = file.post_processor, post != .null, post["type"]?.string != "ByteLevel" {
            throw .unsupported(component: "post_processor (expected ByteLevel or null)", found: post.description)
        }
    }

    private static func checkModel(_ model: TokenizerFile.Model) throws(TokenizerError) {
        if let type = model.type, type != "BPE" { throw .unsupported(component: "model type (expected BPE)", found: type) }
        if let dropout = model.dropout, dropout != 0 {
            throw .unsupported(component: "BPE dropout (expected null)", found: "\(dropout)")
        }
        if model.byte_fallback == true { throw .unsupported(component: "BPE byte_fallback (expected false)", found: "true") }
        if let p = model.continuing_subword_prefix, !p.isEmpty {
            throw .unsupported(component: "BPE continuing_subword_prefix (expected none)", found: p)
        }
        if let s = model.end_of_word_suffix, !s.isEmpty {
            throw .unsupported(component: "BPE end_of_word_suffix (expected none)", found: s)
        }
    }
}
