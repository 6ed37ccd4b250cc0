import CTendonSupport
import Glibc

/// `SerialTransport` over any tty with raw termios: USB adapters through their /dev node, and the
/// pseudo-terminals of the simulator and the tests (libserialport cannot open those, DESIGN §4).
///
/// Latency note for FTDI adapters (the U2D2 is one): the driver batches received bytes for
/// `latency_timer` ms (default 16) before handing them over, which dominates a Dynamixel round trip.
/// Set `/sys/bus/usb-serial/devices/ttyUSBn/latency_timer` to 1 (udev rule or `tendon doctor`);
/// this class does not write sysfs because it usually runs without the permission to.
public final class TermiosSerialPort: SerialTransport {
    public let name: String
    public private(set) var baudRate: Int
    private var fd: Int32
    private let exclusive: Bool

    /// Opens `path` as 8N1, no flow control, raw, non-blocking, and (by default) exclusive, so a second
    /// program cannot interleave bytes on the bus.
    public init(path: String, baudRate: Int, exclusive: Bool = true) throws(SerialError) {
        let fd = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SerialError(.openFailed, errno: errno) }
        self.name = path
        self.baudRate = baudRate
        self.fd = fd
        self.exclusive = exclusive
        do throws(SerialError) {
            if exclusive {
                let code = tendon_tty_set_exclusive(fd, 1)
                if code != 0 { throw SerialError(.openFailed, errno: code) }
            }
            try Self.configureRaw(fd: fd)
            try Self.applyBaud(fd: fd, baudRate)
        } catch {
            Glibc.close(fd)
            self.fd = -1
            throw error
        }
    }

    /// Takes ownership of an already open tty descriptor and (with `configureLine`) makes it raw at
    /// `baudRate`. Pass false for a pty master: Linux applies termios calls on a master to the slave,
    /// which would overwrite the line settings of the client on the other side.
    public init(adoptingDescriptor fd: Int32, name: String, baudRate: Int,
                configureLine: Bool = true) throws(SerialError) {
        guard fd >= 0 else { throw SerialError(.openFailed, errno: EBADF) }
        self.name = name
        self.baudRate = baudRate
        self.fd = fd
        self.exclusive = false
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 {
            throw SerialError(.configureFailed, errno: errno)
        }
        if configureLine {
            try Self.configureRaw(fd: fd)
            try Self.applyBaud(fd: fd, baudRate)
        }
    }

    deinit { close() }

    /// The descriptor, for callers that multiplex several ports with poll(); -1 once closed.
    public var fileDescriptor: Int32 { fd }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) {
        try DescriptorIO.writeAll(fd: fd, bytes)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, deadlineNanos: UInt64) throws(SerialError) -> Int {
        try DescriptorIO.read(fd: fd, into: buffer, deadlineNanos: deadlineNanos)
    }

    public func discardInput() throws(SerialError) {
        guard fd >= 0 else { throw SerialError(.closed) }
        if tcflush(fd, TCIFLUSH) != 0 {
            let code = errno
            throw SerialError(DescriptorIO.isDisconnect(code) ? .disconnected : .configureFailed, errno: code)
        }
    }

    public func setBaudRate(_ baud: Int) throws(SerialError) {
        guard fd >= 0 else { throw SerialError(.closed) }
        try Self.applyBaud(fd: fd, baud)
        baudRate = baud
    }

    public func close() {
        guard fd >= 0 else { return }
        // TIOCEXCL outlives this descriptor while another one (the simulator's slave holder) keeps the
        // tty open, which would lock the next unprivileged client out.
        if exclusive { _ = tendon_tty_set_exclusive(fd, 0) }
        Glibc.close(fd)
        fd = -1
    }

    static func configureRaw(fd: Int32) throws(SerialError) {
        var tio = termios()
        guard tcgetattr(fd, &tio) == 0 else { throw SerialError(.configureFailed, errno: errno) }
        cfmakeraw(&tio)
        tio.c_cflag |= tcflag_t(CLOCAL) | tcflag_t(CREAD)
        tio.c_cflag &= ~(tcflag_t(CSTOPB) | tcflag_t(PARENB) | tcflag_t(CRTSCTS) | tcflag_t(CSIZE))
        tio.c_cflag |= tcflag_t(CS8)
        tio.c_iflag &= ~(tcflag_t(IXON) | tcflag_t(IXOFF) | tcflag_t(IXANY))
        // VMIN=0/VTIME=0: read never blocks in the kernel; waiting is ppoll's job, bounded by a deadline.
        withUnsafeMutableBytes(of: &tio.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(fd, TCSANOW, &tio) == 0 else { throw SerialError(.configureFailed, errno: errno) }
    }

    /// Standard rates go through cfsetspeed; others (e.g. Dynamixel's 4.5 Mbps) through termios2 BOTHER.
    static func applyBaud(fd: Int32, _ baud: Int) throws(SerialError) {
        guard baud > 0, baud <= Int(UInt32.max) else { throw SerialError(.unsupportedBaudRate, errno: EINVAL) }
        if let speed = standardSpeed(baud) {
            var tio = termios()
            guard tcgetattr(fd, &tio) == 0 else { throw SerialError(.configureFailed, errno: errno) }
            guard cfsetispeed(&tio, speed) == 0, cfsetospeed(&tio, speed) == 0 else {
                throw SerialError(.unsupportedBaudRate, errno: errno)
            }
            guard tcsetattr(fd, TCSANOW, &tio) == 0 else { throw SerialError(.configureFailed, errno: errno) }
        } else {
            let code = tendon_tty_set_custom_baud(fd, UInt32(baud))
            if code != 0 { throw SerialError(.unsupportedBaudRate, errno: code) }
        }
    }

    static func standardSpeed(_ baud: Int) -> speed_t? {
        switch baud {
        case 9600: return speed_t(B9600)
        case 19200: return speed_t(B19200)
        case 38400: return speed_t(B38400)
        case 57600: return speed_t(B57600)
        case 115200: return speed_t(B115200)
        case 230400: return speed_t(B230400)
        case 460800: return speed_t(B460800)
        case 500000: return speed_t(B500000)
        case 576000: return speed_t(B576000)
        case 921600: return speed_t(B921600)
        case 1_000_000: return speed_t(B1000000)
        case 1_152_000: return speed_t(B1152000)
        case 1_500_000: return speed_t(B1500000)
        case 2_000_000: return speed_t(B2000000)
        case 2_500_000: return speed_t(B2500000)
        case 3_000_000: return speed_t(B3000000)
        case 3_500_000: return speed_t(B3500000)
        case 4_000_000: return speed_t(B4000000)
        default: return nil
        }
    }
}
