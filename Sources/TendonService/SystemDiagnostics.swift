import CBLAS
import Foundation
import TendonControl
import TendonHardware

/// What `tendon doctor` reports: the facts about this computer that decide whether the robot can run
/// well (real-time privileges, kernel, OpenBLAS kernel choice, serial adapters).
public struct SystemDiagnostics: Sendable {
    public var kernel: String
    public var preemptRT: Bool
    public var cpus: Int
    public var capabilities: ProcessCapabilities
    public var openBLASCore: String
    public var openBLASConfig: String
    public var openBLASCoreTypeOverride: String?
    public var serialPorts: [SerialPortInfo]
    public var serialError: String?

    public static func collect() -> SystemDiagnostics {
        var name = utsname()
        uname(&name)
        func text<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let version = text(name.version)
        var ports: [SerialPortInfo] = []
        var serialError: String?
        do { ports = try SerialPortEnumerator.list() } catch { serialError = error.description }
        return SystemDiagnostics(
            kernel: "\(text(name.sysname)) \(text(name.release)) \(version)",
            preemptRT: version.contains("PREEMPT_RT") || version.contains("PREEMPT RT"),
            cpus: ProcessInfo.processInfo.activeProcessorCount,
            capabilities: .current(),
            openBLASCore: openblas_get_corename().map { String(cString: $0) } ?? "unknown",
            openBLASConfig: openblas_get_config().map { String(cString: $0) } ?? "unknown",
            openBLASCoreTypeOverride: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"],
            serialPorts: ports, serialError: serialError)
    }

    /// OpenBLAS 0.3.21 falls back to a generic kernel on CPUs it does not recognise (DESIGN §6).
    public var openBLASUsesGenericKernel: Bool {
        let core = openBLASCore.lowercased()
        return core.contains("prescott") || core.contains("generic") || core.contains("katmai")
    }

    public var lines: [String] {
        var out = ["kernel: \(kernel)",
                   "real-time kernel (PREEMPT_RT): \(preemptRT ? "yes" : "no — expect millisecond outliers")",
                   "cpus: \(cpus)",
                   "CAP_SYS_NICE: \(capabilities.sysNice ? "yes (SCHED_FIFO)" : "no — the loop runs SCHED_OTHER; setcap cap_sys_nice,cap_ipc_lock+ep")",
                   "CAP_IPC_LOCK: \(capabilities.ipcLock ? "yes (mlockall)" : "no — memory not locked")",
                   "OpenBLAS: core \(openBLASCore); \(openBLASConfig)"]
        if let o = openBLASCoreTypeOverride { out.append("OPENBLAS_CORETYPE=\(o) (set in the environment)") }
        if openBLASUsesGenericKernel && openBLASCoreTypeOverride == nil {
            out.append("warning: OpenBLAS picked a slow generic kernel for this CPU; set OPENBLAS_CORETYPE (e.g. Haswell or SkylakeX) for inference")
        }
        if let serialError { out.append("serial ports: \(serialError)") }
        else if serialPorts.isEmpty { out.append("serial ports: none found") }
        else { out.append(contentsOf: serialPorts.map { "serial: \($0)" }) }
        return out
    }
}
