import QLTensor

/// Materialising strided views (the `gather` kernel of ``DenseKernels``), for any rank and strides.
extension CUDABackend {
    /// A contiguous copy of `tensor` (any view: transposed, permuted, sliced).
    ///
    /// The view is first reduced to the fewest axes that address the same elements in the same order
    /// (size-1 axes dropped, axes that are contiguous across each other merged: a permute of heads
    /// `[B, S, H, Dh] -> [B, H, S, Dh]` becomes 4 axes, a transpose of a contiguous matrix 2). When the
    /// innermost axis is contiguous, elements move as words of up to 16 bytes. Up to 8 axes go to one
    /// kernel launch; a view with more axes that cannot merge is copied in one launch per index of
    /// its leading axes.
    public func contiguous(_ tensor: Tensor) throws -> Tensor {
        let source = try GPU(tensor)
        let result = try GPU.empty(tensor.shape, tensor.dtype, on: source.device)
        guard tensor.count > 0 else { return result }
        let target = try GPU(result)
        var (shape, strides) = StridedLayout.collapsed(shape: tensor.shape, strides: tensor.strides)
        var wordSize = tensor.dtype.byteSize
        if shape.isEmpty || (shape.count == 1 && strides[0] == 1) {
            try source.device.copy(from: source.address, to: target.address,
                                   byteCount: tensor.count * tensor.dtype.byteSize)
            return result
        }
        if strides.last == 1 {
            // Wider words: the inner extent and every outer stride must be whole words, the source aligned.
            if let word = [16, 8, 4, 2].first(where: { word in
                let ratio = word / wordSize
                return word > wordSize && word % wordSize == 0 && shape[shape.count - 1] % ratio == 0
                    && strides.dropLast().allSatisfy { $0 % ratio == 0 } && source.address % UInt64(word) == 0
            }) {
                let ratio = word / wordSize
                shape[shape.count - 1] /= ratio
                for axis in 0..<(strides.count - 1) { strides[axis] /= ratio }
                wordSize = word
            }
        }
        let function = try source.device.function(DenseKernels.source, entry: "gather", defines: ["ES": wordSize])
        let outer = max(shape.count - DenseKernels.maxRank, 0)
        let innerShape = Array(shape[outer...])
        let innerStrides = Array(strides[outer...])
        let innerCount = innerShape.reduce(1, *)
        let dims = DenseKernels.dims(shape: innerShape, a: innerStrides, b: innerStrides)
        let grid = source.device.gridSize(work: innerCount, perBlock: 256)
        let outerShape = Array(shape[..<outer])
        var index = [Int](repeating: 0, count: outer)
        for block in 0..<outerShape.reduce(1, *) {
            let offset = zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }
            try source.device.launch(function, grid: (grid, 1, 1), block: (256, 1, 1), [
                source.advanced(by: offset * wordSize).argument,
                target.advanced(by: block * innerCount * wordSize).argument, .int(innerCount), .bytes(dims)])
            var axis = outer - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outerShape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }
}

/// Shape and strides of a strided view, simplified without changing which elements it addresses or
/// their row-major order.
enum StridedLayout {
    /// Drops size-1 axes and merges axis `i` into `i + 1` where `strides[i] == strides[i + 1] * shape[i + 1]`.
    /// A view with no elements, or of one element, collapses to no axes.
    static func collapsed(shape: [Int], strides: [Int]) -> (shape: [Int], strides: [Int]) {
        if shape.contains(0) { return ([], []) }
        var mergedShape: [Int] = []
        var mergedStrides: [Int] = []
        for (extent, stride) in zip(shape, strides) where extent != 1 {
            if let last = mergedStrides.last, last == stride * extent {
                mergedShape[mergedShape.count - 1] *= extent
                mergedStrides[mergedStrides.count - 1] = stride
            } else {
                mergedShape.append(extent)
                mergedStrides.append(stride)
            }
        }
        return (mergedShape, mergedStrides)
    }
}
