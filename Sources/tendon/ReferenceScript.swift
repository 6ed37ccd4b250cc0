import Foundation

/// Runs a `Tools/reference` script with the reference Python (the benchmarks' peer in the same run) and
/// decodes the JSON object on the last line of its stdout. A missing interpreter or script, or a script that
/// fails, ends the command with one line; `pythonHint` says how to get one, `label` names the run.
func runReferenceScript<Result: Decodable>(python: String, script: String, arguments: [String], pythonHint: String,
                                           label: String) -> Result {
    guard FileManager.default.isExecutableFile(atPath: python) else {
        fail("reference python \(python) not found (\(pythonHint))")
    }
    guard FileManager.default.fileExists(atPath: script) else {
        fail("reference script \(script) not found (run from the repository root or pass --script)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [script] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { fail("cannot run \(python): \(error.localizedDescription)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
          let result = try? JSONDecoder().decode(Result.self, from: Data(line.utf8))
    else { fail("\(label) failed (exit \(process.terminationStatus))") }
    return result
}
