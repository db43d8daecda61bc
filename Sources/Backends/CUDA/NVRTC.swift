import Foundation
import QLTensor

/// NVRTC, the run-time CUDA C++ compiler, resolved from `libnvrtc.so*` with `dlsym`.
///
/// It needs no GPU: sources can be compiled (and their errors seen) on a machine with only the
/// library, which is how the kernel sources are checked in CI-like environments.
struct NVRTC: @unchecked Sendable {
    typealias Result = Int32
    typealias Program = OpaquePointer

    let library: DynamicLibrary
    private let version: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Result
    private let createProgram: @convention(c) (UnsafeMutablePointer<Program?>, UnsafePointer<CChar>,
                                               UnsafePointer<CChar>, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
                                               UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    private let compileProgram: @convention(c) (Program?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    private let getLogSize: @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Result
    private let getLog: @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Result
    private let getCubinSize: @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Result
    private let getCubin: @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Result
    private let destroyProgram: @convention(c) (UnsafeMutablePointer<Program?>) -> Result
    private let getErrorString: @convention(c) (Result) -> UnsafePointer<CChar>?

    /// Opens NVRTC: `QLINEAR_NVRTC` if set, else the usual names and CUDA library directories.
    /// - Throws: ``TensorError/Code/deviceUnavailable`` when it is not installed.
    init() throws {
        var failures: [String] = []
        let explicit = ProcessInfo.processInfo.environment["QLINEAR_NVRTC"].map { [$0] } ?? []
        let names = explicit + ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"]
        guard let library = DynamicLibrary.open(names: names, prefix: "libnvrtc",
                                                directories: DynamicLibrary.cudaLibraryDirectories,
                                                failures: &failures) else {
            throw TensorError(.deviceUnavailable, "NVRTC (libnvrtc.so) was not found; install the CUDA toolkit's "
                + "NVRTC (or set QLINEAR_NVRTC to its path)", underlying: failures.joined(separator: "\n"))
        }
        self.library = library
        version = try library.function("nvrtcVersion")
        createProgram = try library.function("nvrtcCreateProgram")
        compileProgram = try library.function("nvrtcCompileProgram")
        getLogSize = try library.function("nvrtcGetProgramLogSize")
        getLog = try library.function("nvrtcGetProgramLog")
        getCubinSize = try library.function("nvrtcGetCUBINSize")
        getCubin = try library.function("nvrtcGetCUBIN")
        destroyProgram = try library.function("nvrtcDestroyProgram")
        getErrorString = try library.function("nvrtcGetErrorString")
    }

    /// NVRTC's version, e.g. `(13, 0)`.
    var versionNumber: (major: Int, minor: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        _ = version(&major, &minor)
        return (Int(major), Int(minor))
    }

    /// Compiles `source` (with the headers it includes, passed by name) to a cubin for
    /// `architecture` (e.g. `sm_90a`).
    /// - Returns: the cubin bytes.
    /// - Throws: ``TensorError/Code/backendFailure`` with the compile log in `underlying`.
    func compile(_ source: KernelProgram, name: String, architecture: String, options: [String]) throws -> [UInt8] {
        var program: Program?
        let headerTexts = source.headers.map { strdup($0.text) }
        let headerNames = source.headers.map { strdup($0.name) }
        defer { (headerTexts + headerNames).forEach { free($0) } }
        let created = source.text.withCString { text in
            name.withCString { name in
                headerTexts.map { UnsafePointer($0) }.withUnsafeBufferPointer { texts in
                    headerNames.map { UnsafePointer($0) }.withUnsafeBufferPointer { names in
                        createProgram(&program, text, name, Int32(source.headers.count), texts.baseAddress,
                                      names.baseAddress)
                    }
                }
            }
        }
        try check(created, "creating program \(name)", log: nil)
        defer { _ = destroyProgram(&program) }
        let allOptions = ["--gpu-architecture=\(architecture)", "-std=c++17", "--device-as-default-execution-space"]
            + options
        let cStrings = allOptions.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let status = cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer {
            compileProgram(program, Int32(allOptions.count), $0.baseAddress)
        }
        let log = programLog(program)
        try check(status, "compiling \(name) for \(architecture) with \(allOptions.joined(separator: " "))", log: log)
        var size = 0
        try check(getCubinSize(program, &size), "reading the cubin size of \(name)", log: log)
        var cubin = [UInt8](repeating: 0, count: size)
        try check(cubin.withUnsafeMutableBytes { getCubin(program, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) },
                  "reading the cubin of \(name)", log: log)
        return cubin
    }

    private func programLog(_ program: Program?) -> String {
        var size = 0
        guard getLogSize(program, &size) == 0, size > 1 else { return "" }
        var buffer = [CChar](repeating: 0, count: size)
        _ = getLog(program, &buffer)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func check(_ result: Result, _ what: String, log: String?) throws {
        guard result != 0 else { return }
        let text = getErrorString(result).map { String(cString: $0) } ?? "nvrtcResult \(result)"
        throw TensorError(.backendFailure, "NVRTC failed \(what): \(text)",
                          underlying: log.flatMap { $0.isEmpty ? nil : $0 })
    }
}
