/// Why a tokenizer.json could not be used, or why ids could not be decoded. Each case names what was expected
/// and what was found, so the one-line message a command prints is enough to fix the file.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case malformedJSON(String)
    case unsupported(component: String, found: String)
    case unrecognizedSplitRegex(String)
    case mergeTokenNotInVocabulary(merge: String, token: String)
    case malformedMerge(index: Int, found: String)
    case unsupportedAddedTokenFlag(token: String, flag: String)
    case unknownTokenId(Int)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason): "cannot read tokenizer file \(path): \(reason)"
        case let .malformedJSON(reason): "tokenizer.json is malformed: \(reason)"
        case let .unsupported(component, found): "unsupported tokenizer \(component): \(found)"
        case let .unrecognizedSplitRegex(regex):
            "unrecognized pre-tokenizer Split regex (expected Qwen2's or Qwen3.5's): \(regex)"
        case let .mergeTokenNotInVocabulary(merge, token): "merge \"\(merge)\" uses \"\(token)\", which is not in the vocabulary"
        case let .malformedMerge(index, found): "merge #\(index) should be \"a b\" or [a, b], found \(found)"
        case let .unsupportedAddedTokenFlag(token, flag): "added token \(token) sets \(flag), which is not supported"
        case let .unknownTokenId(id): "token id \(id) is neither in the vocabulary nor an added token"
        }
    }
}
