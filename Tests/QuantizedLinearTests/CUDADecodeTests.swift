import Foundation
import QuantizedLinear
import Testing

private let gpu = Device.cuda(0)

/// The decode kernels (M <= 16, `gemv_stream`) against the output arithmetic of NOTES.md ("Numerics decisions"),
/// computed here from the CPU quantizer's codes and scales (bit-exact with the GPU's).
@Suite("CUDA decode linear", .enabled(if: CUDABackend.isAvailable, "no CUDA GPU here"))
struct CUDADecodeTests {
    /// `y[m,n] = sum_j Float(sum_{k in j} qx qw) * (sx[m,j] * sw[n/Bn,j])` in float32, j increasing, + bias.
    static func contractW8A8(_ x: QuantizedTensor, _ w: QuantizedTensor, bias: [Float]?, blockRows: Int,
                             blockColumns: Int) throws -> [Float] {
        let (m, k, n) = (x.shape[0], x.shape[1], w.shape[0])
        let (qx, sx) = (try x.data.elements(as: Int8.self), try x.scale.floats())
        let (qw, sw) = (try w.data.elements(as: Int8.self), try w.scale.floats())
        let blocks = (k + blockColumns - 1) / blockColumns
        var y = [Float](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var acc: Float = 0
                for j in 0..<blocks {
                    var sum: Int32 = 0
                    for index in (j * blockColumns)..<min(k, (j + 1) * blockColumns) {
                        sum += Int32(qx[row * k + index]) * Int32(qw[column * k + index])
                    }
                    acc += Float(sum) * (sx[row * blocks + j] * sw[(column / blockRows) * blocks + j])
                }
                y[row * n + column] = acc + (bias?[column] ?? 0)
            }
        }
        return y
    }

    static let cases: [(rows: Int, n: Int, k: Int, block: Int, rounding: Rounding)] = [
        (1, 37, 400, 128, .nearestEven), (2, 64, 1024, 128, .towardZero), (5, 50, 512, 32, .nearestEven),
        (16, 33, 768, 256, .towardZero), (3, 20, 336, 16, .nearestEven), (9, 24, 1024, 512, .nearestEven),
        // K = 3072 and 5120: 6 and 5 chunks per lane (one and two whole batches per row), 14B-like rows.
        (2, 300, 3072, 128, .nearestEven), (2, 130, 5120, 128, .towardZero), (4, 70, 5120, 64, .nearestEven),
    ]

    @Test(arguments: cases, [false, true])
    func w8a8MatchesTheContractExactly(shape: (rows: Int, n: Int, k: Int, block: Int, rounding: Rounding),
                                       withBias: Bool) throws {
        registerBuiltinLayouts()
        let x = try Tensor.randomNormal([shape.rows, shape.k], standardDeviation: 2, seed: 51)
        let wf = try Tensor.randomNormal([shape.n, shape.k], standardDeviation: 0.05, seed: 52)
        let bias = withBias ? try Tensor.randomNormal([shape.n], seed: 53) : nil
        let weightLayout = try BlockWiseINT8Layout.weight(blockSize: shape.block, rounding: shape.rounding)
        let activation = try BlockWiseINT8Layout.activation(blockSize: shape.block, rounding: shape.rounding)
        let w = try QuantizedTensor.fromFloat(wf, layout: weightLayout)
        let expected = try Self.contractW8A8(try QuantizedTensor.fromFloat(x, layout: activation), w,
                                             bias: try bias?.floats(), blockRows: shape.block,
                                             blockColumns: shape.block)
        try withoutFallback {
            let wGPU = try w.to(gpu)
            // Float input: quantized inside the decode kernel. Quantized input: the codes given.
            let fromFloat = try linear(x.to(gpu), wGPU, bias: try bias?.to(gpu)).dequantized()
            let qx = try QuantizedTensor.fromFloat(x.to(gpu), layout: activation)
            let fromCodes = try linear(qx, wGPU, bias: try bias?.to(gpu)).dequantized()
            #expect(fromFloat.shape == [shape.rows, shape.n] && fromFloat.dtype == .float32)
            #expect(try fromFloat.floats() == expected, "\(shape)")
            #expect(try fromCodes.floats() == expected, "\(shape)")
            // bf16 input and output: the same sums, rounded once to bf16.
            let y16 = try linear(x.converted(to: .bfloat16).to(gpu), wGPU).dequantized()
            let expected16 = try Self.contractW8A8(
                try QuantizedTensor.fromFloat(x.converted(to: .bfloat16), layout: activation), w, bias: nil,
                blockRows: shape.block, blockColumns: shape.block)
            #expect(y16.dtype == .bfloat16)
            #expect(try y16.floats() == Tensor(expected16, shape: [shape.rows, shape.n]).converted(to: .bfloat16).floats())
        }
    }

    /// Every decode row count, M = 1...16 (M >= 3 on the tensor cores, `gemv_w8a8_mma`; M = 1, 2 on
    /// `gemv_stream`), against the contract bit for bit: K = 400 (not a multiple of 64 or 128: a partial last
    /// block and 64-element segment), N = 37 (a partial 16-row tile), 64- and 128-wide blocks, both roundings,
    /// float and quantized inputs, with a bias.
    @Test(arguments: Array(1...16))
    func w8a8EveryRowCountMatchesTheContract(rows: Int) throws {
        registerBuiltinLayouts()
        let (n, k, block) = (37, 400, rows % 3 == 0 ? 64 : 128)
        let rounding: Rounding = rows % 2 == 0 ? .nearestEven : .towardZero
        let x = try Tensor.randomNormal([rows, k], standardDeviation: 2, seed: UInt64(70 + rows))
        let wf = try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: 69)
        let bias = try Tensor.randomNormal([n], seed: 68)
        let w = try QuantizedTensor.fromFloat(wf, layout: try BlockWiseINT8Layout.weight(blockSize: block,
                                                                                         rounding: rounding))
        let activation = try BlockWiseINT8Layout.activation(blockSize: block, rounding: rounding)
        let expected = try Self.contractW8A8(try QuantizedTensor.fromFloat(x, layout: activation), w,
                                             bias: try bias.floats(), blockRows: block, blockColumns: block)
        try withoutFallback {
            let wGPU = try w.to(gpu)
            let fromFloat = try linear(x.to(gpu), wGPU, bias: try bias.to(gpu)).dequantized()
            let qx = try QuantizedTensor.fromFloat(x.to(gpu), layout: activation)
            let fromCodes = try linear(qx, wGPU, bias: try bias.to(gpu)).dequantized()
            #expect(try fromFloat.floats() == expected, "M = \(rows)")
            #expect(try fromCodes.floats() == expected, "M = \(rows)")
        }
    }

    /// Non-finite inputs at M = 5 (the tensor-core kernel): each output row depends on its input row only, so
    /// the rows must equal their M = 1 products (`gemv_stream`) bit for bit, the row holding NaN all NaN and
    /// the row holding +inf (infinite scale) its M = 1 values, NaN and infinities included.
    @Test func w8a8NonFiniteRowsMatchRowByRow() throws {
        registerBuiltinLayouts()
        let (rows, k, n) = (5, 640, 40)
        var values = try Tensor.randomNormal([rows, k], standardDeviation: 2, seed: 66).floats()
        values[k + 17] = .nan
        values[3 * k + 100] = .infinity
        let w = try QuantizedTensor.fromFloat(try Tensor.randomNormal([n, k], seed: 67).to(gpu),
                                              layout: BlockWiseINT8Layout.weight())
        let (y, singles) = try withoutFallback {
            (try linear(Tensor(values, shape: [rows, k]).to(gpu), w).dequantized().floats(),
             try (0..<rows).map { row in
                 try linear(Tensor(Array(values[(row * k)..<((row + 1) * k)]), shape: [1, k]).to(gpu), w)
                     .dequantized().floats()
             })
        }
        #expect(y[n..<(2 * n)].allSatisfy { $0.isNaN })
        #expect(y[(3 * n)..<(4 * n)].contains { !$0.isFinite })
        for row in 0..<rows {
            let batched = Array(y[(row * n)..<((row + 1) * n)])
            #expect(zip(batched, singles[row]).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                    "row \(row)")
        }
    }

    /// FP8 x FP8 on a float input at every row count the fused decode kernel takes (`gemv_wo_mma` mode 4, M <= 4:
    /// the input quantized inside the kernel, the codes' products summed on the tensor cores; the harness checks
    /// it up to M = 16) against the CPU's FP8 linear: K = 400 (a
    /// partial last 64-element segment), N = 37 (a partial tile, which cuBLASLt's FP8 matmul would refuse),
    /// a bias; float32 within 1e-5 (the same codes and scales, only the sum's rounding differs), bf16 within
    /// 1e-2 (one rounding of nearly equal values).
    @Test(arguments: Array(1...4))
    func fp8W8A8EveryRowCountMatchesTheCPU(rows: Int) throws {
        registerBuiltinLayouts()
        let (n, k) = (37, 400)
        let x = try Tensor.randomNormal([rows, k], standardDeviation: 2, seed: UInt64(90 + rows))
        let w = try QuantizedTensor.fromFloat(try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: 89),
                                              layout: TensorCoreFP8Layout.dynamic)
        let bias = try Tensor.randomNormal([n], seed: 88)
        for dtype in [DType.float32, .bfloat16] {
            let xd = try x.converted(to: dtype)
            let expected = try withoutFallback { try linear(xd, w, bias: bias).dequantized().floats() }
            let y = try withoutFallback { try linear(xd.to(gpu), w.to(gpu), bias: bias.to(gpu)).dequantized() }
            #expect(y.dtype == dtype && y.shape == [rows, n])
            #expect(relativeError(try y.floats(), expected) < (dtype == .float32 ? 1e-5 : 1e-2), "M = \(rows) \(dtype)")
        }
    }

    /// FP8 W8A8 on a float input holding NaN or infinity (per-tensor scale, so every output): non-finite on the
    /// GPU (the fused decode kernel at M = 2, the quantizer + cuBLASLt at M = 64), not finite codes on scale 1.
    /// (The CPU's FP8 quantizer refuses such an input with an error instead.)
    @Test(arguments: [Float.nan, .infinity])
    func fp8NonFiniteInputGivesNonFiniteOutput(bad: Float) throws {
        registerBuiltinLayouts()
        let w = try QuantizedTensor.fromFloat(try Tensor.randomNormal([48, 256], standardDeviation: 0.05, seed: 87),
                                              layout: TensorCoreFP8Layout.dynamic).to(gpu)
        for rows in [2, 64] {
            var values = try Tensor.randomNormal([rows, 256], seed: 86).floats()
            values[256 + 5] = bad
            let y = try withoutFallback { try linear(Tensor(values, shape: [rows, 256]).to(gpu), w).dequantized() }
            #expect(try y.floats().allSatisfy { !$0.isFinite }, "M = \(rows), \(bad)")
        }
    }

    @Test func nanInputRowGivesNaNOutputRow() throws {
        registerBuiltinLayouts()
        var values = try Tensor.randomNormal([3, 256], seed: 54).floats()
        values[256 + 17] = .nan
        let w = try QuantizedTensor.fromFloat(try Tensor.randomNormal([40, 256], seed: 55).to(gpu),
                                              layout: BlockWiseINT8Layout.weight())
        let y = try withoutFallback { try linear(Tensor(values, shape: [3, 256]).to(gpu), w).dequantized().floats() }
        #expect(y[40..<80].allSatisfy { $0.isNaN })
        #expect(y[0..<40].allSatisfy { $0.isFinite } && y[80...].allSatisfy { $0.isFinite })
    }

    @Test(arguments: [1, 2, 7, 16], [false, true])
    func weightOnlyMatchesTheCPU(rows: Int, fp8: Bool) throws {
        registerBuiltinLayouts()
        let x = try Tensor.randomNormal([rows, 640], standardDeviation: 3, seed: 56)
        let wf = try Tensor.randomNormal([45, 640], standardDeviation: 0.05, seed: 57)
        let bias = try Tensor.randomNormal([45], seed: 58)
        let layout: any QuantizedLayout = fp8 ? TensorCoreFP8Layout.dynamic : try BlockWiseINT8Layout.weight(blockSize: 64)
        let w = try QuantizedTensor.fromFloat(wf, layout: layout)
        let options = LinearOptions(floatInput: .dequantizeWeight)
        let expected = try DenseOps.linear(x, try w.dequantize(to: .float32), bias: bias).floats()
        let y = try withoutFallback {
            try linear(x.to(gpu), w.to(gpu), bias: bias.to(gpu), options: options).dequantized().floats()
        }
        #expect(relativeError(y, expected) < 1e-6)
    }

    /// The tensor-core weight-only kernel (`gemv_wo_mma`) on inputs it must not get wrong: a row with a
    /// value of 3e37 (its x q would overflow float32 without the row's power-of-two scaling), a row
    /// holding +inf and one holding NaN (those outputs are recomputed in the contract's arithmetic: NaN
    /// where inf meets a zero weight, the infinity's sign elsewhere), a row of bf16-sized values 2^-100
    /// small, and K = 656 (a partial last 64-element segment), against the CPU's dequantize-then-float32.
    @Test(arguments: [false, true])
    func weightOnlyOnExtremeInputsMatchesTheCPU(fp8: Bool) throws {
        registerBuiltinLayouts()
        let (rows, k, n) = (5, 656, 40)
        var values = try Tensor.randomNormal([rows, k], standardDeviation: 2, seed: 59).floats()
        values[3] = 3e37
        values[k + 100] = .infinity
        values[2 * k + 7] = .nan
        for index in (4 * k)..<(5 * k) { values[index] *= 0x1p-100 }
        var weights = try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: 60).floats()
        weights[5 * k + 100] = 0  // inf * 0: NaN in output (1, 5)
        let layout: any QuantizedLayout = fp8 ? TensorCoreFP8Layout.dynamic : try BlockWiseINT8Layout.weight()
        let w = try QuantizedTensor.fromFloat(Tensor(weights, shape: [n, k]), layout: layout)
        let x = try Tensor(values, shape: [rows, k])
        let expected = try DenseOps.linear(x, try w.dequantize(to: .float32), bias: nil).floats()
        let y = try withoutFallback {
            try linear(x.to(gpu), w.to(gpu), options: LinearOptions(floatInput: .dequantizeWeight)).dequantized()
                .floats()
        }
        #expect(zip(y, expected).allSatisfy { $0.isNaN == $1.isNaN && ($0.isInfinite ? $0 == $1 : !$1.isInfinite) })
        #expect(y[(n + 5)].isNaN && y[(2 * n)..<(3 * n)].allSatisfy(\.isNaN))
        for row in [0, 3, 4] {
            let range = (row * n)..<((row + 1) * n)
            #expect(relativeError(Array(y[range]), Array(expected[range])) < 1e-6, "row \(row)")
        }
    }
    /// Decode paths that overlap the previous kernel on sm_90 (programmatic dependent launch, decode.cu's
    /// `PDL`): W8A8 at M = 2 (`gemv_stream`) and 5 (`gemv_w8a8_mma`), INT8 and FP8 weight-only and FP8 W8A8
    /// (`gemv_wo_mma` modes 2, 3 and 4).
    static let chains: [(rows: Int, fp8: Bool, weightOnly: Bool)] = [
        (2, false, false), (5, false, false), (2, false, true), (2, true, true), (2, true, false),
    ]

    /// A decode linear queued right after the kernel that writes its input or its weight. Behind three
    /// 8192^3 bf16 matmuls (several milliseconds, so the host queues everything after them while they run):
    /// `y1 = x W1` (INT8 W8A8, a 3072 x 32768 weight, about 30 us), then `y2 = y1 W2` (the previous kernel
    /// writes y2's input), and `y3 = y1 W3` right after W3 is quantized on the GPU (the previous kernel writes
    /// the weight); each bit-identical to the same product computed once everything has finished (the input
    /// read back to the host first). (On the H200 this also passed with decode.cu's `griddepcontrol.wait`
    /// removed, so it is not known to catch a kernel that reads before the wait: NOTES.md, issue 10 session 9.)
    @Test(arguments: chains)
    func decodeRightAfterItsProducerSeesItsOperands(chain: (rows: Int, fp8: Bool, weightOnly: Bool)) throws {
        registerBuiltinLayouts()
        let (k, hidden, n) = (32768, 3072, 72)
        let seed = UInt64(100 + 10 * chain.rows + (chain.fp8 ? 2 : 0) + (chain.weightOnly ? 1 : 0))
        let layout: any QuantizedLayout = chain.fp8 ? TensorCoreFP8Layout.dynamic : try BlockWiseINT8Layout.weight()
        let options = LinearOptions(floatInput: chain.weightOnly ? .dequantizeWeight : .quantizeInput)
        let x = try Tensor.randomNormal([chain.rows, k], seed: seed).converted(to: .bfloat16).to(gpu)
        let w1 = try QuantizedTensor.fromFloat(
            try CUDABackend.randomNormal([hidden, k], standardDeviation: 0.01, dtype: .bfloat16, seed: seed + 1,
                                         on: gpu),
            layout: try BlockWiseINT8Layout.weight())
        let w2 = try QuantizedTensor.fromFloat(try Tensor.randomNormal([n, hidden], standardDeviation: 0.05,
                                                                       seed: seed + 2), layout: layout).to(gpu)
        let w3Float = try Tensor.randomNormal([n, hidden], standardDeviation: 0.05, seed: seed + 3).to(gpu)
        let busy = try CUDABackend.randomNormal([8192, 8192], dtype: .bfloat16, seed: seed + 4, on: gpu)
        let warmUp = try Tensor.randomNormal([chain.rows, k], seed: seed + 5).converted(to: .bfloat16).to(gpu)
        func chained(_ x: Tensor) throws -> (y1: Tensor, w3: QuantizedTensor, y2: [UInt32], y3: [UInt32]) {
            for _ in 0..<3 { _ = try linear(busy, busy) }
            let y1 = try linear(x, w1).dequantized()
            let y2 = try linear(y1, w2, options: options).dequantized()
            let w3 = try QuantizedTensor.fromFloat(w3Float, layout: layout)
            let y3 = try linear(y1, w3, options: options).dequantized()
            return (y1, w3, try y2.floats().map(\.bitPattern), try y3.floats().map(\.bitPattern))
        }
        try withoutFallback {
            // The first run (another input) compiles and loads the kernels and fills the allocator (a module
            // load or a new allocation may wait for the device); the second queues everything while the matmuls
            // run, and its y1 likely reuses the first's block, so a read before the wait would see other values.
            _ = try chained(warmUp)
            let run = try chained(x)
            let settled = try run.y1.to(.cpu).to(gpu)
            #expect(run.y2 == (try linear(settled, w2, options: options).dequantized().floats()).map(\.bitPattern),
                    "\(chain)")
            #expect(run.y3 == (try linear(settled, run.w3, options: options).dequantized().floats()).map(\.bitPattern),
                    "\(chain)")
        }
    }
}
