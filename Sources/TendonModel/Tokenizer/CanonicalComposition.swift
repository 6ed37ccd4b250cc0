import Foundation

/// NFC as tokenizers 0.23.3 computes it. Its normalization data (unicode-normalization-alignments) is Unicode
/// 9.0: characters assigned later have, to it, combining class 0 and no decomposition, so each one stands
/// alone and blocks reordering and composition across it. Normalization is stable across Unicode versions for
/// text of characters that existed in 9.0, so Foundation's newer NFC agrees on the runs between such characters.
enum CanonicalComposition {
    static let engineUnicodeVersion = (major: 9, minor: 0)

    static func nfc(_ text: String) -> String {
        // Scalars below U+0300 are NFC and never compose with a neighbour.
        if !text.utf8.contains(where: { $0 >= 0xCC }) { return text }
        let scalars = text.unicodeScalars
        guard scalars.contains(where: isUnknownToEngine) else { return text.precomposedStringWithCanonicalMapping }
        var out = ""
        var run = String.UnicodeScalarView()
        for s in scalars {
            if isUnknownToEngine(s) {
                out += String(run).precomposedStringWithCanonicalMapping
                run = String.UnicodeScalarView()
                out.unicodeScalars.append(s)
            } else {
                run.append(s)
            }
        }
        out += String(run).precomposedStringWithCanonicalMapping
        return out
    }

    @inline(__always) static func isUnknownToEngine(_ s: Unicode.Scalar) -> Bool {
        ScalarClass.of(s) & ScalarClass.newerThanNormalizer != 0
    }
}
