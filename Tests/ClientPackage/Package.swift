// swift-tools-version: 6.0
import PackageDescription

// A user's package depending on a tagged version of QuantizedLinear, the way the README says to.
// `.ci/run` builds and runs it against a bare, tagged clone of this repository
// (QUANTIZEDLINEAR_URL=file:///tmp/.../QuantizedLinear.git); without the variable it takes this
// repository itself, which then needs a tag >= 0.1.0.
let url = Context.environment["QUANTIZEDLINEAR_URL"] ?? "file://\(Context.packageDirectory)/../.."

let package = Package(
    name: "Client",
    dependencies: [
        .package(url: url, from: "0.1.0"),
    ],
    targets: [
        .executableTarget(name: "Client",
                          dependencies: [.product(name: "QuantizedLinear", package: "QuantizedLinear")]),
    ]
)
