/// The pre-tokenizer Split regexes of Qwen's tokenizer.json, run by a hand-written scanner instead of a regex
/// engine. Each scanner returns exactly the matches Oniguruma (inside HF tokenizers) finds, alternative by
/// alternative in the regex's order, including the backtracking of `\s*[\r\n]+` and the `\s+(?!\S)` lookahead.
///
/// Character classes follow Oniguruma's Unicode data: `\s` is the White_Space property, `\p{L}`/`\p{N}`/`\p{M}`
/// the general categories L*/N*/M* (checked on every code point against tokenizers in the tests).
public enum QwenSplitPattern: Sendable, Equatable {
    /// transformers' tokenization_qwen2.py (Qwen2, Qwen2.5, Qwen3).
    case qwen2
    /// transformers' tokenization_qwen3_5.py: letter runs also take combining marks, and marks are not
    /// punctuation. `\p{N}` is still a single digit.
    case qwen3_5

    static let qwen2Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen3_5Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern a tokenizer.json regex names, or nil for a regex this scanner does not implement.
    public init?(regex: String) {
        // Compare code units: String == would accept a canonically equivalent, different regex.
        if regex.utf8.elementsEqual(Self.qwen2Regex.utf8) {
            self = .qwen2
        } else if regex.utf8.elementsEqual(Self.qwen3_5Regex.utf8) {
            self = .qwen3_5
        } else {
            return nil
        }
    }

    public var regex: String { self == .qwen2 ? Self.qwen2Regex : Self.qwen3_5Regex }

    /// Splits `scalars` into pieces (ends, exclusive, in order; the first piece starts at 0).
    func pieceEnds(_ scalars: [Unicode.Scalar]) -> [Int] {
        var classes = [UInt8](repeating: 0, count: scalars.count)
        for i in scalars.indices { classes[i] = ScalarClass.of(scalars[i]) }
        var ends: [Int] = []
        ends.reserveCapacity(scalars.count / 3 + 1)
        var i = 0
        while i < scalars.count {
            i = matchEnd(scalars, classes, from: i)
            ends.append(i)
        }
        return ends
    }

    /// End of the regex match starting at `i` (every Qwen alternative set covers every character, and none
    /// matches empty, so there is always a match of at least one scalar at `i`).
    func matchEnd(_ s: [Unicode.Scalar], _ cls: [UInt8], from i: Int) -> Int {
        let n = s.count
        let marksAreLetters = self == .qwen3_5
        @inline(__always) func isLetter(_ c: UInt8) -> Bool {
            c & ScalarClass.letter != 0 || (marksAreLetters && c & ScalarClass.mark != 0)
        }
        @inline(__always) func isPunct(_ c: UInt8) -> Bool {
            c & (ScalarClass.whitespace | ScalarClass.letter | ScalarClass.number) == 0
                && !(marksAreLetters && c & ScalarClass.mark != 0)
        }
        let c0 = cls[i]

        // (?i:'s|'t|'re|'ve|'m|'ll|'d) — Oniguruma's case folding also maps U+017F (long s) to s.
        if s[i] == "'" && i + 1 < n {
            switch s[i + 1].value {
            case 0x73, 0x53, 0x17F, 0x74, 0x54, 0x6D, 0x4D, 0x64, 0x44:
                return i + 2
            case 0x72, 0x52, 0x76, 0x56:
                if i + 2 < n, s[i + 2].value | 0x20 == 0x65 { return i + 3 }
            case 0x6C, 0x4C:
                if i + 2 < n, s[i + 2].value | 0x20 == 0x6C { return i + 3 }
            default: break
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+  (Qwen3.5: [\p{L}\p{M}]+)
        if isLetter(c0) {
            var j = i + 1
            while j < n && isLetter(cls[j]) { j += 1 }
            return j
        }
        if c0 & (ScalarClass.newline | ScalarClass.letter | ScalarClass.number) == 0, i + 1 < n, isLetter(cls[i + 1]) {
            var j = i + 2
            while j < n && isLetter(cls[j]) { j += 1 }
            return j
        }
        // \p{N}
        if c0 & ScalarClass.number != 0 { return i + 1 }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var j = i
        if s[i] == " ", i + 1 < n, isPunct(cls[i + 1]) {
            j = i + 1
        }
        if isPunct(cls[j]) {
            j += 1
            while j < n && isPunct(cls[j]) { j += 1 }
            while j < n && cls[j] & ScalarClass.newline != 0 { j += 1 }
            return j
        }
        // Only whitespace is left. `\s*[\r\n]+`: \s* backtracks to the run's last CR/LF.
        var runEnd = i
        var lastNewline = -1
        while runEnd < n && cls[runEnd] & ScalarClass.whitespace != 0 {
            if cls[runEnd] & ScalarClass.newline != 0 { lastNewline = runEnd }
            runEnd += 1
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        // `\s+(?!\S)`: the whole run at the end of text; otherwise all but the last whitespace, which then
        // leads the next piece. A single whitespace before a non-space falls through to `\s+`.
        if runEnd == n { return runEnd }
        if runEnd - i >= 2 { return runEnd - 1 }
        return runEnd
    }
}

/// Bit set of the regex classes a scalar belongs to.
enum ScalarClass {
    static let whitespace: UInt8 = 1
    static let letter: UInt8 = 2
    static let number: UInt8 = 4
    static let mark: UInt8 = 8
    static let newline: UInt8 = 16  // \r or \n
    /// Assigned after the Unicode version of tokenizers' normalizer (see CanonicalComposition).
    static let newerThanNormalizer: UInt8 = 32

    /// Classes of the Basic Multilingual Plane, computed once (~65k property lookups): per-scalar Unicode
    /// property queries dominated the split otherwise.
    private static let basicPlane: [UInt8] = (0..<0x10000).map { v in
        Unicode.Scalar(UInt32(v)).map(classify) ?? 0
    }

    @inline(__always) static func of(_ scalar: Unicode.Scalar) -> UInt8 {
        scalar.value < 0x10000 ? basicPlane[Int(scalar.value)] : classify(scalar)
    }

    /// Newest Unicode version whose assignments the regex engine knows (tokenizers 0.23.3's Oniguruma).
    /// Characters assigned later are unassigned (Cn) to it, so they must not be letters, numbers or marks here.
    static let regexUnicodeVersion = (major: 16, minor: 0)

    static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
        let props = scalar.properties
        var c: UInt8 = props.isWhitespace ? whitespace : 0
        if let age = props.age, (age.major, age.minor) > CanonicalComposition.engineUnicodeVersion { c |= newerThanNormalizer }
        if let age = props.age, (age.major, age.minor) > regexUnicodeVersion { return c }
        if scalar == "\r" || scalar == "\n" { c |= newline }
        switch props.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            c |= number
        case .nonspacingMark, .spacingMark, .enclosingMark:
            c |= mark
        default: break
        }
        return c
    }
}
