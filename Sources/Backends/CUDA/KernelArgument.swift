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
