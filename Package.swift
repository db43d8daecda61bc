// swift-tools-version: 6.2
import PackageDescription

// C kernels are compiled with optimisation even in debug builds: at -O0 a debug program on real shapes
// runs them several times slower (NOTES.md, "Versioned dependency"). SwiftPM accepts unsafeFlags in a
// version-based dependency from tools-version 6.2 on (.ci/run builds such a client).
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "QuantizedLinear",
    products: [
        .library(name: "QuantizedLinear", targets: ["QuantizedLinear"]),
        .library(name: "QLNN", targets: ["QLNN"]),
        .library(name: "QLModels", targets: ["QLModels"]),
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
        .target(name: "QLTokenizers", dependencies: ["QLTensor"], path: "Sources/Tokenizers"),
        // Backends: one home each, found by QLTensor at first use of their device kind.
        .target(name: "CQLKernels", path: "Sources/Backends/CPUKernels", cSettings: kernelFlags),
        .target(name: "QLCPU", dependencies: ["QLTensor", "CQLKernels"], path: "Sources/Backends/CPU"),
        // CUDA C (.cu/.cuh) is a resource, compiled at run time by NVRTC.
        .target(name: "QLCUDA", dependencies: ["QLTensor"], path: "Sources/Backends/CUDA",
                resources: [.copy("KernelSources")]),
        // What users import.
        .target(name: "QuantizedLinear", dependencies: ["QLLayouts", "QLCheckpoints", "QLCPU", "QLCUDA",
                                                        "QLTokenizers"],
                path: "Sources/Ops"),
        .target(name: "QLConformance", dependencies: ["QuantizedLinear"], path: "Sources/Conformance"),
        // Model authors' layers, and the example models built with them.
        .target(name: "QLNN", dependencies: ["QuantizedLinear"], path: "Sources/NN"),
        .target(name: "QLModels", dependencies: ["QLNN"], path: "Sources/Models"),
        .executableTarget(name: "qlinear", dependencies: ["QuantizedLinear", "QLNN", "QLModels"],
                          path: "Sources/qlinear"),
        .testTarget(name: "QuantizedLinearTests", dependencies: ["QuantizedLinear", "QLConformance"],
                    path: "Tests/QuantizedLinearTests"),
        .testTarget(name: "ModelTests", dependencies: ["QLModels"], path: "Tests/ModelTests"),
        // The README's Swift code blocks, each verbatim as one program (ReadmeTests checks and runs them).
        .executableTarget(name: "ReadmeUsage", dependencies: ["QuantizedLinear"], path: "Examples/ReadmeUsage"),
        .executableTarget(name: "ReadmeLayout", dependencies: ["QuantizedLinear"], path: "Examples/ReadmeLayout"),
        .executableTarget(name: "ReadmeCheckpoints", dependencies: ["QuantizedLinear"],
                          path: "Examples/ReadmeCheckpoints"),
        .testTarget(name: "QLinearCLITests",
                    dependencies: ["qlinear", "QuantizedLinear", "ReadmeUsage", "ReadmeLayout", "ReadmeCheckpoints"],
                    path: "Tests/QLinearCLITests"),
    ]
)
