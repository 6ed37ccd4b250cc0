import CHDF5
import Foundation

/// A failure reading or writing an episode file; the message names the file and what was expected.
public struct EpisodeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a closure-taking standard-library call (whose `rethrows` erases the error type) and restores
/// the typed error.
@inline(__always)
func typed<T>(_ body: () throws -> T) throws(EpisodeError) -> T {
    do { return try body() } catch let error as EpisodeError { throw error } catch { throw EpisodeError("\(error)") }
}

/// Thin ownership wrappers over libhdf5 handles. Only what the ALOHA layout needs: groups, chunked
/// extendable datasets, scalar and string attributes.
enum H5 {
    static let setUp: Void = { tendon_h5_silence_errors() }()

    static var double: hid_t { tendon_h5t_native_double() }
    static var float: hid_t { tendon_h5t_native_float() }
    static var uint8: hid_t { tendon_h5t_native_uint8() }
    static var int8: hid_t { tendon_h5t_native_int8() }
    static var int64: hid_t { tendon_h5t_native_int64() }
    static var plist: hid_t { tendon_h5p_default() }
    static var all: hid_t { tendon_h5s_all() }

    /// h5py's boolean: an enum over int8 with members FALSE = 0 and TRUE = 1 (numpy bool round-trips).
    static func boolType() -> hid_t {
        let t = H5Tenum_create(int8)
        var f: Int8 = 0, tr: Int8 = 1
        H5Tenum_insert(t, "FALSE", &f)
        H5Tenum_insert(t, "TRUE", &tr)
        return t
    }

    /// Variable-length UTF-8 string, what h5py writes for a Python `str`.
    static func stringType() -> hid_t {
        let t = H5Tcopy(tendon_h5t_c_s1())
        H5Tset_size(t, Int(bitPattern: UInt(bitPattern: -1)))  // H5T_VARIABLE
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }
}

/// An open HDF5 file.
final class H5File {
    let id: hid_t
    let path: String

    private init(id: hid_t, path: String) {
        self.id = id
        self.path = path
    }

    static func create(_ path: String) throws(EpisodeError) -> H5File {
        _ = H5.setUp
        let id = H5Fcreate(path, tendon_h5f_acc_excl(), H5.plist, H5.plist)
        guard id >= 0 else { throw EpisodeError("\(path): cannot create an HDF5 file (\(String(cString: strerror(errno))))") }
        return H5File(id: id, path: path)
    }

    static func open(_ path: String) throws(EpisodeError) -> H5File {
        _ = H5.setUp
        guard FileManager.default.fileExists(atPath: path) else { throw EpisodeError("\(path): no such file") }
        guard H5Fis_hdf5(path) > 0 else { throw EpisodeError("\(path): not an HDF5 file") }
        let id = H5Fopen(path, tendon_h5f_acc_rdonly(), H5.plist)
        guard id >= 0 else { throw EpisodeError("\(path): cannot open the HDF5 file") }
        return H5File(id: id, path: path)
    }

    func flush() -> Bool { H5Fflush(id, H5F_SCOPE_LOCAL) >= 0 }

    func close() -> Bool { H5Fclose(id) >= 0 }

    func exists(_ name: String) -> Bool {
        // Each path component must exist before the next is asked about.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += "/" + part
            if H5Lexists(id, prefix, H5.plist) <= 0 { return false }
        }
        return true
    }

    func createGroup(_ name: String) throws(EpisodeError) {
        let g = H5Gcreate2(id, name, H5.plist, H5.plist, H5.plist)
        guard g >= 0 else { throw EpisodeError("\(path): cannot create group \(name)") }
        H5Gclose(g)
    }

    func children(of group: String) -> [String] {
        let g = H5Gopen2(id, group, H5.plist)
        guard g >= 0 else { return [] }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { return [] }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, H5.plist)
            guard n > 0 else { continue }
            var buffer = [CChar](repeating: 0, count: n + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, n + 1, H5.plist)
            names.append(String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    // MARK: attributes on the root group

    func setAttribute(_ name: String, bool value: Bool) throws(EpisodeError) {
        var v: Int8 = value ? 1 : 0
        let t = H5.boolType()
        defer { H5Tclose(t) }
        try writeAttribute(name, type: t, memType: t, value: &v)
    }

    func setAttribute(_ name: String, double value: Double) throws(EpisodeError) {
        var v = value
        try writeAttribute(name, type: H5.double, memType: H5.double, value: &v)
    }

    func setAttribute(_ name: String, int value: Int64) throws(EpisodeError) {
        var v = value
        try writeAttribute(name, type: H5.int64, memType: H5.int64, value: &v)
    }

    func setAttribute(_ name: String, string value: String) throws(EpisodeError) {
        let t = H5.stringType()
        defer { H5Tclose(t) }
        try typed { try value.withCString { c in
            var pointer: UnsafePointer<CChar>? = c
            try writeAttribute(name, type: t, memType: t, value: &pointer)
        } }
    }

    private func writeAttribute<T>(_ name: String, type: hid_t, memType: hid_t, value: inout T) throws(EpisodeError) {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        if H5Aexists(id, name) > 0 { H5Adelete(id, name) }
        let a = H5Acreate2(id, name, type, space, H5.plist, H5.plist)
        guard a >= 0 else { throw EpisodeError("\(path): cannot create attribute \(name)") }
        defer { H5Aclose(a) }
        let status = withUnsafeBytes(of: &value) { H5Awrite(a, memType, $0.baseAddress) }
        guard status >= 0 else { throw EpisodeError("\(path): cannot write attribute \(name)") }
    }

    func hasAttribute(_ name: String) -> Bool { H5Aexists(id, name) > 0 }

    /// Reads a numeric or boolean scalar attribute as a Double (h5py's numpy bool is an int8 enum).
    func doubleAttribute(_ name: String) throws(EpisodeError) -> Double {
        guard H5Aexists(id, name) > 0 else { throw EpisodeError("\(path): missing root attribute '\(name)'") }
        let a = H5Aopen(id, name, H5.plist)
        defer { H5Aclose(a) }
        let t = H5Aget_type(a)
        defer { H5Tclose(t) }
        switch H5Tget_class(t) {
        case H5T_ENUM where H5Tget_size(t) == 1:
            // Read the byte in the file's own enum type: HDF5 has no enum-to-number conversion.
            var v: Int8 = 0
            guard H5Aread(a, t, &v) >= 0 else { throw EpisodeError("\(path): cannot read attribute \(name)") }
            return Double(v)
        case H5T_INTEGER, H5T_FLOAT:
            var v = 0.0
            guard H5Aread(a, H5.double, &v) >= 0 else { throw EpisodeError("\(path): cannot read attribute \(name)") }
            return v
        default:
            throw EpisodeError("\(path): attribute '\(name)' is not a number or boolean")
        }
    }

    func stringAttribute(_ name: String) throws(EpisodeError) -> String {
        guard H5Aexists(id, name) > 0 else { throw EpisodeError("\(path): missing root attribute '\(name)'") }
        let a = H5Aopen(id, name, H5.plist)
        defer { H5Aclose(a) }
        let t = H5Aget_type(a)
        defer { H5Tclose(t) }
        guard H5Tget_class(t) == H5T_STRING else { throw EpisodeError("\(path): attribute '\(name)' is not a string") }
        if H5Tis_variable_str(t) > 0 {
            let mem = H5.stringType()
            defer { H5Tclose(mem) }
            var pointer: UnsafeMutablePointer<CChar>?
            guard H5Aread(a, mem, &pointer) >= 0 else { throw EpisodeError("\(path): cannot read attribute \(name)") }
            defer { if let pointer { H5free_memory(pointer) } }
            return pointer.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(t)
        var bytes = [UInt8](repeating: 0, count: size + 1)
        guard H5Aread(a, t, &bytes) >= 0 else { throw EpisodeError("\(path): cannot read attribute \(name)") }
        let end = bytes.firstIndex(of: 0) ?? size
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    // MARK: datasets

    /// Shape of a dataset, or nil if absent.
    func shape(_ name: String) -> [Int]? {
        guard exists(name) else { return nil }
        let d = H5Dopen2(id, name, H5.plist)
        guard d >= 0 else { return nil }
        defer { H5Dclose(d) }
        let s = H5Dget_space(d)
        defer { H5Sclose(s) }
        let rank = Int(H5Sget_simple_extent_ndims(s))
        guard rank >= 0 else { return nil }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        H5Sget_simple_extent_dims(s, &dims, nil)
        return dims.prefix(rank).map { Int($0) }
    }

    /// Reads a whole dataset converted to `memType` (HDF5 converts between numeric types).
    func read<T>(_ name: String, as memType: hid_t, zero: T) throws(EpisodeError) -> (shape: [Int], values: [T]) {
        guard let shape = shape(name) else { throw EpisodeError("\(path): missing dataset \(name)") }
        let d = H5Dopen2(id, name, H5.plist)
        defer { H5Dclose(d) }
        let count = shape.reduce(1, *)
        var values = [T](repeating: zero, count: count)
        if count > 0 {
            let status = values.withUnsafeMutableBytes { H5Dread(d, memType, H5.all, H5.all, H5.plist, $0.baseAddress) }
            guard status >= 0 else { throw EpisodeError("\(path): cannot read dataset \(name) as the expected type") }
        }
        return (shape, values)
    }
}

/// A dataset that grows along its first axis (and optionally its second), written in row batches.
final class H5ExtendableDataset {
    let id: hid_t
    let name: String
    let memType: hid_t
    private(set) var dims: [hsize_t]

    /// `rowShape`: the shape of one row (e.g. [14] or [H, W, 3]); chunks hold `chunkRows` rows.
    init(file: H5File, name: String, fileType: hid_t, memType: hid_t, rowShape: [Int], chunkRows: Int,
         growSecondAxis: Bool = false) throws(EpisodeError) {
        self.name = name
        self.memType = memType
        dims = [0] + rowShape.map { hsize_t($0) }
        var maxDims = dims
        maxDims[0] = tendon_h5s_unlimited()
        if growSecondAxis, maxDims.count > 1 { maxDims[1] = tendon_h5s_unlimited() }
        let space = H5Screate_simple(Int32(dims.count), dims, maxDims)
        defer { H5Sclose(space) }
        let plist = H5Pcreate(tendon_h5p_dataset_create())
        defer { H5Pclose(plist) }
        var chunk = [hsize_t(max(chunkRows, 1))] + rowShape.map { hsize_t(max($0, 1)) }
        if growSecondAxis, chunk.count > 1 { chunk[1] = 1024 }  // padded JPEG rows: small chunks waste less
        H5Pset_chunk(plist, Int32(chunk.count), chunk)
        let lcpl = H5Pcreate(tendon_h5p_link_create())
        defer { H5Pclose(lcpl) }
        H5Pset_create_intermediate_group(lcpl, 1)
        id = H5Dcreate2(file.id, name, fileType, space, lcpl, plist, H5.plist)
        guard id >= 0 else { throw EpisodeError("\(file.path): cannot create dataset \(name)") }
    }

    private var open = true

    /// Datasets must be closed before their file, or the file stays open underneath.
    func close() {
        if open { H5Dclose(id) }
        open = false
    }

    deinit { close() }

    var rows: Int { Int(dims[0]) }

    /// Widens the second axis (padded JPEG bytes); new cells read as zero.
    func growSecondAxis(to width: Int) throws(EpisodeError) {
        guard dims.count > 1, hsize_t(width) > dims[1] else { return }
        var newDims = dims
        newDims[1] = hsize_t(width)
        guard H5Dset_extent(id, newDims) >= 0 else { throw EpisodeError("cannot widen dataset \(name) to \(width)") }
        dims = newDims
    }

    /// Appends `count` rows from `data`, laid out row-major with the dataset's current row shape.
    func append(rows count: Int, from data: UnsafeRawPointer) throws(EpisodeError) {
        guard count > 0 else { return }
        var newDims = dims
        newDims[0] += hsize_t(count)
        guard H5Dset_extent(id, newDims) >= 0 else { throw EpisodeError("cannot extend dataset \(name)") }
        let fileSpace = H5Dget_space(id)
        defer { H5Sclose(fileSpace) }
        var start = [hsize_t](repeating: 0, count: dims.count)
        start[0] = dims[0]
        var extent = dims
        extent[0] = hsize_t(count)
        H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil, extent, nil)
        let memSpace = H5Screate_simple(Int32(extent.count), extent, nil)
        defer { H5Sclose(memSpace) }
        guard H5Dwrite(id, memType, memSpace, fileSpace, H5.plist, data) >= 0 else {
            throw EpisodeError("writing \(count) rows of \(name) failed (\(String(cString: strerror(errno))))")
        }
        dims = newDims
    }
}
