import ArgumentParser
import Foundation
import TendonHardware

/// `tendon calibrate cameras`: what video devices this machine has, what each offers, and whether the
/// robot config's cameras can be opened as configured. Technicians use it to fill in `cameras:`.
struct CalibrateCamerasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cameras",
        abstract: "List video capture devices with their formats, sizes and frame rates, and check the config's cameras.",
        discussion: """
            Without --robot, lists every /dev/videoN capture device. With --robot, also checks each camera of \
            the config's `cameras:` section (device present, format/size/rate offered) and exits non-zero if \
            one does not match. --json prints the same as one JSON object.
            """)

    @Option(help: "Robot config whose cameras are checked (e.g. Configs/robots/aloha.yaml).")
    var robot: String?

    @Option(help: "Directory scanned for video nodes.")
    var devDirectory = "/dev"

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let devices = V4L2Devices.list(directory: devDirectory)
        var checks: [(camera: CameraConfig, problem: String?)] = []
        if let robot {
            let config: RobotConfig
            do { config = try RobotConfig.load(path: robot) } catch { throw ValidationError(error.description) }
            guard !config.cameras.isEmpty else { throw ValidationError("\(robot) has no 'cameras:' section") }
            for camera in config.cameras { checks.append((camera, Self.problem(with: camera))) }
        }
        if json {
            try printJSON(devices: devices, checks: checks)
        } else {
            if devices.isEmpty { print("no video capture devices under \(devDirectory)") }
            for d in devices {
                print("\(d.path): \(d.card) (\(d.driver), \(d.busInfo))")
                for f in d.formats {
                    print("  \(f.fourccText) \(f.description)\(f.captureFormat == nil ? " (not decoded by Tendon)" : "")")
                    for s in f.sizes { print("    \(s)") }
                }
            }
            for c in checks {
                print("\(c.camera.name): \(c.camera.device) \(c.camera.format.rawValue) \(c.camera.width)x\(c.camera.height) @ \(c.camera.fps) fps: \(c.problem ?? "ok")")
            }
        }
        let bad = checks.filter { $0.problem != nil }
        if !bad.isEmpty {
            throw ValidationError("\(bad.count) of \(checks.count) cameras cannot be opened as configured: "
                                  + bad.map { "\($0.camera.name) (\($0.problem!))" }.joined(separator: "; "))
        }
    }

    static func problem(with camera: CameraConfig) -> String? {
        do {
            let info = try V4L2Devices.describe(path: camera.device)
            try V4L2Camera.checkOffered(info: info, config: camera)
            return nil
        } catch {
            return error.description
        }
    }

    private func printJSON(devices: [V4L2DeviceInfo], checks: [(camera: CameraConfig, problem: String?)]) throws {
        let object: [String: Any] = [
            "devices": devices.map { d in
                ["path": d.path, "card": d.card, "driver": d.driver, "bus": d.busInfo,
                 "formats": d.formats.map { f in
                     ["fourcc": f.fourccText, "description": f.description,
                      "sizes": f.sizes.map { ["width": $0.width, "height": $0.height, "fps": $0.framesPerSecond] }] as [String: Any]
                 }] as [String: Any]
            },
            "cameras": checks.map { c in
                ["name": c.camera.name, "device": c.camera.device, "ok": c.problem == nil,
                 "problem": c.problem ?? NSNull()] as [String: Any]
            },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
