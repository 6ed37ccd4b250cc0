// CameraSource: one camera, whatever produces its pixels (V4L2 device, simulated world, a test).
//   name                       the config's camera name (cam_high, cam_low, cam_left_wrist, cam_right_wrist)
//   width, height              size of delivered frames (RGB8), fixed once started
//   start() / stop()           start/stop the capture thread (idempotent stop)
//   copyLatestFrame(into:)     newest complete frame into a caller buffer (≥ width·height·3 bytes); no
//                              allocation, no lock, returns nil until the first frame
//   latestFrame()              allocating convenience returning a CameraFrame
public protocol CameraSource: AnyObject, Sendable {
    var name: String { get }
    var width: Int { get }
    var height: Int { get }
    func start() throws(CameraError)
    func stop()
    /// Copies the newest complete frame; nil when there is none yet or the buffer is too small.
    func copyLatestFrame(into buffer: UnsafeMutableRawBufferPointer) -> CameraFrameHeader?
}

extension CameraSource {
    public var frameByteCount: Int { width * height * CameraPixelFormat.rgb8.bytesPerPixel }

    public func latestFrame() -> CameraFrame? {
        var bytes = [UInt8](repeating: 0, count: frameByteCount)
        let header = bytes.withUnsafeMutableBytes { copyLatestFrame(into: $0) }
        guard let header else { return nil }
        return CameraFrame(header: header, bytes: bytes)
    }
}
