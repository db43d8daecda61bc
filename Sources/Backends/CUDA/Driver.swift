import Foundation
import QLTensor

/// Opaque driver handles (`CUcontext`, `CUstream`, `CUmodule`, `CUfunction`, `CUevent`).
typealias CUHandle = OpaquePointer
/// A device address (`CUdeviceptr`).
typealias CUDeviceAddress = UInt64

/// The CUDA driver API, resolved from `libcuda.so.1` with `dlsym`.
///
/// Every entry point is called through ``check(_:_:)``, the one place where a `CUresult` becomes a
/// ``TensorError`` carrying the driver's own message (`cuGetErrorName` / `cuGetErrorString`).
/// Names follow the header's macros (`cuMemAlloc` is `cuMemAlloc_v2`, `cuEventElapsedTime` is
/// `cuEventElapsedTime_v2` since CUDA 12.8, ...).
struct Driver: @unchecked Sendable {
    typealias Result = Int32

    let library: DynamicLibrary
    let initialize: @convention(c) (UInt32) -> Result
    let deviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let deviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Result
    let deviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Result
    let deviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Result
    let deviceTotalMemory: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Result
    let primaryContextRetain: @convention(c) (UnsafeMutablePointer<CUHandle?>, Int32) -> Result
    let contextSetCurrent: @convention(c) (CUHandle?) -> Result
    let memoryAllocate: @convention(c) (UnsafeMutablePointer<CUDeviceAddress>, Int) -> Result
    let memoryFree: @convention(c) (CUDeviceAddress) -> Result
    let memcpyHostToDeviceAsync: @convention(c) (CUDeviceAddress, UnsafeRawPointer, Int, CUHandle?) -> Result
    let memcpyDeviceToHostAsync: @convention(c) (UnsafeMutableRawPointer, CUDeviceAddress, Int, CUHandle?) -> Result
    let memcpyDeviceToDeviceAsync: @convention(c) (CUDeviceAddress, CUDeviceAddress, Int, CUHandle?) -> Result
    let memsetD8Async: @convention(c) (CUDeviceAddress, UInt8, Int, CUHandle?) -> Result
    let streamCreate: @convention(c) (UnsafeMutablePointer<CUHandle?>, UInt32) -> Result
    let streamSynchronize: @convention(c) (CUHandle?) -> Result
    let moduleLoadData: @convention(c) (UnsafeMutablePointer<CUHandle?>, UnsafeRawPointer) -> Result
    let moduleGetFunction: @convention(c) (UnsafeMutablePointer<CUHandle?>, CUHandle?, UnsafePointer<CChar>) -> Result
    let functionSetAttribute: @convention(c) (CUHandle?, Int32, Int32) -> Result
    /// `cuOccupancyMaxActiveBlocksPerMultiprocessor`: how many blocks of a kernel fit on one multiprocessor.
    let occupancyMaxActiveBlocks: @convention(c) (UnsafeMutablePointer<Int32>, CUHandle?, Int32, Int) -> Result
    let launchKernel: @convention(c) (CUHandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUHandle?,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Result
    /// `cuLaunchKernelEx` (CUDA 12+): a launch with attributes (`CUDADevice.launch` uses it for programmatic
    /// dependent launch); `nil` on older drivers.
    let launchKernelEx: (@convention(c) (UnsafeRawPointer, CUHandle?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                         UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Result)?
    let eventCreate: @convention(c) (UnsafeMutablePointer<CUHandle?>, UInt32) -> Result
    let eventRecord: @convention(c) (CUHandle?, CUHandle?) -> Result
    let eventSynchronize: @convention(c) (CUHandle?) -> Result
    let eventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, CUHandle?, CUHandle?) -> Result
    let eventDestroy: @convention(c) (CUHandle?) -> Result
    /// `cuTensorMapEncodeTiled` (CUDA 12+), for the bulk tensor copies of the Hopper GEMM; `nil` on older drivers.
    let tensorMapEncodeTiled: (@convention(c) (UnsafeMutableRawPointer, Int32, UInt32, UnsafeMutableRawPointer?,
                                               UnsafePointer<UInt64>, UnsafePointer<UInt64>, UnsafePointer<UInt32>,
                                               UnsafePointer<UInt32>, Int32, Int32, Int32, Int32) -> Result)?
    /// Stream capture and graph replay (`cuStreamBeginCapture_v2`, `cuStreamEndCapture`,
    /// `cuGraphInstantiateWithFlags`, `cuGraphLaunch`, destroy): what ``CUDATimer/measureGraph`` times
    /// device work with, free of host launch gaps. `nil` on drivers without them (before CUDA 11.4).
    let graphs: Graphs?
    let getErrorName: @convention(c) (Result, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Result
    let getErrorString: @convention(c) (Result, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Result

    /// Opens `libcuda.so.1` and resolves every entry point.
    /// - Throws: ``TensorError/Code/deviceUnavailable`` when there is no driver.
    init() throws {
        var failures: [String] = []
        guard let library = DynamicLibrary.open(names: ["libcuda.so.1", "libcuda.so"], prefix: "libcuda",
                                                directories: ["/usr/local/nvidia/lib64", "/usr/lib/wsl/lib"],
                                                failures: &failures) else {
            throw TensorError(.deviceUnavailable, "the CUDA driver (libcuda.so.1) is not installed on this machine; "
                + "install the NVIDIA driver or keep tensors on the CPU", underlying: failures.joined(separator: "\n"))
        }
        self.library = library
        initialize = try library.function("cuInit")
        deviceGetCount = try library.function("cuDeviceGetCount")
        deviceGet = try library.function("cuDeviceGet")
        deviceGetAttribute = try library.function("cuDeviceGetAttribute")
        deviceGetName = try library.function("cuDeviceGetName")
        deviceTotalMemory = try library.function("cuDeviceTotalMem_v2")
        primaryContextRetain = try library.function("cuDevicePrimaryCtxRetain")
        contextSetCurrent = try library.function("cuCtxSetCurrent")
        memoryAllocate = try library.function("cuMemAlloc_v2")
        memoryFree = try library.function("cuMemFree_v2")
        memcpyHostToDeviceAsync = try library.function("cuMemcpyHtoDAsync_v2")
        memcpyDeviceToHostAsync = try library.function("cuMemcpyDtoHAsync_v2")
        memcpyDeviceToDeviceAsync = try library.function("cuMemcpyDtoDAsync_v2")
        memsetD8Async = try library.function("cuMemsetD8Async")
        streamCreate = try library.function("cuStreamCreate")
        streamSynchronize = try library.function("cuStreamSynchronize")
        moduleLoadData = try library.function("cuModuleLoadData")
        moduleGetFunction = try library.function("cuModuleGetFunction")
        functionSetAttribute = try library.function("cuFuncSetAttribute")
        occupancyMaxActiveBlocks = try library.function("cuOccupancyMaxActiveBlocksPerMultiprocessor")
        launchKernel = try library.function("cuLaunchKernel")
        launchKernelEx = try? library.function("cuLaunchKernelEx")
        eventCreate = try library.function("cuEventCreate")
        eventRecord = try library.function("cuEventRecord")
        eventSynchronize = try library.function("cuEventSynchronize")
        eventElapsedTime = try library.function(anyOf: ["cuEventElapsedTime_v2", "cuEventElapsedTime"])
        eventDestroy = try library.function(anyOf: ["cuEventDestroy_v2", "cuEventDestroy"])
        tensorMapEncodeTiled = try? library.function("cuTensorMapEncodeTiled")
        graphs = try? Graphs(library)
        getErrorName = try library.function("cuGetErrorName")
        getErrorString = try library.function("cuGetErrorString")
    }

    struct Graphs {
        let beginCapture: @convention(c) (CUHandle?, Int32) -> Result
        let endCapture: @convention(c) (CUHandle?, UnsafeMutablePointer<CUHandle?>) -> Result
        let instantiate: @convention(c) (UnsafeMutablePointer<CUHandle?>, CUHandle?, UInt64) -> Result
        let launch: @convention(c) (CUHandle?, CUHandle?) -> Result
        let destroyExecutable: @convention(c) (CUHandle?) -> Result
        let destroy: @convention(c) (CUHandle?) -> Result

        init(_ library: DynamicLibrary) throws {
            beginCapture = try library.function("cuStreamBeginCapture_v2")
            endCapture = try library.function("cuStreamEndCapture")
            instantiate = try library.function("cuGraphInstantiateWithFlags")
            launch = try library.function("cuGraphLaunch")
            destroyExecutable = try library.function("cuGraphExecDestroy")
            destroy = try library.function("cuGraphDestroy")
        }
    }

    /// Throws unless `result` is `CUDA_SUCCESS`; the error names the call and carries the driver's text.
    func check(_ result: Result, _ what: @autoclosure () -> String) throws {
        guard result != 0 else { return }
        var name: UnsafePointer<CChar>?
        var text: UnsafePointer<CChar>?
        _ = getErrorName(result, &name)
        _ = getErrorString(result, &text)
        let message = "\(name.map { String(cString: $0) } ?? "CUresult \(result)"): "
            + (text.map { String(cString: $0) } ?? "unknown error")
        // 100 = CUDA_ERROR_NO_DEVICE, 35 = CUDA_ERROR_INSUFFICIENT_DRIVER.
        let code: TensorError.Code = result == 100 || result == 35 ? .deviceUnavailable : .backendFailure
        throw TensorError(code, "CUDA driver call failed: \(what())", underlying: message)
    }
}
