import Foundation
import Glibc

/// Why a calibration step stopped. One line, naming the bus, servo or joint and what to do.
public struct CalibrationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The technician's side of a calibration: prompts and tables go out, answers come in. Answers come from
/// a script (one answer per line, the lines a person would type), else from standard input. `assumeYes`
/// answers every confirmation and every "press Enter" itself (the simulator, CI).
///
/// `onPrompt` is called with a prompt's key just before its answer is taken: tests pose the simulated
/// arms there, as a technician would before pressing Enter.
public final class CalibrationConsole {
    public let assumeYes: Bool
    /// True when output goes to a terminal: live tables redraw in place.
    public let interactiveOutput: Bool
    public var onPrompt: ((String) -> Void)?
    /// Standard input reached its end while waiting for Enter.
    public private(set) var inputEnded = false
    private var script: [String]?
    private var scriptIndex = 0
    private let output: (String) -> Void

    public init(assumeYes: Bool = false, script: [String]? = nil, interactiveOutput: Bool = false,
                output: @escaping (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) {
        self.assumeYes = assumeYes
        self.script = script
        self.interactiveOutput = interactiveOutput
        self.output = output
    }

    /// Reads a `--script` file: one answer per line.
    public static func scriptLines(path: String) throws(CalibrationError) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CalibrationError("\(path): cannot read the script file")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    public var isScripted: Bool { script != nil }

    public func write(_ text: String) { output(text) }
    public func line(_ text: String) { output(text + "\n") }

    /// The next answer; nil at the end of the script or of standard input.
    private func nextAnswer() -> String? {
        if let script {
            guard scriptIndex < script.count else { return nil }
            defer { scriptIndex += 1 }
            return script[scriptIndex]
        }
        return Swift.readLine(strippingNewline: true)
    }

    /// Asks "question [y/N]"; only "y" or "yes" (any case) agrees.
    public func confirm(_ question: String, key: String) throws(CalibrationError) -> Bool {
        write(question + " [y/N] ")
        onPrompt?(key)
        if assumeYes {
            line("y (--yes)")
            return true
        }
        guard let answer = nextAnswer() else {
            line("")
            throw CalibrationError("no answer to \"\(question)\" (input ended); answer y, or pass --yes")
        }
        if isScripted { line(answer) }
        let word = answer.trimmingCharacters(in: .whitespaces).lowercased()
        return word == "y" || word == "yes"
    }

    /// Tells the technician what to do and waits for Enter.
    public func waitForEnter(_ instruction: String, key: String) throws(CalibrationError) {
        write(instruction + " Press Enter when done. ")
        onPrompt?(key)
        if assumeYes {
            line("(--yes)")
            return
        }
        guard nextAnswer() != nil else {
            line("")
            throw CalibrationError("input ended while waiting for: \(instruction)")
        }
        if isScripted { line("") }
    }

    /// Non-blocking: true once the technician pressed Enter on standard input (never for scripts and
    /// `--yes`, which finish by time or sample count).
    public func enterPressed() -> Bool {
        guard script == nil, !assumeYes else { return false }
        var fds = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        guard !inputEnded, poll(&fds, 1, 0) > 0, fds.revents & (Int16(POLLIN) | Int16(POLLHUP)) != 0 else { return false }
        // At the end of input (/dev/null, a closed pipe) no Enter will ever come: `inputEnded` says so.
        if Swift.readLine() != nil { return true }
        inputEnded = true
        return false
    }
}
