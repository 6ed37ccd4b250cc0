import CSerialPort
import CTendonSupport
import Glibc

/// `SerialTransport` for real USB adapters through libserialport, which knows the adapters' USB
/// identity (see `SerialPortEnumerator`). Opening and line settings go through libserialport; the
/// per-cycle reads and writes wait on the descriptor it hands out (`sp_get_port_handle`) with ppoll,
/// as its documentation recommends for custom waiting, so both transports share one deadline logic
/// and nothing allocates per cycle.
///
/// libserialport 0.1.1 cannot open a pseudo-terminal (no sysfs entry to describe it; its open also
/// reads modem lines with TIOCMGET, which a pty refuses): that fails with `.openFailed` and errno
/// EOPNOTSUPP, a missing device with ENOENT. Use `TermiosSerialPort` for ptys (DESIGN §4).
public final class LibSerialPort: SerialTransport {
    public let name: String
    public private(set) var baudRate: Int
    private var port: OpaquePointer?
    private var fd: Int32 = -1

    public init(path: String, baudRate: Int, exclusive: Bool = true) throws(SerialError) {
        self.name = path
        self.baudRate = baudRate
        var handle: OpaquePointer?
        guard sp_get_port_by_name(path, &handle) == SP_OK, let handle else {
            // libserialport fails here both for a missing node and for a tty it cannot describe
            // (no sysfs entry: pseudo-terminals); its errno is stale in the second case.
            var info = stat()
            throw SerialError(.openFailed, errno: stat(path, &info) == 0 ? EOPNOTSUPP : ENOENT)
        }
        guard sp_open(handle, SP_MODE_READ_WRITE) == SP_OK else {
            let code = Self.lastErrno(or: EIO)
            sp_free_port(handle)
            throw SerialError(.openFailed, errno: code)
        }
        port = handle
        do throws(SerialError) {
            guard sp_set_bits(handle, 8) == SP_OK, sp_set_parity(handle, SP_PARITY_NONE) == SP_OK,
                  sp_set_stopbits(handle, 1) == SP_OK,
                  sp_set_flowcontrol(handle, SP_FLOWCONTROL_NONE) == SP_OK else {
                throw SerialError(.configureFailed, errno: Self.lastErrno(or: EINVAL))
            }
            var raw: Int32 = -1
            guard sp_get_port_handle(handle, &raw) == SP_OK, raw >= 0 else {
                throw SerialError(.configureFailed, errno: Self.lastErrno(or: EBADF))
            }
            fd = raw
            if exclusive {
                let code = tendon_tty_set_exclusive(raw, 1)
                if code != 0 { throw SerialError(.openFailed, errno: code) }
            }
            try applyBaud(baudRate)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) {
        try DescriptorIO.writeAll(fd: fd, bytes)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, deadlineNanos: UInt64) throws(SerialError) -> Int {
        try DescriptorIO.read(fd: fd, into: buffer, deadlineNanos: deadlineNanos)
    }

    public func discardInput() throws(SerialError) {
        guard let port else { throw SerialError(.closed) }
        if sp_flush(port, SP_BUF_INPUT) != SP_OK {
            let code = Self.lastErrno(or: EIO)
            throw SerialError(DescriptorIO.isDisconnect(code) ? .disconnected : .configureFailed, errno: code)
        }
    }

    public func setBaudRate(_ baud: Int) throws(SerialError) {
        guard port != nil else { throw SerialError(.closed) }
        try applyBaud(baud)
        baudRate = baud
    }

    public func close() {
        guard let port else { return }
        if fd >= 0 { _ = tendon_tty_set_exclusive(fd, 0) }
        sp_close(port)
        sp_free_port(port)
        self.port = nil
        fd = -1
    }

    /// libserialport rejects rates without a B-constant on some builds; termios2 covers the rest
    /// (Dynamixel's 4.5 Mbps).
    private func applyBaud(_ baud: Int) throws(SerialError) {
        guard let port, baud > 0, baud <= Int(Int32.max) else { throw SerialError(.unsupportedBaudRate, errno: EINVAL) }
        if sp_set_baudrate(port, Int32(baud)) == SP_OK { return }
        try TermiosSerialPort.applyBaud(fd: fd, baud)
    }

    static func lastErrno(or fallback: Int32) -> Int32 {
        let code = sp_last_error_code()
        return code != 0 ? code : fallback
    }
}

/// One serial port as the OS lists it, with its USB identity when it has one, so a robot config can
/// name an adapter by serial number instead of by /dev/ttyUSBn (which changes with plug order).
public struct SerialPortInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable { case native, usb, bluetooth, unknown }
    public var path: String
    public var portDescription: String?
    public var transport: Transport
    public var usbVendorID: UInt16?
    public var usbProductID: UInt16?
    public var usbSerial: String?
    public var usbManufacturer: String?
    public var usbProduct: String?
    /// The stable udev name under /dev/serial/by-id that resolves to `path`, if any.
    public var byIDPath: String?

    public init(path: String, portDescription: String? = nil, transport: Transport = .unknown,
                usbVendorID: UInt16? = nil, usbProductID: UInt16? = nil, usbSerial: String? = nil,
                usbManufacturer: String? = nil, usbProduct: String? = nil, byIDPath: String? = nil) {
        self.path = path
        self.portDescription = portDescription
        self.transport = transport
        self.usbVendorID = usbVendorID
        self.usbProductID = usbProductID
        self.usbSerial = usbSerial
        self.usbManufacturer = usbManufacturer
        self.usbProduct = usbProduct
        self.byIDPath = byIDPath
    }

    public var description: String {
        var text = path
        if let vid = usbVendorID, let pid = usbProductID {
            text += " usb " + Self.hex4(vid) + ":" + Self.hex4(pid)
        }
        if let usbSerial { text += " serial " + usbSerial }
        if let portDescription { text += " (" + portDescription + ")" }
        if let byIDPath { text += " -> " + byIDPath }
        return text
    }

    private static func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}

public enum SerialPortEnumerator {
    /// FTDI FT232H, the chip in ROBOTIS U2D2 adapters.
    public static let u2d2VendorID: UInt16 = 0x0403
    public static let u2d2ProductID: UInt16 = 0x6014

    /// Every serial port libserialport finds (sysfs-backed devices; never pseudo-terminals).
    public static func list(byIDDirectory: String = "/dev/serial/by-id") throws(SerialError) -> [SerialPortInfo] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        guard sp_list_ports(&list) == SP_OK, let list else {
            throw SerialError(.openFailed, errno: LibSerialPort.lastErrno(or: EIO))
        }
        defer { sp_free_port_list(list) }
        let byID = byIDLinks(directory: byIDDirectory)
        var result: [SerialPortInfo] = []
        var index = 0
        while let port = list[index] {
            index += 1
            guard let namePointer = sp_get_port_name(port) else { continue }
            let path = String(cString: namePointer)
            var info = SerialPortInfo(path: path)
            info.portDescription = sp_get_port_description(port).map { String(cString: $0) }
            switch sp_get_port_transport(port) {
            case SP_TRANSPORT_NATIVE: info.transport = .native
            case SP_TRANSPORT_USB: info.transport = .usb
            case SP_TRANSPORT_BLUETOOTH: info.transport = .bluetooth
            default: info.transport = .unknown
            }
            if info.transport == .usb {
                var vid: Int32 = 0, pid: Int32 = 0
                if sp_get_port_usb_vid_pid(port, &vid, &pid) == SP_OK {
                    info.usbVendorID = UInt16(truncatingIfNeeded: vid)
                    info.usbProductID = UInt16(truncatingIfNeeded: pid)
                }
                info.usbSerial = sp_get_port_usb_serial(port).map { String(cString: $0) }
                info.usbManufacturer = sp_get_port_usb_manufacturer(port).map { String(cString: $0) }
                info.usbProduct = sp_get_port_usb_product(port).map { String(cString: $0) }
            }
            info.byIDPath = byID[resolve(path)]
            result.append(info)
        }
        return result.sorted { $0.path < $1.path }
    }

    /// Ports matching a USB identity; nil fields match anything.
    public static func find(vendorID: UInt16? = nil, productID: UInt16? = nil,
                            serial: String? = nil) throws(SerialError) -> [SerialPortInfo] {
        try list().filter { info in
            (vendorID == nil || info.usbVendorID == vendorID)
                && (productID == nil || info.usbProductID == productID)
                && (serial == nil || info.usbSerial == serial)
        }
    }

    /// Map from resolved device path to the by-id symlink naming it.
    static func byIDLinks(directory: String) -> [String: String] {
        var map: [String: String] = [:]
        guard let dir = opendir(directory) else { return map }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let link = directory + "/" + name
            map[resolve(link)] = link
        }
        return map
    }

    static func resolve(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
