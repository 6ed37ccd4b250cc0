// The optional `cameras:` section of a robot config (Configs/robots/*.yaml):
//   cameras:
//     cam_high: {device: /dev/v4l/by-id/...-video-index0, format: mjpeg, width: 640, height: 480, fps: 30}
// Names are the ones the embodiment's camera list uses; file order is kept.
import Foundation

public enum CameraCaptureFormat: String, Sendable, CaseIterable {
    case mjpeg, yuyv
}

public struct CameraConfig: Sendable, Equatable {
    public var name: String
    public var device: String
    public var format: CameraCaptureFormat
    public var width: Int
    public var height: Int
    public var fps: Int

    public init(name: String, device: String, format: CameraCaptureFormat, width: Int, height: Int, fps: Int) {
        self.name = name
        self.device = device
        self.format = format
        self.width = width
        self.height = height
        self.fps = fps
    }
}

extension RobotConfig {
    static func parseCameras(_ node: ConfigNode) throws(ConfigError) -> [CameraConfig] {
        var cameras: [CameraConfig] = []
        for (name, item) in try node.entries() {
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw item.error("camera name must be letters, digits, '_' or '-'")
            }
            try item.allowOnly(["device", "format", "width", "height", "fps"])
            let device = try item.string("device")
            guard device.hasPrefix("/") else {
                throw try item.required("device").error("'\(device)' must be an absolute device path (e.g. /dev/video0)")
            }
            let widthNode = try item.required("width")
            let width = try widthNode.int(in: 16...4096)
            let format = try item.required("format").choice(CameraCaptureFormat.self)
            if format == .yuyv, width % 2 != 0 {
                throw widthNode.error("YUYV frames need an even width (found \(width))")
            }
            cameras.append(CameraConfig(name: name, device: device, format: format, width: width,
                                        height: try item.int("height", in: 16...4096),
                                        fps: try item.int("fps", in: 1...240)))
        }
        guard !cameras.isEmpty else { throw node.error("list at least one camera, or leave 'cameras' out") }
        return cameras
    }
}
