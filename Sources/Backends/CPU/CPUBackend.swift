import QLTensor

/// The CPU backend: dense ops on OpenBLAS and the quantized kernels of `CQLKernels`, threaded
/// with ``CPUKernels/parallelRanges(count:granule:minimumPerThread:_:)`` on the path of
/// ``CPUKernelPath/current``.
///
/// It serves `.cpu` tensors as soon as this module is linked (``BackendSlot/CPU``): nothing calls a
/// registration function.
package final class CPUBackend: DeviceBackend, Sendable {
    package static let shared = CPUBackend()
    package var kind: DeviceKind { .cpu }

    private init() {}
}

extension BackendSlot.CPU: BackendModule {
    package static var backend: any DeviceBackend { CPUBackend.shared }
}
