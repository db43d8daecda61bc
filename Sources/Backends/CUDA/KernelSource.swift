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

    /// Where the CUDA C files are: the `KernelSources` folder copied into this module's resources.
    static let folder: URL? = Bundle.module.resourceURL?.appendingPathComponent("KernelSources")

    private static let lock = NSLock()
    nonisolated(unsafe) private static var loaded: [String: Result<KernelProgram, TensorError>] = [:]

    /// The program `name`.cu, read on first use.
    static func named(_ name: String) throws -> KernelProgram {
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
            throw TensorError(.backendFailure, "the CUDA kernel source \(name).cu is missing from QLCUDA's resources "
                + "(\(folder?.path ?? "no resource folder")); rebuild the package so that SwiftPM copies them")
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
