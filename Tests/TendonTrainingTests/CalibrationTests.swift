import Foundation
import Testing
import TendonData
import TendonModel
import TendonTensor
@testable import TendonTraining

/// GPTQ's calibration side: H = E[xᵀx] per weight, collected from the runtime's own `Linear` calls.
@Suite struct CalibrationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/qwen_vla")

    /// float64 tensors of a safetensors file (the checkpoint reader has no f64; the reference writes H in f64).
    static func float64Tensors(_ url: URL) throws -> [String: [Double]] {
        let data = try Data(contentsOf: url)
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var out: [String: [Double]] = [:]
        for (name, value) in header where name != "__metadata__" {
            let entry = try #require(value as? [String: Any])
            try #require(entry["dtype"] as? String == "F64")
            let offsets = try #require(entry["data_offsets"] as? [Int])
            let bytes = data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
            out[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }
        return out
    }

    /// The backbone's (and vision tower's) inputs do not depend on the action noise: every weight's H must
    /// equal transformers' (forward pre-hooks, Tools/reference/calibration_fixtures.py), and no weight may be
    /// missed (a `Linear` called from a pool worker would be).
    @Test(arguments: ["text_a", "vlm_c"])
    func backboneHessiansMatchTransformers(_ name: String) throws {
        let dir = Self.fixtures.appendingPathComponent(name)
        let expected = try Self.float64Tensors(dir.appendingPathComponent("calibration_hessians.safetensors"))
        struct Case: Decodable { var key: String; var tag: String; var instruction: String }
        let c = try #require(try JSONDecoder().decode([Case].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json"))).first)
        let vla = try QwenVLA(path: dir.path, pool: ThreadPool(threads: 2))
        let images = try ConvertVLATests.images(dir, try vla.config.embodiment(c.tag))
        let observation = CalibrationObservation(embodiment: c.tag, instruction: c.instruction, images: images, seed: 1, source: name)
        let collector = try Calibration.collect(model: vla, observations: [observation])
        let weights = expected.keys.filter { !$0.hasSuffix(".rows") }
        #expect(weights.count >= 15)
        for weight in weights {
            let (h, rows) = try #require(collector.hessian(for: weight), "\(weight) was never observed")
            #expect(Double(rows) == expected[weight + ".rows"]?.first, "\(weight): rows")
            let want = expected[weight]!
            try #require(h.count == want.count, "\(weight): \(h.count) vs \(want.count) entries")
            let scale = want.map { $0 * $0 }.reduce(0, +).squareRoot()
            let error = zip(h, want).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            #expect(error <= 1e-5 * scale, "\(weight): relative error \(error / scale)")
        }
        // Everything the runtime multiplies is a checkpoint weight (or the expert's stacked q/k/v, mapped back).
        let source = try SafetensorsCheckpoint(directory: dir.path)
        for seen in collector.names { #expect(source.contains(seen), "\(seen) is not a checkpoint tensor") }
        for block in 0..<vla.config.actionExpert.numLayers {
            for part in ["q_proj", "k_proj", "v_proj", "o_proj"] {
                #expect(collector.hessian(for: "action_expert.blocks.\(block).attn.\(part).weight") != nil)
            }
        }
    }

    /// H is the mean of xᵀx over every row seen inside `Linear.observing`, and nothing is seen outside it.
    @Test func hessianIsTheMeanGramOfObservedInputs() throws {
        let weight = Tensor([Float](repeating: 0.5, count: 4 * 3), shape: [4, 3], name: "layer.weight")
        let x1: [Float] = [1, 2, 3, -1, 0, 2], x2: [Float] = [0.5, -2, 4]
        var y = [Float](repeating: 0, count: 8)
        let collector = HessianCollector()
        try Linear.forward(x1, rows: 2, weight: weight, bias: nil, into: &y)  // not observed
        try Linear.observing(collector) {
            try Linear.forward(x1, rows: 2, weight: weight, bias: nil, into: &y)
            try Linear.forward(x2, rows: 1, weight: weight, bias: nil, into: &y)
        }
        try Linear.forward(x2, rows: 1, weight: weight, bias: nil, into: &y)  // not observed
        let (h, rows) = try #require(collector.hessian(for: "layer.weight"))
        #expect(rows == 3)
        let all = x1 + x2
        for i in 0..<3 {
            for j in 0..<3 {
                let want = (0..<3).map { Double(all[$0 * 3 + i]) * Double(all[$0 * 3 + j]) }.reduce(0, +) / 3
                #expect(abs(h[i * 3 + j] - want) < 1e-12)
            }
        }
        #expect(ActionExpert.sourceWeights(ofStacked: "action_expert.blocks.3.attn.qkv")
                == ["action_expert.blocks.3.attn.q_proj.weight", "action_expert.blocks.3.attn.k_proj.weight",
                    "action_expert.blocks.3.attn.v_proj.weight"])
        #expect(ActionExpert.sourceWeights(ofStacked: "action_expert.blocks.3.attn.q_proj.weight") == nil)
    }

    /// A recorded episode is a calibration source: evenly spaced frames, its cameras, its task.
    @Test func episodesAndListsLoad() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let directory = try EpisodeDirectory(path: temp.path("episodes"))
        let layout = EpisodeLayout(jointCount: 14, cameras: [CameraLayout(name: "cam_wrist", width: 32, height: 24)],
                                   sim: true, task: "wipe the table", fps: 50)
        let writer = try directory.beginEpisode(layout: layout, seconds: 1)
        for frame in 0..<10 {
            let zeros = [Double](repeating: 0, count: 14)
            try writer.append(EpisodeFrame(timestampSeconds: Double(frame) / 50, qpos: zeros, qvel: zeros, effort: zeros,
                                           action: zeros, images: [[UInt8](repeating: UInt8(frame * 20), count: 32 * 24 * 3)]))
        }
        let path = try writer.finish(summary: EpisodeSummary(frames: 10, firstNanos: 0, lastNanos: 180_000_000, droppedFrames: 0, fps: 50))
        let observations = try CalibrationSet.load([path], embodiment: "widowx", framesPerEpisode: 3)
        #expect(observations.map(\.source) == ["\(path)#1", "\(path)#5", "\(path)#8"])
        #expect(observations.allSatisfy { $0.instruction == "wipe the table" && $0.embodiment == "widowx" })
        #expect(observations[1].images["cam_wrist"]?.pixels.first == 100)
        // The episode's camera is the widowx embodiment's: the model runs on it.
        let vla = try QwenVLA(path: Self.fixtures.appendingPathComponent("vlm_c").path)
        let collector = try Calibration.collect(model: vla, observations: observations)
        #expect(collector.hessian(for: "model.visual.merger.linear_fc1.weight") != nil)

        let list = temp.path("set.jsonl")
        try """
        {"embodiment": "aloha", "instruction": "fold", "seed": 7}

        {"embodiment": "widowx", "instruction": "wipe", "images": {"cam_wrist": "\(Self.fixtures.path)/vlm_c/cam_wrist.png"}}
        """.write(toFile: list, atomically: true, encoding: .utf8)
        let fromList = try CalibrationSet.load([list], embodiment: nil)
        #expect(fromList.map(\.seed) == [7, 3] && fromList.map(\.source) == ["\(list):1", "\(list):3"])
        #expect(fromList[1].images["cam_wrist"]?.width == 24)  // the fixture PNG is 24×24
    }

    @Test func badCalibrationInputIsOneClearLine() throws {
        let temp = try TemporaryDirectory()
        defer { temp.cleanup() }
        let list = temp.path("bad.jsonl")
        func error(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch { return "\(error)" }
        }
        try "{\"instruction\": \"x\"}\n".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(error { _ = try CalibrationSet.load([list], embodiment: nil) } == "\(list):1: missing \"embodiment\" (a string)")
        try "{\"embodiment\": \"aloha\", \"instruction\": \"x\", \"images\": {\"cam\": \"missing.png\"}}\n"
            .write(toFile: list, atomically: true, encoding: .utf8)
        #expect(error { _ = try CalibrationSet.load([list], embodiment: nil) }?.hasPrefix("\(list):1: camera cam: ") == true)
        try "not json\n".write(toFile: list, atomically: true, encoding: .utf8)
        #expect(error { _ = try CalibrationSet.load([list], embodiment: nil) } == "\(list):1: not a JSON object")
        let episode = Self.fixtures.deletingLastPathComponent().appendingPathComponent("hdf5/tendon_episode.hdf5").path
        #expect(error { _ = try CalibrationSet.load([episode], embodiment: nil) }
                == "\(episode): an episode does not name its embodiment; pass --calibration-embodiment TAG")
        #expect(error { _ = try CalibrationSet.load([temp.path("x.txt")], embodiment: nil) }
                == "\(temp.path("x.txt")): expected a .jsonl observation list or a recorded .hdf5 episode")
        // An episode whose cameras are not the embodiment's fails at the model, naming the frame.
        let observations = try CalibrationSet.load([episode], embodiment: "widowx", framesPerEpisode: 1)
        let vla = try QwenVLA(path: Self.fixtures.appendingPathComponent("vlm_c").path)
        let message = error { _ = try Calibration.collect(model: vla, observations: observations) }
        #expect(message?.hasPrefix("\(episode)#6: ") == true && message?.contains("cam_wrist") == true, "\(message ?? "")")
    }
}
