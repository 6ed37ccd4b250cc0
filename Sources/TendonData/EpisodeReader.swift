import CHDF5
import Foundation

/// An ALOHA-layout episode read back whole (files written by Tendon or by ALOHA's own h5py code).
public struct Episode: Sendable {
    public var path: String
    public var sim: Bool
    /// Root attribute `task`, when present (ALOHA's own files have none).
    public var task: String?
    public var frameCount: Int
    public var jointCount: Int
    /// Row-major [T, jointCount].
    public var qpos: [Double]
    public var qvel: [Double]
    public var effort: [Double]
    public var action: [Double]
    /// Seconds since the first frame, when the file has `/observations/timestamps`.
    public var timestamps: [Double]?
    /// Camera names, sorted (HDF5 lists group members by name).
    public var cameras: [String]
    public var compressed: Bool
    /// Raw: [T, H, W, 3] pixels per camera. Compressed: [T, maxlen] padded JPEG bytes per camera.
    public var imageData: [String: [UInt8]]
    public var imageShapes: [String: [Int]]
    /// Compressed only: byte counts per camera and frame.
    public var compressedLengths: [String: [Int]]
    /// Numeric root attributes (fps, achieved_hz, rate_ok, ...).
    public var attributes: [String: Double]

    public func row(_ values: [Double], frame: Int) -> ArraySlice<Double> {
        values[(frame * jointCount)..<((frame + 1) * jointCount)]
    }

    /// Frame `frame` of `camera` as RGB8 pixels, decoding JPEG when the file is compressed.
    public func image(camera: String, frame: Int) throws(EpisodeError) -> (rgb: [UInt8], width: Int, height: Int) {
        guard let data = imageData[camera], let shape = imageShapes[camera] else {
            throw EpisodeError("\(path): no camera '\(camera)' (cameras: \(cameras.joined(separator: ", ")))")
        }
        guard frame >= 0, frame < frameCount else { throw EpisodeError("\(path): frame \(frame) outside 0..<\(frameCount)") }
        if compressed {
            let stride = shape[1]
            let length = compressedLengths[camera]?[frame] ?? stride
            guard length <= stride else { throw EpisodeError("\(path): compress_len \(length) exceeds padded width \(stride)") }
            let codec = try JPEGCodec()
            let bytes = Array(data[(frame * stride)..<(frame * stride + length)])
            return try typed { try bytes.withUnsafeBytes { try codec.decode($0) } }
        }
        let size = shape[1] * shape[2] * shape[3]
        return (Array(data[(frame * size)..<((frame + 1) * size)]), shape[2], shape[1])
    }

    public static func read(path: String) throws(EpisodeError) -> Episode {
        let file = try H5File.open(path)
        defer { _ = file.close() }
        let sim = file.hasAttribute("sim") ? try file.doubleAttribute("sim") != 0 : false
        let task = file.hasAttribute("task") ? try file.stringAttribute("task") : nil
        func matrix(_ name: String) throws(EpisodeError) -> (rows: Int, cols: Int, values: [Double]) {
            let (shape, values) = try file.read(name, as: H5.double, zero: 0.0)
            guard shape.count == 2 else {
                throw EpisodeError("\(path): \(name) should be [T, joints], found shape \(shape)")
            }
            return (shape[0], shape[1], values)
        }
        let qpos = try matrix("/observations/qpos")
        let action = try matrix("/action")
        let qvel = try matrix("/observations/qvel")
        let effort = file.exists("/observations/effort") ? try matrix("/observations/effort")
            : (rows: qpos.rows, cols: qpos.cols, values: [Double](repeating: 0, count: qpos.values.count))
        for (name, m) in [("/action", action), ("/observations/qvel", qvel), ("/observations/effort", effort)]
        where m.rows != qpos.rows || m.cols != qpos.cols {
            throw EpisodeError("\(path): \(name) is [\(m.rows), \(m.cols)], /observations/qpos is [\(qpos.rows), \(qpos.cols)]")
        }
        var timestamps: [Double]?
        if file.exists("/observations/timestamps") {
            let (shape, values) = try file.read("/observations/timestamps", as: H5.double, zero: 0.0)
            guard shape == [qpos.rows] else { throw EpisodeError("\(path): /observations/timestamps is \(shape), expected [\(qpos.rows)]") }
            timestamps = values
        }
        var attributes: [String: Double] = [:]
        for name in ["fps", "achieved_hz", "rate_ok", "dropped_frames", "frames", "compress"] where file.hasAttribute(name) {
            attributes[name] = try file.doubleAttribute(name)
        }
        let cameras = file.children(of: "/observations/images").sorted()
        let compressed = file.exists("/compress_len")
        var lengthsByCamera: [String: [Int]] = [:]
        if compressed {
            let (shape, values) = try file.read("/compress_len", as: H5.double, zero: 0.0)
            // compress_len rows follow the writer's camera order: `camera_names` when present, else sorted.
            var order = cameras
            if file.hasAttribute("camera_names") {
                order = try file.stringAttribute("camera_names").split(separator: ",").map(String.init)
            }
            guard shape.count == 2, shape[0] == order.count, shape[1] == qpos.rows else {
                throw EpisodeError("\(path): /compress_len is \(shape), expected [\(order.count), \(qpos.rows)]")
            }
            for (c, name) in order.enumerated() {
                lengthsByCamera[name] = values[(c * qpos.rows)..<((c + 1) * qpos.rows)].map { Int($0) }
            }
        }
        var data: [String: [UInt8]] = [:], shapes: [String: [Int]] = [:]
        for camera in cameras {
            let name = "/observations/images/\(camera)"
            let (shape, values) = try file.read(name, as: H5.uint8, zero: UInt8(0))
            let expectedRank = compressed ? 2 : 4
            guard shape.count == expectedRank, shape[0] == qpos.rows, compressed || shape[3] == 3 else {
                throw EpisodeError("\(path): \(name) is \(shape), expected \(compressed ? "[T, maxlen]" : "[T, H, W, 3]") with T = \(qpos.rows)")
            }
            data[camera] = values
            shapes[camera] = shape
        }
        return Episode(path: path, sim: sim, task: task, frameCount: qpos.rows, jointCount: qpos.cols, qpos: qpos.values,
                       qvel: qvel.values, effort: effort.values, action: action.values, timestamps: timestamps, cameras: cameras,
                       compressed: compressed, imageData: data, imageShapes: shapes, compressedLengths: lengthsByCamera,
                       attributes: attributes)
    }
}
