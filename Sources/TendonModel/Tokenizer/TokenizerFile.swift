import Foundation

/// The parts of a Hugging Face tokenizer.json this tokenizer reads. Anything it would have to interpret
/// differently (another model type, normalizer, pre-tokenizer or regex) is refused with its name.
struct TokenizerFile: Decodable {
    struct AddedToken: Decodable {
        /// Written by tokenizers but not used when it loads (ids are reassigned, see Tokenizer.init).
        var id: Int?
        var content: String
        var single_word: Bool?
        var lstrip: Bool?
        var rstrip: Bool?
        var normalized: Bool?
        var special: Bool?
    }

    struct Model: Decodable {
        var type: String?
        var vocab: [String: Int]
        var merges: [[String]]
        var ignore_merges: Bool?
        var byte_fallback: Bool?
        var dropout: Double?
        var continuing_subword_prefix: String?
        var end_of_word_suffix: String?

        enum CodingKeys: String, CodingKey {
            case type, vocab, merges, ignore_merges, byte_fallback, dropout, continuing_subword_prefix, end_of_word_suffix
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type)
            vocab = try c.decode([String: Int].self, forKey: .vocab)
            ignore_merges = try c.decodeIfPresent(Bool.self, forKey: .ignore_merges)
            byte_fallback = try c.decodeIfPresent(Bool.self, forKey: .byte_fallback)
            dropout = try c.decodeIfPresent(Double.self, forKey: .dropout)
            continuing_subword_prefix = try c.decodeIfPresent(String.self, forKey: .continuing_subword_prefix)
            end_of_word_suffix = try c.decodeIfPresent(String.self, forKey: .end_of_word_suffix)
            // Older files write "a b"; tokenizers ≥ 0.20 writes [a, b]. Both are read.
            if let pairs = try? c.decode([[String]].self, forKey: .merges) {
                merges = pairs
            } else {
                let strings = try c.decode([String].self, forKey: .merges)
                merges = try strings.enumerated().map { index, line in
                    let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw TokenizerError.malformedMerge(index: index, found: "\"\(line)\"") }
                    return [String(parts[0]), String(parts[1])]
                }
            }
        }
    }

    var added_tokens: [AddedToken]?
    var normalizer: JSONValue?
    var pre_tokenizer: JSONValue?
    var post_processor: JSONValue?
    var decoder: JSONValue?
    var model: Model
}

/// Any JSON value, for the small pipeline sections whose shape varies by type.
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    var string: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    var bool: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    var description: String {
        switch self {
        case .null: "null"
        case let .bool(b): "\(b)"
        case let .number(n): "\(n)"
        case let .string(s): "\"\(s)\""
        case let .array(a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case let .object(o): "{" + o.keys.sorted().map { "\"\($0)\": \(o[$0]?.description ?? "")" }.joined(separator: ", ") + "}"
        }
    }
}
