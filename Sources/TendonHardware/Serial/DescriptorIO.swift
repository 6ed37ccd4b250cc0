import CTendonSupport
import Glibc

/// Deadline-bounded reads and complete writes on a non-blocking file descriptor, shared by the two
/// serial transports (libserialport hands out its descriptor, so both wait the same way). No allocation:
/// the real-time cycle runs through here.
enum DescriptorIO {
    /// errno values that mean the device is gone rather than that one call failed.
    @inline(__always)
    static func isDisconnect(_ code: Int32) -> Bool {
        code == EIO || code == ENXIO || code == ENODEV
    }

    /// Waits up to `deadlineNanos` (MonotonicClock) for `events`. Returns the revents, or 0 on timeout.
    /// ppoll rather than poll: Dynamixel reply windows are well under a millisecond at 1 Mbps.
    static func wait(fd: Int32, events: Int16, deadlineNanos: UInt64) throws(SerialError) -> Int16 {
        while true {
            let now = MonotonicClock.nowNanos()
            let remaining = deadlineNanos > now ? deadlineNanos - now : 0
            var ready: Int32 = 0
            var revents: Int16 = 0
            let code = tendon_ppoll_one(fd, events, Int64(min(remaining, UInt64(Int64.max))), &ready, &revents)
            if code == 0 {
                if ready > 0 { return revents }
                if remaining == 0 || MonotonicClock.nowNanos() >= deadlineNanos { return 0 }
                continue
            }
            if code == EINTR { continue }
            throw SerialError(.readFailed, errno: code)
        }
    }

    /// Reads whatever is available, waiting until the deadline for the first byte.
    /// A tty in raw mode with VMIN=0/VTIME=0 returns 0 both when empty and when hung up, so
    /// disconnection is judged from POLLHUP/POLLERR together with an empty read, or from errno.
    static func read(fd: Int32, into buffer: UnsafeMutableRawBufferPointer,
                     deadlineNanos: UInt64) throws(SerialError) -> Int {
        guard fd >= 0 else { throw SerialError(.closed) }
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        var firstTry = true
        while true {
            var revents: Int16 = Int16(POLLIN)
            if !firstTry {
                revents = try wait(fd: fd, events: Int16(POLLIN), deadlineNanos: deadlineNanos)
                if revents == 0 { return 0 }
                if revents & Int16(POLLNVAL) != 0 { throw SerialError(.closed, errno: EBADF) }
            }
            let n = Glibc.read(fd, base, buffer.count)
            if n > 0 { return n }
            if n < 0 {
                let code = errno
                if isDisconnect(code) { throw SerialError(.disconnected, errno: code) }
                if code == EBADF { throw SerialError(.closed, errno: code) }
                if code != EAGAIN && code != EINTR { throw SerialError(.readFailed, errno: code) }
            } else if revents & Int16(POLLHUP | POLLERR) != 0 && !firstTry {
                throw SerialError(.disconnected)
            }
            if firstTry {
                firstTry = false
            } else if MonotonicClock.nowNanos() >= deadlineNanos {
                return 0
            }
        }
    }

    /// Writes every byte, waiting for room when the driver's buffer is full. `stallNanos` bounds how
    /// long the port may refuse bytes before the write counts as failed (a wedged adapter).
    static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer,
                         stallNanos: UInt64 = 1_000_000_000) throws(SerialError) {
        guard fd >= 0 else { throw SerialError(.closed) }
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n > 0 {
                offset += n
                continue
            }
            let code = n < 0 ? errno : EAGAIN
            if isDisconnect(code) { throw SerialError(.disconnected, errno: code) }
            if code == EBADF { throw SerialError(.closed, errno: code) }
            if code == EINTR { continue }
            guard code == EAGAIN else { throw SerialError(.writeFailed, errno: code) }
            let revents: Int16
            do {
                revents = try wait(fd: fd, events: Int16(POLLOUT),
                                   deadlineNanos: MonotonicClock.nowNanos() &+ stallNanos)
            } catch {
                throw SerialError(.writeFailed, errno: error.errno)
            }
            if revents == 0 { throw SerialError(.writeFailed, errno: ETIMEDOUT) }
            if revents & Int16(POLLNVAL) != 0 { throw SerialError(.closed, errno: EBADF) }
            if revents & Int16(POLLHUP | POLLERR) != 0 && revents & Int16(POLLOUT) == 0 {
                throw SerialError(.disconnected)
            }
        }
    }
}
