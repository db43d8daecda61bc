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
/// SIGBUS on access); checkpoints are written through a rename, which never truncates a mapped file.
final class MappedFile: @unchecked Sendable {
    let path: String
    let byteCount: Int
    /// `nil` for an empty file (nothing to map).
    private let base: UnsafeMutableRawPointer?

    /// Maps `path` read-only.
    /// - Throws: ``TensorError/Code/io`` when the file cannot be opened, is not a regular file, or cannot
    ///   be mapped; the system's words are in `underlying`.
    init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw TensorError(.io, "\(path): cannot open the file for reading; check the path and permissions",
                              underlying: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw TensorError(.io, "\(path): cannot read the file's size", underlying: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw TensorError(.io, "\(path): not a regular file; pass a .safetensors file")
        }
        byteCount = Int(status.st_size)
        guard byteCount > 0 else {
            base = nil
            return
        }
        guard let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0),
              mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw TensorError(.io, "\(path): cannot memory-map \(byteCount) bytes",
                              underlying: String(cString: strerror(errno)))
        }
        base = mapped
    }

    deinit {
        if let base { munmap(base, byteCount) }
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
