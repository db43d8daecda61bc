#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The hidden file a ``SafetensorsWriter`` builds its output in, named so that a later run can tell a
/// temporary left by a killed writer from one still being written.
///
/// For `DIR/NAME` the temporary is `DIR/.NAME.ql-PID-HOST-RANDOM.tmp`: PID is the writing process
/// (decimal), HOST eight hex digits of a hash (FNV-1a) of its host name, RANDOM 64 random bits in
/// base 36. A file of that exact pattern next to the same output is *stale*, and removed by the next
/// writer of that output, when all of these hold: it is a regular file owned by the current user, its
/// HOST is this host's, and no process PID exists (`kill(PID, 0)` fails with `ESRCH`). A file whose
/// process is alive (or whose PID was reused), from another host (a shared file system), or of
/// another user is left alone; so are temporaries named the older way (`.NAME.RANDOM.tmp`), which
/// cannot be told from someone else's file.
enum TemporaryOutputName {
    static let marker = ".ql-"
    static let suffix = ".tmp"

    /// A new temporary path next to `destination` for this process.
    static func make(for destination: String) -> String {
        let (directory, name) = split(destination)
        var generator = SystemRandomNumberGenerator()
        return directory + "/." + name + marker + "\(getpid())-\(hostToken)-"
            + String(generator.next() as UInt64, radix: 36) + suffix
    }

    /// Removes the stale temporaries of `destination` (see the type's description); returns their paths.
    @discardableResult
    static func removeStale(for destination: String) -> [String] {
        let (directory, name) = split(destination)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for entry in entries {
            guard let owner = owner(of: entry, destinationName: name), owner.host == hostToken,
                  !isAlive(owner.pid) else { continue }
            let path = directory + "/" + entry
            var status = stat()
            guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, status.st_uid == geteuid(),
                  unlink(path) == 0 else { continue }
            removed.append(path)
        }
        return removed
    }

    /// The writer's PID and host token when `fileName` is a temporary of `destinationName` in our pattern.
    static func owner(of fileName: String, destinationName: String) -> (pid: Int32, host: String)? {
        let prefix = "." + destinationName + marker
        guard fileName.hasPrefix(prefix), fileName.hasSuffix(suffix) else { return nil }
        let fields = fileName.dropFirst(prefix.count).dropLast(suffix.count).split(separator: "-",
                                                                                   omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].allSatisfy({ $0.isASCII && $0.isNumber }),
              let pid = Int32(fields[0]), pid > 0,
              fields[1].count == 8, fields[1].allSatisfy(\.isHexDigit),
              !fields[2].isEmpty, fields[2].allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLowercase) }),
              UInt64(fields[2], radix: 36) != nil else { return nil }
        return (pid, String(fields[1]))
    }

    /// Eight hex digits of FNV-1a over this host's name.
    static let hostToken: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = gethostname(&buffer, buffer.count - 1)
        var hash: UInt32 = 0x811c_9dc5
        for byte in buffer.prefix(while: { $0 != 0 }) { hash = (hash ^ UInt32(UInt8(bitPattern: byte))) &* 0x0100_0193 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }()

    /// Whether a process `pid` exists (one we may not signal exists too).
    static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    private static func split(_ path: String) -> (directory: String, name: String) {
        let url = URL(fileURLWithPath: path)
        return (url.deletingLastPathComponent().path, url.lastPathComponent)
    }
}
