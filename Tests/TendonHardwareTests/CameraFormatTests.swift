import Foundation
import Testing
@testable import TendonHardware

private let cameraFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/cameras")

@Suite struct YUYVConversionTests {
    /// Reference straight from the BT.601 limited-range formula in floating point.
    private func reference(_ y: Int, _ u: Int, _ v: Int) -> [Int] {
        let c = 1.164 * Double(y - 16), d = Double(u - 128), e = Double(v - 128)
        return [c + 1.596 * e, c - 0.392 * d - 0.813 * e, c + 2.017 * d].map { Int(min(max($0.rounded(), 0), 255)) }
    }

    @Test func matchesTheBT601Formula() {
        var rng = SeededGenerator(seed: 42)
        let width = 64, height = 16, pad = 8
        let stride = width * 2 + pad
        var yuyv = (0..<(stride * height)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // Include the corners of the range.
        yuyv.replaceSubrange(0..<8, with: [16, 128, 235, 128, 0, 0, 255, 255])
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        let ok = yuyv.withUnsafeBytes { src in
            rgb.withUnsafeMutableBytes { YUYVConverter.convert(yuyv: src, width: width, height: height, bytesPerLine: stride, into: $0) }
        }
        #expect(ok)
        var worst = 0
        for y in 0..<height {
            for x in 0..<width {
                let p = y * stride + (x / 2) * 4
                let lum = Int(yuyv[p + (x % 2) * 2]), u = Int(yuyv[p + 1]), v = Int(yuyv[p + 3])
                let want = reference(lum, u, v)
                for c in 0..<3 { worst = max(worst, abs(Int(rgb[(y * width + x) * 3 + c]) - want[c])) }
            }
        }
        #expect(worst <= 1, "largest difference from the formula: \(worst)")
        #expect(Array(rgb[0..<6]) == [0, 0, 0, 255, 255, 255])
    }

    @Test func refusesShortBuffersAndOddWidths() {
        var rgb = [UInt8](repeating: 0, count: 4 * 2 * 3)
        let short = [UInt8](repeating: 0, count: 15)
        #expect(!short.withUnsafeBytes { s in rgb.withUnsafeMutableBytes { YUYVConverter.convert(yuyv: s, width: 4, height: 2, into: $0) } })
        let odd = [UInt8](repeating: 0, count: 64)
        #expect(!odd.withUnsafeBytes { s in rgb.withUnsafeMutableBytes { YUYVConverter.convert(yuyv: s, width: 3, height: 2, into: $0) } })
    }
}

@Suite struct JPEGDecoderTests {
    @Test func decodesLikePillow() throws {
        let jpeg = try Data(contentsOf: cameraFixtures.appendingPathComponent("pattern.jpg"))
        let pillow = try [UInt8](Data(contentsOf: cameraFixtures.appendingPathComponent("pattern_pillow.rgb")))
        let source = try [UInt8](Data(contentsOf: cameraFixtures.appendingPathComponent("pattern_source.rgb")))
        let decoder = JPEGDecoder()
        var rgb = [UInt8](repeating: 0, count: 48 * 32 * 3)
        let size = try jpeg.withUnsafeBytes { j in
            try rgb.withUnsafeMutableBytes { try decoder.decode(j, into: $0, expectedWidth: 48, expectedHeight: 32) }
        }
        #expect(size.width == 48 && size.height == 32)
        let vsPillow = zip(rgb, pillow).map { abs(Int($0) - Int($1)) }.max() ?? 255
        let vsSource = zip(rgb, source).map { abs(Int($0) - Int($1)) }.reduce(0, +) / rgb.count
        #expect(vsPillow <= 2, "largest difference from Pillow's decode: \(vsPillow)")
        #expect(vsSource <= 8, "mean difference from the encoded picture: \(vsSource)")
    }

    @Test func rejectsCorruptDataAndWrongSize() throws {
        let decoder = JPEGDecoder()
        var rgb = [UInt8](repeating: 0, count: 48 * 32 * 3)
        let garbage = [UInt8](repeating: 0x55, count: 100)
        #expect(throws: CameraError.self) {
            _ = try garbage.withUnsafeBytes { j in try rgb.withUnsafeMutableBytes { try decoder.decode(j, into: $0) } }
        }
        let jpeg = try Data(contentsOf: cameraFixtures.appendingPathComponent("pattern.jpg"))
        #expect(throws: CameraError.decodeFailed(device: "jpeg", reason: "frame is 48x32, expected 640x480")) {
            _ = try jpeg.withUnsafeBytes { j in
                try rgb.withUnsafeMutableBytes { try decoder.decode(j, into: $0, expectedWidth: 640, expectedHeight: 480) }
            }
        }
        var small = [UInt8](repeating: 0, count: 10)
        #expect(throws: CameraError.bufferTooSmall(needed: 48 * 32 * 3, got: 10)) {
            _ = try jpeg.withUnsafeBytes { j in try small.withUnsafeMutableBytes { try decoder.decode(j, into: $0) } }
        }
    }
}

@Suite struct V4L2DeviceTests {
    private let config = CameraConfig(name: "cam_high", device: "/dev/video-tendon-missing", format: .mjpeg,
                                      width: 640, height: 480, fps: 30)

    @Test func enumerationOfADirectoryWithoutCamerasIsEmpty() throws {
        let dir = NSTemporaryDirectory() + "tendon-v4l2-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(V4L2Devices.list(directory: dir).isEmpty)
        // A file named like a video node that is not a device is skipped, not reported as a camera.
        FileManager.default.createFile(atPath: dir + "/video0", contents: Data([1, 2, 3]))
        #expect(V4L2Devices.list(directory: dir).isEmpty)
        #expect(throws: CameraError.notACaptureDevice(device: dir + "/video0")) { try V4L2Devices.describe(path: dir + "/video0") }
        // This machine's /dev: whatever is there, listing must not fail.
        _ = V4L2Devices.list()
    }

    @Test func missingDeviceIsAClearError() {
        #expect(throws: CameraError.cannotOpen(device: config.device, errno: ENOENT)) {
            try V4L2Devices.describe(path: config.device)
        }
        let camera = V4L2Camera(config: config)
        #expect(throws: CameraError.cannotOpen(device: config.device, errno: ENOENT)) { try camera.start() }
        #expect("\(CameraError.cannotOpen(device: config.device, errno: ENOENT))"
                == "cannot open camera /dev/video-tendon-missing: No such file or directory")
        // A failed start leaves the camera stoppable and restartable (still failing the same way).
        camera.stop()
        #expect(throws: CameraError.cannotOpen(device: config.device, errno: ENOENT)) { try camera.start() }
        #expect(camera.latestFrame() == nil)
    }

    /// /dev/null opens but is no V4L2 device: QUERYCAP fails with ENOTTY.
    @Test func nonVideoDeviceIsRefusedAtQueryCap() {
        var c = config
        c.device = "/dev/null"
        #expect(throws: CameraError.notACaptureDevice(device: "/dev/null")) { try V4L2Camera(config: c).start() }
    }

    @Test func formatCheckNamesWhatTheDeviceOffers() throws {
        let info = V4L2DeviceInfo(path: "/dev/video0", driver: "uvcvideo", card: "C922", busInfo: "usb-1", formats: [
            V4L2FormatInfo(fourcc: 0x5659_5559, description: "YUYV 4:2:2",  // 'YUYV'
                           sizes: [V4L2FrameSize(width: 640, height: 480, framesPerSecond: [30, 15])]),
        ])
        #expect(fourccString(0x5659_5559) == "YUYV")
        #expect(info.formats[0].captureFormat == .yuyv)
        #expect(throws: CameraError.unsupportedFormat(device: "/dev/video0", requested: "mjpeg 640x480 @ 30 fps",
                                                      available: "YUYV [640x480 @ 30/15 fps]")) {
            try V4L2Camera.checkOffered(info: info, config: config)
        }
        var yuyv = config
        yuyv.format = .yuyv
        try V4L2Camera.checkOffered(info: info, config: yuyv)
        yuyv.fps = 60
        #expect(throws: CameraError.self) { try V4L2Camera.checkOffered(info: info, config: yuyv) }
        yuyv.fps = 30
        yuyv.width = 1280
        #expect(throws: CameraError.self) { try V4L2Camera.checkOffered(info: info, config: yuyv) }
    }
}
