import Foundation
import QLTensor

/// A safetensors file opened for reading, memory-mapped.
///
/// The format: an 8-byte little-endian header length `n`, `n` bytes of JSON, then the data section.
/// The JSON maps each tensor name to `{"dtype": "BF16", "shape": [N, K], "data_offsets": [begin, end]}`
/// (offsets relative to the start of the data section) and may hold `"__metadata__"`, a map of
/// strings to strings.
///
/// Opening reads and checks only the header; tensor bytes are read from the mapping when asked for,
/// so a model larger than RAM can be processed tensor by tensor (call ``releasePages(of:)`` after each
/// to keep the resident set small). Everything a header claims is checked before it is trusted: the
/// header length against the file size and the data's end, the JSON (parsed byte-exact, duplicate keys
/// refused: ``HeaderJSON``), each dtype, each shape, that each tensor's byte
/// count is its dtype size times its element count, and that offsets lie inside the data section and
/// do not overlap.
///
/// ```swift
/// let file = try SafetensorsFile(path: "model.safetensors")
/// for entry in file.entries { print(entry.name, entry.dtype, entry.shape) }
/// let weight = try file.tensor("blocks.0.attn.q.weight")   // borrows the mapping
/// ```
public final class SafetensorsFile: @unchecked Sendable {
    /// One tensor as the header describes it.
    public struct Entry: Sendable, Hashable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]
        /// Byte range inside the data section.
        public let dataRange: Range<Int>

        public var elementCount: Int { shape.reduce(1, *) }
        public var byteCount: Int { dataRange.count }
    }

    /// Headers larger than this are refused (the reference implementation's limit).
    public static let maximumHeaderByteCount = 100_000_000

    /// Dimensions larger than this (2^40) are refused: no real tensor has one, and shape arithmetic on
    /// them (block counts, a zero-element tensor's other dimensions) could overflow.
    public static let maximumDimension = 1 << 40

    public let path: String
    /// Every tensor, in the order of their data in the file.
    public let entries: [Entry]
    /// The header's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Bytes in the JSON header (without the 8-byte length).
    public let headerByteCount: Int
    private let mapping: MappedFile
    private let index: [TensorName: Int]

    /// Opens and validates `path`.
    /// - Throws: ``TensorError/Code/io`` when the file cannot be read, ``TensorError/Code/checkpointFormat``
    ///   when the header is truncated, lies about its length, is not valid JSON, repeats a key (byte for
    ///   byte), or describes a tensor with an unknown dtype, a bad shape, a size that does not match, or
    ///   offsets outside the data or overlapping another tensor, or when bytes follow the last tensor
    ///   (the data section must end exactly where the last tensor ends, as the official reader requires:
    ///   that is what pins the header length, so a shifted read cannot happen). The message names the
    ///   file and the tensor.
    public init(path: String) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        let fileSize = mapping.byteCount
        guard fileSize >= 8 else {
            throw CheckpointError.format(path, "the file is \(fileSize) bytes, shorter than the 8-byte header length; "
                + "it is truncated or not a safetensors file")
        }
        let declared = mapping.withBytes(in: 0..<8) { bytes in
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        }
        guard declared <= UInt64(fileSize - 8) else {
            throw CheckpointError.format(path, "the header length \(declared) runs past the end of the file "
                + "(\(fileSize - 8) bytes follow the length); the file is truncated or not a safetensors file")
        }
        guard declared <= UInt64(Self.maximumHeaderByteCount) else {
            throw CheckpointError.format(path, "the header length \(declared) is over the limit of "
                + "\(Self.maximumHeaderByteCount) bytes; this is not a safetensors file")
        }
        headerByteCount = Int(declared)
        let dataStart = 8 + headerByteCount
        let dataSize = fileSize - dataStart
        let json: HeaderJSON
        do {
            json = try mapping.withBytes(in: 8..<dataStart) { try HeaderJSON.parse($0) }
        } catch let error as HeaderJSON.ParseError {
            throw CheckpointError.format(path, "the header is not valid JSON at byte \(8 + error.offset) of the file "
                + "(\(error.problem)); the file is corrupt or not a safetensors file")
        }
        guard case .object(let members) = json else {
            throw CheckpointError.format(path, "the header is JSON but not an object of tensors")
        }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in members {
            if name.utf8.elementsEqual("__metadata__".utf8) {
                metadata = try Self.parseMetadata(value, path: path)
                continue
            }
            entries.append(try Self.parseEntry(name, value, dataSize: dataSize, path: path))
        }
        entries.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound, TensorName($0.name))
            < ($1.dataRange.lowerBound, $1.dataRange.upperBound, TensorName($1.name)) }
        for (previous, next) in zip(entries, entries.dropFirst())
        where next.dataRange.lowerBound < previous.dataRange.upperBound {
            throw CheckpointError.format(path, tensor: next.name, "its data \(Self.describe(next.dataRange)) overlaps "
                + "tensor `\(previous.name)` \(Self.describe(previous.dataRange)); the header's offsets are corrupt")
        }
        let dataEnd = entries.map(\.dataRange.upperBound).max() ?? 0
        guard dataEnd == dataSize else {
            throw CheckpointError.format(path, "the tensors' data ends at byte \(dataEnd) of the data section but "
                + "\(dataSize) bytes follow the \(headerByteCount)-byte header; the header length is wrong (every "
                + "tensor would be read shifted) or bytes were appended: the file is corrupt")
        }
        self.entries = entries
        self.metadata = metadata
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { (TensorName($1.name), $0) })
    }

    /// Size of the whole file in bytes.
    public var fileByteCount: Int { mapping.byteCount }

    /// The entry called `name`, if any.
    public func entry(_ name: String) -> Entry? {
        index[TensorName(name)].map { entries[$0] }
    }

    /// The entry called `name`.
    /// - Throws: ``TensorError/Code/checkpointFormat`` naming the file and the tensor when it is missing.
    public func requireEntry(_ name: String) throws -> Entry {
        guard let entry = entry(name) else {
            throw CheckpointError.format(path, tensor: name, "no such tensor in the file")
        }
        return entry
    }

    /// The tensor called `name`. Its storage borrows the mapping (no copy) when the bytes start on a
    /// 64-byte boundary, the alignment the library's host storage promises its kernels; otherwise the
    /// bytes are copied into fresh storage.
    /// - Throws: ``TensorError/Code/unsupportedDType`` for a dtype the library has no tensors of
    ///   (`F64`, `I64`, ...), ``TensorError/Code/checkpointFormat`` for a missing tensor.
    public func tensor(_ name: String) throws -> Tensor {
        let entry = try requireEntry(name)
        guard let dtype = entry.dtype.tensorDType else {
            throw TensorError(.unsupportedDType, CheckpointError.location(path, name) + "dtype \(entry.dtype) has no "
                + "tensor type in this library (supported: "
                + SafetensorsDType.allCases.filter { $0.tensorDType != nil }.map(\.rawValue).joined(separator: " ")
                + "); skip it (ComfyLoadOptions.skipUnsupportedDTypes) or convert the file, which copies it unchanged")
        }
        do {
            try ShapeArithmetic.validate(entry.shape, elementSize: dtype.byteSize)
        } catch {
            throw CheckpointError.wrapping(error, path, tensor: name)
        }
        let range = fileRange(of: entry)
        if let storage = mapping.borrowedStorage(for: range, alignment: 64) {
            return try Tensor(storage: storage, dtype: dtype, shape: entry.shape)
        }
        let tensor = try Tensor(zeros: entry.shape, dtype: dtype)
        mapping.withBytes(in: range) { source in
            if let address = source.baseAddress {
                tensor.storage.hostPointer.copyMemory(from: address, byteCount: source.count)
            }
        }
        return tensor
    }

    /// Calls `body` with the raw little-endian bytes of tensor `name`, straight from the mapping.
    ///
    /// When `body` throws and the file has meanwhile shrunk (another process truncated it while it was
    /// mapped, so the bytes were unreadable), the error says so instead of `body`'s.
    /// - Throws: ``TensorError/Code/io`` for a file truncated while being read; otherwise `body`'s error.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let entry = try requireEntry(name)
        do {
            return try mapping.withBytes(in: fileRange(of: entry), body)
        } catch {
            if let now = mapping.currentByteCount(), now < mapping.byteCount {
                throw TensorError(.io, "\(path) was truncated while being read (\(now) bytes now, "
                    + "\(mapping.byteCount) when opened), at tensor `\(name)`; do not change an input while it "
                    + "is converted, then run again", underlying: "\(error)")
            }
            throw error
        }
    }

    /// Hands the pages of tensor `name` back to the kernel (they are re-read from disk if used again).
    /// A converter calls this after each tensor so its resident memory stays near one layer.
    public func releasePages(of name: String) {
        guard let entry = entry(name) else { return }
        mapping.releasePages(in: fileRange(of: entry))
    }

    private func fileRange(of entry: Entry) -> Range<Int> {
        let start = 8 + headerByteCount
        return (start + entry.dataRange.lowerBound)..<(start + entry.dataRange.upperBound)
    }

    // MARK: Header parsing

    private static func parseMetadata(_ value: HeaderJSON, path: String) throws -> [String: String] {
        if value == .null { return [:] }
        guard case .object(let members) = value else {
            throw format(path, "`__metadata__` must be an object of strings, got \(value.kind)")
        }
        var result: [String: String] = [:]
        for (key, item) in members {
            guard case .string(let text) = item else {
                throw format(path, "`__metadata__` key `\(key)` must be a string, got \(item.kind)")
            }
            guard result[key] == nil else {
                throw format(path, "`__metadata__` has two keys `\(key)` in Unicode spellings that Swift strings "
                    + "treat as equal (NFC and NFD); rename one")
            }
            result[key] = text
        }
        return result
    }

    private static func parseEntry(_ name: String, _ value: HeaderJSON, dataSize: Int, path: String) throws
        -> Entry {
        guard case .object(let members) = value else {
            throw format(path, tensor: name, "its header entry must be an object, got \(value.kind)")
        }
        func field(_ key: String) -> HeaderJSON? { members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value }
        guard case .string(let dtypeName)? = field("dtype") else {
            throw format(path, tensor: name, "its header entry has no `dtype` string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw format(path, tensor: name, "unknown dtype `\(dtypeName)` (safetensors dtypes: "
                + SafetensorsDType.allCases.map(\.rawValue).joined(separator: " ") + ")")
        }
        guard case .array(let shapeValues)? = field("shape") else {
            throw format(path, tensor: name, "its header entry has no `shape` array")
        }
        var shape: [Int] = []
        var elements = 1
        for item in shapeValues {
            guard case .integer(let dimension) = item, dimension >= 0, dimension <= maximumDimension else {
                throw format(path, tensor: name, "shape has an entry that is not an integer in "
                    + "0...\(maximumDimension) (written without fraction or exponent)")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw format(path, tensor: name, "shape \(shape + [dimension]) overflows") }
            shape.append(dimension)
            elements = product
        }
        guard case .array(let offsetValues)? = field("data_offsets"), offsetValues.count == 2,
              case .integer(let begin) = offsetValues[0], case .integer(let end) = offsetValues[1] else {
            throw format(path, tensor: name, "its header entry needs `data_offsets` as two integers [begin, end]")
        }
        guard begin >= 0, begin <= end else {
            throw format(path, tensor: name, "data_offsets [\(begin), \(end)] are not an ordered pair of "
                + "non-negative offsets")
        }
        guard end <= dataSize else {
            throw format(path, tensor: name, "data_offsets [\(begin), \(end)] lie outside the data section of "
                + "\(dataSize) bytes; the file is truncated or its header is corrupt")
        }
        guard let expected = dtype.byteCount(elements: elements) else {
            throw format(path, tensor: name, "\(dtype) x \(shape) is not a whole number of bytes (or over Int.max); "
                + "a \(dtype.bitSize)-bit tensor must fill its last byte")
        }
        guard expected == end - begin else {
            throw format(path, tensor: name, "holds \(end - begin) bytes but \(dtype) x \(shape) needs "
                + "\(expected) bytes")
        }
        return Entry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    private static func describe(_ range: Range<Int>) -> String { "[\(range.lowerBound), \(range.upperBound))" }

    private static func format(_ path: String, tensor: String? = nil, _ problem: String) -> TensorError {
        CheckpointError.format(path, tensor: tensor, problem)
    }
}
