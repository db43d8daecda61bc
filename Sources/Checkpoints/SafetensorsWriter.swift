#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif
import Foundation
import QLTensor

/// Writes a safetensors file tensor by tensor, never holding the whole file in memory.
///
/// All tensors are declared up front (name, dtype, shape), which fixes the header; their bytes are
/// then written in the declared order. The file is built under a temporary name in the destination's
/// directory and renamed into place by ``finish()``, so readers never see a half-written checkpoint:
/// on any error, or when the writer is dropped unfinished, the temporary file is removed and nothing
/// appears at `path`.
///
/// Only a regular file is ever replaced: a `path` that is a directory, FIFO, device node or socket,
/// or a symbolic link to one, is refused; a link to a regular file is written through (its target is
/// replaced). The temporary is registered with ``TemporaryFileCleanup`` (removed on SIGINT/SIGTERM
/// where the program installed its handlers) and named so that the next writer of the same `path`
/// removes one that a killed run left behind (``TemporaryOutputName``).
///
/// The header is compact JSON: `__metadata__` first (keys sorted), then the tensors in declared
/// order, each `{"dtype":...,"shape":[...],"data_offsets":[begin,end]}`; it is padded with spaces so
/// the data section starts on a 64-byte boundary (a multiple of the 8 the format asks for), which lets
/// readers borrow most tensors straight from a memory map at the alignment the library's kernels use.
///
/// ```swift
/// let writer = try SafetensorsWriter(path: "out.safetensors",
///                                    tensors: [.init(name: "w", dtype: .float32, shape: [2, 2])])
/// try writer.write("w", tensor: w)
/// try writer.finish()
/// ```
public final class SafetensorsWriter {
    /// A tensor to be written: its name, dtype and shape.
    public struct Declaration: Sendable, Hashable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]

        public init(name: String, dtype: SafetensorsDType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }

        /// Bytes of the tensor's data (`elements * bits / 8`); 0 for a declaration whose size does not
        /// exist (overflow, a partial last byte), which ``SafetensorsWriter/header(_:metadata:)`` refuses.
        public var byteCount: Int { dtype.byteCount(shape: shape) ?? 0 }
    }

    /// The data section starts on a multiple of this many bytes.
    public static let dataAlignment = 64

    public let path: String
    public let declarations: [Declaration]
    /// Bytes of the whole file once finished.
    public let totalByteCount: Int
    /// The file `path` names: `path`, or the target of a symbolic link at `path`.
    private let destination: String
    private let temporaryPath: String
    /// Where ``TemporaryFileCleanup`` holds `temporaryPath`, if it had room.
    private var cleanupSlot: Int?
    private var descriptor: Int32
    private var nextIndex = 0
    private var finished = false

    /// Creates the temporary file and writes the header.
    /// - Throws: ``TensorError/Code/invalidArgument`` for duplicate or reserved names or negative
    ///   dimensions, ``TensorError/Code/io`` when the file cannot be created or written.
    public init(path: String, tensors: [Declaration], metadata: [String: String] = [:]) throws {
        self.path = path
        declarations = tensors
        let header = try Self.header(tensors, metadata: metadata)
        totalByteCount = 8 + header.count + tensors.reduce(0) { $0 + $1.byteCount }
        destination = try OutputPath.destination(for: path)
        TemporaryOutputName.removeStale(for: destination)
        temporaryPath = TemporaryOutputName.make(for: destination)
        cleanupSlot = TemporaryFileCleanup.register(temporaryPath)
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            if let cleanupSlot { TemporaryFileCleanup.unregister(cleanupSlot) }
            cleanupSlot = nil
            finished = true
            let directory = URL(fileURLWithPath: destination).deletingLastPathComponent().path
            throw TensorError(.io, "\(path): cannot create a temporary file in \(directory); check that the "
                + "directory exists and is writable", underlying: reason)
        }
        do {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try writeAll($0) }
            try header.withUnsafeBytes { try writeAll($0) }
        } catch {
            abandon()
            throw error
        }
    }

    deinit { abandon() }

    /// Writes the bytes of the next declared tensor, which must be called `name` and be exactly its size.
    /// - Throws: ``TensorError/Code/invalidArgument`` for a tensor out of order or of the wrong size,
    ///   ``TensorError/Code/io`` when writing fails. After any error the writer is abandoned: the
    ///   temporary file is removed and nothing appears at `path`.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws {
        guard !finished, descriptor >= 0 else {
            throw TensorError(.invalidArgument, "\(path): the writer is already finished or abandoned")
        }
        do {
            guard nextIndex < declarations.count else {
                throw TensorError(.invalidArgument, "\(path): tensor `\(name)` was not declared (all "
                    + "\(declarations.count) declared tensors are written)")
            }
            let declaration = declarations[nextIndex]
            guard TensorName(declaration.name) == TensorName(name) else {
                throw TensorError(.invalidArgument, "\(path): tensor `\(name)` written where "
                    + "`\(declaration.name)` is next; write tensors in the declared order")
            }
            guard bytes.count == declaration.byteCount else {
                throw TensorError(.invalidArgument, "\(path): tensor `\(name)` is declared \(declaration.dtype) "
                    + "\(declaration.shape) (\(declaration.byteCount) bytes) but \(bytes.count) bytes were given")
            }
            try writeAll(bytes)
        } catch {
            abandon()
            throw error
        }
        nextIndex += 1
    }

    /// Writes the next declared tensor from a CPU tensor of the declared dtype and shape.
    public func write(_ name: String, tensor: Tensor) throws {
        let expected = nextIndex < declarations.count ? declarations[nextIndex] : nil
        if let expected, TensorName(expected.name) == TensorName(name),
           SafetensorsDType(tensor.dtype) != expected.dtype || tensor.shape != expected.shape {
            abandon()
            throw TensorError(.shapeMismatch, "\(path): tensor `\(name)` is declared \(expected.dtype) "
                + "\(expected.shape) but a \(SafetensorsDType(tensor.dtype)) \(tensor.shape) tensor was given")
        }
        try tensor.to(.cpu).withUnsafeContiguousBytes { try write(name, bytes: $0) }
    }

    /// Flushes the file to disk and renames it to `path`.
    /// - Throws: ``TensorError/Code/invalidArgument`` when declared tensors are still missing,
    ///   ``TensorError/Code/io`` when flushing or renaming fails; the temporary file is removed then.
    public func finish() throws {
        guard !finished, descriptor >= 0 else {
            throw TensorError(.invalidArgument, "\(path): the writer is already finished or abandoned")
        }
        guard nextIndex == declarations.count else {
            let missing = declarations[nextIndex...].prefix(3).map { "`\($0.name)`" }.joined(separator: ", ")
            abandon()
            throw TensorError(.invalidArgument, "\(path): \(declarations.count - nextIndex) declared tensors were "
                + "never written (\(missing)...); nothing was written to \(path)")
        }
        guard fsync(descriptor) == 0, close(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            abandon()
            throw TensorError(.io, "\(path): flushing the file failed; nothing was written", underlying: reason)
        }
        descriptor = -1
        do {
            // Checked again: what is at `path` may have changed while the file was written.
            guard try OutputPath.destination(for: path) == destination else {
                throw TensorError(.io, "\(path) changed while it was written (now a link elsewhere); nothing "
                    + "was written")
            }
        } catch {
            abandon()
            throw error
        }
        guard rename(temporaryPath, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            abandon()
            throw TensorError(.io, "\(path): renaming the finished file into place failed", underlying: reason)
        }
        finished = true
        if let cleanupSlot { TemporaryFileCleanup.unregister(cleanupSlot) }
        cleanupSlot = nil
    }

    /// Stops writing and removes the temporary file; `path` is left as it was.
    public func abandon() {
        guard !finished else { return }
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        unlink(temporaryPath)
        if let cleanupSlot { TemporaryFileCleanup.unregister(cleanupSlot) }
        cleanupSlot = nil
        finished = true
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let reason = String(cString: strerror(errno))
                if written < 0 && errno == EFAULT {
                    // write(2) could not read the source bytes: a mapped input shrank under them.
                    throw TensorError(.io, "\(path): the bytes to write could not be read (the memory behind "
                        + "them is gone: an input file truncated or replaced while being read); nothing was "
                        + "written to \(path)", underlying: reason)
                }
                throw TensorError(.io, "\(path): writing failed (is the disk full?); nothing was written to \(path)",
                                  underlying: reason)
            }
            offset += written
        }
    }

    // MARK: Header

    /// The header JSON (padded), exactly as written after the 8-byte length.
    /// - Throws: ``TensorError/Code/invalidArgument`` for duplicate (byte for byte) or reserved names, negative
    ///   dimensions, or a size that overflows or is not whole bytes.
    public static func header(_ tensors: [Declaration], metadata: [String: String]) throws -> [UInt8] {
        var names = Set<TensorName>()
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{" + fields.joined(separator: ",") + "}")
        }
        var offset = 0
        for tensor in tensors {
            guard TensorName(tensor.name) != "__metadata__", names.insert(TensorName(tensor.name)).inserted else {
                throw TensorError(.invalidArgument, "tensor name `\(tensor.name)` is reserved or used twice")
            }
            guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
                throw TensorError(.invalidArgument, "tensor `\(tensor.name)` has a negative dimension: \(tensor.shape)")
            }
            guard let byteCount = tensor.dtype.byteCount(shape: tensor.shape),
                  case (let end, false) = offset.addingReportingOverflow(byteCount) else {
                throw TensorError(.invalidArgument, "tensor `\(tensor.name)`: \(tensor.dtype) x \(tensor.shape) has no "
                    + "size in whole bytes below Int.max")
            }
            parts.append("\(jsonString(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":["
                + tensor.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var bytes = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while (8 + bytes.count) % dataAlignment != 0 { bytes.append(0x20) }
        return bytes
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                result += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

extension SafetensorsWriter {
    /// Writes `tensors` (CPU or device tensors, any float or integer dtype) to `path` in one call.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             to path: String) throws {
        let writer = try SafetensorsWriter(
            path: path, tensors: tensors.map { Declaration(name: $0.name, dtype: SafetensorsDType($0.tensor.dtype),
                                                           shape: $0.tensor.shape) },
            metadata: metadata)
        for (name, tensor) in tensors { try writer.write(name, tensor: tensor) }
        try writer.finish()
    }
}
