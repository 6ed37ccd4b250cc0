import Foundation
import TendonData
import TendonModel
import TendonTensor

/// Observations that calibrate GPTQ: what the robot will see, run through the model that will run.
///
/// API summary
/// - `CalibrationObservation`: embodiment tag, instruction, camera images, noise seed, and where it came from.
/// - `CalibrationSet.load(_:embodiment:framesPerEpisode:)`: from files of two kinds —
///   - `.jsonl`: one JSON object per line, `{"embodiment": TAG, "instruction": TEXT, "images": {CAMERA: PATH},
///     "seed": N}` (paths relative to the file; `seed` optional, default the line number);
///   - `.hdf5` / `.h5`: an episode recorded by `tendon record`; `framesPerEpisode` frames evenly spaced over
///     it, its cameras' images and its task as the instruction; episodes do not name an embodiment, so
///     `embodiment` must.
/// - `Calibration.collect(model:observations:steps:progress:)`: runs `QwenVLA.act` on each observation with a
///   `HessianCollector` installed and returns it.
/// - `CalibrationError`: one line naming the file (and line or frame) and what is wrong.
public struct CalibrationObservation: Sendable {
    public var embodiment: String
    public var instruction: String
    public var images: [String: RGBImage]
    public var seed: UInt64
    public var source: String

    public init(embodiment: String, instruction: String, images: [String: RGBImage] = [:], seed: UInt64, source: String) {
        self.embodiment = embodiment
        self.instruction = instruction
        self.images = images
        self.seed = seed
        self.source = source
    }
}

public struct CalibrationError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum CalibrationSet {
    public static func load(_ paths: [String], embodiment: String?, framesPerEpisode: Int = 4) throws(CalibrationError)
        -> [CalibrationObservation]
    {
        guard !paths.isEmpty else { throw CalibrationError("no calibration files given") }
        guard framesPerEpisode > 0 else { throw CalibrationError("frames per episode must be positive, found \(framesPerEpisode)") }
        var out: [CalibrationObservation] = []
        for path in paths {
            switch URL(fileURLWithPath: path).pathExtension.lowercased() {
            case "jsonl": out += try jsonLines(path)
            case "hdf5", "h5":
                guard let embodiment else {
                    throw CalibrationError("\(path): an episode does not name its embodiment; pass --calibration-embodiment TAG")
                }
                out += try episode(path, embodiment: embodiment, frames: framesPerEpisode)
            default:
                throw CalibrationError("\(path): expected a .jsonl observation list or a recorded .hdf5 episode")
            }
        }
        guard !out.isEmpty else { throw CalibrationError("\(paths.joined(separator: ", ")): no observations") }
        return out
    }

    static func jsonLines(_ path: String) throws(CalibrationError) -> [CalibrationObservation] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CalibrationError("\(path): cannot read (\(error.localizedDescription))")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        var out: [CalibrationObservation] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            let at = "\(path):\(index + 1)"
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw CalibrationError("\(at): not a JSON object")
            }
            guard let tag = object["embodiment"] as? String else { throw CalibrationError("\(at): missing \"embodiment\" (a string)") }
            guard let instruction = object["instruction"] as? String else {
                throw CalibrationError("\(at): missing \"instruction\" (a string)")
            }
            var images: [String: RGBImage] = [:]
            if let entry = object["images"] {
                guard let paths = entry as? [String: String] else {
                    throw CalibrationError("\(at): \"images\" must map camera names to image paths")
                }
                for (camera, file) in paths {
                    let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : base.appendingPathComponent(file)
                    do { images[camera] = try RGBImage.load(path: url.path) } catch {
                        throw CalibrationError("\(at): camera \(camera): \(error)")
                    }
                }
            }
            var seed = UInt64(index + 1)
            if let value = object["seed"] {
                guard let number = value as? Int, number >= 0 else { throw CalibrationError("\(at): \"seed\" must be a non-negative integer") }
                seed = UInt64(number)
            }
            out.append(CalibrationObservation(embodiment: tag, instruction: instruction, images: images, seed: seed, source: at))
        }
        return out
    }

    static func episode(_ path: String, embodiment: String, frames: Int) throws(CalibrationError) -> [CalibrationObservation] {
        let episode: Episode
        do { episode = try Episode.read(path: path) } catch { throw CalibrationError("\(path): \(error)") }
        guard let task = episode.task, !task.isEmpty else {
            throw CalibrationError("\(path): the episode has no task text to use as the instruction")
        }
        guard episode.frameCount > 0 else { throw CalibrationError("\(path): the episode has no frames") }
        let count = min(frames, episode.frameCount)
        var out: [CalibrationObservation] = []
        for k in 0..<count {
            // Evenly spaced, centred in their stretch of the episode.
            let frame = min(episode.frameCount - 1, (2 * k + 1) * episode.frameCount / (2 * count))
            var images: [String: RGBImage] = [:]
            for camera in episode.cameras {
                do {
                    let image = try episode.image(camera: camera, frame: frame)
                    images[camera] = RGBImage(width: image.width, height: image.height, pixels: image.rgb)
                } catch { throw CalibrationError("\(path): frame \(frame), camera \(camera): \(error)") }
            }
            out.append(CalibrationObservation(embodiment: embodiment, instruction: task, images: images,
                                              seed: UInt64(frame) + 1, source: "\(path)#\(frame)"))
        }
        return out
    }
}

public enum Calibration {
    public static func collect(model: QwenVLA, observations: [CalibrationObservation], steps: Int? = nil,
                               progress: (Int, Int) -> Void = { _, _ in }) throws(CalibrationError) -> HessianCollector {
        let collector = HessianCollector()
        for (index, observation) in observations.enumerated() {
            do {
                _ = try Linear.observing(collector) {
                    try model.act(embodiment: observation.embodiment, instruction: observation.instruction,
                                  images: observation.images, seed: observation.seed, steps: steps)
                }
            } catch {
                throw CalibrationError("\(observation.source): \(error)")
            }
            progress(index + 1, observations.count)
        }
        return collector
    }
}
