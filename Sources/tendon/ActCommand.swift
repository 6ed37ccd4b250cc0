import ArgumentParser
import Foundation
import TendonModel
import TendonTensor

/// `tendon act` (DESIGN §3, §5): one observation → one denoised action chunk, written as safetensors.
struct ActCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "act",
        abstract: "Run the policy once: instruction (+ camera images) → action chunk, written as safetensors.",
        discussion: """
        MODEL is a Hugging Face folder (config.json with action_expert and embodiments, model.safetensors, \
        tokenizer.json) or a Tendon .gguf from `tendon-train convert`. The output holds `actions` [H, c] \
        (unnormalized with the embodiment's q01/q99) and `actions_normalized` [H, K] (f32), H = chunk_size. \
        An embodiment that lists cameras needs one --image per camera.
        """)

    @Option(help: "Model folder or .gguf file.") var model: String
    @Option(help: "Embodiment tag from the config's embodiments.") var embodiment: String
    @Option(help: "Task instruction.") var instruction: String
    @Option(help: "Camera image as NAME=FILE (one per camera of the embodiment).") var image: [String] = []
    @Option(help: "Noise file (.safetensors with `noise` [H, K]); default: Gaussian noise from --seed.") var noise: String?
    @Option(help: "Seed of the Gaussian noise when --noise is not given.") var seed: UInt64 = 0
    @Option(help: "Euler steps (default: the config's num_inference_steps).") var steps: Int?
    @Option(help: "Threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Output .safetensors file.") var out: String

    func run() throws {
        if let steps, steps <= 0 { fail("--steps must be a positive integer, found \(steps)", code: 2) }
        guard threads > 0 else { fail("--threads must be positive, found \(threads)", code: 2) }
        let images: [(name: String, file: String)]
        switch Self.parseImages(image) {
        case .success(let parsed): images = parsed
        case .failure(let message): fail(message.text, code: 2)
        }
        let vla: QwenVLA
        do { vla = try QwenVLA(path: model, pool: ThreadPool(threads: threads)) } catch { fail(error.description) }
        let K = vla.config.actionExpert.actionDim
        var noiseValues: [Float]?
        if let noise {
            let e: Embodiment
            do { e = try vla.config.embodiment(embodiment) } catch { fail(error.description, code: 2) }
            switch Self.readNoise(noise, rows: e.chunkSize, columns: K) {
            case .success(let values): noiseValues = values
            case .failure(let message): fail(message.text, code: 2)
            }
        }
        var decoded: [String: RGBImage] = [:]
        for (name, file) in images {
            do { decoded[name] = try RGBImage.load(path: file) } catch { fail("--image \(name)=\(file): \(error.description)", code: 2) }
        }
        let chunk: ActionChunk
        do {
            chunk = try vla.act(embodiment: embodiment, instruction: instruction, images: decoded,
                                noise: noiseValues, seed: seed, steps: steps)
        } catch { fail(error.description, code: 2) }
        let tensors = [Tensor(chunk.actions, shape: [chunk.steps, chunk.channels], name: "actions"),
                       Tensor(chunk.normalized, shape: [chunk.steps, K], name: "actions_normalized")]
        do { try SafetensorsWriter.write(tensors, to: out) } catch { fail(error.description) }
    }

    struct Message: Error { var text: String }

    /// "cam_high=a.png" → (cam_high, a.png); names must not repeat.
    static func parseImages(_ args: [String]) -> Result<[(name: String, file: String)], Message> {
        var out: [(name: String, file: String)] = []
        for arg in args {
            guard let eq = arg.firstIndex(of: "="), eq != arg.startIndex, arg.index(after: eq) != arg.endIndex else {
                return .failure(Message(text: "--image \"\(arg)\": expected NAME=FILE (a camera name of the embodiment and an image file)"))
            }
            let name = String(arg[..<eq]), file = String(arg[arg.index(after: eq)...])
            guard !out.contains(where: { $0.name == name }) else {
                return .failure(Message(text: "--image: camera \(name) given twice"))
            }
            out.append((name, file))
        }
        return .success(out)
    }

    /// The `noise` tensor of a safetensors file, [rows, columns], as f32.
    static func readNoise(_ path: String, rows: Int, columns: Int) -> Result<[Float], Message> {
        do {
            let file = try SafetensorsCheckpoint(path: path)
            guard file.contains("noise") else {
                return .failure(Message(text: "\(path): no tensor `noise` (found \(file.names.joined(separator: ", ")))"))
            }
            let t = try file.tensor("noise")
            guard t.shape == [rows, columns] else {
                return .failure(Message(text: "\(path): noise has shape \(t.shape), expected [\(rows), \(columns)] (chunk_size × action_dim)"))
            }
            return .success(try t.converted(to: .f32).toArray())
        } catch {
            return .failure(Message(text: "\(path): \(error)"))
        }
    }
}
