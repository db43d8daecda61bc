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

    /// Free device blocks by rounded size (CUDADevice+Memory.swift).
    let allocator = CachingAllocator()
    /// Loaded modules and functions (CUDADevice+Kernels.swift).
    let kernels = KernelCache()

    private let blasLock = NSLock()
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
        try blasLock.withLock {
            if blasState == nil { blasState = CUDARuntime.capture { try BLASLtContext(device: self) } }
            return try blasState!.get()
        }
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

    /// Whether launches can overlap the previous kernel of the stream (programmatic dependent launch):
    /// compute capability 9.0 or newer and a driver with `cuLaunchKernelEx`.
    var overlapsLaunches: Bool { capability >= 90 && driver.launchKernelEx != nil }

    /// Queues `function` on the device's stream. With `overlapsPrevious` (only where ``overlapsLaunches``)
    /// it is launched with programmatic stream serialization: it may start before the previous kernel of
    /// the stream has finished, so the kernel must execute `griddepcontrol.wait` before it touches memory
    /// that kernel reads or writes (decode.cu's `PDL`); the launch stays one node of a captured graph.
    func launch(_ function: CUHandle, grid: (Int, Int, Int), block: (Int, Int, Int), sharedMemory: Int = 0,
                overlapsPrevious: Bool = false, _ arguments: [KernelArgument]) throws {
        guard grid.0 > 0 && grid.1 > 0 && grid.2 > 0 else { return }
        try makeCurrent()
        try KernelArgument.withParameterArray(arguments) { parameters in
            guard overlapsPrevious, let launchKernelEx = driver.launchKernelEx else {
                try driver.check(driver.launchKernel(function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                                                     UInt32(block.0), UInt32(block.1), UInt32(block.2),
                                                     UInt32(sharedMemory), stream, parameters, nil),
                                 "cuLaunchKernel(grid \(grid), block \(block), shared \(sharedMemory))")
                return
            }
            // CUlaunchAttribute (72 bytes): id CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION (6) at 0, the
            // value union at 8 (programmaticStreamSerializationAllowed = 1). CUlaunchConfig (56 bytes): grid and
            // block dimensions and sharedMemBytes (7 x UInt32), the stream at 32, attrs at 40, numAttrs at 48.
            let attribute = UnsafeMutableRawPointer.allocate(byteCount: 72, alignment: 8)
            defer { attribute.deallocate() }
            attribute.initializeMemory(as: UInt8.self, repeating: 0, count: 72)
            attribute.storeBytes(of: 6, as: UInt32.self)
            attribute.storeBytes(of: 1, toByteOffset: 8, as: Int32.self)
            let config = UnsafeMutableRawPointer.allocate(byteCount: 56, alignment: 8)
            defer { config.deallocate() }
            config.initializeMemory(as: UInt8.self, repeating: 0, count: 56)
            for (index, value) in [grid.0, grid.1, grid.2, block.0, block.1, block.2, sharedMemory].enumerated() {
                config.storeBytes(of: UInt32(value), toByteOffset: 4 * index, as: UInt32.self)
            }
            config.storeBytes(of: UInt(bitPattern: stream), toByteOffset: 32, as: UInt.self)
            config.storeBytes(of: UInt(bitPattern: attribute), toByteOffset: 40, as: UInt.self)
            config.storeBytes(of: 1, toByteOffset: 48, as: UInt32.self)
            try driver.check(launchKernelEx(config, function, parameters, nil),
                             "cuLaunchKernelEx(grid \(grid), block \(block), shared \(sharedMemory), programmatic)")
        }
    }

    /// A grid size that fills the device for a grid-stride loop over `work` items of `perBlock` each.
    func gridSize(work: Int, perBlock: Int, blocksPerSM: Int = 8) -> Int {
        max(1, min((work + perBlock - 1) / perBlock, multiprocessorCount * blocksPerSM))
    }
}
