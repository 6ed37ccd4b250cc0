import Glibc

/// A byte pipe to one motor bus. Two implementations: `TermiosSerialPort` (any tty, including the
/// pseudo-terminals the simulator and tests use) and `LibSerialPort` (real USB adapters, found by
/// USB VID/PID/serial). See DESIGN §4 for why both exist.
///
/// The real-time cycle calls `write` and `read` on every period, so implementations must not allocate
/// on those paths and report failure through the typed `SerialError` (no existential boxing).
public protocol SerialTransport: AnyObject {
    /// The device path or port name, for messages.
    var name: String { get }
    /// Line rate in bit/s; the Dynamixel layer derives packet timeouts from it.
    var baudRate: Int { get }
    /// Writes every byte or throws. Returns only when the bytes are handed to the driver.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError)
    /// Reads what is available into `buffer`, waiting until `deadlineNanos` (MonotonicClock) for at
    /// least one byte. Returns the number of bytes read; 0 means the deadline passed.
    func read(into buffer: UnsafeMutableRawBufferPointer, deadlineNanos: UInt64) throws(SerialError) -> Int
    /// Drops bytes already received but not read (stale replies after a timeout).
    func discardInput() throws(SerialError)
    /// Changes the line rate (technicians' scans across baud rates).
    func setBaudRate(_ baud: Int) throws(SerialError)
    func close()
}

/// Serial failures carry an errno and a kind, never a heap-allocated payload, so they can be thrown
/// from the real-time path. `description` builds the human message off that path.
public struct SerialError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case openFailed, configureFailed, readFailed, writeFailed
        /// The device went away (USB adapter unplugged, pty master closed): EIO, ENXIO, ENODEV or EOF.
        case disconnected
        case unsupportedBaudRate
        case closed
    }
    public var kind: Kind
    public var errno: Int32

    public init(_ kind: Kind, errno: Int32 = 0) {
        self.kind = kind
        self.errno = errno
    }

    public var description: String {
        let reason = errno == 0 ? "" : ": " + String(cString: strerror(errno))
        switch kind {
        case .openFailed: return "cannot open serial port" + reason
        case .configureFailed: return "cannot configure serial port" + reason
        case .readFailed: return "serial read failed" + reason
        case .writeFailed: return "serial write failed" + reason
        case .disconnected: return "serial device disconnected" + reason
        case .unsupportedBaudRate: return "baud rate not supported by this device" + reason
        case .closed: return "serial port is closed"
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the one clock of the control path (deadlines, timestamps).
public enum MonotonicClock {
    @inline(__always)
    public static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
