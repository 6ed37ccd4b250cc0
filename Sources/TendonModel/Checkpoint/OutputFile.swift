#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffered file written to `<path>.partial` and renamed into place by `commit()`, so a failed or
/// interrupted conversion never leaves a file that looks complete. Not committed → removed on deinit.
final class OutputFile {
    let path: String
    private let partialPath: String
    private var handle: UnsafeMutablePointer<FILE>?
    private(set) var position = 0

    init(path: String) throws(CheckpointError) {
        self.path = path
        partialPath = path + ".partial"
        guard let handle = fopen(partialPath, "wb") else {
            throw CheckpointError(.io, file: path, "cannot create \(partialPath): \(errnoText())")
        }
        self.handle = handle
        setvbuf(handle, nil, _IOFBF, 1 << 20)
    }

    deinit {
        if let handle {
            fclose(handle)
            unlink(partialPath)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let handle else { throw CheckpointError(.invalidArgument, file: path, "write after commit") }
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        guard fwrite(base, 1, bytes.count, handle) == bytes.count else {
            throw CheckpointError(.io, file: path, "write failed at byte \(position): \(errnoText())")
        }
        position += bytes.count
    }

    func write(_ bytes: [UInt8]) throws(CheckpointError) {
        // withUnsafeBytes rethrows untyped errors, so the typed error travels out as a Result.
        let result = bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try write(raw) } }
        try result.get()
    }

    func writeZeros(_ count: Int) throws(CheckpointError) {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    func commit() throws(CheckpointError) {
        guard let handle else { throw CheckpointError(.invalidArgument, file: path, "committed twice") }
        self.handle = nil
        let flushed = fflush(handle) == 0
        let closed = fclose(handle) == 0
        guard flushed, closed else {
            unlink(partialPath)
            throw CheckpointError(.io, file: path, "flush failed: \(errnoText())")
        }
        guard rename(partialPath, path) == 0 else {
            unlink(partialPath)
            throw CheckpointError(.io, file: path, "rename from \(partialPath) failed: \(errnoText())")
        }
    }
}

/// Little-endian byte building for headers.
struct ByteBuilder {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }
}
