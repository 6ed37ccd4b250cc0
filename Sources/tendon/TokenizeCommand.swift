import ArgumentParser
import Foundation
import TendonModel

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of text, as Hugging Face tokenizers would give them.",
        discussion: """
        Reads a Qwen-style byte-level BPE tokenizer.json (Qwen2 or Qwen3.5 split regex). Prints one JSON \
        array of ids per text: the --text value, or each line of --jsonl, which holds either {"text": ...} \
        objects or JSON strings (blank lines are skipped; "-" reads standard input). Added tokens such as \
        <|im_start|> are recognised in the text; no tokens are added around it.
        """)

    @Option(help: "tokenizer.json (Hugging Face format).") var tokenizer: String
    @Option(help: "Text to tokenize.") var text: String?
    @Option(help: "File of JSON lines, {\"text\": ...} or a JSON string each; \"-\" for standard input.") var jsonl: String?

    func run() throws {
        if (text == nil) == (jsonl == nil) { fail("tokenize: give exactly one of --text or --jsonl", code: 64) }
        let tok: Tokenizer
        do { tok = try Tokenizer(contentsOf: URL(fileURLWithPath: tokenizer)) } catch { fail(error.description, code: 2) }
        if let text {
            print(Self.jsonArray(tok.encode(text)))
            return
        }
        guard let jsonl else { return }
        let data: Data
        if jsonl == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            do { data = try Data(contentsOf: URL(fileURLWithPath: jsonl)) } catch {
                fail("cannot read --jsonl \(jsonl): \(error.localizedDescription)", code: 2)
            }
        }
        var out = ""
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard let item = try? JSONDecoder().decode(JSONLine.self, from: Data(line)) else {
                fail("--jsonl \(jsonl) line \(lineNumber): expected {\"text\": \"...\"} or a JSON string", code: 2)
            }
            out += Self.jsonArray(tok.encode(item.text))
            out += "\n"
            if out.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    static func jsonArray(_ ids: [Int]) -> String { "[" + ids.map(String.init).joined(separator: ",") + "]" }
}

/// One --jsonl line: an object with "text", or a bare JSON string.
private struct JSONLine: Decodable {
    var text: String
    private enum CodingKeys: String, CodingKey { case text }

    init(from decoder: any Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self) {
            text = s
        } else {
            text = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .text)
        }
    }
}
