import ArgumentParser
import Foundation
import TendonModel
import TendonTensor
import TendonTraining

/// `tendon bench forward`: prefill tokens/s of the Qwen3.5 backbone, next to PyTorch (transformers, CPU, f32)
/// on the same random ~50M-parameter checkpoint when the reference environment is present.
struct ForwardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Prefill tokens/s of the Qwen3.5 backbone vs PyTorch on the same ~50M-parameter checkpoint.",
        discussion: """
        Without --model, runs Tools/reference/qwen35_bench.py with --python: it writes a random checkpoint, \
        times transformers' prefill (best of --repeat, --threads torch threads) and hands the checkpoint and ids \
        to this side, which times the same prefill with the same thread count. With --model, times that \
        checkpoint alone on random ids.
        """)

    @Option(help: "Checkpoint to time instead of the generated one (folder, .safetensors or .gguf).") var model: String?
    @Option(help: "Prompt length (tokens).") var tokens: Int = 256
    @Option(help: "Timed repetitions (best is reported).") var `repeat`: Int = 3
    @Option(help: "Threads for both sides.") var threads: Int = 2
    @Option(help: "Python of the reference environment.") var python: String = "/opt/tendon-ref/bin/python"
    @Option(help: "The reference bench script.") var script: String = "Tools/reference/qwen35_bench.py"
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Also time the checkpoint converted to these GGUF types (comma-separated; empty for none).")
    var quant: String = "q8_0,q4_0,q4_k,q5_k"

    struct TorchResult: Decodable {
        var params: Int
        var tokens: Int
        var threads: Int
        var torch_seconds: Double
        var torch_tokens_per_s: Double
        var ids: [Int]
    }

    func run() throws {
        guard tokens > 0, `repeat` > 0, threads > 0 else { fail("--tokens, --repeat and --threads must be positive", code: 2) }
        var torch: TorchResult?
        var path = model
        var scratch: String?
        if path == nil {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-bench-\(getpid())").path
            scratch = dir
            torch = runReference(out: dir)
            path = dir
        }
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        guard let path else { fail("no checkpoint to time") }
        let pool = ThreadPool(threads: threads)
        let (ids, best, rssAfterLoad, rssAfterRun, decodeStep) = time(path: path, pool: pool, ids: torch?.ids)
        var variants: [(name: String, seconds: Double, rss: Int, rssRun: Int, decode: Double)] = [("tendon f32", best, rssAfterLoad, rssAfterRun, decodeStep)]
        if model == nil {
            for name in quant.split(separator: ",").map(String.init) where !name.isEmpty {
                guard let q = ConvertQuantization(rawValue: name) else { fail("--quant: unknown type \(name)") }
                let file = (scratch ?? NSTemporaryDirectory()) + "/bench-\(name).gguf"
                do {
                    _ = try HFToGGUFConverter.convert(hfDirectory: path, output: file, quantization: q, requireTokenizer: false)
                } catch { fail(error.description) }
                let (_, seconds, rss, rssRun, decode) = time(path: file, pool: pool, ids: ids)
                variants.append(("tendon \(name)", seconds, rss, rssRun, decode))
            }
        }
        let ours = Double(ids.count) / best
        if json {
            var object: [String: Any] = ["tokens": ids.count, "threads": threads, "tendon_seconds": best,
                                         "tendon_tokens_per_s": ours, "blas_core": BLASInfo.coreName,
                                         "peak_rss_mb": Double(Self.peakRSSKilobytes()) / 1024,
                                         "variants": variants.map { ["name": $0.name, "seconds": $0.seconds,
                                                                     "tokens_per_s": Double(ids.count) / $0.seconds,
                                                                     "rss_mb": Double($0.rss) / 1024,
                                                                     "rss_after_prefill_mb": Double($0.rssRun) / 1024,
                                                                     "decode_tokens_per_s": 1 / $0.decode] }]
            if let torch { object["torch_seconds"] = torch.torch_seconds; object["torch_tokens_per_s"] = torch.torch_tokens_per_s; object["params"] = torch.params }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("Qwen3.5 prefill, \(ids.count) tokens, \(threads) threads, best of \(`repeat`)"
              + (torch.map { ", \(String(format: "%.1f", Double($0.params) / 1e6))M parameters f32" } ?? "")
              + ", OpenBLAS core \(BLASInfo.coreName)\(BLASInfo.isGenericCore ? " (generic kernel: set OPENBLAS_CORETYPE)" : "")")
        print("implementation               seconds   tokens/s   vs pytorch   RSS (MB) after load, after prefill   decode tok/s")
        func row(_ name: String, _ seconds: Double, _ rate: Double, _ rss: Int?, _ rssRun: Int? = nil, _ decode: Double? = nil) -> String {
            name.padding(toLength: 27, withPad: " ", startingAt: 0) + String(format: " %8.3f  %9.1f", seconds, rate)
                + (torch.map { String(format: "   %8.2f×", rate / $0.torch_tokens_per_s) } ?? "")
                + (rss.map { String(format: "   %8.0f", Double($0) / 1024) } ?? "")
                + (rssRun.map { String(format: "   %8.0f", Double($0) / 1024) } ?? "")
                + (decode.map { String(format: "   %9.1f", 1 / $0) } ?? "")
        }
        if let torch { print(row("pytorch f32 (transformers)", torch.torch_seconds, torch.torch_tokens_per_s, nil)) }
        for v in variants { print(row(v.name, v.seconds, Double(ids.count) / v.seconds, v.rss, v.rssRun, v.decode)) }
        print(String(format: "peak RSS of this process: %.0f MB", Double(Self.peakRSSKilobytes()) / 1024))
        if torch == nil && model == nil {
            print("pytorch: not measured")
        }
    }

    /// Loads `path` and returns the ids used and the best prefill time of `repeat` runs, plus the RSS after loading
    /// and after the runs (which includes weights repacked for the int8 prefill GEMM), and the best decode step.
    func time(path: String, pool: ThreadPool, ids given: [Int]?) -> ([Int], Double, Int, Int, Double) {
        let backbone: Qwen35TextModel
        do { backbone = try Qwen35TextModel(path: path, pool: pool) } catch { fail(error.description) }
        let rss = Self.currentRSSKilobytes()
        var rng = SystemRandomNumberGenerator()
        let ids = given ?? (0..<tokens).map { _ in Int.random(in: 0..<backbone.config.vocabSize, using: &rng) }
        var best = Double.infinity, decode = Double.infinity
        do {
            var warm = backbone.makeCache()
            _ = try backbone.logits(ids: Array(ids.prefix(8)), cache: &warm)
            var cache = backbone.makeCache()
            for _ in 0..<`repeat` {
                cache = backbone.makeCache()
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try backbone.logits(ids: ids, cache: &cache)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            // Decode after the prompt: one token per call (the T = 1 kernels), best step of 16.
            for step in 0..<16 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try backbone.logits(ids: [ids[step % ids.count]], cache: &cache)
                decode = min(decode, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
        } catch { fail(error.description) }
        return (ids, best, rss, Self.currentRSSKilobytes(), decode)
    }

    static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
    static func peakRSSKilobytes() -> Int { statusField("VmHWM") }
    static func currentRSSKilobytes() -> Int { statusField("VmRSS") }

    /// Runs the reference script; a missing environment or a failing script ends the command with one line.
    func runReference(out: String) -> TorchResult {
        runReferenceScript(python: python, script: script,
                           arguments: ["--out", out, "--tokens", "\(tokens)", "--repeat", "\(`repeat`)", "--threads", "\(threads)"],
                           pythonHint: "make reference-env, or pass --python or --model", label: script)
    }
}
