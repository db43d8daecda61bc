import Foundation
import QuantizedLinear
import Testing

private let gpu = Device.cuda(0)
private let gpuReason = CUDABackend.unavailableReason.map { "no CUDA GPU here: \($0)" } ?? ""

/// Runs `body` with fallbacks forbidden, so a passing test proves the native CUDA handler ran.
private func strict<R>(_ body: () throws -> R) throws -> R {
    registerBuiltinLayouts()
    return try withoutFallback(body)
}

/// Odd shapes (partial edge blocks everywhere) and aligned ones.
private let shapes: [[Int]] = [[3, 77, 200], [130, 256], [1, 1000], [96, 129]]

@Suite("CUDA availability (runs everywhere)")
struct CUDAAvailabilityTests {
    @Test func missingDeviceThrowsDeviceUnavailable() throws {
        registerBuiltinLayouts()
        let x = try Tensor([1, 2, 3], shape: [3])
        // Without CUDA this is the loader's reason; with CUDA there is no 100th device.
        #expect { try x.to(.cuda(99)) } throws: { ($0 as? TensorError)?.code == .deviceUnavailable }
    }

    @Test(.enabled(if: !CUDABackend.isAvailable, "this machine has CUDA"))
    func withoutCUDAMovingToGPUSaysWhy() throws {
        registerBuiltinLayouts()
        let x = try Tensor([1, 2, 3], shape: [3])
        do {
            _ = try x.to(.cuda(0))
            Issue.record("moving to cuda:0 succeeded on a machine without CUDA")
        } catch let error as TensorError {
            #expect(error.code == .deviceUnavailable)
            #expect(error.message.contains("CUDA") || error.message.contains("cuda"))
        }
    }

    /// The CUDA C files are found without `Bundle.module` (which would stop the process when the
    /// resource bundle is missing) and `QLINEAR_CUDA_KERNELS` takes precedence over the built-in copy.
    @Test func kernelSourcesAreFoundAndCanBeOverridden() throws {
        let builtIn = try #require(KernelProgram.folder(environment: [:]), "no KernelSources folder found")
        let program = try KernelProgram.named("linear")
        #expect(program.text.contains("__global__"))
        #expect(program.headers.contains { $0.name == "prelude.cuh" })
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("qlinear-kernels-\(getpid())")
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: builtIn, to: copy)
        defer { try? FileManager.default.removeItem(at: copy) }
        #expect(KernelProgram.folder(environment: [KernelProgram.overrideVariable: copy.path])?.path == copy.path)
        let missing = copy.appendingPathComponent("nothing-here").path
        #expect(KernelProgram.folder(environment: [KernelProgram.overrideVariable: missing])?.path == builtIn.path)
    }

    @Test(.enabled(if: CUDAKernelCheck.isNVRTCAvailable, "NVRTC is not installed (set QLINEAR_NVRTC to check kernels)"))
    func everyKernelSourceCompiles() throws {
        #expect(try CUDAKernelCheck.compileAll(architecture: "sm_90") > 40)
    }
}

@Suite("CUDA dense ops", .enabled(if: CUDABackend.isAvailable, "\(gpuReason)"))
struct CUDADenseTests {
    @Test(arguments: [DType.float32, .float16, .bfloat16, .float8E4M3FN])
    func roundTripConversionAndStridedCopy(dtype: DType) throws {
        let x = try Tensor.randomNormal([5, 33, 7], dtype: dtype, seed: 11)
        let onGPU = try x.to(gpu)
        #expect(try onGPU.floats() == x.floats())
        let t = try onGPU.transposed(0, 2)
        #expect(try t.contiguous().floats() == x.transposed(0, 2).contiguous().floats())
        for target in [DType.float32, .float16, .bfloat16, .float8E4M3FN] {
            #expect(try onGPU.converted(to: target).floats() == x.converted(to: target).floats())
        }
    }

    @Test(arguments: GeluApproximation.allCases)
    func geluAndBroadcastAdd(approximation: GeluApproximation) throws {
        let x = try Tensor.randomNormal([17, 40], seed: 12)
        let b = try Tensor.randomNormal([40], seed: 13)
        let y = try gelu(x.to(gpu), approximation: approximation).dequantized()
        #expect(relativeError(try y.floats(), try DenseOps.gelu(x, approximation: approximation).floats()) < 1e-6)
        let sum = try add(x.to(gpu), b.to(gpu)).dequantized()
        #expect(try sum.floats() == DenseOps.add(x, b).floats())
    }

    @Test(arguments: [(DType.float32, 1e-5), (.bfloat16, 1e-2), (.float16, 2e-3)])
    func linearAndMatmul(dtype: DType, tolerance: Double) throws {
        let x = try Tensor.randomNormal([2, 37, 96], dtype: dtype, seed: 14)
        let w = try Tensor.randomNormal([48, 96], dtype: dtype, seed: 15)
        let b = try Tensor.randomNormal([48], dtype: dtype, seed: 16)
        let expected = try DenseOps.linear(x, w, bias: b).floats()
        let y = try linear(x.to(gpu), w.to(gpu), bias: b.to(gpu)).dequantized()
        #expect(y.shape == [2, 37, 48] && y.dtype == dtype)
        #expect(relativeError(try y.floats(), expected) < tolerance)
        let a = try Tensor.randomNormal([3, 9, 20], dtype: dtype, seed: 17)
        let c = try Tensor.randomNormal([3, 20, 11], dtype: dtype, seed: 18)
        let product = try matmul(a.to(gpu), c.to(gpu)).dequantized()
        #expect(relativeError(try product.floats(), try DenseOps.matmul(a, c).floats()) < tolerance)
    }
}

@Suite("CUDA quantized ops (CPU reference as oracle)", .enabled(if: CUDABackend.isAvailable, "\(gpuReason)"))
struct CUDAQuantizedTests {
    static let blockCases: [(Int, Rounding)] = [(32, .nearestEven), (64, .towardZero), (128, .nearestEven),
                                                (256, .towardZero), (100, .nearestEven)]

    @Test(arguments: blockCases, [true, false])
    func int8QuantizeAndDequantizeAreBitExact(block: (Int, Rounding), weight: Bool) throws {
        let (size, rounding) = block
        let layout = weight ? try BlockWiseINT8Layout.weight(blockSize: size, rounding: rounding)
            : try BlockWiseINT8Layout.activation(blockSize: size, rounding: rounding)
        try strict {
            for (index, shape) in shapes.enumerated() {
                for dtype in [DType.float32, .bfloat16] {
                    let x = try Tensor.randomNormal(shape, standardDeviation: 3, dtype: dtype, seed: UInt64(100 + index))
                    let cpu = try QuantizedTensor.fromFloat(x, layout: layout)
                    let cuda = try QuantizedTensor.fromFloat(x.to(gpu), layout: layout)
                    #expect(cuda.device == gpu)
                    #expect(try cuda.data.elements(as: Int8.self) == cpu.data.elements(as: Int8.self), "\(shape) \(dtype)")
                    #expect(try cuda.scale.floats() == cpu.scale.floats(), "\(shape) \(dtype)")
                    #expect(cuda.scale.shape == cpu.scale.shape)
                    for target in [dtype, .float32] {
                        let dense = try cuda.dequantize(to: target)
                        #expect(dense.device == gpu)
                        #expect(try dense.floats() == cpu.dequantize(to: target).floats())
                    }
                }
            }
        }
    }

    @Test func allZeroBlocksAndNonFiniteInputs() throws {
        try strict {
            var values = [Float](repeating: 0, count: 4 * 256)
            for i in 128..<256 { values[i] = Float(i) - 190 }
            let x = try Tensor(values, shape: [4, 256]).to(gpu)
            let q = try QuantizedTensor.fromFloat(x, layout: BlockWiseINT8Layout.activation(blockSize: 128))
            #expect(try q.scale.floats()[0] == 0)
            let dense = try q.dequantize().floats()
            #expect(dense[0..<128].allSatisfy { $0 == 0 } && dense[256...].allSatisfy { $0 == 0 })
            let f = try QuantizedTensor.fromFloat(try Tensor(zeros: [64]).to(gpu), layout: TensorCoreFP8Layout.dynamic)
            #expect(try f.scale.floats() == [1])
            values[300] = .nan
            let bad = try Tensor(values, shape: [4, 256]).to(gpu)
            #expect { try QuantizedTensor.fromFloat(bad, layout: BlockWiseINT8Layout.weight()) } throws: {
                ($0 as? TensorError)?.code == .nonFiniteValue
            }
            #expect { try QuantizedTensor.fromFloat(bad, layout: TensorCoreFP8Layout.dynamic) } throws: {
                ($0 as? TensorError)?.code == .nonFiniteValue
            }
        }
    }

    @Test(arguments: [DType.float32, .bfloat16, .float16])
    func fp8QuantizeAndDequantizeAreBitExact(dtype: DType) throws {
        try strict {
            for (index, shape) in (shapes + [[7]]).enumerated() {
                let x = try Tensor.randomNormal(shape, standardDeviation: 5, dtype: dtype, seed: UInt64(200 + index))
                for layout in [TensorCoreFP8Layout.dynamic, try TensorCoreFP8Layout(fixedScale: 0.01)] {
                    let cpu = try QuantizedTensor.fromFloat(x, layout: layout)
                    let cuda = try QuantizedTensor.fromFloat(x.to(gpu), layout: layout)
                    #expect(try cuda.data.elements(as: Float8E4M3FN.self) == cpu.data.elements(as: Float8E4M3FN.self))
                    #expect(try cuda.scale.floats() == cpu.scale.floats())
                    #expect(try cuda.dequantize().floats() == cpu.dequantize().floats())
                }
            }
        }
    }

    /// W8A8 on the GPU against the CPU handler (the same arithmetic), weight-only against the CPU's.
    /// Shapes no tensor-core kernel takes (K % 16 != 0, block sizes the kernels lack) run on the SIMT
    /// kernel, and say so: one recorded fallback whose reason names it, and nothing else.
    @Test(arguments: blockCases, [DType.float32, .bfloat16])
    func int8Linear(block: (Int, Rounding), dtype: DType) throws {
        let (size, rounding) = block
        registerBuiltinLayouts()
        for (m, n, k) in [(37, 96, 200), (2, 64, 256), (1, 33, 77), (70, 130, 384)] {
            let x = try Tensor.randomNormal([m, k], dtype: dtype, seed: UInt64(m * 7 + k))
            let w = try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: UInt64(n * 3 + k))
            let b = try Tensor.randomNormal([n], dtype: dtype, seed: UInt64(n))
            let qw = try QuantizedTensor.fromFloat(w,
                layout: BlockWiseINT8Layout.weight(blockSize: size, rounding: rounding))
            let qwGPU = try qw.to(gpu)
            for mode in LinearOptions.FloatInputMode.allCases {
                let options = LinearOptions(floatInput: mode)
                let expected = try withoutFallback { try linear(x, qw, bias: b, options: options).dequantized() }
                let (y, events) = try withFallback {
                    try linear(x.to(gpu), qwGPU, bias: b.to(gpu), options: options).dequantized()
                }
                #expect(y.device == gpu && y.dtype == dtype && y.shape == [m, n])
                let tolerance = mode == .quantizeInput && dtype == .float32 ? 1e-6 : 1e-2
                #expect(relativeError(try y.floats(), try expected.floats()) < tolerance, "\(mode) \(m)x\(n)x\(k)")
                #expect(events.allSatisfy { $0.op == .linear && $0.reason.contains("SIMT") }, "\(events)")
                if mode == .dequantizeWeight || k % 16 != 0 {
                    let wanted = mode == .quantizeInput ? 1 : 0
                    #expect(events.count == wanted, "\(mode) \(m)x\(n)x\(k): \(events)")
                } else {
                    // The tensor cores take it unless the block size rules them all out.
                    #expect(events.count <= 1, "\(mode) \(m)x\(n)x\(k): \(events)")
                }
            }
        }
    }

    @Test(arguments: [DType.float32, .bfloat16, .float16])
    func fp8Linear(dtype: DType) throws {
        registerBuiltinLayouts()
        // 64x128x256 and 2x256x512 take the FP8 tensor cores; 5x40x72 (N, K not multiples of 16) the
        // float32 path, as one recorded fallback.
        for (batch, m, n, k) in [([2, 3], 64, 128, 256), ([], 5, 40, 72), ([], 2, 256, 512)] {
            let x = try Tensor.randomNormal(batch + [m, k], dtype: dtype, seed: UInt64(m + k))
            let w = try Tensor.randomNormal([n, k], standardDeviation: 0.05, seed: UInt64(n + 1))
            let b = try Tensor.randomNormal([n], dtype: dtype, seed: UInt64(n + 2))
            let qw = try QuantizedTensor.fromFloat(w, layout: TensorCoreFP8Layout.dynamic)
            for mode in LinearOptions.FloatInputMode.allCases {
                let options = LinearOptions(floatInput: mode)
                let expected = try withoutFallback { try linear(x, qw, bias: b, options: options).dequantized() }
                let (y, events) = try withFallback {
                    try linear(x.to(gpu), qw.to(gpu), bias: b.to(gpu), options: options).dequantized()
                }
                #expect(y.shape == batch + [m, n] && y.dtype == dtype)
                #expect(relativeError(try y.floats(), try expected.floats()) < 1e-2, "\(mode) \(m)x\(n)x\(k)")
                let fallsBack = mode == .quantizeInput && k % 16 != 0
                #expect(events.count == (fallsBack ? 1 : 0), "\(mode) \(m)x\(n)x\(k): \(events)")
            }
        }
    }

    @Test(arguments: GeluApproximation.allCases, [32, 128, 96])
    func fusedGeluOnQuantizedActivations(approximation: GeluApproximation, size: Int) throws {
        try strict {
            let x = try Tensor.randomNormal([33, 300], standardDeviation: 2, dtype: .bfloat16, seed: UInt64(size))
            for layout in [try BlockWiseINT8Layout.activation(blockSize: size) as any QuantizedLayout,
                           try BlockWiseINT8Layout.weight(blockSize: size), TensorCoreFP8Layout.dynamic] {
                let q = try QuantizedTensor.fromFloat(x, layout: layout)
                let expected = try gelu(q, approximation: approximation).requireQuantized()
                let y = try gelu(q.to(gpu), approximation: approximation).requireQuantized()
                #expect(y.device == gpu && y.layout.isEqual(to: expected.layout))
                #expect(relativeError(try y.dequantize().floats(), try expected.dequantize().floats()) < 1e-2)
            }
        }
    }

    @Test func transposeIsExactAndWeightUpdateRequantizesAsAWeight() throws {
        try strict {
            let w = try Tensor.randomNormal([96, 200], seed: 31)
            let delta = try Tensor.randomNormal([96, 200], standardDeviation: 0.1, seed: 32)
            for layout in [try BlockWiseINT8Layout.weight(blockSize: 64) as any QuantizedLayout,
                           TensorCoreFP8Layout.dynamic] {
                let q = try QuantizedTensor.fromFloat(w, layout: layout)
                let t = try transpose(q.to(gpu)).requireQuantized()
                #expect(t.shape == [200, 96])
                let cpuTransposed = try transpose(q).requireQuantized()
                #expect(t.layout.isEqual(to: cpuTransposed.layout))
                #expect(try t.data.to(.cpu).floats() == cpuTransposed.data.floats(), "\(layout) codes")
                #expect(try t.scale.to(.cpu).floats() == cpuTransposed.scale.floats(), "\(layout) scales")
                let (mine, theirs) = (try t.dequantize().floats(), try cpuTransposed.dequantize().floats())
                let mismatch = zip(mine, theirs).enumerated().first { $0.element.0 != $0.element.1 }
                #expect(mismatch == nil, "\(layout): first mismatch \(String(describing: mismatch))")
                let expected = try applyWeightUpdate(q, delta: delta, strength: 0.5).requireQuantized()
                let updated = try applyWeightUpdate(q.to(gpu), delta: delta.to(gpu), strength: 0.5).requireQuantized()
                #expect(updated.layout.isEqual(to: q.layout) && updated.device == gpu)
                #expect(relativeError(try updated.dequantize().floats(), try expected.dequantize().floats()) < 1e-3)
            }
        }
    }

    /// A decline forced on each CUDA linear kernel: K = 72 is not a multiple of 16, so neither
    /// cuBLASLt's FP8 matmul nor any tensor-core INT8 GEMM takes it. Each is a recorded fallback with
    /// the kernel's reason, and the `fail` policy stops it.
    @Test func kernelFallbacksAreRecordedAndStoppedByFail() throws {
        registerBuiltinLayouts()
        let x = try Tensor.randomNormal([5, 72], dtype: .bfloat16, seed: 51).to(gpu)
        let w = try Tensor.randomNormal([48, 72], standardDeviation: 0.05, seed: 52)
        let cases: [(any QuantizedLayout, String)] = [(TensorCoreFP8Layout.dynamic, "K % 16 == 0, K = 72"),
                                                      (try BlockWiseINT8Layout.weight(blockSize: 32), "SIMT")]
        for (layout, reason) in cases {
            let qw = try QuantizedTensor.fromFloat(w, layout: layout).to(gpu)
            let error = #expect(throws: TensorError.self) { try withoutFallback { try linear(x, qw) } }
            #expect(error?.code == .fallbackForbidden, "\(layout)")
            #expect(error?.message.contains(reason) == true, "\(layout): \(error?.message ?? "")")
            let before = FallbackStatistics.shared.count(op: .linear, layout: layout.name)
            let (y, events) = try withFallback { try linear(x, qw).dequantized() }
            #expect(y.device == gpu && y.shape == [5, 48])
            #expect(events.count == 1 && events.first?.reason.contains(reason) == true, "\(layout): \(events)")
            #expect(FallbackStatistics.shared.count(op: .linear, layout: layout.name) >= before + 1)
        }
    }

    @Test func quantizedChainStaysOnTheGPU() throws {
        try strict {
            let activation = try BlockWiseINT8Layout.activation(blockSize: 128)
            let x = try Tensor.randomNormal([16, 256], dtype: .bfloat16, seed: 41).to(gpu)
            let w1 = try QuantizedTensor.fromFloat(try Tensor.randomNormal([384, 256], standardDeviation: 0.05, seed: 42),
                                                   layout: BlockWiseINT8Layout.weight()).to(gpu)
            let w2 = try QuantizedTensor.fromFloat(try Tensor.randomNormal([128, 384], standardDeviation: 0.05, seed: 43),
                                                   layout: BlockWiseINT8Layout.weight()).to(gpu)
            let h = try linear(x, w1, options: LinearOptions(outputLayout: activation)).requireQuantized()
            let g = try gelu(h).requireQuantized()
            let y = try linear(g, w2).dequantized()
            #expect(y.device == gpu && y.shape == [16, 128] && y.dtype == .bfloat16)
            let reference = try linear(try gelu(try linear(x.to(.cpu), try w1.dequantize().to(.cpu)).dequantized())
                .dequantized(), try w2.dequantize().to(.cpu)).dequantized()
            #expect(relativeError(try y.floats(), try reference.floats()) < 3e-2)
        }
    }
}
