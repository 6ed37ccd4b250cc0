// Camera API (issue #5) — what the recorder, the observation builder and `tendon calibrate cameras` use:
//   CameraPixelFormat         .rgb8 (the only format frames are delivered in; capture formats are decoded)
//   CameraFrameHeader         POD description of one frame (size, sequence, monotonic + driver timestamps)
//   CameraFrame               header + owned bytes (allocating convenience for non-real-time code)
//   CameraError               typed, payload-carrying errors (device path, errno, what was expected/found)
//   CameraSource (protocol)   name, width/height, start()/stop(), copyLatestFrame(into:) without allocation
//   FrameRing                 lock-free hand-over of the newest decoded frame: one capture thread, any readers
//   V4L2Camera / V4L2Devices  UVC capture (MJPEG or YUYV → RGB8) and enumeration
//   SimCamera (SimWorld/)     the simulated world rendered from a named camera, as a CameraSource
import Foundation

public enum CameraPixelFormat: UInt32, Sendable, Equatable, CustomStringConvertible {
    /// 3 bytes per pixel, R G B, rows top to bottom, no padding.
    case rgb8 = 1

    public var bytesPerPixel: Int { 3 }
    public var description: String { "RGB8" }
}

/// Everything about a frame except its pixels; a plain value, so the real-time side can hold one
/// without allocating.
public struct CameraFrameHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixelFormat: CameraPixelFormat
    /// 0, 1, 2, ... per source since start; a gap means frames were dropped or lapped.
    public var sequence: UInt64
    /// When the frame was taken, on `MonotonicClock` (CLOCK_MONOTONIC), in nanoseconds.
    public var timestampNanos: UInt64
    /// The driver's own timestamp (v4l2_buffer.timestamp) in nanoseconds when it has one; the simulator
    /// reports its render time here too.
    public var driverTimestampNanos: UInt64?

    public init(width: Int, height: Int, pixelFormat: CameraPixelFormat = .rgb8, sequence: UInt64,
                timestampNanos: UInt64, driverTimestampNanos: UInt64? = nil) {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.sequence = sequence
        self.timestampNanos = timestampNanos
        self.driverTimestampNanos = driverTimestampNanos
    }

    public var byteCount: Int { width * height * pixelFormat.bytesPerPixel }
}

/// A frame with its own pixel storage (for recording, tests and PNG dumps — not for the real-time path).
public struct CameraFrame: Sendable, Equatable {
    public var header: CameraFrameHeader
    public var bytes: [UInt8]

    public init(header: CameraFrameHeader, bytes: [UInt8]) {
        self.header = header
        self.bytes = bytes
    }

    public var width: Int { header.width }
    public var height: Int { header.height }
    public var pixelFormat: CameraPixelFormat { header.pixelFormat }
    public var timestampNanos: UInt64 { header.timestampNanos }
    public var driverTimestampNanos: UInt64? { header.driverTimestampNanos }

    /// RGB of pixel (x, y).
    public func pixel(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (bytes[i], bytes[i + 1], bytes[i + 2])
    }
}

public enum CameraError: Error, Sendable, Equatable, CustomStringConvertible {
    /// open() failed (ENOENT: no such device; EACCES: not in group `video`).
    case cannotOpen(device: String, errno: Int32)
    /// An ioctl failed; `request` names it (e.g. "VIDIOC_QUERYCAP").
    case ioctlFailed(device: String, request: String, errno: Int32)
    case notACaptureDevice(device: String)
    /// The device offers none of the formats/sizes/rates the config asks for; `available` lists what it has.
    case unsupportedFormat(device: String, requested: String, available: String)
    case mmapFailed(device: String, errno: Int32)
    /// A captured buffer could not be decoded (corrupt MJPEG, short YUYV payload).
    case decodeFailed(device: String, reason: String)
    case notStarted(name: String)
    case alreadyStarted(name: String)
    /// A caller buffer is smaller than a frame.
    case bufferTooSmall(needed: Int, got: Int)
    case unknownCamera(name: String, known: [String])

    public var description: String {
        switch self {
        case let .cannotOpen(device, code):
            "cannot open camera \(device): \(String(cString: strerror(code)))"
        case let .ioctlFailed(device, request, code):
            "\(request) failed on \(device): \(String(cString: strerror(code)))"
        case let .notACaptureDevice(device):
            "\(device) is not a video capture device with streaming I/O"
        case let .unsupportedFormat(device, requested, available):
            "\(device) does not offer \(requested); it offers: \(available.isEmpty ? "nothing" : available)"
        case let .mmapFailed(device, code):
            "mmap of capture buffers failed on \(device): \(String(cString: strerror(code)))"
        case let .decodeFailed(device, reason):
            "cannot decode a frame from \(device): \(reason)"
        case let .notStarted(name):
            "camera \(name) is not started"
        case let .alreadyStarted(name):
            "camera \(name) is already started"
        case let .bufferTooSmall(needed, got):
            "frame buffer too small: need \(needed) bytes, got \(got)"
        case let .unknownCamera(name, known):
            "unknown camera '\(name)' (known: \(known.joined(separator: ", ")))"
        }
    }
}
