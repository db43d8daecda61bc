#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The temporary files being written right now, kept where a signal handler can remove them.
///
/// Every ``SafetensorsWriter`` registers its temporary file here while it exists. A library does not
/// take over a process's signals by itself, so removal on a signal is opt-in:
/// ``installSignalHandlers()`` makes SIGINT, SIGTERM and SIGHUP remove every registered file and exit
/// with status 128 + the signal number (130, 143, 129), and SIGBUS (a memory-mapped input truncated
/// while being read) remove them before the default action. A program with handlers of its own calls
/// ``removeRegisteredFiles()`` from them instead. SIGKILL cannot be caught: the next writer to the
/// same output removes what such a run left (``SafetensorsWriter``, stale temporaries).
///
/// The registry is a fixed table allocated once (``capacity`` paths of up to `PATH_MAX` bytes), each
/// slot guarded by an atomic state, so the handler only does atomic loads and `unlink(2)`, both
/// async-signal-safe. A writer beyond ``capacity`` at once still works; its file is just not removed
/// on a signal.
public enum TemporaryFileCleanup {
    /// How many temporary files can be registered at once.
    public static let capacity = 32

    /// Installs the SIGINT, SIGTERM, SIGHUP and SIGBUS handlers described above, and unblocks those
    /// signals in the calling thread (a parent that spawns from a thread with signals blocked passes
    /// its mask on; threads started later inherit the unblocked one). A signal the process ignores
    /// (`nohup`, a background job) stays ignored. Call it early, from the main thread.
    public static func installSignalHandlers() {
        _ = table  // allocated here, never first in a handler
        let exiting: @convention(c) (Int32) -> Void = { number in
            TemporaryFileCleanup.removeRegisteredFiles()
            _exit(128 + number)
        }
        let busError: @convention(c) (Int32) -> Void = { number in
            TemporaryFileCleanup.removeRegisteredFiles()
            let message: StaticString = """
                bus error (SIGBUS): a memory-mapped input file was probably truncated or replaced while \
                being read; temporary output files were removed

                """
            _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
            _ = signal(number, SIG_DFL)
            _ = raise(number)  // delivered with the default action when this handler returns
        }
        for signal in [SIGINT, SIGTERM, SIGHUP] { install(exiting, for: signal) }
        install(busError, for: SIGBUS)
        var handled = sigset_t()
        sigemptyset(&handled)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGBUS] { sigaddset(&handled, signal) }
        _ = pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    }

    /// Removes every registered temporary file. Async-signal-safe: atomic loads and `unlink(2)` only.
    public static func removeRegisteredFiles() {
        let table = table
        for slot in 0..<capacity where table.states[slot].load(ordering: .acquiring) == Table.registered {
            _ = unlink(table.paths + slot * Table.pathCapacity)
        }
    }

    /// Registers `path` for removal on a signal; returns its slot, or `nil` when the table is full
    /// or the path is longer than `PATH_MAX`.
    static func register(_ path: String) -> Int? {
        let bytes = Array(path.utf8)
        guard bytes.count < Table.pathCapacity else { return nil }
        let table = table
        for slot in 0..<capacity
        where table.states[slot].compareExchange(expected: Table.free, desired: Table.writing,
                                                 ordering: .acquiring).exchanged {
            let destination = table.paths + slot * Table.pathCapacity
            bytes.withUnsafeBufferPointer { source in
                destination.withMemoryRebound(to: UInt8.self, capacity: bytes.count + 1) {
                    $0.update(from: source.baseAddress!, count: bytes.count)
                    $0[bytes.count] = 0
                }
            }
            table.states[slot].store(Table.registered, ordering: .releasing)
            return slot
        }
        return nil
    }

    /// Forgets the file in `slot` (it was renamed into place or removed).
    static func unregister(_ slot: Int) {
        table.states[slot].store(Table.free, ordering: .releasing)
    }

    /// The registered paths, for tests.
    static var registeredPaths: [String] {
        (0..<capacity).compactMap { slot in
            table.states[slot].load(ordering: .acquiring) == Table.registered
                ? String(cString: table.paths + slot * Table.pathCapacity) : nil
        }
    }

    private static func install(_ handler: @convention(c) (Int32) -> Void, for signal: Int32) {
        var current = sigaction()
        guard sigaction(signal, nil, &current) == 0 else { return }
        #if canImport(Glibc)
        let previous = current.__sigaction_handler.sa_handler
        #else
        let previous = current.__sigaction_u.__sa_handler
        #endif
        if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { return }
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = handler
        #else
        action.__sigaction_u.__sa_handler = handler
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        _ = sigaction(signal, &action, nil)
    }

    /// Slot states and path bytes, allocated once and never freed.
    private final class Table: @unchecked Sendable {
        static let free = 0
        static let writing = 1
        static let registered = 2
        static let pathCapacity = Int(PATH_MAX)

        let states: UnsafeMutablePointer<Atomic<Int>>
        let paths: UnsafeMutablePointer<CChar>

        init() {
            states = .allocate(capacity: TemporaryFileCleanup.capacity)
            for slot in 0..<TemporaryFileCleanup.capacity { (states + slot).initialize(to: Atomic(Self.free)) }
            paths = .allocate(capacity: TemporaryFileCleanup.capacity * Self.pathCapacity)
        }
    }

    private static let table = Table()
}
