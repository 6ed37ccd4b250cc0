import Foundation
import Glibc
import TendonHardware

/// Reads, changes and writes `Calibration/<robot-id>.yaml`: entries of servos a command did not touch are
/// kept; `created` is set once, `updated` on every write; the file is replaced atomically (temporary file
/// in the same directory, fsync, rename), so a crash leaves the old or the new file, never half of one.
public enum CalibrationStore {
    /// ISO 8601 in UTC, whole seconds ("2026-11-25T17:40:00Z").
    public static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// The robot's current file, or an empty one when there is none yet. A file that does not parse or
    /// belongs to another robot is refused (a technician decides whether to delete it).
    public static func load(robot: RobotConfig, now: Date = Date()) throws(CalibrationError) -> CalibrationFile {
        let path = robot.calibrationPath
        guard FileManager.default.fileExists(atPath: path) else {
            let stamp = timestamp(now)
            return CalibrationFile(path: path, robotID: robot.robotID, created: stamp, updated: stamp, buses: [:])
        }
        let file: CalibrationFile
        do {
            file = try CalibrationFile.load(path: path)
        } catch {
            throw CalibrationError("\(error.description) (fix or remove the file, then calibrate again)")
        }
        guard file.robotID == robot.robotID else {
            throw CalibrationError("\(path) is the calibration of robot '\(file.robotID)', not '\(robot.robotID)'; point `calibration:` in \(robot.file) at this robot's own file")
        }
        return file
    }

    /// Sets or replaces one servo's entry, keeping the others in id order.
    public static func set(_ servo: ServoCalibration, bus: String, in file: inout CalibrationFile) {
        var list = file.buses[bus] ?? []
        list.removeAll { $0.id == servo.id }
        list.append(servo)
        list.sort { $0.id < $1.id }
        file.buses[bus] = list
    }

    /// Stamps `updated` and writes the file atomically; the text is parsed back first, so a file that
    /// the runtime would refuse is never written.
    public static func save(_ file: CalibrationFile, now: Date = Date()) throws(CalibrationError) {
        var file = file
        file.updated = timestamp(now)
        let text = file.yaml()
        do {
            _ = try CalibrationFile.parse(ConfigNode.parse(text, file: file.path))
        } catch {
            throw CalibrationError("refusing to write an invalid calibration: \(error.description)")
        }
        try writeAtomically(text, to: file.path)
    }

    static func writeAtomically(_ text: String, to path: String) throws(CalibrationError) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw CalibrationError("\(dir): cannot create the directory: \(error.localizedDescription)")
        }
        let temp = dir + "/." + url.lastPathComponent + ".tmp.\(getpid())"
        let fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CalibrationError("\(temp): cannot create: \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var ok = true
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { ok = false; return }
                offset += n
            }
        }
        let code = errno
        guard ok, fsync(fd) == 0 else {
            Glibc.close(fd)
            unlink(temp)
            throw CalibrationError("\(path): write failed: \(String(cString: strerror(ok ? errno : code)))")
        }
        Glibc.close(fd)
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw CalibrationError("\(path): cannot replace the file: \(String(cString: strerror(code)))")
        }
        let dirFD = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            Glibc.close(dirFD)
        }
    }
}
