// Which real-time privileges this process holds, read with libcap rather than by trying the calls,
// so the report can say why a privilege was not used.
import CCap

public struct ProcessCapabilities: Sendable, Equatable {
    /// CAP_SYS_NICE in the effective set: SCHED_FIFO and CPU pinning of RT threads are allowed.
    public var sysNice: Bool
    /// CAP_IPC_LOCK in the effective set: mlockall is not bounded by RLIMIT_MEMLOCK.
    public var ipcLock: Bool

    public init(sysNice: Bool, ipcLock: Bool) {
        self.sysNice = sysNice
        self.ipcLock = ipcLock
    }

    public static let none = ProcessCapabilities(sysNice: false, ipcLock: false)

    /// The effective set of the calling thread (libcap `cap_get_proc`); `.none` if libcap fails.
    public static func current() -> ProcessCapabilities {
        guard let caps = cap_get_proc() else { return .none }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        func effective(_ value: Int32) -> Bool {
            var flag = CAP_CLEAR
            guard cap_get_flag(caps, cap_value_t(value), CAP_EFFECTIVE, &flag) == 0 else { return false }
            return flag == CAP_SET
        }
        return ProcessCapabilities(sysNice: effective(CAP_SYS_NICE), ipcLock: effective(CAP_IPC_LOCK))
    }
}
