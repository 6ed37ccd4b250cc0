import Foundation
import Testing
@testable import TendonHardware

@Suite struct CameraConfigTests {
    private func parse(_ text: String) throws(ConfigError) -> RobotConfig {
        try RobotConfig.parse(ConfigNode.parse(text, file: "aloha.yaml"))
    }

    private func original() throws -> String { try String(contentsOfFile: alohaConfigPath, encoding: .utf8) }

    private func line(of needle: String, in text: String) throws -> Int {
        try #require(text.components(separatedBy: "\n").firstIndex { $0.contains(needle) }) + 1
    }

    @Test func alohaListsItsFourCamerasInOrder() throws {
        let config = try RobotConfig.load(path: alohaConfigPath)
        #expect(config.cameras.map(\.name) == ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"])
        let high = try #require(config.camera(named: "cam_high"))
        #expect(high.format == .mjpeg && high.width == 640 && high.height == 480 && high.fps == 30)
        #expect(high.device.hasPrefix("/dev/v4l/by-id/"))
        #expect(config.cameras.map(\.name) == SimWorld.cameraNames)
    }

    @Test func camerasAreOptional() throws {
        let text = try original()
        let cut = try #require(text.range(of: "\ncameras:"))
        let config = try parse(String(text[..<cut.lowerBound]))
        #expect(config.cameras.isEmpty)
    }

    @Test func badCameraEntriesNameFileLineAndKey() throws {
        let text = try original()
        let cases: [(String, String, String, String)] = [
            ("format: mjpeg, width: 640, height: 480, fps: 30}\n  cam_low:", "format: h264, width: 640, height: 480, fps: 30}\n  cam_low:",
             "cameras.cam_high.format", "'h264' is not one of: mjpeg, yuyv"),
            ("cam_high:        {device: /dev/v4l", "cam_high:        {dev: /dev/v4l", "cameras.cam_high.dev", "unknown key"),
            ("fps: 30}\n  cam_low:", "fps: 500}\n  cam_low:", "cameras.cam_high.fps", "out of range 1...240"),
            ("{device: /dev/v4l/by-id/usb-cam_low-video-index0,         format: mjpeg, width: 640",
             "{device: /dev/v4l/by-id/usb-cam_low-video-index0,         format: yuyv, width: 641",
             "cameras.cam_low.width", "even width"),
            ("{device: /dev/v4l/by-id/usb-cam_high", "{device: video0, x: /dev/v4l/by-id/usb-cam_high",
             "cameras.cam_high", "unknown key"),
        ]
        for (old, new, key, message) in cases {
            #expect(text.contains(old), "fixture text not found: \(old)")
            let edited = text.replacingOccurrences(of: old, with: new)
            do {
                _ = try parse(edited)
                Issue.record("accepted: \(new)")
            } catch {
                #expect(error.key.hasPrefix(key), "\(error)")
                #expect(error.message.contains(message), "\(error)")
                let camera = key.split(separator: ".")[1]
                #expect(error.line == (try line(of: "  \(camera):", in: edited)), "\(error)")
                #expect(error.description.hasPrefix("aloha.yaml:"))
            }
        }
        do {
            _ = try parse(text.replacingOccurrences(of: "/dev/v4l/by-id/usb-cam_high-video-index0", with: "video0"))
            Issue.record("relative device accepted")
        } catch {
            #expect(error.key == "cameras.cam_high.device" && error.message.contains("absolute device path"))
        }
        let cut = try #require(text.range(of: "\ncameras:"))
        do {
            _ = try parse(String(text[..<cut.lowerBound]) + "\ncameras: {}\n")
            Issue.record("empty cameras accepted")
        } catch {
            #expect(error.key == "cameras" && error.message.contains("at least one camera"))
        }
    }
}
