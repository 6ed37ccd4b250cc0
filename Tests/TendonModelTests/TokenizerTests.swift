import Foundation
import Testing
@testable import TendonModel

/// Ids recorded from HF tokenizers 0.23.3 by Tools/reference/tokenizer_fixtures.py.
private struct Expected: Decodable {
    struct Encoding: Decodable {
        var ids: [Int]
        var decoded: String
        var decoded_skip_special: String
    }
    struct PartialDecode: Decodable {
        var ids: [Int]
        var decoded: String
    }
    struct Fuzz: Decodable {
        var text: String
        var piece_ends: [Int]
        var ids: [Int]
    }
    struct PerTokenizer: Decodable {
        var regex: String
        var encodings: [Encoding]
        var partial_decodes: [PartialDecode]
        var fuzz: [Fuzz]
    }
    var cases: [String]
    var tokenizers: [String: PerTokenizer]
}

private let tokenizerFixtures = fixturesDirectory.appendingPathComponent("tokenizer")

private func loadExpected() throws -> Expected {
    try JSONDecoder().decode(Expected.self, from: Data(contentsOf: tokenizerFixtures.appendingPathComponent("expected_ids.json")))
}

private func loadTokenizer(_ file: String) throws -> Tokenizer {
    try Tokenizer(contentsOf: tokenizerFixtures.appendingPathComponent(file))
}

private let tokenizerFiles: [(name: String, file: String)] = [
    ("qwen2", "qwen2_merges_pairs.json"), ("qwen2", "qwen2_merges_strings.json"),
    ("qwen3_5", "qwen3_5_merges_pairs.json"), ("qwen3_5", "qwen3_5_merges_strings.json"),
]

@Suite struct TokenizerTests {
    @Test(arguments: tokenizerFiles.map(\.file))
    func encodesAsHuggingFaceTokenizers(file: String) throws {
        let expected = try loadExpected()
        let name = try #require(tokenizerFiles.first { $0.file == file }?.name)
        let reference = try #require(expected.tokenizers[name])
        let tokenizer = try loadTokenizer(file)
        #expect(tokenizer.splitPattern == (name == "qwen2" ? .qwen2 : .qwen3_5))
        #expect(tokenizer.splitPattern.regex == reference.regex)
        for (text, encoding) in zip(expected.cases, reference.encodings) {
            #expect(tokenizer.encode(text) == encoding.ids, "\(file): \(text.debugDescription)")
        }
        for fuzz in reference.fuzz {
            #expect(tokenizer.encode(fuzz.text) == fuzz.ids, "\(file): \(fuzz.text.debugDescription)")
        }
    }

    @Test(arguments: tokenizerFiles.map(\.file))
    func decodesAsHuggingFaceTokenizers(file: String) throws {
        let expected = try loadExpected()
        let name = try #require(tokenizerFiles.first { $0.file == file }?.name)
        let reference = try #require(expected.tokenizers[name])
        let tokenizer = try loadTokenizer(file)
        for (text, encoding) in zip(expected.cases, reference.encodings) {
            let decoded = try tokenizer.decode(encoding.ids)
            #expect(decoded.utf8.elementsEqual(encoding.decoded.utf8), "\(text.debugDescription)")
            let skipped = try tokenizer.decode(encoding.ids, skipSpecialTokens: true)
            #expect(skipped.utf8.elementsEqual(encoding.decoded_skip_special.utf8), "\(text.debugDescription)")
            // Round trip: the text comes back as its NFC form. Not for the `normalized` added token "café!":
            // its é is a byte-level alphabet character, so tokenizers' decoder turns it into byte 0xE9 (U+FFFD).
            if text.contains("caf\u{E9}!") { continue }
            let nfc = text.precomposedStringWithCanonicalMapping
            #expect(decoded.utf8.elementsEqual(nfc.utf8), "round trip of \(text.debugDescription)")
        }
        for partial in reference.partial_decodes {
            #expect(try tokenizer.decode(partial.ids).utf8.elementsEqual(partial.decoded.utf8), "\(partial.ids)")
        }
    }

    /// The scanner alone against Oniguruma's matches, on random strings over the characters its branches test.
    @Test(arguments: ["qwen2", "qwen3_5"])
    func splitsAsTheRegex(name: String) throws {
        let reference = try #require(try loadExpected().tokenizers[name])
        let pattern = try #require(QwenSplitPattern(regex: reference.regex))
        for fuzz in reference.fuzz {
            #expect(pattern.pieceEnds(Array(fuzz.text.unicodeScalars)) == fuzz.piece_ends, "\(fuzz.text.debugDescription)")
        }
    }

    /// Unicode general categories and White_Space give Oniguruma's \p{L}, \p{N}, \p{M} and \s on every code point.
    @Test func characterClassesMatchTheRegexEngine() throws {
        struct Classes: Decodable { var classes: [String: [[UInt32]]] }
        let data = try Data(contentsOf: tokenizerFixtures.appendingPathComponent("regex_classes.json"))
        let classes = try JSONDecoder().decode(Classes.self, from: data).classes
        let bits: [String: UInt8] = ["whitespace": ScalarClass.whitespace, "letter": ScalarClass.letter,
                                     "number": ScalarClass.number, "mark": ScalarClass.mark]
        for (name, bit) in bits {
            let ranges = try #require(classes[name])
            var member = [Bool](repeating: false, count: 0x110000)
            for r in ranges where r.count == 2 { for v in r[0]...r[1] { member[Int(v)] = true } }
            var mismatches: [String] = []
            for v in UInt32(0)..<0x110000 {
                guard let scalar = Unicode.Scalar(v) else { continue }
                if (ScalarClass.of(scalar) & bit != 0) != member[Int(v)] { mismatches.append(String(v, radix: 16)) }
            }
            #expect(mismatches.isEmpty, "\(name): \(mismatches.count) code points differ, e.g. \(mismatches.prefix(10))")
        }
    }

    @Test func refusesAnUnknownSplitRegex() throws {
        var doc = try String(contentsOf: tokenizerFixtures.appendingPathComponent("qwen2_merges_pairs.json"), encoding: .utf8)
        doc = doc.replacingOccurrences(of: #"|\\p{N}|"#, with: #"|\\p{N}{1,3}|"#)
        #expect {
            _ = try Tokenizer(jsonData: Data(doc.utf8))
        } throws: { error in
            guard case let .unrecognizedSplitRegex(regex)? = error as? TokenizerError else { return false }
            return regex.contains(#"\p{N}{1,3}"#)
        }
    }

    @Test func refusesBadMergesAndFlags() throws {
        let base = try String(contentsOf: tokenizerFixtures.appendingPathComponent("qwen2_merges_strings.json"), encoding: .utf8)
        let badMerge = base.replacingOccurrences(of: #""merges": ["#, with: #""merges": ["Ġ Ġ Ġ", "#)
        #expect(throws: TokenizerError.malformedMerge(index: 0, found: "\"Ġ Ġ Ġ\"")) {
            _ = try Tokenizer(jsonData: Data(badMerge.utf8))
        }
        let unknown = base.replacingOccurrences(of: #""merges": ["#, with: #""merges": ["Ġ zzzqqq", "#)
        #expect(throws: TokenizerError.mergeTokenNotInVocabulary(merge: "Ġ zzzqqq", token: "zzzqqq")) {
            _ = try Tokenizer(jsonData: Data(unknown.utf8))
        }
        let lstrip = base.replacingOccurrences(of: #""lstrip": false"#, with: #""lstrip": true"#)
        #expect(throws: TokenizerError.unsupportedAddedTokenFlag(token: "<|endoftext|>", flag: "lstrip")) {
            _ = try Tokenizer(jsonData: Data(lstrip.utf8))
        }
        #expect(throws: TokenizerError.malformedJSON("missing \"vocab\" at .model")) {
            _ = try Tokenizer(jsonData: Data(#"{"model": {"merges": []}, "decoder": {"type": "ByteLevel"}}"#.utf8))
        }
        let tokenizer = try Tokenizer(jsonData: Data(base.utf8))
        #expect(throws: TokenizerError.unknownTokenId(tokenizer.vocabularySize)) {
            _ = try tokenizer.decode([0, tokenizer.vocabularySize])
        }
        #expect(tokenizer.addedTokenId("<|im_start|>") != nil)
        #expect(tokenizer.addedTokenId("<|nope|>") == nil)
    }

    /// Throughput on a long text (reported, not asserted), checked against tokenizers' ids for it.
    @Test func longTextThroughput() throws {
        struct Long: Decodable { var text: String; var qwen3_5_ids: [Int] }
        let long = try JSONDecoder().decode(Long.self, from: Data(contentsOf: tokenizerFixtures.appendingPathComponent("long_text.json")))
        let tokenizer = try loadTokenizer("qwen3_5_merges_pairs.json")
        let clock = ContinuousClock()
        var ids: [Int] = []
        let cold = clock.measure { ids = tokenizer.encode(long.text) }
        #expect(ids == long.qwen3_5_ids)
        let warm = clock.measure { ids = tokenizer.encode(long.text) }
        func rate(_ d: Duration) -> Int {
            let s = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            return Int(Double(ids.count) / max(s, 1e-9))
        }
        print("tokenizer: \(ids.count) tokens, \(long.text.utf8.count) bytes; cold \(cold) (\(rate(cold)) tokens/s), warm cache \(warm) (\(rate(warm)) tokens/s)")
    }
}

@Suite struct BytePairModelTests {
    /// Merges added at random ranks, some building a token another merge builds too: ids then depend on
    /// tokenizers' heap order and stale-entry rule.
    @Test func stressMergesMatchHuggingFaceTokenizers() throws {
        let stress = try loadStress()
        let tokenizer = try loadTokenizer("stress_merges.json")
        #expect(stress.texts.count == stress.ids.count && !stress.texts.isEmpty)
        for (text, ids) in zip(stress.texts, stress.ids) {
            #expect(tokenizer.encode(text) == ids, "\(text.debugDescription)")
        }
    }

    /// `ignore_merges`: the same tokenizer with whole words added to the vocabulary takes them whole.
    @Test func ignoreMergesTakesVocabularyWordsWhole() throws {
        let stress = try loadStress()
        let tokenizer = try loadTokenizer("stress_ignore_merges.json")
        #expect(zip(stress.ids, stress.ids_ignore_merges).contains { $0 != $1 })  // the flag matters here
        for (text, ids) in zip(stress.texts, stress.ids_ignore_merges) {
            #expect(tokenizer.encode(text) == ids, "\(text.debugDescription)")
        }
    }

    private struct Stress: Decodable { var texts: [String]; var ids: [[Int]]; var ids_ignore_merges: [[Int]] }

    private func loadStress() throws -> Stress {
        struct File: Decodable { var stress: Stress }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: tokenizerFixtures.appendingPathComponent("expected_ids.json"))).stress
    }

    /// The heap-based merge loop against the textbook one (repeatedly merge the lowest-ranked pair, leftmost
    /// first), which agree whenever no two merges build the same token, as in a trained vocabulary.
    @Test func heapMergeMatchesTheSimpleLoop() throws {
        let model = try loadTokenizer("qwen3_5_merges_pairs.json").model
        func simple(_ word: [UInt8]) -> [Int32] {
            var ids = word.map { model.byteIds[Int($0)] }.filter { $0 >= 0 }
            while ids.count > 1 {
                var best: (rank: UInt64, at: Int, id: Int32)?
                for i in 0..<(ids.count - 1) {
                    if let m = model.merges[BytePairModel.pairKey(ids[i], ids[i + 1])], best.map({ m >> 32 < $0.rank }) ?? true {
                        best = (m >> 32, i, Int32(truncatingIfNeeded: m))
                    }
                }
                guard let best else { break }
                ids.replaceSubrange(best.at...(best.at + 1), with: [best.id])
            }
            return ids
        }
        var rng = SystemRandomNumberGenerator()
        let seeds = ["the robot arm", "机器人抓取", "    ", "====----", "ประเทศไทย", "👨‍👩‍👧‍👦", "aaaaaaaaaaaa", "I'm"]
        var checked = 0
        for _ in 0..<2000 {
            var word: [UInt8] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                if Bool.random(using: &rng) {
                    word += Array(seeds[Int.random(in: seeds.indices, using: &rng)].utf8)
                } else {
                    word.append(UInt8.random(in: 0...255, using: &rng))
                }
            }
            let expected = simple(word)
            #expect(model.merge(word[...]) == expected, "\(word)")
            checked += 1
        }
        #expect(checked == 2000)
    }
}

@Suite struct CanonicalCompositionTests {
    /// NFC as tokenizers' own (Unicode 9.0) normalizer gives it: every combining mark's reordering, every
    /// canonical composition, later-version composites and random mark stacks.
    @Test func composesAsTokenizersNormalizer() throws {
        let data = try Data(contentsOf: tokenizerFixtures.appendingPathComponent("nfc_probes.json"))
        let probes = try JSONDecoder().decode([[String]].self, from: data)
        #expect(probes.count > 1000)
        var plainFoundationDiffers = 0
        for probe in probes where probe.count == 2 {
            let got = CanonicalComposition.nfc(probe[0])
            #expect(got.utf8.elementsEqual(probe[1].utf8),
                    "\(probe[0].unicodeScalars.map { String($0.value, radix: 16) }) → \(got.unicodeScalars.map { String($0.value, radix: 16) })")
            if !probe[0].precomposedStringWithCanonicalMapping.utf8.elementsEqual(probe[1].utf8) { plainFoundationDiffers += 1 }
        }
        // Foundation's newer Unicode data alone would not do: the probes tell the two apart.
        #expect(plainFoundationDiffers > 0)
    }
}
