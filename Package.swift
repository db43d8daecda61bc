// swift-tools-version: 6.0
import PackageDescription

// C kernels are compiled with optimisation even in debug builds: the test suite runs them on
// real shapes, and -O0 SIMD code is two orders of magnitude slower than what users get.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "QuantizedLinear",
    products: [
        .library(name: "QuantizedLinear", targets: ["QuantizedLinear"]),
        // The checks every layout x backend must pass, for users' own layouts' tests too.
        .library(name: "QLConformance", targets: ["QLConformance"]),
        .executable(name: "qlinear", targets: ["qlinear"]),
    ],
    targets: [
        // Core: tensors, and the contracts backends implement (DeviceBackend, QuantizedKernels).
        .target(name: "QLTensor", path: "Sources/Tensor"),
        .target(name: "QLQuantized", dependencies: ["QLTensor"], path: "Sources/QuantizedTensor"),
        .target(name: "QLLayouts", dependencies: ["QLQuantized"], path: "Sources/Layouts"),
        .target(name: "QLCheckpoints", dependencies: ["QLLayouts", "QLCPU"], path: "Sources/Checkpoints"),
        // Backends: one home each, found by QLTensor at first use of their device kind.
        .target(name: "CQLKernels", path: "Sources/Backends/CPUKernels", cSettings: kernelFlags),
        .target(name: "QLCPU", dependencies: ["QLTensor", "CQLKernels"], path: "Sources/Backends/CPU"),
        // CUDA C (.cu/.cuh) is a resource, compiled at run time by NVRTC.
        .target(name: "QLCUDA", dependencies: ["QLTensor"], path: "Sources/Backends/CUDA",
                resources: [.copy("KernelSources")]),
        // Model support: BERT WordPiece tokenizer.
        .target(name: "QLTokenizers", dependencies: ["QLTensor"], path: "Sources/Tokenizers"),
        // What users import.
        .target(name: "QuantizedLinear", dependencies: ["QLLayouts", "QLCheckpoints", "QLCPU", "QLCUDA",
                                                       "QLTokenizers"],
                path: "Sources/Ops"),
        .target(name: "QLConformance", dependencies: ["QuantizedLinear"], path: "Sources/Conformance"),
        .executableTarget(name: "qlinear", dependencies: ["QuantizedLinear"], path: "Sources/qlinear"),
        .testTarget(name: "QuantizedLinearTests", dependencies: ["QuantizedLinear", "QLConformance"],
                    path: "Tests/QuantizedLinearTests"),
    ]
)
