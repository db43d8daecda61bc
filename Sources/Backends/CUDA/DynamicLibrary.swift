import Foundation
import QLTensor

/// A shared library opened with `dlopen`, and typed symbol lookup.
///
/// CUDA is never linked: the driver, NVRTC and cuBLASLt are found at run time, so the package builds
/// and its CPU half runs on machines without them.
final class DynamicLibrary: @unchecked Sendable {
    let path: String
    private let handle: UnsafeMutableRawPointer

    private init(path: String, handle: UnsafeMutableRawPointer) {
        self.path = path
        self.handle = handle
    }

    /// Opens the first of `names` that loads; bare names go through the loader's search path, and
    /// each directory in `directories` is also searched for files starting with `prefix` (so that
    /// versioned names such as `libnvrtc.so.13` are found without knowing the version).
    /// - Returns: the library, or `nil` with every attempt's `dlerror` text in `failures`.
    static func open(names: [String], prefix: String, directories: [String], failures: inout [String])
        -> DynamicLibrary? {
        var candidates = names
        for directory in directories {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            candidates += files.filter { $0.hasPrefix(prefix + ".so") }.sorted(by: >).map { directory + "/" + $0 }
        }
        for candidate in candidates {
            if let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) {
                return DynamicLibrary(path: candidate, handle: handle)
            }
            failures.append(String(cString: dlerror()))
        }
        return nil
    }

    /// The symbol `name` as a C function of type `T`.
    /// - Throws: ``TensorError/Code/deviceUnavailable`` when the library lacks it (too old a driver).
    func function<T>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let symbol = dlsym(handle, name) else {
            throw TensorError(.deviceUnavailable, "\(path) has no symbol \(name); install a newer CUDA driver/toolkit")
        }
        return unsafeBitCast(symbol, to: T.self)
    }

    /// The first of `names` that the library exports.
    func function<T>(anyOf names: [String], as type: T.Type = T.self) throws -> T {
        for name in names {
            if let symbol = dlsym(handle, name) { return unsafeBitCast(symbol, to: T.self) }
        }
        throw TensorError(.deviceUnavailable, "\(path) has none of \(names); install a newer CUDA driver/toolkit")
    }

    /// Directories where CUDA libraries usually live, with `CUDA_HOME`/`CUDA_PATH` first.
    static var cudaLibraryDirectories: [String] {
        let environment = ProcessInfo.processInfo.environment
        let roots = [environment["CUDA_HOME"], environment["CUDA_PATH"]].compactMap { $0 } + ["/usr/local/cuda"]
        var directories = roots.flatMap { [$0 + "/lib64", $0 + "/targets/x86_64-linux/lib", $0 + "/lib"] }
        directories += ["/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
        directories += (environment["LD_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
        return directories
    }
}
