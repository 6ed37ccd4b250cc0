/// What one episode file holds. The layout is ALOHA's (act-plus-plus `record_episodes.py`, and ALOHA 2's
/// compressed variant), so their training code reads Tendon's episodes unchanged:
///
/// - root attributes: `sim` (bool, h5py's numpy-bool enum), `task` (UTF-8 string), `compress` (bool),
///   `fps` (target control rate), `achieved_hz`, `rate_ok` (false when achieved < 90 % of fps),
///   `dropped_frames`, `clock` ("CLOCK_MONOTONIC")
/// - `/observations/qpos`, `/observations/qvel`, `/observations/effort`, `/action`: [T, 14] float64
/// - `/observations/timestamps`: [T] float64, seconds of the loop clock (CLOCK_MONOTONIC) since the
///   episode's first frame; the state sample's own cycle time, not the time the recorder read it
/// - `/observations/images/<camera>`: [T, H, W, 3] uint8, one chunk per frame; or, compressed, JPEG bytes
///   zero-padded to the longest frame [T, maxlen] uint8 with `/compress_len` [cameras, T] float32 (the
///   byte count of each frame, camera order = the `camera_names` attribute order)
public struct CameraLayout: Sendable, Equatable {
    public var name: String
    public var width: Int
    public var height: Int

    public init(name: String, width: Int, height: Int) {
        self.name = name
        self.width = width
        self.height = height
    }

    public var frameBytes: Int { width * height * 3 }
}

public struct EpisodeLayout: Sendable, Equatable {
    public var jointCount: Int
    public var cameras: [CameraLayout]
    public var compress: Bool
    public var jpegQuality: Int
    public var sim: Bool
    public var task: String
    /// Target control rate (frames per second).
    public var fps: Double

    public init(jointCount: Int = 14, cameras: [CameraLayout], compress: Bool = false, jpegQuality: Int = 50,
                sim: Bool, task: String, fps: Double) {
        self.jointCount = jointCount
        self.cameras = cameras
        self.compress = compress
        self.jpegQuality = jpegQuality
        self.sim = sim
        self.task = task
        self.fps = fps
    }

    /// Bytes an episode of `seconds` takes at most (raw images; JPEG is far smaller), plus HDF5 overhead.
    public func estimatedBytes(seconds: Double) -> UInt64 {
        let frames = UInt64((seconds * fps).rounded(.up)) + 1
        let perFrame = UInt64(4 * jointCount * 8 + 8 + cameras.reduce(0) { $0 + $1.frameBytes })
        return frames * perFrame + frames * perFrame / 10 + 1 << 20
    }
}

/// One recorded step at the control rate.
public struct EpisodeFrame: Sendable {
    public var timestampSeconds: Double
    public var qpos: [Double]
    public var qvel: [Double]
    public var effort: [Double]
    public var action: [Double]
    /// RGB8 pixels per camera, in layout order.
    public var images: [[UInt8]]

    public init(timestampSeconds: Double, qpos: [Double], qvel: [Double], effort: [Double], action: [Double],
                images: [[UInt8]]) {
        self.timestampSeconds = timestampSeconds
        self.qpos = qpos
        self.qvel = qvel
        self.effort = effort
        self.action = action
        self.images = images
    }
}

/// What the recorder learned about an episode, stored as root attributes when it is finished.
public struct EpisodeSummary: Sendable, Equatable {
    public var achievedHz: Double
    public var droppedFrames: Int
    public var rateOK: Bool

    public init(achievedHz: Double, droppedFrames: Int, rateOK: Bool) {
        self.achievedHz = achievedHz
        self.droppedFrames = droppedFrames
        self.rateOK = rateOK
    }

    /// The minimum acceptable share of the target rate.
    public static let minimumRateFraction = 0.9

    /// From the frames' own loop timestamps: (frames − 1) intervals over the first-to-last span. An
    /// episode below 90 % of `fps` (or with fewer than two frames) is not rate-OK.
    public init(frames: Int, firstNanos: UInt64, lastNanos: UInt64, droppedFrames: Int, fps: Double) {
        let span = lastNanos > firstNanos ? Double(lastNanos - firstNanos) / 1e9 : 0
        let achieved = frames > 1 && span > 0 ? Double(frames - 1) / span : 0
        self.init(achievedHz: achieved, droppedFrames: droppedFrames, rateOK: achieved >= Self.minimumRateFraction * fps)
    }
}
