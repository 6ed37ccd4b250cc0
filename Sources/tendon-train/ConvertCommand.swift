import ArgumentParser
import Foundation
import TendonModel
import TendonTraining

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face folder into the on-board GGUF file.",
        discussion: """
        Reads config.json, tokenizer.json and model.safetensors (or shards with model.safetensors.index.json). \
        2-D weights take --quant when their rows fill whole blocks (32 values for q8_0/q4_0, 256 for q4_k), \
        else F16; 1-D tensors stay F32. Tensor names and shapes are kept. config.json and tokenizer.json go \
        into the metadata as tendon.config_json and tokenizer.huggingface.json. The output appears only when \
        complete (written as FILE.partial, then renamed).
        """)

    @Option(help: "Hugging Face model folder.") var hf: String
    @Option(help: "Output GGUF file.") var out: String
    @Option(help: "Weight type: \(ConvertQuantization.allCases.map(\.rawValue).joined(separator: "|")).")
    var quant: String

    func validate() throws {
        guard ConvertQuantization(rawValue: quant) != nil else {
            throw ValidationError("--quant must be one of \(ConvertQuantization.allCases.map(\.rawValue).joined(separator: ", ")); found '\(quant)'")
        }
    }

    func run() throws {
        let quantization = ConvertQuantization(rawValue: quant)!
        let terminal = isatty(STDOUT_FILENO) == 1
        let started = Date()
        let summary: ConversionSummary
        do {
            summary = try HFToGGUFConverter.convert(hfDirectory: hf, output: out, quantization: quantization) { step in
                FileHandle.standardOutput.write(Data((Self.render(step, terminal: terminal) + (terminal ? "" : "\n")).utf8))
            }
        } catch {
            if terminal { print("") }
            fail(error.description)
        }
        if terminal { print("") }
        var counts: [String: Int] = [:]
        for tensor in summary.tensors { counts[tensor.target.description, default: 0] += 1 }
        let types = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print(String(format: "wrote %@: %d tensors (%@), %.1f MB in %.1f s", summary.path, summary.tensors.count, types,
                     Double(summary.fileBytes) / 1e6, Date().timeIntervalSince(started)))
    }

    /// A redrawn bar on a terminal; one plain line per tensor otherwise (logs, CI).
    static func render(_ step: ConversionProgress, terminal: Bool) -> String {
        let what = "\(step.tensor.name) \(step.tensor.source)→\(step.tensor.target) \(step.tensor.shape)"
        guard terminal else { return "[\(step.index)/\(step.count)] \(what)" }
        let width = 30
        let fraction = step.totalBytes > 0 ? Double(step.bytesWritten) / Double(step.totalBytes) : 1
        let filled = min(width, Int(fraction * Double(width)))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let name = what.count > 60 ? String(what.prefix(57)) + "..." : what
        return "\r\u{1B}[2K\(bar) \(Int(fraction * 100))% [\(step.index)/\(step.count)] \(name)"
    }
}
