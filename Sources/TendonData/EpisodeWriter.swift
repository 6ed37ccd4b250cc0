import CHDF5
import Foundation

/// Writes one episode under a temporary name in the episode directory, in frame batches (each batch is
/// written and flushed together), and renames it to `episode_<N>.hdf5` only in `finish`: a crash or
/// SIGKILL leaves at most a `.episode_<N>.hdf5.partial`, never a half file under the final name.
/// Not thread-safe; one recorder thread owns it.
public final class EpisodeWriter {
    public let layout: EpisodeLayout
    public let finalPath: String
    public let temporaryPath: String
    public let batchFrames: Int
    /// Test hook standing in for a full disk: appending frame number `failAfterFrames` fails.
    public var failAfterFrames: Int?

    private var file: H5File?
    private let qpos: H5ExtendableDataset
    private let qvel: H5ExtendableDataset
    private let effort: H5ExtendableDataset
    private let action: H5ExtendableDataset
    private let timestamps: H5ExtendableDataset
    private let images: [H5ExtendableDataset]
    private let codec: JPEGCodec?
    private var pending: [EpisodeFrame] = []
    private var compressedLengths: [[Float]]
    public private(set) var frameCount = 0

    init(layout: EpisodeLayout, finalPath: String, temporaryPath: String, batchFrames: Int) throws(EpisodeError) {
        self.layout = layout
        self.finalPath = finalPath
        self.temporaryPath = temporaryPath
        self.batchFrames = max(batchFrames, 1)
        unlink(temporaryPath)
        let file = try H5File.create(temporaryPath)
        self.file = file
        do {
            let n = layout.jointCount
            qpos = try H5ExtendableDataset(file: file, name: "/observations/qpos", fileType: H5.double, memType: H5.double, rowShape: [n], chunkRows: 64)
            qvel = try H5ExtendableDataset(file: file, name: "/observations/qvel", fileType: H5.double, memType: H5.double, rowShape: [n], chunkRows: 64)
            effort = try H5ExtendableDataset(file: file, name: "/observations/effort", fileType: H5.double, memType: H5.double, rowShape: [n], chunkRows: 64)
            action = try H5ExtendableDataset(file: file, name: "/action", fileType: H5.double, memType: H5.double, rowShape: [n], chunkRows: 64)
            timestamps = try H5ExtendableDataset(file: file, name: "/observations/timestamps", fileType: H5.double, memType: H5.double, rowShape: [], chunkRows: 256)
            var imageSets: [H5ExtendableDataset] = []
            for camera in layout.cameras {
                let name = "/observations/images/\(camera.name)"
                if layout.compress {
                    imageSets.append(try H5ExtendableDataset(file: file, name: name, fileType: H5.uint8, memType: H5.uint8,
                                                             rowShape: [0], chunkRows: 1, growSecondAxis: true))
                } else {
                    imageSets.append(try H5ExtendableDataset(file: file, name: name, fileType: H5.uint8, memType: H5.uint8,
                                                             rowShape: [camera.height, camera.width, 3], chunkRows: 1))
                }
            }
            if layout.cameras.isEmpty { try file.createGroup("/observations/images") }
            images = imageSets
            codec = layout.compress ? try JPEGCodec(quality: layout.jpegQuality) : nil
            compressedLengths = layout.cameras.map { _ in [] }
            try file.setAttribute("sim", bool: layout.sim)
            try file.setAttribute("task", string: layout.task)
            try file.setAttribute("compress", bool: layout.compress)
            try file.setAttribute("fps", double: layout.fps)
            try file.setAttribute("clock", string: "CLOCK_MONOTONIC")
            try file.setAttribute("camera_names", string: layout.cameras.map(\.name).joined(separator: ","))
        } catch {
            _ = file.close()
            unlink(temporaryPath)
            throw error
        }
    }

    /// Queues a frame; every `batchFrames` frames the batch is written and flushed.
    public func append(_ frame: EpisodeFrame) throws(EpisodeError) {
        let n = layout.jointCount
        guard frame.qpos.count == n, frame.qvel.count == n, frame.effort.count == n, frame.action.count == n else {
            throw EpisodeError("frame \(frameCount): expected \(n) values for qpos, qvel, effort and action, got \(frame.qpos.count), \(frame.qvel.count), \(frame.effort.count), \(frame.action.count)")
        }
        guard frame.images.count == layout.cameras.count else {
            throw EpisodeError("frame \(frameCount): expected \(layout.cameras.count) camera images, got \(frame.images.count)")
        }
        for (camera, image) in zip(layout.cameras, frame.images) where image.count != camera.frameBytes {
            throw EpisodeError("frame \(frameCount): camera \(camera.name) image has \(image.count) bytes, expected \(camera.height)×\(camera.width)×3 = \(camera.frameBytes)")
        }
        if let limit = failAfterFrames, frameCount + pending.count >= limit {
            throw EpisodeError("\(temporaryPath): write failed (no space left on device, injected)")
        }
        pending.append(frame)
        if pending.count >= batchFrames { try writePending() }
    }

    private func writePending() throws(EpisodeError) {
        guard let file, !pending.isEmpty else { return }
        let count = pending.count
        do {
            try appendRows(qpos, pending.flatMap(\.qpos), count)
            try appendRows(qvel, pending.flatMap(\.qvel), count)
            try appendRows(effort, pending.flatMap(\.effort), count)
            try appendRows(action, pending.flatMap(\.action), count)
            try appendRows(timestamps, pending.map(\.timestampSeconds), count)
            for (c, dataset) in images.enumerated() {
                if let codec {
                    let camera = layout.cameras[c]
                    var encoded: [[UInt8]] = []
                    for frame in pending {
                        encoded.append(try typed { try frame.images[c].withUnsafeBytes { raw in
                            try codec.encode(rgb: raw, width: camera.width, height: camera.height)
                        } })
                    }
                    let width = max(encoded.map(\.count).max() ?? 0, dataset.dims.count > 1 ? Int(dataset.dims[1]) : 0)
                    try dataset.growSecondAxis(to: width)
                    var rows = [UInt8](repeating: 0, count: width * count)
                    for (i, bytes) in encoded.enumerated() {
                        rows.replaceSubrange(i * width..<(i * width + bytes.count), with: bytes)
                        compressedLengths[c].append(Float(bytes.count))
                    }
                    try appendRows(dataset, rows, count)
                } else {
                    try appendRows(dataset, pending.flatMap { $0.images[c] }, count)
                }
            }
        } catch {
            throw EpisodeError("\(temporaryPath): \(error.description)")
        }
        frameCount += count
        pending.removeAll(keepingCapacity: true)
        guard file.flush() else { throw EpisodeError("\(temporaryPath): flush failed (\(String(cString: strerror(errno))))") }
    }

    private func appendRows<T>(_ dataset: H5ExtendableDataset, _ values: [T], _ count: Int) throws(EpisodeError) {
        try typed { try values.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            try dataset.append(rows: count, from: base)
        } }
    }

    /// Writes what is left, the summary attributes and `/compress_len`, closes, fsyncs and renames to the
    /// final name. Returns the final path.
    public func finish(summary: EpisodeSummary) throws(EpisodeError) -> String {
        guard let file else { throw EpisodeError("\(temporaryPath): episode already closed") }
        do {
            try writePending()
            if layout.compress {
                let lengths = compressedLengths.flatMap { $0 }
                let cameras = layout.cameras.count
                if cameras > 0 {
                    let dataset = try H5ExtendableDataset(file: file, name: "/compress_len", fileType: H5.float, memType: H5.float,
                                                          rowShape: [frameCount], chunkRows: 1)
                    try appendRows(dataset, lengths, cameras)
                    dataset.close()
                }
            }
            try file.setAttribute("achieved_hz", double: summary.achievedHz)
            try file.setAttribute("dropped_frames", int: Int64(summary.droppedFrames))
            try file.setAttribute("rate_ok", bool: summary.rateOK)
            try file.setAttribute("frames", int: Int64(frameCount))
        } catch {
            abort()
            throw error
        }
        self.file = nil
        closeDatasets()
        guard file.close() else {
            unlink(temporaryPath)
            throw EpisodeError("\(temporaryPath): closing the HDF5 file failed")
        }
        let fd = open(temporaryPath, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            let synced = fsync(fd) == 0
            close(fd)
            guard synced else {
                unlink(temporaryPath)
                throw EpisodeError("\(temporaryPath): fsync failed (\(String(cString: strerror(errno))))")
            }
        }
        guard rename(temporaryPath, finalPath) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw EpisodeError("cannot rename \(temporaryPath) to \(finalPath): \(reason)")
        }
        EpisodeDirectory.syncDirectory(of: finalPath)
        return finalPath
    }

    /// Drops the episode: closes and deletes the temporary file.
    public func abort() {
        if let file {
            closeDatasets()
            _ = file.close()
            self.file = nil
        }
        unlink(temporaryPath)
    }

    private func closeDatasets() {
        for d in [qpos, qvel, effort, action, timestamps] + images { d.close() }
    }

    deinit { if file != nil { abort() } }
}
