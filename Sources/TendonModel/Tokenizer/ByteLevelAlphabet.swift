/// GPT-2's `bytes_to_unicode`: every byte gets a printable character so BPE tokens are readable strings.
/// Printable Latin-1 bytes stand for themselves; the other 68 take U+0100 onwards, in byte order.
enum ByteLevelAlphabet {
    /// Scalar value standing for each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte a scalar stands for, or nil when the scalar is not in the alphabet.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 256 { return scalarForByte[Int(v)] == v ? UInt8(v) : nil }
        return byteForHighScalar[v]
    }

    private static let byteForHighScalar: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for byte in 0..<256 where scalarForByte[byte] >= 256 { map[scalarForByte[byte]] = UInt8(byte) }
        return map
    }()

    /// UTF-8 of the byte-level text standing for `bytes` (what vocabulary keys are written in).
    static func encodedText(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        for b in bytes {
            let v = scalarForByte[Int(b)]
            if v < 0x80 {
                out.append(UInt8(v))
            } else {  // all alphabet scalars are below U+0800: two bytes
                out.append(UInt8(0xC0 | (v >> 6)))
                out.append(UInt8(0x80 | (v & 0x3F)))
            }
        }
        return out
    }

    /// The bytes a token string stands for, as tokenizers' ByteLevel decoder does: when any character is
    /// outside the alphabet (e.g. an added token written in plain text) the token's own UTF-8 is used.
    static func decodedBytes(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        for scalar in token.unicodeScalars {
            guard let b = byte(for: scalar) else { return Array(token.utf8) }
            out.append(b)
        }
        return out
    }
}
