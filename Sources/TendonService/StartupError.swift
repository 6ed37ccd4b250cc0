/// Why the robot may not move. One line each, naming the bus and servo and what to do.
public struct StartupError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
