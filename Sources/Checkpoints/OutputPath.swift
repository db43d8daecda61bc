#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QLTensor

/// Checks on the path a checkpoint is written to, made before anything is created.
enum OutputPath {
    /// The regular file that writing `path` replaces: `path` itself, or the file a symbolic link at
    /// `path` points to (so writing through a link updates its target, as `cp` does).
    /// - Throws: ``TensorError/Code/io`` when `path`, or what a link at `path` points to, exists and
    ///   is not a regular file (a directory, FIFO, device node or socket: never replaced), or when a
    ///   link points to nothing.
    static func destination(for path: String) throws -> String {
        var status = stat()
        guard lstat(path, &status) == 0 else { return path }  // nothing there yet: a new file
        if (status.st_mode & S_IFMT) == S_IFREG { return path }
        guard (status.st_mode & S_IFMT) == S_IFLNK else {
            throw TensorError(.io, "\(path) is \(describe(status.st_mode)), not a regular file; it is never "
                + "replaced: pass the path of a .safetensors file to write")
        }
        var target = stat()
        guard stat(path, &target) == 0 else {
            throw TensorError(.io, "\(path) is a symbolic link to nothing; pass the path of the file to write",
                              underlying: String(cString: strerror(errno)))
        }
        guard (target.st_mode & S_IFMT) == S_IFREG else {
            throw TensorError(.io, "\(path) is a symbolic link to \(describe(target.st_mode)), not to a regular "
                + "file; it is never replaced: pass the path of a .safetensors file to write")
        }
        guard let resolved = realpath(path, nil) else {
            throw TensorError(.io, "\(path): cannot resolve the symbolic link",
                              underlying: String(cString: strerror(errno)))
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Throws when `output` is the same file as one of `inputs` (same device and inode, so a second
    /// spelling, a symbolic link or a hard link are all caught), which writing would replace.
    /// - Throws: ``TensorError/Code/invalidArgument`` naming both paths.
    static func requireDistinct(_ output: String, from inputs: [String]) throws {
        var written = stat()
        guard stat(output, &written) == 0 else { return }  // does not exist: cannot be an input
        for input in inputs {
            var read = stat()
            guard stat(input, &read) == 0 else { continue }  // the reader reports a missing input
            if read.st_dev == written.st_dev && read.st_ino == written.st_ino {
                throw TensorError(.invalidArgument, "the output \(output) is the input \(input) (the same file); "
                    + "writing it would replace the input: pass a different output path")
            }
        }
    }

    /// "a directory", "a FIFO (named pipe)", ... for a file type in `st_mode`.
    static func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        case S_IFREG: return "a regular file"
        default: return "a special file"
        }
    }
}
