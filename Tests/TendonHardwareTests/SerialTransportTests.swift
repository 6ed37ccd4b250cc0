import CAllocationCounter
import Glibc
import Testing
@testable import TendonHardware

/// The termios transport on a pseudo-terminal: the test holds the master side as the "device".
@Suite struct TermiosSerialPortTests {
    static func deadline(ms: UInt64) -> UInt64 { MonotonicClock.nowNanos() + ms * 1_000_000 }

    /// Reads until `count` bytes arrived or a generous deadline passed.
    static func readExactly(_ port: any SerialTransport, count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        let end = deadline(ms: 2000)
        while out.count < count && MonotonicClock.nowNanos() < end {
            let n = try buffer.withUnsafeMutableBytes { try port.read(into: $0, deadlineNanos: end) }
            out += buffer[0..<n]
        }
        return out
    }

    @Test func bytesFlowBothWays() throws {
        let pty = try PseudoTerminal()
        let device = try TermiosSerialPort(adoptingDescriptor: pty.takeMaster(), name: "master", baudRate: 1_000_000,
                                           configureLine: false)
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 1_000_000)
        // 0x0D and 0x11 would be translated or swallowed (ICRNL, IXON) by a cooked line.
        let request: [UInt8] = [0xFF, 0xFF, 0xFD, 0x00, 0x0D, 0x0A, 0x11, 0x13, 0x03, 0x7F]
        try request.withUnsafeBytes { try client.write($0) }
        #expect(try Self.readExactly(device, count: request.count) == request)
        let reply = (0..<200).map { UInt8($0 & 0xFF) }
        try reply.withUnsafeBytes { try device.write($0) }
        #expect(try Self.readExactly(client, count: reply.count) == reply)
    }

    @Test func readReturnsZeroAtDeadline() throws {
        let pty = try PseudoTerminal()
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 57600)
        var buffer = [UInt8](repeating: 0, count: 16)
        let start = MonotonicClock.nowNanos()
        let n = try buffer.withUnsafeMutableBytes { try client.read(into: $0, deadlineNanos: start + 20_000_000) }
        #expect(n == 0)
        #expect(MonotonicClock.nowNanos() >= start + 20_000_000)
        // A deadline already in the past still returns what is waiting.
        var one: [UInt8] = [0x42]
        _ = pty
        let master = pty.masterFD
        _ = one.withUnsafeMutableBytes { Glibc.write(master, $0.baseAddress, 1) }
        var got = 0
        for _ in 0..<100 where got == 0 {
            got = try buffer.withUnsafeMutableBytes { try client.read(into: $0, deadlineNanos: 0) }
            if got == 0 { usleep(1000) }
        }
        #expect(got == 1 && buffer[0] == 0x42)
        one[0] = 0
    }

    @Test func closingTheMasterIsADisconnect() throws {
        let pty = try PseudoTerminal()
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 1_000_000)
        pty.close()
        var buffer = [UInt8](repeating: 0, count: 16)
        let readError = #expect(throws: SerialError.self) {
            _ = try buffer.withUnsafeMutableBytes { try client.read(into: $0, deadlineNanos: Self.deadline(ms: 1000)) }
        }
        #expect(readError?.kind == .disconnected)
        let writeError = #expect(throws: SerialError.self) {
            try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try client.write($0) }
        }
        #expect(writeError?.kind == .disconnected)
    }

    @Test func customAndStandardBaudRates() throws {
        let pty = try PseudoTerminal()
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 1_000_000)
        try client.setBaudRate(4_500_000)  // no B-constant: termios2 BOTHER
        #expect(client.baudRate == 4_500_000)
        try client.setBaudRate(57600)
        #expect(client.baudRate == 57600)
        #expect(throws: SerialError(.unsupportedBaudRate, errno: EINVAL)) { try client.setBaudRate(0) }
    }

    @Test func useAfterCloseAndMissingDevice() throws {
        let pty = try PseudoTerminal()
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 1_000_000)
        client.close()
        #expect(throws: SerialError(.closed)) { try [UInt8(1)].withUnsafeBytes { try client.write($0) } }
        #expect(throws: SerialError(.openFailed, errno: ENOENT)) {
            _ = try TermiosSerialPort(path: "/dev/tendon-no-such-tty", baudRate: 1_000_000)
        }
        // Not a tty: the exclusive-access ioctl refuses it.
        #expect(throws: SerialError(.openFailed, errno: ENOTTY)) {
            _ = try TermiosSerialPort(path: "/dev/null", baudRate: 9600)
        }
    }

    @Test func lineRateIsReadBackFromTheSlave() throws {
        let pty = try PseudoTerminal(lineRate: 1_000_000)
        #expect(pty.slaveLineRate() == 1_000_000)
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 57600)
        #expect(pty.slaveLineRate() == 57600)
        try client.setBaudRate(4_500_000)
        #expect(pty.slaveLineRate() == 4_500_000)
        // Opening the master side as a port must not touch the client's line settings.
        let device = try TermiosSerialPort(adoptingDescriptor: pty.takeMaster(), name: "master", baudRate: 9600,
                                           configureLine: false)
        #expect(pty.slaveLineRate() == 4_500_000)
        device.close()
    }

    @Test func symlinkFollowsThePair() throws {
        let link = "/tmp/tendon-pty-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let pty = try PseudoTerminal(symlink: link)
        let client = try TermiosSerialPort(path: link, baudRate: 1_000_000)
        client.close()
        pty.close()
        #expect(access(link, F_OK) != 0)
    }

    @Test func readAndWriteDoNotAllocate() throws {
        #expect(tendon_allocation_counter_active() == 1)
        let pty = try PseudoTerminal()
        let device = try TermiosSerialPort(adoptingDescriptor: pty.takeMaster(), name: "master", baudRate: 1_000_000,
                                           configureLine: false)
        let client = try TermiosSerialPort(path: pty.slavePath, baudRate: 1_000_000)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { out.deallocate(); input.deallocate() }
        out.initializeMemory(as: UInt8.self, repeating: 0x5A)
        var before: UInt64 = 0
        for round in 0..<21 {
            // Round 0 warms up lazily initialised runtime state; later rounds are the steady cycle.
            if round == 1 { before = tendon_thread_allocation_count() }
            try client.write(UnsafeRawBufferPointer(out))
            var got = 0
            while got < 64 {
                let n = try device.read(into: UnsafeMutableRawBufferPointer(rebasing: input[got...]),
                                        deadlineNanos: MonotonicClock.nowNanos() + 1_000_000_000)
                if n == 0 { break }
                got += n
            }
            try device.write(UnsafeRawBufferPointer(input))
            _ = try client.read(into: input, deadlineNanos: MonotonicClock.nowNanos() + 1_000_000_000)
        }
        let after = tendon_thread_allocation_count()
        #expect(after == before)
    }
}

@Suite struct LibSerialPortTests {
    @Test func refusesPseudoTerminalWithClearError() throws {
        let pty = try PseudoTerminal()
        let error = #expect(throws: SerialError.self) { _ = try LibSerialPort(path: pty.slavePath, baudRate: 1_000_000) }
        #expect(error == SerialError(.openFailed, errno: EOPNOTSUPP))
        #expect(error?.description == "cannot open serial port: Operation not supported")
    }

    @Test func missingDeviceIsAnOpenError() {
        let error = #expect(throws: SerialError.self) {
            _ = try LibSerialPort(path: "/dev/tendon-no-such-tty", baudRate: 1_000_000)
        }
        #expect(error?.kind == .openFailed)
        #expect(error?.errno == ENOENT)
    }

    @Test func enumerationRuns() throws {
        let ports = try SerialPortEnumerator.list()
        // No pty is ever listed (they have no sysfs device); USB entries carry their identity.
        #expect(!ports.contains { $0.path.hasPrefix("/dev/pts/") })
        for port in ports where port.transport == .usb {
            #expect(port.usbVendorID != nil)
        }
        #expect(try SerialPortEnumerator.find(vendorID: 0xFFFF, productID: 0xFFFF).isEmpty)
    }

    @Test func byIDLinksResolve() throws {
        let dir = "/tmp/tendon-byid-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o755)
        defer { unlink(dir + "/usb-ROBOTIS_U2D2-if00-port0"); rmdir(dir) }
        let pty = try PseudoTerminal()
        symlink(pty.slavePath, dir + "/usb-ROBOTIS_U2D2-if00-port0")
        let map = SerialPortEnumerator.byIDLinks(directory: dir)
        #expect(map[pty.slavePath] == dir + "/usb-ROBOTIS_U2D2-if00-port0")
    }
}
