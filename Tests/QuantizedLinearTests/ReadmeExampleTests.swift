import QuantizedLinear
import Testing

@Suite("The README's usage example runs as written (smaller sizes)")
struct ReadmeExampleTests {
    @Test("usage example")
    func usage() throws {
        let x = try Tensor.randomNormal([2, 7, 256], dtype: .bfloat16, seed: 1)
        let w = try Tensor.randomNormal([192, 256], standardDeviation: 0.02, seed: 2)
        let qw = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 128))
        let y = try linear(x, qw).dequantized()
        #expect(y.shape == [2, 7, 192] && y.dtype == .bfloat16)
        let y2 = try linear(x, qw, options: LinearOptions(floatInput: .dequantizeWeight))
        #expect(y2.denseTensor?.shape == [2, 7, 192])
        let h = try linear(x, qw, options: LinearOptions(outputLayout: BlockWiseINT8Layout.activation()))
        let g = try gelu(h, approximation: .tanh)
        #expect(g.quantizedTensor != nil)
        let q8 = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
        try FallbackPolicy.withPolicy(.fail) { _ = try linear(x, q8) }
        let square = try QuantizedTensor.fromFloat(try Tensor.randomNormal([256, 256], seed: 3),
                                                   layout: BlockWiseINT8Layout.weight(blockSize: 128))
        let (_, events) = try FallbackStatistics.recording {
            try FallbackPolicy.withPolicy(.dequantize) { try matmul(x, square) }
        }
        #expect(events.map(\.op) == [.matmul])
        #expect(LayoutRegistry.shared.coverageReport().contains("linear"))
    }
}
