import QuantizedLinear

// One INT8 W8A8 linear through the versioned dependency, checked against the float32 product.
let x = try Tensor.randomNormal([4, 256], seed: 1)
let w = try Tensor.randomNormal([128, 256], standardDeviation: 0.05, seed: 2)
let qw = try QuantizedTensor.fromFloat(w, layout: BlockWiseINT8Layout.weight(blockSize: 128))
let y = try linear(x, qw).dequantized().floats()
let reference = try linear(x, w).dequantized().floats()
let error = zip(y, reference).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
    / reference.map { $0 * $0 }.reduce(0, +).squareRoot()
print("client: y = x W^T through QuantizedLinear \(y.count) values, relative error \(error)")
guard error < 0.05 else { fatalError("relative error \(error) is too large for INT8 W8A8") }
