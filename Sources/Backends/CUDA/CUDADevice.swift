import Foundation
import QLTensor

/// One CUDA device: its primary context, the stream every op is queued on, a caching memory
/// allocator and the compiled kernels.
///
/// All work goes to one stream per device, so reusing a freed block is safe without events: any
/// kernel still reading it was queued before whatever the block is handed to next. Every entry
/// point makes the context current on the calling thread first (tests call in from many threads).
final class CUDADevice: @unchecked Sendable {
    let ordinal: Int
    let name: String
    let computeCapability: (major: Int, minor: Int)
    let multiprocessorCount: Int
    let maxSharedMemoryPerBlock: Int
    let totalMemory: Int
    let driver: Driver
    unowned let runtime: CUDARuntime
    private let context: CUHandle
    let stream: CUHandle

    private let allocatorLock = NSLock()
    private var freeBlocks: [Int: [CUDeviceAddress]] = [:]
    private var cachedBytes = 0

    private let kernelLock = NSLock()
    private var modules: [String: CUHandle] = [:]
    private var functions: [String: CUHandle] = [:]
    private var blasState: Swift.Result<BLASLtContext, TensorError>?

    init(runtime: CUDARuntime, ordinal: Int) throws {
        self.runtime = runtime
        self.ordinal = ordinal
        let driver = runtime.driver
        self.driver = driver
        var device: Int32 = 0
        try driver.check(driver.deviceGet(&device, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
        func attribute(_ id: Int32) throws -> Int {
            var value: Int32 = 0
            try driver.check(driver.deviceGetAttribute(&value, id, device), "cuDeviceGetAttribute(\(id))")
            return Int(value)
        }
        computeCapability = (try attribute(75), try attribute(76))
        guard computeCapability.major >= 8 else {
            throw TensorError(.deviceUnavailable, "cuda:\(ordinal) has compute capability \(computeCapability.major)."
                + "\(computeCapability.minor); the CUDA backend needs 8.0 or newer (bfloat16 conversions, warp reductions)")
        }
        multiprocessorCount = try attribute(16)
        maxSharedMemoryPerBlock = try attribute(97)
        var nameBuffer = [CChar](repeating: 0, count: 256)
        try driver.check(driver.deviceGetName(&nameBuffer, 256, device), "cuDeviceGetName")
        name = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var memory = 0
        try driver.check(driver.deviceTotalMemory(&memory, device), "cuDeviceTotalMem")
        totalMemory = memory
        var context: CUHandle?
        try driver.check(driver.primaryContextRetain(&context, device), "cuDevicePrimaryCtxRetain(\(ordinal))")
        self.context = context!
        try driver.check(driver.contextSetCurrent(context), "cuCtxSetCurrent")
        var stream: CUHandle?
        try driver.check(driver.streamCreate(&stream, 1), "cuStreamCreate")  // CU_STREAM_NON_BLOCKING
        self.stream = stream!
    }

    /// The architecture NVRTC compiles for: `sm_XY`, or `sm_90a` for kernels that use Hopper-only
    /// instructions (wgmma, setmaxnreg).
    func architecture(archSpecific: Bool) -> String {
        "sm_\(computeCapability.major)\(computeCapability.minor)" + (archSpecific ? "a" : "")
    }

    /// Compute capability as one number, e.g. 90 for 9.0.
    var capability: Int { computeCapability.major * 10 + computeCapability.minor }

    func makeCurrent() throws {
        try driver.check(driver.contextSetCurrent(context), "cuCtxSetCurrent(cuda:\(ordinal))")
    }

    // MARK: Memory

    /// Blocks are rounded up (512 B below 1 MiB, 2 MiB above) and kept in free lists by rounded
    /// size when released, so steady-state inference allocates nothing from the driver.
    static func roundedSize(_ byteCount: Int) -> Int {
        let size = max(byteCount, 1)
        let granule = size < 1 << 20 ? 512 : 2 << 20
        return (size + granule - 1) / granule * granule
    }

    /// Device memory of at least `byteCount` bytes, uninitialised.
    /// - Throws: ``TensorError/Code/backendFailure`` when the device is out of memory even after the
    ///   cache is returned to the driver.
    func allocate(byteCount: Int) throws -> CUDAAllocation {
        let size = CUDADevice.roundedSize(byteCount)
        let reused: CUDeviceAddress? = allocatorLock.withLock {
            guard let address = freeBlocks[size]?.popLast() else { return nil }
            cachedBytes -= size
            return address
        }
        if let reused { return CUDAAllocation(device: self, address: reused, byteCount: byteCount, capacity: size) }
        try makeCurrent()
        var address: CUDeviceAddress = 0
        if driver.memoryAllocate(&address, size) != 0 {
            try releaseCache()
            try driver.check(driver.memoryAllocate(&address, size),
                             "cuMemAlloc(\(size) bytes) on cuda:\(ordinal) (\(totalMemory >> 20) MiB in total)")
        }
        return CUDAAllocation(device: self, address: address, byteCount: byteCount, capacity: size)
    }

    /// Takes a block back into the cache (called when its last tensor goes away).
    func recycle(_ address: CUDeviceAddress, capacity: Int) {
        allocatorLock.withLock {
            freeBlocks[capacity, default: []].append(address)
            cachedBytes += capacity
        }
    }

    /// Frees every cached block (after the queued work that may still use them has finished).
    func releaseCache() throws {
        try synchronize()
        let blocks = allocatorLock.withLock {
            let all = freeBlocks.values.flatMap { $0 }
            freeBlocks = [:]
            cachedBytes = 0
            return all
        }
        for block in blocks { try driver.check(driver.memoryFree(block), "cuMemFree") }
    }

    func synchronize() throws {
        try makeCurrent()
        try driver.check(driver.streamSynchronize(stream), "cuStreamSynchronize(cuda:\(ordinal))")
    }

    func copyFromHost(_ source: UnsafeRawPointer, byteCount: Int, to address: CUDeviceAddress) throws {
        guard byteCount > 0 else { return }
        try makeCurrent()
        try driver.check(driver.memcpyHostToDeviceAsync(address, source, byteCount, stream), "cuMemcpyHtoDAsync")
        // The host buffer belongs to the caller and may be freed as soon as we return.
        try synchronize()
    }

    func copyToHost(from address: CUDeviceAddress, byteCount: Int, into destination: UnsafeMutableRawPointer) throws {
        guard byteCount > 0 else { return }
        try makeCurrent()
        try driver.check(driver.memcpyDeviceToHostAsync(destination, address, byteCount, stream), "cuMemcpyDtoHAsync")
        try synchronize()
    }

    func copy(from source: CUDeviceAddress, to destination: CUDeviceAddress, byteCount: Int) throws {
        guard byteCount > 0 else { return }
        try makeCurrent()
        try driver.check(driver.memcpyDeviceToDeviceAsync(destination, source, byteCount, stream), "cuMemcpyDtoDAsync")
    }

    func fill(_ address: CUDeviceAddress, byte: UInt8, byteCount: Int) throws {
        guard byteCount > 0 else { return }
        try makeCurrent()
        try driver.check(driver.memsetD8Async(address, byte, byteCount, stream), "cuMemsetD8Async")
    }

    /// This device's cuBLASLt handle and workspace, made on first use.
    func blas() throws -> BLASLtContext {
        try kernelLock.withLock {
            if blasState == nil { blasState = CUDARuntime.capture { try BLASLtContext(device: self) } }
            return try blasState!.get()
        }
    }

    // MARK: Kernels

    /// No multiply-add contraction: the kernels round like the CPU reference (which computes
    /// `a * b + c` in two roundings), so quantizers are bit-exact with it; where a kernel wants a
    /// fused multiply-add it says `fmaf`.
    static func compileOptions(_ source: KernelSource) -> [String] {
        source.contractsMultiplyAdd ? [] : ["--fmad=false"]
    }

    /// A `CUtensorMap` (128 bytes) over a row-major `rows x columns` int8 matrix with `boxRows x
    /// boxColumns` tiles, 128-byte swizzle, zeros out of bounds: what the Hopper GEMM's bulk copies read.
    func tensorMap2D(int8 address: CUDeviceAddress, rows: Int, columns: Int, boxRows: Int, boxColumns: Int) throws
        -> [UInt8] {
        guard let encode = driver.tensorMapEncodeTiled else {
            throw TensorError(.deviceUnavailable, "this CUDA driver has no cuTensorMapEncodeTiled (CUDA 12 or newer)")
        }
        let map = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        defer { map.deallocate() }
        let dims: [UInt64] = [UInt64(columns), UInt64(rows)]
        let strides: [UInt64] = [UInt64(columns)]
        let box: [UInt32] = [UInt32(boxColumns), UInt32(boxRows)]
        let elementStrides: [UInt32] = [1, 1]
        // UINT8, rank 2, no interleave, 128B swizzle, 256B L2 promotion, zero fill.
        try driver.check(encode(map, 0, 2, UnsafeMutableRawPointer(bitPattern: UInt(address)), dims, strides, box,
                                elementStrides, 0, 3, 3, 0),
                         "cuTensorMapEncodeTiled(\(rows) x \(columns), box \(boxRows) x \(boxColumns))")
        return Array(UnsafeRawBufferPointer(start: map, count: 128))
    }

    /// The kernel `entry` of `source` compiled with `defines`, compiled once per process and cached
    /// by (source, architecture, options).
    /// - Throws: ``TensorError/Code/backendFailure`` with NVRTC's log when the source does not compile.
    func function(_ source: KernelSource, entry: String, defines: [String: Int] = [:]) throws -> CUHandle {
        let architecture = self.architecture(archSpecific: source.needsArchSpecific)
        let options = defines.sorted { $0.key < $1.key }.map { "-D\($0.key)=\($0.value)" }
        let moduleKey = "\(source.name)|\(source.hash)|\(architecture)|\(options.joined(separator: " "))"
        let functionKey = moduleKey + "|" + entry
        return try kernelLock.withLock {
            if let function = functions[functionKey] { return function }
            let module: CUHandle
            if let cached = modules[moduleKey] {
                module = cached
            } else {
                let cubin = try KernelDiskCache.cubin(source: source, architecture: architecture,
                                                      options: options + CUDADevice.compileOptions(source),
                                                      nvrtc: try runtime.nvrtc())
                try makeCurrent()
                var loaded: CUHandle?
                try cubin.withUnsafeBytes {
                    try driver.check(driver.moduleLoadData(&loaded, $0.baseAddress!), "cuModuleLoadData(\(source.name))")
                }
                module = loaded!
                modules[moduleKey] = module
            }
            var function: CUHandle?
            try driver.check(driver.moduleGetFunction(&function, module, entry), "cuModuleGetFunction(\(entry))")
            functions[functionKey] = function!
            return function!
        }
    }

    /// Raises a kernel's dynamic shared memory limit (needed above 48 KiB).
    func setDynamicSharedMemory(_ function: CUHandle, bytes: Int) throws {
        try driver.check(driver.functionSetAttribute(function, 8, Int32(bytes)),
                         "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES = \(bytes))")
    }

    /// Queues `function` on the device's stream.
    func launch(_ function: CUHandle, grid: (Int, Int, Int), block: (Int, Int, Int), sharedMemory: Int = 0,
                _ arguments: [KernelArgument]) throws {
        guard grid.0 > 0 && grid.1 > 0 && grid.2 > 0 else { return }
        try makeCurrent()
        try KernelArgument.withParameterArray(arguments) { parameters in
            try driver.check(driver.launchKernel(function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                                                 UInt32(block.0), UInt32(block.1), UInt32(block.2),
                                                 UInt32(sharedMemory), stream, parameters, nil),
                             "cuLaunchKernel(grid \(grid), block \(block), shared \(sharedMemory))")
        }
    }

    /// A grid size that fills the device for a grid-stride loop over `work` items of `perBlock` each.
    func gridSize(work: Int, perBlock: Int, blocksPerSM: Int = 8) -> Int {
        max(1, min((work + perBlock - 1) / perBlock, multiprocessorCount * blocksPerSM))
    }
}

/// A block of device memory: the ``DeviceAllocation`` behind every CUDA tensor. It goes back to
/// its device's cache when the last tensor using it goes away.
package final class CUDAAllocation: DeviceAllocation, @unchecked Sendable {
    package var device: Device { .cuda(owner.ordinal) }
    package let byteCount: Int
    let address: CUDeviceAddress
    let capacity: Int
    let owner: CUDADevice

    init(device: CUDADevice, address: CUDeviceAddress, byteCount: Int, capacity: Int) {
        owner = device
        self.address = address
        self.byteCount = byteCount
        self.capacity = capacity
    }

    deinit { owner.recycle(address, capacity: capacity) }
}

/// One kernel parameter, passed by value.
enum KernelArgument {
    /// A device pointer into `allocation`, which the argument keeps alive until the launch is queued
    /// (a block released earlier could be handed to other work that the stream runs first).
    case address(CUDeviceAddress, retaining: CUDAAllocation?)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
    /// A plain struct passed by value (its bytes, laid out as the kernel's C struct).
    case bytes([UInt8])

    static func int(_ value: Int) -> KernelArgument { .int64(Int64(value)) }
    /// A null pointer (an absent optional operand).
    static let null = KernelArgument.address(0, retaining: nil)

    /// Calls `body` with the `void**` array that `cuLaunchKernel` takes.
    static func withParameterArray<R>(_ arguments: [KernelArgument],
                                      _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws -> R) rethrows -> R {
        let sizes = arguments.map { argument -> Int in
            switch argument {
            case .address, .int64: 8
            case .int32, .float: 4
            case .bytes(let bytes): bytes.count
            }
        }
        // 64-byte slots keep by-value structs such as CUtensorMap (64-byte aligned) aligned.
        let slot = ((sizes.max() ?? 8) + 63) / 64 * 64
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(slot * arguments.count, 64), alignment: 64)
        defer { storage.deallocate() }
        let pointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: max(arguments.count, 1))
        defer { pointers.deallocate() }
        for (index, argument) in arguments.enumerated() {
            let place = storage + index * slot
            switch argument {
            case .address(let value, _): place.storeBytes(of: value, as: UInt64.self)
            case .int64(let value): place.storeBytes(of: value, as: Int64.self)
            case .int32(let value): place.storeBytes(of: value, as: Int32.self)
            case .float(let value): place.storeBytes(of: value, as: Float.self)
            case .bytes(let bytes): bytes.withUnsafeBytes { place.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            }
            pointers[index] = place
        }
        return try body(pointers)
    }
}

/// CUDA C++ source compiled at run time.
package struct KernelSource: Sendable {
    package let name: String
    package let text: String
    /// Whether it uses Hopper-only instructions and must be compiled for `sm_90a`.
    package let needsArchSpecific: Bool
    /// Whether the compiler may fuse `a * b + c` into one rounding (our own kernels say no, to round
    /// like the CPU reference).
    package let contractsMultiplyAdd: Bool
    /// Hash of the text, computed once: part of the kernel cache key.
    let hash: Int

    package init(name: String, text: String, needsArchSpecific: Bool = false, contractsMultiplyAdd: Bool = false) {
        self.name = name
        self.text = text
        self.needsArchSpecific = needsArchSpecific
        self.contractsMultiplyAdd = contractsMultiplyAdd
        hash = text.hashValue
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

    /// 64-bit FNV-1a: stable across processes, unlike `Hasher`.
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    static func cubin(source: KernelSource, architecture: String, options: [String], nvrtc: NVRTC) throws -> [UInt8] {
        let version = nvrtc.versionNumber
        let key = stableHash(source.text + "|" + architecture + "|" + options.joined(separator: " ")
            + "|nvrtc \(version.major).\(version.minor)")
        let path = directory.map { "\($0)/\(source.name)-\(architecture)-\(String(key, radix: 16)).cubin" }
        if let path, let data = FileManager.default.contents(atPath: path), !data.isEmpty { return [UInt8](data) }
        let cubin = try nvrtc.compile(source.text, name: source.name + ".cu", architecture: architecture, options: options)
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
