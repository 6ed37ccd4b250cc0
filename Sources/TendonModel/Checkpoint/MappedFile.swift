#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TendonTensor

/// A whole file memory-mapped read-only (PROT_READ, MAP_PRIVATE). Checkpoint readers hand out tensors whose
/// `TensorStorage` borrows this mapping (the mapping is the storage's owner), so weights are never copied:
/// the kernel pages them in on first touch and a loaded model's RSS stays ≈ the file size.
///
/// API:
/// - `MappedFile(path:advice:)` maps the file (throws `CheckpointError` naming it).
/// - `bytes`, `byteCount`, `path`; `makeStorage()` — a `TensorStorage` over the whole mapping for tensor views.
/// - `advise(_:range:)` — `madvise` hints (`.willNeed` before a full read, `.random` for sparse access).
///
/// The mapping is read-only: writing through a tensor view of it faults. Callers that need to mutate a
/// weight copy it first.
public final class MappedFile: @unchecked Sendable {
    public enum Advice: Sendable {
        case normal, sequential, random, willNeed

        var flag: Int32 {
            switch self {
            case .normal: MADV_NORMAL
            case .sequential: MADV_SEQUENTIAL
            case .random: MADV_RANDOM
            case .willNeed: MADV_WILLNEED
            }
        }
    }

    public let path: String
    public let byteCount: Int
    /// Start of the mapping (or a 1-byte placeholder for an empty file, which mmap refuses).
    public let base: UnsafeMutableRawPointer
    private let mapped: Bool

    public init(path: String, advice: Advice = .normal) throws(CheckpointError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError(.io, file: path, "cannot open: \(errnoText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CheckpointError(.io, file: path, "fstat failed: \(errnoText())") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(.io, file: path, "expected a regular file")
        }
        byteCount = Int(info.st_size)
        if byteCount == 0 {
            base = .allocate(byteCount: 1, alignment: 64)
            mapped = false
            return
        }
        let pointer = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw CheckpointError(.io, file: path, "mmap of \(byteCount) bytes failed: \(errnoText())")
        }
        base = pointer
        mapped = true
        if advice != .normal { advise(advice) }
    }

    deinit {
        if mapped { munmap(base, byteCount) } else { base.deallocate() }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: byteCount) }

    /// A storage over the whole mapping that keeps it alive; tensors are views at their file offsets.
    /// (Not stored here: the storage owns the mapping, so a stored one would be a retain cycle.)
    public func makeStorage() -> TensorStorage {
        TensorStorage(borrowing: base, byteCount: byteCount, owner: self)
    }

    /// A hint to the kernel; failures are ignored because advice never changes what is read.
    public func advise(_ advice: Advice, range: Range<Int>? = nil) {
        guard mapped else { return }
        let range = range ?? 0..<byteCount
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        guard range.upperBound > start else { return }
        _ = madvise(base + start, range.upperBound - start, advice.flag)
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
