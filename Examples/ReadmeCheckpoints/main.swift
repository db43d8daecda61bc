import QuantizedLinear

// Plain safetensors: write streaming, read tensor by tensor (memory-mapped).
let w = try Tensor.randomNormal([1024, 1024], standardDeviation: 0.02, seed: 2)
let b = try Tensor.randomNormal([1024], standardDeviation: 0.01, seed: 3)
try SafetensorsWriter.write([("blocks.0.linear.weight", w), ("blocks.0.linear.bias", b)], to: "model.safetensors")
let file = try SafetensorsFile(path: "model.safetensors")
let w0 = try file.tensor("blocks.0.linear.weight")

// Convert, with the options of the command line (`loraPaths:` for LoRA-aware scales).
let report = try CheckpointConverter.convert(
    input: "model.safetensors", output: "model-int8.safetensors",
    options: ConversionOptions(exclude: [try LayerPattern("*embed*")]))

// Load: quantized layers become QuantizedTensors (codes and scales borrowed from the memory map).
let model = try ComfyCheckpoint(contentsOf: "model-int8.safetensors")
let x = try Tensor.randomNormal([2, 1024], dtype: .bfloat16, seed: 1)
let y = try linear(x, model["blocks.0.linear.weight"]!, bias: model["blocks.0.linear.bias"])

// Build and save: per-layer declarations by default, `.header` for `_quantization_metadata`.
var out = ComfyCheckpoint(metadata: ["modelspec.title": "mine"])
out["proj.weight"] = .quantized(try QuantizedTensor.fromFloat(w0, layout: BlockWiseINT8Layout.weight(blockSize: 128)))
out["proj.bias"] = .dense(b)
try out.write(to: "mine.safetensors")
print(report.quantized.map(\.layer), y.shape)
