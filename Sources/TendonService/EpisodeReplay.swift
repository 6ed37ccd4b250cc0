import TendonData

extension ReplayFile {
    /// A recorded episode's `/action` as a replay trajectory, timed by its `/observations/timestamps`
    /// (or frame index / fps when an ALOHA file has none).
    public static func episode(path: String, joints: Int) throws(StartupError) -> ReplayFile {
        let episode: Episode
        do { episode = try Episode.read(path: path) } catch { throw StartupError(error.description) }
        guard episode.jointCount == joints else {
            throw StartupError("\(path): /action has \(episode.jointCount) joints, the robot drives \(joints)")
        }
        guard episode.frameCount > 0 else { throw StartupError("\(path): the episode has no frames") }
        let fps = episode.attributes["fps"] ?? 50
        var seconds = episode.timestamps ?? (0..<episode.frameCount).map { Double($0) / fps }
        // Strictly increasing times are required; a repeated stamp (should not happen) is nudged.
        for i in 1..<max(seconds.count, 1) where seconds[i] <= seconds[i - 1] { seconds[i] = seconds[i - 1] + 1e-6 }
        let rows = (0..<episode.frameCount).map { Array(episode.row(episode.action, frame: $0)) }
        guard rows.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw StartupError("\(path): /action holds non-finite values") }
        return ReplayFile(seconds: seconds, positions: rows)
    }

    /// Seconds the replay takes after its start: approach plus the recorded span.
    public func durationSeconds(current: [Double], maxVelocities: [Double]) -> Double {
        let first = positions[0]
        let approach = zip(zip(first, current), maxVelocities).map { pair, v in abs(pair.0 - pair.1) / (0.5 * v) }.max() ?? 0
        return max(approach, 0.5) + (seconds.last ?? 0) - seconds[0]
    }
}
