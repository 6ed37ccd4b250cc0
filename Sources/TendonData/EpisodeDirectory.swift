import Foundation

/// A recording directory: `episode_<N>.hdf5` files, N from 0 and continuing after the highest existing
/// one; episodes in progress live under `.episode_<N>.hdf5.partial` until finished.
public struct EpisodeDirectory: Sendable {
    public let path: String

    public init(path: String) throws(EpisodeError) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw EpisodeError("\(path): cannot create the output directory (\(error.localizedDescription))")
            }
        } else if !isDirectory.boolValue {
            throw EpisodeError("\(path): expected a directory, found a file")
        }
        self.path = path
    }

    /// Indices of the finished episodes, ascending.
    public func finishedIndices() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.compactMap(Self.index(ofFinished:)).sorted()
    }

    static func index(ofFinished name: String) -> Int? {
        guard name.hasPrefix("episode_"), name.hasSuffix(".hdf5") else { return nil }
        return Int(name.dropFirst(8).dropLast(5))
    }

    public func nextIndex() -> Int { (finishedIndices().last ?? -1) + 1 }

    public func finalPath(index: Int) -> String { path + "/episode_\(index).hdf5" }
    public func temporaryPath(index: Int) -> String { path + "/.episode_\(index).hdf5.partial" }

    /// Leftovers of episodes a crash interrupted.
    public func partialFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasPrefix(".episode_") && $0.hasSuffix(".hdf5.partial") }.sorted().map { path + "/" + $0 }
    }

    public func freeBytes() -> UInt64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    /// Refuses to start an episode the disk cannot hold.
    public func checkSpace(for layout: EpisodeLayout, seconds: Double) throws(EpisodeError) {
        let needed = layout.estimatedBytes(seconds: seconds)
        guard let free = freeBytes() else { throw EpisodeError("\(path): cannot query free space") }
        guard free >= needed else {
            throw EpisodeError(String(format: "%@: %.1f MB free, an episode of %.0f s needs up to %.1f MB; free space or record shorter episodes",
                                      path, Double(free) / 1e6, seconds, Double(needed) / 1e6))
        }
    }

    /// Starts the next episode under its temporary name.
    public func beginEpisode(layout: EpisodeLayout, seconds: Double, batchFrames: Int = 10) throws(EpisodeError) -> EpisodeWriter {
        try checkSpace(for: layout, seconds: seconds)
        let index = nextIndex()
        return try EpisodeWriter(layout: layout, finalPath: finalPath(index: index), temporaryPath: temporaryPath(index: index),
                                 batchFrames: batchFrames)
    }

    /// So the rename itself survives a power cut.
    static func syncDirectory(of file: String) {
        let directory = (file as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
