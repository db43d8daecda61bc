#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QLTensor

/// A whole file mapped read-only into memory: the one type in this module that holds raw pointers
/// into a checkpoint.
///
/// Pages are read from disk when first touched, so a file larger than RAM can be walked tensor by
/// tensor; ``releasePages(in:)`` hands pages that are no longer needed back to the kernel, which keeps
/// the resident set small while a converter streams through a big model. The mapping lives as long as
/// this object, and tensors that borrow it keep it alive through their storage's owner.
///
/// The file must not be truncated by another process while it is mapped (the kernel would signal
/// SIGBUS on access, or fail a `write(2)` from the mapping with `EFAULT`); checkpoints are written
/// through a rename, which never truncates a mapped file. ``currentByteCount()`` tells whether it was.
final class MappedFile: @unchecked Sendable {
    let path: String
    let byteCount: Int
    /// `nil` for an empty file (nothing to map).
    private let base: UnsafeMutableRawPointer?
    /// Kept open to ask the file's size later (``currentByteCount()``).
    private let descriptor: Int32

    /// Maps `path` read-only.
    ///
    /// The file is opened with `O_NONBLOCK` and checked with `fstat` before anything is read, so a
    /// FIFO or device is refused at once instead of blocking the open until a writer comes.
    /// - Throws: ``TensorError/Code/io`` when the file cannot be opened, is not a regular file, or cannot
    ///   be mapped; the system's words are in `underlying`.
    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            throw TensorError(.io, "\(path): cannot open the file for reading; check the path and permissions",
                              underlying: String(cString: strerror(errno)))
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw TensorError(.io, "\(path): cannot read the file's size", underlying: reason)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw TensorError(.io, "\(path): \(OutputPath.describe(status.st_mode)), not a regular file; pass a "
                + ".safetensors file")
        }
        byteCount = Int(status.st_size)
        guard byteCount > 0 else {
            base = nil
            return
        }
        guard let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0),
              mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw TensorError(.io, "\(path): cannot memory-map \(byteCount) bytes", underlying: reason)
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, byteCount) }
        close(descriptor)
    }

    /// The mapped file's size now (it is `byteCount` unless someone truncated or extended it), or `nil`
    /// when it cannot be read.
    func currentByteCount() -> Int? {
        var status = stat()
        return fstat(descriptor, &status) == 0 ? Int(status.st_size) : nil
    }

    /// Calls `body` with the bytes in `range` (which the caller has checked lies inside the file).
    func withBytes<R>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= byteCount, "range \(range) outside \(path)")
        guard let base, !range.isEmpty else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// Storage for the bytes in `range` without copying, kept alive by this mapping; `nil` when the
    /// bytes do not start on an `alignment`-byte boundary (the caller copies them then).
    func borrowedStorage(for range: Range<Int>, alignment: Int) -> TensorStorage? {
        precondition(range.lowerBound >= 0 && range.upperBound <= byteCount, "range \(range) outside \(path)")
        guard let base, !range.isEmpty else { return nil }
        let start = base + range.lowerBound
        guard Int(bitPattern: start) % alignment == 0 else { return nil }
        return TensorStorage(borrowing: start, byteCount: range.count, owner: self)
    }

    /// Tells the kernel the pages wholly inside `range` are not needed for now (`MADV_DONTNEED`): they
    /// leave the resident set and are read from the file again if touched later. Only a hint; a failure
    /// changes nothing but memory use.
    func releasePages(in range: Range<Int>) {
        guard let base, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (range.lowerBound + page - 1) / page * page
        let last = range.upperBound == byteCount ? byteCount : range.upperBound / page * page
        guard last > first else { return }
        _ = madvise(base + first, last - first, MADV_DONTNEED)
    }
}
