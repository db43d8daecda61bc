/// A dense n-dimensional array of one ``DType`` on one ``Device``.
///
/// A tensor is a view (shape, strides in elements, offset in elements) over a shared
/// ``TensorStorage``. Views (``transposed(_:_:)``, ``reshaped(_:)`` of contiguous data) never copy;
/// writing through a tensor whose storage is shared copies it first, so tensors behave as values.
public struct Tensor: @unchecked Sendable {
    public private(set) var storage: TensorStorage
    public let dtype: DType
    public private(set) var shape: [Int]
    /// Distance in elements between neighbours along each dimension.
    public private(set) var strides: [Int]
    /// Position of element `[0, 0, ...]` in the storage, in elements.
    public private(set) var offset: Int

    /// A view over existing storage. The caller guarantees the view lies inside the storage.
    /// - Throws: ``TensorError/Code/invalidArgument`` for a shape no tensor can have (a negative dimension,
    ///   or strides or a byte count past `Int.max`: ``ShapeArithmetic/validate(_:elementSize:)``).
    public init(storage: TensorStorage, dtype: DType, shape: [Int], strides: [Int]? = nil, offset: Int = 0) throws {
        try ShapeArithmetic.validate(shape, elementSize: dtype.byteSize)
        self.storage = storage
        self.dtype = dtype
        self.shape = shape
        self.strides = strides ?? ShapeArithmetic.rowMajorStrides(ofValid: shape)
        self.offset = offset
    }

    /// A zero-filled tensor.
    /// - Throws: ``TensorError/Code/invalidArgument`` for a negative dimension, or the backend's
    ///   error when `device` is not the CPU.
    public init(zeros shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws {
        try ShapeArithmetic.validate(shape, elementSize: dtype.byteSize)
        let bytes = shape.reduce(1, *) * dtype.byteSize
        let storage: TensorStorage
        if device == .cpu {
            storage = TensorStorage(hostByteCount: bytes)
        } else {
            storage = TensorStorage(allocation: try DeviceBackends.memory(for: device).allocateZeroed(
                byteCount: bytes, on: device))
        }
        try self.init(storage: storage, dtype: dtype, shape: shape)
    }

    /// A CPU tensor whose elements are unspecified until written: for kernels in this package that
    /// write every element (it saves zero-filling the buffer).
    package init(uninitializedShape shape: [Int], dtype: DType) throws {
        try ShapeArithmetic.validate(shape, elementSize: dtype.byteSize)
        let storage = TensorStorage(uninitializedHostByteCount: shape.reduce(1, *) * dtype.byteSize)
        try self.init(storage: storage, dtype: dtype, shape: shape)
    }

    /// A CPU tensor holding `values` converted to `dtype` (round to nearest even for float types).
    /// - Throws: ``TensorError/Code/shapeMismatch`` when `values.count` is not the product of `shape`.
    public init(_ values: [Float], shape: [Int], dtype: DType = .float32) throws {
        try ShapeArithmetic.validate(shape, elementSize: dtype.byteSize)
        guard values.count == shape.reduce(1, *) else {
            throw TensorError(.shapeMismatch, "\(values.count) values cannot fill shape \(shape) "
                + "(\(shape.reduce(1, *)) elements); pass exactly one value per element")
        }
        try self.init(zeros: shape, dtype: dtype)
        let storage = self.storage
        values.withUnsafeBufferPointer {
            ElementConversion.fromFloat($0.baseAddress!, storage.hostPointer, dtype, count: values.count)
        }
    }

    /// A CPU tensor holding `elements` unchanged, with their type's dtype.
    public init<Element: TensorElement>(elements: [Element], shape: [Int]) throws {
        try ShapeArithmetic.validate(shape, elementSize: Element.dtype.byteSize)
        guard elements.count == shape.reduce(1, *) else {
            throw TensorError(.shapeMismatch, "\(elements.count) elements cannot fill shape \(shape)")
        }
        try self.init(zeros: shape, dtype: Element.dtype)
        let storage = self.storage
        elements.withUnsafeBytes { storage.hostPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var device: Device { storage.device }

    /// Whether the elements are laid out row-major without gaps.
    public var isContiguous: Bool { strides == ShapeArithmetic.rowMajorStrides(ofValid: shape) || count <= 1 }

    /// Row-major strides of `shape` in elements.
    /// - Throws: ``TensorError/Code/invalidArgument`` when they overflow (``ShapeArithmetic/validate(_:elementSize:)``).
    public static func contiguousStrides(for shape: [Int]) throws -> [Int] {
        try ShapeArithmetic.contiguousStrides(shape)
    }

    /// Resolves a possibly negative axis (`-1` is the last) and checks it.
    public func normalizedAxis(_ axis: Int) throws -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0 && resolved < rank else {
            throw TensorError(.invalidArgument, "axis \(axis) is out of range for a tensor of rank \(rank)")
        }
        return resolved
    }

    // MARK: Views

    /// The tensor with axes `a` and `b` swapped, sharing storage (no copy).
    public func transposed(_ a: Int = -2, _ b: Int = -1) throws -> Tensor {
        let (a, b) = (try normalizedAxis(a), try normalizedAxis(b))
        var view = self
        view.shape.swapAt(a, b)
        view.strides.swapAt(a, b)
        return view
    }

    /// The same elements with a new shape; a view when the tensor is contiguous, a copy otherwise.
    /// One dimension may be `-1` and is inferred.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = try ShapeArithmetic.elementCount(
                newShape.enumerated().filter { $0.offset != inferred }.map(\.element))
            guard known > 0 && count % known == 0 else {
                throw TensorError(.shapeMismatch, "cannot reshape \(shape) to \(newShape)")
            }
            resolved[inferred] = count / known
        }
        try ShapeArithmetic.validate(resolved, elementSize: dtype.byteSize)
        guard resolved.reduce(1, *) == count else {
            throw TensorError(.shapeMismatch, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        }
        var view = isContiguous ? self : try contiguous()
        view.shape = resolved
        view.strides = ShapeArithmetic.rowMajorStrides(ofValid: resolved)
        return view
    }

    /// A contiguous tensor with the same elements: `self` when already contiguous, else a copy.
    public func contiguous() throws -> Tensor {
        if isContiguous { return self }
        if device != .cpu { return try DeviceBackends.memory(for: device).contiguous(self) }
        // The gather writes every element, so the buffer needs no zero fill first.
        var result = try Tensor(uninitializedShape: shape, dtype: dtype)
        let elementSize = dtype.byteSize
        let destination = result.storage.hostPointer
        StridedCopy.gather(from: storage.hostPointer + offset * elementSize, shape: shape, strides: strides,
                           elementSize: elementSize, into: destination)
        result.offset = 0
        return result
    }

    // MARK: Raw access (CPU)

    /// Calls `body` with the bytes of this tensor's elements in row-major order (copying to a
    /// contiguous buffer first when needed). CPU only.
    public func withUnsafeContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try requireCPU("reading elements")
        let dense = try contiguous()
        let start = UnsafeRawPointer(dense.storage.hostPointer + dense.offset * dtype.byteSize)
        return try body(UnsafeRawBufferPointer(start: start, count: dense.count * dtype.byteSize))
    }

    /// Calls `body` with this tensor's elements as `Element`, writable; the tensor is made
    /// contiguous and unshared first (copy-on-write). CPU only.
    public mutating func withUnsafeMutableElements<Element: TensorElement, R>(
        as type: Element.Type, _ body: (UnsafeMutableBufferPointer<Element>) throws -> R
    ) throws -> R {
        try requireCPU("writing elements")
        guard Element.dtype == dtype else {
            throw TensorError(.unsupportedDType, "tensor holds \(dtype), not \(Element.dtype)")
        }
        if !isContiguous || !isKnownUniquelyReferenced(&storage) || !storage.isWritable {
            let copy = try Tensor.copying(self)
            self = copy
        }
        let start = (storage.hostPointer + offset * dtype.byteSize).assumingMemoryBound(to: Element.self)
        return try body(UnsafeMutableBufferPointer(start: start, count: count))
    }

    /// Calls `body` with this tensor's bytes, writable, for a kernel that writes its result over its
    /// input: the tensor is made contiguous and unshared first (copy-on-write), so nothing else sees
    /// the write. CPU only.
    package mutating func withUnsafeMutableContiguousBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R)
        throws -> R {
        try requireCPU("writing elements")
        if !isContiguous || !isKnownUniquelyReferenced(&storage) || !storage.isWritable {
            self = try Tensor.copying(self)
        }
        let start = storage.hostPointer + offset * dtype.byteSize
        return try body(UnsafeMutableRawBufferPointer(start: start, count: count * dtype.byteSize))
    }

    /// Calls `body` with the elements as contiguous float32 values, converting only when the
    /// tensor is not already contiguous float32 on the CPU.
    public func withUnsafeFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        try requireCPU("reading elements")
        if dtype == .float32 && isContiguous {
            let start = (storage.hostPointer + offset * 4).assumingMemoryBound(to: Float.self)
            return try body(UnsafeBufferPointer(start: start, count: count))
        }
        let floats = try self.floats()
        return try floats.withUnsafeBufferPointer(body)
    }

    /// The elements as `Float` in row-major order, converted from the tensor's dtype. Moves the
    /// data to the CPU first if needed.
    public func floats() throws -> [Float] {
        if device != .cpu { return try to(.cpu).floats() }
        return try withUnsafeContiguousBytes { bytes in
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                ElementConversion.toFloat(bytes.baseAddress!, dtype, buffer.baseAddress!, count: count)
                initialized = count
            }
        }
    }

    /// The elements unchanged, as `Element` (which must be this tensor's element type).
    public func elements<Element: TensorElement>(as type: Element.Type) throws -> [Element] {
        if device != .cpu { return try to(.cpu).elements(as: type) }
        guard Element.dtype == dtype else {
            throw TensorError(.unsupportedDType, "tensor holds \(dtype), not \(Element.dtype)")
        }
        return try withUnsafeContiguousBytes { Array($0.bindMemory(to: Element.self)) }
    }

    /// The same values in another dtype (a copy; `self` when the dtype already matches).
    public func converted(to target: DType) throws -> Tensor {
        if target == dtype { return self }
        if device != .cpu { return try DeviceBackends.memory(for: device).convert(self, to: target) }
        let result = try Tensor(zeros: shape, dtype: target)
        try withUnsafeFloats { floats in
            ElementConversion.fromFloat(floats.baseAddress!, result.storage.hostPointer, target, count: count)
        }
        return result
    }

    /// The tensor on `target` (a copy; `self` when it is already there).
    public func to(_ target: Device) throws -> Tensor {
        if target == device { return self }
        let dense = try contiguous()
        let bytes = dense.count * dtype.byteSize
        if target == .cpu {
            let result = try Tensor(zeros: shape, dtype: dtype)
            try DeviceBackends.memory(for: device)
                .copyToHost(dense, into: result.storage.hostPointer, byteCount: bytes)
            return result
        }
        if device == .cpu {
            let backend = try DeviceBackends.memory(for: target)
            let allocation = try backend.allocate(byteCount: bytes, on: target)
            try backend.copyFromHost(UnsafeRawPointer(dense.storage.hostPointer + dense.offset * dtype.byteSize),
                                     byteCount: bytes, into: allocation)
            return try Tensor(storage: TensorStorage(allocation: allocation), dtype: dtype, shape: shape)
        }
        return try dense.to(.cpu).to(target)
    }

    /// A fresh contiguous copy on the same device.
    public static func copying(_ tensor: Tensor) throws -> Tensor {
        if tensor.device != .cpu { return try DeviceBackends.memory(for: tensor.device).clone(tensor) }
        let result = try Tensor(zeros: tensor.shape, dtype: tensor.dtype)
        try tensor.withUnsafeContiguousBytes {
            result.storage.hostPointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count)
        }
        return result
    }

    func requireCPU(_ what: String) throws {
        guard device == .cpu else {
            throw TensorError(.deviceMismatch, "\(what) needs a CPU tensor, this one is on \(device); "
                + "move it with `.to(.cpu)` first")
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(dtype), shape: \(shape), device: \(device))" }
}
