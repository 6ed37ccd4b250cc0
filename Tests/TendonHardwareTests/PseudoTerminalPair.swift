import Glibc
import TendonHardware

// glibc declares these only under _XOPEN_SOURCE, which the Glibc module does not set; they take and
// return plain C ints, so binding them by symbol name is ABI-safe.
@_silgen_name("posix_openpt") private func c_posix_openpt(_ flags: Int32) -> Int32
@_silgen_name("grantpt") private func c_grantpt(_ fd: Int32) -> Int32
@_silgen_name("unlockpt") private func c_unlockpt(_ fd: Int32) -> Int32
@_silgen_name("ptsname_r") private func c_ptsname_r(_ fd: Int32, _ buf: UnsafeMutablePointer<CChar>, _ len: Int) -> Int32

/// A pseudo-terminal for tests: `master` is the peer's end, `slavePath`/`slave` the "serial port"
/// (raw mode, as a real adapter is configured). Test-only: production termios code lives elsewhere.
final class PseudoTerminalPair {
    let master: Int32
    let slave: Int32
    let slavePath: String

    struct Failure: Error, CustomStringConvertible {
        var step: String
        var errno: Int32
        var description: String { "\(step) failed: \(String(cString: strerror(errno)))" }
    }

    init() throws {
        let m = c_posix_openpt(O_RDWR | O_NOCTTY)
        guard m >= 0 else { throw Failure(step: "posix_openpt", errno: errno) }
        var name = [CChar](repeating: 0, count: 128)
        guard c_grantpt(m) == 0, c_unlockpt(m) == 0, c_ptsname_r(m, &name, name.count) == 0 else {
            let e = errno
            Glibc.close(m)
            throw Failure(step: "grantpt/unlockpt/ptsname_r", errno: e)
        }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let s = open(path, O_RDWR | O_NOCTTY)
        guard s >= 0 else {
            let e = errno
            Glibc.close(m)
            throw Failure(step: "open \(path)", errno: e)
        }
        var t = termios()
        tcgetattr(s, &t)
        cfmakeraw(&t)
        tcsetattr(s, TCSANOW, &t)
        master = m
        slave = s
        slavePath = path
    }

    func close() {
        Glibc.close(slave)
        Glibc.close(master)
    }
}

/// Minimal `SerialTransport` over a file descriptor (poll for deadlines), enough to drive the bus
/// against a pty in tests.
final class FileDescriptorTransport: SerialTransport {
    let name: String
    let baudRate: Int
    let fd: Int32

    init(fd: Int32, name: String, baudRate: Int = 1_000_000) {
        self.fd = fd
        self.name = name
        self.baudRate = baudRate
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw SerialError(.writeFailed, errno: errno)
            }
            offset += n
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadlineNanos: UInt64) throws(SerialError) -> Int {
        while true {
            let now = MonotonicClock.nowNanos()
            if now >= deadlineNanos { return 0 }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min((deadlineNanos - now + 999_999) / 1_000_000, 1000))
            let r = poll(&p, 1, ms)
            if r < 0 {
                if errno == EINTR { continue }
                throw SerialError(.readFailed, errno: errno)
            }
            if r == 0 { continue }
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n > 0 { return n }
            if n == 0 || errno == EIO { throw SerialError(.disconnected, errno: errno) }
            if errno != EAGAIN && errno != EINTR { throw SerialError(.readFailed, errno: errno) }
        }
    }

    func discardInput() throws(SerialError) {
        if tcflush(fd, TCIFLUSH) != 0 { throw SerialError(.configureFailed, errno: errno) }
    }

    func setBaudRate(_ baud: Int) throws(SerialError) {}
    func close() {}
}
