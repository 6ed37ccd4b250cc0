import ArgumentParser
import Foundation
import Glibc
import TendonModel
import TendonTensor

/// `tendon bench act`: observation → chunk latency (median, p90) split into preprocessing, backbone and
/// expert; with --reference, PyTorch fp32 and ONNX Runtime fp32/int8 (expert only) on the same checkpoint,
/// inputs, noise and thread count, and each chunk's error against PyTorch's in normalized action units.
struct ActBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "act",
        abstract: "Observation → action chunk latency (preprocessing / backbone / expert), vs PyTorch and ONNX Runtime.",
        discussion: """
        Images are decoded once (a camera delivers decoded frames); each iteration preprocesses them, tokenizes \
        the prefix, runs the backbone once, computes the expert's context K/V once and runs the Euler steps. \
        --reference DIR (a Hugging Face folder of the same model, e.g. the one --model was converted from) runs \
        Tools/reference/qwen_vla_bench.py with the reference environment's python: PyTorch fp32 end to end, \
        ONNX Runtime fp32 and quantize_dynamic int8 for the expert, all with the context cached the same way. \
        Build the reference config with `qwen_vla_bench.py build --out DIR`.
        """)

    @Option(help: "Model folder or .gguf file to time.") var model: String
    @Option(help: "Embodiment tag.") var embodiment: String = "aloha"
    @Option(help: "Task instruction.") var instruction: String = "Pick up the red cube and place it in the bowl."
    @Option(help: "Camera image as NAME=FILE.") var image: [String] = []
    @Option(help: "Noise file (`noise` [H, K]); default: seed 0.") var noise: String?
    @Option(help: "Euler steps (default: the config's).") var steps: Int?
    @Option(help: "Timed iterations (after one warm-up).") var iterations: Int = 10
    @Option(help: "Threads (ours, torch and ORT alike).") var threads: Int = 2
    @Option(help: "Hugging Face folder of the same model for the PyTorch / ONNX Runtime comparison.") var reference: String?
    @Option(help: "Python of the reference environment.") var python: String = "/opt/tendon-ref/bin/python"
    @Option(help: "The reference bench script.") var script: String = "Tools/reference/qwen_vla_bench.py"
    @Flag(help: "Print JSON.") var json = false

    struct Stats: Codable { var median_ms: Double; var p90_ms: Double }

    static func stats(_ seconds: [Double]) -> Stats {
        let s = seconds.sorted()
        let p90 = s[min(s.count - 1, Int((0.9 * Double(s.count - 1)).rounded()))]
        let mid = s.count / 2
        let median = s.count % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
        return Stats(median_ms: median * 1000, p90_ms: p90 * 1000)
    }

    struct Reference: Decodable {
        struct Split: Decodable { var preprocessing: Stats; var backbone: Stats; var expert: Stats; var total: Stats }
        struct ORT: Decodable { var expert: Stats; var chunk_max_abs_err: Double }
        var tokens: Int
        var torch: Split
        var ort_fp32: ORT
        var ort_int8: ORT
    }

    func run() throws {
        guard iterations > 0, threads > 0 else { fail("--iterations and --threads must be positive", code: 2) }
        if let steps, steps <= 0 { fail("--steps must be a positive integer, found \(steps)", code: 2) }
        let images: [(name: String, file: String)]
        switch ActCommand.parseImages(image) {
        case .success(let parsed): images = parsed
        case .failure(let message): fail(message.text, code: 2)
        }
        var decoded: [String: RGBImage] = [:]
        for (name, file) in images {
            do { decoded[name] = try RGBImage.load(path: file) } catch { fail("--image \(name)=\(file): \(error.description)", code: 2) }
        }
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let vla: QwenVLA
        do { vla = try QwenVLA(path: model, pool: ThreadPool(threads: threads)) } catch { fail(error.description) }
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
        let e: Embodiment
        do { e = try vla.config.embodiment(embodiment) } catch { fail(error.description, code: 2) }
        var noiseValues: [Float]?
        if let noise {
            switch ActCommand.readNoise(noise, rows: e.chunkSize, columns: vla.config.actionExpert.actionDim) {
            case .success(let values): noiseValues = values
            case .failure(let message): fail(message.text, code: 2)
            }
        }
        var pre: [Double] = [], backbone: [Double] = [], expert: [Double] = [], total: [Double] = []
        var chunk: ActionChunk?
        do {
            for i in 0...iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                let c = try vla.act(embodiment: embodiment, instruction: instruction, images: decoded, noise: noiseValues,
                                    steps: steps)
                let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                chunk = c
                if i == 0 { continue }
                pre.append(c.timings.preprocessing); backbone.append(c.timings.backbone)
                expert.append(c.timings.expert); total.append(wall)
            }
        } catch { fail(error.description, code: 2) }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakRSSMB = Double(usage.ru_maxrss) / 1024

        var ref: Reference?
        var errorVsTorch: Double?
        if let reference {
            let chunkFile = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-act-bench-\(getpid()).safetensors").path
            defer { try? FileManager.default.removeItem(atPath: chunkFile) }
            ref = runReference(reference, chunkOut: chunkFile)
            if let chunk, let torchChunk = try? SafetensorsCheckpoint(path: chunkFile).tensor("actions_normalized").toArray(),
               torchChunk.count == chunk.normalized.count {
                errorVsTorch = Double(zip(chunk.normalized, torchChunk).map { abs($0 - $1) }.max() ?? 0)
            }
        }

        let ours = (preprocessing: Self.stats(pre), backbone: Self.stats(backbone), expert: Self.stats(expert), total: Self.stats(total))
        if json {
            var object: [String: Any] = [
                "median_ms": ours.total.median_ms, "p90_ms": ours.total.p90_ms,
                "preprocessing_median_ms": ours.preprocessing.median_ms, "backbone_median_ms": ours.backbone.median_ms,
                "expert_median_ms": ours.expert.median_ms, "expert_p90_ms": ours.expert.p90_ms,
                "iterations": iterations, "threads": threads, "steps": steps ?? vla.config.actionExpert.numInferenceSteps,
                "peak_rss_mb": peakRSSMB, "load_seconds": loadSeconds, "model": model, "blas_core": BLASInfo.coreName,
            ]
            if let errorVsTorch { object["chunk_max_abs_err_vs_torch"] = errorVsTorch }
            if let ref {
                object["torch_median_ms"] = ref.torch.total.median_ms
                object["torch_p90_ms"] = ref.torch.total.p90_ms
                object["torch_preprocessing_median_ms"] = ref.torch.preprocessing.median_ms
                object["torch_backbone_median_ms"] = ref.torch.backbone.median_ms
                object["torch_expert_median_ms"] = ref.torch.expert.median_ms
                object["ort_fp32_expert_median_ms"] = ref.ort_fp32.expert.median_ms
                object["ort_int8_expert_median_ms"] = ref.ort_int8.expert.median_ms
                object["ort_fp32_chunk_max_abs_err"] = ref.ort_fp32.chunk_max_abs_err
                object["ort_int8_chunk_max_abs_err"] = ref.ort_int8.chunk_max_abs_err
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("observation → chunk, \(embodiment) H=\(e.chunkSize) K=\(vla.config.actionExpert.actionDim), "
              + "\(steps ?? vla.config.actionExpert.numInferenceSteps) steps, \(threads) threads, \(iterations) iterations, "
              + "model \(model), OpenBLAS core \(BLASInfo.coreName)")
        print("implementation        preproc ms  backbone ms  expert ms (p90)    total ms (p90)    max|Δa'| vs torch")
        func row(_ name: String, _ p: Stats?, _ b: Stats?, _ x: Stats, _ t: Stats?, _ err: Double?) -> String {
            func f(_ s: Stats?) -> String { s.map { String(format: "%10.1f", $0.median_ms) } ?? "         -" }
            let tot = t.map { String(format: "%8.1f (%7.1f)", $0.median_ms, $0.p90_ms) } ?? "                "
            return name.padding(toLength: 20, withPad: " ", startingAt: 0) + "  \(f(p))   \(f(b))  "
                + String(format: "%7.1f (%7.1f)", x.median_ms, x.p90_ms) + "  \(tot)  " + (err.map { String(format: "%.4f", $0) } ?? "-")
        }
        print(row("tendon", ours.preprocessing, ours.backbone, ours.expert, ours.total, errorVsTorch))
        if let ref {
            print(row("pytorch fp32", ref.torch.preprocessing, ref.torch.backbone, ref.torch.expert, ref.torch.total, 0))
            print(row("onnxruntime fp32", nil, nil, ref.ort_fp32.expert, nil, ref.ort_fp32.chunk_max_abs_err))
            print(row("onnxruntime int8", nil, nil, ref.ort_int8.expert, nil, ref.ort_int8.chunk_max_abs_err))
            print(String(format: "end to end: pytorch / tendon %.2f×; expert: ort int8 / tendon %.2f×",
                         ref.torch.total.median_ms / ours.total.median_ms, ref.ort_int8.expert.median_ms / ours.expert.median_ms))
        }
        print(String(format: "peak RSS %.0f MB, load %.2f s", peakRSSMB, loadSeconds))
    }

    /// Runs the reference timing; a missing environment or a failing script ends the command with one line.
    func runReference(_ folder: String, chunkOut: String) -> Reference {
        var arguments = ["time", "--model", folder, "--embodiment", embodiment, "--instruction", instruction,
                         "--iterations", "\(iterations)", "--threads", "\(threads)", "--chunk-out", chunkOut]
        for i in image { arguments += ["--image", i] }
        if let noise { arguments += ["--noise", noise] }
        if let steps { arguments += ["--steps", "\(steps)"] }
        return runReferenceScript(python: python, script: script, arguments: arguments,
                                  pythonHint: "make reference-env, or pass --python", label: "\(script) time")
    }
}
