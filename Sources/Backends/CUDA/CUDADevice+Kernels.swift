import Foundation
import QLTensor

/// Kernels: NVRTC compiles each (program, architecture, `-D` options) once per process (and once
/// per machine through ``KernelDiskCache``); modules and functions are cached per device.
extension CUDADevice {
    /// No multiply-add contraction: the kernels round like the CPU reference (which computes
    /// `a * b + c` in two roundings), so quantizers are bit-exact with it; where a kernel wants a
    /// fused multiply-add it says `fmaf`.
    static func compileOptions(_ source: KernelSource) -> [String] {
        source.contractsMultiplyAdd ? [] : ["--fmad=false"]
    }

    /// The kernel `entry` of `source` compiled with `defines`, compiled once per process and cached
    /// by (source, architecture, options).
    /// - Throws: ``TensorError/Code/backendFailure`` with NVRTC's log when the source does not compile.
    func function(_ source: KernelSource, entry: String, defines: [String: Int] = [:]) throws -> CUHandle {
        let program = try source.program()
        let functionKey = KernelCache.FunctionKey(source: source.name, sourceHash: program.hash, entry: entry,
                                                  defines: defines)
        return try kernels.lock.withLock {
            if let function = kernels.functions[functionKey] { return function }
            let architecture = self.architecture(archSpecific: source.needsArchSpecific)
            let options = defines.sorted { $0.key < $1.key }.map { "-D\($0.key)=\($0.value)" }
            let moduleKey = "\(source.name)|\(program.hash)|\(architecture)|\(options.joined(separator: " "))"
            let module: CUHandle
            if let cached = kernels.modules[moduleKey] {
                module = cached
            } else {
                let cubin = try KernelDiskCache.cubin(name: source.name, program: program, architecture: architecture,
                                                      options: options + CUDADevice.compileOptions(source),
                                                      nvrtc: try runtime.nvrtc())
                try makeCurrent()
                var loaded: CUHandle?
                try cubin.withUnsafeBytes {
                    try driver.check(driver.moduleLoadData(&loaded, $0.baseAddress!), "cuModuleLoadData(\(source.name))")
                }
                module = loaded!
                kernels.modules[moduleKey] = module
            }
            var function: CUHandle?
            try driver.check(driver.moduleGetFunction(&function, module, entry), "cuModuleGetFunction(\(entry))")
            kernels.functions[functionKey] = function!
            return function!
        }
    }

    /// Raises a kernel's dynamic shared memory limit (needed above 48 KiB).
    func setDynamicSharedMemory(_ function: CUHandle, bytes: Int) throws {
        try driver.check(driver.functionSetAttribute(function, 8, Int32(bytes)),
                         "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES = \(bytes))")
    }

    /// How many blocks of `threads` threads and `sharedMemory` dynamic bytes of `function` one
    /// multiprocessor holds at once (registers, shared memory and thread limits), at least 1.
    func residentBlocks(_ function: CUHandle, threads: Int, sharedMemory: Int) throws -> Int {
        var blocks: Int32 = 0
        try driver.check(driver.occupancyMaxActiveBlocks(&blocks, function, Int32(threads), sharedMemory),
                         "cuOccupancyMaxActiveBlocksPerMultiprocessor")
        return max(1, Int(blocks))
    }
}

/// The modules and functions loaded on one device: modules by (program, hash, architecture, options),
/// functions by ``FunctionKey``.
final class KernelCache: @unchecked Sendable {
    let lock = NSLock()
    var modules: [String: CUHandle] = [:]
    var functions: [FunctionKey: CUHandle] = [:]

    /// What identifies a compiled kernel within one device: hashed without building strings, so a
    /// launch's lookup costs little host time (decode-shape calls are launch bound).
    struct FunctionKey: Hashable {
        let source: String
        let sourceHash: UInt64
        let entry: String
        let defines: [String: Int]
    }
}

/// Compiled cubins kept on disk between processes (`QLINEAR_KERNEL_CACHE`, default
/// `~/.cache/qlinear/kernels`; set it to an empty string to disable), keyed by a stable hash of
/// source, architecture, options and NVRTC version: the tensor-core GEMM takes NVRTC a minute.
enum KernelDiskCache {
    static let directory: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["QLINEAR_KERNEL_CACHE"] { return explicit.isEmpty ? nil : explicit }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache/qlinear/kernels"
    }()

    static func cubin(name: String, program: KernelProgram, architecture: String, options: [String],
                      nvrtc: NVRTC) throws -> [UInt8] {
        let version = nvrtc.versionNumber
        let key = KernelProgram.stableHash("\(program.hash)|" + architecture + "|" + options.joined(separator: " ")
            + "|nvrtc \(version.major).\(version.minor)")
        let path = directory.map { "\($0)/\(name)-\(architecture)-\(String(key, radix: 16)).cubin" }
        if let path, let data = FileManager.default.contents(atPath: path), !data.isEmpty { return [UInt8](data) }
        let cubin = try nvrtc.compile(program, name: name + ".cu", architecture: architecture, options: options)
        if let directory, let path {
            // Best effort: a cache that cannot be written only costs the next process a compile.
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = path + ".\(getpid()).tmp"
            if FileManager.default.createFile(atPath: temporary, contents: Data(cubin)) {
                _ = rename(temporary, path)
            }
        }
        return cubin
    }
}
