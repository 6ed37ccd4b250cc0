// UVC camera discovery (what `tendon calibrate cameras` prints):
//   V4L2Devices.list(directory: "/dev") -> [V4L2DeviceInfo]   every /dev/videoN that is a capture node
//       (metadata nodes and non-video devices are skipped); [] on a machine without cameras
//   V4L2Devices.describe(path:) throws(CameraError) -> V4L2DeviceInfo   one device, errors named
//   V4L2DeviceInfo: driver, card, bus, formats → sizes → frame rates
//   fourccString(_:)
import CTendonV4L2
import Foundation

public struct V4L2FrameSize: Sendable, Equatable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    /// Frame rates (frames per second) the driver lists for this size; continuous ranges give their maximum.
    public var framesPerSecond: [Double]

    public var description: String {
        let rates = framesPerSecond.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%.2f", $0) }
        return "\(width)x\(height) @ \(rates.joined(separator: "/")) fps"
    }
}

public struct V4L2FormatInfo: Sendable, Equatable {
    public var fourcc: UInt32
    public var description: String
    public var sizes: [V4L2FrameSize]
    public var fourccText: String { fourccString(fourcc) }
    /// The capture formats Tendon decodes.
    public var captureFormat: CameraCaptureFormat? {
        fourcc == tendon_v4l2_fourcc_mjpeg() ? .mjpeg : fourcc == tendon_v4l2_fourcc_yuyv() ? .yuyv : nil
    }
}

public struct V4L2DeviceInfo: Sendable, Equatable {
    public var path: String
    public var driver: String
    public var card: String
    public var busInfo: String
    public var formats: [V4L2FormatInfo]

    /// A one-line summary of what the device offers, for error messages.
    public var offered: String {
        formats.map { f in "\(f.fourccText) [\(f.sizes.map(\.description).joined(separator: ", "))]" }
            .joined(separator: "; ")
    }
}

public func fourccString(_ code: UInt32) -> String {
    String((0..<4).map { Character(UnicodeScalar(UInt8((code >> (8 * UInt32($0))) & 0xFF))) })
}

public enum V4L2Devices {
    /// Capture devices under `directory`, sorted by node number. Nodes that cannot be opened or are not
    /// capture devices are left out (a UVC camera also exposes a metadata node).
    public static func list(directory: String = "/dev") -> [V4L2DeviceInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let nodes = names.filter { $0.hasPrefix("video") && Int($0.dropFirst(5)) != nil }
            .sorted { Int($0.dropFirst(5))! < Int($1.dropFirst(5))! }
        return nodes.compactMap { try? describe(path: directory + "/" + $0) }
    }

    public static func describe(path: String) throws(CameraError) -> V4L2DeviceInfo {
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(device: path, errno: errno) }
        defer { close(fd) }
        return try describe(fd: fd, path: path)
    }

    static func describe(fd: Int32, path: String) throws(CameraError) -> V4L2DeviceInfo {
        var caps = tendon_v4l2_caps()
        let r = tendon_v4l2_querycap(fd, &caps)
        guard r == 0 else {
            // ENOTTY: the node exists but is not a V4L2 device at all.
            if r == ENOTTY { throw .notACaptureDevice(device: path) }
            throw .ioctlFailed(device: path, request: "VIDIOC_QUERYCAP", errno: r)
        }
        guard caps.is_capture != 0, caps.has_streaming != 0 else { throw .notACaptureDevice(device: path) }
        var formats: [V4L2FormatInfo] = []
        var index: UInt32 = 0
        var desc = tendon_v4l2_format_desc()
        while tendon_v4l2_enum_format(fd, index, &desc) == 0 {
            formats.append(V4L2FormatInfo(fourcc: desc.fourcc, description: text(desc.description),
                                          sizes: sizes(fd: fd, fourcc: desc.fourcc)))
            index += 1
        }
        return V4L2DeviceInfo(path: path, driver: text(caps.driver), card: text(caps.card),
                              busInfo: text(caps.bus_info), formats: formats)
    }

    private static func sizes(fd: Int32, fourcc: UInt32) -> [V4L2FrameSize] {
        var out: [V4L2FrameSize] = []
        var index: UInt32 = 0
        var size = tendon_v4l2_frame_size()
        while tendon_v4l2_enum_frame_size(fd, fourcc, index, &size) == 0 {
            out.append(V4L2FrameSize(width: Int(size.width), height: Int(size.height),
                                     framesPerSecond: rates(fd: fd, fourcc: fourcc, width: size.width, height: size.height)))
            // Stepwise/continuous ranges come as one entry: report the largest size too.
            if size.type != 1 {
                out.append(V4L2FrameSize(width: Int(size.max_width), height: Int(size.max_height),
                                         framesPerSecond: rates(fd: fd, fourcc: fourcc, width: size.max_width,
                                                                height: size.max_height)))
                break
            }
            index += 1
        }
        return out
    }

    private static func rates(fd: Int32, fourcc: UInt32, width: UInt32, height: UInt32) -> [Double] {
        var out: [Double] = []
        var index: UInt32 = 0
        var interval = tendon_v4l2_frame_interval()
        while tendon_v4l2_enum_frame_interval(fd, fourcc, width, height, index, &interval) == 0 {
            if interval.numerator > 0 { out.append(Double(interval.denominator) / Double(interval.numerator)) }
            if interval.type != 1 { break }
            index += 1
        }
        return out
    }

    static func text<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
