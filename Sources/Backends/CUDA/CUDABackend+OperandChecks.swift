import QLTensor

/// Argument checks of the transformer ops, made before anything is launched: a kernel handed a
/// wrong shape would read or write outside its buffers.
enum OperandChecks {
    /// The dtypes the dense transformer kernels read and write.
    static let floatTypes: [DType] = [.float32, .float16, .bfloat16]

    /// Throws unless `tensor` is float32, float16 or bfloat16.
    static func float(_ tensor: Tensor, _ role: String, _ op: String) throws {
        guard floatTypes.contains(tensor.dtype) else {
            throw TensorError(.unsupportedDType, "\(op): \(role) has dtype \(tensor.dtype); it takes float32, "
                + "float16 or bfloat16 (convert with `.converted(to: .float32)`)")
        }
    }

    /// Throws unless every tensor is on `tensors[0]`'s device.
    static func sameDevice(_ tensors: [Tensor], _ op: String) throws {
        let devices = Set(tensors.map(\.device))
        guard devices.count <= 1 else {
            throw TensorError(.deviceMismatch, "\(op): operands are on different devices "
                + "(\(devices.map(\.description).sorted().joined(separator: ", "))); move them with `.to(_:)`")
        }
    }

    /// Throws unless `tensor` has at least `rank` dimensions.
    static func rank(_ tensor: Tensor, atLeast rank: Int, _ role: String, _ op: String) throws {
        guard tensor.rank >= rank else {
            throw TensorError(.shapeMismatch, "\(op): \(role) needs at least \(rank) dimension(s), got \(tensor.shape)")
        }
    }

    /// Throws unless `value` fits the 32-bit integer a kernel or cuBLASLt takes it as.
    static func fitsInt32(_ value: Int, _ what: String, _ op: String) throws {
        guard value <= Int(Int32.max) else {
            throw TensorError(.unsupportedOperation, "\(op): \(what) = \(value) exceeds 2^31 - 1, the largest the "
                + "CUDA kernels take; split the tensor")
        }
    }

    /// Throws unless `epsilon` is finite and not negative.
    static func epsilon(_ epsilon: Float, _ op: String) throws {
        guard epsilon.isFinite && epsilon >= 0 else {
            throw TensorError(.invalidArgument, "\(op): epsilon must be finite and >= 0, got \(epsilon)")
        }
    }
}

/// How many consecutive elements one thread moves per access.
enum VectorWidth {
    /// The widest of 8, 4, 2, 1 elements with at most 16 bytes per access (of `elementSize`-byte
    /// elements), dividing `length`, such that every operand address is aligned to its own vector
    /// (capped at 16 bytes: wider vectors are loaded 16 bytes at a time).
    static func choose(length: Int, elementSize: Int, operands: [(address: CUDeviceAddress, elementSize: Int)])
        -> Int {
        [8, 4, 2, 1].first { width in
            width * elementSize <= 16 && length % width == 0 && operands.allSatisfy { operand in
                operand.address % UInt64(min(16, width * operand.elementSize)) == 0
            }
        }!
    }
}
