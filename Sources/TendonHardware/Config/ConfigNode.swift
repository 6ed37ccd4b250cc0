import Foundation
import Yams

/// A configuration error that names the file, the line and the key, so a technician can fix the YAML
/// without reading Swift.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int?
    public var key: String
    public var message: String

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key): \(message)"
    }
}

/// A YAML node that remembers where it came from (file, line, dotted key path). Every accessor throws a
/// `ConfigError` with that position when the value is missing or has the wrong type or range.
public struct ConfigNode {
    public let node: Node
    public let file: String
    public let path: String

    public init(node: Node, file: String, path: String = "") {
        self.node = node
        self.file = file
        self.path = path
    }

    /// Parses YAML text; a syntax error is reported with its line.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> ConfigNode {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, line: nil, key: "", message: "file is empty")
            }
            return ConfigNode(node: node, file: file)
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), key: "", message: "invalid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, line: nil, key: "", message: "invalid YAML: \(error)")
        }
    }

    public static func load(path: String) throws(ConfigError) -> ConfigNode {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot read file (\(error.localizedDescription))")
        }
        return try parse(text, file: path)
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _):
            return mark.line
        default:
            return nil
        }
    }

    public var line: Int? { node.mark?.line }

    public func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: line, key: path, message: message)
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func has(_ key: String) -> Bool { node.mapping?[key] != nil }

    /// The keys of a mapping in file order.
    public func keys() throws(ConfigError) -> [String] {
        guard let mapping = node.mapping else { throw error("expected a mapping") }
        return mapping.keys.compactMap(\.string)
    }

    /// Rejects keys the schema does not know, so a typo is not silently ignored.
    public func allowOnly(_ allowed: Set<String>) throws(ConfigError) {
        guard let mapping = node.mapping else { throw error("expected a mapping") }
        for (key, _) in mapping {
            let name = key.string ?? "?"
            if !allowed.contains(name) {
                throw ConfigError(file: file, line: key.mark?.line, key: childPath(name),
                                  message: "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }

    public func optional(_ key: String) throws(ConfigError) -> ConfigNode? {
        guard let mapping = node.mapping else { throw error("expected a mapping") }
        guard let child = mapping[key] else { return nil }
        if case .scalar(let scalar) = child, scalar.string == "~" || scalar.string == "null" { return nil }
        return ConfigNode(node: child, file: file, path: childPath(key))
    }

    public func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let child = try optional(key) else { throw error("missing required key '\(key)'") }
        return child
    }

    public func elements() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list") }
        return sequence.enumerated().map { ConfigNode(node: $1, file: file, path: "\(path)[\($0)]") }
    }

    public func entries() throws(ConfigError) -> [(String, ConfigNode)] {
        guard let mapping = node.mapping else { throw error("expected a mapping") }
        return mapping.map { key, value in
            let name = key.string ?? "?"
            return (name, ConfigNode(node: value, file: file, path: childPath(name)))
        }
    }

    public func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a text value") }
        return scalar.string
    }

    public func int(in range: ClosedRange<Int>? = nil) throws(ConfigError) -> Int {
        guard case .scalar = node, let value = node.int else {
            throw error("expected an integer, found '\(node.string ?? "a non-scalar value")'")
        }
        if let range, !range.contains(value) {
            throw error("\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public func double(in range: ClosedRange<Double>? = nil) throws(ConfigError) -> Double {
        guard case .scalar = node, let value = node.float, value.isFinite else {
            throw error("expected a finite number, found '\(node.string ?? "a non-scalar value")'")
        }
        if let range, !range.contains(value) {
            throw error("\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public func bool() throws(ConfigError) -> Bool {
        guard case .scalar = node, let value = node.bool else {
            throw error("expected true or false, found '\(node.string ?? "a non-scalar value")'")
        }
        return value
    }

    /// A value from a fixed vocabulary; the error lists the accepted words.
    public func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws(ConfigError) -> T
    where T.RawValue == String {
        let text = try string()
        guard let value = T(rawValue: text) else {
            throw error("'\(text)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    // Convenience for `required(key).x()`.
    public func string(_ key: String) throws(ConfigError) -> String { try required(key).string() }
    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(ConfigError) -> Int {
        try required(key).int(in: range)
    }
    public func double(_ key: String, in range: ClosedRange<Double>? = nil) throws(ConfigError) -> Double {
        try required(key).double(in: range)
    }
    public func bool(_ key: String) throws(ConfigError) -> Bool { try required(key).bool() }
}
