// swift-tools-version: 6.0
import PackageDescription

// C kernels are compiled with optimisation even in debug builds: the test suite runs them on
// real shapes, and -O0 SIMD code is two orders of magnitude slower than what users get.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "QuantizedLinear",
    products: [
        .library(name: "Ops", targets: ["Ops"]),
        .library(name: "QLNN", targets: ["QLNN"]),
        .library(name: "QLModels", targets: ["QLModels"]),
        .executable(name: "qlinear", targets: ["qlinear"]),
    ],
    targets: [
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: kernelFlags),
        .target(name: "Tensors", dependencies: ["CKernels"], path: "Sources/Tensor"),
        .target(name: "QuantizedTensors", dependencies: ["Tensors"], path: "Sources/QuantizedTensor"),
        .target(name: "CUDA", dependencies: ["Tensors"], path: "Sources/CUDA"),
        .target(name: "Layouts", dependencies: ["QuantizedTensors", "CKernels", "CUDA"], path: "Sources/Layouts"),
        .target(name: "Checkpoints", dependencies: ["Layouts"], path: "Sources/Checkpoints"),
        .target(name: "QLTokenizers", dependencies: ["Tensors"], path: "Sources/Tokenizers"),
        .target(name: "Ops", dependencies: ["Layouts", "Checkpoints", "QLTokenizers"], path: "Sources/Ops"),
        .target(name: "QLNN", dependencies: ["Ops"], path: "Sources/NN"),
        .target(name: "QLModels", dependencies: ["QLNN"], path: "Sources/Models"),
        .executableTarget(name: "qlinear", dependencies: ["Ops", "QLNN", "QLModels"], path: "Sources/qlinear"),
        .testTarget(name: "OpsTests", dependencies: ["Ops"], path: "Tests/OpsTests"),
        .testTarget(name: "ModelTests", dependencies: ["QLModels"], path: "Tests/ModelTests"),
    ]
)
