import CTendonSupport
import Glibc

/// A pseudo-terminal pair: the simulator serves the master side, clients open `slavePath` like any
/// serial device (the termios transport, pyserial, dynamixel_sdk).
///
/// The pair keeps one descriptor on the slave open itself. Without it the master reads EIO and polls
/// POLLHUP whenever no client happens to have the slave open (between test cases, while a client
/// reconnects), and the slave's line discipline would start in cooked mode with echo.
public final class PseudoTerminal {
    public private(set) var masterFD: Int32
    public let slavePath: String
    /// A symlink to the slave made at creation (e.g. a stable name in a run directory), removed on close.
    public let linkPath: String?
    private var slaveHolderFD: Int32
    private var linked = false

    /// `lineRate` presets the slave's speed, so a client that never sets one is at the bus's rate.
    public init(symlink: String? = nil, lineRate: Int? = nil) throws(SerialError) {
        var master: Int32 = -1
        var path = [CChar](repeating: 0, count: 128)
        let code = tendon_pty_open(&master, &path, path.count)
        guard code == 0 else { throw SerialError(.openFailed, errno: code) }
        let slavePath = String(decoding: path.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let holder = Glibc.open(slavePath, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard holder >= 0 else {
            let code = errno
            Glibc.close(master)
            throw SerialError(.openFailed, errno: code)
        }
        self.masterFD = master
        self.slaveHolderFD = holder
        self.slavePath = slavePath
        self.linkPath = symlink
        do throws(SerialError) {
            // One call covers both sides: Linux applies termios requests on a master to its slave.
            try TermiosSerialPort.configureRaw(fd: holder)
            if let lineRate { try TermiosSerialPort.applyBaud(fd: holder, lineRate) }
            if let symlink {
                unlink(symlink)
                if Glibc.symlink(slavePath, symlink) != 0 { throw SerialError(.openFailed, errno: errno) }
                linked = true
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Hands the master descriptor to a caller that will own and close it (the simulated bus).
    /// Afterwards `close()` only releases the slave holder and the symlink.
    public func takeMaster() -> Int32 {
        let fd = masterFD
        masterFD = -1
        return fd
    }

    /// The line rate the slave side is set to by whoever opened it last (the simulator answers only
    /// at the rate its servos are configured for, like a real bus). Nil once closed.
    public func slaveLineRate() -> Int? {
        guard slaveHolderFD >= 0 else { return nil }
        var baud: UInt32 = 0
        guard tendon_tty_get_baud(slaveHolderFD, &baud) == 0 else { return nil }
        return Int(baud)
    }

    public func close() {
        if masterFD >= 0 { Glibc.close(masterFD); masterFD = -1 }
        if slaveHolderFD >= 0 { Glibc.close(slaveHolderFD); slaveHolderFD = -1 }
        if linked, let linkPath { unlink(linkPath); linked = false }
    }
}
