import Foundation
import QuantizedLinear

/// `qlinear inspect`: what a checkpoint holds.
enum Inspect {
    static let command = Subcommand(
        name: "inspect",
        summary: "list a .safetensors checkpoint's tensors, dtypes, sizes, quantized layers and metadata",
        arguments: ["FILE"],
        discussion: """
            Prints the header metadata, then one line per tensor (name, dtype, shape, size, and for
            quantized layers their ComfyUI format, whether declared per layer or in the header), then
            totals by dtype and by format. Reads only the header and the small declaration tensors.
            FILE must be a regular file (a FIFO or device is refused without waiting on it).
            """,
        options: [],
        run: run)

    static func run(_ arguments: ParsedArguments) throws {
        let reader = try ComfyCheckpointReader(path: arguments.positional[0])
        let file = reader.file
        print("\(file.path): \(ProgressBar.bytes(file.fileByteCount)), \(file.entries.count) tensors, "
            + "header \(file.headerByteCount) bytes")
        if !file.metadata.isEmpty {
            print("\nmetadata:")
            for key in file.metadata.keys.sorted() {
                let value = file.metadata[key]!
                let shown = value.count > 200 ? String(value.prefix(200)) + "... (\(value.count) chars)" : value
                print("  \(key): " + shown)
            }
        }
        let width = min(70, max(4, file.entries.map(\.name.count).max() ?? 4)) + 2
        print("\n" + Convert.pad("name", width) + Convert.pad("dtype", 9) + Convert.pad("shape", 16)
            + Convert.pad("size", 12) + "quantization")
        for entry in file.entries {
            print(Convert.pad(entry.name, width) + Convert.pad(entry.dtype.rawValue, 9)
                + Convert.pad("[" + entry.shape.map(String.init).joined(separator: ", ") + "]", 16)
                + Convert.pad(ProgressBar.bytes(entry.byteCount), 12) + role(of: entry.name, in: reader))
        }
        print("\nby dtype:")
        let byDType = Dictionary(grouping: file.entries, by: \.dtype).sorted { $0.key.rawValue < $1.key.rawValue }
        for (dtype, entries) in byDType {
            print("  \(Convert.pad(dtype.rawValue, 8)) \(entries.count) tensors, "
                + ProgressBar.bytes(entries.reduce(0) { $0 + $1.byteCount }))
        }
        let byFormat = Dictionary(grouping: reader.formats, by: { $0.value.description })
        print("quantized layers: \(reader.formats.count)"
            + (byFormat.isEmpty ? "" : " (" + byFormat.keys.sorted().map { "\(byFormat[$0]!.count) \($0)" }
                .joined(separator: ", ") + ")"))
    }

    static func role(of name: String, in reader: ComfyCheckpointReader) -> String {
        let perLayer = { (layer: String) in
            reader.file.entry(layer + ComfyKeys.comfyQuant) != nil ? "per layer" : "in header"
        }
        if let layer = reader.quantizedLayer(ofWeight: name) {
            return "\(reader.formats[TensorName(layer)]!) (declared \(perLayer(layer)))"
        }
        for (suffix, role) in [(ComfyKeys.weightScale, "weight scale"), (ComfyKeys.comfyQuant, "declaration"),
                               (ComfyKeys.inputScale, "input scale")] where name.hasSuffix(suffix) {
            if reader.formats[TensorName(String(name.dropLast(suffix.count)))] != nil { return role }
        }
        return ""
    }
}
