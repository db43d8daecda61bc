/// Copies a strided view into a contiguous buffer, one row (innermost dimension) at a time.
enum StridedCopy {
    static func gather(from source: UnsafeRawPointer, shape: [Int], strides: [Int], elementSize: Int,
                       into destination: UnsafeMutableRawPointer) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        guard let innerLength = shape.last, let innerStride = strides.last else {
            destination.copyMemory(from: source, byteCount: elementSize)
            return
        }
        let outerShape = Array(shape.dropLast())
        let outerStrides = Array(strides.dropLast())
        var index = [Int](repeating: 0, count: outerShape.count)
        var written = 0
        let rows = count / max(innerLength, 1)
        for _ in 0..<rows {
            var base = 0
            for axis in index.indices { base += index[axis] * outerStrides[axis] }
            let rowStart = source + base * elementSize
            let out = destination + written * elementSize
            if innerStride == 1 {
                out.copyMemory(from: rowStart, byteCount: innerLength * elementSize)
            } else {
                for i in 0..<innerLength {
                    (out + i * elementSize).copyMemory(from: rowStart + i * innerStride * elementSize,
                                                       byteCount: elementSize)
                }
            }
            written += innerLength
            var axis = index.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outerShape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}
