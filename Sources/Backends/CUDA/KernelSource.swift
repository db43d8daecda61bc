import Foundation
import QLTensor

/// One CUDA C program of the backend: a `.cu` file of `KernelSources/` (a resource of this module),
/// compiled at run time by NVRTC with the folder's `.cuh` headers passed by name.
package struct KernelSource: Sendable {
    /// The file's name without `.cu`; also the name of the program in NVRTC logs and caches.
    package let name: String
    /// Whether it uses Hopper-only instructions and must be compiled for `sm_90a`.
    package let needsArchSpecific: Bool
    /// Whether the compiler may fuse `a * b + c` into one rounding (our own kernels say no, to round
    /// like the CPU reference).
    package let contractsMultiplyAdd: Bool

    package init(file: String, needsArchSpecific: Bool = false, contractsMultiplyAdd: Bool = false) {
        name = file
        self.needsArchSpecific = needsArchSpecific
        self.contractsMultiplyAdd = contractsMultiplyAdd
    }

    /// The program's text and headers, read from the resources once per process.
    /// - Throws: ``TensorError/Code/backendFailure`` when the file is missing from the resources.
    package func program() throws -> KernelProgram { try KernelProgram.named(name) }
}

/// The text of a `.cu` file, every `.cuh` header beside it, and a hash of all of them (the kernel
/// caches' key: stable across processes, so the on-disk cubin cache survives restarts).
package struct KernelProgram: Sendable {
    package let text: String
    package let headers: [(name: String, text: String)]
    package let hash: UInt64

    /// The environment variable naming a folder of CUDA C files to use instead of the built-in ones.
    package static let overrideVariable = "QLINEAR_CUDA_KERNELS"

    /// Where the CUDA C files may be, in the order tried: the folder in ``overrideVariable``; the
    /// `KernelSources` folder of this module's resource bundle next to the executable (where SwiftPM
    /// puts it for every build, and where a deployment copies it); the package's own source folder (a
    /// checkout that was built here, moved or not yet copied). Looked up by hand rather than through
    /// `Bundle.module`, which stops the process when its bundle is missing.
    static func candidateFolders(environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var folders: [URL] = []
        if let path = environment[overrideVariable], !path.isEmpty {
            folders.append(URL(fileURLWithPath: path))
        }
        let executableFolder = Bundle.main.executableURL?.deletingLastPathComponent() ?? Bundle.main.bundleURL
        folders.append(executableFolder.appendingPathComponent("QuantizedLinear_QLCUDA.resources/KernelSources"))
        let sourceFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        folders.append(sourceFolder.appendingPathComponent("KernelSources"))
        return folders
    }

    /// The first of ``candidateFolders(environment:)`` that holds the programs (every one includes
    /// `prelude.cuh`).
    package static func folder(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        candidateFolders(environment: environment).first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("prelude.cuh").path)
        }
    }

    /// ``folder(environment:)`` for this process, found once.
    static let folder: URL? = folder()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var loaded: [String: Result<KernelProgram, TensorError>] = [:]

    /// The program `name`.cu, read on first use.
    package static func named(_ name: String) throws -> KernelProgram {
        try lock.withLock {
            if let known = loaded[name] { return try known.get() }
            let result = Result<KernelProgram, TensorError> { () throws(TensorError) in try read(name) }
            loaded[name] = result
            return try result.get()
        }
    }

    private static func read(_ name: String) throws(TensorError) -> KernelProgram {
        guard let folder, let text = try? String(contentsOf: folder.appendingPathComponent(name + ".cu"),
                                                  encoding: .utf8) else {
            let tried = folder.map { [$0] } ?? candidateFolders()
            throw TensorError(.backendFailure, "the CUDA kernel source \(name).cu was not found (looked in "
                + tried.map(\.path).joined(separator: ", ") + "); copy the QuantizedLinear_QLCUDA.resources folder of "
                + "the build next to the executable, or set \(overrideVariable) to a copy of "
                + "Sources/Backends/CUDA/KernelSources")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let headers = files.filter { $0.hasSuffix(".cuh") }.sorted().compactMap { file in
            (try? String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)).map { (file, $0) }
        }
        let hash = stableHash(([text] + headers.map { $0.0 + "\n" + $0.1 }).joined(separator: "\u{0}"))
        return KernelProgram(text: text, headers: headers, hash: hash)
    }

    /// 64-bit FNV-1a: stable across processes, unlike `Hasher`.
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
